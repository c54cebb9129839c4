// SB SH SW at every aligned offset, read back as bytes and words; kseg0/kseg1 aliasing.
#include "rt.h"

static u8 buf[16] __attribute__((aligned(16)));

static void fill(void) {
    for (u32 i = 0; i < 16; i++) buf[i] = 0xa0 + i;
}

static void dump(const char *what) {
    printf("%-14s", what);
    for (u32 i = 0; i < 16; i++) printf(" %02x", ((volatile u8 *)buf)[i]);
    putchar('\n');
}

int main(void) {
    u8 *p = buf;
    char label[16];
    for (u32 i = 0; i < 4; i++) {
        fill();
        __asm__ volatile("sb %0, 0(%1)" : : "r"(0x12345678), "r"(p + i) : "memory");
        memcpy(label, "sb off 0", 9);
        label[7] = '0' + i;
        dump(label);
    }
    for (u32 i = 0; i < 8; i += 2) {
        fill();
        __asm__ volatile("sh %0, 0(%1)" : : "r"(0x12345678), "r"(p + i) : "memory");
        memcpy(label, "sh off 0", 9);
        label[7] = '0' + i;
        dump(label);
    }
    for (u32 i = 0; i < 16; i += 4) {
        fill();
        __asm__ volatile("sw %0, 0(%1)" : : "r"(0x12345678), "r"(p + i) : "memory");
        memcpy(label, "sw off 00", 10);
        label[7] = '0' + i / 10;
        label[8] = '0' + i % 10;
        dump(label);
    }
    fill();
    __asm__ volatile("sw %0, -4(%1)\n\tsh %0, -6(%1)\n\tsb %0, -7(%1)" : : "r"(0xcafebabe), "r"(p + 16) : "memory");
    dump("negative disp");
    fill();
    __asm__ volatile("sw %0, 8(%1)" : : "r"(0x89abcdef), "r"((u32)p | 0x20000000) : "memory");
    dump("sw via kseg1");
    u32 w;
    __asm__ volatile("sw %1, 0(%2)\n\tlw %0, 0(%2)" : "=&r"(w) : "r"(0x01020304), "r"(p) : "memory");
    printf("store then load: %08x\n", w);
    __asm__ volatile("sw $zero, 4(%0)" : : "r"(p) : "memory");
    dump("sw $zero");
    return 0;
}
