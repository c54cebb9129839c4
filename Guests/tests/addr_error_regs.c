// Address errors and EntryHi/Context: a segment violation (user or supervisor touching a segment
// its mode may not use, by load, store or fetch) sets EntryHi.VPN2 (keeping the ASID) and
// Context.BadVPN2 from the bad address, as a TLB exception does; a misaligned access (kernel,
// supervisor or user) sets only BadVAddr and leaves both unchanged.
#include "rt.h"

static const u32 HI = 0x00ffe000u | 0x2a; /* VPN2 0x00ffe, ASID 0x2a */
static const u32 PTEBASE = 0x7f800000u;

static void setup(void) {
    mtc0(C0_ENTRYHI, HI);
    mtc0(C0_CONTEXT, PTEBASE);
}

static void show(const char *what) {
    printf("%-30s ", what);
    if (!rt_exc.count) {
        printf("no exception\n");
        return;
    }
    u32 code = CA_EXC(rt_exc.cause);
    printf("%s badva=%08x entryhi=%08x context=%08x\n", exc_name(code), rt_exc.badvaddr, rt_exc.entryhi,
           rt_exc.context);
}

/* A probe in kernel mode (PROBE's arguments after the label). */
#define K(what, ...)          \
    do {                      \
        setup();              \
        exc_clear();          \
        PROBE(__VA_ARGS__);   \
        show(what);           \
    } while (0)

int main(void) {
    install_handlers();
    tlb_clear_all();
    setup();
    printf("before: entryhi=%08x context=%08x\n", mfc0(C0_ENTRYHI), mfc0(C0_CONTEXT));

    /* Kernel mode: every segment is allowed, only misalignment is an address error. */
    u32 d = 0;
    K("kernel lw 80001002", "lw %0, 2(%1)", : "+r"(d) : "r"(0x80001000) : "memory");
    K("kernel sh c0123001", "sh %0, 1(%1)", : : "r"(d), "r"(0xc0123000) : "memory");
    K("kernel lw 80001000 (fine)", "lw %0, 0(%1)", : "+r"(d) : "r"(0x80001000) : "memory");

    /* User and supervisor mode: a segment the mode may not use, or a misaligned address. */
    static const struct {
        const char *what;
        u32 ksu;
        u32 (*fn)(u32);
        u32 addr;
    } probes[] = {
        {"user lw kseg0 80123458", KSU_USER, probe_lw, 0x80123458},
        {"user lhu kseg1 a0fed002", KSU_USER, probe_lhu, 0xa0fed002},
        {"user lw kseg2 c4567ffc", KSU_USER, probe_lw, 0xc4567ffc},
        {"user sw kseg3 e89ab004", KSU_USER, probe_sw, 0xe89ab004},
        {"user jump kseg0 80100000", KSU_USER, probe_jalr, 0x80100000},
        {"user lw useg misaligned", KSU_USER, probe_lw, 0x00100002},
        {"user sw useg misaligned", KSU_USER, probe_sw, 0x00100001},
        {"super lw kseg0 80345678", KSU_SUPER, probe_lw, 0x80345678},
        {"super sw kseg1 b8000000", KSU_SUPER, probe_sw, 0xb8000000},
        {"super lw kseg3 fffff000", KSU_SUPER, probe_lw, 0xfffff000},
        {"super jump kseg1 a0100000", KSU_SUPER, probe_jalr, 0xa0100000},
        {"super lw sseg misaligned", KSU_SUPER, probe_lw, 0xc0000003},
        {"super lhu useg misaligned", KSU_SUPER, probe_lhu, 0x00100001},
    };
    for (unsigned i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        setup();
        probe_mode(probes[i].ksu, probes[i].fn, probes[i].addr);
        show(probes[i].what);
    }

    printf("after: entryhi asid=%02x\n", mfc0(C0_ENTRYHI) & 0xff);
    return 0;
}
