import Foundation
import Testing
@testable import MagritteCore

/// The translator against the interpreter: random instruction sequences run from the same state
/// on both engines, with the timer interrupting them and the run split into random budgets;
/// every GPR, HI/LO, pc/npc/delay slot, CP0 EPC/Cause/BadVAddr/Status, the cycle, retired and
/// faulted counts, the exception counts and all of RAM must be equal (`Docs/jit.md`).
///
/// The programs mix every translated instruction with the ones left to the interpreter or
/// called out (`JIT.callOut`): LWL/LWR and SWL/SWR pairs at every alignment, LL/SC pairs with
/// interfering stores, conditional traps taken and not taken (in delay slots too), faults in
/// delay slots, stores into the program itself, accesses to a device whose registers count
/// accesses, read the time, end the batch, raise an interrupt line and stop the run (`FuzzBus`),
/// CP0 reads (Count, Random) and writes (EntryHi's ASID), TLBP/TLBR, CACHE and RDHWR.
///
/// Count from the environment: `MAGRITTE_JIT_FUZZ_PROGRAMS` (default 150).
@Suite("Translator against interpreter", .enabled(if: Engine.jitSupported))
struct JITDifferentialTests {
    static let programs = Int(ProcessInfo.processInfo.environment["MAGRITTE_JIT_FUZZ_PROGRAMS"] ?? "") ?? 150

    /// The disassembler tests' SplitMix64: the same program for the same seed on every host.
    typealias Random = DisassemblerTests.SplitMix64

    static let codeBase: UInt32 = 0x8010_0000
    static let length = 256
    /// Registers random code may write; 16-19, 29 and 30 hold pointers, 26-27 belong to the handler.
    static let dests: [UInt32] = Array(1...15) + Array(20...25) + [0, 31]
    static let pointers: [UInt32] = [16, 17, 18, 19, 30]
    /// Where r30 points: the device (`FuzzBus`), half of what 0(r30)..252(r30) reach answering.
    static let devicePointer: UInt32 = 0xA000_0000 | FuzzBus.base | 0xE80

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
        case 95..<98:  // instructions blocks call out for
            return calledOut(&g)
        default:  // any word at all
            return UInt32(truncatingIfNeeded: g.next())
        }
    }

    /// One of the instructions a block runs through the interpreter's code (`JITOpRules.calledOut`).
    static func calledOut(_ g: inout Random) -> UInt32 {
        let dst = g.pick(dests)
        switch g.below(7) {
        case 6: return privilegedControl(&g)
        case 0: return r(16, rs: 0, rt: dst, rd: g.pick([9, 9, 1, 13, 12, 14, 10, 8, 17]), funct: 0)  // mfc0: Count, Random, …
        case 1: return r(16, rs: 4, rt: UInt32(g.below(32)), rd: g.pick([10, 2, 3, 5]), funct: 0)  // mtc0 EntryHi, EntryLo0/1, PageMask
        case 2: return g.pick([0x4200_0008, 0x4200_0001])  // tlbp, tlbr
        case 3: return i(47, rs: g.pick(pointers), rt: UInt32(g.below(32)), imm: UInt32(g.below(64) * 4))  // cache
        case 4: return r(31, rs: 0, rt: dst, rd: g.pick([0, 1, 2, 3, 29, 4]), funct: 0x3B)  // rdhwr
        default: return i(48, rs: g.pick(pointers), rt: dst, imm: UInt32(g.below(64) * 4))  // ll
        }
    }

    /// DI/EI (with or without a destination), TLBWI/TLBWR, WAIT or ERET: called out, and natively
    /// they end the batch (DI, EI, WAIT), may remap the code page (TLBWI/TLBWR) or move pc (ERET).
    static func privilegedControl(_ g: inout Random) -> UInt32 {
        switch g.below(6) {
        case 0, 1: return 0x4160_6000 | UInt32(g.pick([0, 0, 8, 21])) << 16 | UInt32(g.below(2)) << 5  // di/ei rt
        case 2: return 0x4200_0002  // tlbwi
        case 3: return 0x4200_0006  // tlbwr
        case 4: return 0x4200_0020  // wait
        default: return 0x4200_0018  // eret
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

    /// An LL/SC pair on one word, maybe with an interfering store between them (of another
    /// value, or of the same value back), maybe with the SC elsewhere or unaligned.
    static func linkedPair(_ g: inout Random) -> [UInt32] {
        let base = g.pick(pointers)
        let off = base == 19 ? UInt32(g.below(length) * 4) : UInt32(g.below(64) * 4)
        let rt = g.pick(dests)
        var words = [i(48, rs: base, rt: rt, imm: off)]
        switch g.below(5) {
        case 0: words.append(i(43, rs: base, rt: UInt32(g.below(32)), imm: off))  // sw of another value
        case 1: words.append(i(43, rs: base, rt: rt, imm: off))  // sw of the loaded value
        case 2: words.append(instruction(&g, index: 0))
        default: break
        }
        var scOff = off
        if g.below(6) == 0 { scOff = g.below(2) == 0 ? off &+ UInt32(1 + g.below(3)) : UInt32(g.below(64) * 4) }
        words.append(i(56, rs: base, rt: g.pick(dests), imm: scOff))
        return words
    }

    /// The program's words: single random instructions and, now and then, partial-word pairs
    /// or LL/SC pairs.
    static func program(_ g: inout Random) -> [UInt32] {
        var words: [UInt32] = []
        while words.count < length {
            if g.below(40) == 0 {
                words += linkedPair(&g)
            } else if g.below(30) == 0 {
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
        let devices: FuzzBus
        /// The trap handler (the CPU holds it weakly), when the program runs under one.
        var handler: FuzzTrapHandler? = nil
    }

    /// A machine with the random program of `seed`, or with `program` instead (the RAM and the
    /// registers still random from `seed`; r16 points at the data, r19 at the code).
    static func machine(seed: UInt64, engine: Engine, program custom: [UInt32]? = nil) -> Machine {
        machine(seed: seed, engine: engine, program: custom, segmentationControl: false)
    }

    private static func machine(seed: UInt64, engine: Engine, program custom: [UInt32]?, segmentationControl: Bool) -> Machine {
        var g = Random(state: seed)
        let bus = TestBus(ramSize: 4 << 20)
        let devices = FuzzBus(ram: bus)
        var config = CPUConfiguration()
        config.engine = engine
        config.segmentationControl = segmentationControl
        let cpu = CPU(bus: devices, configuration: config)
        bus.cpu = cpu
        devices.cpu = cpu
        bus.load([0x0800_0060, 0], at: 0)  // refill vector: j 0x80000180
        bus.load(handler, at: 0x180)
        var program = custom ?? Self.program(&g)
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
        cpu.setGPR(30, devicePointer)
        cpu.writeCP0(11, 0, UInt32(40 + g.below(200)))  // Compare
        cpu.writeCP0(12, 0, 0x0000_8001)  // IE, IM7 (the timer), kernel mode, BEV=0
        cpu.jump(to: codeBase)
        return Machine(bus: bus, cpu: cpu, devices: devices)
    }

    /// A machine whose program runs in user mode under `FuzzTrapHandler`, as a guest kernel runs
    /// under the VMM: kseg0 and kseg1 stay unmapped but usable from user mode (SegCtl), so the
    /// program, its data and the device are where they are in kernel mode, and every privileged
    /// instruction raises Coprocessor Unusable, which the handler emulates.
    static func machineUnderHandler(seed: UInt64, engine: Engine, program custom: [UInt32]? = nil, quiet: Bool = false) -> Machine {
        var m = machine(seed: seed, engine: engine, program: custom ?? privilegedProgram(seed: seed), segmentationControl: true)
        let handler = FuzzTrapHandler(seed: seed, quiet: quiet)
        m.handler = handler
        m.cpu.trapHandler = handler
        m.cpu.writeCP0(CP0Register.segCtl1, 0x0073_0072)  // kseg0, kseg1: unmapped for every mode
        m.cpu.setStatus(0x0000_8011)  // user mode, IE, IM7 (the timer)
        return m
    }

    /// A random program in which one instruction in four is privileged (`FuzzTrapHandler.privileged`).
    static func privilegedProgram(seed: UInt64) -> [UInt32] {
        var g = Random(state: seed ^ 0x5EED)
        var words = program(&g)
        for k in words.indices where g.below(4) == 0 { words[k] = FuzzTrapHandler.privileged(&g) }
        return words
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
              "exceptions=\(c.exceptionCounts)", "mode=\(c.mode)", "llbit=\(c.llBit)",
              "llAddr=\(String(c.readCP0(17, 0), radix: 16))", "entryHi=\(String(c.readCP0(10, 0), radix: 16))",
              "count=\(String(c.readCP0(9, 0), radix: 16))", "device accesses=\(m.devices.log.count)"]
        return s
    }

    /// LL/SC, partial words and traps written by hand (r16 = the data at 0x80200000).
    static let handWritten: [UInt32] = {
        var p: [UInt32] = [
            i(9, rs: 0, rt: 9, imm: 0),  // addiu $9, $0, 0: SC successes
            i(9, rs: 0, rt: 10, imm: 50),  // addiu $10, $0, 50: rounds
            i(48, rs: 16, rt: 8, imm: 0),  // 2: ll $8, 0($16)
            i(9, rs: 8, rt: 8, imm: 3),  // addiu $8, $8, 3
            i(56, rs: 16, rt: 8, imm: 0),  // sc $8, 0($16)
            r(0, rs: 9, rt: 8, rd: 9, funct: 0x21),  // addu $9, $9, $8
            i(9, rs: 10, rt: 10, imm: 0xFFFF),  // addiu $10, $10, -1
            i(5, rs: 10, rt: 0, imm: 0xFFFA),  // bne $10, $0, 2
            0,
            i(9, rs: 0, rt: 12, imm: 0x1234),  // addiu $12, $0, 0x1234
            i(48, rs: 16, rt: 8, imm: 8),  // ll $8, 8($16)
            i(43, rs: 16, rt: 12, imm: 8),  // sw $12, 8($16): another value, SC fails
            i(56, rs: 16, rt: 8, imm: 8),  // sc $8, 8($16)
            r(0, rs: 8, rt: 0, rd: 13, funct: 0x21),  // move $13, $8
            i(48, rs: 16, rt: 8, imm: 12),  // ll $8, 12($16)
            i(43, rs: 16, rt: 8, imm: 12),  // sw $8, 12($16): the same value, SC succeeds
            i(56, rs: 16, rt: 8, imm: 12),  // sc $8, 12($16)
            r(0, rs: 8, rt: 0, rd: 14, funct: 0x21),  // move $14, $8
            i(15, rs: 0, rt: 15, imm: 0x1122),  // lui $15, 0x1122
            i(13, rs: 15, rt: 15, imm: 0x3344),  // ori $15, $15, 0x3344
        ]
        for k: UInt32 in 0..<4 {  // the unaligned words at 16+k into $20+k, $15 to 32+5k
            p += [i(34, rs: 16, rt: 20 + k, imm: 16 + k + 3), i(38, rs: 16, rt: 20 + k, imm: 16 + k)]
            p += [i(42, rs: 16, rt: 15, imm: 32 + 5 * k + 3), i(46, rs: 16, rt: 15, imm: 32 + 5 * k)]
        }
        p += [
            r(0, rs: 0, rt: 0, rd: 0, funct: 0x36),  // tne $0, $0: not taken
            r(0, rs: 9, rt: 0, rd: 0, funct: 0x34),  // teq $9, $0: not taken
            i(1, rs: 9, rt: 8, imm: 10),  // tgei $9, 10: taken ($9 = 50)
            i(1, rs: 9, rt: 10, imm: 10),  // tlti $9, 10: not taken
        ]
        return p
    }()

    @Test("LL/SC, LWL/LWR/SWL/SWR and traps written by hand end alike, as the ISA says")
    func handWrittenSequences() {
        let a = Self.machine(seed: 1, engine: .interpreter, program: Self.handWritten)
        let b = Self.machine(seed: 1, engine: .jit, program: Self.handWritten)
        // Interrupts off: an ERET (the handler's) between an LL and its SC would fail the SC.
        for m in [a, b] { m.cpu.writeCP0(12, 0, 0x0000_8000) }
        let data = b.bus.ram + 0x20_0000
        let before = (0..<64).map { data.load(fromByteOffset: $0, as: UInt8.self) }
        let word = { (at: Int) in (0..<4).reduce(UInt32(0)) { $0 | UInt32(before[at + $1]) << (8 * UInt32($1)) } }
        for m in [a, b] { _ = m.cpu.run(instructions: 3000) }
        #expect(Self.snapshot(a) == Self.snapshot(b))
        #expect(memcmp(a.bus.ram, b.bus.ram, a.bus.ramSize) == 0)
        #expect(b.cpu.jitStatistics.guestInstructions > 20, "the translator ran")
        for m in [a, b] {
            let c = m.cpu
            #expect(c.gpr(9) == 50 && c.gpr(10) == 0, "every SC after its LL succeeds")
            #expect(data.load(as: UInt32.self) == word(0) &+ 150)
            #expect(c.gpr(13) == 0 && c.gpr(14) == 1, "SC: another value stored between fails, the same value not")
            #expect(data.load(fromByteOffset: 8, as: UInt32.self) == 0x1234)
            for k in 0..<4 {
                #expect(c.gpr(20 + k) == word(16 + k), "lwl/lwr at offset \(k)")
                #expect(data.loadUnaligned(fromByteOffset: 32 + 5 * k, as: UInt32.self) == 0x1122_3344, "swl/swr at offset \(k)")
            }
            #expect(c.exceptionCounts[Int(ExceptionCode.trap.rawValue)] == 1)
            let end = Self.codeBase &+ UInt32(4 * Self.handWritten.count)
            #expect(c.pc == end || c.pc == end &+ 4, "in the final b . loop")
        }
    }

    @Test("Random programs end in the same state on both engines", arguments: 0..<2)
    func randomPrograms(half: Int) {
        var translated: UInt64 = 0
        var compared = 0
        var links: UInt64 = 0
        var deviceAccesses = 0, inPlace: UInt64 = 0, goneOn: UInt64 = 0
        for k in stride(from: half, to: Self.programs, by: 2) {
            let seed = UInt64(k) &* 7919 &+ 1
            let a = Self.machine(seed: seed, engine: .interpreter)
            let b = Self.machine(seed: seed, engine: .jit)
            #expect(a.cpu.engine == .interpreter && b.cpu.engine == .jit)
            Self.compareRuns(a, b, seed: seed)
            deviceAccesses += a.devices.log.count
            translated += b.cpu.jitStatistics.guestInstructions
            links += b.cpu.jitStatistics.links
            inPlace += b.cpu.jitStatistics.batchEndsInPlace
            goneOn += b.cpu.jitStatistics.exceptionsGoneOn
            compared += 1
        }
        #expect(compared > 0)
        // The comparison means something only if the translator ran.
        #expect(translated > UInt64(compared) * 20)
        #expect(links > 0, "no block was chained")
        // ... and it covers batch ends in place and exceptions and ERETs going on through the lookup.
        #expect(inPlace > UInt64(compared) && goneOn > UInt64(compared), "\(inPlace) batch ends in place, \(goneOn) went on")
        #expect(deviceAccesses > compared, "the programs reached the device")
    }

    @Test("A device read in a loop stays in translated code; one that ends the batch leaves its block after itself",
          arguments: [UInt32(0), 8])
    func deviceReadsInABlock(register offset: UInt32) {
        let rounds: UInt32 = 1000
        let program: [UInt32] = [
            Self.i(9, rs: 0, rt: 9, imm: rounds),  // addiu $9, $0, 1000
            Self.i(35, rs: 30, rt: 8, imm: offset),  // 1: lw $8, offset($30): the device
            Self.r(0, rs: 10, rt: 8, rd: 10, funct: 0x21),  // addu $10, $10, $8
            Self.i(9, rs: 9, rt: 9, imm: 0xFFFF),  // addiu $9, $9, -1
            Self.i(5, rs: 9, rt: 0, imm: 0xFFFC),  // bne $9, $0, 1
            0,
        ]
        let a = Self.machine(seed: 5, engine: .interpreter, program: program)
        let b = Self.machine(seed: 5, engine: .jit, program: program)
        let sum = a.cpu.gpr(10)
        for m in [a, b] {
            m.cpu.writeCP0(12, 0, 0)  // no interrupts: only the device can end a batch
            #expect(m.cpu.run(instructions: UInt64(rounds) * 5 + 100) == .budgetExhausted)
            #expect(m.cpu.gpr(9) == 0 && m.devices.log.count == Int(rounds), "\(m.cpu.engine): every round read the device")
        }
        #expect(Self.snapshot(a) == Self.snapshot(b))
        #expect(a.devices.log == b.devices.log, "the same reads at the same times")
        let stats = b.cpu.jitStatistics
        #expect(stats.instructionsRun >= UInt64(rounds) * 5)
        if offset == 0 {
            #expect(stats.entries < 20, "\(stats.entries) returns to the loop: \(stats.returns)")
            #expect(b.cpu.gpr(10) &- sum == rounds * (rounds + 1) / 2, "the counter read 1, 2, … 1000")
        } else {
            // The register asks for the exact time (endBatch): the batch ends after each read
            // (but the last few, which the interpreter runs when a block no longer fits in the run),
            // in place: the run loop would only start the next batch, so the block goes on.
            let ended = stats.returns.first { $0.reason == "lw: called out, batch end" }?.count ?? 0
            #expect(ended + stats.batchEndsInPlace <= UInt64(rounds) && ended + stats.batchEndsInPlace + 5 >= UInt64(rounds),
                    "\(stats.batchEndsInPlace) in place, \(stats.returns)")
            #expect(stats.entries < 20, "\(stats.entries) returns to the loop: \(stats.returns)")
        }
    }

    @Test("A TLB refill and its handler's ERET go on through the lookup instead of returning to the loop, on both engines")
    func exceptionsAndEretsGoOn() {
        let rounds: UInt32 = 500
        let program: [UInt32] = [
            Self.i(9, rs: 0, rt: 9, imm: rounds),  // addiu $9, $0, 500
            Self.i(35, rs: 17, rt: 8, imm: 0),  // 1: lw $8, 0($17): kuseg, unmapped (the handler skips it)
            Self.i(9, rs: 10, rt: 10, imm: 3),  // addiu $10, $10, 3
            Self.i(9, rs: 9, rt: 9, imm: 0xFFFF),  // addiu $9, $9, -1
            Self.i(5, rs: 9, rt: 0, imm: 0xFFFC),  // bne $9, $0, 1
            0,
        ]
        let a = Self.machine(seed: 13, engine: .interpreter, program: program)
        let b = Self.machine(seed: 13, engine: .jit, program: program)
        for m in [a, b] {
            m.cpu.writeCP0(12, 0, 0)  // kernel mode, no interrupts: each batch ends at an exception or an ERET
            #expect(m.cpu.run(instructions: UInt64(rounds) * 20) == .budgetExhausted)
            #expect(m.cpu.gpr(9) == 0, "\(m.cpu.engine): the loop ran to its end")
            #expect(m.cpu.exceptionCounts[Int(ExceptionCode.tlbLoad.rawValue)] == UInt64(rounds))
        }
        #expect(Self.snapshot(a) == Self.snapshot(b))
        let stats = b.cpu.jitStatistics
        // Before, each refill and each ERET returned to the run loop: 1000 returns.
        #expect(stats.entries < 20, "\(stats.entries) returns to the loop: \(stats.returns)")
        #expect(stats.exceptionsGoneOn >= UInt64(rounds) * 2 - 10 && stats.batchEndsInPlace >= UInt64(rounds) * 2 - 10,
                "\(stats.exceptionsGoneOn) went on, \(stats.batchEndsInPlace) batch ends in place")
    }

    @Test("After an ASID change the lookup refills the fetch TLB for a jump to another page instead of returning, on both engines")
    func lookupRefillsTheFetchTLB() {
        let rounds: UInt32 = 300
        let other = Self.codeBase &+ 0x1000
        var program: [UInt32] = [
            Self.i(9, rs: 0, rt: 9, imm: rounds),  // addiu $9, $0, 300
            Self.r(16, rs: 4, rt: 9, rd: 10, funct: 0),  // 1: mtc0 $9, EntryHi: a new ASID empties the fetch TLB
            3 << 26 | (other >> 2) & 0x03FF_FFFF,  // jal other (the next page, through the lookup)
            0,
            Self.i(9, rs: 9, rt: 9, imm: 0xFFFF),  // addiu $9, $9, -1
            Self.i(5, rs: 9, rt: 0, imm: 0xFFFB),  // bne $9, $0, 1
            0,
            0x1000_FFFF,  // b .
            0,
        ]
        program += Array(repeating: 0, count: 1024 - program.count)
        program += [Self.r(0, rs: 31, rt: 0, rd: 0, funct: 8), Self.i(9, rs: 10, rt: 10, imm: 1)]  // other: jr $31; addiu $10, $10, 1
        let stats = Self.runCallingLoop(seed: 17, program, budget: UInt64(rounds) * 10, adds: rounds, "every round called the other page")
        let misses = stats.returns.first { $0.reason == "lookup: page not in the fetch TLB" }?.count ?? 0
        // Before, each round's jump to the other page returned to the loop (its page left the fetch TLB).
        #expect(misses < 10 && stats.lookupRefills >= UInt64(rounds) - 10, "\(stats.lookupRefills) refills, \(stats.returns)")
    }

    @Test("Two functions whose pcs share a lookup slot are called in turn through the lookup without returning, on both engines")
    func lookupRefillsItsTable() {
        let rounds: UInt32 = 300
        let f1 = Self.codeBase &+ 0x1000, f2 = f1 &+ UInt32(JITLookup.entries * 4)  // the same slot
        var program: [UInt32] = [
            Self.i(9, rs: 0, rt: 9, imm: rounds),  // addiu $9, $0, 300
            3 << 26 | (f1 >> 2) & 0x03FF_FFFF,  // 1: jal f1
            0,
            3 << 26 | (f2 >> 2) & 0x03FF_FFFF,  // jal f2
            0,
            Self.i(9, rs: 9, rt: 9, imm: 0xFFFF),  // addiu $9, $9, -1
            Self.i(5, rs: 9, rt: 0, imm: 0xFFFA),  // bne $9, $0, 1
            0,
            0x1000_FFFF,  // b .
            0,
        ]
        for (f, add) in [(f1, UInt32(1)), (f2, 100)] {
            program += Array(repeating: 0, count: Int(f &- Self.codeBase) / 4 - program.count)
            program += [Self.r(0, rs: 31, rt: 0, rd: 0, funct: 8), Self.i(9, rs: 10, rt: 10, imm: add)]  // jr $31; addiu $10, $10, add
        }
        let stats = Self.runCallingLoop(seed: 19, program, budget: UInt64(rounds) * 12, adds: rounds * 101, "every round called both")
        // Before, each call missed the slot the other function's block held and returned to the loop.
        #expect(stats.entries < 20 && stats.lookupRefills >= UInt64(rounds) * 2 - 10, "\(stats.lookupRefills) refills, \(stats.returns)")
    }

    /// Runs `program` (a loop that counts `$9` down to zero and calls functions adding to `$10`)
    /// in kernel mode with interrupts off for `budget` slots on the interpreter and on the
    /// translator (the same seed): both run it to its end, `$10` grows by `adds` (`what`), and
    /// they end in the same state. Returns the translator's statistics.
    static func runCallingLoop(seed: UInt64, _ program: [UInt32], budget: UInt64, adds: UInt32, _ what: String) -> JITStatistics {
        let a = machine(seed: seed, engine: .interpreter, program: program)
        let b = machine(seed: seed, engine: .jit, program: program)
        let start = a.cpu.gpr(10)
        for m in [a, b] {
            m.cpu.writeCP0(12, 0, 0)  // kernel mode, no interrupts
            #expect(m.cpu.run(instructions: budget) == .budgetExhausted)
            #expect(m.cpu.gpr(9) == 0 && m.cpu.gpr(10) &- start == adds, "\(m.cpu.engine): \(what)")
        }
        #expect(snapshot(a) == snapshot(b))
        return b.cpu.jitStatistics
    }

    /// Runs `a` and `b` in the same random budgets and records every difference between them.
    static func compareRuns(_ a: Machine, _ b: Machine, seed: UInt64, runs: Int = 40) {
        var g = Random(state: seed ^ 0xABCD)
        for _ in 0..<runs {
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
        for (x, y, what) in [(a.devices.log, b.devices.log, "device access"), (a.handler?.log ?? [], b.handler?.log ?? [], "trap")] where x != y {
            let k = zip(x, y).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(x.count, y.count)
            Issue.record("seed \(seed): \(what) \(k) differs: interpreter \(x.dropFirst(k).first ?? "none"), jit \(y.dropFirst(k).first ?? "none")")
        }
    }

    @Test("Random programs under a trap handler that emulates privileged instructions end in the same state on both engines",
          arguments: 0..<2)
    func randomProgramsUnderATrapHandler(half: Int) {
        var traps = 0, goneOn: UInt64 = 0, translated: UInt64 = 0, compared = 0, wentOnAfterExits: UInt64 = 0
        for k in stride(from: half, to: Self.programs, by: 2) {
            let seed = UInt64(k) &* 104_729 &+ 3
            let a = Self.machineUnderHandler(seed: seed, engine: .interpreter)
            let b = Self.machineUnderHandler(seed: seed, engine: .jit)
            Self.compareRuns(a, b, seed: seed)
            traps += a.handler!.log.count
            goneOn += b.cpu.jitStatistics.trapsGoneOn
            translated += b.cpu.jitStatistics.instructionsRun
            wentOnAfterExits += b.cpu.jitStatistics.exceptionsGoneOn
            compared += 1
        }
        // Reflected traps and emulated ERETs went on through the lookup (`exceptionsAndEretsGoOn`).
        #expect(wentOnAfterExits > UInt64(compared), "\(wentOnAfterExits) exceptions and ERETs went on")
        #expect(compared > 0)
        #expect(translated > UInt64(compared) * 100, "the translator ran")
        // The comparison covers the new path only if blocks went on after handled traps, and
        // it covers the exits only if many did not (stops, remaps, reflections, delay slots).
        #expect(goneOn > UInt64(compared) * 5 && goneOn < UInt64(traps) * 9 / 10, "\(goneOn) of \(traps) traps went on in a block")
    }

    /// `mfc0 $8, Status; addu $10, $10, $8; mtc0 $10, EPC; di $11; ei; addiu $9, $9, -1` in a loop of 1000.
    static let privilegedLoop: [UInt32] = [
        i(9, rs: 0, rt: 9, imm: 1000),  // addiu $9, $0, 1000
        0x4008_6000,  // 1: mfc0 $8, $12
        r(0, rs: 10, rt: 8, rd: 10, funct: 0x21),  // addu $10, $10, $8
        0x408A_7000,  // mtc0 $10, $14
        0x416B_6000,  // di $11
        0x4160_6020,  // ei
        i(9, rs: 9, rt: 9, imm: 0xFFFF),  // addiu $9, $9, -1
        i(5, rs: 9, rt: 0, imm: 0xFFF9),  // bne $9, $0, 1
        0,
    ]

    @Test("Under a trap handler, a block goes on after each emulated privileged instruction instead of returning to the loop")
    func handledTrapsGoOnInTheBlock() {
        let a = Self.machineUnderHandler(seed: 9, engine: .interpreter, program: Self.privilegedLoop, quiet: true)
        let b = Self.machineUnderHandler(seed: 9, engine: .jit, program: Self.privilegedLoop, quiet: true)
        for m in [a, b] {
            m.cpu.setStatus(0x0000_0010)  // user mode, no interrupts: only the traps
            #expect(m.cpu.run(instructions: 8 * 1000 + 50) == .budgetExhausted)
            #expect(m.cpu.gpr(9) == 0, "\(m.cpu.engine): the loop ran to its end")
            #expect(m.handler!.log.count >= 4000, "\(m.cpu.engine): every privileged instruction trapped")
        }
        #expect(Self.snapshot(a) == Self.snapshot(b))
        #expect(a.handler!.log == b.handler!.log, "the same traps at the same times")
        #expect(a.cpu.faultedInstructions == 4000 && a.cpu.exceptionCounts[Int(ExceptionCode.coprocessorUnusable.rawValue)] == 4000)
        let stats = b.cpu.jitStatistics
        // Before, each trap returned to the run loop (and ended the batch): 4000 returns.
        #expect(stats.entries < 40, "\(stats.entries) returns to the loop: \(stats.returns)")
        #expect(stats.trapsGoneOn >= 3990, "\(stats.trapsGoneOn) traps went on in a block")
        #expect(stats.instructionsRun >= 8000)
    }

    @Test("TLBWR in a kernel loop stays in its block unless the entry maps the code page, on both engines")
    func tlbWritesInABlock() {
        // Each round writes a random entry for kuseg page pair 0 (the code is in kseg0).
        let program: [UInt32] = [
            Self.i(9, rs: 0, rt: 9, imm: 500),  // addiu $9, $0, 500
            Self.r(16, rs: 4, rt: 0, rd: 10, funct: 0),  // 1: mtc0 $0, EntryHi
            Self.r(16, rs: 4, rt: 9, rd: 2, funct: 0),  // mtc0 $9, EntryLo0
            0x4200_0006,  // tlbwr
            Self.i(9, rs: 9, rt: 9, imm: 0xFFFF),  // addiu $9, $9, -1
            Self.i(5, rs: 9, rt: 0, imm: 0xFFFB),  // bne $9, $0, 1
            0,
        ]
        let a = Self.machine(seed: 11, engine: .interpreter, program: program)
        let b = Self.machine(seed: 11, engine: .jit, program: program)
        for m in [a, b] {
            m.cpu.writeCP0(12, 0, 0)  // kernel mode, no interrupts
            #expect(m.cpu.run(instructions: 6 * 500 + 20) == .budgetExhausted)
            #expect(m.cpu.gpr(9) == 0)
        }
        #expect(Self.snapshot(a) == Self.snapshot(b))
        for k in 0..<a.cpu.configuration.tlbEntries { #expect(a.cpu.tlbEntry(k) == b.cpu.tlbEntry(k), "TLB entry \(k)") }
        let stats = b.cpu.jitStatistics
        #expect(stats.entries < 20, "\(stats.entries) returns to the loop: \(stats.returns)")
    }

    @Test("A TLB write that remaps the page of a block entered through the lookup ends that block, on both engines")
    func tlbWriteRemapsTheRunningBlocksPage() {
        // Page A (0x400000, frame 0x300000) loops 19 times: it sets up a TLB write, makes a
        // system call (so the run loop's page is A's) and jumps to page B (0x402000, another
        // TLB entry, found through the lookup), whose TLBWI writes it. The write is harmless but
        // in round 8, which maps B to frame 0x302000 (where B's second instruction adds 100, not 1).
        func lo(_ pa: UInt32) -> UInt32 { (pa >> 12) << 6 | 0x1F }
        let a: [UInt32] = [
            Self.i(9, rs: 13, rt: 13, imm: 1),  // A0: addiu $13, $13, 1
            Self.r(16, rs: 4, rt: 12, rd: 0, funct: 0),  // mtc0 $12, Index (1)
            Self.r(16, rs: 4, rt: 20, rd: 10, funct: 0),  // mtc0 $20, EntryHi (0x800000)
            Self.r(16, rs: 4, rt: 25, rd: 2, funct: 0),  // mtc0 $25, EntryLo0
            Self.r(16, rs: 4, rt: 25, rd: 3, funct: 0),  // mtc0 $25, EntryLo1
            Self.i(9, rs: 13, rt: 14, imm: 0xFFF8),  // addiu $14, $13, -8
            Self.i(5, rs: 14, rt: 0, imm: 5),  // bne $14, $0, A12
            0,
            Self.r(16, rs: 4, rt: 22, rd: 0, funct: 0),  // mtc0 $22, Index (2: B's entry)
            Self.r(16, rs: 4, rt: 21, rd: 10, funct: 0),  // mtc0 $21, EntryHi (0x402000)
            Self.r(16, rs: 4, rt: 24, rd: 2, funct: 0),  // mtc0 $24, EntryLo0 (B's other frame)
            Self.r(16, rs: 4, rt: 0, rd: 3, funct: 0),  // mtc0 $0, EntryLo1
            Self.i(9, rs: 13, rt: 15, imm: 0xFFEC),  // A12: addiu $15, $13, -20
            Self.i(4, rs: 15, rt: 0, imm: 0xFFFF),  // A13: beq $15, $0, A13 (the end)
            0,
            0x0000_000C,  // syscall (the handler returns to the next instruction)
            2 << 26 | (0x0040_2000 >> 2),  // j B
            0,
        ]
        func b(_ add: UInt32) -> [UInt32] { [0x4200_0002, Self.i(9, rs: 9, rt: 9, imm: add), 2 << 26 | (0x0040_0000 >> 2), 0] }
        var sums: [UInt32] = []
        var states: [[String]] = []
        for engine in [Engine.interpreter, .jit] {
            let m = Self.machine(seed: 13, engine: engine, program: [])
            m.bus.load(a, at: 0x30_0000)
            m.bus.load(b(1), at: 0x30_1000)
            m.bus.load(b(100), at: 0x30_2000)
            let c = m.cpu
            c.setTLBEntry(0, TLBEntry(entryHi: 0x0040_0000, pageMask: 0, entryLo0: lo(0x30_0000), entryLo1: 0))
            c.setTLBEntry(2, TLBEntry(entryHi: 0x0040_2000, pageMask: 0, entryLo0: lo(0x30_1000), entryLo1: 0))
            for (n, v) in [(9, 0), (13, 0), (12, 1), (20, 0x0080_0000), (25, lo(0x30_3000)), (22, 2), (21, 0x0040_2000),
                           (24, lo(0x30_2000))] as [(Int, UInt32)] { c.setGPR(n, v) }
            c.writeCP0(12, 0, 0)  // kernel mode, no interrupts
            c.jump(to: 0x0040_0000)
            #expect(c.run(instructions: 3000) == .budgetExhausted)
            #expect(c.gpr(13) == 20, "\(engine): the rounds ran")
            sums.append(c.gpr(9))
            states.append(Self.snapshot(m))
        }
        #expect(sums == [1207, 1207], "7 rounds through B's first frame, 12 through its second")
        #expect(states[0] == states[1])
    }

    /// rdhwr rt, rd.
    static func rdhwr(_ rt: UInt32, _ rd: UInt32) -> UInt32 { r(31, rs: 0, rt: rt, rd: rd, funct: 0x3B) }

    @Test("RDHWR from user mode: Reserved Instruction without HWREna, the registers with it, in blocks on both engines",
          arguments: [UInt32(0), 0xF])
    func rdhwrFromUserMode(hwrEna: UInt32) {
        // The program runs from a user page mapped to its frame; the handler skips what traps.
        let program: [UInt32] = [
            Self.i(9, rs: 0, rt: 20, imm: 7),  // addiu $20, $0, 7: a block starts here
            Self.rdhwr(8, 0), Self.rdhwr(9, 1), Self.rdhwr(10, 2), Self.rdhwr(11, 3), Self.rdhwr(12, 29),
            Self.i(9, rs: 20, rt: 20, imm: 1),  // addiu $20, $20, 1: after them, in the same block
            Self.rdhwr(13, 2),  // CC again: later
        ]
        let user: UInt32 = 0x0040_0000
        var states: [[String]] = []
        for engine in [Engine.interpreter, .jit] {
            let m = Self.machine(seed: 3, engine: engine, program: program)
            let c = m.cpu
            let frame = Self.codeBase & 0x1FFF_F000
            c.setTLBEntry(0, TLBEntry(entryHi: user, pageMask: 0, entryLo0: (frame >> 12) << 6 | 0x1F,
                                      entryLo1: (frame >> 12 + 1) << 6 | 0x1F))
            c.writeCP0(7, 0, hwrEna)
            c.writeCP0(12, 0, 0x0000_0010)  // user mode, interrupts off
            c.jump(to: user | (Self.codeBase & 0xFFF))
            for r in [8, 9, 10, 11, 12, 13] { c.setGPR(r, 0xDEAD) }
            #expect(c.run(instructions: 200) == .budgetExhausted)
            let ri = c.exceptionCounts[Int(ExceptionCode.reservedInstruction.rawValue)]
            #expect(c.gpr(20) == 8 && c.mode == .user, "\(engine)")
            if hwrEna == 0 {
                #expect(ri == 6, "\(engine): every rdhwr refused")
                #expect([8, 9, 10, 11, 12, 13].allSatisfy { c.gpr($0) == 0xDEAD })
            } else {
                #expect(ri == 1, "\(engine): only UserLocal (29) refused on the 24Kc")
                let ratio = UInt32(c.configuration.instructionsPerCountTick)
                #expect(c.gpr(8) == 0 && c.gpr(9) == HardwareRegister.synciStepBytes && c.gpr(11) == ratio && c.gpr(12) == 0xDEAD)
                // CC is Count at the instruction: rdhwr $13 ran 12 slots after rdhwr $10 (the
                // refused rdhwr $12 and its 8-instruction handler between them).
                #expect(ratio == 2 && c.gpr(13) == c.gpr(10) &+ 6, "\(engine): CC read \(c.gpr(10)) then \(c.gpr(13))")
            }
            if engine == .jit { #expect(c.jitStatistics.instructionsRun >= 8, "the rdhwrs ran in blocks") }
            states.append(Self.snapshot(m))
        }
        #expect(states[0] == states[1])
    }
}

/// The fuzz's bus: RAM (and the UART) from a `TestBus`, and a device at physical 0x1F000000
/// whose registers have effects the two engines must reproduce in the same order at the same
/// time: word 0 of each 16 bytes counts reads, word 1 reads `cycles` (as devices see it between
/// batches), word 2 asks for the exact time (`endBatch`) and reads `currentCycles`, word 3
/// toggles interrupt line 0 (masked: it ends the batch) on a read and stops the run on a write
/// of 0x5A. Offsets from 0xF00 answer nothing (a bus error). Every access is logged with the
/// time.
final class FuzzBus: PhysicalBus {
    static let base: UInt32 = 0x1F00_0000
    let ram: TestBus
    weak var cpu: CPU?
    var log: [String] = []
    var reads: UInt32 = 0
    var line = false

    init(ram: TestBus) { self.ram = ram }

    func ramPage(frame: UInt32) -> UnsafeMutableRawPointer? { ram.ramPage(frame: frame) }

    func read(_ address: UInt32, size: Int) -> UInt32? {
        guard address & 0xFFFF_F000 == FuzzBus.base else { return ram.read(address, size: size) }
        guard let cpu, address & 0xFFF < 0xF00 else { return nil }
        log.append("read \(String(address, radix: 16))/\(size) at \(cpu.currentCycles), retired \(cpu.retiredInstructions)")
        switch (address >> 2) & 3 {
        case 0:
            reads &+= 1
            return reads
        case 1: return UInt32(truncatingIfNeeded: cpu.cycles)
        case 2:
            cpu.endBatch()
            return UInt32(truncatingIfNeeded: cpu.currentCycles)
        default:
            line.toggle()
            cpu.setInterruptLine(0, asserted: line)
            return 7
        }
    }

    func write(_ address: UInt32, size: Int, value: UInt32) -> Bool {
        guard address & 0xFFFF_F000 == FuzzBus.base else { return ram.write(address, size: size, value: value) }
        guard let cpu, address & 0xFFF < 0xF00 else { return false }
        log.append("write \(String(address, radix: 16))/\(size) \(String(value, radix: 16)) at \(cpu.currentCycles)")
        if (address >> 2) & 3 == 3 && value & 0xFF == 0x5A { cpu.requestStop() }
        return true
    }
}

/// A trap handler that emulates privileged instructions as a VMM does (`JITDifferentialTests`):
/// MFC0 reads a virtual CP0 (Count: the time at the instruction), MTC0 writes it, DI/EI return
/// and change its Status, ERET returns into the program, the rest completes; then the CPU goes
/// on at the next instruction. Every other exception resumes at the instruction after its EPC
/// (as the fuzz's own exception handler), and an interrupt moves Compare on. Unless `quiet`, it
/// also, at random: asks to stop, ends the batch, changes the ASID, writes a TLB entry, moves pc
/// elsewhere (a reflection), accounts one more emulated slot (a cluster), toggles Status.IE,
/// drives a masked interrupt line, or sets Status to what it is. It logs every trap with the time.
final class FuzzTrapHandler: TrapHandler {
    var g: JITDifferentialTests.Random
    let quiet: Bool
    var cp0 = [UInt32](repeating: 0, count: 32)
    var log: [String] = []

    init(seed: UInt64, quiet: Bool) {
        g = JITDifferentialTests.Random(state: seed ^ 0x7EA9)
        self.quiet = quiet
    }

    /// A random privileged instruction: MFC0/MTC0 of a few registers, DI/EI, TLBWI/TLBWR/TLBP/TLBR, WAIT, ERET, CACHE.
    static func privileged(_ g: inout JITDifferentialTests.Random) -> UInt32 {
        let rt = UInt32(g.pick(JITDifferentialTests.dests))
        switch g.below(5) {
        case 0: return 0x4000_0000 | rt << 16 | UInt32(g.pick([9, 12, 13, 14, 10])) << 11  // mfc0
        case 1: return 0x4080_0000 | UInt32(g.below(32)) << 16 | UInt32(g.pick([12, 14, 10, 11])) << 11  // mtc0
        case 2: return JITDifferentialTests.privilegedControl(&g)
        case 3: return g.pick([0x4200_0008, 0x4200_0001])  // tlbp, tlbr
        default: return JITDifferentialTests.i(47, rs: 16, rt: 0, imm: UInt32(g.below(64) * 4))  // cache
        }
    }

    func handleTrap(_ trap: Trap, cpu: CPU) {
        log.append("\(trap.code) at \(String(trap.pc, radix: 16)) delay \(trap.inDelaySlot), time \(cpu.currentCycles), retired \(cpu.retiredInstructions)")
        if trap.code == .interrupt {
            cpu.writeCP0(11, 0, cpu.count &+ 37)
            return
        }
        var next = trap.restartPC &+ 4
        // The word as the VMM reads it: from the loop's code page when it is that one, else
        // through the translation (a block entered through the lookup runs in another page).
        if trap.code == .coprocessorUnusable, trap.coprocessor == 0, !trap.inDelaySlot,
           let w = cpu.codeWord(at: trap.pc) ?? cpu.readVirtual(trap.pc, size: 4) {
            emulate(decode(w), cpu, next: &next)
        }
        if !quiet {
            switch g.below(40) {
            case 0: cpu.requestStop()
            case 1: cpu.endBatch()
            case 2: cpu.writeCP0(10, 0, UInt32(g.below(4)))  // the ASID: the software TLB and the fetch page go
            case 3:  // kuseg pages 0 and 1 to RAM at 3 MiB (the code is in kseg0: the fetch page stays)
                cpu.setTLBEntry(g.below(cpu.configuration.tlbEntries),
                                TLBEntry(entryHi: 0, pageMask: 0, entryLo0: 0x300 << 6 | 0x1F, entryLo1: 0x301 << 6 | 0x1F))
            case 4: next = JITDifferentialTests.codeBase &+ UInt32(g.below(JITDifferentialTests.length) * 4)
            case 5:
                cpu.accountEmulated(slots: 1, faulted: 1)
                next &+= 4
                cpu.requestStop()
            case 6: cpu.setStatus(cpu.cp0.status ^ StatusBits.ie)
            case 7: cpu.setInterruptLine(1, asserted: g.below(2) == 0)
            case 8: cpu.setStatus(cpu.cp0.status)
            default: break
            }
        }
        cpu.setPosition(pc: next, npc: next &+ 4, inDelaySlot: false)
    }

    private func emulate(_ d: DecodedInstruction, _ cpu: CPU, next: inout UInt32) {
        let reg = Int(d.imm & 31)
        switch d.op {
        case .mfc0:
            let v = reg == 9 ? UInt32(truncatingIfNeeded: cpu.currentCycles / 2) : cp0[reg]
            if d.rd < 32 { cpu.setGPR(Int(d.rd), v) }
        case .mtc0: cp0[reg] = cpu.gpr(Int(d.rt))
        case .di, .ei:
            if d.rd < 32 { cpu.setGPR(Int(d.rd), cp0[12]) }
            cp0[12] = d.op == .di ? cp0[12] & ~1 : cp0[12] | 1
        case .eret: next = JITDifferentialTests.codeBase &+ (cp0[14] % UInt32(JITDifferentialTests.length)) * 4
        default: break
        }
    }
}

extension DisassemblerTests.SplitMix64 {
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func pick<T>(_ a: [T]) -> T { a[below(a.count)] }
}
