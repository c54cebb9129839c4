// Register-register ALU ops: ADDU SUBU AND OR XOR NOR SLT SLTU over a grid of edge values.
#include "rt.h"

static const u32 vals[] = {
    0x00000000, 0x00000001, 0x00000002, 0x7fffffff, 0x80000000, 0x80000001,
    0xffffffff, 0xfffffffe, 0x00008000, 0xffff8000, 0x12345678, 0xa5a5a5a5,
};

int main(void) {
    puts("a        b        | addu     subu     and      or       xor      nor      slt sltu");
    for (u32 i = 0; i < countof(vals); i++) {
        for (u32 j = 0; j < countof(vals); j++) {
            u32 a = vals[i], b = vals[j];
            printf("%08x %08x | %08x %08x %08x %08x %08x %08x %u   %u\n", a, b,
                   OP_RR("addu", a, b), OP_RR("subu", a, b), OP_RR("and", a, b),
                   OP_RR("or", a, b), OP_RR("xor", a, b), OP_RR("nor", a, b),
                   OP_RR("slt", a, b), OP_RR("sltu", a, b));
        }
    }
    /* rd = $zero is discarded; rs = rt = rd aliasing */
    u32 z;
    __asm__ volatile("li $t0, 5\n\taddu $zero, $t0, $t0\n\tmove %0, $zero" : "=r"(z) : : "t0");
    printf("addu $0 <- 5+5: $0 = %x\n", z);
    __asm__ volatile("li %0, 7\n\taddu %0, %0, %0" : "=&r"(z));
    printf("addu r,r,r with r=7: %x\n", z);
    return 0;
}
