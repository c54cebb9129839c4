/// The instruction table: every fact about an `Op` that is not its execution, in one place.
///
/// `Op.info` returns an `OpInfo` read from a static array indexed by `Op.rawValue`. Who reads it:
/// - `decode(_:)` (Instruction.swift) is built from it: a word decodes to the op of the most
///   specific pattern it matches (`.reserved` if none), with its fields as `fields` says; adding an
///   instruction is adding its entry here (and its case to `Op` and the interpreter's switch);
/// - the disassembler prints `mnemonic` and the operands `format` names (aliases aside);
/// - the VMM's device emulation reads `memory` (size, sign, direction, kind);
/// - the VMM's branch evaluation after an emulated delay-slot instruction and its idle-loop
///   detection read `branch` and call `DecodedInstruction.branchOutcome(at:rs:rt:)`;
/// - the translator reads `branch` to translate branches and jumps and to find a block's
///   successors, and `JITOpRules` takes only ops that neither change state nor always trap
///   (`InstructionTableTests.theTranslatorCompilesOnlyPlainCode`); a conditional trap that is
///   not taken does not end its block there (it exits only when taken).
///
/// Properties:
/// - `fields`: how `decode` fills the decoded instruction's registers and immediate
///   (`FieldRule`); by default what the operand format implies (`FieldRule.implied`).
/// - `mnemonic`: the name llvm-objdump prints for the plain form (`jr.hb`, not `jrhb`).
/// - `format`: the operand list of the plain form (`OperandFormat`).
/// - `patterns`: (match, mask) pairs; a word `w` has this encoding when `w & mask == match`.
///   `ext` and `ins` further need a field range inside the register (decode returns `.reserved`
///   otherwise). No two patterns of different ops overlap unless one op `refines` the other:
///   its pattern is strictly more specific and decode prefers it (`nop` inside `sll`).
/// - `memory`: the data access a load or store makes (`nil` for everything else, including
///   `cache`, `pref` and `synci`, which move no data to or from a register).
/// - `branch`: `BranchInfo.none`, or the kind (conditional, conditional-likely, jump in the
///   current 256 MB region, jump to a register), the condition and whether it links.
/// - `privileged`: needs CP0 access (kernel mode or Status.CU0), else Coprocessor Unusable.
/// - `changesState`: may change interrupt, translation, mode or cache state (mtc0, eret,
///   deret, di, ei, wait, tlbr/tlbwi/tlbwr (EntryHi/the TLB), cache): code after it cannot be
///   assumed to run in the same context.
/// - `alwaysTraps`: always raises an exception (syscall, break, sdbbp, a coprocessor
///   instruction without the coprocessor, a reserved word).
/// - `conditionalTrap`: raises a Trap exception when its condition holds (teq, tgei, …).
/// - `endsBlock` (derived): a branch or jump, `changesState`, `alwaysTraps` or
///   `conditionalTrap`: where the interpreter's straight-line view of code ends (a branch's
///   delay slot still follows it). Loads, stores and rdhwr can fault too but do not end a block: a
///   translator leaves the block at such a fault as the interpreter does.
public struct OpInfo: Sendable {
    public let mnemonic: String
    public let format: OperandFormat
    public let fields: FieldRule
    public let patterns: [Pattern]
    public let memory: MemoryOperand?
    public let branch: BranchInfo
    public let privileged: Bool
    public let changesState: Bool
    public let alwaysTraps: Bool
    public let conditionalTrap: Bool
    /// The less specific op whose encoding contains this one's (`sll` for `nop`).
    public let refines: Op?

    public var endsBlock: Bool { branch.kind != .none || changesState || alwaysTraps || conditionalTrap }

    /// One encoding: a word `w` matches when `w & mask == match`.
    public struct Pattern: Sendable, Equatable {
        public let match: UInt32
        public let mask: UInt32
        public func matches(_ w: UInt32) -> Bool { w & mask == match }
        /// Whether some word matches both.
        public func overlaps(_ other: Pattern) -> Bool { (match ^ other.match) & mask & other.mask == 0 }
    }
}

/// The operands of an instruction's plain form, as llvm prints them (fields of the word:
/// rs 25..21, rt 20..16, rd 15..11, sa 10..6).
public enum OperandFormat: Sendable {
    case none            // eret
    case rdRtSa          // sll rd, rt, sa
    case rdRtRs          // sllv rd, rt, rs
    case rdRsRt          // addu rd, rs, rt
    case rdRt            // seb rd, rt
    case rd              // mfhi rd
    case rs              // mthi rs; jr rs
    case rsRt            // mult rs, rt
    case zeroRsRt        // div $zero, rs, rt
    case clz             // clz rd, rs (llvm ORs rt into rd)
    case ext             // ext rt, rs, pos, size
    case ins             // ins rt, rs, pos, size
    case rtRsSimm        // addiu rt, rs, simm
    case rtRsUimm        // ori rt, rs, uimm
    case rtUimm          // lui rt, uimm
    case rsRtBranch      // beq rs, rt, target
    case rsBranch        // bgez rs, target
    case jump            // j index
    case jalr            // jalr [rd,] rs
    case rtMemory        // lw rt, simm(rs)
    case hintMemory      // cache op, simm(rs)
    case memory          // synci simm(rs)
    case stype           // sync [stype]
    case rsRtCode        // teq rs, rt [, code]
    case rsSimm          // teqi rs, simm
    case code20          // syscall [code]
    case code19          // wait [code]
    case breakCode       // break [code1 [, code2]]
    case rdhwr           // rdhwr rt, $rd [, sel]
    case cp0             // mfc0 rt, $rd, sel
    case optionalRt      // di [rt]
    case coprocessor     // the coprocessor 1/2 forms (Disassembler.coprocessor)
}

/// A load's or store's data access.
public struct MemoryOperand: Sendable, Equatable {
    public enum Kind: Sendable { case plain, left, right, linked, conditional }
    /// Bytes moved (`left`/`right` move 1 to 4 bytes of the aligned word: size is 4).
    public let size: Int
    /// A load that sign-extends (lb, lh).
    public let signed: Bool
    public let isStore: Bool
    public let kind: Kind
}

/// How a branch or jump chooses its target.
public struct BranchInfo: Sendable, Equatable {
    public enum Kind: Sendable {
        case none
        /// pc + 4 + offset when the condition holds; the delay slot always runs.
        case conditional
        /// As `conditional`, but the delay slot is nullified when not taken.
        case conditionalLikely
        /// (pc + 4) & 0xF000_0000 | index << 2: the current 256 MB region.
        case jump
        /// The value of rs.
        case jumpRegister
    }
    /// The condition on rs (and rt for eq/ne) under which a conditional branch is taken.
    public enum Condition: Sendable {
        case always, eq, ne, lez, gtz, ltz, gez
        @inline(__always)
        public func holds(rs: UInt32, rt: UInt32) -> Bool {
            let s = Int32(bitPattern: rs)
            switch self {
            case .always: return true
            case .eq: return rs == rt
            case .ne: return rs != rt
            case .lez: return s <= 0
            case .gtz: return s > 0
            case .ltz: return s < 0
            case .gez: return s >= 0
            }
        }
    }
    public let kind: Kind
    public let condition: Condition
    /// Writes the return address (pc + 8) to rd (31, or jalr's rd), taken or not.
    public let links: Bool

    public static let none = BranchInfo(kind: .none, condition: .always, links: false)
}

/// The hardware registers RDHWR reads (its rd field; the decoder puts it in `rs`). A 24Kc has
/// registers 0-3 only (no UserLocal): any other number is a Reserved Instruction.
public enum HardwareRegister: UInt8, Sendable, CaseIterable {
    /// The CPU number (EBase.CPUNum).
    case cpuNum = 0
    /// The address step SYNCI needs: the cache line size in bytes.
    case synciStep = 1
    /// The cycle counter (CP0 Count).
    case cc = 2
    /// Cycles per Count increment.
    case ccRes = 3

    /// What SYNCI_Step reads: the 24Kc's cache line, 32 bytes.
    public static let synciStepBytes: UInt32 = 32

    /// Whether RDHWR may read it: with CP0 access (kernel mode or Status.CU0), or when its bit of
    /// HWREna is set.
    public func readable(cp0Usable: Bool, hwrEna: UInt32) -> Bool { cp0Usable || hwrEna & (1 << rawValue) != 0 }
}

extension Op {
    /// This op's entry in the instruction table.
    @inline(__always)
    public var info: OpInfo { instructionTable[Int(rawValue)] }
}

extension DecodedInstruction {
    /// Evaluates a branch or jump at `pc` given the values of its rs and rt registers: whether it
    /// is taken and where it goes. Nil when the instruction is not a branch or jump. A branch
    /// not taken continues at pc + 8 (after its delay slot).
    @inline(__always)
    public func branchOutcome(at pc: UInt32, rs: UInt32, rt: UInt32) -> (taken: Bool, target: UInt32)? {
        let b = op.info.branch
        switch b.kind {
        case .none: return nil
        case .conditional, .conditionalLikely:
            let taken = b.condition.holds(rs: rs, rt: rt)
            return (taken, taken ? pc &+ 4 &+ imm : pc &+ 8)
        case .jump: return (true, ((pc &+ 4) & 0xF000_0000) | imm)
        case .jumpRegister: return (true, rs)
        }
    }

    /// The target of the branch or jump at `pc` when taken, for those whose target is in the
    /// instruction (conditional branches, `j`, `jal`); nil for jumps to a register and non-branches.
    @inline(__always)
    public func takenTarget(at pc: UInt32) -> UInt32? {
        switch op.info.branch.kind {
        case .none, .jumpRegister: return nil
        case .conditional, .conditionalLikely: return pc &+ 4 &+ imm
        case .jump: return ((pc &+ 4) & 0xF000_0000) | imm
        }
    }

    /// Where execution continues after the branch at `pc` and its delay slot: the target when
    /// taken, pc + 8 otherwise; pc + 8 for anything that is not a branch.
    @inline(__always)
    public func nextPC(afterBranchAt pc: UInt32, rs: UInt32, rt: UInt32) -> UInt32 {
        branchOutcome(at: pc, rs: rs, rt: rt)?.target ?? pc &+ 8
    }

    /// Where the branch at `pc`, which has run, goes after its delay slot, evaluated again with
    /// the registers as the branch left them (`rs`, `rt`: for a stop or fault in the delay slot,
    /// which resumes there). Nil when that need not give what it gave: not a branch, or one that
    /// links into the register it reads (`jalr` with rd = rs, `bltzal`/`bgezal`(`l`) of $31),
    /// which the MIPS manual leaves UNPREDICTABLE because such a restart reads the link.
    @inline(__always)
    public func repeatedTarget(afterBranchAt pc: UInt32, rs: UInt32, rt: UInt32) -> UInt32? {
        let b = op.info.branch
        switch b.kind {
        case .none: return nil
        case .jump: break
        case .jumpRegister: if b.links && self.rd == self.rs { return nil }
        case .conditional, .conditionalLikely: if b.links && self.rs == 31 { return nil }
        }
        return nextPC(afterBranchAt: pc, rs: rs, rt: rt)
    }
}

extension FieldRule {
    /// The rule an operand format implies; an entry whose format is shared by ops that decode
    /// differently (mtc0, rdpgpr/wrpgpr) names its own.
    static func implied(by format: OperandFormat, memory: MemoryOperand?, branch: BranchInfo) -> FieldRule {
        switch format {
        case .none: .none
        case .rdRtSa, .rdRtRs, .rdRsRt, .rdRt, .rd, .rsRt, .zeroRsRt, .clz: .register
        case .rs: branch.kind == .jumpRegister ? .jumpRegister : .register  // jr vs mthi
        case .jalr: .jumpRegister
        case .ext: .ext
        case .ins: .ins
        case .rtRsSimm: .immediate(signed: true)
        case .rtRsUimm: .immediate(signed: false)
        case .rtUimm: .upperImmediate
        case .rsRtBranch, .rsBranch: .branch
        case .jump: .jump
        // Loads write rt, and so does SC (its success flag); other stores have no destination.
        case .rtMemory: memory.map { $0.isStore && $0.kind != .conditional } ?? false ? .noDestination : .immediate(signed: true)
        case .hintMemory, .memory, .rsSimm: .noDestination
        case .stype: .shiftAmount
        case .rsRtCode: .trapCode
        case .code20, .breakCode: .code(bits: 20)
        case .code19: .code(bits: 19)
        case .rdhwr: .rdhwr
        case .cp0: .cp0Read
        case .optionalRt: .rtDestination
        case .coprocessor: .coprocessor
        }
    }
}

// MARK: - The table

private func p(_ match: UInt32, _ mask: UInt32) -> OpInfo.Pattern { OpInfo.Pattern(match: match, mask: mask) }

/// Masks of the common shapes.
private let opcodeOnly: UInt32 = 0xFC00_0000
private let special: UInt32 = 0xFC00_003F       // opcode + funct
private let specialSa0: UInt32 = 0xFC00_07FF    // + sa == 0
private let specialRs0: UInt32 = 0xFFE0_003F    // + rs == 0
private let regimm: UInt32 = 0xFC1F_0000        // opcode + rt
private let copOp: UInt32 = 0xFFFF_FFFF         // a COP0 CO operation with no operands

private func entry(
    _ op: Op, _ format: OperandFormat, _ patterns: [OpInfo.Pattern],
    memory: MemoryOperand? = nil, branch: BranchInfo = .none, privileged: Bool = false,
    changesState: Bool = false, alwaysTraps: Bool = false, conditionalTrap: Bool = false, refines: Op? = nil,
    mnemonic: String? = nil, fields: FieldRule? = nil
) -> (Op, OpInfo) {
    (op, OpInfo(mnemonic: mnemonic ?? String(describing: op), format: format,
                fields: fields ?? .implied(by: format, memory: memory, branch: branch), patterns: patterns, memory: memory,
                branch: branch, privileged: privileged, changesState: changesState, alwaysTraps: alwaysTraps,
                conditionalTrap: conditionalTrap, refines: refines))
}

private func load(_ size: Int, signed: Bool = false, _ kind: MemoryOperand.Kind = .plain) -> MemoryOperand {
    MemoryOperand(size: size, signed: signed, isStore: false, kind: kind)
}
private func store(_ size: Int, _ kind: MemoryOperand.Kind = .plain) -> MemoryOperand {
    MemoryOperand(size: size, signed: false, isStore: true, kind: kind)
}
private func cond(_ c: BranchInfo.Condition, likely: Bool = false, links: Bool = false) -> BranchInfo {
    BranchInfo(kind: likely ? .conditionalLikely : .conditional, condition: c, links: links)
}

private let entries: [(Op, OpInfo)] = [
    entry(.undecoded, .none, []),
    entry(.reserved, .none, [], alwaysTraps: true, mnemonic: "<unknown>"),
    // ALU, register (SPECIAL)
    entry(.sll, .rdRtSa, [p(0x0000_0000, specialRs0)]),
    entry(.srl, .rdRtSa, [p(0x0000_0002, specialRs0)]),
    entry(.sra, .rdRtSa, [p(0x0000_0003, specialRs0)]),
    entry(.rotr, .rdRtSa, [p(0x0020_0002, specialRs0)]),
    entry(.sllv, .rdRtRs, [p(0x0000_0004, specialSa0)]),
    entry(.srlv, .rdRtRs, [p(0x0000_0006, specialSa0)]),
    entry(.srav, .rdRtRs, [p(0x0000_0007, specialSa0)]),
    entry(.rotrv, .rdRtRs, [p(0x0000_0046, specialSa0)]),
    entry(.add, .rdRsRt, [p(0x0000_0020, specialSa0)]),
    entry(.addu, .rdRsRt, [p(0x0000_0021, specialSa0)]),
    entry(.sub, .rdRsRt, [p(0x0000_0022, specialSa0)]),
    entry(.subu, .rdRsRt, [p(0x0000_0023, specialSa0)]),
    entry(.and, .rdRsRt, [p(0x0000_0024, specialSa0)]),
    entry(.or, .rdRsRt, [p(0x0000_0025, specialSa0)]),
    entry(.xor, .rdRsRt, [p(0x0000_0026, specialSa0)]),
    entry(.nor, .rdRsRt, [p(0x0000_0027, specialSa0)]),
    entry(.slt, .rdRsRt, [p(0x0000_002A, specialSa0)]),
    entry(.sltu, .rdRsRt, [p(0x0000_002B, specialSa0)]),
    entry(.movz, .rdRsRt, [p(0x0000_000A, specialSa0)]),
    entry(.movn, .rdRsRt, [p(0x0000_000B, specialSa0)]),
    entry(.mfhi, .rd, [p(0x0000_0010, 0xFFFF_07FF)]),
    entry(.mflo, .rd, [p(0x0000_0012, 0xFFFF_07FF)]),
    entry(.mthi, .rs, [p(0x0000_0011, 0xFC1F_FFFF)]),
    entry(.mtlo, .rs, [p(0x0000_0013, 0xFC1F_FFFF)]),
    entry(.mult, .rsRt, [p(0x0000_0018, 0xFC00_FFFF)]),
    entry(.multu, .rsRt, [p(0x0000_0019, 0xFC00_FFFF)]),
    entry(.div, .zeroRsRt, [p(0x0000_001A, 0xFC00_FFFF)]),
    entry(.divu, .zeroRsRt, [p(0x0000_001B, 0xFC00_FFFF)]),
    // SPECIAL2
    entry(.madd, .rsRt, [p(0x7000_0000, 0xFC00_FFFF)]),
    entry(.maddu, .rsRt, [p(0x7000_0001, 0xFC00_FFFF)]),
    entry(.msub, .rsRt, [p(0x7000_0004, 0xFC00_FFFF)]),
    entry(.msubu, .rsRt, [p(0x7000_0005, 0xFC00_FFFF)]),
    entry(.mul, .rdRsRt, [p(0x7000_0002, specialSa0)]),
    entry(.clz, .clz, [p(0x7000_0020, specialSa0)]),
    entry(.clo, .clz, [p(0x7000_0021, specialSa0)]),
    // SPECIAL3
    entry(.ext, .ext, [p(0x7C00_0000, special)]),
    entry(.ins, .ins, [p(0x7C00_0004, special)]),
    entry(.wsbh, .rdRt, [p(0x7C00_00A0, 0xFFE0_07FF)]),
    entry(.seb, .rdRt, [p(0x7C00_0420, 0xFFE0_07FF)]),
    entry(.seh, .rdRt, [p(0x7C00_0620, 0xFFE0_07FF)]),
    // Hints inside sll $zero, $zero, sa
    entry(.nop, .none, [p(0x0000_0000, 0xFFFF_FFFF)], refines: .sll),
    entry(.ssnop, .none, [p(0x0000_0040, 0xFFFF_FFFF)], refines: .sll),
    entry(.ehb, .none, [p(0x0000_00C0, 0xFFFF_FFFF)], refines: .sll),
    entry(.pause, .none, [p(0x0000_0140, 0xFFFF_FFFF)], refines: .sll),
    // ALU, immediate
    entry(.addi, .rtRsSimm, [p(0x2000_0000, opcodeOnly)]),
    entry(.addiu, .rtRsSimm, [p(0x2400_0000, opcodeOnly)]),
    entry(.slti, .rtRsSimm, [p(0x2800_0000, opcodeOnly)]),
    entry(.sltiu, .rtRsSimm, [p(0x2C00_0000, opcodeOnly)]),
    entry(.andi, .rtRsUimm, [p(0x3000_0000, opcodeOnly)]),
    entry(.ori, .rtRsUimm, [p(0x3400_0000, opcodeOnly)]),
    entry(.xori, .rtRsUimm, [p(0x3800_0000, opcodeOnly)]),
    entry(.lui, .rtUimm, [p(0x3C00_0000, 0xFFE0_0000)]),
    // Branches and jumps
    entry(.beq, .rsRtBranch, [p(0x1000_0000, opcodeOnly)], branch: cond(.eq)),
    entry(.bne, .rsRtBranch, [p(0x1400_0000, opcodeOnly)], branch: cond(.ne)),
    entry(.blez, .rsBranch, [p(0x1800_0000, regimm)], branch: cond(.lez)),
    entry(.bgtz, .rsBranch, [p(0x1C00_0000, regimm)], branch: cond(.gtz)),
    entry(.bltz, .rsBranch, [p(0x0400_0000, regimm)], branch: cond(.ltz)),
    entry(.bgez, .rsBranch, [p(0x0401_0000, regimm)], branch: cond(.gez)),
    entry(.bltzal, .rsBranch, [p(0x0410_0000, regimm)], branch: cond(.ltz, links: true)),
    entry(.bgezal, .rsBranch, [p(0x0411_0000, regimm)], branch: cond(.gez, links: true)),
    entry(.beql, .rsRtBranch, [p(0x5000_0000, opcodeOnly)], branch: cond(.eq, likely: true)),
    entry(.bnel, .rsRtBranch, [p(0x5400_0000, opcodeOnly)], branch: cond(.ne, likely: true)),
    entry(.blezl, .rsBranch, [p(0x5800_0000, regimm)], branch: cond(.lez, likely: true)),
    entry(.bgtzl, .rsBranch, [p(0x5C00_0000, regimm)], branch: cond(.gtz, likely: true)),
    entry(.bltzl, .rsBranch, [p(0x0402_0000, regimm)], branch: cond(.ltz, likely: true)),
    entry(.bgezl, .rsBranch, [p(0x0403_0000, regimm)], branch: cond(.gez, likely: true)),
    entry(.bltzall, .rsBranch, [p(0x0412_0000, regimm)], branch: cond(.ltz, likely: true, links: true)),
    entry(.bgezall, .rsBranch, [p(0x0413_0000, regimm)], branch: cond(.gez, likely: true, links: true)),
    entry(.j, .jump, [p(0x0800_0000, opcodeOnly)], branch: BranchInfo(kind: .jump, condition: .always, links: false)),
    entry(.jal, .jump, [p(0x0C00_0000, opcodeOnly)], branch: BranchInfo(kind: .jump, condition: .always, links: true)),
    entry(.jr, .rs, [p(0x0000_0008, 0xFC1F_FFFF)], branch: BranchInfo(kind: .jumpRegister, condition: .always, links: false)),
    entry(.jalr, .jalr, [p(0x0000_0009, 0xFC1F_07FF)], branch: BranchInfo(kind: .jumpRegister, condition: .always, links: true)),
    entry(.jrhb, .rs, [p(0x0000_0408, 0xFC1F_FFFF)], branch: BranchInfo(kind: .jumpRegister, condition: .always, links: false), mnemonic: "jr.hb"),
    entry(.jalrhb, .jalr, [p(0x0000_0409, 0xFC1F_07FF)], branch: BranchInfo(kind: .jumpRegister, condition: .always, links: true), mnemonic: "jalr.hb"),
    // Loads and stores
    entry(.lb, .rtMemory, [p(0x8000_0000, opcodeOnly)], memory: load(1, signed: true)),
    entry(.lh, .rtMemory, [p(0x8400_0000, opcodeOnly)], memory: load(2, signed: true)),
    entry(.lwl, .rtMemory, [p(0x8800_0000, opcodeOnly)], memory: load(4, .left)),
    entry(.lw, .rtMemory, [p(0x8C00_0000, opcodeOnly)], memory: load(4)),
    entry(.lbu, .rtMemory, [p(0x9000_0000, opcodeOnly)], memory: load(1)),
    entry(.lhu, .rtMemory, [p(0x9400_0000, opcodeOnly)], memory: load(2)),
    entry(.lwr, .rtMemory, [p(0x9800_0000, opcodeOnly)], memory: load(4, .right)),
    entry(.ll, .rtMemory, [p(0xC000_0000, opcodeOnly)], memory: load(4, .linked)),
    entry(.sb, .rtMemory, [p(0xA000_0000, opcodeOnly)], memory: store(1)),
    entry(.sh, .rtMemory, [p(0xA400_0000, opcodeOnly)], memory: store(2)),
    entry(.swl, .rtMemory, [p(0xA800_0000, opcodeOnly)], memory: store(4, .left)),
    entry(.sw, .rtMemory, [p(0xAC00_0000, opcodeOnly)], memory: store(4)),
    entry(.swr, .rtMemory, [p(0xB800_0000, opcodeOnly)], memory: store(4, .right)),
    entry(.sc, .rtMemory, [p(0xE000_0000, opcodeOnly)], memory: store(4, .conditional)),
    entry(.cache, .hintMemory, [p(0xBC00_0000, opcodeOnly)], privileged: true, changesState: true),
    entry(.pref, .hintMemory, [p(0xCC00_0000, opcodeOnly)]),
    entry(.synci, .memory, [p(0x041F_0000, regimm)]),
    entry(.sync, .stype, [p(0x0000_000F, special)]),
    // Traps and system
    entry(.tge, .rsRtCode, [p(0x0000_0030, special)], conditionalTrap: true),
    entry(.tgeu, .rsRtCode, [p(0x0000_0031, special)], conditionalTrap: true),
    entry(.tlt, .rsRtCode, [p(0x0000_0032, special)], conditionalTrap: true),
    entry(.tltu, .rsRtCode, [p(0x0000_0033, special)], conditionalTrap: true),
    entry(.teq, .rsRtCode, [p(0x0000_0034, special)], conditionalTrap: true),
    entry(.tne, .rsRtCode, [p(0x0000_0036, special)], conditionalTrap: true),
    entry(.tgei, .rsSimm, [p(0x0408_0000, regimm)], conditionalTrap: true),
    entry(.tgeiu, .rsSimm, [p(0x0409_0000, regimm)], conditionalTrap: true),
    entry(.tlti, .rsSimm, [p(0x040A_0000, regimm)], conditionalTrap: true),
    entry(.tltiu, .rsSimm, [p(0x040B_0000, regimm)], conditionalTrap: true),
    entry(.teqi, .rsSimm, [p(0x040C_0000, regimm)], conditionalTrap: true),
    entry(.tnei, .rsSimm, [p(0x040E_0000, regimm)], conditionalTrap: true),
    entry(.syscall, .code20, [p(0x0000_000C, special)], alwaysTraps: true),
    entry(.break, .breakCode, [p(0x0000_000D, special)], alwaysTraps: true),
    entry(.sdbbp, .code20, [p(0x7000_003F, special)], alwaysTraps: true),
    entry(.rdhwr, .rdhwr, [p(0x7C00_003B, 0xFFE0_063F)]),
    // Coprocessor 0
    entry(.mfc0, .cp0, [p(0x4000_0000, 0xFFE0_07F8)], privileged: true),
    entry(.mtc0, .cp0, [p(0x4080_0000, 0xFFE0_07F8)], privileged: true, changesState: true, fields: .cp0Write),
    entry(.rdpgpr, .rdRt, [p(0x4140_0000, 0xFFE0_07FF)], privileged: true, fields: .rdRt),
    entry(.wrpgpr, .rdRt, [p(0x41C0_0000, 0xFFE0_07FF)], privileged: true, fields: .rdRt),
    entry(.di, .optionalRt, [p(0x4160_6000, 0xFFE0_FFFF)], privileged: true, changesState: true),
    entry(.ei, .optionalRt, [p(0x4160_6020, 0xFFE0_FFFF)], privileged: true, changesState: true),
    entry(.tlbr, .none, [p(0x4200_0001, copOp)], privileged: true, changesState: true),
    entry(.tlbwi, .none, [p(0x4200_0002, copOp)], privileged: true, changesState: true),
    entry(.tlbwr, .none, [p(0x4200_0006, copOp)], privileged: true, changesState: true),
    entry(.tlbp, .none, [p(0x4200_0008, copOp)], privileged: true),
    entry(.eret, .none, [p(0x4200_0018, copOp)], privileged: true, changesState: true),
    entry(.deret, .none, [p(0x4200_001F, copOp)], privileged: true, changesState: true),
    entry(.wait, .code19, [p(0x4200_0020, 0xFE00_003F)], privileged: true, changesState: true),
    // Coprocessors 1 and 2 (none present): MOVF/MOVT, COP1, COP2, COP1X, LWC1/2, LDC1/2, SWC1/2, SDC1/2
    entry(.cop, .coprocessor, [
        p(0x0000_0001, special),
        p(0x4400_0000, opcodeOnly), p(0x4800_0000, opcodeOnly), p(0x4C00_0000, opcodeOnly),
        p(0xC400_0000, opcodeOnly), p(0xC800_0000, opcodeOnly), p(0xD400_0000, opcodeOnly), p(0xD800_0000, opcodeOnly),
        p(0xE400_0000, opcodeOnly), p(0xE800_0000, opcodeOnly), p(0xF400_0000, opcodeOnly), p(0xF800_0000, opcodeOnly),
    ], alwaysTraps: true),
]

/// The table by `Op.rawValue`, built once from `entries` (`InstructionTableTests` checks that
/// every op has exactly one entry).
let instructionTable: [OpInfo] = {
    var table = [OpInfo?](repeating: nil, count: Op.allCases.count)
    for (op, info) in entries { table[Int(op.rawValue)] = info }
    let missing = OpInfo(mnemonic: "<missing>", format: .none, fields: .none, patterns: [], memory: nil, branch: .none,
                         privileged: false, changesState: false, alwaysTraps: true, conditionalTrap: false, refines: nil)
    return table.map { $0 ?? missing }
}()

/// The raw entries, for the table's self-check (one entry per op, in any order).
public let instructionTableEntries: [(op: Op, info: OpInfo)] = entries.map { (op: $0.0, info: $0.1) }
