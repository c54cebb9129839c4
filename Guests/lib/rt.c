/* Magritte guest runtime: console, CP0/TLB helpers, exception dispatch. See rt.h. */
#include "rt.h"

/* ---- Console ---------------------------------------------------------------------------- */

void putchar(int c) {
    while (!(mmio_read8(UART_BASE + UART_LSR) & 0x20)) {
    }
    mmio_write8(UART_BASE + UART_THR, (u8)c);
}

void print(const char *s) {
    while (*s) putchar(*s++);
}

void puts(const char *s) {
    print(s);
    putchar('\n');
}

static void print_num(u32 v, u32 base, int width, char pad, int upper) {
    char buf[12];
    int n = 0;
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        buf[n++] = digits[v % base];
        v /= base;
    } while (v);
    while (width > n) {
        putchar(pad);
        width--;
    }
    while (n) putchar(buf[--n]);
}

void print_hex(u32 v) {
    print("0x");
    print_num(v, 16, 8, '0', 0);
}

void print_udec(u32 v) { print_num(v, 10, 0, ' ', 0); }

void print_sdec(s32 v) {
    if (v < 0) {
        putchar('-');
        print_num(-(u32)v, 10, 0, ' ', 0);
    } else {
        print_num((u32)v, 10, 0, ' ', 0);
    }
}

void printf(const char *fmt, ...) {
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            putchar(*fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, left = 0, plus = 0;
        for (;; fmt++) {
            if (*fmt == '-')
                left = 1;
            else if (*fmt == '+')
                plus = 1;
            else
                break;
        }
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') fmt++;
        switch (*fmt) {
        case 'x':
        case 'X':
            print_num(__builtin_va_arg(ap, u32), 16, width, pad, *fmt == 'X');
            break;
        case 'u':
            print_num(__builtin_va_arg(ap, u32), 10, width, pad, 0);
            break;
        case 'd': {
            s32 v = __builtin_va_arg(ap, s32);
            if (v >= 0) {
                if (plus) putchar('+');
                print_num((u32)v, 10, width, pad, 0);
                break;
            }
            if (pad == ' ') { /* spaces, sign, digits */
                int n = 1;
                for (u32 t = -(u32)v; t; t /= 10) n++;
                while (width-- > n) putchar(' ');
                width = 0;
            }
            putchar('-');
            if (width) width--;
            print_num(-(u32)v, 10, width, pad, 0);
            break;
        }
        case 's': {
            const char *s = __builtin_va_arg(ap, const char *);
            int n = 0;
            while (s[n]) n++;
            if (!left)
                while (width-- > n) putchar(' ');
            print(s);
            if (left)
                while (width-- > n) putchar(' ');
            break;
        }
        case 'c':
            putchar(__builtin_va_arg(ap, int));
            break;
        case '%':
            putchar('%');
            break;
        case 0:
            fmt--;
            break;
        default:
            putchar('%');
            putchar(*fmt);
        }
    }
    __builtin_va_end(ap);
}

void power_off(void) {
    /* Wait until the UART has sent everything (LSR.TEMT) so no output is lost. */
    while (!(mmio_read8(UART_BASE + UART_LSR) & 0x40)) {
    }
    mmio_write8(POWER_REG, 0x42);
    for (;;) {
    }
}

void *memcpy(void *d, const void *s, unsigned n) {
    u8 *dp = d;
    const u8 *sp = s;
    while (n--) *dp++ = *sp++;
    return d;
}

void *memset(void *d, int c, unsigned n) {
    u8 *dp = d;
    while (n--) *dp++ = (u8)c;
    return d;
}

int memcmp(const void *a, const void *b, unsigned n) {
    const u8 *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x < *y ? -1 : 1;
    return 0;
}

/* ---- TLB -------------------------------------------------------------------------------- */

void tlb_write_index(u32 index, u32 entryhi, u32 lo0, u32 lo1, u32 pagemask) {
    u32 hi = mfc0(C0_ENTRYHI);
    mtc0(C0_INDEX, index);
    mtc0(C0_ENTRYHI, entryhi);
    mtc0(C0_ENTRYLO0, lo0);
    mtc0(C0_ENTRYLO1, lo1);
    mtc0(C0_PAGEMASK, pagemask);
    __asm__ volatile("tlbwi\n\tehb" ::: "memory");
    mtc0(C0_ENTRYHI, hi);
}

void tlb_write_random(u32 entryhi, u32 lo0, u32 lo1, u32 pagemask) {
    u32 hi = mfc0(C0_ENTRYHI);
    mtc0(C0_ENTRYHI, entryhi);
    mtc0(C0_ENTRYLO0, lo0);
    mtc0(C0_ENTRYLO1, lo1);
    mtc0(C0_PAGEMASK, pagemask);
    __asm__ volatile("tlbwr\n\tehb" ::: "memory");
    mtc0(C0_ENTRYHI, hi);
}

struct tlb_entry tlb_read_index(u32 index) {
    struct tlb_entry e;
    u32 hi = mfc0(C0_ENTRYHI);
    mtc0(C0_INDEX, index);
    __asm__ volatile("tlbr\n\tehb" ::: "memory");
    e.entryhi = mfc0(C0_ENTRYHI);
    e.entrylo0 = mfc0(C0_ENTRYLO0);
    e.entrylo1 = mfc0(C0_ENTRYLO1);
    e.pagemask = mfc0(C0_PAGEMASK);
    mtc0(C0_ENTRYHI, hi);
    return e;
}

u32 tlb_probe(u32 entryhi) {
    u32 hi = mfc0(C0_ENTRYHI);
    mtc0(C0_ENTRYHI, entryhi);
    __asm__ volatile("tlbp\n\tehb" ::: "memory");
    u32 index = mfc0(C0_INDEX);
    mtc0(C0_ENTRYHI, hi);
    return index;
}

void tlb_clear_all(void) {
    u32 hi = mfc0(C0_ENTRYHI);
    for (u32 i = 0; i < TLB_ENTRIES; i++)
        tlb_write_index(i, 0x80000000u + (i << 13), 0, 0, PM_4K);
    mtc0(C0_ENTRYHI, hi);
}

void map_low(void) {
    u32 hi = mfc0(C0_ENTRYHI), pm = mfc0(C0_PAGEMASK), idx = mfc0(C0_INDEX);
    u32 flags = ELO_C(3) | ELO_D | ELO_V | ELO_G;
    tlb_write_index(RT_TLB_LOW, hi & 0xff, ELO(0, flags), ELO(0x100000, flags), PM_1M);
    mtc0(C0_ENTRYHI, hi);
    mtc0(C0_PAGEMASK, pm);
    mtc0(C0_INDEX, idx);
}

/* ---- Exceptions ------------------------------------------------------------------------- */

volatile struct exc_info rt_exc;
volatile u32 rt_resume;
volatile u32 rt_mark;
volatile u32 rt_badva_ref;
exc_hook_t rt_exc_hook;
u32 rt_exc_sp; /* top of the exception stack; set by start.S */
/* Kernel context saved by run_in_mode: s0-s7, gp, sp, fp, ra. */
u32 rt_kctx[12];

extern const u32 rt_vec_template[], rt_vec_template_end[];
extern const u32 rt_user_exit[];

static const char *const exc_names[32] = {
    "Int", "Mod", "TLBL", "TLBS", "AdEL", "AdES", "IBE", "DBE", "Sys", "Bp", "RI", "CpU",
    "Ov", "Tr", "MSAFPE", "FPE", "Exc16", "Exc17", "C2E", "TLBRI", "TLBXI", "MSADis", "MDMX",
    "WATCH", "MCheck", "Thread", "DSPDis", "Exc27", "Exc28", "Exc29", "CacheErr", "Exc31",
};

const char *exc_name(u32 code) { return exc_names[code & 31]; }

void sync_icache(u32 addr, u32 len) {
    for (u32 a = addr & ~31u; a < addr + len; a += 32) __asm__ volatile("synci 0(%0)" : : "r"(a));
    __asm__ volatile("sync\n\tehb" ::: "memory");
}

void install_code(u32 dst, const void *start, const void *end) {
    u32 n = (u32)end - (u32)start;
    memcpy((void *)dst, start, n);
    sync_icache(dst, n);
}

void install_vector(u32 base, u32 offset, u32 id) {
    u32 *dst = (u32 *)(base + offset);
    u32 n = rt_vec_template_end - rt_vec_template;
    for (u32 i = 0; i < n; i++) dst[i] = rt_vec_template[i];
    dst[n - 1] |= id & 0xffff; /* ori k1, zero, id */
    sync_icache((u32)dst, n * 4);
}

void set_ebase(u32 base) { mtc0(C0_EBASE, base); }

void install_handlers(void) {
    install_vector(0x80000000u, 0x000, 0x000);
    install_vector(0x80000000u, 0x180, 0x180);
    install_vector(0x80000000u, 0x200, 0x200);
    set_ebase(0x80000000u);
    mtc0(C0_STATUS, mfc0(C0_STATUS) & ~ST_BEV);
}

void exc_default_policy(struct frame *f) {
    if (CA_EXC(f->cause) == EXC_INT) {
        u32 pending = f->cause & f->status & 0xff00;
        mtc0(C0_CAUSE, mfc0(C0_CAUSE) & ~(CA_IP(0) | CA_IP(1)));
        f->status &= ~pending;
        return;
    }
    if ((f->status & ST_KSU) && f->epc == f->badvaddr &&
        (CA_EXC(f->cause) == EXC_ADEL || CA_EXC(f->cause) == EXC_TLBL)) {
        /* instruction fetch fault in user/supervisor mode: end run_in_mode */
        f->epc = USEG(rt_user_exit);
    } else if (rt_resume) {
        f->epc = rt_resume;
        rt_resume = 0;
    } else {
        f->epc += (f->cause & CA_BD) ? 8 : 4;
    }
}

void on_exception(struct frame *f) {
    u32 code = CA_EXC(f->cause);
    if (code == EXC_SYS && f->epc == USEG(rt_user_exit)) {
        /* Return from run_in_mode: back to its caller in kernel mode, result in v0. */
        for (int i = 0; i < 8; i++) f->r[16 + i] = rt_kctx[i];
        f->r[28] = rt_kctx[8];
        f->r[29] = rt_kctx[9];
        f->r[30] = rt_kctx[10];
        f->r[31] = rt_kctx[11];
        f->epc = rt_kctx[11];
        f->status &= ~ST_KSU;
        return;
    }
    rt_exc.count++;
    rt_exc.vector = f->vector;
    rt_exc.cause = f->cause;
    rt_exc.epc = f->epc;
    rt_exc.badvaddr = f->badvaddr;
    rt_exc.status = f->status;
    rt_exc.entryhi = mfc0(C0_ENTRYHI);
    rt_exc.context = mfc0(C0_CONTEXT);
    if (rt_exc.count > 10000) {
        printf("runaway exceptions: %s epc=%x badva=%x\n", exc_name(code), f->epc, f->badvaddr);
        power_off();
    }
    if (rt_exc_hook)
        rt_exc_hook(f);
    else
        exc_default_policy(f);
}

static int has_badva(u32 code) {
    return code == EXC_MOD || code == EXC_TLBL || code == EXC_TLBS || code == EXC_ADEL ||
           code == EXC_ADES;
}

static void show_exc_common(const char *label, int full) {
    if (rt_exc.count == 0) {
        printf("%s: none\n", label);
        return;
    }
    u32 code = CA_EXC(rt_exc.cause);
    printf("%s: %s bd=%u epc=mark%c%u", label, exc_name(code), rt_exc.cause >> 31,
           rt_exc.epc >= rt_mark ? '+' : '-',
           rt_exc.epc >= rt_mark ? rt_exc.epc - rt_mark : rt_mark - rt_exc.epc);
    if (has_badva(code)) {
        if (rt_badva_ref)
            printf(" badva=ref%+d", (s32)(rt_exc.badvaddr - rt_badva_ref));
        else
            printf(" badva=%08x", rt_exc.badvaddr);
    }
    if (full) printf(" vec=%03x ce=%u", rt_exc.vector, CA_CE(rt_exc.cause));
    if (rt_exc.count != 1) printf(" (count=%u)", rt_exc.count);
    putchar('\n');
}

void show_exc(const char *label) { show_exc_common(label, 0); }
void show_exc_full(const char *label) { show_exc_common(label, 1); }

/* Each word gets a slot of its own, so no slot is rewritten after it ran (a slot pool is reused
 * only after 256 words). */
static u32 word_slots[256][4] __attribute__((aligned(16)));
static u32 word_next;

void run_word(u32 word) {
    u32 *slot = word_slots[word_next++ % 256];
    slot[0] = word;
    slot[1] = 0x03e00008; /* jr ra */
    slot[2] = 0;          /* nop */
    slot[3] = 0;
    sync_icache((u32)slot, 16);
    rt_mark = (u32)slot;
    rt_resume = 0;
    ((void (*)(void))slot)();
}

u32 probe_mode(u32 ksu, u32 (*fn)(u32), u32 arg) {
    exc_clear();
    rt_mark = USEG(fn);
    return run_in_mode(ksu, fn, arg);
}
