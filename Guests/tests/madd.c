// MADD MADDU MSUB MSUBU: HI:LO accumulate, with carries across LO->HI and 64-bit wrap.
#include "rt.h"

struct acc { u32 hi, lo; };
static const struct acc accs[] = {
    {0, 0}, {0, 0xffffffff}, {0x7fffffff, 0xffffffff}, {0x80000000, 0}, {0xffffffff, 0xffffffff},
    {0x12345678, 0x9abcdef0},
};
static const u32 vals[][2] = {
    {1, 1}, {0xffffffff, 1}, {0xffffffff, 0xffffffff}, {0x80000000, 0x80000000},
    {0x7fffffff, 0x7fffffff}, {0x10000, 0x10000}, {3, 0xfffffffd}, {0x80000000, 0xffffffff},
};

#define ACC(op, h, l, a, b)                                                                   \
    ({                                                                                        \
        struct acc r_;                                                                        \
        __asm__ volatile("mthi %2\n\tmtlo %3\n\t" op " %4, %5\n\tmfhi %0\n\tmflo %1"          \
                         : "=&r"(r_.hi), "=&r"(r_.lo) : "r"(h), "r"(l), "r"(a), "r"(b));      \
        r_;                                                                                   \
    })

int main(void) {
    puts("hi:lo             a        b        | madd              maddu             msub              msubu");
    for (u32 i = 0; i < countof(accs); i++)
        for (u32 j = 0; j < countof(vals); j++) {
            u32 h = accs[i].hi, l = accs[i].lo, a = vals[j][0], b = vals[j][1];
            struct acc m = ACC("madd", h, l, a, b), mu = ACC("maddu", h, l, a, b),
                       s = ACC("msub", h, l, a, b), su = ACC("msubu", h, l, a, b);
            printf("%08x:%08x %08x %08x | %08x:%08x %08x:%08x %08x:%08x %08x:%08x\n", h, l, a,
                   b, m.hi, m.lo, mu.hi, mu.lo, s.hi, s.lo, su.hi, su.lo);
        }
    return 0;
}
