import Testing
@testable import MagritteCore

/// `CPU.busAccessInstruction`: a bus device that serves an access by its instruction (the VMM's
/// device window) asks the CPU which instruction is at the bus. Its word must be known also when
/// translated code chained from the loop's page into another one (`CPU.codeWord` then finds the
/// page in the JIT's fetch TLB), on both engines.
@Suite struct BusAccessInstructionTests {
    /// RAM (`TestBus`) and one device register at physical 0x1F00_0000 that records what the CPU
    /// says of each access.
    final class ProbeBus: PhysicalBus {
        static let device: UInt32 = 0x1F00_0000
        let ram = TestBus(ramSize: 4 << 20)
        weak var cpu: CPU?
        var seen: [(pc: UInt32, word: UInt32?, unobserved: Bool)] = []
        /// Accesses made while the CPU's current code page was another (the loop's, translated
        /// code having chained into the callee's page).
        var fromAnotherPage = 0

        func ramPage(frame: UInt32) -> UnsafeMutableRawPointer? { ram.ramPage(frame: frame) }

        func read(_ address: UInt32, size: Int) -> UInt32? {
            guard address == ProbeBus.device, let cpu else { return ram.read(address, size: size) }
            seen.append(cpu.busAccessInstruction())
            if cpu.codeTag != cpu.busAccessPC & 0xFFFF_F000 { fromAnotherPage += 1 }
            return 1
        }

        func write(_ address: UInt32, size: Int, value: UInt32) -> Bool { ram.write(address, size: size, value: value) }
    }

    /// A loop in one page (0x80100000) that calls a function in the next (0x80101000), which
    /// loads the device register through kseg1: 2000 times.
    static let caller: [UInt32] = [
        0x3C11_BF00,  // lui   s1, 0xbf00          (kseg1 0xbf000000: the device)
        0x3410_07D0,  // ori   s0, zero, 2000
        0x0C04_0400,  // loop: jal 0x80101000
        0x0000_0000,  // nop
        0x2610_FFFF,  // addiu s0, s0, -1
        0x1600_FFFC,  // bnez  s0, loop
        0x0000_0000,  // nop
        0x1000_FFFF,  // b     .
        0x0000_0000,  // nop
    ]
    static let load: UInt32 = 0x9229_0000  // lbu t1, 0(s1)
    static let callee: [UInt32] = [load, 0x03E0_0008, 0x0000_0000]  // lbu; jr ra; nop

    @Test(arguments: Engine.allCases)
    func theWordOfEachAccessIsKnown(_ engine: Engine) throws {
        let bus = ProbeBus()
        var config = CPUConfiguration()
        config.engine = engine
        let cpu = CPU(bus: bus, configuration: config)
        bus.cpu = cpu
        bus.ram.load(Self.caller, at: 0x0010_0000)
        bus.ram.load(Self.callee, at: 0x0010_1000)
        cpu.setStatus(0)  // kernel mode, interrupts off
        cpu.jump(to: 0x8010_0000)
        _ = cpu.run(instructions: 20_000)
        #expect(cpu.gpr(16) == 0, "the loop did not finish")
        #expect(bus.seen.count == 2000)
        #expect(bus.seen.allSatisfy { $0.pc == 0x8010_1000 && $0.word == Self.load && $0.unobserved })
        // The translator chains from the loop's block into the callee's: most accesses come
        // while the CPU's code page is the loop's.
        if engine == .jit { #expect(bus.fromAnotherPage > 1000, "\(bus.fromAnotherPage)") }
        // With memory watches, the device hears that something observes its accesses.
        cpu.memoryWatches = [0x9000_0000...0x9000_0003]
        cpu.jump(to: 0x8010_0000)
        _ = cpu.run(instructions: 100)
        #expect(bus.seen.count > 2000 && !bus.seen.last!.unobserved)
    }
}
