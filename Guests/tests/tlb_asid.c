// ASID matching: a non-global entry matches only when EntryHi.ASID equals its ASID; two entries
// for the same VPN with different ASIDs each serve their own address space; a global entry
// (G in both EntryLo) matches every ASID; G in only one EntryLo makes the entry non-global.
#include "rt.h"

static u32 page_a[1024] __attribute__((aligned(4096)));
static u32 page_b[1024] __attribute__((aligned(4096)));
static u32 page_g[1024] __attribute__((aligned(4096)));

static void load(u32 asid, u32 va) {
    u32 v = 0xdeadbeef;
    mtc0(C0_ENTRYHI, asid);
    exc_clear();
    PROBE("lw %0, 0(%1)", : "+r"(v) : "r"(va) : "memory");
    printf("ASID %02x lw %08x: ", asid, va);
    if (rt_exc.count)
        printf("%s vec=%03x\n", exc_name(CA_EXC(rt_exc.cause)), rt_exc.vector);
    else
        printf("%08x\n", v);
}

int main(void) {
    install_handlers();
    tlb_clear_all();
    page_a[0] = 0xaaaaaaaa;
    page_b[0] = 0xbbbbbbbb;
    page_g[0] = 0x99999999;
    page_g[1024 - 1] = 0x99990fff;
    u32 f = ELO_C(3) | ELO_D | ELO_V;
    tlb_write_index(2, 0x50000010, ELO(USEG(page_a), f), 0, PM_4K);          /* ASID 10 */
    tlb_write_index(3, 0x50000020, ELO(USEG(page_b), f), 0, PM_4K);          /* ASID 20 */
    tlb_write_index(4, 0x50002010, ELO(USEG(page_g), f | ELO_G), ELO(USEG(page_g), f | ELO_G), PM_4K);
    tlb_write_index(5, 0x50004010, ELO(USEG(page_g), f | ELO_G), ELO(USEG(page_g), f), PM_4K); /* G in Lo0 only */
    tlb_write_index(6, 0x50006010, ELO(USEG(page_g), f), ELO(USEG(page_g), f | ELO_G), PM_4K); /* G in Lo1 only */
    static const u32 asids[] = {0x10, 0x20, 0x30, 0x00, 0xff};
    for (u32 i = 0; i < countof(asids); i++) {
        load(asids[i], 0x50000000);
        load(asids[i], 0x50002ffc);
        load(asids[i], 0x50004000);
        load(asids[i], 0x50006000);
    }
    /* tlbp follows the same rules */
    for (u32 i = 0; i < 3; i++) {
        u32 hi = 0x50000000 | asids[i];
        printf("tlbp %08x -> %08x\n", hi, tlb_probe(hi));
    }
    mtc0(C0_ENTRYHI, 0);
    return 0;
}
