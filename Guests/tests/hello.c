// Smoke test of the runtime: console output, printf formats, a trap through the common stub.
#include "rt.h"

int main(void) {
    puts("hello from the guest");
    printf("hex %x %08x %X, dec %d %d %u, str [%s] [%5s], char %c, pct %%\n", 0xbeef, 0x1234,
           0xabcdef, -42, 0x7fffffff, 0xffffffffu, "s", "ab", 'Z');
    printf("min int %d, padded %05d %5u\n", (s32)0x80000000, -12, 7);
    printf("status at entry %08x\n", mfc0(C0_STATUS));
    install_handlers();
    printf("status after install_handlers %08x ebase %08x\n", mfc0(C0_STATUS), mfc0(C0_EBASE));
    exc_clear();
    PROBE("teq $zero, $zero", ::: "memory");
    show_exc_full("teq $0,$0");
    exc_clear();
    PROBE("break 7", ::: "memory");
    show_exc_full("break 7");
    return 0;
}
