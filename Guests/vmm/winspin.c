// winspin: device-window reads with interrupts off, then an idle spin (the VMM's long quanta).
/* Under the VMM a guest kernel that cannot take an interrupt runs in long quanta (the ends of
 * the 4096-slot quanta in between are skipped) up to its first exit; the idle-loop detector is
 * then given the retired instructions of the last 4096-slot quantum the long one covered, which
 * the VMM works out from the slots and the device-window accesses before that quantum (their
 * slots are faulted, not retired). This program makes that count matter: with interrupts off it
 * reads the UART's scratch register (a plain load: through the device window, without an exit)
 * for several quanta, then arms the timer, turns interrupts on (its first exit) and spins until
 * the timer interrupt: the detector counts the spin from the quantum of that exit on, the same
 * whether the ends of quanta were skipped or not (VMMQuantumTests.interruptsOnGuestsSkipExactly). */
#include "rt.h"

static volatile u32 ticks;

static void timer_hook(struct frame *f) {
    if (CA_EXC(f->cause) != EXC_INT) {
        exc_default_policy(f);
        return;
    }
    ticks++;
    mtc0(C0_COMPARE, mfc0(C0_COMPARE)); /* acknowledge: clears TI and IP7 */
    f->status &= ~ST_IM(7);               /* one interrupt per arm */
}

int main(void) {
    install_handlers();
    u32 st0 = mfc0(C0_STATUS) & ~(ST_IE | 0xff00);
    mtc0(C0_STATUS, st0);
    rt_exc_hook = timer_hook;
    u32 sum = 0, spun = 0;
    for (u32 round = 0; round < 6; round++) {
        /* Interrupts off: about 10,000 reads in 2.5 to 10 quanta, the more the later the round. */
        for (u32 i = 0; i < 2500 * (round + 1); i++) sum += mmio_read8(UART_BASE + UART_SCR);
        ticks = 0;
        timer_arm(40000 + 7000 * round);
        mtc0(C0_STATUS, st0 | ST_IM(7) | ST_IE);
        /* Four instructions a turn, so that the end of every 4096-slot quantum finds it at the
         * same pc (the detector's sample). */
        u32 t;
        __asm__ volatile(".set push\n.set noreorder\n1: lw %0, 0(%1)\nnop\nbeqz %0, 1b\nnop\n.set pop"
                         : "=&r"(t) : "r"(&ticks) : "memory");
        mtc0(C0_STATUS, st0);
        spun += ticks;
    }
    printf("winspin: %u timer interrupts after the reads, sum %u\n", spun, sum);
    return 0;
}
