/* teachos built-in user programs. Each runs as its own process, in user mode, in its own
 * address space; main(arg) returns its exit status. Output must not depend on timing, except
 * on lines that begin with "timing:". */
#include "user.h"

/* ---- cpu: CPU-bound, never makes a system call until it prints; the timer preempts it ---- */
int prog_cpu(int arg) {
    (void)arg;
    u32 count = 0, sum = 0;
    for (u32 n = 2; n < 30000; n++) {
        int prime = 1;
        for (u32 d = 2; d * d <= n; d++)
            if (n % d == 0) {
                prime = 0;
                break;
            }
        if (prime) count++, sum += n;
    }
    uprintf("primes below 30000: %u, their sum %u\n", count, sum);
    return 0;
}

/* ---- syscalls: thousands of system calls ---------------------------------------------- */
int prog_syscalls(int arg) {
    (void)arg;
    int pid = getpid(), pid_ok = 1, time_ok = 1, sbrk_ok = 1;
    u32 t0 = time(), last = t0, yields = 0;
    for (int i = 0; i < 1000; i++) {
        if (getpid() != pid) pid_ok = 0;
        u32 t = time();
        if ((s32)(t - last) < 0) time_ok = 0;
        last = t;
        if (i % 10 == 9) yield(), yields++;
    }
    char *a = sbrk(0), *b = sbrk(8192), *c = sbrk(0);
    if (a != b || c != a + 8192 || sbrk(-4) != (void *)-1) sbrk_ok = 0;
    b[0] = 1, b[8191] = 2; /* two demand-zero heap pages */
    if (b[1] || b[8190]) sbrk_ok = 0;
    for (int i = 0; i < 40; i++) write(1, i % 10 == 9 ? "|" : ".", 1);
    write(1, "\n", 1);
    uprintf("1000 getpid %s, 1000 time %s, %u yields, sbrk %s, bad fd %d\n",
            pid_ok ? "ok" : "WRONG", time_ok ? "monotonic" : "NOT MONOTONIC", yields,
            sbrk_ok ? "ok" : "WRONG", write(7, "x", 1));
    uprintf("timing: %u ticks\n", time() - t0);
    return 0;
}

/* ---- memory: a 2 MiB working set, sixteen times the TLB's reach ---------------------- */
#define MEM_PAGES 512
#define PASSES 8

static u32 stack_probe(int depth) {
    volatile u32 frame[256]; /* 1 KiB a level: the stack grows on demand too */
    for (int i = 0; i < 256; i++) frame[i] = (u32)depth * 0x01000193u + (u32)i;
    u32 sum = depth ? stack_probe(depth - 1) : 0;
    return sum + frame[(depth * 37) & 255];
}

int prog_memory(int arg) {
    (void)arg;
    u32 *base = sbrk(MEM_PAGES * 4096);
    if (base == (void *)-1) {
        uprintf("sbrk failed\n");
        return 1;
    }
    int zero_ok = 1, data_ok = 1;
    for (u32 p = 0; p < MEM_PAGES; p++) {
        u32 *w = base + p * 1024;
        if (w[0] || w[1023]) zero_ok = 0;
        for (u32 k = 0; k < 16; k++) w[k * 64] = (p << 8 | k) ^ 0x5A5A0000u;
    }
    u32 sum = 0;
    for (u32 pass = 1; pass <= PASSES; pass++) {
        for (u32 i = 0; i < MEM_PAGES; i++) {
            u32 p = (i * 97 + pass * 31) % MEM_PAGES; /* scattered: defeats the TLB */
            u32 *w = base + p * 1024;
            u32 k = (i + pass) & 15;
            if (w[k * 64] != ((p << 8 | k) ^ 0x5A5A0000u)) data_ok = 0;
            sum = sum * 31 + w[k * 64];
        }
    }
    u32 stack = stack_probe(48);
    uprintf("%u pages (%u KiB) zero-filled on demand: %s; %u scattered passes: %s\n", MEM_PAGES,
            MEM_PAGES * 4, zero_ok ? "ok" : "NOT ZERO", PASSES, data_ok ? "ok" : "CORRUPT");
    uprintf("checksum 0x%08x, stack probe 0x%08x (48 KiB deep)\n", sum, stack);
    return 0;
}

/* ---- sleeper: sleeps most of the time, so the kernel idles ----------------------------- */
/* 80 ticks in all: longer than the others need, so the kernel is idle at the end. */
#define NAPS 8
#define NAP_TICKS 10
int prog_sleeper(int arg) {
    (void)arg;
    u32 total = 0;
    for (int nap = 1; nap <= NAPS; nap++) {
        u32 t0 = time();
        sleep(NAP_TICKS);
        u32 dt = time() - t0;
        total += dt;
        uprintf("nap %d: %s %d ticks\n", nap, dt >= NAP_TICKS ? "slept at least" : "WOKE BEFORE",
                NAP_TICKS);
    }
    uprintf("timing: %d naps took %u ticks\n", NAPS, total);
    return 0;
}

/* ---- cow: initialised data is shared copy-on-write, .bss is per-process ---------------- */
static int counter = 1000;
static char motto[] = "ceci n'est pas une page";
static volatile u32 zeros[2048]; /* 8 KiB of .bss */

int prog_cow(int arg) {
    int before = counter;
    counter += arg * 10; /* the first store: TLB modified, the kernel copies the page */
    motto[0] = 'C';
    for (int i = 0; i < 2048; i += 512) zeros[i] += (u32)arg;
    for (int i = 0; i < 4; i++) yield(); /* the other instance writes its own copy */
    int ok = counter == before + arg * 10;
    for (int i = 0; i < 2048; i += 512)
        if (zeros[i] != (u32)arg) ok = 0;
    uprintf("instance %d: counter %d -> %d, \"%s\", private copies %s\n", arg, before, counter,
            motto, ok ? "intact" : "DISTURBED");
    return 0;
}

/* ---- bad: does something a user program may not do; the kernel kills it ---------------- */
static const char *const bad_what[] = {
    [BAD_KERNEL_MEMORY] = "read kernel memory at 0x80000000",
    [BAD_RESERVED_INSTRUCTION] = "execute a reserved instruction",
    [BAD_TRAP] = "execute a trap (teq)",
    [BAD_OVERFLOW] = "overflow a signed add",
    [BAD_WRITE_TEXT] = "write to its own code",
    [BAD_NULL] = "dereference a null pointer",
    [BAD_PRIVILEGED] = "read a CP0 register (mfc0 Status)",
};

int prog_bad(int kind) {
    u32 x = 0;
    uprintf("about to %s\n", bad_what[kind]);
    switch (kind) {
    case BAD_KERNEL_MEMORY: x = *(volatile u32 *)0x80000000u; break;
    case BAD_RESERVED_INSTRUCTION: __asm__ volatile(".word 0xfc000000"); break; /* sd: MIPS64 */
    case BAD_TRAP: __asm__ volatile("teq $zero, $zero"); break;
    case BAD_OVERFLOW: {
        s32 a = 0x7FFFFFFF;
        __asm__ volatile("add %0, %0, %1" : "+r"(a) : "r"(1));
        x = (u32)a;
        break;
    }
    case BAD_WRITE_TEXT: *(volatile u32 *)(u32)prog_bad = 0; break;
    case BAD_NULL: {
        volatile u32 *np;
        __asm__("" : "=r"(np) : "0"(0)); /* hide the null from the compiler */
        x = *np;
        break;
    }
    case BAD_PRIVILEGED: __asm__ volatile("mfc0 %0, $12" : "=r"(x)); break;
    }
    uprintf("still alive (0x%x): the kernel did not stop me\n", x);
    return 1;
}
