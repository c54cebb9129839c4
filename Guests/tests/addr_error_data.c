// Address errors on data access in kernel mode: misaligned LH LHU LW LL SH SW (AdEL 4 /
// AdES 5) with BadVAddr, destination register and memory unchanged; byte accesses and
// LWL/LWR/SWL/SWR never fault; kseg0/kseg1 accesses at odd addresses.
#include "rt.h"

static u32 buf[4] __attribute__((aligned(16))) = {0x11111111, 0x22222222, 0x33333333, 0x44444444};

#define LOAD(op, off)                                                                         \
    do {                                                                                      \
        u32 d = 0xdeadbeef;                                                                   \
        exc_clear();                                                                          \
        PROBE(op " %0, " #off "(%1)", : "+r"(d) : "r"(base) : "memory");                      \
        printf("%-4s base+%-2d rt=%08x ", op, off, d);                                         \
        show_exc("exc");                                                                      \
    } while (0)
#define STORE(op, off)                                                                        \
    do {                                                                                      \
        exc_clear();                                                                          \
        PROBE(op " %0, " #off "(%1)", : : "r"(0x99999999), "r"(base) : "memory");             \
        printf("%-4s base+%-2d mem=%08x %08x ", op, off, buf[0], buf[1]);                      \
        show_exc("exc");                                                                      \
        buf[0] = 0x11111111;                                                                  \
        buf[1] = 0x22222222;                                                                  \
    } while (0)

int main(void) {
    install_handlers();
    u32 base = (u32)buf;
    rt_badva_ref = base; /* BadVAddr printed as ref+offset */
    LOAD("lh", 1);
    LOAD("lh", 3);
    LOAD("lhu", 1);
    LOAD("lhu", 2);
    LOAD("lw", 1);
    LOAD("lw", 2);
    LOAD("lw", 3);
    LOAD("lw", 4);
    LOAD("ll", 2);
    LOAD("lb", 3);
    LOAD("lbu", 1);
    LOAD("lwl", 1);
    LOAD("lwr", 2);
    STORE("sh", 1);
    STORE("sh", 3);
    STORE("sh", 2);
    STORE("sw", 1);
    STORE("sw", 2);
    STORE("sw", 3);
    STORE("sw", 4);
    STORE("sb", 3);
    STORE("swl", 1);
    STORE("swr", 2);
    /* kseg1 alias, negative displacement */
    u32 d = 0;
    exc_clear();
    PROBE("lw %0, -3(%1)", : "+r"(d) : "r"((base | 0x20000000) + 8) : "memory");
    rt_badva_ref = base | 0x20000000;
    show_exc("lw -3(kseg1 ref+8)");
    rt_badva_ref = 0;
    /* a base+offset that wraps around the top of the address space, misaligned */
    exc_clear();
    PROBE("lw %0, 1(%1)", : "+r"(d) : "r"(0xffffffff) : "memory");
    show_exc("lw 1(0xffffffff)");
    exc_clear();
    PROBE("sh %0, -1(%1)", : : "r"(d), "r"(0x80000000) : "memory");
    show_exc("sh -1(0x80000000)");
    return 0;
}
