// Self-modifying code: instructions stored to memory and executed after SYNCI + JR.HB (via
// sync_icache and a call) run in their new form: rewriting a function several times, writing
// through the kseg1 alias, through a TLB-mapped alias, and patching the next instruction of a
// loop body that is already running (with synci/jr.hb between iterations).
#include "rt.h"

static u32 fn[8] __attribute__((aligned(32)));

static u32 call(u32 addr) {
    u32 (*f)(void) = (u32(*)(void))addr;
    return f();
}

static void set_ret(u32 *p, u32 value) { /* addiu v0, zero, value; jr ra; nop */
    p[0] = 0x24020000 | (value & 0xffff);
    p[1] = 0x03e00008;
    p[2] = 0;
}

int main(void) {
    install_handlers();
    tlb_clear_all();
    for (u32 k = 1; k <= 3; k++) {
        set_ret(fn, k * 111);
        sync_icache((u32)fn, 12);
        printf("rewrite %u via kseg0: returns %u\n", k, call((u32)fn));
    }
    /* store through kseg1, execute through kseg0 */
    u32 *un = (u32 *)((u32)fn | 0x20000000);
    un[0] = 0x24020000 | 444;
    sync_icache((u32)fn, 12);
    printf("patched via kseg1, run via kseg0: returns %u\n", call((u32)fn));
    /* execute through kseg1 */
    un[0] = 0x24020000 | 555;
    sync_icache((u32)fn, 12);
    printf("patched via kseg1, run via kseg1: returns %u\n", call((u32)un));
    /* a TLB alias of the same page */
    u32 pa = USEG(fn) & ~0xfffu, off = (u32)fn & 0xfff;
    tlb_write_index(1, 0x00700000, ELO(pa, ELO_C(3) | ELO_D | ELO_V | ELO_G), 0, PM_4K);
    printf("run via the mapped alias 00700000: returns %u\n", call(0x00700000 + off));
    *(volatile u32 *)(0x00700000 + off) = 0x24020000 | 666;
    sync_icache(0x00700000 + off, 12);
    printf("patched via the mapped alias, run via kseg0: returns %u\n", call((u32)fn));
    /* a loop that patches its own body: addiu v0, v0, N with N changing per iteration */
    fn[0] = 0x24420001; /* addiu v0, v0, 1 */
    fn[1] = 0x03e00008; /* jr ra */
    fn[2] = 0;
    u32 total = 0;
    for (u32 i = 1; i <= 5; i++) {
        u32 v;
        fn[0] = 0x24420000 | i; /* addiu v0, v0, i */
        sync_icache((u32)fn, 4);
        __asm__ volatile("move $v0, %1\n\tjalr %2\n\tnop\n\tmove %0, $v0" : "=r"(v) : "r"(total), "r"(fn) : "v0", "ra", "memory");
        total = v;
    }
    printf("loop adding 1+2+3+4+5 through a patched addiu: %u\n", total);
    return 0;
}
