import Testing
@testable import MagritteCore

/// `CPU.endBatch()`: a device whose value depends on guest time (an RTC polled for its
/// update-in-progress bit) asks the CPU to end the batch at the access, so that `cycles`, which
/// only advances between batches, is up to date at the guest's next access.
@Suite struct EndBatchTests {
    /// RAM at 0, a "clock" device at physical 0x10000000 that returns the low word of
    /// `cpu.cycles` (and ends the batch if asked), SOFTRES at 0x1F000500.
    final class ClockBus: PhysicalBus {
        let ram = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        weak var cpu: CPU?
        var endsBatch = false
        init() { ram.initializeMemory(as: UInt8.self, repeating: 0, count: 1 << 20) }
        deinit { ram.deallocate() }
        func ramPage(frame: UInt32) -> UnsafeMutableRawPointer? { frame < 256 ? ram + Int(frame) << 12 : nil }
        func read(_ address: UInt32, size: Int) -> UInt32? {
            guard address == 0x1000_0000, let cpu else { return 0 }
            if endsBatch { cpu.endBatch() }
            return UInt32(truncatingIfNeeded: cpu.cycles)
        }
        func write(_ address: UInt32, size: Int, value: UInt32) -> Bool {
            if address == 0x1F00_0500 && value & 0xFF == 0x42 { cpu?.requestStop() }
            return true
        }
    }

    /// Reads the clock 8 times in a 6-instruction loop and returns what it read.
    func readings(endsBatch: Bool) -> [UInt32] {
        let bus = ClockBus()
        bus.endsBatch = endsBatch
        let program: [UInt32] = [
            0x3C04_B000,  // lui a0, 0xb000        device at 0xB0000000
            0x3C05_8000,  // lui a1, 0x8000
            0x34A5_8000,  // ori a1, a1, 0x8000    results at 0x80008000
            0x2406_0008,  // li a2, 8
            0x8C88_0000,  // loop: lw t0, 0(a0)
            0xACA8_0000,  // sw t0, 0(a1)
            0x24A5_0004,  // addiu a1, a1, 4
            0x24C6_FFFF,  // addiu a2, a2, -1
            0x14C0_FFFB,  // bnez a2, loop
            0x0000_0000,  // nop
            0x3C07_BF00,  // lui a3, 0xbf00
            0x34E7_0500,  // ori a3, a3, 0x500
            0x2409_0042,  // li t1, 0x42
            0xA0E9_0000,  // sb t1, 0(a3)          power off
            0x1000_FFFF, 0,  // b .
        ]
        for (i, w) in program.enumerated() { (bus.ram + 0x1000 + 4 * i).storeBytes(of: w, as: UInt32.self) }
        let cpu = CPU(bus: bus)
        bus.cpu = cpu
        cpu.jump(to: 0x8000_1000)
        #expect(cpu.run(instructions: 10_000) == .stopRequested)
        return (0..<8).map { bus.ram.load(fromByteOffset: 0x8000 + 4 * $0, as: UInt32.self) }
    }

    @Test func withoutEndBatchTheClockIsStaleWithinABatch() {
        let r = readings(endsBatch: false)
        #expect(Set(r).count == 1, "\(r)")
    }

    @Test func endBatchMakesEachReadSeeTheInstructionsBeforeIt() {
        let r = readings(endsBatch: true)
        // The first read is the 5th instruction of the first batch (cycles still 0); each later
        // one sees the batch that began right after the previous read: one loop (6) later.
        #expect(r[0] == 0)
        #expect(r[1] == 5)
        for i in 2..<8 { #expect(r[i] &- r[i - 1] == 6, "\(r)") }
    }
}
