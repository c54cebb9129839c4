// WAIT: the CPU sleeps until the Count/Compare interrupt (IE=1, IM7); the interrupt is taken
// with EPC = the instruction after WAIT; execution continues there after ERET. (WAIT with
// IE=0 is not tested: QEMU's 24Kc then sleeps until an interrupt it could take.)
#include "rt.h"

static volatile u32 ticks;
static volatile u32 epc_at_int, wait_addr, early;

static void timer_hook(struct frame *f) {
    if (CA_EXC(f->cause) != EXC_INT) {
        exc_default_policy(f);
        return;
    }
    ticks++;
    epc_at_int = f->epc;
    if (f->epc == wait_addr) { /* the interrupt came before the wait ran: skip it */
        early = 1;
        f->epc += 4;
    }
    mtc0(C0_COMPARE, mfc0(C0_COMPARE));
    f->status &= ~ST_IM(7);
}

int main(void) {
    install_handlers();
    rt_exc_hook = timer_hook;
    u32 st0 = mfc0(C0_STATUS) & ~(ST_IE | 0xff00);
    for (u32 round = 0; round < 3; round++) {
        u32 after = 0, wait_pc, tries = 0;
        do { /* a round where the interrupt beat the wait is run again */
            ticks = 0;
            early = 0;
            timer_arm(1000000);
            mtc0(C0_STATUS, st0 | ST_IM(7) | ST_IE);
            __asm__ volatile(".set push\n\t.set noreorder\n\tlui %1, %%hi(1f)\n\taddiu %1, %1, %%lo(1f)\n\t"
                             "lui $t0, %%hi(wait_addr)\n\tsw %1, %%lo(wait_addr)($t0)\n"
                             "1:\twait\n\tli %0, 1\n\t.set pop" : "=r"(after), "=&r"(wait_pc) : : "t0", "memory");
            mtc0(C0_STATUS, st0);
        } while (early && ++tries < 10);
        printf("round %u: woke up, interrupts taken %u, epc=wait%+d, code after wait ran: %s\n", round,
               ticks, (s32)(epc_at_int - wait_pc), after ? "yes" : "no");
    }
    rt_exc_hook = NULL;
    return 0;
}
