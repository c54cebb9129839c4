// rtcpoll: polls the RTC, the PIT and the UART as Linux's early boot does (VMM device polling).
/* Device polling under the VMM (Tests/HypervisorTests/DevicePollingTests.swift). Every device
 * access of a guest is an exit; Linux on the Malta calibrates its clock by reading the RTC's
 * register A in a loop through out-of-line accessors that load the I/O port base from RAM
 * (mips_io_port_base). This program polls the same way: the RTC's register C until its periodic
 * flag is set (1024 Hz, four times, reading Count at each), the PIT's channel 0 latched and read
 * in a loop, and the UART's line status on every character it prints. What it prints depends on
 * the instruction at which each device register was read (the counts, the PIT's values and
 * Count), so the VMM must emulate every instruction of these loops in its own slot of time. */
#include "rt.h"

#define ISA_IO 0xB8000000u /* ISA I/O ports through kseg1 */

volatile u32 io_port_base = ISA_IO;

__attribute__((noinline)) static u8 inb(u32 port) { return *(volatile u8 *)(io_port_base + port); }
__attribute__((noinline)) static void outb(u8 v, u32 port) { *(volatile u8 *)(io_port_base + port) = v; }
__attribute__((noinline)) static u8 cmos_read(u8 reg) {
    outb(reg, 0x70);
    return inb(0x71);
}

static u32 mix(u32 h, u32 v) { return (h ^ v) * 16777619u; }

int main(void) {
    /* Register A as Linux leaves it: 32.768 kHz divider, periodic rate 6 (1024 Hz). */
    outb(0x0A, 0x70);
    outb(0x26, 0x71);
    (void)cmos_read(0x0C); /* clear the flags */
    u32 hash = 0x811c9dc5u, polls[4];
    for (int i = 0; i < 4; i++) {
        u32 n = 0;
        while (!(cmos_read(0x0C) & 0x40)) n++; /* register C's PF */
        polls[i] = n;
        hash = mix(hash, mfc0(C0_COUNT));
    }
    /* PIT channel 0: mode 2, reload 0x1000; its count latched and read 3000 times. */
    outb(0x34, 0x43);
    outb(0x00, 0x40);
    outb(0x10, 0x40);
    u32 changes = 0, last = 0x10000;
    for (int i = 0; i < 3000; i++) {
        outb(0x00, 0x43);
        u32 c = inb(0x40);
        c |= (u32)inb(0x40) << 8;
        if (c != last) changes++;
        last = c;
        hash = mix(hash, c);
    }
    printf("rtcpoll: register C polled %u, %u, %u, %u times\n", polls[0], polls[1], polls[2], polls[3]);
    printf("rtcpoll: PIT count changed %u times in 3000 reads, hash %08x\n", changes, hash);
    return 0;
}
