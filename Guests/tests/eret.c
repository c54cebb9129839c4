// ERET: returns to EPC and clears EXL; with ERL=1 returns to ErrorEPC and clears only ERL; the
// instruction after ERET is not executed (no delay slot); ERET to user mode; EPC/ErrorEPC
// write/read; ERET in user mode raises CpU.
#include "rt.h"

static u32 u_eret(u32 arg) {
    __asm__ volatile("eret" ::: "memory");
    return 1;
}

int main(void) {
    install_handlers();
    u32 flags, st0 = mfc0(C0_STATUS);
    /* EPC and ErrorEPC are plain read/write registers */
    mtc0(C0_EPC, 0x12345678);
    mtc0(C0_ERROREPC, 0x9abcdef1);
    printf("EPC=%08x ErrorEPC=%08x\n", mfc0(C0_EPC), mfc0(C0_ERROREPC));

    /* EXL=1, eret -> EPC, EXL cleared; the word after eret does not run */
    __asm__ volatile(".set push\n\t.set noreorder\n\tli %0, 0\n\t"
                     "lui $t0, %%hi(1f)\n\taddiu $t0, $t0, %%lo(1f)\n\tmtc0 $t0, $14\n\t"
                     "mfc0 $t0, $12\n\tori $t0, $t0, 2\n\tmtc0 $t0, $12\n\tehb\n\t"
                     "eret\n\tori %0, %0, 1\n\tori %0, %0, 2\n1:\tori %0, %0, 4\n\t.set pop"
                     : "=&r"(flags) : : "t0", "memory");
    printf("eret EXL=1: flags=%u (4: only the target ran) Status=%08x\n", flags, mfc0(C0_STATUS));

    /* ERL=1 and EXL=1: eret -> ErrorEPC, clears ERL, keeps EXL */
    u32 st_after;
    __asm__ volatile(".set push\n\t.set noreorder\n\tli %0, 0\n\t"
                     "lui $t0, %%hi(1f)\n\taddiu $t0, $t0, %%lo(1f)\n\tmtc0 $t0, $30\n\t"
                     "lui $t0, %%hi(2f)\n\taddiu $t0, $t0, %%lo(2f)\n\tmtc0 $t0, $14\n\t"
                     "mfc0 $t0, $12\n\tori $t0, $t0, 6\n\tmtc0 $t0, $12\n\tehb\n\t"
                     "eret\n\tnop\n"
                     "2:\tori %0, %0, 8\n"
                     "1:\tori %0, %0, 4\n\tmfc0 %1, $12\n\t"
                     "mfc0 $t0, $12\n\tins $t0, $zero, 1, 2\n\tmtc0 $t0, $12\n\tehb\n\t.set pop"
                     : "=&r"(flags), "=&r"(st_after) : : "t0", "memory");
    printf("eret ERL=1 EXL=1: flags=%u (4: went to ErrorEPC) Status after eret=%08x\n", flags,
           st_after);

    /* eret into user mode (KSU=10) */
    exc_clear();
    u32 v = probe_mode(KSU_USER, u_eret, 0);
    printf("eret in user mode: returned %u ", v);
    show_exc_full("exc");
    v = probe_mode(KSU_SUPER, u_eret, 0);
    printf("eret in supervisor mode: returned %u ", v);
    show_exc_full("exc");
    mtc0(C0_STATUS, st0);
    printf("Status restored: %08x\n", mfc0(C0_STATUS));
    return 0;
}
