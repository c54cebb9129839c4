import Foundation
import MagritteCore
import Testing
@testable import MagritteHypervisor

/// Device polling emulates the plain ALU instructions of a polling loop itself
/// (`VMM.plainResult`). That is a second statement of what those instructions compute, so it is
/// held to the first: for every instruction of the table it claims, random words of each of its
/// encodings with random register values give exactly what the CPU's interpreter computes, and
/// nothing else changes (no other register, not HI or LO, no exception).
@Suite struct PlainResultTests {
    /// 64 KiB of RAM at physical 0, nothing else.
    final class RAMBus: PhysicalBus {
        let ram = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 4096)
        init() { ram.initializeMemory(as: UInt8.self, repeating: 0, count: 1 << 16) }
        deinit { ram.deallocate() }
        func ramPage(frame: UInt32) -> UnsafeMutableRawPointer? { frame < 16 ? ram + Int(frame) << 12 : nil }
        func read(_ address: UInt32, size: Int) -> UInt32? { nil }
        func write(_ address: UInt32, size: Int, value: UInt32) -> Bool { false }
    }

    @Test func plainResultIsWhatTheInterpreterComputes() {
        var rng = SystemRandomNumberGenerator()
        var claimed = Set<String>()
        var checked = 0
        for (op, info) in instructionTableEntries {
            for pattern in info.patterns {
                for _ in 0..<48 {
                    let word = (UInt32.random(in: .min ... .max, using: &rng) & ~pattern.mask) | pattern.match
                    let d = decode(word)
                    guard d.op == op, VMM.plainResult(d, rs: 0, rt: 0, old: 0, hi: 0, lo: 0) != nil else { continue }
                    claimed.insert(info.mnemonic)
                    let bus = RAMBus()
                    var configuration = CPUConfiguration()
                    configuration.engine = .interpreter
                    let cpu = CPU(bus: bus, configuration: configuration)
                    (bus.ram + 0x1000).storeBytes(of: word, as: UInt32.self)
                    for r in 1..<32 {
                        // Small values too, so that shifts by a register and MOVZ/MOVN see both cases.
                        let v = Bool.random(using: &rng) ? UInt32.random(in: 0...40, using: &rng) : UInt32.random(in: .min ... .max, using: &rng)
                        cpu.setGPR(r, v)
                    }
                    cpu.hi = .random(in: .min ... .max, using: &rng)
                    cpu.lo = .random(in: .min ... .max, using: &rng)
                    cpu.jump(to: 0x8000_1000)
                    let before = (0..<32).map { cpu.gpr($0) }, hi = cpu.hi, lo = cpu.lo
                    let expected = VMM.plainResult(d, rs: before[Int(d.rs) & 31], rt: before[Int(d.rt) & 31],
                                                   old: before[Int(d.rd) & 31], hi: hi, lo: lo)!
                    _ = cpu.run(instructions: 1)
                    let text = "\(info.mnemonic) \(hex(word))"
                    #expect(cpu.pc == 0x8000_1004, "\(text): the interpreter did not simply go on")
                    var after = before
                    if d.rd != 0 && d.rd < 32 { after[Int(d.rd)] = expected }
                    #expect((0..<32).map { cpu.gpr($0) } == after, "\(text)")
                    #expect(cpu.hi == hi && cpu.lo == lo, "\(text): HI/LO")
                    checked += 1
                }
            }
        }
        // The instructions a polling loop is made of are among those checked.
        for m in ["addiu", "addu", "andi", "sll", "srl", "lui", "ori", "sltu", "ext", "ins", "movz", "mul", "clz", "seb", "wsbh", "rotr"] {
            #expect(claimed.contains(m), "\(m) not checked")
        }
        #expect(checked > 1000)
    }

    func hex(_ w: UInt32) -> String { String(w, radix: 16) }
}
