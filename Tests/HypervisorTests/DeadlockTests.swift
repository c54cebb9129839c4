import MagritteCore
import MagritteMachine
import Testing
@testable import MagritteHypervisor

/// A minimal ELF32 little-endian MIPS executable: `words` at virtual 0x80100000 (physical
/// 0x00100000), entry at its start.
func miniELF(_ words: [UInt32]) throws -> ELFImage {
    var b = [UInt8](repeating: 0, count: 84)
    func put16(_ o: Int, _ v: UInt16) { b[o] = UInt8(v & 0xFF); b[o + 1] = UInt8(v >> 8) }
    func put32(_ o: Int, _ v: UInt32) { for i in 0..<4 { b[o + i] = UInt8((v >> (8 * UInt32(i))) & 0xFF) } }
    b[0...6] = [0x7F, 0x45, 0x4C, 0x46, 1, 1, 1]  // ELF, 32-bit, little-endian, version 1
    put16(16, 2)           // ET_EXEC
    put16(18, 8)           // EM_MIPS
    put32(20, 1)
    put32(24, 0x8010_0000) // entry
    put32(28, 52)          // program headers
    put16(40, 52)
    put16(42, 32)
    put16(44, 1)
    put16(46, 40)
    put32(52, 1)           // PT_LOAD
    put32(56, 84)          // offset
    put32(60, 0x8010_0000)
    put32(64, 0x0010_0000)
    put32(68, UInt32(4 * words.count))
    put32(72, UInt32(4 * words.count))
    put32(76, 7)
    put32(80, 4)
    for w in words { b += [UInt8(w & 0xFF), UInt8((w >> 8) & 0xFF), UInt8((w >> 16) & 0xFF), UInt8(w >> 24)] }
    return try ELFImage(bytes: b, name: "mini")
}

@Suite struct DeadlockTests {
    /// A guest that masks every interrupt and waits can never wake: the VMM says so (instead
    /// of skipping time forever), while a guest that waits with its timer unmasked wakes.
    @Test func waitingWithEveryInterruptMaskedIsADeadlock() throws {
        let vmm = try VMM()
        // mtc0 $zero, Status (IM = 0, IE = 0); wait; b .; nop
        let g = try vmm.addGuest(GuestConfiguration(name: "stuck"), image: try miniELF([0x4080_6000, 0x4200_0020, 0x1000_FFFF, 0]))
        #expect(vmm.run(maxInstructions: 1_000_000) == .deadlock)
        #expect(g.state == .waiting)
    }

    @Test func waitingWithTheTimerUnmaskedWakes() throws {
        let vmm = try VMM()
        // li t0, 0x8000 (IM7); mtc0 t0, Status; mtc0 zero, Count; li t1, 1000; mtc0 t1, Compare; wait;
        // then power off: li t2, 0xBF000500; li t3, 0x42; sb t3, 0(t2)
        let words: [UInt32] = [0x3408_8000, 0x4088_6000, 0x4080_4800, 0x3409_03E8, 0x4089_5800, 0x4200_0020,
                               0x3C0A_BF00, 0x354A_0500, 0x240B_0042, 0xA14B_0000, 0x1000_FFFF, 0]
        let g = try vmm.addGuest(GuestConfiguration(name: "waker"), image: try miniELF(words))
        #expect(vmm.run(maxInstructions: 1_000_000) == .allPoweredOff)
        #expect(g.statistics.waitCycles > 0)
    }
}
