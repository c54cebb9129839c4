/* teachos user library: strlen and a buffered uprintf over write(). User mode. */
#include "user.h"

u32 strlen(const char *s) {
    u32 n = 0;
    while (s[n]) n++;
    return n;
}

/* The buffer is in .bss: every process has its own copy (a demand-zero page). */
static char buf[128];
static u32 len;

static void flush(void) {
    if (len) write(1, buf, len);
    len = 0;
}

static void put(char c) {
    buf[len++] = c;
    if (c == '\n' || len == sizeof buf) flush();
}

static void put_num(u32 v, u32 base, int neg, int width, int zero, int left) {
    char digits[12];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    int total = n + neg;
    if (neg && zero) put('-');
    if (!left)
        for (; total < width; total++) put(zero ? '0' : ' ');
    if (neg && !zero) put('-');
    while (n) put(digits[--n]);
    if (left)
        for (; total < width; total++) put(' ');
}

void uprintf(const char *fmt, ...) {
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(*fmt);
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
        case 'c': put((char)__builtin_va_arg(ap, int)); break;
        case 's': {
            const char *s = __builtin_va_arg(ap, const char *);
            int n = (int)strlen(s);
            if (!left)
                for (; n < width; n++) put(' ');
            while (*s) put(*s++);
            if (left)
                for (; n < width; n++) put(' ');
            break;
        }
        case '%': put('%'); break;
        default: put('%'); put(*fmt); break;
        }
    }
    __builtin_va_end(ap);
    flush();
}
