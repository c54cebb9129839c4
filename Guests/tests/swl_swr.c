// SWL SWR at every byte alignment (little-endian), alone and as the swr/swl pair that stores
// an unaligned word; the other bytes of memory are kept.
#include "rt.h"

static u8 buf[16] __attribute__((aligned(16)));

static void fill(void) {
    for (u32 i = 0; i < 16; i++) buf[i] = 0xa0 + i;
}

static void dump(const char *what, u32 off) {
    printf("%s off %u:", what, off);
    for (u32 i = 0; i < 12; i++) printf(" %02x", ((volatile u8 *)buf)[i]);
    putchar('\n');
}

int main(void) {
    u8 *p = buf;
    for (u32 off = 0; off < 8; off++) {
        fill();
        __asm__ volatile("swl %0, 0(%1)" : : "r"(0x44332211), "r"(p + off) : "memory");
        dump("swl ", off);
    }
    for (u32 off = 0; off < 8; off++) {
        fill();
        __asm__ volatile("swr %0, 0(%1)" : : "r"(0x44332211), "r"(p + off) : "memory");
        dump("swr ", off);
    }
    for (u32 off = 0; off < 8; off++) {
        fill();
        __asm__ volatile("swr %0, 0(%1)\n\tswl %0, 3(%1)" : : "r"(0x44332211), "r"(p + off) : "memory");
        dump("pair", off);
    }
    return 0;
}
