// TLBWI/TLBR/TLBP round trips: EntryHi/EntryLo0/EntryLo1/PageMask written, read back through
// the registers and through the TLB (G is the AND of both G bits; tlbr sets the ASID), Index
// after a hit and a miss (P bit), write masks of Index/EntryHi/EntryLo/PageMask, invalid page
// masks, Wired writes. Random is never printed.
#include "rt.h"

static void rw_regs(const char *name, u32 v, u32 got) { printf("%-9s write %08x read %08x\n", name, v, got); }

static void dump(u32 i) {
    struct tlb_entry e = tlb_read_index(i);
    printf("tlbr %2u: EntryHi=%08x Lo0=%08x Lo1=%08x PageMask=%08x\n", i, e.entryhi, e.entrylo0,
           e.entrylo1, e.pagemask);
}

int main(void) {
    install_handlers();
    tlb_clear_all();
    static const u32 vals[] = {0xffffffff, 0x00000000, 0x55555555, 0xaaaaaaaa};
    for (u32 i = 0; i < countof(vals); i++) {
        u32 v = vals[i];
        mtc0(C0_ENTRYHI, v);   rw_regs("EntryHi", v, mfc0(C0_ENTRYHI));
        mtc0(C0_ENTRYLO0, v);  rw_regs("EntryLo0", v, mfc0(C0_ENTRYLO0));
        mtc0(C0_ENTRYLO1, v);  rw_regs("EntryLo1", v, mfc0(C0_ENTRYLO1));
        mtc0(C0_PAGEMASK, v);  rw_regs("PageMask", v, mfc0(C0_PAGEMASK));
        mtc0(C0_INDEX, v);     rw_regs("Index", v, mfc0(C0_INDEX));
    }
    static const u32 masks[] = {PM_4K, PM_16K, PM_64K, PM_256K, PM_1M, PM_4M, PM_16M, 0x00002000,
                                0x00004000, 0x0000a000, 0x00018000, 0x01ffe000 | 0x2000000, 0x00001fff};
    for (u32 i = 0; i < countof(masks); i++) {
        mtc0(C0_PAGEMASK, masks[i]);
        rw_regs("PageMask", masks[i], mfc0(C0_PAGEMASK));
    }

    /* entries with distinct patterns, written with tlbwi and read with tlbr */
    tlb_write_index(1, 0x00400005, ELO(0x01000000, ELO_C(3) | ELO_D | ELO_V | ELO_G),
                    ELO(0x01001000, ELO_C(2) | ELO_V | ELO_G), PM_4K);
    tlb_write_index(2, 0x00802042, ELO(0x02000000, ELO_C(3) | ELO_V),
                    ELO(0x02004000, ELO_C(3) | ELO_D | ELO_V | ELO_G), PM_16K); /* G only in Lo1 */
    tlb_write_index(3, 0x10000077, ELO(0x03000000, ELO_C(7) | ELO_D), 0xffffffff, PM_1M);
    tlb_write_index(4, 0xfffff0ff, 0xffffffff, 0xffffffff, 0xffffffff);
    tlb_write_index(5, 0x7fffe0aa, 0x3fffffff, 0xc0000001, PM_16M);
    /* VPN2 bits under the page mask, PFN bits under the page mask */
    tlb_write_index(6, 0x20036011, ELO(0x00a05000, ELO_V | ELO_D), ELO(0x00a07000, ELO_V), PM_16K);
    tlb_write_index(15, 0x00ffe0ff, 0x00000007, 0x00000007, PM_4K);
    mtc0(C0_ENTRYHI, 0x000000ee);
    for (u32 i = 1; i <= 6; i++) dump(i);
    dump(15);
    dump(7); /* untouched: what tlb_clear_all wrote */
    mtc0(C0_INDEX, 2);
    __asm__ volatile("tlbr\n\tehb" ::: "memory");
    printf("EntryHi after a raw tlbr of entry 2 (ASID from the entry): %08x\n", mfc0(C0_ENTRYHI));
    mtc0(C0_ENTRYHI, 0x000000ee);

    /* tlbp: hits and misses */
    static const u32 probes[] = {
        0x00400005, 0x00401005, 0x00400006, /* entry 1: global: any ASID matches */
        0x00802042, 0x00802043, 0x00804042, /* entry 2: not global: ASID must match */
        0x10000077, 0x10123077, 0x101fe077, 0x10200077, /* entry 3: 1M pages */
        0x20036011, 0x20034011, 0x20030011, /* entry 6: 16K page, VPN2 low bits under mask */
        0x00ffe0ff, 0x00ffe000, 0x12345000,
    };
    for (u32 i = 0; i < countof(probes); i++) {
        mtc0(C0_INDEX, 0x0000000c);
        u32 idx = tlb_probe(probes[i]);
        printf("tlbp EntryHi=%08x -> Index=%08x%s\n", probes[i], idx,
               (idx & 0x80000000) ? " (miss)" : "");
    }
    /* Wired */
    static const u32 wired[] = {0, 1, 5, 15, 16, 17, 31, 0xffffffff, 0};
    for (u32 i = 0; i < countof(wired); i++) {
        mtc0(C0_WIRED, wired[i]);
        u32 w = mfc0(C0_WIRED), r = mfc0(C0_RANDOM);
        printf("Wired write %08x read %08x, Random in [Wired,15]: %s\n", wired[i], w,
               (r >= w && r <= 15) ? "yes" : "no");
    }
    /* Index write with P set */
    mtc0(C0_INDEX, 0x80000003);
    printf("Index write 80000003 read %08x\n", mfc0(C0_INDEX));
    mtc0(C0_INDEX, 0x00000013);
    printf("Index write 00000013 read %08x\n", mfc0(C0_INDEX));
    return 0;
}
