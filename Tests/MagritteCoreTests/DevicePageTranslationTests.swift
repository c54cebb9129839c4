import Testing
@testable import MagritteCore

/// The software TLB keeps the translation of a mapped device page too (`SoftTLBEntry.device`),
/// so that the slow path's accesses there skip the TLB walk (the VMM's device window: Linux as a
/// guest polls its UART through one). What the guest sees must not change: every access still
/// reaches the bus, and a TLB write, an ASID change or a mode change takes effect at the next
/// access exactly as without the cache. Both engines.
@Suite struct DevicePageTranslationTests {
    /// RAM and two device pages, at physical 0x1F00_0000 (reads 10) and 0x1F00_1000 (reads 11),
    /// that count their reads and writes.
    final class TwoDeviceBus: PhysicalBus {
        static let first: UInt32 = 0x1F00_0000, second: UInt32 = 0x1F00_1000
        let ram = TestBus(ramSize: 4 << 20)
        var reads: [UInt32: Int] = [:], writes: [UInt32: Int] = [:]

        func ramPage(frame: UInt32) -> UnsafeMutableRawPointer? { ram.ramPage(frame: frame) }

        func read(_ address: UInt32, size: Int) -> UInt32? {
            let page = address & 0xFFFF_F000
            guard page == Self.first || page == Self.second else { return nil }
            reads[page, default: 0] += 1
            return page == Self.first ? 10 : 11
        }

        func write(_ address: UInt32, size: Int, value: UInt32) -> Bool {
            let page = address & 0xFFFF_F000
            guard page == Self.first || page == Self.second else { return false }
            writes[page, default: 0] += 1
            return true
        }
    }

    /// At 0x80100000, kernel mode: 100 times load the word at 0x00400000 (mapped), add it to s2
    /// and store it at 0x00400004; then spin. Both exception vectors spin.
    static let program: [UInt32] = [
        0x3C11_0040,  // lui   s1, 0x0040
        0x3410_0064,  // ori   s0, zero, 100
        0x8E29_0000,  // loop: lw t1, 0(s1)
        0x0249_9021,  // addu  s2, s2, t1
        0xAE29_0004,  // sw    t1, 4(s1)
        0x2610_FFFF,  // addiu s0, s0, -1
        0x1600_FFFB,  // bnez  s0, loop
        0x0000_0000,  // nop
        0x1000_FFFF,  // b     .
        0x0000_0000,  // nop
    ]
    static let spin: [UInt32] = [0x1000_FFFF, 0x0000_0000]
    static let va: UInt32 = 0x0040_0000

    /// The pair at `va` with ASID 1, its even page at `pa`.
    static func entry(_ pa: UInt32, dirty: Bool = true) -> TLBEntry {
        TLBEntry(entryHi: va | 1, pageMask: 0, entryLo0: EntryLoBits.frame(pa) | EntryLoBits.valid | (dirty ? EntryLoBits.dirty : 0),
                 entryLo1: 0)
    }

    static func machine(_ engine: Engine) -> (TwoDeviceBus, CPU) {
        let bus = TwoDeviceBus()
        var config = CPUConfiguration()
        config.engine = engine
        return (bus, CPU(bus: bus, configuration: config))
    }

    /// Runs the loop from its start with s2 cleared; returns s2 and the exception code when the
    /// CPU ended in a vector (nil when the loop finished).
    static func runLoop(_ cpu: CPU) -> (sum: UInt32, exception: UInt32?) {
        cpu.setStatus(0)  // kernel mode, EXL clear, interrupts off
        cpu.setGPR(18, 0)
        cpu.jump(to: 0x8010_0000)
        _ = cpu.run(instructions: 2_000)
        let inVector = cpu.pc < 0x8000_1000
        return (cpu.gpr(18), inVector ? (cpu.readCP0(13, 0) >> 2) & 31 : nil)
    }

    @Test(arguments: Engine.allCases)
    func aMappedDevicePageFollowsEveryChangeOfItsTranslation(_ engine: Engine) {
        let (bus, cpu) = Self.machine(engine)
        bus.ram.load(Self.program, at: 0x0010_0000)
        bus.ram.load(Self.spin, at: 0x0000_0000)
        bus.ram.load(Self.spin, at: 0x0000_0180)
        bus.ram.load([0x0000_0007], at: 0x0020_0000)  // a RAM page the pair is mapped to once
        cpu.writeCP0(10, 0, 1)  // ASID 1
        let first = TwoDeviceBus.first, second = TwoDeviceBus.second

        // Every access reaches the device: a cached device page never serves a fast path.
        cpu.setTLBEntry(0, Self.entry(first))
        #expect(Self.runLoop(cpu) == (1000, nil))
        #expect(bus.reads[first] == 100 && bus.writes[first] == 100)

        // The page remapped to another device: the next access goes there.
        cpu.setTLBEntry(0, Self.entry(second))
        #expect(Self.runLoop(cpu) == (1100, nil))
        #expect(bus.reads[first] == 100 && bus.reads[second] == 100 && bus.writes[second] == 100)

        // Remapped to RAM: the loads read RAM (7, then what the first store wrote).
        cpu.setTLBEntry(0, Self.entry(0x0020_0000))
        #expect(Self.runLoop(cpu) == (700, nil))
        #expect(bus.reads[second] == 100)

        // Back to the device, but not writable: the first store raises TLB Modified.
        cpu.setTLBEntry(0, Self.entry(second))
        #expect(Self.runLoop(cpu) == (1100, nil))  // a full run first, which leaves the write half cached
        cpu.setTLBEntry(0, Self.entry(second, dirty: false))
        #expect(Self.runLoop(cpu) == (11, 1))  // Mod
        #expect(cpu.readCP0(8, 0) == Self.va + 4)  // BadVAddr
        #expect(bus.reads[second] == 201 && bus.writes[second] == 200)

        // Another ASID: the pair does not match, the load misses (TLBL refill).
        cpu.setTLBEntry(0, Self.entry(second))
        #expect(Self.runLoop(cpu) == (1100, nil))
        cpu.writeCP0(10, 0, 2)
        #expect(Self.runLoop(cpu) == (0, 2))  // TLBL
        #expect(bus.reads[second] == 301)
        cpu.writeCP0(10, 0, 1)

        // User mode (its own software TLB) from a mapped code page: the same device page.
        cpu.setTLBEntry(1, TLBEntry(entryHi: 0x0050_0000 | 1, pageMask: 0,
                                    entryLo0: EntryLoBits.frame(0x0010_0000) | EntryLoBits.valid, entryLo1: 0))
        cpu.setStatus(StatusBits.ksuUser)
        cpu.setGPR(18, 0)
        cpu.jump(to: 0x0050_0000)
        _ = cpu.run(instructions: 2_000)
        #expect(cpu.gpr(18) == 1100 && cpu.pc == 0x0050_0020)
        #expect(bus.reads[second] == 401 && bus.writes[second] == 400)
    }

    /// A TLB write forgets what each mode's software TLB (and the translator's fetch TLB) holds of
    /// the pages it remaps — in every mode whose segment map maps them (useg: all three; kseg2:
    /// kernel and supervisor), whichever mode runs when the write comes.
    @Test(arguments: Engine.allCases)
    func everyModeForgetsWhatATLBWriteRemaps(_ engine: Engine) {
        let (bus, cpu) = Self.machine(engine)
        bus.ram.load([0x8E29_0000, 0x1000_FFFF, 0x0000_0000], at: 0x0010_0000)  // lw t1, 0(s1); b .; nop
        bus.ram.load([1], at: 0x0020_0000)
        bus.ram.load([2], at: 0x0020_1000)
        cpu.writeCP0(10, 0, 1)  // ASID 1
        cpu.setTLBEntry(1, TLBEntry(entryHi: 0x0050_0000 | 1, pageMask: 0,
                                    entryLo0: EntryLoBits.frame(0x0010_0000) | EntryLoBits.valid, entryLo1: 0))
        func load(_ va: UInt32, mode: UInt32) -> UInt32 {
            cpu.setStatus(mode)
            cpu.setGPR(17, va)
            cpu.setGPR(9, 0)
            cpu.jump(to: 0x0050_0000)
            _ = cpu.run(instructions: 10)
            return cpu.gpr(9)
        }
        func map(_ va: UInt32, _ pa: UInt32) {
            cpu.setTLBEntry(0, TLBEntry(entryHi: va | 1, pageMask: 0, entryLo0: EntryLoBits.frame(pa) | EntryLoBits.valid, entryLo1: 0))
        }
        let modes = [0, StatusBits.ksuSupervisor, StatusBits.ksuUser]
        for (va, reaching) in [(UInt32(0x0040_0000), modes), (0xC000_0000, Array(modes.prefix(2)))] {
            map(va, 0x0020_0000)
            for m in reaching { #expect(load(va, mode: m) == 1, "\(va) mode \(m)") }  // each mode caches the page
            map(va, 0x0020_1000)  // (in the last mode)
            for m in reaching { #expect(load(va, mode: m) == 2, "\(va) mode \(m) after the write") }
        }
    }
}
