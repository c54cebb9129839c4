// The 16550 UART at I/O port 0x3F8: scratch register, LCR and the divisor latch (DLAB), IER
// write mask, IIR with nothing pending / THR-empty interrupt (cleared by reading IIR) / FIFOs
// enabled, LSR when idle, MCR write mask, loopback (MSR follows MCR, data comes back in RBR).
// Nothing is printed while DLAB or loopback is on; all values are printed afterwards.
#include "rt.h"

#define R(reg) mmio_read8(UART_BASE + (reg))
#define W(reg, v) mmio_write8(UART_BASE + (reg), (v))

static void drain(void) {
    while (!(R(UART_LSR) & 0x40)) {
    }
}

int main(void) {
    u32 v[40];
    u32 n = 0;
    drain();
    /* initial state */
    v[n++] = R(UART_IER);
    v[n++] = R(UART_IIR);
    v[n++] = R(UART_LCR);
    v[n++] = R(UART_MCR);
    v[n++] = R(UART_LSR);
    printf("initial: IER=%02x IIR=%02x LCR=%02x MCR=%02x LSR=%02x\n", v[0], v[1], v[2], v[3], v[4]);
    /* scratch */
    W(UART_SCR, 0x5a);
    u32 s1 = R(UART_SCR);
    W(UART_SCR, 0xa5);
    u32 s2 = R(UART_SCR);
    printf("SCR: wrote 5a read %02x, wrote a5 read %02x\n", s1, s2);
    /* divisor latch */
    drain();
    u32 lcr = R(UART_LCR);
    W(UART_LCR, lcr | 0x80);
    u32 dll0 = R(UART_THR), dlm0 = R(UART_IER);
    W(UART_THR, 0x0c);
    W(UART_IER, 0x01);
    u32 dll1 = R(UART_THR), dlm1 = R(UART_IER), lcr1 = R(UART_LCR);
    W(UART_THR, dll0);
    W(UART_IER, dlm0);
    W(UART_LCR, lcr);
    u32 lcr2 = R(UART_LCR);
    printf("DLAB: LCR=%02x, divisor was %02x%02x, wrote 010c read %02x%02x, LCR after=%02x\n", lcr1,
           dlm0, dll0, dlm1, dll1, lcr2);
    W(UART_LCR, 0x1b); /* 8 bits, 2 stop, even parity */
    u32 lcr3 = R(UART_LCR);
    W(UART_LCR, lcr);
    printf("LCR wrote 1b read %02x, restored %02x\n", lcr3, R(UART_LCR));
    /* IER */
    drain();
    W(UART_IER, 0xff);
    u32 ier = R(UART_IER);
    u32 iir_thre = R(UART_IIR);
    u32 iir_after = R(UART_IIR);
    W(UART_IER, 0x00);
    u32 iir_none = R(UART_IIR);
    printf("IER wrote ff read %02x; IIR with THRE enabled %02x, read again %02x; IER=0: IIR %02x\n",
           ier, iir_thre, iir_after, iir_none);
    W(UART_IER, 0x02);
    u32 iir_thre2 = R(UART_IIR);
    W(UART_IER, 0x00);
    printf("IER=02 again: IIR %02x\n", iir_thre2);
    /* FIFOs */
    drain();
    W(UART_IIR, 0x07); /* FCR: enable and reset FIFOs */
    u32 iir_fifo = R(UART_IIR);
    W(UART_IIR, 0x00);
    u32 iir_nofifo = R(UART_IIR);
    printf("FCR=07: IIR %02x; FCR=00: IIR %02x\n", iir_fifo, iir_nofifo);
    /* MCR and loopback */
    drain();
    u32 mcr = R(UART_MCR);
    W(UART_MCR, 0xff);
    u32 mcr_ff = R(UART_MCR);
    u32 msr_loop = R(UART_MSR);
    W(UART_MCR, 0x10);
    u32 msr_loop0 = R(UART_MSR);
    W(UART_THR, 'Q');
    u32 spin = 0;
    while (!(R(UART_LSR) & 0x01) && spin < 100000) spin++;
    u32 lsr_rx = R(UART_LSR);
    u32 rbr = R(UART_THR);
    u32 lsr_after = R(UART_LSR);
    W(UART_MCR, mcr);
    printf("MCR wrote ff read %02x; loopback MSR with MCR=ff: %02x, MCR=10: %02x\n", mcr_ff,
           msr_loop & 0xf0, msr_loop0 & 0xf0);
    printf("loopback: sent 'Q', LSR=%02x RBR=%02x ('%c'), LSR after read=%02x\n", lsr_rx, rbr,
           rbr, lsr_after);
    drain();
    printf("LSR when idle: %02x\n", R(UART_LSR));
    return 0;
}
