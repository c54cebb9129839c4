import Foundation
import Testing
@testable import MagritteCore

/// The translator against the interpreter: random instruction sequences run from the same state
/// on both engines, with the timer interrupting them and the run split into random budgets;
/// every GPR, HI/LO, pc/npc/delay slot, CP0 EPC/Cause/BadVAddr/Status, the cycle, retired and
/// faulted counts, the exception counts and all of RAM must be equal (`Docs/jit.md`).
///
/// The programs mix every translated instruction with the ones left to the interpreter:
/// LWL/LWR and SWL/SWR pairs at every alignment, conditional traps taken and not taken (in
/// delay slots too), faults in delay slots, stores into the program itself.
///
/// Count from the environment: `MAGRITTE_JIT_FUZZ_PROGRAMS` (default 150).
@Suite("Translator against interpreter", .enabled(if: Engine.jitSupported))
struct JITDifferentialTests {
    static let programs = Int(ProcessInfo.processInfo.environment["MAGRITTE_JIT_FUZZ_PROGRAMS"] ?? "") ?? 150

    /// The disassembler tests' SplitMix64: the same program for the same seed on every host.
    typealias Random = DisassemblerTests.SplitMix64

    static let codeBase: UInt32 = 0x8010_0000
    static let length = 256
    /// Registers random code may write; 16-19 and 29 hold pointers, 26-27 belong to the handler.
    static let dests: [UInt32] = Array(1...15) + Array(20...25) + [0, 31]
    static let pointers: [UInt32] = [16, 17, 18, 19]

    /// Exception handler at 0x80000180 (the TLB refill vector jumps to it): an interrupt moves
    /// Compare on; any other exception resumes at EPC + 4.
    static let handler: [UInt32] = [
        0x401A_6800,  // mfc0 k0, Cause
        0x335A_007C,  // andi k0, k0, 0x7c
        0x1740_0005,  // bne k0, zero, +5
        0x0000_0000,
        0x401A_4800,  // mfc0 k0, Count
        0x275A_0025,  // addiu k0, k0, 37
        0x409A_5800,  // mtc0 k0, Compare
        0x4200_0018,  // eret
        0x401A_7000,  // mfc0 k0, EPC
        0x275A_0004,  // addiu k0, k0, 4
        0x409A_7000,  // mtc0 k0, EPC
        0x4200_0018,  // eret
    ]

    static func r(_ op: UInt32, rs: UInt32, rt: UInt32, rd: UInt32, sa: UInt32 = 0, funct: UInt32) -> UInt32 {
        op << 26 | rs << 21 | rt << 16 | rd << 11 | sa << 6 | funct
    }

    static func i(_ op: UInt32, rs: UInt32, rt: UInt32, imm: UInt32) -> UInt32 { op << 26 | rs << 21 | rt << 16 | (imm & 0xFFFF) }

    /// One random instruction word for slot `index` of the program.
    static func instruction(_ g: inout Random, index: Int) -> UInt32 {
        let src = { (g: inout Random) -> UInt32 in UInt32(g.below(32)) }
        let dst = { (g: inout Random) -> UInt32 in g.pick(dests) }
        let branchOffset = { (g: inout Random) -> UInt32 in UInt32(bitPattern: Int32(g.below(17) - 8)) }
        switch g.below(100) {
        case 0..<22:  // register ALU
            let funct: UInt32 = g.pick([0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x20, 0x22, 0x04, 0x06, 0x07, 0x0A, 0x0B])
            if funct == 0x06 && g.below(2) == 0 { return r(0, rs: src(&g), rt: src(&g), rd: dst(&g), sa: 1, funct: 6) }  // rotrv
            return r(0, rs: src(&g), rt: src(&g), rd: dst(&g), funct: funct)
        case 22..<30:  // shifts by an amount
            let funct: UInt32 = g.pick([0, 2, 3])
            let rot: UInt32 = funct == 2 && g.below(2) == 0 ? 1 : 0
            return r(0, rs: rot, rt: src(&g), rd: dst(&g), sa: UInt32(g.below(32)), funct: funct)
        case 30..<42:  // immediate ALU
            let op: UInt32 = g.pick([9, 9, 8, 10, 11, 12, 13, 14, 15])
            let imm = g.below(3) == 0 ? UInt32(g.pick([0, 1, 0x7FFF, 0x8000, 0xFFFF])) : UInt32(g.below(65536))
            return i(op, rs: op == 15 ? 0 : src(&g), rt: dst(&g), imm: imm)
        case 42..<50:  // multiply, divide, HI/LO
            switch g.below(6) {
            case 0: return r(0, rs: src(&g), rt: src(&g), rd: 0, funct: g.pick([0x18, 0x19, 0x1A, 0x1B]))
            case 1: return r(28, rs: src(&g), rt: src(&g), rd: 0, funct: g.pick([0, 1, 4, 5]))
            case 2: return r(28, rs: src(&g), rt: src(&g), rd: dst(&g), funct: g.pick([2, 0x20, 0x21]))
            case 3: return r(0, rs: 0, rt: 0, rd: dst(&g), funct: g.pick([0x10, 0x12]))
            case 4: return r(0, rs: src(&g), rt: 0, rd: 0, funct: g.pick([0x11, 0x13]))
            default:
                let pos = UInt32(g.below(32)), size = UInt32(1 + g.below(32 - Int(pos)))
                switch g.below(3) {
                case 0: return r(31, rs: src(&g), rt: dst(&g), rd: size - 1, sa: pos, funct: 0)  // ext
                case 1: return r(31, rs: src(&g), rt: dst(&g), rd: pos + size - 1, sa: pos, funct: 4)  // ins
                default: return r(31, rs: 0, rt: src(&g), rd: dst(&g), sa: g.pick([2, 16, 24]), funct: 32)  // wsbh/seb/seh
                }
            }
        case 50..<58:  // conditional moves
            return r(0, rs: src(&g), rt: src(&g), rd: dst(&g), funct: g.pick([0x0A, 0x0B]))
        case 58..<76:  // loads and stores, some unaligned, some unmapped, some into the code itself
            let base = g.below(8) == 0 ? src(&g) : g.pick(pointers)
            var off = Int32(g.below(64) * 4)
            if g.below(6) == 0 { off += Int32(g.below(4)) }
            if base == 19 { off = Int32(g.below(length) * 4) }
            let op: UInt32 = g.below(12) == 0 ? g.pick([34, 38, 42, 46, 48, 56]) : g.pick([32, 33, 35, 36, 37, 40, 41, 43])
            let rt = op >= 40 ? src(&g) : dst(&g)
            return i(op, rs: base, rt: rt, imm: UInt32(bitPattern: off))
        case 76..<88:  // branches and jumps (some branch-likely, some linking)
            switch g.below(6) {
            case 0: return i(g.pick([4, 5, 20, 21]), rs: src(&g), rt: src(&g), imm: branchOffset(&g))
            case 1: return i(g.pick([6, 7, 22, 23]), rs: src(&g), rt: 0, imm: branchOffset(&g))
            case 2: return i(1, rs: src(&g), rt: g.pick([0, 1, 2, 3, 16, 17, 18, 19]), imm: branchOffset(&g))
            case 3:
                let target = codeBase &+ UInt32(g.below(length) * 4)
                return UInt32(g.pick([2, 3])) << 26 | (target >> 2) & 0x03FF_FFFF
            case 4: return r(0, rs: 29, rt: 0, rd: 0, funct: 8)  // jr $29
            default: return r(0, rs: 29, rt: 0, rd: dst(&g), funct: 9)  // jalr
            }
        case 88..<92:  // conditional traps, taken and not taken (rs = rt, or a small immediate, half the time)
            let rs = src(&g)
            if g.below(2) == 0 {
                let funct: UInt32 = g.pick([0x30, 0x31, 0x32, 0x33, 0x34, 0x36])
                return r(0, rs: rs, rt: g.below(2) == 0 ? rs : src(&g), rd: UInt32(g.below(32)), funct: funct)
            }
            let imm = g.below(2) == 0 ? UInt32(g.pick([0, 1, 0xFFFF, 0x8000, 0x7FFF])) : UInt32(g.below(65536))
            return i(1, rs: rs, rt: g.pick([8, 9, 10, 11, 12, 14]), imm: imm)
        case 92..<95:  // exceptions and instructions the translator leaves to the interpreter
            return g.pick([0x0000_000C, 0x0000_000D, 0, 0x7C03_E83B, r(16, rs: 4, rt: src(&g), rd: 11, funct: 0)])  // syscall, break, nop, rdhwr, mtc0 Compare
        default:  // any word at all
            return UInt32(truncatingIfNeeded: g.next())
        }
    }

    /// A LWL/LWR or SWL/SWR pair on one unaligned word (any alignment of the base), as
    /// compilers emit them; sometimes with the two halves apart or on an unmapped base.
    static func partialPair(_ g: inout Random) -> [UInt32] {
        let base = g.below(10) == 0 ? UInt32(g.below(32)) : g.pick(pointers)
        var off = UInt32(g.below(64) * 4) + UInt32(g.below(4))
        if base == 19 { off = UInt32(g.below(length) * 4) + UInt32(g.below(4)) }
        let load = g.below(3) != 0
        let rt = load ? g.pick(dests) : UInt32(g.below(32))
        let (left, right): (UInt32, UInt32) = load ? (34, 38) : (42, 46)
        var pair = [i(left, rs: base, rt: rt, imm: off &+ 3), i(right, rs: base, rt: rt, imm: off)]
        if g.below(4) == 0 { pair.reverse() }
        return pair
    }

    /// The program's words: single random instructions and, now and then, partial-word pairs.
    static func program(_ g: inout Random) -> [UInt32] {
        var words: [UInt32] = []
        while words.count < length {
            if g.below(30) == 0 {
                words += partialPair(&g)
            } else {
                words.append(instruction(&g, index: words.count))
            }
        }
        return Array(words.prefix(length))
    }

    struct Machine {
        let bus: TestBus
        let cpu: CPU
    }

    static func machine(seed: UInt64, engine: Engine) -> Machine {
        var g = Random(state: seed)
        let bus = TestBus(ramSize: 4 << 20)
        var config = CPUConfiguration()
        config.engine = engine
        let cpu = CPU(bus: bus, configuration: config)
        bus.cpu = cpu
        bus.load([0x0800_0060, 0], at: 0)  // refill vector: j 0x80000180
        bus.load(handler, at: 0x180)
        var program = Self.program(&g)
        program += [0x1000_FFFF, 0]  // b . (the end)
        bus.load(program, at: codeBase & 0x1FFF_FFFF)
        for a in stride(from: 0x20_0000, to: 0x20_1000, by: 4) {
            (bus.ram + a).storeBytes(of: UInt32(truncatingIfNeeded: g.next()), as: UInt32.self)
        }
        let specials: [UInt32] = [0, 1, 0xFFFF_FFFF, 0x8000_0000, 0x7FFF_FFFF, 0xFFFF_8000]
        for n in 1..<32 {
            cpu.setGPR(n, g.below(4) == 0 ? g.pick(specials) : UInt32(truncatingIfNeeded: g.next()))
        }
        cpu.setGPR(16, 0x8020_0000)
        cpu.setGPR(17, 0x0000_1000)  // kuseg, nothing mapped: TLB refill
        cpu.setGPR(18, 0xA020_0100)
        cpu.setGPR(19, codeBase)
        cpu.setGPR(29, codeBase &+ UInt32(g.below(length) * 4))
        cpu.writeCP0(11, 0, UInt32(40 + g.below(200)))  // Compare
        cpu.writeCP0(12, 0, 0x0000_8001)  // IE, IM7 (the timer), kernel mode, BEV=0
        cpu.jump(to: codeBase)
        return Machine(bus: bus, cpu: cpu)
    }

    /// Everything the two engines must agree on, as text (so a difference is readable).
    static func snapshot(_ m: Machine) -> [String] {
        let c = m.cpu
        var s = (0..<32).map { "r\($0)=\(String(c.gpr($0), radix: 16))" }
        s += ["hi=\(String(c.hi, radix: 16))", "lo=\(String(c.lo, radix: 16))",
              "pc=\(String(c.pc, radix: 16))", "npc=\(String(c.npc, radix: 16))", "delay=\(c.inDelaySlot)",
              "epc=\(String(c.readCP0(14, 0), radix: 16))", "cause=\(String(c.readCP0(13, 0), radix: 16))",
              "badvaddr=\(String(c.readCP0(8, 0), radix: 16))", "status=\(String(c.readCP0(12, 0), radix: 16))",
              "cycles=\(c.cycles)", "retired=\(c.retiredInstructions)", "faulted=\(c.faultedInstructions)",
              "exceptions=\(c.exceptionCounts)", "mode=\(c.mode)"]
        return s
    }

    @Test("Random programs end in the same state on both engines", arguments: 0..<2)
    func randomPrograms(half: Int) {
        var translated: UInt64 = 0
        var compared = 0
        var links: UInt64 = 0
        for k in stride(from: half, to: Self.programs, by: 2) {
            let seed = UInt64(k) &* 7919 &+ 1
            let a = Self.machine(seed: seed, engine: .interpreter)
            let b = Self.machine(seed: seed, engine: .jit)
            #expect(a.cpu.engine == .interpreter && b.cpu.engine == .jit)
            var g = Random(state: seed ^ 0xABCD)
            for _ in 0..<40 {
                let budget = UInt64(1 + g.below(150))
                let ra = a.cpu.run(instructions: budget)
                let rb = b.cpu.run(instructions: budget)
                #expect(ra == rb, "seed \(seed)")
            }
            let sa = Self.snapshot(a), sb = Self.snapshot(b)
            if sa != sb {
                let diff = zip(sa, sb).filter { $0 != $1 }.map { "interpreter \($0) jit \($1)" }
                Issue.record("seed \(seed): \(diff.joined(separator: ", "))")
            }
            #expect(memcmp(a.bus.ram, b.bus.ram, a.bus.ramSize) == 0, "seed \(seed): RAM differs")
            translated += b.cpu.jitStatistics.guestInstructions
            links += b.cpu.jitStatistics.links
            compared += 1
        }
        #expect(compared > 0)
        // The comparison means something only if the translator ran.
        #expect(translated > UInt64(compared) * 20)
        #expect(links > 0, "no block was chained")
    }
}

extension DisassemblerTests.SplitMix64 {
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func pick<T>(_ a: [T]) -> T { a[below(a.count)] }
}
