// LL/SC: success, failure after an exception return (ERET clears LLbit), SC without LL, LL
// then LL to another word then SC, a branch between LL and SC, LLAddr, misaligned LL.
// (Cases the architecture leaves unpredictable, where QEMU's choices show, are in qemu_quirks.)
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
    u32 lladdr = mfc0(C0_LLADDR);
    printf("LLAddr after ll: physical address >> 4: %s\n", lladdr == USEG(p) >> 4 ? "yes" : "no");

    reset();
    __asm__ volatile("ll %0, 0(%2)\n\tsyscall 1\n\taddiu %1, %0, 1\n\tsc %1, 0(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll; syscall+eret; sc", ll, sc);

    reset();
    __asm__ volatile("ll %0, 0(%2)\n\tli %1, 0x76\n\tsc %1, 0(%2)\n\tli %1, 0x77\n\tsc %1, 0(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll; sc; sc again (no ll)", ll, sc);

    reset();
    __asm__ volatile("ll %0, 0(%2)\n\tll %0, 4(%2)\n\tli %1, 0x70\n\tsc %1, 4(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll word0; ll word1; sc word1", ll, sc);

    /* a taken branch between ll and sc is fine */
    reset();
    __asm__ volatile(".set push\n\t.set noreorder\n\tll %0, 0(%2)\n\tb 1f\n\taddiu %1, %0, 2\n\tnop\n1:\tsc %1, 0(%2)\n\t.set pop" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show("ll; branch; sc", ll, sc);

    reset();
    ll = 0x5a5a5a5a;
    rt_badva_ref = (u32)p;
    exc_clear();
    PROBE("ll %0, 2(%1)", : "+r"(ll) : "r"(p) : "memory");
    printf("ll misaligned: rt=%08x ", ll);
    show_exc("exc");
    return 0;
}
