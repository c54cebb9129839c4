// devwin: device accesses of every kind, for the VMM's device window (DeviceWindowTests).
/* Under the VMM a guest's device page may be mapped to the machine's device window, so that its
 * plain loads and stores there run on the CPU; everything else must behave as when every device
 * access trapped. This program makes each kind of access to device pages once the page has been
 * reached by a plain load (so it is mapped, when the VMM maps devices) and prints what it saw:
 * plain and partial-word accesses to the boot ROM (a device: reads give its bytes, writes are
 * ignored), LL and SC there, an SC whose LL was to RAM at an address the TLB then maps to the
 * ROM, loads and stores where no device answers (DeviceWindowTests maps one that never answers
 * at guest-physical 0x1D000000: a bus error; elsewhere they read 0), a jump into the ROM (a
 * fetch from a device: a bus error under the VMM), the UART's THRE interrupt raised by a store
 * to its IER (taken right after the store), and a PIT polling loop. */
#include "rt.h"

#define ROM 0xBFC00000u     /* the boot ROM through kseg1 */
#define NOTHING 0xBD000000u /* guest-physical 0x1D000000 */
#define ISA_IO 0xB8000000u
#define VA 0x00400000u /* a TLB-mapped page */

static u32 ram_page[1024] __attribute__((aligned(8192)));

static void outb(u8 v, u32 port) { *(volatile u8 *)(ISA_IO + port) = v; }
static u8 inb(u32 port) { return *(volatile u8 *)(ISA_IO + port); }

#define LOAD(op, addr)                                                                        \
    do {                                                                                      \
        u32 d = 0xdeadbeef;                                                                   \
        exc_clear();                                                                          \
        PROBE(op " %0, 0(%1)", : "+r"(d) : "r"(addr) : "memory");                            \
        printf("%-4s %08x rt=%08x ", op, (u32)(addr), d);                                      \
        show_exc("exc");                                                                      \
    } while (0)
#define STORE(op, addr, v)                                                                    \
    do {                                                                                      \
        u32 d = (v);                                                                          \
        exc_clear();                                                                          \
        PROBE(op " %0, 0(%1)", : "+r"(d) : "r"(addr) : "memory");                            \
        printf("%-4s %08x rt=%08x ", op, (u32)(addr), d);                                      \
        show_exc("exc");                                                                      \
    } while (0)

int main(void) {
    install_handlers();
    /* Plain loads map the ROM's page pair (0xBFC00000, 0xBFC01000). */
    LOAD("lw", ROM + 0x10);
    LOAD("lw", ROM + 0x1010);
    LOAD("lhu", ROM + 0x12);
    LOAD("lb", ROM + 0x13);
    /* Partial-word, linked and conditional accesses to the mapped page. */
    LOAD("lwl", ROM + 0x21);
    LOAD("lwr", ROM + 0x22);
    STORE("swl", ROM + 0x21, 0x12345678);
    STORE("swr", ROM + 0x22, 0x12345678);
    STORE("sc", ROM + 0x20, 0x5555);
    LOAD("ll", ROM + 0x20);
    STORE("sc", ROM + 0x20, 0x6666);
    STORE("sw", ROM + 0x20, 0x7777);
    LOAD("lw", ROM + 0x20);
    printf("lladdr %08x\n", mfc0(C0_LLADDR));

    /* LL to RAM, then the same virtual page remapped to the ROM, then SC there. */
    u32 pa = (u32)ram_page & 0x1FFFFFFFu;
    ram_page[0] = 0x42;
    tlb_write_index(1, VA, ELO(pa, ELO_V | ELO_D | ELO_C(2)), 0, PM_4K);
    LOAD("ll", VA);
    tlb_write_index(1, VA, ELO(0x1FC00000u, ELO_V | ELO_D | ELO_C(2)), 0, PM_4K);
    LOAD("lw", VA + 4);
    STORE("sc", VA, 0x42);
    tlb_write_index(1, 0x80000000u, 0, 0, PM_4K);

    /* Where nothing answers. */
    LOAD("lw", NOTHING);
    LOAD("lbu", NOTHING + 1);
    STORE("sw", NOTHING + 8, 0x99);
    STORE("sb", NOTHING + 9, 0x99);
    LOAD("lw", NOTHING + 0x10);

    /* A fetch from the ROM's mapped page. */
    exc_clear();
    PROBE("jr %0\n\tnop", : : "r"(ROM + 0x40) : "memory");
    show_exc("jr rom+0x40");

    /* The UART's THRE interrupt, through the i8259 (IRQ 4, Cause.IP2), raised by the store that
     * enables it: taken before the instruction after it. */
    outb(0x11, 0x20); /* ICW1 */
    outb(0x00, 0x21); /* ICW2: vectors 0-7 */
    outb(0x04, 0x21); /* ICW3: slave on IRQ 2 */
    outb(0x01, 0x21); /* ICW4 */
    outb(0xEF, 0x21); /* all masked but IRQ 4 */
    (void)inb(0x3FA);
    mtc0(C0_STATUS, mfc0(C0_STATUS) | ST_IM(2) | ST_IE);
    exc_clear();
    PROBE("sb %0, 0(%1)\n\tnop\n\tnop", : : "r"(0x02), "r"(UART_BASE + UART_IER) : "memory");
    mtc0(C0_STATUS, mfc0(C0_STATUS) & ~(ST_IM(2) | ST_IE));
    show_exc("sb ier=thre");
    mmio_write8(UART_BASE + UART_IER, 0);
    outb(0xFF, 0x21);

    /* A PIT polling loop whose values depend on the instruction of each read. */
    outb(0x34, 0x43);
    outb(0x00, 0x40);
    outb(0x10, 0x40);
    u32 hash = 0x811c9dc5u;
    for (int i = 0; i < 2000; i++) {
        outb(0x00, 0x43);
        u32 c = inb(0x40);
        c |= (u32)inb(0x40) << 8;
        hash = (hash ^ c) * 16777619u;
    }
    printf("devwin: PIT hash %08x count %08x\n", hash, mfc0(C0_COUNT));
    return 0;
}
