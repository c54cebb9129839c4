// winirq: a user program whose device-window store raises an interrupt (the VMM's long quanta).
/* Under the VMM a guest in user mode runs in long quanta (the ends of the 4096-slot quanta in
 * between are skipped) up to its first exit. Its device accesses through a TLB mapping of the
 * ISA I/O page run on the CPU (the device window, without an exit), and one that makes an
 * interrupt deliverable is followed by the interrupt there (`VMM.takeWindowInterrupt`), not by an
 * exit: the kernel's handler then runs for a while in the same quantum before its first exit.
 * This program makes that happen once a round, the store that enables the UART's THRE interrupt
 * (IRQ 4 through the i8259, level-triggered) coming a few slots later each round, so that the
 * handler's first instructions meet the ends of the quanta at many offsets; the run must be the
 * same whether those ends are skipped or not (VMMQuantumTests.interruptsOnGuestsSkipExactly). */
#include "rt.h"

#define ISA_IO 0xB8000000u
#define UVA 0x00400000u /* useg page mapped to the ISA I/O page (guest-physical 0x18000000) */
#define ROUNDS 900u

static volatile u32 irqs;

static void outb(u8 v, u32 port) { *(volatile u8 *)(ISA_IO + port) = v; }

static void irq_hook(struct frame *f) {
    if (CA_EXC(f->cause) != EXC_INT) {
        exc_default_policy(f);
        return;
    }
    irqs++;
    mmio_write8(UART_BASE + UART_IER, 0); /* the UART drops IRQ 4; level-triggered, so does the PIC */
}

/* In user mode, through the mapping only (no kseg0 address): reads of the UART's scratch
 * register, then the store that enables THRE (taken right after it), then more reads. */
static u32 user_rounds(u32 rounds) {
    volatile u8 *scr = (volatile u8 *)(UVA + 0x3F8 + UART_SCR);
    volatile u8 *ier = (volatile u8 *)(UVA + 0x3F8 + UART_IER);
    u32 sum = 0;
    for (u32 r = 0; r < rounds; r++) {
        *scr = (u8)r;
        for (u32 i = 0; i < 1000 + r; i++) sum += *scr;
        *ier = 0x02;
        for (u32 i = 0; i < 200; i++) sum += *scr;
    }
    return sum;
}

int main(void) {
    install_handlers();
    rt_exc_hook = irq_hook;
    outb(0x11, 0x20); /* ICW1 */
    outb(0x00, 0x21); /* ICW2: vectors 0-7 */
    outb(0x04, 0x21); /* ICW3: slave on IRQ 2 */
    outb(0x01, 0x21); /* ICW4 */
    outb(0xEF, 0x21); /* all masked but IRQ 4 */
    outb(0x10, 0x4D0); /* IRQ 4 level-triggered */
    mmio_write8(UART_BASE + UART_SCR, 0x5A);
    u32 flags = ELO_C(2) | ELO_D | ELO_V | ELO_G;
    tlb_write_index(1, UVA, ELO(0x18000000u, flags), ELO(0x18001000u, flags), PM_4K);
    mtc0(C0_STATUS, (mfc0(C0_STATUS) & ~0xff00u) | ST_IM(2) | ST_IE);
    u32 sum = run_in_mode(KSU_USER, user_rounds, ROUNDS);
    mtc0(C0_STATUS, mfc0(C0_STATUS) & ~(ST_IM(2) | ST_IE));
    printf("winirq: %u interrupts in %u rounds, sum %u\n", irqs, ROUNDS, sum);
    return 0;
}
