import Testing

@testable import MagritteCore

/// The instruction table (`InstructionTable.swift`) checked against itself, against `decode` and
/// against the interpreter.
@Suite struct InstructionTableTests {
    /// Every op has exactly one entry; every op but `.undecoded`/`.reserved` has an encoding, and
    /// no match has a bit outside its mask.
    @Test func everyOpHasOneEntry() {
        var seen: [Op: Int] = [:]
        for e in instructionTableEntries { seen[e.op, default: 0] += 1 }
        for op in Op.allCases {
            #expect(seen[op] == 1, "\(op) has \(seen[op] ?? 0) entries")
            let info = op.info
            if op == .undecoded || op == .reserved {
                #expect(info.patterns.isEmpty, "\(op) must have no encoding")
            } else {
                #expect(!info.patterns.isEmpty, "\(op) has no encoding")
            }
            for p in info.patterns { #expect(p.match & ~p.mask == 0, "\(op): match \(hex(p.match)) outside mask \(hex(p.mask))") }
        }
    }

    /// No two encodings of different ops overlap, except a refinement inside the op it refines
    /// (strictly more specific: its mask covers the other's and its match satisfies it).
    @Test func noTwoEncodingsOverlap() {
        let all = Op.allCases.flatMap { op in op.info.patterns.map { (op, $0) } }
        var overlaps: [String] = []
        for (i, (a, pa)) in all.enumerated() {
            for (b, pb) in all[(i + 1)...] where pa.overlaps(pb) {
                if a == b { overlaps.append("\(a) has two overlapping encodings"); continue }
                let (inner, pi, outer, po) = a.info.refines == b ? (a, pa, b, pb) : (b, pb, a, pa)
                if inner.info.refines == outer && pi.mask & po.mask == po.mask && pi.mask != po.mask && po.matches(pi.match) { continue }
                overlaps.append("\(a) \(hex(pa.match))/\(hex(pa.mask)) overlaps \(b) \(hex(pb.match))/\(hex(pb.mask))")
            }
        }
        #expect(overlaps.isEmpty, "\(overlaps)")
    }

    /// The op the table gives a word: the most specific matching encoding, `.reserved` if none.
    static func tableOp(_ w: UInt32) -> Op {
        var best: (op: Op, bits: Int)? = nil
        for op in Op.allCases {
            for p in op.info.patterns where p.matches(w) {
                let bits = p.mask.nonzeroBitCount
                if best == nil || bits > best!.bits { best = (op, bits) }
            }
        }
        return best?.op ?? .reserved
    }

    /// EXT and INS further need their bit field inside the register; decode rejects the rest.
    static func fieldRangeValid(_ w: UInt32, _ op: Op) -> Bool {
        let pos = w >> 6 & 31, field = w >> 11 & 31
        switch op {
        case .ext: return pos + field + 1 <= 32  // field = size - 1
        case .ins: return field >= pos            // field = msb
        default: return true
        }
    }

    /// Every encoding, with its free bits all zero, all one and randomly filled, decodes to its op
    /// (or a refinement of it, or `.reserved` where EXT/INS's field range is invalid).
    @Test func everyEncodingDecodesToItsOp() {
        var rng = DisassemblerTests.SplitMix64(state: 0x7461_626C_65)  // "table"
        var failures: [String] = []
        for op in Op.allCases {
            for p in op.info.patterns {
                var fills: [UInt32] = [0, 0xFFFF_FFFF]
                for _ in 0..<64 { fills.append(rng.word()) }
                for f in fills {
                    let w = p.match | (f & ~p.mask)
                    let got = decode(w).op
                    let expected = Self.fieldRangeValid(w, op) ? Self.tableOp(w) : .reserved
                    if got != expected || (got != op && got.info.refines != op && got != .reserved) {
                        failures.append("\(hex(w)): table \(op) (\(expected)), decode \(got)")
                    }
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(20))")
    }

    /// Random words: decode agrees with the table, and a word no encoding matches is `.reserved`.
    @Test func decodeAgreesWithTheTableOnRandomWords() {
        var rng = DisassemblerTests.SplitMix64(state: 0x6465_636F_6465)  // "decode"
        var failures: [String] = []
        for _ in 0..<100_000 {
            let w = rng.word()
            let table = Self.tableOp(w)
            let expected = Self.fieldRangeValid(w, table) ? table : .reserved
            let got = decode(w).op
            if got != expected { failures.append("\(hex(w)): table \(expected), decode \(got)") }
        }
        #expect(failures.isEmpty, "\(failures.prefix(20))")
    }

    /// Each field rule on words of known meaning (fields worked out by hand from the manual's
    /// encodings): decode puts the destination in rd ($zero as the sink), pre-extends imm, and
    /// leaves unnamed fields 0.
    @Test func decodeFillsTheFieldsItsRuleNames() {
        let s = sinkRegister
        let cases: [(word: UInt32, text: String, expected: DecodedInstruction)] = [
            (0x27BD_FFE0, "addiu $sp, $sp, -32", DecodedInstruction(op: .addiu, rd: 29, rs: 29, rt: 29, imm: 0xFFFF_FFE0)),
            (0x3408_8000, "ori $t0, $zero, 0x8000", DecodedInstruction(op: .ori, rd: 8, rs: 0, rt: 8, imm: 0x8000)),
            (0x3C04_8010, "lui $a0, 0x8010", DecodedInstruction(op: .lui, rd: 4, imm: 0x8010_0000)),
            (0x0085_1021, "addu $v0, $a0, $a1", DecodedInstruction(op: .addu, rd: 2, rs: 4, rt: 5)),
            (0x000A_48C0, "sll $t1, $t2, 3", DecodedInstruction(op: .sll, rd: 9, rt: 10, imm: 3)),
            (0x0000_0000, "nop", DecodedInstruction(op: .nop)),
            (0xAFBF_001C, "sw $ra, 28($sp)", DecodedInstruction(op: .sw, rd: s, rs: 29, rt: 31, imm: 28)),
            (0x8D00_0000, "lw $zero, 0($t0)", DecodedInstruction(op: .lw, rd: s, rs: 8, rt: 0, imm: 0)),
            (0xE088_0000, "sc $t0, 0($a0)", DecodedInstruction(op: .sc, rd: 8, rs: 4, rt: 8)),
            (0x1085_FFFF, "beq $a0, $a1, .-0", DecodedInstruction(op: .beq, rd: s, rs: 4, rt: 5, imm: 0xFFFF_FFFC)),
            (0x0511_0002, "bgezal $t0, .+12", DecodedInstruction(op: .bgezal, rd: 31, rs: 8, rt: 17, imm: 8)),
            (0x0C04_0010, "jal 0x80100040", DecodedInstruction(op: .jal, rd: 31, imm: 0x0010_0040)),
            (0x0320_F809, "jalr $t9", DecodedInstruction(op: .jalr, rd: 31, rs: 25)),
            (0x03E0_0008, "jr $ra", DecodedInstruction(op: .jr, rd: s, rs: 31)),
            (0x03E0_0408, "jr.hb $ra", DecodedInstruction(op: .jrhb, rd: s, rs: 31)),
            (0x0048_D14C, "syscall 0x12345", DecodedInstruction(op: .syscall, imm: 0x12345)),
            (0x4200_0160, "wait 5", DecodedInstruction(op: .wait, imm: 5)),
            (0x0085_01F4, "teq $a0, $a1, 7", DecodedInstruction(op: .teq, rs: 4, rt: 5, imm: 7)),
            (0x0000_040F, "sync 0x10", DecodedInstruction(op: .sync, imm: 16)),
            (0x4008_6000, "mfc0 $t0, $12, 0", DecodedInstruction(op: .mfc0, rd: 8, rt: 8, imm: 12)),
            (0x4088_8001, "mtc0 $t0, $16, 1", DecodedInstruction(op: .mtc0, rd: s, rt: 8, imm: 16 | 1 << 5)),
            (0x4149_4000, "rdpgpr $t0, $t1", DecodedInstruction(op: .rdpgpr, rd: 8, rt: 9)),
            (0x4168_6000, "di $t0", DecodedInstruction(op: .di, rd: 8, rt: 8)),
            (0x7D28_3900, "ext $t0, $t1, 4, 8", DecodedInstruction(op: .ext, rd: 8, rs: 9, rt: 4, imm: 0xFF)),
            (0x7D28_5904, "ins $t0, $t1, 4, 8", DecodedInstruction(op: .ins, rd: 8, rs: 9, rt: 4, imm: 0xFF)),
            (0x7D28_1F80, "ext $t0, $t1, 30, 4: past bit 31", DecodedInstruction(op: .reserved)),
            (0x7D28_1904, "ins $t0, $t1, 4, msb 3: msb below pos", DecodedInstruction(op: .reserved)),
            (0x7C03_103B, "rdhwr $v1, $2", DecodedInstruction(op: .rdhwr, rd: 3, rs: 2, rt: 3)),
            (0xC400_0000, "lwc1", DecodedInstruction(op: .cop, rt: 1)),
            (0xC800_0000, "lwc2", DecodedInstruction(op: .cop, rt: 2)),
            (0x4C00_0000, "COP1X", DecodedInstruction(op: .cop, rt: 1)),
            (0x0000_0001, "movf", DecodedInstruction(op: .cop, rt: 1)),
            (0xFC00_0000, "opcode 63: no encoding", DecodedInstruction(op: .reserved)),
        ]
        for c in cases { #expect(decode(c.word) == c.expected, "\(c.text) (\(hex(c.word)))") }
    }

    /// The decoder is the table's: every op's field rule is the one its entry names, and the
    /// op-specific rules sit on the ops whose shapes need them.
    @Test func theDecoderIsBuiltFromTheTable() {
        for op in Op.allCases { #expect(decoderIndex.rules[Int(op.rawValue)].fields == op.info.fields, "\(op)") }
        #expect(Op.mtc0.info.fields == .cp0Write && Op.mfc0.info.fields == .cp0Read)
        #expect(Op.sc.info.fields == .immediate(signed: true) && Op.sw.info.fields == .noDestination)
        #expect(Op.jr.info.fields == .jumpRegister && Op.mthi.info.fields == .register)
    }

    /// The properties agree with each other and with what decode fills in.
    /// What the translator compiles is plain code: nothing privileged, nothing that changes
    /// translation, interrupt or mode state, nothing that always traps (those run in the
    /// interpreter), and its view of control flow is the table's.
    @Test func theTranslatorCompilesOnlyPlainCode() {
        for op in JITOpRules.translated {
            let info = op.info
            #expect(!info.privileged && !info.changesState && !info.alwaysTraps, "\(op)")
            // Left/right words go through the fast path on their aligned word, SC too; LL needs
            // the physical address for LLAddr, which the fast path does not have.
            #expect(info.memory.map { [MemoryOperand.Kind.plain, .left, .right, .conditional].contains($0.kind) } ?? true,
                    "\(op): a load or store the fast path can do")
            let flow = JITOpRules.flow(op)
            #expect((flow == .branch || flow == .branchLikely) == (info.branch.kind != .none), "\(op)")
        }
    }

    @Test func propertiesAreConsistent() {
        for op in Op.allCases {
            let info = op.info
            if let m = info.memory {
                #expect(info.format == .rtMemory, "\(op): a load/store prints rt, offset(base)")
                #expect([1, 2, 4].contains(m.size), "\(op)")
                #expect(!(m.signed && m.isStore), "\(op): a store does not sign-extend")
                #expect(m.kind == .plain || m.size == 4, "\(op): left/right/linked/conditional move words")
                #expect(info.branch == .none && !info.privileged && !info.endsBlock, "\(op)")
            }
            if info.branch.kind != .none {
                #expect(info.endsBlock, "\(op): a branch ends a block")
                #expect(info.memory == nil && !info.privileged, "\(op)")
                // Decode puts the link register in rd: 31 for branches and jal, jalr's rd field.
                for p in info.patterns {
                    let d = decode(p.match | (op == .jalr || op == .jalrhb ? 5 << 11 : 0))
                    let expectedRd: UInt8 = !info.branch.links ? sinkRegister : (op == .jalr || op == .jalrhb ? 5 : 31)
                    #expect(d.rd == expectedRd, "\(op): rd \(d.rd)")
                }
            }
            if info.changesState { #expect(info.privileged && info.endsBlock, "\(op): state changes need kernel mode") }
            if info.privileged {
                // COP0 (opcode 16), or CACHE.
                #expect(info.patterns.allSatisfy { $0.match >> 26 == 16 || op == .cache }, "\(op)")
            }
            if info.alwaysTraps || info.conditionalTrap { #expect(info.endsBlock && !(info.alwaysTraps && info.conditionalTrap), "\(op)") }
        }
        #expect(Op.jrhb.info.mnemonic == "jr.hb" && Op.reserved.info.mnemonic == Disassembler.unknown)
        #expect(Op.mtc0.info.endsBlock && Op.eret.info.endsBlock && Op.wait.info.endsBlock && Op.syscall.info.endsBlock)
        #expect(Op.teq.info.conditionalTrap && Op.tnei.info.endsBlock && !Op.syscall.info.conditionalTrap)
        #expect(!Op.addiu.info.endsBlock && !Op.lw.info.endsBlock && !Op.mfc0.info.endsBlock && !Op.tlbp.info.endsBlock)
        #expect(Op.lh.info.memory == MemoryOperand(size: 2, signed: true, isStore: false, kind: .plain))
        #expect(Op.sc.info.memory == MemoryOperand(size: 4, signed: false, isStore: true, kind: .conditional))
    }

    /// `branchOutcome` against the interpreter: every branch and jump, over a grid of register
    /// values, goes where the CPU goes, and links where the CPU links.
    @Test func branchOutcomeMatchesTheInterpreter() {
        let values: [UInt32] = [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]
        let bpc: UInt32 = 0x8010_0100
        var failures: [String] = []
        var checked = 0
        for op in Op.allCases where op.info.branch.kind != .none {
            for p in op.info.patterns {
                // rs = $8, rt = $9 (for beq/bne), rd = $31 for jalr; offset +0x40 / index 0x80100200.
                var w = p.match
                if p.mask & 0x03E0_0000 == 0 { w |= 8 << 21 }
                if p.mask & 0x001F_0000 == 0 { w |= 9 << 16 }
                if op == .jalr || op == .jalrhb { w |= 31 << 11 }
                if op.info.branch.kind == .jump { w |= (0x8010_0200 & 0x0FFF_FFFF) >> 2 } else if p.mask & 0xFFFF == 0 { w |= 0x10 }
                let registerValues = op.info.branch.kind == .jumpRegister ? [0x8010_0300, 0x8010_0040] : values
                for rs in registerValues {
                    for rt in values {
                        let bus = TestBus()
                        bus.load([w, 0x0000_0000], at: bpc & 0x1FFF_FFFF)
                        let cpu = CPU(bus: bus)
                        bus.cpu = cpu
                        cpu.jump(to: bpc)
                        cpu.setGPR(8, rs)
                        cpu.setGPR(9, rt)
                        cpu.setGPR(31, 0)
                        let d = decode(w)
                        guard let outcome = d.branchOutcome(at: bpc, rs: rs, rt: rt) else {
                            failures.append("\(op): no outcome"); continue
                        }
                        let nullified = op.info.branch.kind == .conditionalLikely && !outcome.taken
                        _ = cpu.run(instructions: nullified ? 1 : 2)
                        checked += 1
                        if cpu.pc != outcome.target {
                            failures.append("\(op) \(hex(w)) rs=\(hex(rs)) rt=\(hex(rt)): cpu at \(hex(cpu.pc)), table \(hex(outcome.target))")
                        }
                        if op.info.branch.links && cpu.gpr(31) != bpc &+ 8 || !op.info.branch.links && cpu.gpr(31) != 0 {
                            failures.append("\(op): $ra \(hex(cpu.gpr(31)))")
                        }
                        #expect(d.nextPC(afterBranchAt: bpc, rs: rs, rt: rt) == outcome.target)
                        if outcome.taken && op.info.branch.kind != .jumpRegister { #expect(d.takenTarget(at: bpc) == outcome.target) }
                    }
                }
            }
        }
        #expect(checked > 300)
        #expect(failures.isEmpty, "\(failures.prefix(20))")
        #expect(decode(0x2408_0001).branchOutcome(at: bpc, rs: 0, rt: 0) == nil)
        #expect(decode(0x2408_0001).nextPC(afterBranchAt: bpc, rs: 0, rt: 0) == bpc &+ 8)
        #expect(decode(0x2408_0001).takenTarget(at: bpc) == nil && decode(0x0100_0008).takenTarget(at: bpc) == nil)
    }

    /// `memory` against the interpreter: every plain load reads `size` bytes and extends them as
    /// `signed` says; every plain store writes exactly `size` bytes.
    @Test func memoryFactsMatchTheInterpreter() {
        let pc: UInt32 = 0x8010_0000, data: UInt32 = 0x8010_1000
        var checked = 0
        for op in Op.allCases {
            guard let m = op.info.memory, m.kind == .plain, let p = op.info.patterns.first else { continue }
            // op $9, 0($8)
            let w = p.match | 8 << 21 | 9 << 16
            let bus = TestBus()
            bus.load([w, 0], at: pc & 0x1FFF_FFFF)
            bus.load([0x8182_8384, 0x8586_8788], at: data & 0x1FFF_FFFF)
            let cpu = CPU(bus: bus)
            bus.cpu = cpu
            cpu.jump(to: pc)
            cpu.setGPR(8, data)
            cpu.setGPR(9, 0xA1B2_C3D4)
            _ = cpu.run(instructions: 1)
            #expect(cpu.pc == pc &+ 4, "\(op) did not complete")
            if m.isStore {
                let bytes = (0..<8).map { UInt32(bus.ram.load(fromByteOffset: Int(data & 0x1FFF_FFFF) + $0, as: UInt8.self)) }
                let changed = zip(bytes, [0x84, 0x83, 0x82, 0x81, 0x88, 0x87, 0x86, 0x85] as [UInt32]).filter { $0 != $1 }.count
                #expect(changed == m.size, "\(op) wrote \(changed) bytes, table says \(m.size)")
            } else {
                let raw: UInt32 = [1: 0x84, 2: 0x8384, 4: 0x8182_8384][m.size]!
                let bits = UInt32(8 * m.size)
                let expected = m.signed && m.size < 4 ? UInt32(bitPattern: Int32(bitPattern: raw << (32 - bits)) >> (32 - bits)) : raw
                #expect(cpu.gpr(9) == expected, "\(op) loaded \(hex(cpu.gpr(9))), table predicts \(hex(expected))")
            }
            checked += 1
        }
        #expect(checked == 8)  // lb lbu lh lhu lw sb sh sw
    }

    private func hex(_ w: UInt32) -> String { "0x" + String(w, radix: 16) }
}
