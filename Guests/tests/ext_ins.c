// EXT and INS for many (pos, size) pairs, including size 32, pos+size = 32 and size 1.
#include "rt.h"

#define EXT(v, pos, size)                                                                     \
    do {                                                                                      \
        u32 r_;                                                                               \
        __asm__ volatile("ext %0, %1, %2, %3" : "=r"(r_) : "r"(v), "i"(pos), "i"(size));      \
        printf("ext  %08x pos=%2u size=%2u -> %08x\n", v, pos, size, r_);                      \
    } while (0)
#define INS(d, v, pos, size)                                                                  \
    do {                                                                                      \
        u32 r_ = d;                                                                           \
        __asm__ volatile("ins %0, %1, %2, %3" : "+r"(r_) : "r"(v), "i"(pos), "i"(size));      \
        printf("ins  %08x <- %08x pos=%2u size=%2u -> %08x\n", d, v, pos, size, r_);           \
    } while (0)

#define BOTH(pos, size)                                                                       \
    EXT(0x89abcdef, pos, size);                                                               \
    EXT(0x7654321f, pos, size);                                                               \
    INS(0x12345678, 0xfedcba98, pos, size);                                                   \
    INS(0xffffffff, 0x00000000, pos, size);                                                   \
    INS(0x00000000, 0xffffffff, pos, size)

int main(void) {
    BOTH(0, 1);
    BOTH(0, 8);
    BOTH(0, 16);
    BOTH(0, 31);
    BOTH(0, 32);
    BOTH(1, 1);
    BOTH(1, 31);
    BOTH(3, 5);
    BOTH(4, 4);
    BOTH(7, 9);
    BOTH(8, 8);
    BOTH(8, 24);
    BOTH(12, 7);
    BOTH(15, 2);
    BOTH(16, 16);
    BOTH(16, 1);
    BOTH(20, 12);
    BOTH(24, 8);
    BOTH(30, 2);
    BOTH(31, 1);
    BOTH(5, 27);
    BOTH(10, 13);
    return 0;
}
