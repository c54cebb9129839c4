/* teachos: console output (the 16550 UART, or the VMM's console hypercall), kprintf,
 * power off, panic and the few string helpers the kernel needs. */
#include "kernel.h"

#define UART_THR 0xB80003F8u /* COM1 (ISA port 0x3F8) through kseg1 */
#define UART_LSR 0xB80003FDu
#define LSR_THRE 0x20
#define POWER_REG 0xBF000500u /* Malta SOFTRES: 0x42 resets (QEMU -no-reboot: exits) */

int hv_console; /* the probe succeeded and console hypercalls were asked for */

static char line[128];
static u32 linelen;

static void uart_putc(int c) {
    while (!(*(volatile u8 *)UART_LSR & LSR_THRE))
        continue;
    *(volatile u8 *)UART_THR = (u8)c;
}

void kflush(void) {
    if (linelen == 0) return;
    if (hv_console) {
        kstats.hypercalls++;
        hypercall(HC_CONSOLE, (u32)line, linelen, 0);
    } else {
        for (u32 i = 0; i < linelen; i++) uart_putc(line[i]);
    }
    linelen = 0;
}

void kputc(int c) {
    line[linelen++] = (char)c;
    if (c == '\n' || linelen == sizeof line) kflush();
}

void kputs(const char *s) {
    while (*s) kputc(*s++);
}

static void put_num(u32 v, u32 base, int neg, int width, int zero, int left) {
    char buf[12];
    int n = 0;
    do {
        buf[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    int len = n + neg;
    if (neg && zero) kputc('-');
    if (!left)
        for (; len < width; len++) kputc(zero ? '0' : ' ');
    if (neg && !zero) kputc('-');
    while (n) kputc(buf[--n]);
    if (left)
        for (; len < width; len++) kputc(' ');
}

static void vkprintf(const char *fmt, __builtin_va_list ap) {
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            kputc(*fmt);
            continue;
        }
        int zero = 0, left = 0, width = 0;
        fmt++;
        if (*fmt == '-') left = 1, fmt++;
        if (*fmt == '0') zero = 1, fmt++;
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        switch (*fmt) {
        case 'd': {
            s32 v = __builtin_va_arg(ap, s32);
            put_num(v < 0 ? -(u32)v : (u32)v, 10, v < 0, width, zero, left);
            break;
        }
        case 'u': put_num(__builtin_va_arg(ap, u32), 10, 0, width, zero, left); break;
        case 'x': put_num(__builtin_va_arg(ap, u32), 16, 0, width, zero, left); break;
        case 'c': kputc(__builtin_va_arg(ap, int)); break;
        case 's': {
            const char *s = __builtin_va_arg(ap, const char *);
            int len = (int)kstrlen(s);
            if (!left)
                for (; len < width; len++) kputc(' ');
            kputs(s);
            if (left)
                for (; len < width; len++) kputc(' ');
            break;
        }
        case '%': kputc('%'); break;
        default: kputc('%'); kputc(*fmt); break;
        }
    }
}

void kprintf(const char *fmt, ...) {
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    vkprintf(fmt, ap);
    __builtin_va_end(ap);
}

void machine_off(void) {
    kflush();
    *(volatile u8 *)POWER_REG = 0x42;
    for (;;)
        continue;
}

void panic(const char *fmt, ...) {
    __builtin_va_list ap;
    kputs("\npanic: ");
    __builtin_va_start(ap, fmt);
    vkprintf(fmt, ap);
    __builtin_va_end(ap);
    kputc('\n');
    machine_off();
}

/* Called from entry.S when an exception hits the kernel itself. */
void kernel_fault(u32 cause, u32 epc, u32 badvaddr) {
    panic("exception %u inside the kernel (cause 0x%08x, epc 0x%08x, badvaddr 0x%08x)",
          CAUSE_EXC(cause), cause, epc, badvaddr);
}

void *kmemset(void *d, int c, u32 n) {
    u8 *p = d;
    while (n--) *p++ = (u8)c;
    return d;
}

void *kmemcpy(void *d, const void *s, u32 n) {
    u8 *p = d;
    const u8 *q = s;
    while (n--) *p++ = *q++;
    return d;
}

u32 kstrlen(const char *s) {
    u32 n = 0;
    while (s[n]) n++;
    return n;
}

int kstrncmp(const char *a, const char *b, u32 n) {
    for (; n; n--, a++, b++) {
        if (*a != *b) return (u8)*a - (u8)*b;
        if (!*a) return 0;
    }
    return 0;
}
