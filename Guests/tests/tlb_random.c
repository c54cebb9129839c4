// TLBWR: entries land in [Wired, 15] only (checked with TLBP, never printing which index or
// Random); Wired entries are never replaced; with Wired=15 TLBWR always writes entry 15;
// TLBWI ignores Wired.
#include "rt.h"

#define VA(i) (0x10000000u + ((u32)(i) << 13))

int main(void) {
    install_handlers();
    static const u32 wireds[] = {0, 4, 8, 14};
    for (u32 w = 0; w < countof(wireds); w++) {
        tlb_clear_all();
        u32 wired = wireds[w];
        mtc0(C0_WIRED, wired);
        /* the wired entries get marker VPNs */
        for (u32 i = 0; i < wired; i++)
            tlb_write_index(i, 0x40000000 + (i << 13), ELO(0x100000, ELO_V), 0, PM_4K);
        for (u32 k = 0; k < 64; k++) tlb_write_random(VA(k), ELO(0x200000, ELO_V), 0, PM_4K);
        u32 found = 0, bad = 0, wired_ok = 0;
        for (u32 k = 0; k < 64; k++) {
            u32 idx = tlb_probe(VA(k));
            if (idx & 0x80000000) continue;
            found++;
            if (idx < wired || idx > 15) bad++;
        }
        for (u32 i = 0; i < wired; i++)
            if (tlb_probe(0x40000000 + (i << 13)) == i) wired_ok++;
        printf("Wired=%2u: 64 tlbwr; found %s entries, %u outside [Wired,15]; wired entries intact %u/%u\n",
               wired, found >= 1 && found <= 16 - wired ? "1..(16-Wired)" : "an impossible number of",
               bad, wired_ok, wired);
    }
    tlb_clear_all();
    mtc0(C0_WIRED, 15);
    for (u32 k = 0; k < 5; k++) {
        tlb_write_random(VA(k), ELO(0x200000, ELO_V), 0, PM_4K);
        u32 idx = tlb_probe(VA(k));
        printf("Wired=15: tlbwr of VA %08x -> found at index %u\n", VA(k), idx);
    }
    tlb_write_index(3, VA(100), ELO(0x200000, ELO_V), 0, PM_4K);
    printf("Wired=15: tlbwi to index 3 -> found at index %u\n", tlb_probe(VA(100)));
    mtc0(C0_WIRED, 0);
    return 0;
}
