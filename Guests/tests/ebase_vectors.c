// Exception vectors follow EBase: stubs with distinct ids at two EBase values show which vector
// ran for a general exception (+0x180), a TLB refill (+0x000) and an interrupt with Cause.IV=1
// (+0x200); EBase write mask (bits 31:30 fixed to 10, 11:0 not writable / CPUNum read-only).
#include "rt.h"

#define ALT 0x80040000u

int main(void) {
    install_handlers();
    install_vector(ALT, 0x000, 0x1000);
    install_vector(ALT, 0x180, 0x1180);
    install_vector(ALT, 0x200, 0x1200);
    static const u32 writes[] = {0xffffffff, 0x00000000, 0x80040000, 0x3ffff000, 0xc0001fff, 0x12345678};
    for (u32 i = 0; i < countof(writes); i++) {
        set_ebase(writes[i]);
        u32 r = mfc0(C0_EBASE);
        set_ebase(0x80000000);
        printf("EBase write %08x read %08x\n", writes[i], r);
    }
    tlb_clear_all();
    for (u32 k = 0; k < 2; k++) {
        u32 base = k ? ALT : 0x80000000u;
        set_ebase(base);
        printf("EBase=%08x:\n", mfc0(C0_EBASE));
        exc_clear();
        PROBE("syscall", ::: "memory");
        printf("  syscall         -> stub %04x\n", rt_exc.vector);
        exc_clear();
        u32 v;
        PROBE("lw %0, 0(%1)", : "=r"(v) : "r"(0x00c00000) : "memory");
        printf("  TLB refill      -> stub %04x (%s)\n", rt_exc.vector, exc_name(CA_EXC(rt_exc.cause)));
        /* software interrupt 0 with IV=0 then IV=1 */
        for (u32 iv = 0; iv < 2; iv++) {
            exc_clear();
            mtc0(C0_CAUSE, iv ? CA_IV : 0);
            mtc0(C0_STATUS, (mfc0(C0_STATUS) & ~0xff00) | ST_IM(0) | ST_IE);
            mtc0(C0_CAUSE, (iv ? CA_IV : 0) | CA_IP(0)); /* the interrupt is taken here */
            ehb();
            mtc0(C0_STATUS, mfc0(C0_STATUS) & ~(ST_IE | 0xff00));
            mtc0(C0_CAUSE, 0);
            printf("  interrupt IV=%u -> stub %04x (%s)\n", iv, rt_exc.vector,
                   rt_exc.count ? exc_name(CA_EXC(rt_exc.cause)) : "not taken");
        }
    }
    set_ebase(0x80000000);
    return 0;
}
