// TLB modified: a store to a valid page with D=0 raises Mod (ExcCode 1) via the general vector
// with BadVAddr/EntryHi/Context; loads work; memory is unchanged; after the handler sets D
// (TLBP + TLBWI, the usual way) and returns, the store is retried and succeeds.
#include "rt.h"

static u32 page[1024] __attribute__((aligned(4096)));
static u32 page2[1024] __attribute__((aligned(4096)));
static u32 fixes;

/* Mod handler: make the page writable and retry (EPC unchanged). */
static void set_dirty(struct frame *f) {
    if (CA_EXC(f->cause) != EXC_MOD) {
        exc_default_policy(f);
        return;
    }
    fixes++;
    /* EntryHi already holds VPN2/ASID of the fault */
    __asm__ volatile("tlbp\n\tehb" ::: "memory");
    u32 idx = mfc0(C0_INDEX);
    __asm__ volatile("tlbr\n\tehb" ::: "memory");
    u32 odd = (f->badvaddr >> 12) & 1;
    if (odd)
        mtc0(C0_ENTRYLO1, mfc0(C0_ENTRYLO1) | ELO_D);
    else
        mtc0(C0_ENTRYLO0, mfc0(C0_ENTRYLO0) | ELO_D);
    mtc0(C0_INDEX, idx);
    __asm__ volatile("tlbwi\n\tehb" ::: "memory");
}

#define STORE(label, insn, va)                                                                \
    do {                                                                                      \
        exc_clear();                                                                          \
        PROBE(insn " %0, 0(%1)", : : "r"(0xdddddddd), "r"(va) : "t0", "memory");                    \
        printf("%-26s", label);                                                               \
        show_exc_full("");                                                                    \
        if (rt_exc.count) printf("    EntryHi=%08x Context=%08x\n", rt_exc.entryhi, rt_exc.context); \
    } while (0)

int main(void) {
    install_handlers();
    tlb_clear_all();
    for (u32 i = 0; i < 4; i++) page[i] = 0x10 + i, page2[i] = 0x20 + i;
    mtc0(C0_ENTRYHI, 0x00000007);
    /* even page D=0, odd page D=1 */
    tlb_write_index(3, 0x30000007, ELO(USEG(page), ELO_C(3) | ELO_V),
                    ELO(USEG(page2), ELO_C(3) | ELO_V | ELO_D), PM_4K);
    u32 v;
    exc_clear();
    __asm__ volatile("lw %0, 4(%1)" : "=r"(v) : "r"(0x30000000) : "memory");
    printf("lw from the D=0 page: %08x, exceptions %u\n", v, rt_exc.count);
    STORE("sw to the D=0 page", "sw", 0x30000008);
    STORE("sh to the D=0 page", "sh", 0x3000000a);
    STORE("sb to the D=0 page", "sb", 0x3000000f);
    STORE("swl to the D=0 page", "swl", 0x30000001);
    STORE("swr to the D=0 page", "swr", 0x30000002);
    STORE("sc (after ll) D=0 page", "ll $t0, 0(%1)\n\tsc", 0x30000000);
    STORE("sw to the D=1 odd page", "sw", 0x30001008);
    STORE("sw misaligned D=0 page", "sw", 0x30000006);
    printf("page: %08x %08x %08x %08x  page2[2]=%08x\n", page[0], page[1], page[2], page[3], page2[2]);
    /* now with a handler that sets D and retries */
    rt_exc_hook = set_dirty;
    exc_clear();
    __asm__ volatile("sw %0, 8(%1)" : : "r"(0xcafe0008), "r"(0x30000000) : "memory");
    __asm__ volatile("sw %0, 12(%1)" : : "r"(0xcafe000c), "r"(0x30000000) : "memory");
    rt_exc_hook = NULL;
    printf("with the D-setting handler: Mod exceptions %u (fixed %u), page[2]=%08x page[3]=%08x\n",
           rt_exc.count, fixes, page[2], page[3]);
    struct tlb_entry e = tlb_read_index(3);
    printf("entry 3 now: EntryHi=%08x Lo0=%08x Lo1=%08x\n", e.entryhi, e.entrylo0, e.entrylo1);
    return 0;
}
