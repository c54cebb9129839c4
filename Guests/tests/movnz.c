// MOVN MOVZ: moved or not depending on rt, including rt = $zero and rd = rs.
#include "rt.h"

int main(void) {
    static const u32 conds[] = {0, 1, 0x80000000, 0xffffffff};
    for (u32 i = 0; i < countof(conds); i++) {
        u32 n = 0x11111111, z = 0x22222222, c = conds[i];
        __asm__ volatile("movn %0, %2, %3\n\tmovz %1, %2, %3" : "+r"(n), "+r"(z) : "r"(0xabcdef01), "r"(c));
        printf("rt=%08x: movn -> %08x, movz -> %08x\n", c, n, z);
    }
    u32 a = 0x33333333, b = 0x44444444;
    __asm__ volatile("movn %0, %2, $zero\n\tmovz %1, %2, $zero" : "+r"(a), "+r"(b) : "r"(0x55555555));
    printf("rt=$zero: movn -> %08x, movz -> %08x\n", a, b);
    return 0;
}
