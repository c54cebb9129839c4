import Testing
import MagritteCore
@testable import MagritteMachine

/// The Malta's physical address space: RAM, device windows, and what unassigned addresses do
/// (matched to measurements on QEMU 7.2, see Docs/board.md).
@Suite struct BusTests {
    @Test func ramPagesAreBoundsCheckedPointerArithmetic() throws {
        let bus = MaltaBus(ramSize: 64 << 20)
        let frames = UInt32((64 << 20) >> 12)
        let first = try #require(bus.ramPage(frame: 0))
        #expect(UInt(bitPattern: first) % 4096 == 0)
        #expect(bus.ramPage(frame: 1) == first + 4096)
        #expect(bus.ramPage(frame: frames - 1) == first + Int(frames - 1) * 4096)
        #expect(bus.ramPage(frame: frames) == nil)
        #expect(bus.ramPage(frame: 0x1_FC00) == nil)
        #expect(bus.ramPage(frame: 0xF_FFFF) == nil)
        #expect(bus.readRAM(at: 0x3FF_FFFC, count: 4) == [0, 0, 0, 0])
        #expect(bus.readRAM(at: 0x3FF_FFFC, count: 5) == nil)
    }

    @Test func unassignedAddressesReadZeroInTheLowWindow() {
        let malta = Malta()
        let bus = malta.bus
        // QEMU's Malta: no bus error below 0x20000000.
        for a: UInt32 in [0x1F10_0000, 0x1000_0000, 0x0800_0000, 0x1A00_0000, 0x1F00_0940, 0x1BE0_1000] {
            #expect(bus.read(a, size: 4) == 0)
            #expect(bus.write(a, size: 4, value: 1))
        }
        // The GT-64120's registers answer at 0x1BE00000 (CPU interface: little-endian).
        #expect(bus.read(0x1BE0_0000, size: 4) == 0x1000)
        // Above it (reachable through the TLB only) nothing answers.
        for a: UInt32 in [0x2000_0000, 0x4000_0000, 0x8000_1000, 0xFFFF_F000] {
            #expect(bus.read(a, size: 4) == nil)
            #expect(!bus.write(a, size: 4, value: 1))
        }
        bus.unassignedLowWindowReadsZero = false
        #expect(bus.read(0x1F10_0000, size: 4) == nil)
        #expect(!bus.write(0x1000_0000, size: 1, value: 0))
    }

    @Test func isaPortsAreBytesWide() {
        let malta = Malta()
        let bus = malta.bus
        // A word read at 0x3F8 is RBR, IER, IIR, LCR (QEMU reads 0x00010000).
        #expect(bus.read(0x1800_03F8, size: 4) == 0x0001_0000)
        #expect(bus.read(0x1800_03FD, size: 1) == 0x60)
        #expect(bus.read(0x1800_03FC, size: 2) == 0x6008)
        // Ports nothing decodes float high.
        #expect(bus.read(0x1800_0300, size: 1) == 0xFF)
        #expect(bus.read(0x1800_0400, size: 4) == 0xFFFF_FFFF)
        #expect(bus.read(0x1800_FFFC, size: 4) == 0xFFFF_FFFF)
        // Beyond the 64 KiB port space, the PCI I/O window reads 0.
        #expect(bus.read(0x1801_0000, size: 4) == 0)
        // A word write at 0x3FC writes MCR, LSR (ignored), MSR (ignored) and SCR.
        #expect(bus.write(0x1800_03FC, size: 4, value: 0x5A00_0008))
        #expect(malta.uart.scr == 0x5A)
        #expect(malta.isa.deviceName(at: 0x3FB) == "uart")
    }

    @Test func fpgaRegisters() {
        let malta = Malta()
        let bus = malta.bus
        #expect(bus.read(0x1F00_0208, size: 4) == 0x10)  // STATUS: little-endian
        #expect(bus.read(0x1F00_0508, size: 4) == 0x0A)  // BRKRES reset value
        #expect(bus.write(0x1F00_0408, size: 4, value: 0x1A5))
        #expect(bus.read(0x1F00_0408, size: 4) == 0xA5)
        #expect(malta.fpga.ledText == "# #  # #")
        #expect(bus.write(0x1F00_0410, size: 4, value: 0xCAFE))
        #expect(malta.fpga.displayText == "0000CAFE")
        for (i, c) in "MAGRITTE".utf8.enumerated() {
            #expect(bus.write(0x1F00_0418 + UInt32(8 * i), size: 4, value: UInt32(c)))
        }
        #expect(malta.fpga.displayText == "MAGRITTE")
        #expect(bus.read(0x1F00_0500, size: 4) == 0)
        #expect(bus.read(0x1F00_0928, size: 4) == 0x60, "the CBUS UART's LSR")
        #expect(bus.read(0x1F0F_FFFC, size: 4) == 0)
        #expect(!malta.poweredOff)
        #expect(bus.write(0x1F00_0500, size: 4, value: 0x43))
        #expect(!malta.poweredOff)
    }

    @Test func bootROMAndFlash() {
        let malta = Malta()
        let bus = malta.bus
        #expect(bus.read(0x1FC0_0010, size: 4) == 0x420)
        #expect(bus.read(0x1FC0_0010, size: 1) == 0x20)
        #expect(bus.read(0x1FC0_0010, size: 2) == 0x420)
        #expect(bus.write(0x1FC0_0010, size: 4, value: 0x1234_5678))
        #expect(bus.read(0x1FC0_0010, size: 4) == 0x420, "ROM ignores writes")
        #expect(bus.read(0x1FC0_0000, size: 4) == 0x0BF0_0160)
        #expect(bus.read(0x1E00_0000, size: 4) == 0x0BF0_0160)
        #expect(bus.read(0x1E00_0010, size: 4) == 0, "the board ID is only in the copy at 0x1FC00000")
        #expect(bus.read(0x1FFF_FFFC, size: 4) == 0)
        #expect(bus.region(containing: 0x1FC0_0000)?.name == "boot-rom")
        #expect(bus.region(containing: 0x1F00_0A00)?.deviceOffset == 0xA00)
    }

    @Test func ramSizeParsing() throws {
        #expect(try MaltaConfiguration.ramSize(parsing: "64M") == 64 << 20)
        #expect(try MaltaConfiguration.ramSize(parsing: "128m") == 128 << 20)
        #expect(try MaltaConfiguration.ramSize(parsing: "256M") == 256 << 20)
        #expect(try MaltaConfiguration.ramSize(parsing: "2048K") == 2 << 20)
        #expect(try MaltaConfiguration.ramSize(parsing: "16777216") == 16 << 20)
        for bad in ["", "M", "12X", "512M", "1G", "0", "512K", "1000001", "-64M", "64MB", "0x100M", "99999999999999999999G"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try MaltaConfiguration.ramSize(parsing: bad) }
        }
        let error = try #require(throws: ConfigurationError.self) { try MaltaConfiguration.ramSize(parsing: "512M") }
        #expect(error.message.contains("256M"))
    }
}
