// Instruction fetch through the TLB in kernel mode: code in a mapped useg page runs and
// returns; a jump to an unmapped page raises TLBL via the refill vector with EPC = BadVAddr =
// the target (the link register was written); a jump to an invalid page raises TLBL via the
// general vector; straight-line execution running off a mapped page into an unmapped one.
#include "rt.h"

static u32 code[2048] __attribute__((aligned(8192))); /* an even and an odd page */

static void show_fetch(const char *what, u32 target) {
    if (!rt_exc.count) {
        printf("%-44s none\n", what);
        return;
    }
    printf("%-44s %s vec=%03x bd=%u epc=target%+d badva=target%+d\n", what,
           exc_name(CA_EXC(rt_exc.cause)), rt_exc.vector, rt_exc.cause >> 31,
           (s32)(rt_exc.epc - target), (s32)(rt_exc.badvaddr - target));
}

static u32 call(u32 target) {
    u32 v = 0x5a5a5a5a;
    exc_clear();
    __asm__ volatile(".set push\n\t.set noreorder\n\t"
                     "lui $k1, %%hi(1f)\n\taddiu $k1, $k1, %%lo(1f)\n\t"
                     "lui $k0, %%hi(rt_resume)\n\tsw $k1, %%lo(rt_resume)($k0)\n\t"
                     "move $v0, %0\n\tjalr %1\n\tnop\n1:\tmove %0, $v0\n\t"
                     "lui $k0, %%hi(rt_resume)\n\tsw $zero, %%lo(rt_resume)($k0)\n\t.set pop"
                     : "+r"(v) : "r"(target) : "ra", "v0", "memory");
    return v;
}

int main(void) {
    install_handlers();
    tlb_clear_all();
    /* even page: li v0, 42; jr ra; nop.  At the end of the even page: addiu v0, v0, 1 (falls
     * through into the odd page, which begins with jr ra; addiu v0, v0, 100) */
    code[0] = 0x2402002a; /* addiu v0, zero, 42 */
    code[1] = 0x03e00008; /* jr ra */
    code[2] = 0x00000000;
    code[1023] = 0x24420001; /* addiu v0, v0, 1 */
    code[1024] = 0x03e00008; /* jr ra */
    code[1025] = 0x24420064; /* addiu v0, v0, 100 */
    sync_icache((u32)code, sizeof code);
    u32 va = 0x00400000, f = ELO_C(3) | ELO_V | ELO_G;
    tlb_write_index(1, va, ELO(USEG(code), f), ELO(USEG(code) + 0x1000, f), PM_4K);
    u32 v = call(va);
    printf("call mapped code at %08x: v0=%u, exceptions %u\n", va, v, rt_exc.count);
    v = call(va + 0xffc);
    printf("run from the end of the even page into the odd one: v0=%08x (5a5a5a5a+1+100), exceptions %u\n", v, rt_exc.count);
    v = call(0x00500000);
    show_fetch("jalr to unmapped 00500000", 0x00500000);
    printf("  (v0 kept: %08x)\n", v);
    tlb_write_index(1, va, ELO(USEG(code), f), ELO(USEG(code) + 0x1000, ELO_C(3) | ELO_G), PM_4K);
    call(va + 0x1000);
    show_fetch("jalr to the invalid odd page", va + 0x1000);
    call(va + 0xffc);
    show_fetch("fall off the even page into the invalid one", va + 0x1000);
    /* kseg2 code in kernel mode */
    tlb_write_index(2, 0xc0000000, ELO(USEG(code), f), ELO(USEG(code) + 0x1000, f), PM_4K);
    v = call(0xc0000000);
    printf("call mapped code at c0000000: v0=%u, exceptions %u\n", v, rt_exc.count);
    return 0;
}
