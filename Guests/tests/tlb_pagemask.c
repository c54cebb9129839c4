// Page sizes 4K 16K 64K 256K 1M 4M 16M: one TLB entry maps an even and an odd page of the size
// given by PageMask; reads at both ends of both pages hit the right physical memory, the
// address just past the pair misses; PFN bits below the page size are ignored.
#include "rt.h"

#define VA_BASE 0x40000000u
#define PHYS 0x04000000u /* 64 MB: unused by the program */

static const struct { u32 mask, size; const char *name; } sizes[] = {
    {PM_4K, 0x1000, "4K"}, {PM_16K, 0x4000, "16K"}, {PM_64K, 0x10000, "64K"},
    {PM_256K, 0x40000, "256K"}, {PM_1M, 0x100000, "1M"}, {PM_4M, 0x400000, "4M"},
    {PM_16M, 0x1000000, "16M"},
};

static void mark(u32 pa, u32 v) { *(volatile u32 *)(0x80000000u | pa) = v; }

static u32 load(u32 va) {
    u32 v = 0xdeadbeef;
    PROBE("lw %0, 0(%1)", : "+r"(v) : "r"(va) : "memory");
    return v;
}

int main(void) {
    install_handlers();
    tlb_clear_all();
    for (u32 i = 0; i < countof(sizes); i++) {
        u32 s = sizes[i].size;
        u32 even = PHYS, odd = PHYS + 2 * s; /* odd page not adjacent to the even one */
        if (s == 0x1000000) even = 0x02000000, odd = 0x06000000;
        mark(even, 0xe0000000 | i);
        mark(even + s - 4, 0xe1000000 | i);
        mark(odd, 0x0d000000 | i);
        mark(odd + s - 4, 0x0d100000 | i);
        u32 g = ELO_C(3) | ELO_D | ELO_V | ELO_G;
        tlb_write_index(1, VA_BASE, ELO(even, g), ELO(odd, g), sizes[i].mask);
        struct tlb_entry e = tlb_read_index(1);
        exc_clear();
        u32 a = load(VA_BASE), b = load(VA_BASE + s - 4), c = load(VA_BASE + s),
            d = load(VA_BASE + 2 * s - 4);
        u32 before = rt_exc.count;
        load(VA_BASE + 2 * s);
        printf("%-4s PageMask=%08x: even[0]=%08x even[end]=%08x odd[0]=%08x odd[end]=%08x, "
               "past the pair: %s\n",
               sizes[i].name, e.pagemask, a, b, c, d,
               rt_exc.count > before ? exc_name(CA_EXC(rt_exc.cause)) : "hit");
        if (before) printf("  unexpected exceptions: %u\n", before);
    }
    /* PFN bits under the mask are ignored: 64K pages with PFN + 0x3000 */
    u32 s = 0x10000;
    mark(PHYS, 0x64646464);
    mark(PHYS + 0x3000, 0x33333333);
    tlb_write_index(1, VA_BASE, ELO(PHYS + 0x3000, ELO_C(3) | ELO_V | ELO_G),
                    ELO(PHYS + s + 0x3000, ELO_C(3) | ELO_V | ELO_G), PM_64K);
    printf("64K page, PFN with low bits set: VA+0 reads %08x (PA+0 = 64646464, PA+3000 = 33333333)\n", load(VA_BASE));
    /* VPN2 bits under the mask are ignored when matching */
    tlb_write_index(1, VA_BASE + 0x5000, ELO(PHYS, ELO_C(3) | ELO_V | ELO_G),
                    ELO(PHYS + s, ELO_C(3) | ELO_V | ELO_G), PM_64K);
    exc_clear();
    printf("64K pair written with VPN2 = base+0x5000: VA base+0 reads %08x (%s)\n", load(VA_BASE),
           rt_exc.count ? "miss" : "hit");
    mtc0(C0_PAGEMASK, 0);
    return 0;
}
