// TLB refill: a classic assembly refill handler at EBase+0x000 reads the PTE pair at Context
// (PTEBase | BadVPN2<<4), writes it with TLBWR and returns with ERET. Prints the refill count,
// BadVAddr/EPC/EntryHi/Context seen by the handler, data through the mapping, a second access
// that hits, a store through the mapping, an invalid odd page (TLBL via the general vector),
// a kseg2 mapping, a refill again after the TLB is flushed, and ASID matching.
// Only accesses right after their own refill expect a hit: TLBWR replaces a random entry (and
// QEMU may keep a replaced entry as a hidden "shadow" until the ASID changes or TLBWI/TLBP).
#include "rt.h"

#define PTEBASE 0x80800000u

struct refill_info { u32 count, badvaddr, epc, entryhi, context; };
volatile struct refill_info refill_info;

extern const char refill_start[], refill_end[];
__asm__(".set push\n\t.set noreorder\n\t.set noat\n"
        ".globl refill_start, refill_end\n"
        "refill_start:\n\t"
        "lui $k1, %hi(refill_info)\n\taddiu $k1, $k1, %lo(refill_info)\n\t"
        "lw $k0, 0($k1)\n\taddiu $k0, $k0, 1\n\tsw $k0, 0($k1)\n\t"
        "mfc0 $k0, $8\n\tsw $k0, 4($k1)\n\t"
        "mfc0 $k0, $14\n\tsw $k0, 8($k1)\n\t"
        "mfc0 $k0, $10\n\tsw $k0, 12($k1)\n\t"
        "mfc0 $k0, $4\n\tsw $k0, 16($k1)\n\t"
        "lw $k1, 0($k0)\n\tmtc0 $k1, $2\n\t"
        "lw $k1, 4($k0)\n\tmtc0 $k1, $3\n\t"
        "ehb\n\ttlbwr\n\teret\n"
        "refill_end:\n\t.set pop");

static u32 page_a[1024] __attribute__((aligned(4096)));
static u32 page_b[1024] __attribute__((aligned(4096)));
static u32 page_c[1024] __attribute__((aligned(4096)));

static void set_pte(u32 va, u32 lo0, u32 lo1) {
    u32 *pte = (u32 *)(PTEBASE + ((va >> 13) << 4));
    pte[0] = lo0;
    pte[1] = lo1;
}

static u32 load(u32 va) {
    u32 v = 0xdeadbeef;
    PROBE("lw %0, 0(%1)", : "+r"(v) : "r"(va) : "memory");
    return v;
}

static void show_refill(const char *what, u32 before) {
    printf("%-34s refills=%u", what, refill_info.count - before);
    if (refill_info.count != before)
        printf(" badva=%08x epc=mark%+d entryhi=%08x context=%08x", refill_info.badvaddr,
               (s32)(refill_info.epc - rt_mark), refill_info.entryhi, refill_info.context);
    putchar('\n');
}

int main(void) {
    install_handlers();
    if (refill_end - refill_start > 0x80) puts("refill handler too long!");
    install_code(0x80000000, refill_start, refill_end);
    tlb_clear_all();
    mtc0(C0_WIRED, 0);
    mtc0(C0_PAGEMASK, 0);
    mtc0(C0_ENTRYHI, 0x00000021); /* ASID 0x21 */
    mtc0(C0_CONTEXT, PTEBASE);
    printf("Context after writing PTEBase: %08x\n", mfc0(C0_CONTEXT));
    page_a[0] = 0xaaaa0000;
    page_a[1] = 0xaaaa0001;
    page_b[0] = 0xbbbb0000;
    page_b[2] = 0xbbbb0002;
    page_c[0] = 0xcccc0000;
    u32 flags = ELO_C(3) | ELO_D | ELO_V;
    set_pte(0x10000000, ELO(USEG(page_a), flags), ELO(USEG(page_b), flags));
    set_pte(0x10002000, ELO(USEG(page_c), flags), ELO(USEG(page_c), ELO_C(3))); /* odd: V=0 */
    set_pte(0xc0000000, ELO(USEG(page_b), flags | ELO_G), ELO(USEG(page_a), flags | ELO_G));
    set_pte(0x7fffe000, ELO(USEG(page_c), flags), ELO(USEG(page_a), flags));

    u32 before, v;
    exc_clear();
    before = refill_info.count; v = load(0x10000000); show_refill("lw 10000000", before);
    printf("  value %08x, general exceptions %u\n", v, rt_exc.count);
    before = refill_info.count; v = load(0x10000004); show_refill("lw 10000004 (same page)", before);
    printf("  value %08x\n", v);
    before = refill_info.count; v = load(0x10001000); show_refill("lw 10001000 (odd page, same pair)", before);
    printf("  value %08x\n", v);
    before = refill_info.count;
    __asm__ volatile("sw %0, 8(%1)" : : "r"(0x5707e000), "r"(0x10001000) : "memory");
    show_refill("sw 10001008", before);
    printf("  page_b[2] through kseg0: %08x\n", page_b[2]);
    before = refill_info.count; v = load(0x10002000); show_refill("lw 10002000", before);
    printf("  value %08x\n", v);
    exc_clear();
    before = refill_info.count; v = load(0x10003000); show_refill("lw 10003000 (odd page V=0)", before);
    printf("  value %08x ", v);
    show_exc_full("exc");
    before = refill_info.count; v = load(0xc0000000); show_refill("lw c0000000 (kseg2, kernel)", before);
    printf("  value %08x\n", v);
    before = refill_info.count; v = load(0x7ffff004); show_refill("lw 7ffff004 (top of useg)", before);
    printf("  value %08x\n", v);
    tlb_clear_all();
    before = refill_info.count; v = load(0x10000004); show_refill("lw 10000004 after TLB flush", before);
    printf("  value %08x\n", v);
    /* ASIDs: a global entry (written with tlbwi into wired entry 0, so no tlbwr can replace
     * it) matches every ASID; a refilled non-global entry only its own ASID. */
    tlb_clear_all();
    mtc0(C0_WIRED, 1);
    tlb_write_index(0, 0xc0000021, ELO(USEG(page_b), flags | ELO_G), ELO(USEG(page_a), flags | ELO_G), PM_4K);
    mtc0(C0_ENTRYHI, 0x00000022);
    before = refill_info.count; v = load(0x10000000); show_refill("ASID 22: lw 10000000", before);
    printf("  value %08x\n", v);
    before = refill_info.count; v = load(0xc0000000); show_refill("ASID 22: lw c0000000 (global)", before);
    printf("  value %08x\n", v);
    mtc0(C0_ENTRYHI, 0x00000021);
    before = refill_info.count; v = load(0x10000004); show_refill("ASID 21: lw 10000004", before);
    printf("  value %08x\n", v);
    before = refill_info.count; v = load(0xc0001000); show_refill("ASID 21: lw c0001000 (global)", before);
    printf("  value %08x\n", v);
    mtc0(C0_WIRED, 0);
    printf("total refills %u\n", refill_info.count);
    return 0;
}
