// DIV DIVU: quotient in LO, remainder in HI (sign of the dividend), INT_MIN/-1, and divide by
// zero (architecturally UNPREDICTABLE HI/LO: QEMU's values are printed; no exception).
#include "rt.h"

static const u32 vals[] = {
    0x00000000, 0x00000001, 0x00000007, 0xfffffff9, 0xffffffff, 0x7fffffff, 0x80000000,
    0x00000002, 0xfffffffe, 0x12345678, 0x00010000,
};

int main(void) {
    install_handlers();
    puts("a        b        | div hi   lo       | divu hi  lo");
    for (u32 i = 0; i < countof(vals); i++)
        for (u32 j = 0; j < countof(vals); j++) {
            u32 a = vals[i], b = vals[j], shi, slo, uhi, ulo;
            /* preload HI/LO so a division by zero shows whether they are written */
            __asm__ volatile("mthi %4\n\tmtlo %4\n\tdiv $zero, %2, %3\n\tmfhi %0\n\tmflo %1"
                             : "=r"(shi), "=r"(slo) : "r"(a), "r"(b), "r"(0x5a5a5a5a));
            __asm__ volatile("mthi %4\n\tmtlo %4\n\tdivu $zero, %2, %3\n\tmfhi %0\n\tmflo %1"
                             : "=r"(uhi), "=r"(ulo) : "r"(a), "r"(b), "r"(0x5a5a5a5a));
            printf("%08x %08x | %08x %08x | %08x %08x%s\n", a, b, shi, slo, uhi, ulo,
                   b == 0 ? "  (b=0: unpredictable)" : "");
        }
    volatile u32 zero = 0;
    exc_clear();
    PROBE("div $zero, %0, %1\n\tdivu $zero, %0, %1", : : "r"(5), "r"(zero) : "memory");
    show_exc("div/divu by zero raises");
    return 0;
}
