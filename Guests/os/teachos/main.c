/* teachos: boot. Parse the boot arguments, install the exception vectors, set up memory,
 * create the processes and start the scheduler. */
#include "kernel.h"
#include "programs.h"

struct kstats kstats __attribute__((aligned(16))) = {
    .magic = 0x3154534B, /* "KST1" */
    .version = 1,
    .size = sizeof(struct kstats),
};

extern u32 tlb_entries;
extern int live_echo;
extern char _utext_start[], _utext_end[], _udata_start[], _udata_end[];
extern char _ubss_start[], _ubss_end[];

#define EBASE 0x80000000u

static char cmdline[256];
static const char *const idle_names[] = {"spin", "wait", "hypercall"};

enum { HV_IDLE = 1, HV_CONSOLE = 2, HV_TLB = 4 };

int pv_comm;

/* Copy argv[1] (the -append string) if the registers look like a Malta boot stub's. */
static void get_cmdline(u32 argc, char **argv) {
    if (argc < 2 || argc > 64 || (u32)argv < KSEG0 || (u32)argv >= KSEG1) return;
    const char *s = argv[1];
    if ((u32)s < KSEG0 || (u32)s >= KSEG1) return;
    u32 n = 0;
    while (s[n] && n < sizeof cmdline - 1) {
        cmdline[n] = s[n];
        n++;
    }
    cmdline[n] = 0;
}

static int word_is(const char *w, u32 len, const char *s) {
    return kstrlen(s) == len && !kstrncmp(w, s, len);
}

/* Boot arguments: idle=spin|wait|hypercall, hv=LIST (idle,console,tlb; "none"), pv=comm,
 * live. */
static void parse_cmdline(int *idle_req, int *hv_req, int *hv_given, int *pv_req) {
    const char *s = cmdline;
    while (*s) {
        while (*s == ' ') s++;
        const char *w = s;
        while (*s && *s != ' ') s++;
        u32 len = (u32)(s - w);
        if (len > 5 && !kstrncmp(w, "idle=", 5)) {
            for (int i = 0; i < 3; i++)
                if (word_is(w + 5, len - 5, idle_names[i])) *idle_req = i;
        } else if (len >= 3 && !kstrncmp(w, "hv=", 3)) {
            *hv_given = 1;
            const char *f = w + 3;
            while (f < s) {
                const char *g = f;
                while (g < s && *g != ',') g++;
                if (word_is(f, (u32)(g - f), "idle")) *hv_req |= HV_IDLE;
                if (word_is(f, (u32)(g - f), "console")) *hv_req |= HV_CONSOLE;
                if (word_is(f, (u32)(g - f), "tlb")) *hv_req |= HV_TLB;
                f = g + (g < s);
            }
        } else if (word_is(w, len, "pv=comm")) {
            *pv_req = 1;
        } else if (word_is(w, len, "live")) {
            live_echo = 1;
        }
    }
}

static void install(u32 offset, const u32 *start, const u32 *end) {
    u32 *dst = (u32 *)(EBASE + offset);
    u32 n = (u32)(end - start);
    for (u32 i = 0; i < n; i++) dst[i] = start[i];
    /* Make the instruction cache see the new code (a no-op on QEMU, needed on silicon). */
    for (u32 a = (u32)dst & ~31u; a < (u32)(dst + n); a += 32)
        __asm__ volatile("synci 0(%0)" : : "r"(a) : "memory");
    __asm__ volatile("sync\n\tehb" ::: "memory");
}

int main(u32 argc, char **argv, char **envp, u32 memsize) {
    (void)envp;
    get_cmdline(argc, argv);
    int idle_req = IDLE_SPIN, hv_req = 0, hv_given = 0, pv_req = 0;
    parse_cmdline(&idle_req, &hv_req, &hv_given, &pv_req);
    if (idle_req == IDLE_HYPERCALL) hv_req |= HV_IDLE | (hv_given ? 0 : HV_CONSOLE | HV_TLB);

    kprintf("teachos: a small teaching OS on a MIPS32r2 Malta\n");
    tlb_init();
    kprintf("cpu: PRId 0x%08x, %u TLB entries, %u MiB of RAM\n", mfc0(CP0_PRID), tlb_entries,
            memsize >> 20);
    kprintf("timing: boot: command line \"%s\"\n", cmdline);

    /* The para-virtual probe: 'MGRT' from Magritte's VMM, 0 on bare hardware. */
    u32 probe = 0;
    if (hv_req || pv_req) {
        kstats.hypercalls++;
        probe = hypercall(HC_PROBE, 0, 0, 0);
    }
    int hv = probe == HC_MAGIC;
    idle_mode = idle_req == IDLE_HYPERCALL && !hv ? IDLE_SPIN : idle_req;
    hv_tlb = hv && (hv_req & HV_TLB);
    if (idle_req == IDLE_HYPERCALL && !hv)
        kprintf("timing: idle: requested hypercall, unavailable (no VMM): spinning\n");
    else
        kprintf("timing: idle: requested %s, effective %s\n", idle_names[idle_req],
                idle_names[idle_mode]);
    if (hv_req)
        kprintf("timing: hypercalls: probe 0x%08x, console %s, tlb refill %s\n", probe,
                hv && (hv_req & HV_CONSOLE) ? "on" : "off", hv_tlb ? "on" : "off");

    /* The comm page: the VMM keeps EPC, Status, Cause, BadVAddr, EntryHi, ... there. */
    if (pv_req) {
        u32 r = (u32)-1;
        if (hv) {
            kstats.hypercalls++;
            r = hypercall(HC_COMMPAGE, (u32)commpage - KSEG0, 0, 0);
        }
        pv_comm = r == 0;
        if (!hv)
            kprintf("timing: pv: requested comm page, unavailable (no VMM)\n");
        else
            kprintf("timing: pv: comm page at 0x%08x: %s (0x%08x)\n", (u32)commpage,
                    pv_comm ? "on" : "refused", r);
    }

    /* Trap handlers: write the vectors, point EBase at them, leave the boot vectors (BEV). */
    if (hv_tlb)
        install(0x000, refill_hv_stub, refill_hv_stub_end);
    else if (pv_comm)
        install(0x000, refill_comm, refill_comm_end);
    else
        install(0x000, refill_bare, refill_bare_end);
    const u32 *general = pv_comm ? general_comm_stub : general_stub;
    const u32 *general_end = pv_comm ? general_comm_stub_end : general_stub_end;
    install(0x180, general, general_end);
    install(0x200, general, general_end);
    mtc0(CP0_EBASE, EBASE);
    mtc0(CP0_CAUSE, 0); /* IV = 0: interrupts use the general vector too */
    mtc0(CP0_STATUS, mfc0(CP0_STATUS) & ~(ST_BEV | ST_IE | ST_EXL | ST_ERL | ST_KSU_MASK));
    kprintf("vectors: TLB refill at 0x%08x, general exception at 0x%08x, BEV cleared\n", EBASE,
            EBASE + 0x180);
    hv_console = hv && (hv_req & HV_CONSOLE); /* from here on */

    vm_init(memsize);
    kprintf("memory: user image 0x%08x-0x%08x (text %u pages, data %u, bss %u), "
            "%u free frames\n",
            (u32)_utext_start, (u32)_ubss_end,
            (u32)(_utext_end - _utext_start) >> PAGE_SHIFT,
            (u32)(_udata_end - _udata_start) >> PAGE_SHIFT,
            (u32)(_ubss_end - _ubss_start) >> PAGE_SHIFT, frames_free());

    for (int i = 0; programs[i].name; i++)
        proc_spawn(programs[i].name, programs[i].main, programs[i].arg);
    kprintf("timer: a tick every %u Count cycles; each tick ends the time slice\n", TICK_CYCLES);
    kprintf("teachos: starting %u processes\n", kstats.processes);
    timer_init();
    sched_start();
}

#ifdef TEACHOS_FAKE_HV
/* Self-test build (TEACHOS_FAKE_HV): a pretend VMM for the para-virtual paths. */
static void fake_uart(const char *s, u32 n) {
    for (u32 i = 0; i < n; i++) {
        while (!(*(volatile u8 *)0xB80003FDu & 0x20)) continue;
        *(volatile u8 *)0xB80003F8u = (u8)s[i];
    }
}
u32 fake_hypercall(u32 fn, u32 a1, u32 a2, u32 a3) {
    (void)a3;
    switch (fn) {
    case HC_PROBE: return HC_MAGIC;
    case HC_IDLE: __asm__ volatile("wait"); return 0;
    case HC_CONSOLE: fake_uart((const char *)a1, a2); return a2;
    case HC_COMMPAGE: return (u32)-1; /* a comm page needs a VMM that keeps it */
    default: return 0;
    }
}
#endif
