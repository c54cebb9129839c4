// tlbstress: user code sweeping 4 MiB of pages through a software-refilled TLB (VMM benchmark).
/* The TLB-heavy workload of magritte-bench --vmm (Docs/performance.md, "Under the VMM").
 * User code walks 1024 pages (4 MiB at useg 0x01000000, backed by physical 16-20 MiB, zero at
 * boot) in a scattered order, summing 4 words of each page, 600 times over; with 16 TLB entries almost
 * every page pair misses. The refill handler at 0x80000000 is the classic one (Context points
 * into a linear table of EntryLo pairs; two loads, two MTC0, TLBWR, ERET), so the run is about
 * one refill per 30 instructions. Needs 32 MiB of RAM. */
#include "rt.h"

#define USER_BASE 0x01000000u
#define PAGES 1024u
#define FRAMES_PA 0x01000000u /* 16 MiB */
#define PTE_BASE 0x80800000u  /* Context.PTEBase: the table of EntryLo pairs (16 bytes a pair) */
#define ROUNDS 600u

extern const u32 refill_stub[], refill_stub_end[];
__asm__(".set push\n.set noreorder\n.set noat\n"
        ".globl refill_stub\nrefill_stub:\n"
        "  mfc0 $k0, $4\n"  /* Context: PTEBase | BadVPN2 << 4 */
        "  lw $k1, 0($k0)\n"
        "  lw $k0, 4($k0)\n"
        "  mtc0 $k1, $2\n"
        "  mtc0 $k0, $3\n"
        "  ehb\n"
        "  tlbwr\n"
        "  eret\n"
        ".globl refill_stub_end\nrefill_stub_end:\n"
        ".set pop\n");

/* In user mode: no kseg0 addresses. */
static u32 sweep(u32 rounds) {
    u32 sum = 0;
    for (u32 r = 0; r < rounds; r++) {
        for (u32 i = 0; i < PAGES; i++) {
            u32 page = (i * 389u + r) & (PAGES - 1); /* 389 is odd: a permutation */
            volatile u32 *p = (volatile u32 *)(USER_BASE + page * 4096u);
            for (u32 w = 0; w < 4; w++) sum += p[w * 256] ^ w;
            if (r == 0) p[i & 1023] = sum;
        }
    }
    return sum;
}

int main(u32 argc, char **argv, char **envp, u32 memsize) {
    (void)argc, (void)argv, (void)envp;
    if (memsize < 32u << 20) {
        printf("tlbstress: needs 32 MiB of RAM, has %u KiB\n", memsize >> 10);
        return 1;
    }
    install_handlers();
    install_code(0x80000000u, refill_stub, refill_stub_end);
    tlb_clear_all();
    /* The page table: one 16-byte slot per page pair, as Context addresses it. */
    u32 flags = ELO_C(3) | ELO_D | ELO_V;
    for (u32 vpn2 = USER_BASE >> 13; vpn2 < (USER_BASE >> 13) + PAGES / 2; vpn2++) {
        u32 *slot = (u32 *)(PTE_BASE + (vpn2 << 4));
        u32 pa = FRAMES_PA + ((vpn2 - (USER_BASE >> 13)) << 13);
        slot[0] = ELO(pa, flags);
        slot[1] = ELO(pa + 4096, flags);
    }
    mtc0(C0_CONTEXT, PTE_BASE);
    mtc0(C0_WIRED, 1); /* keep run_in_mode's code mapping at index 0 */
    u32 r = run_in_mode(KSU_USER, sweep, ROUNDS);
    printf("tlbstress: %u rounds over %u pages, sum %08x\n", ROUNDS, PAGES, r);
    return 0;
}
