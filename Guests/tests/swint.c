// Software interrupts IP0/IP1 raised by writing Cause: taken only when Status.IE=1, the IM bit
// is set, EXL=0 and ERL=0; Cause.IP shows pending bits; EPC is the instruction after the
// enabling write; an interrupt pending when ERET drops to user mode is taken at the first
// user instruction; Cause write mask. Cause.IP is shown for IP0, IP1 and IP7 only: IP2 (the
// i8259, fed by QEMU's free-running PIT) may become pending at any time.
#include "rt.h"

static u32 st0;

static void show(const char *what) {
    if (!rt_exc.count) {
        printf("%-44s not taken, Cause.IP=%02x\n", what, (mfc0(C0_CAUSE) >> 8) & 0x83);
        return;
    }
    printf("%-44s %s epc=mark%+d Cause.IP=%02x at entry, count=%u\n", what,
           exc_name(CA_EXC(rt_exc.cause)), (s32)(rt_exc.epc - rt_mark), (rt_exc.cause >> 8) & 0x83,
           rt_exc.count);
}

static void quiet(void) {
    mtc0(C0_STATUS, st0);
    mtc0(C0_CAUSE, 0);
    exc_clear();
}

static u32 u_spin(u32 n) {
    volatile u32 i = 0;
    while (i < n) i++;
    return i;
}

int main(void) {
    install_handlers();
    st0 = mfc0(C0_STATUS) & ~(ST_IE | 0xff00);
    mtc0(C0_CAUSE, 0xffffffff);
    printf("Cause write ffffffff (IE=0) read %08x\n", mfc0(C0_CAUSE) & ~0x7c00u);
    mtc0(C0_CAUSE, 0);
    printf("Cause write 00000000 read %08x\n", mfc0(C0_CAUSE) & ~0x7c00u);
    quiet();

    mtc0(C0_STATUS, st0 | ST_IM(0) | ST_IE);
    PROBE("mtc0 %0, $13\n\tehb\n\tnop\n\tnop", : : "r"(CA_IP(0)) : "memory");
    show("IP0, IM0, IE: set IP0");
    quiet();

    mtc0(C0_STATUS, st0 | ST_IM(1) | ST_IE);
    PROBE("mtc0 %0, $13\n\tehb\n\tnop\n\tnop", : : "r"(CA_IP(1)) : "memory");
    show("IP1, IM1, IE: set IP1");
    quiet();

    mtc0(C0_STATUS, st0 | ST_IM(1) | ST_IE);
    PROBE("mtc0 %0, $13\n\tehb\n\tnop\n\tnop", : : "r"(CA_IP(0)) : "memory");
    show("IP0 with only IM1 enabled");
    PROBE("mtc0 %0, $12\n\tehb\n\tnop", : : "r"(st0 | ST_IM(0) | ST_IE) : "memory");
    show("  then enable IM0");
    quiet();

    mtc0(C0_STATUS, st0 | ST_IM(0));
    PROBE("mtc0 %0, $13\n\tehb\n\tnop\n\tnop", : : "r"(CA_IP(0)) : "memory");
    show("IP0, IM0, IE=0");
    PROBE("ei\n\tehb\n\tnop", ::: "memory");
    show("  then ei");
    quiet();

    mtc0(C0_STATUS, st0 | ST_IM(0) | ST_IE | ST_EXL);
    PROBE("mtc0 %0, $13\n\tehb\n\tnop\n\tnop", : : "r"(CA_IP(0)) : "memory");
    show("IP0, IM0, IE, EXL=1");
    PROBE("mtc0 %0, $12\n\tehb\n\tnop", : : "r"(st0 | ST_IM(0) | ST_IE) : "memory");
    show("  then clear EXL");
    quiet();

    mtc0(C0_STATUS, st0 | ST_IM(0) | ST_IE | ST_ERL);
    PROBE("mtc0 %0, $13\n\tehb\n\tnop\n\tnop", : : "r"(CA_IP(0)) : "memory");
    u32 pending = rt_exc.count;
    mtc0(C0_STATUS, st0 | ST_IM(0));
    printf("%-44s %s\n", "IP0, IM0, IE, ERL=1", pending ? "taken" : "not taken");
    quiet();

    mtc0(C0_STATUS, st0 | ST_IM(0) | ST_IM(1));
    mtc0(C0_CAUSE, CA_IP(0) | CA_IP(1));
    PROBE("ei\n\tehb\n\tnop", ::: "memory");
    show("IP0+IP1 pending, then ei");
    quiet();

    /* the default handler cleared IP0/IP1 and masked IM: a single interrupt */
    mtc0(C0_STATUS, st0 | ST_IM(0) | ST_IE);
    PROBE("mtc0 %0, $13\n\tehb\n\tnop\n\tnop\n\tnop\n\tnop", : : "r"(CA_IP(0)) : "memory");
    show("IP0 once, handler clears it");
    quiet();

    /* the enabling write in a branch delay slot: the interrupt is taken after the slot */
    mtc0(C0_STATUS, st0 | ST_IM(0) | ST_IE);
    PROBE("beq $zero, $zero, 1f\n\tmtc0 %0, $13\n\tnop\n\tnop\n1:\tnop\n\tnop", : : "r"(CA_IP(0)) : "memory");
    show("mtc0 Cause in a taken beq delay slot");
    if (rt_exc.count) printf("  bd=%u\n", rt_exc.cause >> 31);
    quiet();
    mtc0(C0_STATUS, st0 | ST_IM(0));
    mtc0(C0_CAUSE, CA_IP(0));
    PROBE("beq $zero, $zero, 1f\n\tei\n\tnop\n\tnop\n1:\tnop\n\tnop", ::: "memory");
    show("ei in a taken beq delay slot (IP0 pending)");
    if (rt_exc.count) printf("  bd=%u\n", rt_exc.cause >> 31);
    quiet();

    /* interrupt pending while dropping to user mode with IE=1 */
    mtc0(C0_STATUS, st0 | ST_IM(0) | ST_IE);
    mtc0(C0_STATUS, st0 | ST_IM(0));
    mtc0(C0_CAUSE, CA_IP(0));
    mtc0(C0_STATUS, st0 | ST_IM(0) | ST_IE | ST_EXL); /* pending, held off by EXL */
    u32 n = probe_mode(KSU_USER, u_spin, 100);
    printf("%-44s %s epc=fn%+d status=%02x, user fn returned %u\n", "IP0 pending, eret to user mode",
           rt_exc.count ? exc_name(CA_EXC(rt_exc.cause)) : "not taken", (s32)(rt_exc.epc - rt_mark),
           rt_exc.status & 0xff, n);
    quiet();
    return 0;
}
