/// Which instructions the translator emits host code for, and how each transfers control.
///
/// The control-flow facts come from the shared instruction table (`Op.info.branch`,
/// `InstructionTable.swift`); what is the translator's own is the list of ops its code generator
/// implements. An op not listed ends a block before it, and the interpreter executes it: CP0,
/// syscall/break, LL, CACHE, RDHWR, WAIT, ERET and anything reserved — the instructions the
/// table marks as privileged, changing state or always trapping, and the few plain ones whose
/// result needs more than the fast path (`Docs/jit.md`, "Translated"). Conditional traps are
/// translated: the block exits before one that is taken. `InstructionTableTests` checks that
/// none of the listed ops is privileged, changes state or always traps.
enum JITOpRules {
    /// How an op transfers control.
    enum Flow {
        /// Falls through to the next instruction.
        case none
        /// A branch or jump with a delay slot that always executes.
        case branch
        /// A branch-likely: the delay slot is nullified when not taken.
        case branchLikely
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
    /// privileged or state-changing ones that usually complete without anything the run loop
    /// must see (the call-out ends the block when they do not: an exception, a batch break, a
    /// TLB or ASID change), and LL and RDHWR, whose results need more than the fast path.
    static let calledOut: Set<Op> = [.mfc0, .mtc0, .tlbp, .tlbr, .cache, .ll, .rdhwr, .rdpgpr, .wrpgpr]

    /// Whether a block may hold `op` (nil: it may not), and how it changes control flow, as the
    /// instruction table says.
    static func flow(_ op: Op) -> Flow? {
        if calledOut.contains(op) { return Flow.none }
        guard translated.contains(op) else { return nil }
        switch op.info.branch.kind {
        case .none: return Flow.none
        case .conditionalLikely: return .branchLikely
        case .conditional, .jump, .jumpRegister: return .branch
        }
    }
}
