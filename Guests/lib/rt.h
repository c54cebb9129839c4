/* Magritte guest runtime: the few things a bare-metal test program on a Malta board needs.
 *
 * A program provides `int main(void)`; start.S gives it a stack, clears .bss, calls it and
 * powers the board off when it returns. Output goes to the 16550 UART; lines end in "\n" only.
 * See Guests/README.md. */
#ifndef MAGRITTE_GUEST_RT_H
#define MAGRITTE_GUEST_RT_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef short s16;
typedef int s32;
typedef long long s64;

#define NULL ((void *)0)

/* ---- Board ------------------------------------------------------------------------------ */

#define UART_BASE 0xB80003F8u /* ISA COM1 (I/O port 0x3F8) through kseg1 */
#define UART_THR 0            /* transmit holding (write) / receive buffer (read) / DLL */
#define UART_IER 1            /* interrupt enable / DLM */
#define UART_IIR 2            /* interrupt identification (read) / FCR (write) */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7
#define POWER_REG 0xBF000500u /* Malta SOFTRES: writing 0x42 resets; QEMU -no-reboot exits */

static inline void mmio_write8(u32 addr, u8 v) { *(volatile u8 *)addr = v; }
static inline u8 mmio_read8(u32 addr) { return *(volatile u8 *)addr; }

/* ---- Console ---------------------------------------------------------------------------- */

void putchar(int c);
void print(const char *s);   /* no newline */
void puts(const char *s);    /* appends a newline */
void print_hex(u32 v);       /* 0x%08x */
void print_udec(u32 v);
void print_sdec(s32 v);
/* %x %X %u %d %s %c %%, with optional '0' flag and width (e.g. %08x), %-Ns for %s, %+d. */
void printf(const char *fmt, ...);
__attribute__((noreturn)) void power_off(void);

void *memcpy(void *d, const void *s, unsigned n);
void *memset(void *d, int c, unsigned n);
int memcmp(const void *a, const void *b, unsigned n);

/* ---- CP0 -------------------------------------------------------------------------------- */

/* Register names expand to "number, select": mfc0(C0_STATUS), mtc0(C0_STATUS, v). */
#define C0_INDEX 0, 0
#define C0_RANDOM 1, 0
#define C0_ENTRYLO0 2, 0
#define C0_ENTRYLO1 3, 0
#define C0_CONTEXT 4, 0
#define C0_USERLOCAL 4, 2
#define C0_PAGEMASK 5, 0
#define C0_PAGEGRAIN 5, 1
#define C0_WIRED 6, 0
#define C0_HWRENA 7, 0
#define C0_BADVADDR 8, 0
#define C0_COUNT 9, 0
#define C0_ENTRYHI 10, 0
#define C0_COMPARE 11, 0
#define C0_STATUS 12, 0
#define C0_INTCTL 12, 1
#define C0_SRSCTL 12, 2
#define C0_SRSMAP 12, 3
#define C0_CAUSE 13, 0
#define C0_EPC 14, 0
#define C0_PRID 15, 0
#define C0_EBASE 15, 1
#define C0_CONFIG 16, 0
#define C0_CONFIG1 16, 1
#define C0_CONFIG2 16, 2
#define C0_CONFIG3 16, 3
#define C0_LLADDR 17, 0
#define C0_WATCHLO 18, 0
#define C0_WATCHHI 19, 0
#define C0_DEBUG 23, 0
#define C0_DEPC 24, 0
#define C0_PERFCTL0 25, 0
#define C0_ERRCTL 26, 0
#define C0_CACHEERR 27, 0
#define C0_TAGLO 28, 0
#define C0_DATALO 28, 1
#define C0_ERROREPC 30, 0
#define C0_DESAVE 31, 0

#define MFC0_(reg, sel)                                                                       \
    ({                                                                                        \
        u32 v_;                                                                               \
        __asm__ volatile("mfc0 %0, $%1, %2" : "=r"(v_) : "i"(reg), "i"(sel));                 \
        v_;                                                                                   \
    })
#define MTC0_(reg, sel, v)                                                                    \
    __asm__ volatile("mtc0 %0, $%1, %2" : : "r"((u32)(v)), "i"(reg), "i"(sel) : "memory")
/* Raw accessors (no hazard barrier) ... */
#define mfc0(r) MFC0_(r)
#define mtc0_raw(r, v) MTC0_(r, v)
/* ... and the usual one: mtc0 followed by ehb. */
#define mtc0(r, v)                                                                            \
    do {                                                                                      \
        MTC0_(r, v);                                                                          \
        ehb();                                                                                \
    } while (0)

static inline void ehb(void) { __asm__ volatile("ehb" ::: "memory"); }

/* Status bits */
#define ST_IE 0x00000001u
#define ST_EXL 0x00000002u
#define ST_ERL 0x00000004u
#define ST_KSU 0x00000018u
#define ST_UM 0x00000010u
#define ST_KSU_SUPER 0x00000008u
#define ST_IM(n) (0x100u << (n))
#define ST_BEV 0x00400000u
#define ST_CU0 0x10000000u
#define ST_CU1 0x20000000u
/* Cause bits */
#define CA_BD 0x80000000u
#define CA_TI 0x40000000u
#define CA_CE(c) (((c) >> 28) & 3)
#define CA_DC 0x08000000u
#define CA_IV 0x00800000u
#define CA_IP(n) (0x100u << (n))
#define CA_EXC(c) (((c) >> 2) & 31)

enum {
    EXC_INT = 0, EXC_MOD = 1, EXC_TLBL = 2, EXC_TLBS = 3, EXC_ADEL = 4, EXC_ADES = 5,
    EXC_IBE = 6, EXC_DBE = 7, EXC_SYS = 8, EXC_BP = 9, EXC_RI = 10, EXC_CPU = 11,
    EXC_OV = 12, EXC_TR = 13,
};
const char *exc_name(u32 code);

/* ---- TLB -------------------------------------------------------------------------------- */

#define PM_4K 0x00000000u
#define PM_16K 0x00006000u
#define PM_64K 0x0001e000u
#define PM_256K 0x0007e000u
#define PM_1M 0x001fe000u
#define PM_4M 0x007fe000u
#define PM_16M 0x01ffe000u
/* EntryLo from a physical address and flags */
#define ELO_G 1u
#define ELO_V 2u
#define ELO_D 4u
#define ELO_C(c) ((u32)(c) << 3)
#define ELO(pa, flags) ((((u32)(pa) >> 12) << 6) | (flags))

/* These helpers keep EntryHi (so the current ASID) as it was; EntryLo0/1, PageMask and Index
 * are left as the TLB instruction used or set them. */
struct tlb_entry { u32 entryhi, entrylo0, entrylo1, pagemask; };
void tlb_write_index(u32 index, u32 entryhi, u32 lo0, u32 lo1, u32 pagemask);
void tlb_write_random(u32 entryhi, u32 lo0, u32 lo1, u32 pagemask);
struct tlb_entry tlb_read_index(u32 index);
u32 tlb_probe(u32 entryhi); /* returns Index after tlbp */
/* Writes every entry with a distinct unmapped kseg0 VPN2, V=0 (as Linux's local_flush_tlb_all). */
void tlb_clear_all(void);
#define TLB_ENTRIES 16

/* ---- Exceptions ------------------------------------------------------------------------- */

/* The register frame the common exception stub saves; the handler may change any field;
 * epc, status, hi, lo and the general registers (except k0/k1) are restored before eret. */
struct frame {
    u32 r[32];
    u32 hi, lo, epc, status, cause, badvaddr;
    u32 vector; /* id of the vector stub that ran: by default its offset 0x000/0x180/0x200 */
    u32 pad;
};

/* The last exception seen by on_exception (with or without a hook). */
struct exc_info {
    u32 count; /* exceptions since exc_clear() */
    u32 vector, cause, epc, badvaddr, status, entryhi, context;
};
extern volatile struct exc_info rt_exc;
extern volatile u32 rt_resume; /* when nonzero, the default policy resumes there (see PROBE) */
extern volatile u32 rt_mark;   /* address of the probed instruction (set by PROBE) */
typedef void (*exc_hook_t)(struct frame *f);
extern exc_hook_t rt_exc_hook; /* when set, called after recording, instead of the policy */

/* Called by the common stub for every exception. Records rt_exc, handles the return from
 * run_in_mode, then calls rt_exc_hook or the default policy:
 *   interrupt: clear Cause.IP0/IP1 and mask (in frame->status) the IM bits of pending lines;
 *   a fetch fault (AdEL/TLBL with EPC = BadVAddr) in user/supervisor mode: return from
 *   run_in_mode (v0 as it was);
 *   otherwise: epc = rt_resume if set, else epc + 4 (+8 when Cause.BD). */
void on_exception(struct frame *f);
void exc_default_policy(struct frame *f);
static inline void exc_clear(void) { rt_exc.count = 0; }

/* Copies the common stub to base+offset with the given id (seen as frame->vector). */
void install_vector(u32 base, u32 offset, u32 id);
/* Copies arbitrary position-independent code to dst and syncs the instruction stream. */
void install_code(u32 dst, const void *start, const void *end);
void sync_icache(u32 addr, u32 len);
/* Stubs at 0x80000000 + 0x000 (refill), 0x180 (general), 0x200 (interrupt, Cause.IV=1);
 * EBase = 0x80000000; Status.BEV = 0. */
void install_handlers(void);
void set_ebase(u32 base);

/* Prints "<label>: none" or "<label>: <Exc> bd=<0|1> epc=mark+<off>[ badva=<hex>]"; when
 * rt_badva_ref is nonzero, BadVAddr is printed relative to it ("badva=ref+3"), which keeps the
 * output independent of where the linker put a buffer. */
extern volatile u32 rt_badva_ref;
void show_exc(const char *label);
/* As show_exc, also printing vector and CE. */
void show_exc_full(const char *label);

/* Inline-assembly probe: PROBE_PRE marks the next instruction (label 8) and makes the default
 * policy resume at label 9 (PROBE_POST), so faults in delay slots need no special handling.
 * Use inside .set noreorder; labels 8 and 9 are taken. k0/k1 are used. */
#define PROBE_PRE                                                                             \
    "lui $k1, %%hi(8f)\n\taddiu $k1, $k1, %%lo(8f)\n\t"                                       \
    "lui $k0, %%hi(rt_mark)\n\tsw $k1, %%lo(rt_mark)($k0)\n\t"                                \
    "lui $k1, %%hi(9f)\n\taddiu $k1, $k1, %%lo(9f)\n\t"                                       \
    "lui $k0, %%hi(rt_resume)\n\tsw $k1, %%lo(rt_resume)($k0)\n8:\n\t"
#define PROBE_POST "\n9:\n\tlui $k0, %%hi(rt_resume)\n\tsw $zero, %%lo(rt_resume)($k0)\n\t"
/* PROBE("teq %0, %1", : : "r"(a), "r"(b)) — a whole probe, in noreorder/noat mode. */
#define PROBE(body, ...)                                                                      \
    __asm__ volatile(".set push\n\t.set noreorder\n\t.set noat\n\t" PROBE_PRE body PROBE_POST   \
                     ".set pop" __VA_ARGS__)

/* Executes one instruction word from a fresh slot in RAM (followed by jr ra): for encodings the
 * assembler will not produce. Sets rt_mark to the slot, so show_exc prints epc=mark+0 when the
 * word itself faults. The word runs with whatever registers the call leaves (use it for
 * encodings whose operands do not matter). */
void run_word(u32 word);

/* ---- Other privilege modes ---------------------------------------------------------------- */

#define KSU_KERNEL 0
#define KSU_SUPER 1
#define KSU_USER 2
#define RT_TLB_LOW 0 /* TLB index used by run_in_mode's 1:1 mapping */
/* Maps useg 0..2 MB to physical 0..2 MB (1 MB page pair, global, cached, dirty) at RT_TLB_LOW. */
void map_low(void);
/* Runs fn(arg) with Status.KSU = ksu (by eret), code and a private stack addressed through the
 * useg mapping of map_low (called here). Returns fn's result when fn returns (its return
 * address is a `syscall 0xfffff` that on_exception turns back into a kernel-mode return).
 * fn must not use kseg0 addresses (globals, strings, jump tables): pass USEG(pointer). */
u32 run_in_mode(u32 ksu, u32 (*fn)(u32), u32 arg);
#define USEG(p) ((u32)(p) & 0x1fffffffu)
/* exc_clear(); rt_mark = USEG(fn); run_in_mode(...): show_exc then prints epc=mark+N with N
 * the offset of the faulting instruction in fn. */
u32 probe_mode(u32 ksu, u32 (*fn)(u32), u32 arg);
/* Probe bodies for probe_mode, one access each: lw/lhu at addr (v0 = 0x5a5a5a5a if it faults),
 * sw of 0x77777777 to addr, jalr to addr. (Inline here, so programs that do not use them keep
 * their layout.) */
static inline u32 probe_lw(u32 addr) {
    u32 v = 0x5a5a5a5a;
    __asm__ volatile("lw %0, 0(%1)" : "+r"(v) : "r"(addr) : "memory");
    return v;
}
static inline u32 probe_lhu(u32 addr) {
    u32 v = 0x5a5a5a5a;
    __asm__ volatile("lhu %0, 0(%1)" : "+r"(v) : "r"(addr) : "memory");
    return v;
}
static inline u32 probe_sw(u32 addr) {
    __asm__ volatile("sw %0, 0(%1)" : : "r"(0x77777777), "r"(addr) : "memory");
    return 0;
}
static inline u32 probe_jalr(u32 addr) {
    __asm__ volatile("jalr %0\n\tnop" : : "r"(addr) : "ra", "memory");
    return 0;
}

/* ---- Timer ------------------------------------------------------------------------------ */

/* Sets Compare = Count + delta, retrying if Count had already passed the new value when it was
 * written (QEMU's Count follows the host clock, so a slow moment would otherwise lose the
 * interrupt until Count wraps). Clears Cause.TI. */
static inline void timer_arm(u32 delta) {
    for (;;) {
        u32 target = mfc0(C0_COUNT) + delta;
        mtc0(C0_COMPARE, target);
        if ((s32)(mfc0(C0_COUNT) - target) < 0) return;
    }
}

/* ---- Test helpers ----------------------------------------------------------------------- */

/* One instruction on registers/immediates, result in a register: OP_RR("addu", a, b). */
#define OP_RR(op, a, b)                                                                       \
    ({                                                                                        \
        u32 r_;                                                                               \
        __asm__ volatile(op " %0, %1, %2" : "=r"(r_) : "r"((u32)(a)), "r"((u32)(b)));         \
        r_;                                                                                   \
    })
#define OP_RI(op, a, imm)                                                                     \
    ({                                                                                        \
        u32 r_;                                                                               \
        __asm__ volatile(op " %0, %1, %2" : "=r"(r_) : "r"((u32)(a)), "i"(imm));              \
        r_;                                                                                   \
    })
#define OP_R(op, a)                                                                           \
    ({                                                                                        \
        u32 r_;                                                                               \
        __asm__ volatile(op " %0, %1" : "=r"(r_) : "r"((u32)(a)));                            \
        r_;                                                                                   \
    })
#define countof(a) (sizeof(a) / sizeof((a)[0]))

#endif
