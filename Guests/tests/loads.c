// LB LBU LH LHU LW: sign/zero extension, every aligned offset, negative displacements,
// and loads through kseg1 (uncached alias of the same memory).
#include "rt.h"

static u8 buf[16] __attribute__((aligned(16))) = {
    0x01, 0x82, 0x7f, 0xff, 0x80, 0x00, 0x34, 0x12, 0xef, 0xbe, 0xad, 0xde, 0x00, 0x80, 0xff, 0x7f,
};

int main(void) {
    u8 *p = buf;
    for (u32 i = 0; i < 16; i++) {
        u32 b, bu;
        __asm__ volatile("lb %0, 0(%2)\n\tlbu %1, 0(%2)" : "=r"(b), "=r"(bu) : "r"(p + i));
        printf("off %2u: lb %08x lbu %08x\n", i, b, bu);
    }
    for (u32 i = 0; i < 16; i += 2) {
        u32 h, hu;
        __asm__ volatile("lh %0, 0(%2)\n\tlhu %1, 0(%2)" : "=r"(h), "=r"(hu) : "r"(p + i));
        printf("off %2u: lh %08x lhu %08x\n", i, h, hu);
    }
    for (u32 i = 0; i < 16; i += 4) {
        u32 w;
        __asm__ volatile("lw %0, 0(%1)" : "=r"(w) : "r"(p + i));
        printf("off %2u: lw %08x\n", i, w);
    }
    u32 a, b, c, d;
    __asm__ volatile("lw %0, -4(%4)\n\tlh %1, -2(%4)\n\tlbu %2, -1(%4)\n\tlb %3, -3(%4)"
                     : "=r"(a), "=r"(b), "=r"(c), "=r"(d) : "r"(p + 16));
    printf("negative offsets from end: lw -4 %08x lh -2 %08x lbu -1 %08x lb -3 %08x\n", a, b, c, d);
    __asm__ volatile("lw %0, 0x7ffc(%1)" : "=r"(a) : "r"(p + 12 - 0x7ffc));
    printf("lw with displacement 0x7ffc: %08x\n", a);
    __asm__ volatile("lw %0, -0x8000(%1)" : "=r"(a) : "r"(p + 0x8000));
    printf("lw with displacement -0x8000: %08x\n", a);
    u32 uncached = (u32)p | 0x20000000; /* kseg0 -> kseg1 alias */
    __asm__ volatile("lw %0, 4(%1)" : "=r"(a) : "r"(uncached));
    printf("lw via kseg1 alias: %08x\n", a);
    /* load into $zero is discarded */
    __asm__ volatile("lw $zero, 0(%1)\n\tmove %0, $zero" : "=r"(a) : "r"(p));
    printf("lw $zero: $zero = %x\n", a);
    /* load-use: the loaded value is available to the next instruction (no load delay slot) */
    __asm__ volatile(".set push\n\t.set noreorder\n\tlw %0, 0(%1)\n\taddiu %0, %0, 1\n\t.set pop" : "=&r"(a) : "r"(p));
    printf("lw then addiu on the same register: %08x\n", a);
    return 0;
}
