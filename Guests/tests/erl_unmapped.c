// Status.ERL=1 makes kuseg an unmapped, uncached window onto physical memory (VA = PA): a
// mapped useg address reads the TLB-mapped page with ERL=0 and physical memory with ERL=1;
// an unmapped useg address that would miss in the TLB does not fault with ERL=1.
#include "rt.h"

#define VA 0x00300000u /* mapped to `page`; physical 0x00300000 holds another marker */

static u32 page[1024] __attribute__((aligned(4096)));

static u32 load(u32 va, u32 erl) {
    u32 v = 0xdeadbeef, st = mfc0(C0_STATUS);
    exc_clear();
    /* set ERL, load, clear ERL: no memory access or exception-prone code in between */
    PROBE("mtc0 %2, $12\n\tehb\n\tlw %0, 0(%1)\n\tmtc0 %3, $12\n\tehb", : "+r"(v)
          : "r"(va), "r"(erl ? st | ST_ERL : st), "r"(st) : "memory");
    return v;
}

int main(void) {
    install_handlers();
    tlb_clear_all();
    page[0] = 0x7a9e0000;
    page[1] = 0x7a9e0004;
    *(volatile u32 *)(0x80000000u | VA) = 0x9a000000;
    *(volatile u32 *)(0x80000000u | (VA + 4)) = 0x9a000004;
    *(volatile u32 *)(0x80000000u | 0x00500000) = 0x9a500000;
    tlb_write_index(1, VA, ELO(USEG(page), ELO_C(3) | ELO_D | ELO_V | ELO_G), 0, PM_4K);
    u32 v = load(VA, 0);
    printf("ERL=0 lw %08x: %08x, exceptions %u\n", VA, v, rt_exc.count);
    v = load(VA + 4, 1);
    printf("ERL=1 lw %08x: %08x, exceptions %u\n", VA + 4, v, rt_exc.count);
    v = load(VA, 1);
    printf("ERL=1 lw %08x: %08x, exceptions %u\n", VA, v, rt_exc.count);
    v = load(VA + 4, 0);
    printf("ERL=0 lw %08x: %08x, exceptions %u\n", VA + 4, v, rt_exc.count);
    v = load(0x00500000, 1);
    printf("ERL=1 lw 00500000 (no TLB entry): %08x, exceptions %u\n", v, rt_exc.count);
    v = load(0x00500000, 0);
    printf("ERL=0 lw 00500000 (no TLB entry): %08x ", v);
    show_exc("exc");
    /* a store with ERL=1 goes to physical memory */
    u32 st = mfc0(C0_STATUS);
    __asm__ volatile("mtc0 %2, $12\n\tehb\n\tsw %0, 8(%1)\n\tmtc0 %3, $12\n\tehb"
                     : : "r"(0x5709e008), "r"(VA), "r"(st | ST_ERL), "r"(st) : "memory");
    printf("ERL=1 sw %08x: physical now %08x, page[2] %08x\n", VA + 8,
           *(volatile u32 *)(0x80000000u | (VA + 8)), page[2]);
    /* kseg2 stays mapped with ERL=1 */
    tlb_write_index(2, 0xc0000000, ELO(USEG(page), ELO_C(3) | ELO_D | ELO_V | ELO_G), 0, PM_4K);
    v = load(0xc0000004, 1);
    printf("ERL=1 lw c0000004 (kseg2 mapped): %08x, exceptions %u\n", v, rt_exc.count);
    return 0;
}
