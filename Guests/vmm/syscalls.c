// syscalls: a user-mode loop of system calls served by a small kernel handler (VMM benchmark).
/* The system-call-heavy workload of magritte-bench --vmm (Docs/performance.md, "Under the VMM").
 * A user-mode loop makes 200 000 SYSCALLs; the kernel's handler is the runtime's common stub
 * (saves the registers, reads EPC/Status/Cause/BadVAddr, calls C, restores, ERET) with a C
 * handler that serves one "add" call and steps EPC over the SYSCALL: about 150 instructions
 * per call, of which a handful are privileged (each a VMM exit under the VMM). */
#include "rt.h"

#define CALLS 200000u

static void on_syscall(struct frame *f) {
    rt_exc.count = 0; /* thousands of exceptions here are the point, not a runaway */
    if (CA_EXC(f->cause) != EXC_SYS) {
        exc_default_policy(f);
        return;
    }
    f->r[2] = f->r[4] * 3 + f->r[5]; /* v0 = a0 * 3 + a1 */
    f->epc += 4;
}

/* Runs in user mode through useg; no kseg0 addresses. */
static u32 user_loop(u32 n) {
    u32 acc = 0;
    for (u32 i = 0; i < n; i++) {
        register u32 a0 __asm__("a0") = i;
        register u32 a1 __asm__("a1") = acc;
        register u32 v0 __asm__("v0");
        __asm__ volatile("syscall" : "=r"(v0) : "r"(a0), "r"(a1) : "memory");
        acc = v0 ^ (v0 >> 7);
    }
    return acc;
}

int main(void) {
    install_handlers();
    rt_exc_hook = on_syscall;
    u32 r = run_in_mode(KSU_USER, user_loop, CALLS);
    rt_exc_hook = 0;
    printf("syscalls: %u calls from user mode, result %08x\n", CALLS, r);
    return 0;
}
