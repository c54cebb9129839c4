import Testing
@testable import MagritteMachine

/// The 16550's registers as the Linux 8250 driver and polling loops use them; reset values and
/// the interrupt logic follow QEMU's `hw/char/serial.c`.
@Suite struct UARTTests {
    /// A UART whose output and interrupt line are recorded.
    final class Rig {
        let uart = UART16550()
        var output: [UInt8] = []
        var edges: [Bool] = []
        init() {
            uart.output = { [unowned self] in self.output.append($0) }
            uart.onInterruptChange = { [unowned self] in self.edges.append($0) }
        }
        func read(_ r: Int) -> UInt8 { UInt8(uart.read(offset: UInt32(r), size: 1)!) }
        func write(_ r: Int, _ v: UInt8) { #expect(uart.write(offset: UInt32(r), size: 1, value: UInt32(v))) }
    }

    @Test func resetValuesMatchQEMU() {
        let r = Rig()
        // Measured on QEMU 7.2 at the kernel's entry: RBR 0, IER 0, IIR 01, LCR 0, MCR 08,
        // LSR 60, MSR B0, SCR 0.
        #expect((0..<8).map(r.read) == [0x00, 0x00, 0x01, 0x00, 0x08, 0x60, 0xB0, 0x00])
        #expect(r.uart.divisor == 0x0C)
        #expect(!r.uart.interruptAsserted)
    }

    @Test func divisorLatchAccess() {
        let r = Rig()
        r.write(1, 0x05)  // IER
        r.write(3, 0x83)  // DLAB | 8N1
        r.write(0, 0x01)  // DLL
        r.write(1, 0x02)  // DLM
        #expect(r.read(0) == 0x01 && r.read(1) == 0x02)
        #expect(r.uart.divisor == 0x0201)
        #expect(r.output.isEmpty, "a DLL write is not a transmission")
        r.write(3, 0x03)
        #expect(r.read(1) == 0x05, "IER is back at offset 1 once DLAB is clear")
        #expect(r.read(3) == 0x03)
    }

    @Test func scratchRegister() {
        let r = Rig()
        for v: UInt8 in [0x00, 0x55, 0xAA, 0xFF] {
            r.write(7, v)
            #expect(r.read(7) == v)
        }
    }

    @Test func transmitIsInstant() {
        let r = Rig()
        for c in "Hi!\n".utf8 {
            #expect(r.read(5) & 0x20 != 0)
            r.write(0, c)
            #expect(r.read(5) & 0x60 == 0x60, "THRE and TEMT are set again after every write")
        }
        #expect(r.output == Array("Hi!\n".utf8))
        #expect(r.uart.transmittedCount == 4)
        r.write(5, 0x00)  // LSR is read-only
        #expect(r.read(5) == 0x60)
    }

    @Test func thrEmptyInterrupt() {
        let r = Rig()
        r.write(1, 0x02)  // ETBEI: THR is empty, so the interrupt is pending at once
        #expect(r.uart.interruptAsserted)
        #expect(r.read(2) == 0x02)
        // Reading IIR while it reports THRE clears that interrupt.
        #expect(!r.uart.interruptAsserted)
        #expect(r.read(2) == 0x01)
        r.write(0, UInt8(ascii: "x"))
        #expect(r.uart.interruptAsserted, "each transmitted byte re-arms THRE")
        #expect(r.edges == [true, false, true])
        r.write(1, 0x00)
        #expect(!r.uart.interruptAsserted)
        #expect(r.read(2) == 0x01)
    }

    @Test func receiveQueueWithoutFIFO() {
        let r = Rig()
        #expect(r.read(5) & 0x01 == 0)
        r.uart.receive(Array("ab".utf8))
        #expect(r.read(5) & 0x01 == 0x01)
        #expect(r.uart.queuedInputCount == 1, "one byte in RBR, one waiting on the host side")
        r.write(1, 0x01)  // ERBFI
        #expect(r.uart.interruptAsserted)
        #expect(r.read(2) == 0x04)
        #expect(r.read(0) == UInt8(ascii: "a"))
        #expect(r.read(5) & 0x01 == 0x01, "the next host byte moved in")
        #expect(r.read(0) == UInt8(ascii: "b"))
        #expect(r.read(5) & 0x01 == 0)
        #expect(!r.uart.interruptAsserted)
        #expect(r.read(2) == 0x01)
    }

    @Test func receiveFIFOWithTriggerAndTimeout() {
        let r = Rig()
        r.write(2, 0x81)  // FIFO on, trigger level 8
        #expect(r.read(2) & 0xC0 == 0xC0)
        r.write(1, 0x01)
        r.uart.receive(Array("xyz".utf8))
        #expect(r.read(5) & 0x01 == 0x01)
        #expect(!r.uart.interruptAsserted, "3 bytes are below the trigger level")
        r.uart.tick()  // the bytes just arrived
        #expect(!r.uart.interruptAsserted)
        r.uart.tick()  // a whole tick without a read: character timeout
        #expect(r.uart.interruptAsserted)
        #expect(r.read(2) == 0xCC)
        #expect(r.read(0) == UInt8(ascii: "x"))
        #expect(!r.uart.interruptAsserted, "reading clears the timeout")
        #expect(r.read(0) == UInt8(ascii: "y"))
        #expect(r.read(0) == UInt8(ascii: "z"))
        #expect(r.read(5) & 0x01 == 0)

        // 20 bytes: 16 in the FIFO (at or above the trigger), 4 wait on the host side.
        r.uart.receive((0..<20).map { UInt8(0x41 + $0) })
        #expect(r.uart.queuedInputCount == 4)
        #expect(r.uart.interruptAsserted)
        #expect(r.read(2) == 0xC4)
        var got: [UInt8] = []
        while r.read(5) & 0x01 != 0 { got.append(r.read(0)) }
        #expect(got == (0..<20).map { UInt8(0x41 + $0) })

        r.uart.receive([1, 2])
        r.uart.expireReceiveTimeout()
        #expect(r.read(2) == 0xCC)
        r.write(2, 0x83)  // clear the receive FIFO
        #expect(r.read(5) & 0x01 == 0)
        #expect(!r.uart.interruptAsserted)
    }

    @Test func loopbackAsLinuxProbesIt() {
        let r = Rig()
        r.write(4, 0x1A)  // LOOP | OUT2 | RTS
        #expect(r.read(6) & 0xF0 == 0x90, "8250 autoconfig expects DCD|CTS")
        r.write(0, 0x5A)
        #expect(r.output.isEmpty)
        #expect(r.read(5) & 0x01 == 0x01)
        r.write(0, 0xA5)  // overrun: RBR not read
        let lsr = r.read(5)
        #expect(lsr & 0x02 == 0x02)
        #expect(r.read(5) & 0x02 == 0, "reading LSR clears OE")
        #expect(r.read(0) == 0xA5)
        r.write(4, 0x08)
        r.write(0, 0x21)
        #expect(r.output == [0x21])
    }

    @Test func lineStatusInterrupt() {
        let r = Rig()
        r.write(1, 0x04)  // ELSI
        r.write(4, 0x18)
        r.write(0, 1)
        r.write(0, 2)  // overrun
        #expect(r.uart.interruptAsserted)
        #expect(r.read(2) == 0x06)
        _ = r.read(5)
        #expect(!r.uart.interruptAsserted)
    }

    @Test func registerShiftForTheCBUSUART() {
        let cbus = UART16550(registerShift: 3)
        #expect(cbus.read(offset: 5 << 3, size: 1) == 0x60)
        #expect(cbus.read(offset: 5 << 3, size: 4) == 0x60)
        #expect(cbus.write(offset: 7 << 3, size: 4, value: 0x1234_5677))
        #expect(cbus.scr == 0x77)
    }
}
