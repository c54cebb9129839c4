/// The per-instruction facts the translator needs, in one place (to be read from the shared
/// instruction table once it exists).
///
/// An op the translator does not list here ends a block before it, and the interpreter
/// executes it: CP0, traps, syscall/break, LL/SC, LWL/LWR/SWL/SWR, CACHE, RDHWR, WAIT, ERET and
/// anything reserved. Those are exactly the instructions that can change translation,
/// interrupt or mode state, or that always call out.
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

    /// Whether the translator emits host code for `op`, and how it changes control flow.
    static func flow(_ op: Op) -> Flow? {
        switch op {
        case .sll, .srl, .sra, .sllv, .srlv, .srav, .rotr, .rotrv,
             .add, .addu, .sub, .subu, .and, .or, .xor, .nor, .slt, .sltu,
             .movz, .movn, .mfhi, .mthi, .mflo, .mtlo,
             .mult, .multu, .div, .divu, .madd, .maddu, .msub, .msubu, .mul,
             .clz, .clo, .ext, .ins, .wsbh, .seb, .seh,
             .nop, .ssnop, .ehb, .pause, .sync, .pref, .synci,
             .addi, .addiu, .slti, .sltiu, .andi, .ori, .xori, .lui,
             .lb, .lbu, .lh, .lhu, .lw, .sb, .sh, .sw:
            return Flow.none
        case .beq, .bne, .blez, .bgtz, .bltz, .bgez, .bltzal, .bgezal,
             .j, .jal, .jr, .jalr, .jrhb, .jalrhb:
            return .branch
        case .beql, .bnel, .blezl, .bgtzl, .bltzl, .bgezl, .bltzall, .bgezall:
            return .branchLikely
        default:
            return nil
        }
    }
}
