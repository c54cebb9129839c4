// RDHWR: hardware registers 0 (CPUNum) 1 (SYNCI_Step) 2 (CC: only "readable" is printed)
// 3 (CCRes); in kernel mode always allowed; in user mode only when HWREna enables the register
// or Status.CU0=1, else RI. HWREna write mask. (RDHWR $29: see qemu_quirks.)
#include "rt.h"

#define SENTINEL 0x5a5a5a5a
#define U_RDHWR(n)                                                                            \
    static u32 u_rdhwr##n(u32 arg) {                                                          \
        u32 v = SENTINEL;                                                                     \
        __asm__ volatile("rdhwr %0, $" #n : "+r"(v));                                         \
        return v;                                                                             \
    }
U_RDHWR(0)
U_RDHWR(1)
U_RDHWR(2)
U_RDHWR(3)

static u32 (*const fns[])(u32) = {u_rdhwr0, u_rdhwr1, u_rdhwr2, u_rdhwr3};
static const u32 regs[] = {0, 1, 2, 3};

static void report(const char *mode, u32 i, u32 v, u32 fn) {
    printf("%-28s rdhwr $%-2u: ", mode, regs[i]);
    if (rt_exc.count)
        printf("%s epc=fn%+d\n", exc_name(CA_EXC(rt_exc.cause)), (s32)(rt_exc.epc - fn));
    else if (regs[i] == 2)
        printf("readable (value not printed)\n");
    else
        printf("%08x\n", v);
}

int main(void) {
    install_handlers();
    mtc0(C0_HWRENA, 0xffffffff);
    printf("HWREna after writing ffffffff: %08x\n", mfc0(C0_HWRENA));
    mtc0(C0_HWRENA, 0);
    printf("HWREna after writing 0: %08x\n", mfc0(C0_HWRENA));
    for (u32 i = 0; i < countof(fns); i++) {
        exc_clear();
        u32 v = fns[i](0);
        report("kernel, HWREna=0", i, v, (u32)fns[i]);
    }
    static const u32 enables[] = {0x0, 0x1, 0x2, 0x4, 0x8, 0xf, 0x20000000};
    for (u32 e = 0; e < countof(enables); e++) {
        mtc0(C0_HWRENA, enables[e]);
        for (u32 i = 0; i < countof(fns); i++) {
            char mode[40] = "user, HWREna=";
            u32 n = 13, x = enables[e];
            for (int sh = 28; sh >= 0; sh -= 4)
                if ((x >> sh) || sh == 0) mode[n++] = "0123456789abcdef"[(x >> sh) & 15];
            mode[n] = 0;
            exc_clear();
            u32 v = run_in_mode(KSU_USER, fns[i], 0);
            report(mode, i, v, USEG(fns[i]));
        }
    }
    /* CU0=1 makes RDHWR legal in user mode whatever HWREna says */
    mtc0(C0_HWRENA, 0);
    mtc0(C0_STATUS, mfc0(C0_STATUS) | ST_CU0);
    for (u32 i = 0; i < countof(fns); i++) {
        exc_clear();
        u32 v = run_in_mode(KSU_USER, fns[i], 0);
        report("user, HWREna=0, CU0=1", i, v, USEG(fns[i]));
    }
    mtc0(C0_STATUS, mfc0(C0_STATUS) & ~ST_CU0);
    /* supervisor mode follows the user rules */
    for (u32 i = 0; i < 2; i++) {
        exc_clear();
        u32 v = run_in_mode(KSU_SUPER, fns[i], 0);
        report("supervisor, HWREna=0", i, v, USEG(fns[i]));
    }
    return 0;
}
