// Coprocessor Unusable (ExcCode 11) with Cause.CE: COP1 (no FPU: Status.CU1 is not writable)
// incl. loads/stores/branches/MOVCI/COP1X, COP2 loads/stores (CE=2), Status.CU1-3 write
// attempts. (QEMU raises RI for the COP2 opcode itself: see qemu_quirks.)
#include "rt.h"

struct word { u32 w; const char *what; };
static const struct word words[] = {
    {0x44024000, "mfc1 v0, f8"},
    {0x44824000, "mtc1 v0, f8"},
    {0x4442f800, "cfc1 v0, $31 (FCSR)"},
    {0x44420000, "cfc1 v0, $0 (FIR)"},
    {0x44c2f800, "ctc1 v0, $31"},
    {0x44624000, "mfhc1 v0, f8"},
    {0x46000000, "add.s f0, f0, f0"},
    {0x46200005, "abs.d f0, f0"},
    {0x46800020, "cvt.s.w f0, f0"},
    {0x45000001, "bc1f +4"},
    {0x45010001, "bc1t +4"},
    {0xc7a00000, "lwc1 f0, 0(sp)"},
    {0xe7a00000, "swc1 f0, 0(sp)"},
    {0xd7a00000, "ldc1 f0, 0(sp)"},
    {0xf7a00000, "sdc1 f0, 0(sp)"},
    {0x4c000000, "COP1X lwxc1 f0, zero(zero)"},
    {0x4c000020, "COP1X madd.s"},
    {0x00404001, "movf t0, v0, $fcc0 (MOVCI)"},
    {0x00414001, "movt t0, v0, $fcc0 (MOVCI)"},
    {0xcba00000, "lwc2 $0, 0(sp)"},
    {0xeba00000, "swc2 $0, 0(sp)"},
    {0xdba00000, "ldc2 $0, 0(sp)"},
    {0xfba00000, "sdc2 $0, 0(sp)"},
};

int main(void) {
    install_handlers();
    u32 st = mfc0(C0_STATUS);
    mtc0(C0_STATUS, st | ST_CU1 | 0x40000000 | 0x80000000);
    printf("Status with CU1..CU3 written: %08x (written %08x)\n", mfc0(C0_STATUS),
           st | ST_CU1 | 0x40000000 | 0x80000000);
    mtc0(C0_STATUS, st);
    for (u32 i = 0; i < countof(words); i++) {
        exc_clear();
        run_word(words[i].w);
        printf("%08x %-30s", words[i].w, words[i].what);
        show_exc_full("");
    }
    /* COP0 in kernel mode works with CU0 = 0 or 1 */
    mtc0(C0_STATUS, st & ~ST_CU0);
    exc_clear();
    u32 v = mfc0(C0_PRID);
    show_exc("kernel mfc0 with CU0=0");
    (void)v;
    /* a COP1 instruction in a branch delay slot: BD=1, EPC = branch, CE=1 */
    exc_clear();
    PROBE("beq $zero, $zero, 9f\n\tmfc1 $t0, $f0\n\tnop", ::: "t0", "memory");
    show_exc_full("mfc1 in a beq delay slot");
    return 0;
}
