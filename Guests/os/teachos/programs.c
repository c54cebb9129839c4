/* teachos: the table of built-in programs. Each runs in its own address space, in user
 * mode, from main(arg) in a user_*.c file; see Docs/guest-os.md, "Adding a program". */
#include "kernel.h"
#include "programs.h"
#include "user.h"

#define PROG(name, fn, arg) {name, (u32)fn, arg}

const struct program programs[] = {
    PROG("cpu", prog_cpu, 0),           /* CPU-bound: preempted by the timer */
    PROG("syscalls", prog_syscalls, 0), /* system-call-heavy */
    PROG("memory", prog_memory, 0),     /* 1 MiB working set: many TLB refills */
    PROG("sleeper", prog_sleeper, 0),   /* sleeps a lot: the kernel idles */
    PROG("cow", prog_cow, 1),           /* copy-on-write data, two instances */
    PROG("cow", prog_cow, 2),
    PROG("bad-kmem", prog_bad, BAD_KERNEL_MEMORY),
    PROG("bad-ri", prog_bad, BAD_RESERVED_INSTRUCTION),
    PROG("bad-trap", prog_bad, BAD_TRAP),
    PROG("bad-ovf", prog_bad, BAD_OVERFLOW),
    PROG("bad-text", prog_bad, BAD_WRITE_TEXT),
    PROG("bad-null", prog_bad, BAD_NULL),
    PROG("bad-cp0", prog_bad, BAD_PRIVILEGED),
    {0, 0, 0},
};
