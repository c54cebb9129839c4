// LWL LWR at every byte alignment (little-endian), alone and as the lwr/lwl pair that loads an
// unaligned word; the untouched bytes of the destination are kept.
#include "rt.h"

static u8 buf[16] __attribute__((aligned(16))) = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
};

int main(void) {
    u8 *p = buf;
    for (u32 off = 0; off < 8; off++) {
        u32 l = 0xa1b2c3d4, r = 0xa1b2c3d4, pair = 0xa1b2c3d4;
        __asm__ volatile("lwl %0, 0(%1)" : "+r"(l) : "r"(p + off));
        __asm__ volatile("lwr %0, 0(%1)" : "+r"(r) : "r"(p + off));
        __asm__ volatile("lwr %0, 0(%1)\n\tlwl %0, 3(%1)" : "+r"(pair) : "r"(p + off));
        printf("off %u: lwl %08x lwr %08x pair(lwr 0, lwl 3) %08x\n", off, l, r, pair);
    }
    /* the opposite order of the pair gives the same word */
    for (u32 off = 0; off < 4; off++) {
        u32 w = 0;
        __asm__ volatile("lwl %0, 3(%1)\n\tlwr %0, 0(%1)" : "+r"(w) : "r"(p + off));
        printf("off %u: pair(lwl 3, lwr 0) %08x\n", off, w);
    }
    /* back-to-back LWL/LWR into the same register with a dependent use (no interlock needed) */
    u32 w = 0, x;
    __asm__ volatile(".set push\n\t.set noreorder\n\tlwr %0, 5(%2)\n\tlwl %0, 8(%2)\n\taddu %1, %0, $zero\n\t.set pop"
                     : "+r"(w), "=r"(x) : "r"(p));
    printf("lwr 5/lwl 8 then use: %08x\n", x);
    return 0;
}
