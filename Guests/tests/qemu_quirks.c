// Where QEMU's 24Kc differs from a real 24Kc or chooses among UNPREDICTABLE outcomes: kept
// apart so an emulator can decide to match QEMU here or not. Never-taken branches translated as
// NOPs (BD=0 for their "slot"), reserved encodings executed as NOPs (MDMX, DSP, BSHFL,
// MFTR/MTTR, TLBINV), the COP2
// opcode raising RI (not CpU), RDHWR $29 without Config3.ULRI, SC's virtual-address and value
// checks (and no address checks when they fail), CACHE/SYNCI without TLB checks, LLAddr after ERET.
#include "rt.h"

static volatile u32 words[4] __attribute__((aligned(16)));
static u32 page[1024] __attribute__((aligned(4096)));

static void reset(void) {
    words[0] = 0x1000;
    words[1] = 0x2000;
}

static void show_sc(const char *what, u32 ll, u32 sc) {
    printf("%-38s ll=%08x sc=%u mem=%08x %08x ", what, ll, sc, words[0], words[1]);
    show_exc("exc");
}

static u32 u_rdhwr29(u32 arg) {
    u32 v = 0x5a5a5a5a;
    __asm__ volatile("rdhwr %0, $29" : "+r"(v));
    return v;
}

struct word { u32 w; const char *what; };
static const struct word words_nop[] = {
    {0x00000005, "SPECIAL funct 0x05, rd=0"},
    {0x00004005, "SPECIAL funct 0x05, rd=t0"},
    {0x78000000, "opcode 0x1e (MDMX)"},
    {0x7c000010, "SPECIAL3 ADDU.QB (DSP) rd=0"},
    {0x7c000038, "SPECIAL3 EXTR.W (DSP) rt=0"},
    {0x7c000060, "BSHFL sa 0x01 rd=0"},
    {0x41000000, "COP0 rs 0x08 (MFTR) rt=0"},
    {0x41080000, "COP0 rs 0x08 (MFTR) rt=t0"},
    {0x41880000, "COP0 rs 0x0c (MTTR)"},
    {0x48024000, "mfc2 v0, $8"},
    {0x48824000, "mtc2 v0, $8"},
    {0x48420000, "cfc2 v0, $0"},
    {0x4a000000, "COP2 co-op"},
    {0x49000001, "bc2f +4"},
};

int main(void) {
    install_handlers();
    tlb_clear_all();

    puts("-- branches that can never be taken: QEMU emits no branch, the next word is no slot");
    exc_clear(); PROBE("bne $t0, $t0, 9f\n\tbreak 1\n\tnop", ::: "memory"); show_exc("bne $t0,$t0; break");
    exc_clear(); PROBE("bltz $zero, 9f\n\tbreak 1\n\tnop", ::: "memory"); show_exc("bltz $0; break");
    exc_clear(); PROBE("bgtz $zero, 9f\n\tbreak 1\n\tnop", ::: "memory"); show_exc("bgtz $0; break");
    exc_clear(); PROBE("bne $zero, $zero, 9f\n\tbreak 1\n\tnop", ::: "memory"); show_exc("bne $0,$0; break");
    exc_clear(); PROBE("bltzal $zero, 9f\n\tbreak 1\n\tnop", ::: "ra", "memory"); show_exc("bltzal $0; break (a real slot)");
    exc_clear(); PROBE("beq $t0, $t0, 9f\n\tbreak 1\n\tnop", ::: "memory"); show_exc("beq $t0,$t0; break (taken)");

    puts("-- reserved encodings QEMU executes (a 24Kc raises RI; the COP2 opcode: CpU CE=2)");
    for (u32 i = 0; i < countof(words_nop); i++) {
        exc_clear();
        run_word(words_nop[i].w);
        printf("%08x %-34s", words_nop[i].w, words_nop[i].what);
        show_exc_full("");
    }
    /* COP0 funct 0x03 is TLBINV; QEMU treats it as a NOP when Config4.IE is 0 */
    mtc0(C0_ENTRYHI, 0x00000011);
    tlb_write_index(1, 0x01000011, ELO(USEG(page), ELO_V), ELO(USEG(page), ELO_V), PM_4K);
    tlb_write_index(2, 0x01002011, ELO(USEG(page), ELO_V | ELO_G), ELO(USEG(page), ELO_V | ELO_G), PM_4K);
    tlb_write_index(3, 0x01004022, ELO(USEG(page), ELO_V), ELO(USEG(page), ELO_V), PM_4K);
    exc_clear();
    run_word(0x42000003);
    printf("42000003 COP0 funct 0x03 (TLBINV)          ");
    show_exc_full("");
    printf("  tlbp afterwards (entries untouched): ASID-11 entry %08x, global %08x, ASID-22 entry %08x\n",
           tlb_probe(0x01000011), tlb_probe(0x01002011), tlb_probe(0x01004022));
    tlb_clear_all();

    puts("-- RDHWR $29 (UserLocal) although Config3.ULRI=0 (a 24Kc raises RI)");
    u32 v;
    exc_clear();
    v = 0x5a5a5a5a;
    __asm__ volatile("rdhwr %0, $29" : "+r"(v));
    printf("kernel rdhwr $29: %08x ", v);
    show_exc("exc");
    v = probe_mode(KSU_USER, u_rdhwr29, 0);
    printf("user rdhwr $29: %08x ", v);
    show_exc("exc");
    mtc0(C0_STATUS, mfc0(C0_STATUS) | ST_CU0);
    v = probe_mode(KSU_USER, u_rdhwr29, 0);
    mtc0(C0_STATUS, mfc0(C0_STATUS) & ~ST_CU0);
    printf("user rdhwr $29 with CU0=1: %08x ", v);
    show_exc("exc");

    puts("-- SC: QEMU compares the virtual LL address, then the value LL read, before any check");
    volatile u32 *p = words;
    u32 ll, sc;
    reset(); exc_clear();
    __asm__ volatile("ll %0, 0(%2)\n\tli %1, 0x55\n\tsc %1, 4(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show_sc("ll word0; sc word1", ll, sc);
    reset(); exc_clear();
    __asm__ volatile("ll %0, 0(%2)\n\tll %0, 4(%2)\n\tli %1, 0x71\n\tsc %1, 0(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show_sc("ll word0; ll word1; sc word0", ll, sc);
    reset(); exc_clear();
    __asm__ volatile("ll %0, 0(%2)\n\tli %1, 0x72\n\tsc %1, 0(%3)" : "=&r"(ll), "=&r"(sc) : "r"((u32)p | 0x20000000), "r"(p) : "memory");
    show_sc("ll via kseg1; sc via kseg0", ll, sc);
    reset(); exc_clear();
    __asm__ volatile("ll %0, 0(%2)\n\tli %1, 0x66\n\tsw %1, 0(%2)\n\tli %1, 0x67\n\tsc %1, 0(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show_sc("ll; sw other value same word; sc", ll, sc);
    reset(); exc_clear();
    __asm__ volatile("ll %0, 0(%2)\n\tsw %0, 0(%2)\n\tli %1, 0x68\n\tsc %1, 0(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show_sc("ll; sw same value same word; sc", ll, sc);
    reset(); exc_clear();
    __asm__ volatile("ll %0, 0(%2)\n\tli %1, 0x69\n\tsw %1, 4(%2)\n\tsc %1, 0(%2)" : "=&r"(ll), "=&r"(sc) : "r"(p) : "memory");
    show_sc("ll; sw other word; sc", ll, sc);
    reset(); sc = 0x5a5a5a5a; exc_clear();
    PROBE("ll $t0, 0(%1)\n\tsc %0, 1(%1)", : "+r"(sc) : "r"(p) : "t0", "memory");
    show_sc("ll; sc misaligned (no AdES)", 0, sc);
    tlb_write_index(1, 0x20000000, ELO(USEG(page), ELO_C(3) | ELO_D | ELO_G), ELO(USEG(page), ELO_C(3) | ELO_D | ELO_G), PM_4K);
    sc = 0x5a5a5a5a; exc_clear();
    PROBE("sc %0, 0(%1)", : "+r"(sc) : "r"(0x20000000) : "memory");
    show_sc("sc without ll to a V=0 page (no TLBS)", 0, sc);
    reset();
    __asm__ volatile("ll %0, 0(%1)\n\tsyscall" : "=&r"(ll) : "r"(p) : "memory");
    printf("LLAddr after ll; syscall; eret: %08x (ERET sets QEMU's link address to 1)\n", mfc0(C0_LLADDR));

    puts("-- CACHE and SYNCI on an unmapped address: no TLB exception in QEMU");
    exc_clear(); PROBE("cache 0x19, 0(%0)", : : "r"(0x12345000) : "memory"); show_exc("cache hit-wb, unmapped useg");
    exc_clear(); PROBE("cache 0x15, 0(%0)", : : "r"(0xc0100000) : "memory"); show_exc("cache hit-wb-inv, unmapped kseg2");
    exc_clear(); PROBE("synci 0(%0)", : : "r"(0x12345000) : "memory"); show_exc("synci, unmapped useg");
    return 0;
}
