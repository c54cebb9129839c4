// SEB SEH WSBH CLZ CLO over a set of values.
#include "rt.h"

static const u32 vals[] = {
    0x00000000, 0xffffffff, 0x00000080, 0x0000007f, 0x00008000, 0x00007fff, 0x12345678,
    0x87654321, 0x80000000, 0x40000000, 0x00000001, 0xfffffffe, 0x7fffffff, 0xffff0000,
    0x0000ffff, 0xc0000000, 0xfff00000, 0x000fffff, 0x00ff00ff, 0xff00ff80,
};

int main(void) {
    puts("value    | seb      seh      wsbh     clz clo");
    for (u32 i = 0; i < countof(vals); i++) {
        u32 v = vals[i];
        printf("%08x | %08x %08x %08x %2u  %2u\n", v, OP_R("seb", v), OP_R("seh", v),
               OP_R("wsbh", v), OP_R("clz", v), OP_R("clo", v));
    }
    /* every single-bit position for clz, every leading-ones run for clo */
    for (u32 b = 0; b < 32; b++) {
        u32 v = 1u << b, w = ~(0xffffffffu >> b);
        printf("clz(%08x)=%2u clo(%08x)=%2u\n", v, OP_R("clz", v), w, OP_R("clo", w));
    }
    return 0;
}
