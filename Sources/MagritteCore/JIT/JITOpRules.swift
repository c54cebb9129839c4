/// Which instructions the translator emits host code for, and how each transfers control.
///
/// The control-flow facts come from the shared instruction table (`Op.info.branch`,
/// `InstructionTable.swift`); what is the translator's own is the list of ops its code generator
/// implements (`translated`: plain code, nothing privileged, changing state or always trapping)
/// and the list of ops a block runs by calling the interpreter's code for them (`calledOut`: the
/// CP0 instructions, LL, RDHWR, CACHE). Any other op ends a block before it, and the interpreter
/// executes it: SYSCALL/BREAK, SDBBP, DERET, coprocessor 1/2 and reserved words, which always
/// trap. Conditional traps are translated: the block exits before one that is taken.
/// `InstructionTableTests` checks that none of the translated ops is privileged, changes state or
/// always traps (`Docs/jit.md`, "Translated").
enum JITOpRules {
    /// How an op transfers control.
    enum Flow {
        /// Falls through to the next instruction.
        case none
        /// A branch or jump with a delay slot that always executes.
        case branch
        /// A branch-likely: the delay slot is nullified when not taken.
        case branchLikely
        /// Called out, and the block ends after it (ERET: where it returns to is known only at
        /// run time; the call out goes on there through the lookup, `CPU.endsBatchInPlace`; the
        /// block's end goes on at the next instruction, which is right only when a trap handler
        /// emulated it and left the CPU there).
        case last
    }

    /// The ops the code generator implements (`JITTranslator`).
    static let translated: Set<Op> = [
        .sll, .srl, .sra, .sllv, .srlv, .srav, .rotr, .rotrv,
        .add, .addu, .sub, .subu, .and, .or, .xor, .nor, .slt, .sltu,
        .movz, .movn, .mfhi, .mthi, .mflo, .mtlo,
        .mult, .multu, .div, .divu, .madd, .maddu, .msub, .msubu, .mul,
        .clz, .clo, .ext, .ins, .wsbh, .seb, .seh,
        .nop, .ssnop, .ehb, .pause, .sync, .pref, .synci,
        .addi, .addiu, .slti, .sltiu, .andi, .ori, .xori, .lui,
        .lb, .lbu, .lh, .lhu, .lw, .sb, .sh, .sw, .lwl, .lwr, .swl, .swr, .sc,
        .tge, .tgeu, .tlt, .tltu, .teq, .tne, .tgei, .tgeiu, .tlti, .tltiu, .teqi, .tnei,
        .beq, .bne, .blez, .bgtz, .bltz, .bgez, .bltzal, .bgezal,
        .beql, .bnel, .blezl, .bgtzl, .bltzl, .bgezl, .bltzall, .bgezall,
        .j, .jal, .jr, .jalr, .jrhb, .jalrhb,
    ]

    /// Ops a block runs by calling the interpreter's code for them in place (`JIT.callOut`):
    /// privileged or state-changing ones — the block goes on after them when nothing happened
    /// that the run loop must see, and ends after them otherwise (an exception, a batch break, a
    /// TLB or ASID change: natively DI, EI and WAIT always end the batch, TLBWI/TLBWR end the
    /// block when they remap the code page); under a trap handler (the VMM) each of them traps
    /// and goes on in place when the handler emulated it (`Docs/jit.md`, "Handled traps") —,
    /// and LL and RDHWR, whose results need more than the fast path.
    static let calledOut: Set<Op> = [
        .mfc0, .mtc0, .tlbp, .tlbr, .tlbwi, .tlbwr, .di, .ei, .wait, .cache, .ll, .rdhwr, .rdpgpr, .wrpgpr, .eret,
    ]

    /// Called-out ops that end their block (`Flow.last`).
    static let endsBlock: Set<Op> = [.eret]

    /// Whether a block may hold `op` (nil: it may not), and how it changes control flow, as the
    /// instruction table says.
    static func flow(_ op: Op) -> Flow? {
        if calledOut.contains(op) { return endsBlock.contains(op) ? .last : Flow.none }
        guard translated.contains(op) else { return nil }
        switch op.info.branch.kind {
        case .none: return Flow.none
        case .conditionalLikely: return .branchLikely
        case .conditional, .jump, .jumpRegister: return .branch
        }
    }
}
