// Count/Compare timer on IP7: Count advances; when Count reaches Compare, Cause.TI and IP7 are
// set and (IE, IM7) the interrupt is taken with ExcCode Int; writing Compare clears TI/IP7;
// with IM7=0 the bits are set but nothing is taken; Cause.DC=1 stops Count. IntCtl.IPTI says
// which IP the timer uses. No Count value is ever printed.
#include "rt.h"

static volatile u32 ticks, cause_at_entry;

static void timer_hook(struct frame *f) {
    if (CA_EXC(f->cause) != EXC_INT) {
        exc_default_policy(f);
        return;
    }
    ticks++;
    cause_at_entry = f->cause;
    mtc0(C0_COMPARE, mfc0(C0_COMPARE)); /* acknowledge: clears TI and IP7 */
    f->status &= ~ST_IM(7);               /* one interrupt per arm */
}

static int wait_for(volatile u32 *flag, u32 limit) {
    for (u32 i = 0; i < limit; i++)
        if (*flag) return 1;
    return 0;
}

int main(void) {
    install_handlers();
    u32 st0 = mfc0(C0_STATUS) & ~(ST_IE | 0xff00);
    printf("IntCtl.IPTI=%u (timer interrupt on IP%u)\n", mfc0(C0_INTCTL) >> 29, mfc0(C0_INTCTL) >> 29);
    mtc0(C0_CAUSE, 0);
    u32 a = mfc0(C0_COUNT);
    for (volatile u32 i = 0; i < 100000; i++) {
    }
    u32 b = mfc0(C0_COUNT);
    printf("Count advances over a busy loop: %s\n", b != a ? "yes" : "no");

    mtc0(C0_CAUSE, CA_DC);
    a = mfc0(C0_COUNT);
    for (volatile u32 i = 0; i < 100000; i++) {
    }
    b = mfc0(C0_COUNT);
    printf("Cause.DC=1: Count stopped: %s\n", b == a ? "yes" : "no");
    mtc0(C0_CAUSE, 0);

    /* polled: IM7 off, wait for TI */
    timer_arm(1000000);
    printf("after writing Compare: Cause.TI=%u IP7=%u\n", mfc0(C0_CAUSE) >> 30 & 1, mfc0(C0_CAUSE) >> 15 & 1);
    u32 seen = 0;
    for (u32 i = 0; i < 50000000 && !seen; i++)
        if (mfc0(C0_CAUSE) & CA_TI) seen = 1;
    u32 c = mfc0(C0_CAUSE);
    printf("polled with IM7=0: TI seen %s, Cause.TI=%u IP7=%u, exceptions %u\n", seen ? "yes" : "no",
           c >> 30 & 1, c >> 15 & 1, rt_exc.count);
    mtc0(C0_COMPARE, mfc0(C0_COMPARE));
    c = mfc0(C0_CAUSE);
    printf("after rewriting Compare: Cause.TI=%u IP7=%u\n", c >> 30 & 1, c >> 15 & 1);

    /* interrupt-driven */
    rt_exc_hook = timer_hook;
    for (u32 round = 0; round < 3; round++) {
        exc_clear();
        u32 before = ticks;
        timer_arm(1000000);
        mtc0(C0_STATUS, st0 | ST_IM(7) | ST_IE);
        int ok = wait_for(&ticks, 50000000);
        mtc0(C0_STATUS, st0);
        printf("round %u: timer interrupt taken: %s (%u), ExcCode=%s Cause.TI=%u IP7=%u at entry, TI after=%u\n",
               round, ok ? "yes" : "no", ticks - before, exc_name(CA_EXC(cause_at_entry)),
               cause_at_entry >> 30 & 1, cause_at_entry >> 15 & 1, mfc0(C0_CAUSE) >> 30 & 1);
        ticks = 0;
    }
    /* a Compare value in the past only fires after Count wraps: no interrupt soon */
    exc_clear();
    ticks = 0;
    mtc0(C0_COMPARE, mfc0(C0_COUNT) - 1000);
    mtc0(C0_STATUS, st0 | ST_IM(7) | ST_IE);
    for (volatile u32 i = 0; i < 100000; i++) {
    }
    mtc0(C0_STATUS, st0);
    printf("Compare set in the past: interrupt within a short loop: %s\n", ticks ? "yes" : "no");
    rt_exc_hook = NULL;
    return 0;
}
