// ADD ADDI SUB: results without overflow, and Ov (ExcCode 12) with the destination unchanged.
#include "rt.h"

static void add(u32 a, u32 b) {
    u32 d = 0xdeadbeef;
    exc_clear();
    PROBE("add %0, %1, %2", : "+r"(d) : "r"(a), "r"(b) : "memory");
    printf("add  %08x + %08x -> rd=%08x ", a, b, d);
    show_exc("exc");
}

static void sub(u32 a, u32 b) {
    u32 d = 0xdeadbeef;
    exc_clear();
    PROBE("sub %0, %1, %2", : "+r"(d) : "r"(a), "r"(b) : "memory");
    printf("sub  %08x - %08x -> rd=%08x ", a, b, d);
    show_exc("exc");
}

#define ADDI(a, imm)                                                                          \
    do {                                                                                      \
        u32 d = 0xdeadbeef;                                                                   \
        exc_clear();                                                                          \
        PROBE("addi %0, %1, %2", : "+r"(d) : "r"((u32)(a)), "i"(imm) : "memory");             \
        printf("addi %08x + %6d -> rd=%08x ", (u32)(a), imm, d);                              \
        show_exc("exc");                                                                      \
    } while (0)

int main(void) {
    install_handlers();
    add(1, 2);
    add(0x7fffffff, 0);
    add(0x7fffffff, 1);
    add(0x80000000, 0xffffffff);
    add(0x80000000, 0x80000000);
    add(0xffffffff, 0xffffffff);
    add(0x40000000, 0x40000000);
    add(0xc0000000, 0xc0000000);
    add(0x7fffffff, 0x80000000);
    sub(5, 3);
    sub(3, 5);
    sub(0x80000000, 1);
    sub(0x7fffffff, 0xffffffff);
    sub(0x80000000, 0x80000000);
    sub(0, 0x80000000);
    sub(0xffffffff, 0x7fffffff);
    sub(0xfffffffe, 0x7fffffff);
    ADDI(0x7fffffff, 1);
    ADDI(0x7fffffff, -1);
    ADDI(0x80000000, -1);
    ADDI(0x80000000, 1);
    ADDI(0x7fff8000, 0x7fff);
    ADDI(0x7fff8001, 0x7fff);
    ADDI(0, -0x8000);
    ADDI(0x80007fff, -0x8000);
    /* overflow with rd = rs: the source register must survive */
    u32 r = 0x7fffffff;
    exc_clear();
    PROBE("add %0, %0, %0", : "+r"(r) : : "memory");
    printf("add r,r,r (r=7fffffff) -> r=%08x ", r);
    show_exc("exc");
    /* ADDU/ADDIU/SUBU never trap */
    exc_clear();
    PROBE("addu $t0, %0, %0\n\taddiu $t0, %0, 1\n\tsubu $t0, %1, %0", : : "r"(0x7fffffff), "r"(0x80000000) : "t0", "memory");
    show_exc("addu/addiu/subu overflow");
    return 0;
}
