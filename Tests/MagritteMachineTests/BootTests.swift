import Testing
import MagritteCore
@testable import MagritteMachine

/// The state QEMU's `-kernel` boot loader leaves at the kernel's entry, reproduced exactly.
/// The expected values were dumped on QEMU 7.2 (`-M malta -cpu 24Kc -m 128`) by a guest that
/// printed its registers, the block at 0x80002000 and the boot ROM.
@Suite struct BootTests {
    func booted(ramSize: Int = 128 << 20, commandLine: String = "") throws -> Malta {
        var config = MaltaConfiguration(ramSize: ramSize)
        config.commandLine = commandLine
        let malta = Malta(configuration: config)
        try malta.load(elf: ELFImage(bytes: ELFBuilder().build(), name: "probe.elf"))
        malta.boot()
        return malta
    }

    @Test func registersAtEntry() throws {
        let malta = try booted()
        let cpu = malta.cpu
        #expect(cpu.pc == 0x8010_0000)
        #expect(cpu.readCP0(12, 0) == 0x0040_0000, "Status: BEV set, ERL clear")
        #expect(cpu.readCP0(15, 1) == 0x8000_0000)
        #expect(cpu.readCP0(13, 0) == 0)
        #expect(cpu.mode == .kernel)
        var expected = [UInt32](repeating: 0, count: 32)
        expected[4] = 2
        expected[5] = 0x8000_2000
        expected[6] = 0x8000_2008
        expected[7] = 0x0800_0000
        expected[25] = 0x8010_0000
        expected[26] = 0x0000_005E
        expected[27] = 0xBBE0_0088
        expected[29] = 0x8000_1FC0
        expected[31] = 0xBFC0_0644
        #expect((0..<32).map(cpu.gpr) == expected)
    }

    @Test func argumentBlockMatchesQEMU() throws {
        let malta = try booted()
        let block = try #require(malta.bus.readRAM(at: 0x2000, count: 16 * 4 + 16 * 256))
        func word(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(block[o + $1]) << (8 * UInt32($1)) } }
        func string(_ o: Int) -> String { String(decoding: block[o...].prefix { $0 != 0 }, as: UTF8.self) }
        // Pointers: ten strings at 0x80002040 + 256 n, then NULL; the rest zero.
        let pointers: [UInt32] = (0..<16).map { word(4 * $0) }
        var expectedPointers: [UInt32] = (0..<10).map { 0x8000_2040 + 256 * UInt32($0) }
        expectedPointers += [0, 0, 0, 0, 0, 0]
        #expect(pointers == expectedPointers)
        let strings = (0..<10).map { string(0x40 + 256 * $0) }
        #expect(strings == ["probe.elf", "", "memsize", "134217728", "ememsize", "134217728",
                            "modetty0", "38400n8r", "rngseed", String(repeating: "0", count: 64)])
        // Nothing but the strings: every byte after each terminator is zero.
        for i in 0..<16 {
            let start = 0x40 + 256 * i
            let text = string(start).utf8.count
            #expect(block[(start + text)..<(start + 256)].allSatisfy { $0 == 0 })
        }
        // The kernel reads it through a1/a2 in kseg0.
        #expect(malta.cpu.readVirtual(0x8000_2008, size: 4) == 0x8000_2240)
    }

    @Test func otherRAMSizesAndCommandLine() throws {
        let malta = try booted(ramSize: 64 << 20, commandLine: "console=ttyS0 " + String(repeating: "x", count: 300))
        #expect(malta.cpu.gpr(7) == 0x0400_0000)
        let block = try #require(malta.bus.readRAM(at: 0x2000, count: 4160))
        func string(_ o: Int) -> String { String(decoding: block[o...].prefix { $0 != 0 }, as: UTF8.self) }
        #expect(string(0x140).hasPrefix("console=ttyS0 xxx"))
        #expect(string(0x140).utf8.count == 255, "strings are cut to 255 bytes as vsnprintf does")
        #expect(string(0x340) == "67108864")
    }

    /// The non-zero words of QEMU's boot ROM for entry 0x80100000 and 128 MiB.
    static let qemuROM: [(UInt32, UInt32)] = [
        (0x000, 0x0BF0_0160), (0x010, 0x0000_0420), (0x500, 0x9FC0_0580), (0x504, 0x9FC0_083C), (0x520, 0x9FC0_0580),
        (0x52C, 0x9FC0_0800), (0x534, 0x9FC0_0808), (0x538, 0x9FC0_0800), (0x53C, 0x9FC0_0800), (0x540, 0x9FC0_0800),
        (0x544, 0x9FC0_0800), (0x548, 0x9FC0_0800), (0x54C, 0x9FC0_0800), (0x550, 0x9FC0_0800), (0x554, 0x9FC0_0800),
        (0x580, 0x3C1A_0000), (0x584, 0x375A_00DF), (0x588, 0x3C1B_B400), (0x58C, 0x377B_0068), (0x590, 0xAF7A_0000),
        (0x594, 0x3C1A_0000), (0x598, 0x375A_00C0), (0x59C, 0x3C1B_BBE0), (0x5A0, 0x377B_0048), (0x5A4, 0xAF7A_0000),
        (0x5A8, 0x3C1A_0000), (0x5AC, 0x375A_0040), (0x5B0, 0x3C1B_BBE0), (0x5B4, 0x377B_0050), (0x5B8, 0xAF7A_0000),
        (0x5BC, 0x3C1A_0000), (0x5C0, 0x375A_0080), (0x5C4, 0x3C1B_BBE0), (0x5C8, 0x377B_0058), (0x5CC, 0xAF7A_0000),
        (0x5D0, 0x3C1A_0000), (0x5D4, 0x375A_003F), (0x5D8, 0x3C1B_BBE0), (0x5DC, 0x377B_0060), (0x5E0, 0xAF7A_0000),
        (0x5E4, 0x3C1A_0000), (0x5E8, 0x375A_00C1), (0x5EC, 0x3C1B_BBE0), (0x5F0, 0x377B_0080), (0x5F4, 0xAF7A_0000),
        (0x5F8, 0x3C1A_0000), (0x5FC, 0x375A_005E), (0x600, 0x3C1B_BBE0), (0x604, 0x377B_0088), (0x608, 0xAF7A_0000),
        (0x60C, 0x3C1D_8000), (0x610, 0x37BD_1FC0), (0x614, 0x3C04_0000), (0x618, 0x3484_0002), (0x61C, 0x3C05_8000),
        (0x620, 0x34A5_2000), (0x624, 0x3C06_8000), (0x628, 0x34C6_2008), (0x62C, 0x3C07_0800), (0x630, 0x34E7_0000),
        (0x634, 0x3C19_8010), (0x638, 0x3739_0000), (0x63C, 0x0320_F809), (0x800, 0x03E0_0009), (0x804, 0x2402_0000),
        (0x808, 0x03E0_6821), (0x80C, 0x0080_5821), (0x810, 0x00A0_5021), (0x814, 0x9144_0000), (0x818, 0x254A_0001),
        (0x81C, 0x1080_0005), (0x824, 0x0FF0_021C), (0x82C, 0x1000_FFF9), (0x834, 0x01A0_0009), (0x838, 0x0160_2021),
        (0x83C, 0x03E0_6821), (0x840, 0x0080_5821), (0x844, 0x00A0_5021), (0x848, 0x00C0_6021), (0x84C, 0x9144_0000),
        (0x850, 0x0FF0_021C), (0x858, 0x254A_0001), (0x85C, 0x258C_FFFF), (0x860, 0x1580_FFFA), (0x868, 0x01A0_0009),
        (0x86C, 0x0160_2021), (0x870, 0x3C08_B800), (0x874, 0x3508_03F8), (0x878, 0x9109_0005), (0x880, 0x3129_0040),
        (0x884, 0x1120_FFFC), (0x88C, 0x03E0_0009), (0x890, 0xA104_0000),
    ]

    @Test func bootROMMatchesQEMU() throws {
        let malta = try booted()
        var nonZero: [(UInt32, UInt32)] = []
        for offset in stride(from: UInt32(0), to: 0x1000, by: 4) {
            let w = try #require(malta.bus.read(0x1FC0_0000 + offset, size: 4))
            if w != 0 { nonZero.append((offset, w)) }
        }
        #expect(nonZero.map(\.0) == BootTests.qemuROM.map(\.0))
        #expect(nonZero.map(\.1) == BootTests.qemuROM.map(\.1))
    }

    @Test func softResetStopsTheCPU() throws {
        let malta = try booted()
        #expect(malta.run(maxInstructions: 1000) == .poweredOff)
        #expect(malta.poweredOff)
        #expect(malta.cpu.retiredInstructions == 3, "lui, li, sw: the CPU stops right after the store")
        #expect(malta.cpu.pc == 0x8010_000C)
        // Booting again clears the power-off state.
        malta.boot()
        #expect(!malta.poweredOff)
        #expect(malta.cpu.retiredInstructions == 0)
        #expect(malta.run() == .poweredOff)
    }

    @Test func instructionLimit() throws {
        let malta = Malta()
        try malta.load(elf: ELFImage(bytes: ELFBuilder(code: [0x1000_FFFF, 0]).build()))  // b . ; nop
        malta.boot()
        malta.batchSize = 1000
        #expect(malta.run(maxInstructions: 12_345) == .instructionLimit)
        #expect(malta.cpu.retiredInstructions == 12_345)
        #expect(malta.run(maxInstructions: 5) == .instructionLimit)
        #expect(malta.cpu.retiredInstructions == 12_350)
    }

    @Test func waitWithNothingToWakeItIsADeadlock() throws {
        let malta = Malta()
        // wait; b .-4; nop: Status.IE is clear, the timer cannot fire.
        try malta.load(elf: ELFImage(bytes: ELFBuilder(code: [0x4200_0020, 0x1000_FFFE, 0]).build()))
        malta.boot()
        #expect(malta.run(maxInstructions: 1000) == .deadlock)
        let input = ScriptedInput(waits: ["x"])
        malta.consoleInput = input
        #expect(malta.run(maxInstructions: 1000) == .deadlock)
        #expect(input.waits == 2, "the board waited for input once, then saw its end")
        #expect(malta.uart.hasReceivedData)
    }
}
