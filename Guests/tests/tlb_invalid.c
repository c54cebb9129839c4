// TLB invalid: an entry that matches with V=0 raises TLBL (load, also LWL/LWR/LL) or TLBS
// (store, also SWL/SWR/SC) through the general vector (+0x180, not the refill vector), with
// BadVAddr, EntryHi.VPN2 (ASID kept) and Context.BadVPN2 set; the even/odd page choice.
#include "rt.h"

static u32 page[1024] __attribute__((aligned(4096)));

#define ACCESS(label, insn, va)                                                               \
    do {                                                                                      \
        u32 v_ = 0x5a5a5a5a;                                                                  \
        exc_clear();                                                                          \
        PROBE(insn " %0, 0(%1)", : "+r"(v_) : "r"(va) : "memory");                            \
        printf("%-24s", label);                                                               \
        show_exc_full("");                                                                    \
        if (rt_exc.count)                                                                     \
            printf("    EntryHi=%08x Context=%08x rt=%08x\n", rt_exc.entryhi, rt_exc.context, v_); \
        else                                                                                  \
            printf("    rt=%08x\n", v_);                                                      \
    } while (0)

int main(void) {
    install_handlers();
    tlb_clear_all();
    page[0] = 0x11112222;
    mtc0(C0_CONTEXT, 0x80800000);
    mtc0(C0_ENTRYHI, 0x00000033);
    u32 pa = USEG(page);
    /* even page valid, odd page invalid */
    tlb_write_index(5, 0x20000033, ELO(pa, ELO_C(3) | ELO_D | ELO_V), ELO(pa, ELO_C(3) | ELO_D), PM_4K);
    /* both invalid, global */
    tlb_write_index(6, 0x20002000, ELO(pa, ELO_G | ELO_D), ELO(pa, ELO_G | ELO_D), PM_4K);
    ACCESS("lw even (valid)", "lw", 0x20000000);
    ACCESS("lw odd (V=0)", "lw", 0x20001004);
    ACCESS("lh odd", "lh", 0x20001ffe);
    ACCESS("lbu odd", "lbu", 0x20001003);
    ACCESS("lwl odd", "lwl", 0x20001007);
    ACCESS("lwr odd", "lwr", 0x20001005);
    ACCESS("ll odd", "ll", 0x20001008);
    ACCESS("sw odd", "sw", 0x20001010);
    ACCESS("sh odd", "sh", 0x20001012);
    ACCESS("sb odd", "sb", 0x20001013);
    ACCESS("swl odd", "swl", 0x20001001);
    ACCESS("swr odd", "swr", 0x20001002);
    ACCESS("lw global pair, even", "lw", 0x20002000);
    ACCESS("sw global pair, odd", "sw", 0x20003ffc);
    /* ASID of EntryHi is kept when VPN2 is loaded */
    mtc0(C0_ENTRYHI, 0x000000a5);
    ACCESS("lw ASID a5, global V=0", "lw", 0x20002abc);
    /* misaligned + invalid: the address error wins */
    ACCESS("lw misaligned on V=0", "lw", 0x20001002);
    printf("page[0] unchanged: %08x\n", page[0]);
    return 0;
}
