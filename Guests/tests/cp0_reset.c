// CP0 values at program entry (QEMU's boot stub has run; no CP0 write by this program before
// the dump): PRId, Config0-3, Config4-7 (unimplemented), IntCtl, SRSCtl, SRSMap, EBase, Status,
// Cause, Wired, PageMask, EntryHi, Context, HWREna, Compare, WatchLo/Hi, Debug, PerfCtl,
// ErrCtl, TagLo/DataLo; unimplemented registers and selects (QEMU reads ~0 or 0, no exception).
// Random and Count are not printed.
#include "rt.h"

#define SHOW(name, reg, sel)                                                                  \
    printf("%-9s ($%u sel %u) = %08x\n", name, reg, sel, MFC0_(reg, sel))

int main(void) {
    u32 status = mfc0(C0_STATUS), cause = mfc0(C0_CAUSE);
    printf("%-9s ($12 sel 0) = %08x\n", "Status", status);
    /* IP2 (the i8259 cascade: QEMU's PIT ticks from power-on) may or may not be pending yet */
    printf("%-9s ($13 sel 0) = %08x (IP2..IP6 not shown)\n", "Cause", cause & ~0x7c00u);
    SHOW("Index", 0, 0);
    SHOW("EntryLo0", 2, 0);
    SHOW("EntryLo1", 3, 0);
    SHOW("Context", 4, 0);
    SHOW("PageMask", 5, 0);
    SHOW("Wired", 6, 0);
    SHOW("HWREna", 7, 0);
    SHOW("EntryHi", 10, 0);
    SHOW("Compare", 11, 0);
    SHOW("IntCtl", 12, 1);
    SHOW("SRSCtl", 12, 2);
    SHOW("SRSMap", 12, 3);
    SHOW("PRId", 15, 0);
    SHOW("EBase", 15, 1);
    SHOW("Config", 16, 0);
    SHOW("Config1", 16, 1);
    SHOW("Config2", 16, 2);
    SHOW("Config3", 16, 3);
    SHOW("Config4", 16, 4);
    SHOW("Config5", 16, 5);
    SHOW("Config6", 16, 6);
    SHOW("Config7", 16, 7);
    SHOW("WatchLo", 18, 0);
    SHOW("WatchHi", 19, 0);
    SHOW("Debug", 23, 0);
    SHOW("PerfCtl0", 25, 0);
    SHOW("ErrCtl", 26, 0);
    SHOW("TagLo", 28, 0);
    SHOW("DataLo", 28, 1);
    SHOW("TagHi", 29, 0);
    SHOW("DESAVE", 31, 0);
    /* decoded Config1: MMU size, caches, FP */
    u32 c1 = mfc0(C0_CONFIG1);
    printf("Config1: MMUSize-1=%u IS=%u IL=%u IA=%u DS=%u DL=%u DA=%u C2=%u MD=%u PC=%u WR=%u CA=%u EP=%u FP=%u\n",
           (c1 >> 25) & 63, (c1 >> 22) & 7, (c1 >> 19) & 7, (c1 >> 16) & 7, (c1 >> 13) & 7,
           (c1 >> 10) & 7, (c1 >> 7) & 7, (c1 >> 6) & 1, (c1 >> 5) & 1, (c1 >> 4) & 1,
           (c1 >> 3) & 1, (c1 >> 2) & 1, (c1 >> 1) & 1, c1 & 1);
    u32 c0 = mfc0(C0_CONFIG);
    printf("Config0: M=%u BE=%u AT=%u AR=%u MT=%u K0=%u\n", c0 >> 31, (c0 >> 15) & 1,
           (c0 >> 13) & 3, (c0 >> 10) & 7, (c0 >> 7) & 7, c0 & 7);
    u32 c3 = mfc0(C0_CONFIG3);
    printf("Config3: ULRI=%u DSPP=%u VEIC=%u VInt=%u SP=%u MT=%u SM=%u TL=%u\n", (c3 >> 13) & 1,
           (c3 >> 10) & 1, (c3 >> 6) & 1, (c3 >> 5) & 1, (c3 >> 4) & 1, (c3 >> 2) & 1,
           (c3 >> 1) & 1, c3 & 1);
    /* registers that do not exist on a 24Kc */
    puts("unimplemented selects:");
    SHOW("$7.1", 7, 1);
    SHOW("$9.1", 9, 1);
    SHOW("$12.4", 12, 4);
    SHOW("$15.2", 15, 2);
    SHOW("$21.0", 21, 0);
    SHOW("$22.0", 22, 0);
    SHOW("$5.1 PageGrain", 5, 1);
    SHOW("$4.2 UserLocal", 4, 2);
    return 0;
}
