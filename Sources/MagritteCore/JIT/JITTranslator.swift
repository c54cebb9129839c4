/// Turns a run of guest instructions into one host function (see `Docs/jit.md`).
///
/// The function is `(regs, state) -> completed instructions` under the C calling convention:
/// rdi = the CPU's GPR array (32 registers and the `$zero` sink), rsi = the `JITState` block.
/// It uses only rax, rcx and rdx (caller-saved), never calls, never touches the stack, and
/// always returns through an exit that writes the guest pc, npc and delay-slot flag.
struct JITTranslator {
    typealias A = X86Assembler
    /// Most guest instructions in one block.
    static let maxInstructions = 64

    /// A block: its guest instructions (pc order) and its host code.
    struct Block {
        var instructions: Int
        var code: [UInt8]
    }

    /// Where an exit goes back to the interpreter: before instruction `index`.
    private struct Exit {
        var fixups: [A.Fixup] = []
    }

    /// Forms and translates the block starting at `pc` in the page `words` (1024 guest words of
    /// the frame that holds `pc`). Nil when the first instruction is not translated.
    static func translate(pc: UInt32, words: UnsafePointer<UInt32>, limit: Int = maxInstructions) -> Block? {
        // Block formation: straight-line translated instructions in this page, ending after a
        // branch and its delay slot (both translated, the slot not itself a branch).
        var insts: [DecodedInstruction] = []
        var slot = Int((pc >> 2) & 1023)
        var endsWithBranch = false
        var stoppedAtUntranslated = false
        while slot < 1024 && insts.count < limit {
            let d = decode(words[slot])
            guard let flow = JITOpRules.flow(d.op) else { stoppedAtUntranslated = true; break }
            if case .none = flow {
                insts.append(d)
                slot += 1
                continue
            }
            guard slot + 1 < 1024, insts.count + 2 <= limit else { break }
            let s = decode(words[slot + 1])
            guard let sf = JITOpRules.flow(s.op), case .none = sf else { stoppedAtUntranslated = true; break }
            insts.append(d)
            insts.append(s)
            endsWithBranch = true
            break
        }
        if insts.isEmpty { return nil }
        var t = JITTranslator(start: pc, count: insts.count)
        for (i, d) in insts.enumerated() {
            t.emit(d, index: i)
        }
        let page = pc & 0xFFFF_F000
        if !endsWithBranch {
            let next = pc &+ UInt32(4 * insts.count)
            if !stoppedAtUntranslated && next & 0xFFFF_F000 == page {
                t.chainSlot(to: next, completed: insts.count)
            } else {
                if stoppedAtUntranslated {
                    t.exitTo(pc: next, completed: insts.count, interpreterNext: true)
                } else {
                    JITLookup.emit(&t.a, target: next, completed: insts.count)  // the next page; else exits
                }
            }
        } else {
            let b = insts[insts.count - 2]
            let bpc = pc &+ UInt32(4 * (insts.count - 2))
            var successors: [UInt32] = []
            switch b.op {
            case .j, .jal: successors = [((bpc &+ 4) & 0xF000_0000) | b.imm]
            case .jr, .jrhb, .jalr, .jalrhb: break
            case .beql, .bnel, .blezl, .bgtzl, .bltzl, .bgezl, .bltzall, .bgezall: successors = [bpc &+ 4 &+ b.imm]
            default: successors = [bpc &+ 4 &+ b.imm, bpc &+ 8]
            }
            var seen = Set<UInt32>()
            for x in successors where x & 0xFFFF_F000 == page && seen.insert(x).inserted {
                t.chainIf(target: x, completed: insts.count)
            }
            JITLookup.emit(&t.a, target: nil, completed: insts.count)  // JR/JALR, other pages; else exits
        }
        t.emitStubs()
        return Block(instructions: insts.count, code: t.a.bytes)
    }

    private var a = A()
    private let start: UInt32
    private var exits: [Exit]
    /// Nullified-slot exits of branch-likely instructions (not taken).
    private var nullified: [(index: Int, fixup: A.Fixup)] = []

    private init(start: UInt32, count: Int) {
        self.start = start
        exits = Array(repeating: Exit(), count: count)
    }

    // MARK: Operands

    private static func r(_ n: UInt8) -> A.Mem { A.Mem(base: .rdi, disp: Int32(n) * 4) }
    private static let hi = A.Mem(base: .rsi, disp: Int32(JITState.hi))
    private static let lo = A.Mem(base: .rsi, disp: Int32(JITState.lo))
    private static let target = A.Mem(base: .rsi, disp: Int32(JITState.target))

    private func pcOf(_ index: Int) -> UInt32 { start &+ UInt32(4 * index) }

    // MARK: Exits

    /// A conditional exit before instruction `index` (the interpreter executes it).
    private mutating func exitIf(_ c: A.Cond, before index: Int) {
        exits[index].fixups.append(a.jcc(c))
    }

    private mutating func writeExit(pc: UInt32, npc: UInt32?, delay: Bool, interpreterNext: Bool, completed: Int) {
        a.mov(A.Mem(base: .rsi, disp: Int32(JITState.pc)), imm: pc)
        if let npc {
            a.mov(A.Mem(base: .rsi, disp: Int32(JITState.npc)), imm: npc)
        } else {
            a.mov(.rax, JITTranslator.target)
            a.mov(A.Mem(base: .rsi, disp: Int32(JITState.npc)), .rax)
        }
        a.mov8(A.Mem(base: .rsi, disp: Int32(JITState.delay)), imm: delay ? 1 : 0)
        a.mov8(A.Mem(base: .rsi, disp: Int32(JITState.interpreterNext)), imm: interpreterNext ? 1 : 0)
        returnCompleted(completed)
    }

    /// Returns `completed` plus what the chained blocks before this one completed.
    private mutating func returnCompleted(_ completed: Int) {
        a.mov(.rax, imm: UInt32(completed))
        a.alu(.add, .rax, A.Mem(base: .rsi, disp: Int32(JITState.accumulated)))
        a.ret()
    }

    // MARK: Chaining

    /// Size of a chain slot, and where its two patched fields are.
    static let slotSize = 36
    static let slotNeedOffset = 11
    static let slotJumpOffset = 32
    /// The instruction count an unlinked slot asks for: never available, so it always exits.
    static let unlinked: UInt32 = 0xFFFF_FFFF

    /// At the end of the block, when state.target is `target`: go to its chain slot.
    private mutating func chainIf(target: UInt32, completed: Int) {
        a.mov(.rax, JITTranslator.target)
        a.alu(.cmp, .rax, imm: target)
        let other = a.jcc(.ne)
        chainSlot(to: target, completed: completed)
        a.bind(other)
    }

    /// The block's end towards `next` (same page): once linked, a direct jump to the block
    /// there when the batch has room for all of it; else (and until linked) an exit that asks
    /// the caller to link it.
    private mutating func chainSlot(to next: UInt32, completed: Int) {
        let left = A.Mem(base: .rsi, disp: Int32(JITState.left))
        let start = a.bytes.count
        a.mov(.rax, left)
        a.alu(.sub, .rax, imm: UInt32(completed))
        a.alu(.cmp, .rax, imm: JITTranslator.unlinked)  // patched: the next block's length
        let short = a.jcc(.b)
        a.mov(left, .rax)
        a.alu(.add, A.Mem(base: .rsi, disp: Int32(JITState.accumulated)), imm: UInt32(completed))
        let jump = a.jmp()  // patched: the next block
        precondition(a.bytes.count - start == JITTranslator.slotSize, "chain slot layout")
        a.bind(short)
        a.bind(jump)
        a.mov(A.Mem(base: .rsi, disp: Int32(JITState.pc)), imm: next)
        a.mov(A.Mem(base: .rsi, disp: Int32(JITState.npc)), imm: next &+ 4)
        a.mov8(A.Mem(base: .rsi, disp: Int32(JITState.delay)), imm: 0)
        a.mov8(A.Mem(base: .rsi, disp: Int32(JITState.interpreterNext)), imm: 0)
        a.leaRIP(.rax, target: start)
        a.mov64(A.Mem(base: .rsi, disp: Int32(JITState.link)), .rax)
        returnCompleted(completed)
    }

    private mutating func exitTo(pc: UInt32, completed: Int, interpreterNext: Bool) {
        writeExit(pc: pc, npc: pc &+ 4, delay: false, interpreterNext: interpreterNext, completed: completed)
    }

    /// The end of a block that ends with a branch: continue at the computed target.
    private mutating func exitToTarget(completed: Int) {
        a.mov(.rax, JITTranslator.target)
        a.mov(A.Mem(base: .rsi, disp: Int32(JITState.pc)), .rax)
        a.alu(.add, .rax, imm: 4)
        a.mov(A.Mem(base: .rsi, disp: Int32(JITState.npc)), .rax)
        a.mov8(A.Mem(base: .rsi, disp: Int32(JITState.delay)), imm: 0)
        a.mov8(A.Mem(base: .rsi, disp: Int32(JITState.interpreterNext)), imm: 0)
        returnCompleted(completed)
    }

    private mutating func emitStubs() {
        for i in exits.indices where !exits[i].fixups.isEmpty {
            for f in exits[i].fixups { a.bind(f) }
            // Only the last instruction of a branch-ended block can be a delay slot.
            let slot = i > 0 && i == exits.count - 1 && isBranchEnded
            writeExit(pc: pcOf(i), npc: slot ? nil : pcOf(i) &+ 4, delay: slot, interpreterNext: true, completed: i)
        }
        for n in nullified {
            a.bind(n.fixup)
            exitTo(pc: pcOf(n.index) &+ 8, completed: n.index + 1, interpreterNext: false)
        }
    }

    private var isBranchEnded = false

    // MARK: Instructions

    private mutating func emit(_ d: DecodedInstruction, index i: Int) {
        typealias T = JITTranslator
        let rs = T.r(d.rs), rt = T.r(d.rt), rd = T.r(d.rd)
        let imm = d.imm
        let cur = pcOf(i)
        switch d.op {
        case .addiu:
            a.mov(.rax, rs); if imm != 0 { a.alu(.add, .rax, imm: imm) }; a.mov(rd, .rax)
        case .addu: binary(.add, d)
        case .subu: binary(.sub, d)
        case .and: binary(.and, d)
        case .or: binary(.or, d)
        case .xor: binary(.xor, d)
        case .nor: binary(.or, d, store: false); a.unary(.not, .rax); a.mov(rd, .rax)
        case .andi: a.mov(.rax, rs); a.alu(.and, .rax, imm: imm); a.mov(rd, .rax)
        case .ori: a.mov(.rax, rs); a.alu(.or, .rax, imm: imm); a.mov(rd, .rax)
        case .xori: a.mov(.rax, rs); a.alu(.xor, .rax, imm: imm); a.mov(rd, .rax)
        case .lui: a.mov(rd, imm: imm)
        case .slt, .sltu:
            a.alu(.xor, .rcx, .rcx)
            a.mov(.rax, rs); a.alu(.cmp, .rax, rt)
            a.set(d.op == .slt ? .l : .b, .rcx); a.mov(rd, .rcx)
        case .slti, .sltiu:
            a.alu(.xor, .rcx, .rcx)
            a.mov(.rax, rs); a.alu(.cmp, .rax, imm: imm)
            a.set(d.op == .slti ? .l : .b, .rcx); a.mov(rd, .rcx)
        case .sll, .srl, .sra, .rotr:
            let op: A.Shift = d.op == .sll ? .shl : d.op == .srl ? .shr : d.op == .sra ? .sar : .ror
            a.mov(.rax, rt); a.shift(op, .rax, imm: UInt8(imm & 31)); a.mov(rd, .rax)
        case .sllv, .srlv, .srav, .rotrv:
            let op: A.Shift = d.op == .sllv ? .shl : d.op == .srlv ? .shr : d.op == .srav ? .sar : .ror
            a.mov(.rcx, rs); a.mov(.rax, rt); a.shiftByCL(op, .rax); a.mov(rd, .rax)
        case .nop, .ssnop, .ehb, .pause, .sync, .pref, .synci: break
        case .add, .addi, .sub:
            a.mov(.rax, rs)
            if d.op == .addi { a.alu(.add, .rax, imm: imm) } else { a.alu(d.op == .add ? .add : .sub, .rax, rt) }
            exitIf(.o, before: i)
            a.mov(rd, .rax)
        case .movz, .movn:
            a.mov(.rcx, rd)
            a.alu(.cmp, rt, imm8: 0)
            a.cmov(d.op == .movz ? .e : .ne, .rcx, rs)
            a.mov(rd, .rcx)
        case .mfhi: a.mov(.rax, T.hi); a.mov(rd, .rax)
        case .mflo: a.mov(.rax, T.lo); a.mov(rd, .rax)
        case .mthi: a.mov(.rax, rs); a.mov(T.hi, .rax)
        case .mtlo: a.mov(.rax, rs); a.mov(T.lo, .rax)
        case .mult, .multu:
            a.mov(.rax, rs); a.unary(d.op == .mult ? .imul : .mul, rt)
            a.mov(T.lo, .rax); a.mov(T.hi, .rdx)
        case .madd, .maddu, .msub, .msubu:
            a.mov(.rax, rs); a.unary(d.op == .madd || d.op == .msub ? .imul : .mul, rt)
            let sub = d.op == .msub || d.op == .msubu
            a.alu(sub ? .sub : .add, T.lo, .rax)
            a.alu(sub ? .sbb : .adc, T.hi, .rdx)
        case .mul:
            a.mov(.rax, rs); a.imul(.rax, rt); a.mov(rd, .rax)
        case .div:
            // As the interpreter: a zero divisor, or INT_MIN / -1, divides by 1.
            a.mov(.rax, rs); a.mov(.rcx, rt)
            a.test(.rcx, .rcx); let zero = a.jcc(.e)
            a.alu(.cmp, .rcx, imm: 0xFFFF_FFFF); let ok1 = a.jcc(.ne)
            a.alu(.cmp, .rax, imm: 0x8000_0000); let ok2 = a.jcc(.ne)
            a.bind(zero); a.mov(.rcx, imm: 1)
            a.bind(ok1); a.bind(ok2)
            a.cdq(); a.unary(.idiv, .rcx)
            a.mov(T.lo, .rax); a.mov(T.hi, .rdx)
        case .divu:
            a.mov(.rax, rs); a.mov(.rcx, rt)
            a.test(.rcx, .rcx); let ok = a.jcc(.ne)
            a.mov(.rcx, imm: 1)
            a.bind(ok)
            a.alu(.xor, .rdx, .rdx); a.unary(.div, .rcx)
            a.mov(T.lo, .rax); a.mov(T.hi, .rdx)
        case .clz, .clo:
            a.mov(.rax, rs)
            if d.op == .clo { a.unary(.not, .rax) }
            a.mov(.rdx, imm: 0xFFFF_FFFF)
            a.bsr(.rax, .rax); a.cmov(.e, .rax, .rdx)
            a.mov(.rcx, imm: 31); a.alu(.sub, .rcx, .rax); a.mov(rd, .rcx)
        case .seb: a.movsx8(.rax, rt); a.mov(rd, .rax)
        case .seh: a.movsx16(.rax, rt); a.mov(rd, .rax)
        case .wsbh:
            a.mov(.rax, rt); a.mov(.rcx, .rax)
            a.alu(.and, .rax, imm: 0xFF00_FF00); a.shift(.shr, .rax, imm: 8)
            a.alu(.and, .rcx, imm: 0x00FF_00FF); a.shift(.shl, .rcx, imm: 8)
            a.alu(.or, .rax, .rcx); a.mov(rd, .rax)
        case .ext:
            a.mov(.rax, rs); a.shift(.shr, .rax, imm: d.rt); a.alu(.and, .rax, imm: imm); a.mov(rd, .rax)
        case .ins:
            let pos = UInt32(d.rt)
            a.mov(.rax, rs); a.alu(.and, .rax, imm: imm); a.shift(.shl, .rax, imm: d.rt)
            a.mov(.rcx, rd); a.alu(.and, .rcx, imm: ~(imm << pos)); a.alu(.or, .rax, .rcx); a.mov(rd, .rax)

        // Branches: the target goes to state.target; the block ends after the delay slot.
        case .beq, .bne:
            a.mov(.rax, rs); a.alu(.cmp, .rax, rt)
            branchTarget(d.op == .beq ? .e : .ne, cur: cur, imm: imm)
        case .blez, .bgtz, .bltz, .bgez, .bltzal, .bgezal:
            a.alu(.cmp, rs, imm8: 0)
            let c: A.Cond
            switch d.op {
            case .blez: c = .le
            case .bgtz: c = .g
            case .bltz, .bltzal: c = .l
            default: c = .ge
            }
            branchTarget(c, cur: cur, imm: imm)
            if d.op == .bltzal || d.op == .bgezal { a.mov(T.r(31), imm: cur &+ 8) }
        case .beql, .bnel, .blezl, .bgtzl, .bltzl, .bgezl, .bltzall, .bgezall:
            let c: A.Cond
            switch d.op {
            case .beql, .bnel:
                a.mov(.rax, rs); a.alu(.cmp, .rax, rt)
                c = d.op == .beql ? .e : .ne
            default:
                a.alu(.cmp, rs, imm8: 0)
                switch d.op {
                case .blezl: c = .le
                case .bgtzl: c = .g
                case .bltzl, .bltzall: c = .l
                default: c = .ge
                }
            }
            // mov does not change the flags: the link is written whatever the outcome.
            if d.op == .bltzall || d.op == .bgezall { a.mov(T.r(31), imm: cur &+ 8) }
            nullified.append((index: i, fixup: a.jcc(c.inverted)))
            a.mov(T.target, imm: cur &+ 4 &+ imm)
        case .j, .jal:
            a.mov(T.target, imm: ((cur &+ 4) & 0xF000_0000) | imm)
            if d.op == .jal { a.mov(T.r(31), imm: cur &+ 8) }
        case .jr, .jrhb, .jalr, .jalrhb:
            a.mov(.rax, rs); a.mov(T.target, .rax)
            if d.op == .jalr || d.op == .jalrhb { a.mov(rd, imm: cur &+ 8) }

        // Loads and stores through the software TLB; a miss exits before the instruction.
        case .lw, .lb, .lbu, .lh, .lhu:
            let align: UInt32 = d.op == .lw ? 3 : (d.op == .lh || d.op == .lhu) ? 1 : 0
            softTLB(d, index: i, align: align, write: false)
            let at = A.Mem(base: .rax, disp: 0)
            switch d.op {
            case .lw: a.mov(.rax, at)
            case .lb: a.movsx8(.rax, at)
            case .lbu: a.movzx8(.rax, at)
            case .lh: a.movsx16(.rax, at)
            default: a.movzx16(.rax, at)
            }
            a.mov(rd, .rax)
        case .sw, .sb, .sh:
            let align: UInt32 = d.op == .sw ? 3 : d.op == .sh ? 1 : 0
            softTLB(d, index: i, align: align, write: true)
            a.mov(.rdx, rt)
            let at = A.Mem(base: .rax, disp: 0)
            switch d.op {
            case .sw: a.mov(at, .rdx)
            case .sb: a.mov8(at, .rdx)
            default: a.mov16(at, .rdx)
            }
        default:
            preconditionFailure("JITOpRules lists \(d.op) but the translator has no code for it")
        }
        if let flow = JITOpRules.flow(d.op), case .none = flow {} else { isBranchEnded = true }
    }

    private mutating func binary(_ op: A.ALU, _ d: DecodedInstruction, store: Bool = true) {
        a.mov(.rax, JITTranslator.r(d.rs))
        a.alu(op, .rax, JITTranslator.r(d.rt))
        if store { a.mov(JITTranslator.r(d.rd), .rax) }
    }

    /// state.target = condition ? taken target : the instruction after the delay slot.
    private mutating func branchTarget(_ c: A.Cond, cur: UInt32, imm: UInt32) {
        a.mov(.rcx, imm: cur &+ 8)
        a.mov(.rdx, imm: cur &+ 4 &+ imm)
        a.cmov(c, .rcx, .rdx)
        a.mov(JITTranslator.target, .rcx)
    }

    /// Leaves in rax the host address of `rs + imm` (as the interpreter's fast path computes
    /// it) or exits before instruction `index` on a tag mismatch (miss, unaligned, watched,
    /// device, code page).
    private mutating func softTLB(_ d: DecodedInstruction, index: Int, align: UInt32, write: Bool) {
        let half: Int32 = write ? 256 * Int32(MemoryLayout<SoftTLBEntry>.stride) : 0
        a.mov(.rax, JITTranslator.r(d.rs))
        if d.imm != 0 { a.alu(.add, .rax, imm: d.imm) }
        a.mov(.rcx, .rax)
        a.shift(.shr, .rcx, imm: 8)
        a.alu(.and, .rcx, imm: 0xFF0)  // ((va >> 12) & 255) * 16
        a.alu64(.add, .rcx, A.Mem(base: .rsi, disp: Int32(JITState.softTLB)))
        a.mov(.rdx, .rax)
        a.alu(.and, .rdx, imm: 0xFFFF_F000 | align)
        a.alu(.cmp, .rdx, A.Mem(base: .rcx, disp: half + Int32(JITState.tagOffset)))
        exitIf(.ne, before: index)
        a.alu64(.add, .rax, A.Mem(base: .rcx, disp: half + Int32(JITState.addendOffset)))
    }
}
