// CP0 write masks: each register is written with all ones and all zeros (and a pattern) and
// read back; read-only registers (PRId, Config1-3, BadVAddr, SRSCtl, IntCtl's IPTI...) ignore
// writes. Status is written inside one assembly block that restores it before anything else
// runs (it never drops out of kernel mode: KSU is only set together with EXL/ERL). Count and
// Random are never printed.
#include "rt.h"

#define RW(name, reg, sel, val)                                                               \
    do {                                                                                      \
        u32 old_ = MFC0_(reg, sel), got_;                                                     \
        __asm__ volatile("mtc0 %1, $%2, %3\n\tehb\n\tmfc0 %0, $%2, %3\n\tmtc0 %4, $%2, %3\n\tehb" \
                         : "=&r"(got_) : "r"((u32)(val)), "i"(reg), "i"(sel), "r"(old_) : "memory"); \
        if (reg == 13) got_ &= ~0x7c00u;                                                      \
        printf("%-9s ($%u.%u) write %08x read %08x\n", name, reg, sel, (u32)(val), got_);       \
    } while (0)
#define RW3(name, reg, sel)                                                                   \
    RW(name, reg, sel, 0xffffffff);                                                           \
    RW(name, reg, sel, 0x00000000);                                                           \
    RW(name, reg, sel, 0x5a5aa5a5)

int main(void) {
    install_handlers();
    tlb_clear_all();
    /* Status: also bits that would change the mode (EXL/ERL/KSU/BEV); restored at once */
    RW("Status", 12, 0, 0xffffffff);
    RW("Status", 12, 0, 0x00000000);
    RW("Status", 12, 0, 0x1278ff1f);
    RW("Status", 12, 0, 0xed870000);
    RW("Status", 12, 0, 0x0000001e); /* KSU=11 (reserved) is harmless while EXL=ERL=1 */
    RW3("Cause", 13, 0); /* masked with ~7c00: IP2..IP6 are hardware lines */
    RW3("EPC", 14, 0);
    RW3("ErrorEPC", 30, 0);
    RW3("BadVAddr", 8, 0);
    RW3("Index", 0, 0);
    RW3("EntryLo0", 2, 0);
    RW3("EntryLo1", 3, 0);
    RW3("Context", 4, 0);
    RW3("PageMask", 5, 0);
    RW3("Wired", 6, 0);
    RW3("HWREna", 7, 0);
    RW3("EntryHi", 10, 0);
    RW3("Compare", 11, 0);
    RW3("IntCtl", 12, 1);
    RW3("SRSCtl", 12, 2);
    RW3("SRSMap", 12, 3);
    RW3("PRId", 15, 0);
    RW("EBase", 15, 1, 0xffffffff);
    RW("EBase", 15, 1, 0x00000000);
    RW3("Config", 16, 0);
    RW3("Config1", 16, 1);
    RW3("Config2", 16, 2);
    RW3("Config3", 16, 3);
    RW3("LLAddr", 17, 0);
    RW3("WatchLo", 18, 0);
    RW3("WatchHi", 19, 0);
    RW3("ErrCtl", 26, 0);
    RW3("TagLo", 28, 0);
    RW3("DataLo", 28, 1);
    RW3("DESAVE", 31, 0);
    RW("PageGrain", 5, 1, 0xffffffff);
    RW("UserLocal", 4, 2, 0xffffffff);
    /* Count: writable, but only "it took the value" is printed */
    mtc0(C0_COUNT, 0x40000000);
    u32 c = mfc0(C0_COUNT);
    printf("Count write 40000000: read back within [40000000, 40100000): %s\n",
           c >= 0x40000000 && c < 0x40100000 ? "yes" : "no");
    return 0;
}
