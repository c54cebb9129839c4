/// The instruction set, decoded once: every MIPS32r2 integer instruction the 24Kc implements.
///
/// `decode(_:)` turns a word into a `DecodedInstruction` whose `op` drives the interpreter's
/// dispatch (`CPU+Execute.swift`); everything else known about an op (mnemonic, operands,
/// encodings, field rule, memory access, branch rule, privilege, block ends) is in its
/// instruction-table entry, `op.info` (`InstructionTable.swift`), and `decode` is built from
/// those entries (`DecoderIndex`). A word no encoding matches becomes `.reserved`, which executes
/// as a Reserved Instruction exception.
public enum Op: UInt8, Sendable, CaseIterable {
    /// Not yet decoded (a fresh slot in the decoded-page cache). Never returned by `decode`.
    case undecoded = 0
    case reserved
    // ALU, register
    case sll, srl, sra, sllv, srlv, srav, rotr, rotrv
    case add, addu, sub, subu, and, or, xor, nor, slt, sltu
    case movz, movn
    case mfhi, mthi, mflo, mtlo
    case mult, multu, div, divu, madd, maddu, msub, msubu, mul
    case clz, clo
    case ext, ins, wsbh, seb, seh
    case nop, ssnop, ehb, pause
    // ALU, immediate
    case addi, addiu, slti, sltiu, andi, ori, xori, lui
    // Branches and jumps
    case beq, bne, blez, bgtz, bltz, bgez, bltzal, bgezal
    case beql, bnel, blezl, bgtzl, bltzl, bgezl, bltzall, bgezall
    case j, jal, jr, jalr, jrhb, jalrhb
    // Loads and stores
    case lb, lbu, lh, lhu, lw, lwl, lwr, ll
    case sb, sh, sw, swl, swr, sc
    case cache, pref, sync, synci
    // Traps and system
    case tge, tgeu, tlt, tltu, teq, tne
    case tgei, tgeiu, tlti, tltiu, teqi, tnei
    case syscall, `break`, sdbbp
    case rdhwr
    // Coprocessor 0
    case mfc0, mtc0, di, ei, rdpgpr, wrpgpr
    case tlbr, tlbwi, tlbwr, tlbp, eret, deret, wait
    /// Any instruction of coprocessor 1, 2 or 3 (no FPU, no CP2): Coprocessor Unusable.
    /// `rt` holds the coprocessor number.
    case cop
}

/// One decoded instruction, 8 bytes, as cached per page.
///
/// Register fields are GPR numbers. `rd` is always the *destination* (whatever field encodes
/// it), with register 0 replaced by the sink slot 32 so that writes never need a check and
/// `$zero` stays zero. For instructions without a destination it is 32.
public struct DecodedInstruction: Sendable, Equatable {
    public var op: Op
    public var rd: UInt8
    public var rs: UInt8
    public var rt: UInt8
    /// Sign- or zero-extended immediate, shift amount, branch offset in bytes (relative to the
    /// delay slot), jump index << 2, EXT/INS mask, CP0 register | select << 5, or code field.
    public var imm: UInt32

    @inline(__always)
    public init(op: Op, rd: UInt8 = 32, rs: UInt8 = 0, rt: UInt8 = 0, imm: UInt32 = 0) {
        self.op = op
        self.rd = rd
        self.rs = rs
        self.rt = rt
        self.imm = imm
    }

    public static let undecoded = DecodedInstruction(op: .undecoded)
}

/// The sink slot for writes to `$zero`.
@usableFromInline let sinkRegister: UInt8 = 32

/// How `decode` fills a `DecodedInstruction`'s register and immediate fields from the word
/// (fields: rs 25..21, rt 20..16, rd 15..11, sa 10..6). Each op's rule is in its
/// instruction-table entry (`OpInfo.fields`); "rd ← rt" means the destination is the rt field,
/// and a destination of `$zero` becomes the sink register. Fields a rule does not name are 0
/// (rd: the sink).
public enum FieldRule: Sendable, Equatable {
    /// Nothing (eret, tlbwi, nop, a reserved word).
    case none
    /// rd ← rd, rs, rt, imm ← sa (the SPECIAL register forms).
    case register
    /// rd ← rt, rs, rt, imm ← the 16-bit immediate, sign- or zero-extended.
    case immediate(signed: Bool)
    /// rd ← rt, imm ← the 16-bit immediate << 16 (lui).
    case upperImmediate
    /// rs, rt, imm ← the sign-extended 16-bit immediate; no destination (stores, cache, pref,
    /// synci, the trap-immediate forms).
    case noDestination
    /// rs, rt, imm ← the sign-extended offset << 2 (relative to the delay slot); rd ← 31 when
    /// the branch links.
    case branch
    /// imm ← the 26-bit index << 2; rd ← 31 when the jump links.
    case jump
    /// rs; rd ← rd when the jump links (jalr), else no destination.
    case jumpRegister
    /// imm ← the code field of `bits` bits at bit 6 (syscall, break, sdbbp, wait).
    case code(bits: UInt32)
    /// rs, rt, imm ← the 10-bit code at bit 6 (teq, tge, …).
    case trapCode
    /// imm ← sa (sync's stype).
    case shiftAmount
    /// rd ← rt, rt, imm ← the CP0 register | select << 5 (mfc0).
    case cp0Read
    /// rt, imm ← the CP0 register | select << 5 (mtc0).
    case cp0Write
    /// rd ← rd, rt (rdpgpr, wrpgpr).
    case rdRt
    /// rd ← rt, rt (di, ei: the old Status).
    case rtDestination
    /// rd ← rt, rs, rt ← pos, imm ← the mask of size bits (EXT: rd field = size - 1); a field
    /// that does not fit in the register decodes as `.reserved`.
    case ext
    /// As `ext`, with the rd field = msb (pos + size - 1) (INS).
    case ins
    /// rd ← rt, rs ← the hardware register number (the rd field), rt (rdhwr).
    case rdhwr
    /// rt ← the coprocessor number: 2 for the COP2 forms (opcode bits 1..0 = 2), else 1 (COP1,
    /// COP1X, MOVF/MOVT and the FPU loads and stores).
    case coprocessor
}

/// The decoder, built once from the instruction table: for each primary opcode, the table's
/// encodings that can match, most specific first, split by a secondary field (funct, rt or rs)
/// where every one of them fixes it. `decode` takes the first that matches.
/// One instance for the process (`decoderIndex`): its buffers are never freed, and reading them
/// costs no reference counting or bounds checks. Immutable once built, hence Sendable.
final class DecoderIndex: @unchecked Sendable {
    struct Candidate {
        let match: UInt32
        let mask: UInt32
        let op: Op
    }
    typealias Rule = (fields: FieldRule, links: Bool)
    /// Per primary opcode: the secondary field (shift and mask, mask 0 for none) and the first
    /// of its buckets in `buckets`.
    private let primary: UnsafeBufferPointer<(shift: UInt32, mask: UInt32, base: Int)>
    /// Per bucket: its range in `candidates`.
    private let buckets: UnsafeBufferPointer<(start: Int, end: Int)>
    private let candidates: UnsafeBufferPointer<Candidate>
    /// Per op: how its fields are decoded, and whether it links (for the branch rules).
    let rules: UnsafeBufferPointer<Rule>

    /// The secondary fields, tried in order: funct, rt, rs.
    private static let fields: [(shift: UInt32, mask: UInt32)] = [(0, 63), (16, 31), (21, 31)]

    init(_ entries: [(op: Op, info: OpInfo)]) {
        var primary: [(shift: UInt32, mask: UInt32, base: Int)] = []
        var buckets: [(start: Int, end: Int)] = []
        var candidates: [Candidate] = []
        var all: [Candidate] = []
        for e in entries { for p in e.info.patterns { all.append(Candidate(match: p.match, mask: p.mask, op: e.op)) } }
        // Most specific first: a refinement (`nop`) before the op it refines (`sll`); encodings
        // of equal specificity never overlap (InstructionTableTests).
        all.sort { $0.mask.nonzeroBitCount > $1.mask.nonzeroBitCount }
        for opcode in UInt32(0)..<64 {
            let here = all.filter { ($0.match ^ opcode << 26) & $0.mask & 0xFC00_0000 == 0 }
            let field = here.count > 1
                ? Self.fields.first { f in here.allSatisfy { $0.mask >> f.shift & f.mask == f.mask } }
                : nil
            primary.append((field?.shift ?? 0, field?.mask ?? 0, buckets.count))
            for value in 0...(field?.mask ?? 0) {
                let inBucket = field.map { f in here.filter { $0.match >> f.shift & f.mask == value } } ?? here
                buckets.append((candidates.count, candidates.count + inBucket.count))
                candidates += inBucket
            }
        }
        var rules = [Rule](repeating: (.none, false), count: Op.allCases.count)
        for e in entries { rules[Int(e.op.rawValue)] = (e.info.fields, e.info.branch.links) }
        func keep<T>(_ a: [T]) -> UnsafeBufferPointer<T> {
            let b = UnsafeMutableBufferPointer<T>.allocate(capacity: a.count)
            _ = b.initialize(from: a)
            return UnsafeBufferPointer(b)
        }
        self.primary = keep(primary)
        self.buckets = keep(buckets)
        self.candidates = keep(candidates)
        self.rules = keep(rules)
    }

    /// The op of the most specific encoding `w` matches; `.reserved` if none does.
    @inline(__always)
    func op(_ w: UInt32) -> Op {
        let p = primary[Int(w >> 26)]
        let b = buckets[p.base + Int(w >> p.shift & p.mask)]
        var i = b.start
        while i < b.end {
            let c = candidates[i]
            if w & c.mask == c.match { return c.op }
            i &+= 1
        }
        return .reserved
    }
}

let decoderIndex = DecoderIndex(instructionTableEntries)

@inline(__always) private func dest(_ r: UInt32) -> UInt8 { r == 0 ? sinkRegister : UInt8(truncatingIfNeeded: r) }
@inline(__always) private func sext16(_ w: UInt32) -> UInt32 { UInt32(bitPattern: Int32(Int16(truncatingIfNeeded: w))) }

/// Decodes one instruction word: the op of the instruction-table encoding it matches, with its
/// fields filled as the entry's `FieldRule` says.
public func decode(_ w: UInt32) -> DecodedInstruction {
    let index = decoderIndex
    let op = index.op(w)
    let rule = index.rules[Int(op.rawValue)]
    let rs = UInt8(truncatingIfNeeded: w >> 21 & 31)
    let rt = UInt8(truncatingIfNeeded: w >> 16 & 31)
    let rdField = w >> 11 & 31
    let sa = w >> 6 & 31
    switch rule.fields {
    case .none: return DecodedInstruction(op: op)
    case .register: return DecodedInstruction(op: op, rd: dest(rdField), rs: rs, rt: rt, imm: sa)
    case .immediate(let signed):
        return DecodedInstruction(op: op, rd: dest(UInt32(rt)), rs: rs, rt: rt, imm: signed ? sext16(w) : w & 0xFFFF)
    case .upperImmediate: return DecodedInstruction(op: op, rd: dest(UInt32(rt)), imm: w << 16)
    case .noDestination: return DecodedInstruction(op: op, rs: rs, rt: rt, imm: sext16(w))
    case .branch: return DecodedInstruction(op: op, rd: rule.links ? 31 : sinkRegister, rs: rs, rt: rt, imm: sext16(w) << 2)
    case .jump: return DecodedInstruction(op: op, rd: rule.links ? 31 : sinkRegister, imm: (w & 0x03FF_FFFF) << 2)
    case .jumpRegister: return DecodedInstruction(op: op, rd: rule.links ? dest(rdField) : sinkRegister, rs: rs)
    case .code(let bits): return DecodedInstruction(op: op, imm: w >> 6 & (1 << bits &- 1))
    case .trapCode: return DecodedInstruction(op: op, rs: rs, rt: rt, imm: w >> 6 & 0x3FF)
    case .shiftAmount: return DecodedInstruction(op: op, imm: sa)
    case .cp0Read: return DecodedInstruction(op: op, rd: dest(UInt32(rt)), rt: rt, imm: rdField | (w & 7) << 5)
    case .cp0Write: return DecodedInstruction(op: op, rt: rt, imm: rdField | (w & 7) << 5)
    case .rdRt: return DecodedInstruction(op: op, rd: dest(rdField), rt: rt)
    case .rtDestination: return DecodedInstruction(op: op, rd: dest(UInt32(rt)), rt: rt)
    case .ext, .ins:
        // EXT: size = rd field + 1; INS: size = rd field (msb) - pos + 1.
        let pos = sa
        let size: UInt32
        if rule.fields == .ext {
            size = rdField + 1
            guard pos + size <= 32 else { return DecodedInstruction(op: .reserved) }
        } else {
            guard rdField >= pos else { return DecodedInstruction(op: .reserved) }
            size = rdField - pos + 1
        }
        let mask: UInt32 = size == 32 ? 0xFFFF_FFFF : (1 << size) - 1
        return DecodedInstruction(op: op, rd: dest(UInt32(rt)), rs: rs, rt: UInt8(truncatingIfNeeded: pos), imm: mask)
    case .rdhwr: return DecodedInstruction(op: op, rd: dest(UInt32(rt)), rs: UInt8(truncatingIfNeeded: rdField), rt: rt)
    case .coprocessor: return DecodedInstruction(op: op, rt: w >> 26 & 3 == 2 ? 2 : 1)
    }
}
