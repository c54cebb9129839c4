// MUL (rd, HI/LO clobber not printed) MULT MULTU; MFHI MFLO MTHI MTLO round trips.
#include "rt.h"

static const u32 vals[] = {
    0x00000000, 0x00000001, 0xffffffff, 0x7fffffff, 0x80000000, 0x00010000, 0x0000ffff,
    0x12345678, 0xfedcba98, 0x00000003, 0xfffffffd,
};

int main(void) {
    puts("a        b        | mul      | mult hi  lo       | multu hi lo");
    for (u32 i = 0; i < countof(vals); i++)
        for (u32 j = 0; j < countof(vals); j++) {
            u32 a = vals[i], b = vals[j], m, shi, slo, uhi, ulo;
            __asm__ volatile("mul %0, %1, %2" : "=r"(m) : "r"(a), "r"(b));
            __asm__ volatile("mult %2, %3\n\tmfhi %0\n\tmflo %1"
                             : "=r"(shi), "=r"(slo) : "r"(a), "r"(b));
            __asm__ volatile("multu %2, %3\n\tmfhi %0\n\tmflo %1"
                             : "=r"(uhi), "=r"(ulo) : "r"(a), "r"(b));
            printf("%08x %08x | %08x | %08x %08x | %08x %08x\n", a, b, m, shi, slo, uhi, ulo);
        }
    u32 hi, lo;
    __asm__ volatile("mthi %2\n\tmtlo %3\n\tmfhi %0\n\tmflo %1"
                     : "=r"(hi), "=r"(lo) : "r"(0xcafef00d), "r"(0x12345678));
    printf("mthi cafef00d mtlo 12345678 -> hi=%08x lo=%08x\n", hi, lo);
    /* mflo/mfhi into $zero do nothing; mult with rs=rt */
    __asm__ volatile("li $t0, -3\n\tmult $t0, $t0\n\tmfhi %0\n\tmflo %1" : "=r"(hi), "=r"(lo) : : "t0");
    printf("mult -3,-3 -> hi=%08x lo=%08x\n", hi, lo);
    return 0;
}
