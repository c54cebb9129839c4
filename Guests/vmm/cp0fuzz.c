// cp0fuzz: random CP0 writes, random instruction words and random TLB writes, seed=N.
/* Robustness fuzzer for the VMM (Tests/HypervisorTests/IsolationTests.swift).
 *
 * Boot arguments (-append): seed=N (default 1), runs=N (random-word runs, default 1500), wild
 * (no sanitising: EBase, Status.BEV and pointers into the program itself may be hit too, so the
 * program soon loses itself).
 *
 * Every piece of random code runs through fz_run: a buffer of instruction words, entered by
 * ERET in kernel, supervisor or user mode with every general register random and the timer
 * armed; it ends at the first exception (the buffer ends in SYSCALL), whose handler records
 * the cause, restores a sane CP0 state and returns to fz_run's caller. The phases: MTC0 of a
 * random value to every register/select pair (and MFC0 back), random TLB writes followed by
 * loads and stores through the new entry, and runs of random words. The program prints a
 * digest of what it saw and powers off; it may also hang or lose itself (a random word that
 * disables interrupts and loops, a write to EBase in wild mode): whoever runs it must bound it
 * by instructions. Nothing it prints is expected to match between bare Malta and the VMM. */
#include "rt.h"

extern char _end[];
extern u32 fz_back[];
u32 fz_run(u32 status, u32 pc, const u32 *regs);

__asm__(
    ".set push\n.set noreorder\n.set noat\n"
    ".text\n.globl fz_run\nfz_run:\n"
    "  lui $t0, %hi(fz_ctx)\n  addiu $t0, $t0, %lo(fz_ctx)\n"
    "  sw $s0, 0($t0)\n  sw $s1, 4($t0)\n  sw $s2, 8($t0)\n  sw $s3, 12($t0)\n"
    "  sw $s4, 16($t0)\n  sw $s5, 20($t0)\n  sw $s6, 24($t0)\n  sw $s7, 28($t0)\n"
    "  sw $gp, 32($t0)\n  sw $sp, 36($t0)\n  sw $fp, 40($t0)\n  sw $ra, 44($t0)\n"
    "  mtc0 $a1, $14\n  ori $a0, $a0, 2\n  mtc0 $a0, $12\n  ehb\n"
    "  move $k0, $a2\n"
    "  lw $1, 4($k0)\n  lw $2, 8($k0)\n  lw $3, 12($k0)\n  lw $4, 16($k0)\n"
    "  lw $5, 20($k0)\n  lw $6, 24($k0)\n  lw $7, 28($k0)\n  lw $8, 32($k0)\n"
    "  lw $9, 36($k0)\n  lw $10, 40($k0)\n  lw $11, 44($k0)\n  lw $12, 48($k0)\n"
    "  lw $13, 52($k0)\n  lw $14, 56($k0)\n  lw $15, 60($k0)\n  lw $16, 64($k0)\n"
    "  lw $17, 68($k0)\n  lw $18, 72($k0)\n  lw $19, 76($k0)\n  lw $20, 80($k0)\n"
    "  lw $21, 84($k0)\n  lw $22, 88($k0)\n  lw $23, 92($k0)\n  lw $24, 96($k0)\n"
    "  lw $25, 100($k0)\n  lw $28, 112($k0)\n  lw $29, 116($k0)\n  lw $30, 120($k0)\n"
    "  lw $31, 124($k0)\n  eret\n"
    ".globl fz_back\nfz_back:\n"
    "  lui $t0, %hi(fz_ctx)\n  addiu $t0, $t0, %lo(fz_ctx)\n"
    "  lw $s0, 0($t0)\n  lw $s1, 4($t0)\n  lw $s2, 8($t0)\n  lw $s3, 12($t0)\n"
    "  lw $s4, 16($t0)\n  lw $s5, 20($t0)\n  lw $s6, 24($t0)\n  lw $s7, 28($t0)\n"
    "  lw $gp, 32($t0)\n  lw $sp, 36($t0)\n  lw $fp, 40($t0)\n  lw $ra, 44($t0)\n"
    "  jr $ra\n  move $v0, $zero\n"
    ".set pop\n");

u32 fz_ctx[12];
static volatile u32 fz_active, fz_cause, fz_epc, fz_badva;
static u32 fz_regs_out[32];
/* The code buffer sits in the middle of 64 KiB of its own: stores based on a register that
 * holds a code address (EPC, the link register of JALR) land here, not on the program. */
static u32 code_area[16384] __attribute__((aligned(4096)));
#define code (code_area + 8192)
static u32 regs[32];
static u32 rng = 1, ram_size, wild, digest = 0x811c9dc5u;
static u32 runs_done, by_code[32], verbose;

static u32 rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void mix(u32 v) { digest = (digest ^ v) * 0x01000193u; }

static u32 arg_number(const char *s, const char *key, u32 fallback) {
    u32 n = 0;
    while (key[n]) n++;
    for (; s && *s; s++) {
        if (memcmp(s, key, n)) continue;
        u32 v = 0;
        for (s += n; *s >= '0' && *s <= '9'; s++) v = v * 10 + (u32)(*s - '0');
        return v;
    }
    return fallback;
}

/* Scratch RAM for random pointers: the upper half of RAM, away from the program. */
static u32 scratch(void) { return ram_size / 2 + rnd() % (ram_size / 2 - 0x10000u) + 0x8000u; }

/* A random register value; unless wild, kseg0/kseg1 values never point into the lower half of
 * RAM (the program, its stacks and vectors). */
static u32 rnd_value(void) {
    static const u32 edges[] = {0, 1, 2, 3, 4, 0xffffffffu, 0xfffffffcu, 0x7fffffffu, 0x80000000u,
                                0xffff8000u, 0x00007fffu, 0xbfc00000u, 0xa0000000u, 0xc0000000u,
                                0xe0000000u, 0x1f000500u, 0xb80003f8u, 0x10000000u};
    u32 v, r = rnd() % 16;
    if (r < 4) v = 0x80000000u | (rnd() & 0x20000000u) | (scratch() & ~3u);
    else if (r < 6) v = 0x10000000u + (rnd() & 0x3ffcu);
    else if (r < 9) v = edges[rnd() % countof(edges)];
    else if (r < 11) v = rnd() % 8;
    else v = rnd();
    if (!wild && (v >> 30) == 2 && (v & 0x1fffffffu) < ram_size / 2)
        v = 0x80000000u | (v & 0x20000000u) | scratch();
    return v;
}

static void randomize_regs(void) {
    for (int i = 1; i < 32; i++) regs[i] = rnd_value();
    regs[26] = regs[27] = 0;
}

#define MTC0_W(rt, rd, sel) (0x40800000u | (rt) << 16 | (rd) << 11 | (sel))
#define MFC0_W(rt, rd, sel) (0x40000000u | (rt) << 16 | (rd) << 11 | (sel))
#define USER_VA 0x00400000u
#define SYSCALL_W 0x0000000cu
#define EHB_W 0x000000c0u

/* A random instruction word, biased towards what the VMM emulates or must fill for. */
static u32 rnd_word(void) {
    static const u32 cop0[] = {0x42000001u, 0x42000002u, 0x42000006u, 0x42000008u, 0x42000018u,
                               0x42000020u, 0x4200001fu, 0x41606000u, 0x41606020u, 0x0000000fu,
                               0x7c00003bu, 0x0000000du, 0x42000000u};
    u32 rt = rnd() % 32, rs = rnd() % 32, rd = rnd() % 32, r = rnd() % 20;
    if (rt == 26 || rt == 27) rt = 8; /* keep k0/k1 for the handler: the guest's own choice */
    if (rd == 26 || rd == 27) rd = 9;
    if (rs == 26 || rs == 27) rs = 10;
    if (r < 7) return rnd();
    if (r < 10) {
        u32 sel = rnd() % 8;
        /* Careful: no Status (BEV, KSU) or EBase writes here; phase_cp0 does them, sanitised. */
        if (!wild && ((rd == 12 && sel == 0) || (rd == 15 && sel == 1))) sel = 7;
        return rnd() & 1 ? MTC0_W(rt, rd, sel) : MFC0_W(rt, rd, sel);
    }
    if (r == 10) return MFC0_W(2, 22, 7); /* the hypercall */
    if (r < 13) {
        u32 w = cop0[rnd() % countof(cop0)];
        if (w == 0x7c00003bu) return w | rt << 16 | (rnd() % 8) << 11; /* rdhwr */
        if (w == 0x41606000u && !wild) w = 0x41606020u; /* careful: no DI (then WAIT hangs) */
        if ((w & 0xffe00000u) == 0x41600000u) return w | rt << 16;        /* di/ei */
        return w;
    }
    if (r < 17) { /* a load or store */
        static const u8 ops[] = {0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x28, 0x29, 0x2a,
                                 0x2b, 0x2e, 0x30, 0x38, 0x2f, 0x33, 0x1f};
        u32 op = ops[rnd() % countof(ops)];
        if (op == 0x1f) return 0x7c00001fu | rs << 21 | (rnd() & 0xffffu) << 7; /* synci-ish */
        return op << 26 | rs << 21 | rt << 16 | (rnd() & (rnd() & 1 ? 0xffffu : 0x3cu));
    }
    if (r == 17) return 0x00000008u | rs << 21 | (rnd() & 1 ? 0 : 0x409u);  /* jr / jalr */
    if (r == 18) return 0x10000000u | rs << 21 | rt << 16 | (rnd() % 8 - 4) << 0; /* beq */
    return (rnd() & 1 ? 0x00000030u : 0x04080000u) | rs << 21 | rt << 16 | (rnd() & 0x3ffc0u);
}

/* The handler for every exception during a run: record, restore a sane CP0, return. */
static void hook(struct frame *f) {
    if (!fz_active) {
        exc_default_policy(f);
        return;
    }
    fz_active = 0;
    fz_cause = f->cause;
    fz_epc = f->epc;
    fz_badva = f->badvaddr;
    for (int i = 0; i < 32; i++) fz_regs_out[i] = f->r[i];
    mtc0(C0_EBASE, 0x80000000u);
    mtc0(C0_CAUSE, 0);
    mtc0(C0_COMPARE, mfc0(C0_COUNT) - 1);
    mtc0(C0_WIRED, 0);
    mtc0(C0_PAGEMASK, 0);
    mtc0(C0_ENTRYHI, 0);
    mtc0(C0_HWRENA, 0);
    mtc0(C0_WATCHLO, 0);
    mtc0(C0_INTCTL, 0);
    mtc0(C0_CONFIG, (mfc0(C0_CONFIG) & ~7u) | 3);
    f->status = ST_EXL;
    f->epc = (u32)fz_back;
}

/* Runs the words in code[0..n) in mode ksu, ended by SYSCALLs; returns the exception code. */
static u32 run_code(u32 n, u32 ksu) {
    for (u32 i = n; i < n + 4; i++) code[i] = SYSCALL_W;
    sync_icache((u32)code, (n + 4) * 4);
    u32 pc = (u32)code;
    if (ksu != KSU_KERNEL) {
        /* The code pages, read-only, at USER_VA: the only thing user code can reach of us. */
        u32 pa = (u32)code & 0x1fffe000u, flags = ELO_C(3) | ELO_V | ELO_G;
        tlb_write_index(0, USER_VA, ELO(pa, flags), ELO(pa + 0x1000, flags), PM_4K);
        pc = USER_VA + ((u32)code & 0x1fffu);
    }
    if (verbose) {
        printf("run %u ksu %u:", runs_done, ksu);
        for (u32 i = 0; i < n; i++) printf(" %08x", code[i]);
        putchar('\n');
    }
    timer_arm(20000);
    exc_clear();
    fz_active = 1;
    fz_run(ST_IM(7) | ST_IE | ksu << 3, pc, regs);
    fz_active = 0;
    u32 c = CA_EXC(fz_cause);
    by_code[c]++;
    runs_done++;
    mix(c);
    mix(fz_epc - pc);
    for (int i = 1; i < 32; i++)
        if (i != 26 && i != 27) mix(fz_regs_out[i]);
    return c;
}

static u32 rnd_mode(void) {
    u32 r = rnd() % 8;
    return r < 5 ? KSU_KERNEL : r < 6 ? KSU_SUPER : KSU_USER;
}

static void phase_cp0(void) {
    for (u32 reg = 0; reg < 32; reg++) {
        for (u32 sel = 0; sel < 8; sel++) {
            randomize_regs();
            if (!wild && reg == 15 && sel == 1) regs[8] = 0x80000000u;
            if (!wild && reg == 12 && sel == 0) regs[8] &= ~ST_BEV;
            code[0] = MTC0_W(8, reg, sel);
            code[1] = EHB_W;
            code[2] = MFC0_W(9, reg, sel);
            run_code(3, KSU_KERNEL);
        }
    }
    printf("cp0 writes: %u runs, digest %08x\n", runs_done, digest);
}

static void phase_tlb(u32 n) {
    for (u32 i = 0; i < n; i++) {
        randomize_regs();
        u32 pfn_pa, r = rnd() % 4;
        if (wild || r == 0) pfn_pa = rnd() & ~0xfffu;
        if (!wild && pfn_pa < ram_size / 2) pfn_pa += ram_size / 2;
        else if (r == 1) pfn_pa = (ram_size / 2 + rnd() % (ram_size / 2)) & ~0x1fffu;
        else if (r == 2) pfn_pa = ram_size + (rnd() & 0x0fffe000u);
        else pfn_pa = 0x18000000u + (rnd() & 0x1000u); /* the ISA window: the UART's page */
        u32 flags = (rnd() & 7) | ELO_C(rnd() % 8);
        regs[8] = (rnd() & 1 ? 0x10000000u : rnd() & 0xffffe000u) | (rnd() & 0xff);
        regs[9] = ELO(pfn_pa, flags);
        regs[10] = ELO(pfn_pa + 0x1000, (rnd() & 7) | ELO_C(3));
        regs[11] = rnd() & 3 ? 0 : rnd();
        regs[12] = rnd() % 20;
        regs[13] = regs[8] & ~0xfffu;
        u32 k = 0;
        code[k++] = MTC0_W(8, 10, 0);
        code[k++] = MTC0_W(9, 2, 0);
        code[k++] = MTC0_W(10, 3, 0);
        code[k++] = MTC0_W(11, 5, 0);
        code[k++] = MTC0_W(12, 0, 0);
        code[k++] = rnd() & 1 ? 0x42000002u : 0x42000006u;
        code[k++] = EHB_W;
        for (u32 j = rnd() % 6; j; j--) {
            u32 op = (u32[]){0x23, 0x2b, 0x20, 0x28, 0x21}[rnd() % 5];
            code[k++] = op << 26 | 13u << 21 | 14u << 16 | (rnd() & 0x1ffcu);
        }
        run_code(k, rnd() % 4 ? KSU_KERNEL : KSU_USER);
    }
    printf("tlb writes: %u runs, digest %08x\n", runs_done, digest);
}

static void phase_words(u32 n) {
    for (u32 i = 0; i < n; i++) {
        randomize_regs();
        u32 k = 1 + rnd() % 8;
        for (u32 j = 0; j < k; j++) code[j] = rnd_word();
        run_code(k, rnd_mode());
    }
    printf("random words: %u runs, digest %08x\n", runs_done, digest);
}

int main(u32 argc, char **argv, char **envp, u32 memsize) {
    (void)envp;
    const char *args = argc >= 2 ? argv[1] : "";
    ram_size = memsize;
    rng = arg_number(args, "seed=", 1) * 2654435761u + 0x9e3779b9u;
    if (!rng) rng = 1;
    u32 runs = arg_number(args, "runs=", 1500);
    for (const char *s = args; *s; s++)
        if (!memcmp(s, "wild", 4)) wild = 1;
        else if (!memcmp(s, "verbose", 7)) verbose = 1;
    printf("cp0fuzz: seed %u, %u runs, %s, %u KiB of RAM\n", arg_number(args, "seed=", 1), runs,
           wild ? "wild" : "careful", ram_size >> 10);
    if ((u32)_end - 0x80000000u > ram_size / 2) {
        puts("cp0fuzz: needs RAM of at least twice the image");
        return 1;
    }
    install_handlers();
    rt_exc_hook = hook;
    phase_cp0();
    phase_tlb(runs / 4);
    phase_words(runs);
    printf("exceptions:");
    for (u32 c = 0; c < 32; c++)
        if (by_code[c]) printf(" %s %u", exc_name(c), by_code[c]);
    printf("\ncp0fuzz: done, digest %08x\n", digest);
    tlb_clear_all();
    return 0;
}
