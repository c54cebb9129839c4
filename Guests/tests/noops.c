// Instructions with no architectural effect here: NOP SSNOP EHB PAUSE-encoding SYNC (stypes)
// PREF (hints, also on unmapped/misaligned addresses: never faults) CACHE (kernel mode, kseg0
// and kseg1 addresses, misaligned) SYNCI; registers and memory are unchanged. In user mode
// CACHE raises CpU while PREF and SYNCI (on a mapped address) do not.
#include "rt.h"

static u32 buf[8] __attribute__((aligned(32))) = {1, 2, 3, 4, 5, 6, 7, 8};

static u32 u_cache(u32 addr) {
    __asm__ volatile("cache 0x15, 0(%0)" : : "r"(addr) : "memory");
    return 0;
}
static u32 u_pref(u32 addr) {
    __asm__ volatile("pref 0, 0(%0)\n\tpref 1, 4(%0)" : : "r"(addr) : "memory");
    return 0;
}
static u32 u_synci(u32 addr) {
    __asm__ volatile("synci 0(%0)" : : "r"(addr) : "memory");
    return 0;
}
static u32 u_sync(u32 addr) {
    __asm__ volatile("sync\n\tsync 0x10\n\tssnop\n\tehb" ::: "memory");
    return 0;
}

#define TRY(label, body, ...)                                                                 \
    do {                                                                                      \
        exc_clear();                                                                          \
        PROBE(body, __VA_ARGS__);                                                             \
        show_exc(label);                                                                      \
    } while (0)

int main(void) {
    install_handlers();
    u32 a = 0x11111111, b = 0x22222222, sum = 0;
    __asm__ volatile("nop\n\tssnop\n\tehb\n\t.word 0x00000140\n\tsync\n\tsync 0x4\n\tsync 0x10\n\t"
                     "sync 0x11\n\tsync 0x13\n\tsync 0x12\n\taddu %0, %1, %2"
                     : "=r"(sum) : "r"(a), "r"(b) : "memory");
    printf("nop ssnop ehb pause sync*: registers intact, %08x\n", sum);
    u32 p = (u32)buf;
    TRY("pref 0..7,25,30,31 on a kseg0 buffer",
        "pref 0, 0(%0)\n\tpref 1, 0(%0)\n\tpref 4, 4(%0)\n\tpref 5, 8(%0)\n\tpref 6, 12(%0)\n\t"
        "pref 7, 16(%0)\n\tpref 25, 0(%0)\n\tpref 30, 0(%0)\n\tpref 31, 0(%0)", : : "r"(p) : "memory");
    TRY("pref on an unmapped useg address", "pref 0, 0(%0)", : : "r"(0x12345000) : "memory");
    TRY("pref on a misaligned address", "pref 0, 3(%0)", : : "r"(p) : "memory");
    TRY("pref on kseg3 (unmapped)", "pref 0, 0(%0)", : : "r"(0xe0001000) : "memory");
    TRY("cache I-index-invalidate, D-index-wb-inv, D-hit-inv, D-hit-wb-inv, D-hit-wb",
        "cache 0x00, 0(%0)\n\tcache 0x01, 0(%0)\n\tcache 0x11, 0(%0)\n\tcache 0x15, 0(%0)\n\tcache 0x19, 0(%0)",
        : : "r"(p) : "memory");
    TRY("cache index-store-tag I/D, fill I, L2/L3 ops",
        "cache 0x08, 0(%0)\n\tcache 0x09, 0(%0)\n\tcache 0x14, 0(%0)\n\tcache 0x03, 0(%0)\n\tcache 0x02, 0(%0)",
        : : "r"(p) : "memory");
    TRY("cache on kseg1 and misaligned", "cache 0x15, 0(%0)\n\tcache 0x15, 3(%1)", : : "r"(p | 0x20000000), "r"(p) : "memory");
    TRY("synci on kseg0", "synci 0(%0)\n\tsynci 17(%0)", : : "r"(p) : "memory");
    printf("memory after all that: %x %x %x %x %x %x %x %x\n", buf[0], buf[1], buf[2], buf[3],
           buf[4], buf[5], buf[6], buf[7]);
    probe_mode(KSU_USER, u_cache, USEG(buf));
    show_exc_full("user cache 0x15 on mapped useg");
    probe_mode(KSU_USER, u_pref, USEG(buf));
    show_exc_full("user pref on mapped useg");
    probe_mode(KSU_USER, u_pref, 0x12345000);
    show_exc_full("user pref on unmapped useg");
    probe_mode(KSU_USER, u_pref, 0x80001000);
    show_exc_full("user pref on kseg0");
    probe_mode(KSU_USER, u_synci, USEG(buf));
    show_exc_full("user synci on mapped useg");
    probe_mode(KSU_USER, u_sync, 0);
    show_exc_full("user sync/ssnop/ehb");
    return 0;
}
