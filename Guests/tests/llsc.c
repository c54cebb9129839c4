// LL/SC: success, failure after an exception return (ERET clears LLbit), SC without LL,
// SC to another address, stores between LL and SC, LLAddr, misaligned LL/SC.
#include "rt.h"

static volatile u32 words[4] __attribute__((aligned(16)));

static void reset(void) {
    words[0] = 0x1000;
    words[1] = 0x2000;
    words[2] = 0x3000;
    words[3] = 0x4000;
}

static void show(const char *what, u32 ll, u32 sc) {
    printf("%-34s ll=%08x sc=%u mem=%08x %08x\n", what, ll, sc, words[0], words[1]);
}

int main(void) {
    install_handlers();
    volatile u32 *p = words;
    u32 ll, sc;

    reset();
    __asm__ volatile("ll %0, 0(%2)\n\taddiu %1, %0, 1\n\tsc %1, 0(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll; sc same word", ll, sc);
    printf("LLAddr after ll (physical %08x): %08x\n", USEG(p), mfc0(C0_LLADDR));

    reset();
    __asm__ volatile("ll %0, 0(%2)\n\tsyscall 1\n\taddiu %1, %0, 1\n\tsc %1, 0(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll; syscall+eret; sc", ll, sc);
    printf("LLAddr after the eret: %08x\n", mfc0(C0_LLADDR));

    reset();
    __asm__ volatile("ll %0, 0(%2)\n\tli %1, 0x76\n\tsc %1, 0(%2)\n\tli %1, 0x77\n\tsc %1, 0(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll; sc; sc again (no ll)", ll, sc);

    reset();
    __asm__ volatile("ll %0, 0(%2)\n\tli %1, 0x55\n\tsc %1, 4(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll word0; sc word1", ll, sc);

    reset();
    __asm__ volatile("ll %0, 0(%2)\n\tli %1, 0x66\n\tsw %1, 0(%2)\n\tli %1, 0x67\n\tsc %1, 0(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll; sw other value same word; sc", ll, sc);

    reset();
    __asm__ volatile("ll %0, 0(%2)\n\tsw %0, 0(%2)\n\tli %1, 0x68\n\tsc %1, 0(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll; sw same value same word; sc", ll, sc);

    reset();
    __asm__ volatile("ll %0, 0(%2)\n\tli %1, 0x69\n\tsw %1, 4(%2)\n\tsc %1, 0(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll; sw other word; sc", ll, sc);

    reset();
    __asm__ volatile("ll %0, 0(%2)\n\tll %0, 4(%2)\n\tli %1, 0x70\n\tsc %1, 4(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll word0; ll word1; sc word1", ll, sc);

    reset();
    __asm__ volatile("ll %0, 0(%2)\n\tll %0, 4(%2)\n\tli %1, 0x71\n\tsc %1, 0(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll word0; ll word1; sc word0", ll, sc);

    /* LL through kseg1, SC through kseg0 (same physical word) */
    reset();
    __asm__ volatile("ll %0, 0(%2)\n\tli %1, 0x72\n\tsc %1, 0(%3)" : "=&r"(ll), "=&r"(sc) : "r"((u32)p | 0x20000000), "r"(p) : "memory");
    show("ll via kseg1; sc via kseg0", ll, sc);

    /* a taken branch between ll and sc is fine */
    reset();
    __asm__ volatile(".set push\n\t.set noreorder\n\tll %0, 0(%2)\n\tb 1f\n\taddiu %1, %0, 2\n\tnop\n1:\tsc %1, 0(%2)\n\t.set pop" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll; branch; sc", ll, sc);

    reset();
    ll = 0x5a5a5a5a;
    exc_clear();
    PROBE("ll %0, 2(%1)", : "+r"(ll) : "r"(p) : "memory");
    printf("ll misaligned: rt=%08x ", ll);
    show_exc("exc");
    sc = 0x5a5a5a5a;
    exc_clear();
    PROBE("ll $t0, 0(%1)\n\tsc %0, 1(%1)", : "+r"(sc) : "r"(p) : "t0", "memory");
    printf("sc misaligned: rt=%08x mem=%08x ", sc, words[0]);
    show_exc("exc");
    return 0;
}
