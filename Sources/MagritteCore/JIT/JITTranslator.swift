#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns a run of guest instructions into one host function (see `Docs/jit.md`).
///
/// The function is `(regs, state) -> completed instructions` under the C calling convention:
/// rdi = the CPU's GPR array (32 registers and the `$zero` sink), rsi = the `JITState` block.
/// rax, rcx and rdx are scratch; the block's most used guest registers live in r8–r11 (all
/// caller-saved: no prologue saves anything) from its entry, where they are loaded, to each
/// exit, where the ones the block writes are stored back. It calls only `JIT.callOut` (from one
/// tail per block, which keeps rdi and rsi on the stack across the call), and always returns
/// through an exit that writes the guest pc, npc and delay-slot flag.
struct JITTranslator {
    typealias A = X86Assembler
    /// Most guest instructions in one block.
    static let maxInstructions = 64
    /// Most conditional branches a block follows along their fall-through path.
    static let maxSideExits = 4
    /// The host registers that hold guest registers inside a block.
    static let cacheRegisters: [A.Reg] = [.r8, .r9, .r10, .r11]

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
    /// the frame that holds `pc`), at most `limit` instructions long. Nil when the first
    /// instruction is not translated. With `dumpTo`, the code is also written to `DIR/PC.bin`
    /// (nothing is, and nothing fails, when the file cannot be written).
    static func translate(pc: UInt32, words: UnsafePointer<UInt32>, limit: Int = maxInstructions, dumpTo: String? = dumpDirectory,
                          inline: InlineCP0Layout? = nil) -> Block? {
        // Block formation: straight-line translated instructions in this page, ending after a
        // branch and its delay slot (both translated, the slot not itself a branch) — except a
        // forward conditional branch whose fall-through is in the page: the block goes on along
        // the fall-through, and the taken path leaves it (a side exit), up to `maxSideExits` times.
        var insts: [DecodedInstruction] = []
        var sideExits = Set<Int>()
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
            if case .last = flow {
                insts.append(d)
                break
            }
            guard slot + 1 < 1024, insts.count + 2 <= limit else { break }
            let s = decode(words[slot + 1])
            guard let sf = JITOpRules.flow(s.op), case .none = sf else { stoppedAtUntranslated = true; break }
            // A backward branch (a loop's, taken almost every time; to the block's own start,
            // the block loops in host code) still ends the block.
            let forward = Int32(bitPattern: d.imm) > 0
            insts.append(d)
            insts.append(s)
            if d.op.info.branch.kind == .conditional && forward && sideExits.count < maxSideExits && slot + 2 < 1024 {
                sideExits.insert(insts.count - 2)
                slot += 2
                continue
            }
            endsWithBranch = true
            break
        }
        if insts.isEmpty { return nil }

        // Register caching: a first pass counts how the code uses each guest register; the
        // most used ones get a host register.
        var probe = JITTranslator(start: pc, count: insts.count, cached: [], inline: inline)
        for (i, d) in insts.enumerated() { probe.emit(d, index: i) }
        let loops = endsWithBranch && mayBranch(to: pc, insts[insts.count - 2], at: pc &+ UInt32(4 * (insts.count - 2)))
        var t = JITTranslator(start: pc, count: insts.count, cached: probe.chooseCached(loops: loops), inline: inline)
        t.loadCached()
        let body = t.a.bytes.count
        for (i, d) in insts.enumerated() {
            t.emit(d, index: i)
            if i > 0 && sideExits.contains(i - 1) { t.sideExitIf(branch: insts[i - 1], at: i - 1) }
        }

        let page = pc & 0xFFFF_F000
        if loops { t.loopIf(body: body, completed: insts.count) }
        t.storeCached(t.written)
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
            // Where the block can go on: the taken target (none for a jump to a register) and,
            // for a branch that is not likely, the instruction after the slot.
            var successors: [UInt32] = b.takenTarget(at: bpc).map { [$0] } ?? []
            if b.op.info.branch.kind == .conditional { successors.append(bpc &+ 8) }
            var seen = Set<UInt32>()
            for x in successors where x & 0xFFFF_F000 == page && x != pc && seen.insert(x).inserted {
                t.chainIf(target: x, completed: insts.count)
            }
            JITLookup.emit(&t.a, target: nil, completed: insts.count)  // JR/JALR, other pages; else exits
        }
        t.emitStubs()
        if let dir = dumpTo { dump(t.a.bytes, pc: pc, to: dir) }
        return Block(instructions: insts.count, code: t.a.bytes)
    }

    /// `MAGRITTE_JIT_DUMP=DIR`: every block translated is also written to `DIR/PC.bin` (the
    /// guest pc in hex), for `llvm-objdump` (`Docs/jit.md`, "Seeing a block's host code").
    static let dumpDirectory: String? = getenv("MAGRITTE_JIT_DUMP").map { String(cString: $0) }

    private static func dump(_ code: [UInt8], pc: UInt32, to dir: String) {
        guard let f = fopen("\(dir)/\(Hex.word(pc)).bin", "wb") else { return }
        _ = code.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
    }

    private var a = A()
    private let start: UInt32
    private var exits: [Exit]
    /// Nullified-slot exits of branch-likely instructions (not taken).
    private var nullified: [(index: Int, fixup: A.Fixup)] = []
    /// Taken paths of the conditional branches the block follows along their fall-through:
    /// the branch's index and its taken target.
    private var taken: [(index: Int, target: UInt32, fixup: A.Fixup)] = []
    /// The indices of the instructions that are delay slots.
    private var delaySlots = Set<Int>()
    /// Instructions that call the interpreter's code (`JIT.callOut`): a load or store the
    /// inline TLB missed, or an op in `JITOpRules.calledOut`; the jumps to their call, and
    /// where the block goes on after it.
    private var callOuts: [(instruction: DecodedInstruction, index: Int, fixups: [A.Fixup], resume: Int)] = []
    /// The jumps to the call out of the instruction being emitted.
    private var pendingCallOuts: [A.Fixup] = []
    /// Per guest register (0–32): the host register holding it in this block, if any.
    private var host: [A.Reg?] = Array(repeating: nil, count: 33)
    /// Per guest register: how often the code reads or writes it (the first pass's count).
    private var uses: [Int] = Array(repeating: 0, count: 33)
    /// Guest registers the block writes (bit n: register n), complete once the body is emitted.
    private var written: UInt64 = 0

    /// The plain `mfc0`/`mtc0` emulated inline (`InlineCP0`), when the CPU has a gate.
    private let inline: InlineCP0Layout?

    private init(start: UInt32, count: Int, cached: [UInt8], inline: InlineCP0Layout?) {
        self.start = start
        self.inline = inline
        exits = Array(repeating: Exit(), count: count)
        for (k, n) in cached.enumerated() { host[Int(n)] = JITTranslator.cacheRegisters[k] }
    }

    // MARK: Operands

    private static func r(_ n: UInt8) -> A.Mem { A.Mem(base: .rdi, disp: Int32(n) * 4) }
    private static let hi = A.Mem(base: .rsi, disp: Int32(JITState.hi))
    private static let lo = A.Mem(base: .rsi, disp: Int32(JITState.lo))
    private static let target = A.Mem(base: .rsi, disp: Int32(JITState.target))

    /// Guest register `n` as an operand that is read.
    private mutating func src(_ n: UInt8) -> A.Operand {
        uses[Int(n)] += 1
        if let h = host[Int(n)] { return .reg(h) }
        return .mem(JITTranslator.r(n))
    }

    /// Guest register `n` as an operand that is written (and maybe read too).
    private mutating func dst(_ n: UInt8) -> A.Operand {
        written |= 1 << UInt64(n)
        return src(n)
    }

    /// The registers worth a host register: the most used, if used more than a load (and a
    /// store back, when written) costs — in a block that loops to itself, any used at all (the
    /// load and store are paid once per visit, not per round). Never $zero (always 0) nor the
    /// sink (never read).
    private func chooseCached(loops: Bool) -> [UInt8] {
        let candidates = (1..<32).filter { n in
            uses[n] >= (loops ? 1 : written & (1 << UInt64(n)) != 0 ? 3 : 2)
        }
        let sorted = candidates.sorted { uses[$0] != uses[$1] ? uses[$0] > uses[$1] : $0 < $1 }
        return sorted.prefix(JITTranslator.cacheRegisters.count).map { UInt8($0) }
    }

    /// At the block's entry: the cached guest registers into their host registers.
    private mutating func loadCached() {
        for n in 0..<32 { if let h = host[n] { a.mov(h, JITTranslator.r(UInt8(n))) } }
    }

    /// Before an exit: the cached guest registers in `mask` back to memory. Every exit stores
    /// all the block writes: one not written yet still holds the value loaded at entry.
    private mutating func storeCached(_ mask: UInt64) {
        for n in 0..<32 where mask & (1 << UInt64(n)) != 0 {
            if let h = host[n] { a.mov(JITTranslator.r(UInt8(n)), h) }
        }
    }

    private func pcOf(_ index: Int) -> UInt32 { start &+ UInt32(4 * index) }

    // MARK: Exits

    /// A conditional exit before instruction `index` (the interpreter executes it). The
    /// instruction must not have written a guest register before the check.
    private mutating func exitIf(_ c: A.Cond, before index: Int) {
        exits[index].fixups.append(a.jcc(c))
    }

    /// A conditional call out for the instruction being emitted (`JIT.callOut`): the
    /// interpreter's code runs it instead of the rest of its host code; the block goes on after
    /// it or ends there. Nothing of the instruction may be done before the check.
    private mutating func callOutIf(_ c: A.Cond) {
        pendingCallOuts.append(a.jcc(c))
    }

    private mutating func writeExit(pc: UInt32, npc: UInt32?, delay: Bool, interpreterNext: Bool, completed: Int) {
        a.mov(A.Mem(base: .rsi, disp: Int32(JITState.pc)), imm: pc)
        if let npc {
            a.mov(A.Mem(base: .rsi, disp: Int32(JITState.npc)), imm: npc)
        } else {
            a.mov(.rax, JITTranslator.target)
            a.mov(A.Mem(base: .rsi, disp: Int32(JITState.npc)), .rax)
        }
        flags(delay: delay, interpreterNext: interpreterNext)
        returnCompleted(completed)
    }

    /// The delay-slot and "interpreter next" bytes (adjacent: one 16-bit store).
    private mutating func flags(delay: Bool, interpreterNext: Bool) {
        precondition(JITState.interpreterNext == JITState.delay + 1, "adjacent flags")
        a.mov16(A.Mem(base: .rsi, disp: Int32(JITState.delay)), imm: (interpreterNext ? 0x100 : 0) | (delay ? 1 : 0))
    }

    /// Returns `completed` plus what the chained blocks before this one completed.
    private mutating func returnCompleted(_ completed: Int) {
        a.mov(.rax, imm: UInt32(completed))
        a.alu(.add, .rax, A.Mem(base: .rsi, disp: Int32(JITState.accumulated)))
        a.ret()
    }

    // MARK: Chaining

    /// Whether the branch `b` at `bpc` can go to `target` (a direct branch or jump only).
    private static func mayBranch(to target: UInt32, _ b: DecodedInstruction, at bpc: UInt32) -> Bool {
        switch b.op.info.branch.kind {
        case .none, .jumpRegister: return false
        case .jump: return b.takenTarget(at: bpc) == target
        case .conditional, .conditionalLikely: return b.takenTarget(at: bpc) == target || bpc &+ 8 == target
        }
    }

    /// At the end of a block that may branch back to its own start: when it does and the
    /// batch has room for the whole block again, jump back to the code after the entry's
    /// loads, the guest registers still in their host registers (what linking the block to
    /// itself would do, without the stores and loads).
    private mutating func loopIf(body: Int, completed: Int) {
        let left = A.Operand.mem(A.Mem(base: .rsi, disp: Int32(JITState.left)))
        a.alu(.cmp, .mem(JITTranslator.target), imm: start)
        let other = a.jcc(.ne)
        a.mov(.rax, left)
        a.alu(.sub, .rax, imm: UInt32(completed))
        a.alu(.cmp, .rax, imm: UInt32(completed))
        let short = a.jcc(.b)
        a.mov(left, .rax)
        a.alu(.add, .mem(A.Mem(base: .rsi, disp: Int32(JITState.accumulated))), imm: UInt32(completed))
        a.bind(a.jmp(), to: body)
        a.bind(other)
        a.bind(short)
    }

    /// Size of a chain slot, and where its two patched fields are.
    static let slotSize = 36
    static let slotNeedOffset = 11
    static let slotJumpOffset = 32
    /// The instruction count an unlinked slot asks for: never available, so it always exits.
    static let unlinked: UInt32 = 0xFFFF_FFFF

    /// At the end of the block, when state.target is `target`: go to its chain slot.
    private mutating func chainIf(target: UInt32, completed: Int) {
        a.alu(.cmp, .mem(JITTranslator.target), imm: target)
        let other = a.jcc(.ne)
        chainSlot(to: target, completed: completed)
        a.bind(other)
    }

    /// The block's end towards `next` (same page): once linked, a direct jump to the block
    /// there when the batch has room for all of it; else (and until linked) an exit that asks
    /// the caller to link it. The cached registers are already stored back.
    private mutating func chainSlot(to next: UInt32, completed: Int) {
        let left = A.Operand.mem(A.Mem(base: .rsi, disp: Int32(JITState.left)))
        let start = a.bytes.count
        a.mov(.rax, left)
        a.alu(.sub, .reg(.rax), imm32: UInt32(completed))
        a.alu(.cmp, .reg(.rax), imm32: JITTranslator.unlinked)  // patched: the next block's length
        let short = a.jcc(.b)
        a.mov(left, .rax)
        a.alu(.add, .mem(A.Mem(base: .rsi, disp: Int32(JITState.accumulated))), imm32: UInt32(completed))
        let jump = a.jmp()  // patched: the next block
        precondition(a.bytes.count - start == JITTranslator.slotSize, "chain slot layout")
        a.bind(short)
        a.bind(jump)
        a.mov(A.Mem(base: .rsi, disp: Int32(JITState.pc)), imm: next)
        a.mov(A.Mem(base: .rsi, disp: Int32(JITState.npc)), imm: next &+ 4)
        flags(delay: false, interpreterNext: false)
        a.leaRIP(.rax, target: start)
        a.mov64(A.Mem(base: .rsi, disp: Int32(JITState.link)), .rax)
        returnCompleted(completed)
    }

    private mutating func exitTo(pc: UInt32, completed: Int, interpreterNext: Bool) {
        writeExit(pc: pc, npc: pc &+ 4, delay: false, interpreterNext: interpreterNext, completed: completed)
    }

    /// The exits before an instruction: each sets ecx to the instruction's index and jumps to
    /// one shared tail that stores the registers back and computes pc = start + 4 * index (a
    /// delay slot, only ever the block's last instruction, has its own: npc is the target).
    private mutating func emitStubs() {
        var shared: [A.Fixup] = []
        for i in exits.indices where !exits[i].fixups.isEmpty {
            for f in exits[i].fixups { a.bind(f) }
            if delaySlots.contains(i) {
                storeCached(written)
                writeExit(pc: pcOf(i), npc: nil, delay: true, interpreterNext: true, completed: i)
            } else {
                a.mov(.rcx, imm: UInt32(i))
                shared.append(a.jmp())
            }
        }
        if !shared.isEmpty {
            for f in shared { a.bind(f) }
            storeCached(written)
            a.mov(.rax, .rcx)
            a.shift(.shl, .rax, imm: 2)
            a.alu(.add, .rax, imm: start)
            a.mov(A.Mem(base: .rsi, disp: Int32(JITState.pc)), .rax)
            a.alu(.add, .rax, imm: 4)
            a.mov(A.Mem(base: .rsi, disp: Int32(JITState.npc)), .rax)
            flags(delay: false, interpreterNext: true)
            a.mov(.rax, .rcx)
            a.alu(.add, .rax, A.Mem(base: .rsi, disp: Int32(JITState.accumulated)))
            a.ret()
        }
        // A branch-likely not taken goes on after its (nullified) slot, a side exit to its
        // taken target: a chain slot in this page, the lookup in another.
        for n in nullified {
            a.bind(n.fixup)
            storeCached(written)
            continueAt(pcOf(n.index) &+ 8, completed: n.index + 1)
        }
        for t in taken {
            a.bind(t.fixup)
            storeCached(written)
            continueAt(t.target, completed: t.index + 2)
        }
        emitCallOuts()
    }

    /// The call outs: per instruction, its decoded form in rdx, its pc (bit 0: a delay slot) in
    /// ecx and where the block goes on in rax, then one shared call per block that stores the
    /// cached registers back, calls `JIT.callOut` (the stack aligned, rdi and rsi kept) and
    /// either reloads them and returns to the block, or returns what the call out says the
    /// block completed (plus the chained blocks' count), the state's pc already written, or
    /// (`JIT.toLookup`) goes on at that pc through the lookup stub.
    private mutating func emitCallOuts() {
        guard !callOuts.isEmpty else { return }
        precondition(MemoryLayout<DecodedInstruction>.size == 8, "a decoded instruction is passed in one register")
        var shared: [A.Fixup] = []
        for c in callOuts {
            for f in c.fixups { a.bind(f) }
            a.mov64(.rdx, imm: unsafeBitCast(c.instruction, to: UInt64.self))
            a.mov(.rcx, imm: pcOf(c.index) | (delaySlots.contains(c.index) ? 1 : 0))
            a.leaRIP(.rax, target: c.resume)
            shared.append(a.jmp())
        }
        for f in shared { a.bind(f) }
        let all = host.indices.reduce(UInt64(0)) { host[$1] != nil ? $0 | 1 << UInt64($1) : $0 }
        storeCached(all)
        // Entered with rsp = 8 mod 16 (the return address): three pushes align it for the call.
        a.push(.rax)
        a.push(.rdi)
        a.push(.rsi)
        a.mov64(.rdi, .rsi)
        a.mov64(.rsi, .rdx)
        a.mov(.rdx, .rcx)
        a.mov(.rcx, imm: start)
        a.call(A.Mem(base: .rdi, disp: Int32(JITState.callOut)))
        a.pop(.rsi)
        a.pop(.rdi)
        a.test(.rax, .rax)
        let leave = a.jcc(.ne)
        loadCached()
        // To the resume address pushed first (a jump, not a ret: the return stack's prediction
        // would be wrong here and for the returns after it).
        a.pop(.rcx)
        a.jmp(.rcx)
        a.bind(leave)
        a.pop(.rcx)
        a.test(.rax, .rax)
        let lookup = a.jcc(.s)  // `JIT.toLookup`: on at the new pc through the lookup
        a.alu(.add, .rax, A.Mem(base: .rsi, disp: Int32(JITState.accumulated)))
        a.ret()
        a.bind(lookup)
        a.alu(.and, .rax, imm: ~JIT.toLookup)
        a.mov(A.Mem(base: .rsi, disp: Int32(JITState.completed)), .rax)
        a.mov(.rax, A.Mem(base: .rsi, disp: Int32(JITState.pc)))
        a.emit(0xFF, 0x66); a.emit(UInt8(JITState.lookupStub))  // jmp qword [rsi + lookupStub]
    }

    /// Leaves the block for the known pc `next` after `completed` instructions (the cached
    /// registers stored back): through a chain slot when `next` is in the block's page, else
    /// through the lookup, which checks that the other page maps to the frame of its block.
    private mutating func continueAt(_ next: UInt32, completed: Int) {
        if next & 0xFFFF_F000 == start & 0xFFFF_F000 {
            chainSlot(to: next, completed: completed)
        } else {
            JITLookup.emit(&a, target: next, completed: completed)
        }
    }

    /// After the delay slot of the conditional branch `b` at index `k` that the block follows
    /// along its fall-through: when it was taken, leave the block (`emitStubs`) for its target.
    private mutating func sideExitIf(branch b: DecodedInstruction, at k: Int) {
        a.alu(.cmp, .mem(JITTranslator.target), imm: pcOf(k) &+ 8)
        taken.append((index: k, target: pcOf(k) &+ 4 &+ b.imm, fixup: a.jcc(.ne)))
    }

    // MARK: Instructions

    private mutating func emit(_ d: DecodedInstruction, index i: Int) {
        emitCode(d, index: i)
        if !pendingCallOuts.isEmpty {
            callOuts.append((instruction: d, index: i, fixups: pendingCallOuts, resume: a.bytes.count))
            pendingCallOuts = []
        }
    }

    private mutating func emitCode(_ d: DecodedInstruction, index i: Int) {
        typealias T = JITTranslator
        let imm = d.imm
        let cur = pcOf(i)
        if d.op == .mfc0 || d.op == .mtc0, let layout = inline, !delaySlots.contains(i), inlineCP0(d, layout) { return }
        switch d.op {
        // The interpreter's code, called in place (its registers are read and written in memory).
        case _ where JITOpRules.calledOut.contains(d.op):
            pendingCallOuts.append(a.jmp())
        case .addiu: immediate(.add, d)
        case .addu: binary(.add, d)
        case .subu: binary(.sub, d)
        case .and: binary(.and, d)
        case .or: binary(.or, d)
        case .xor: binary(.xor, d)
        case .nor: a.mov(.rax, src(d.rs)); a.alu(.or, .rax, src(d.rt)); a.unary(.not, .rax); a.mov(dst(d.rd), .rax)
        case .andi: immediate(.and, d)
        case .ori: immediate(.or, d)
        case .xori: immediate(.xor, d)
        case .lui: a.mov(dst(d.rd), imm: imm)
        case .slt, .sltu:
            compare(d.rs, d.rt)
            setFlag(d.op == .slt ? .l : .b, d.rd)
        case .slti, .sltiu:
            a.alu(.cmp, src(d.rs), imm: imm)
            setFlag(d.op == .slti ? .l : .b, d.rd)
        case .sll, .srl, .sra, .rotr:
            let op: A.Shift = d.op == .sll ? .shl : d.op == .srl ? .shr : d.op == .sra ? .sar : .ror
            let rd = dst(d.rd)
            let r = inPlace(rd, from: src(d.rt))
            a.shift(op, r, imm: UInt8(imm & 31))
            if r != rd { a.mov(rd, .rax) }
        case .sllv, .srlv, .srav, .rotrv:
            let op: A.Shift = d.op == .sllv ? .shl : d.op == .srlv ? .shr : d.op == .srav ? .sar : .ror
            a.mov(.rcx, src(d.rs))
            let rd = dst(d.rd)
            let r = inPlace(rd, from: src(d.rt))
            a.shiftByCL(op, r)
            if r != rd { a.mov(rd, .rax) }
        case .nop, .ssnop, .ehb, .pause, .sync, .pref, .synci: break
        case .add, .addi, .sub:
            a.mov(.rax, src(d.rs))
            if d.op == .addi { a.alu(.add, .rax, imm: imm) } else { a.alu(d.op == .add ? .add : .sub, .rax, src(d.rt)) }
            exitIf(.o, before: i)
            a.mov(dst(d.rd), .rax)
        case .movz, .movn:
            let rd = dst(d.rd)
            let c: A.Cond = d.op == .movz ? .e : .ne
            compare(d.rt, 0)
            if case .reg(let h) = rd {
                a.cmov(c, h, src(d.rs))
            } else {
                a.mov(.rcx, rd)  // mov leaves the flags alone
                a.cmov(c, .rcx, src(d.rs))
                a.mov(rd, .rcx)
            }
        case .mfhi: a.mov(.rax, T.hi); a.mov(dst(d.rd), .rax)
        case .mflo: a.mov(.rax, T.lo); a.mov(dst(d.rd), .rax)
        case .mthi: a.mov(.rax, src(d.rs)); a.mov(T.hi, .rax)
        case .mtlo: a.mov(.rax, src(d.rs)); a.mov(T.lo, .rax)
        case .mult, .multu:
            a.mov(.rax, src(d.rs)); a.unary(d.op == .mult ? .imul : .mul, src(d.rt))
            a.mov(T.lo, .rax); a.mov(T.hi, .rdx)
        case .madd, .maddu, .msub, .msubu:
            a.mov(.rax, src(d.rs)); a.unary(d.op == .madd || d.op == .msub ? .imul : .mul, src(d.rt))
            let sub = d.op == .msub || d.op == .msubu
            a.alu(sub ? .sub : .add, T.lo, .rax)
            a.alu(sub ? .sbb : .adc, T.hi, .rdx)
        case .mul:
            a.mov(.rax, src(d.rs)); a.imul(.rax, src(d.rt)); a.mov(dst(d.rd), .rax)
        case .div:
            // As the interpreter: a zero divisor, or INT_MIN / -1, divides by 1.
            a.mov(.rax, src(d.rs)); a.mov(.rcx, src(d.rt))
            a.test(.rcx, .rcx); let zero = a.jcc(.e)
            a.alu(.cmp, .rcx, imm: 0xFFFF_FFFF); let ok1 = a.jcc(.ne)
            a.alu(.cmp, .rax, imm: 0x8000_0000); let ok2 = a.jcc(.ne)
            a.bind(zero); a.mov(.rcx, imm: 1)
            a.bind(ok1); a.bind(ok2)
            a.cdq(); a.unary(.idiv, .rcx)
            a.mov(T.lo, .rax); a.mov(T.hi, .rdx)
        case .divu:
            a.mov(.rax, src(d.rs)); a.mov(.rcx, src(d.rt))
            a.test(.rcx, .rcx); let ok = a.jcc(.ne)
            a.mov(.rcx, imm: 1)
            a.bind(ok)
            a.alu(.xor, .rdx, .rdx); a.unary(.div, .rcx)
            a.mov(T.lo, .rax); a.mov(T.hi, .rdx)
        case .clz, .clo:
            a.mov(.rax, src(d.rs))
            if d.op == .clo { a.unary(.not, .rax) }
            a.mov(.rdx, imm: 0xFFFF_FFFF)
            a.bsr(.rax, .rax); a.cmov(.e, .rax, .rdx)
            a.mov(.rcx, imm: 31); a.alu(.sub, .rcx, .rax); a.mov(dst(d.rd), .rcx)
        case .seb: a.movsx8(.rax, src(d.rt)); a.mov(dst(d.rd), .rax)
        case .seh: a.movsx16(.rax, src(d.rt)); a.mov(dst(d.rd), .rax)
        case .wsbh:
            a.mov(.rax, src(d.rt)); a.mov(.rcx, .rax)
            a.alu(.and, .rax, imm: 0xFF00_FF00); a.shift(.shr, .rax, imm: 8)
            a.alu(.and, .rcx, imm: 0x00FF_00FF); a.shift(.shl, .rcx, imm: 8)
            a.alu(.or, .rax, .rcx); a.mov(dst(d.rd), .rax)
        case .ext:
            a.mov(.rax, src(d.rs)); a.shift(.shr, .rax, imm: d.rt); a.alu(.and, .rax, imm: imm); a.mov(dst(d.rd), .rax)
        case .ins:
            let pos = UInt32(d.rt)
            let rd = dst(d.rd)
            a.mov(.rax, src(d.rs)); a.alu(.and, .rax, imm: imm); a.shift(.shl, .rax, imm: d.rt)
            a.mov(.rcx, rd); a.alu(.and, .rcx, imm: ~(imm << pos)); a.alu(.or, .rax, .rcx); a.mov(rd, .rax)

        // Branches and jumps (the instruction table says which, and how): the target goes to
        // state.target; the block ends after the delay slot.
        case _ where d.op.info.branch.kind != .none:
            branch(d, index: i, cur: cur)

        // Loads and stores through the software TLB; a miss exits before the instruction.
        case .lw, .lb, .lbu, .lh, .lhu:
            let align: UInt32 = d.op == .lw ? 3 : (d.op == .lh || d.op == .lhu) ? 1 : 0
            softTLB(d, index: i, align: align, write: false)
            let at = A.Operand.mem(A.Mem(base: .rax, disp: 0))
            let rd = dst(d.rd)
            let r = rd.register ?? .rax
            switch d.op {
            case .lw: a.mov(r, at)
            case .lb: a.movsx8(r, at)
            case .lbu: a.movzx8(r, at)
            case .lh: a.movsx16(r, at)
            default: a.movzx16(r, at)
            }
            if r == .rax { a.mov(rd, .rax) }
        case .sw, .sb, .sh:
            let align: UInt32 = d.op == .sw ? 3 : d.op == .sh ? 1 : 0
            softTLB(d, index: i, align: align, write: true)
            a.mov(.rdx, src(d.rt))
            let at = A.Mem(base: .rax, disp: 0)
            switch d.op {
            case .sw: a.mov(at, .rdx)
            case .sb: a.mov8(at, .rdx)
            default: a.mov16(at, .rdx)
            }
        case .lwl, .lwr:
            partialLoad(d, index: i, left: d.op == .lwl)
        case .swl, .swr:
            partialStore(d, index: i, left: d.op == .swl)
        case .sc:
            storeConditional(d, index: i)

        // Conditional traps: not taken, go on; taken, exit before the trap (the interpreter raises it).
        case .tge, .tgeu, .tlt, .tltu, .teq, .tne:
            compare(d.rs, d.rt)
            exitIf(T.trapCondition(d.op), before: i)
        case .tgei, .tgeiu, .tlti, .tltiu, .teqi, .tnei:
            a.alu(.cmp, src(d.rs), imm: imm)
            exitIf(T.trapCondition(d.op), before: i)
        default:
            preconditionFailure("JITOpRules lists \(d.op) but the translator has no code for it")
        }
        switch JITOpRules.flow(d.op) {
        case .branch, .branchLikely: delaySlots.insert(i + 1)
        default: break
        }
    }

    /// A plain `mfc0` or `mtc0` of the virtual CP0 (`InlineCP0`): while the gate is open and the
    /// virtual Status is in kernel mode with no interrupt deliverable (EXL or ERL set, or IE and
    /// KSU clear: the trap handler's direct path would emulate it and go on at the next
    /// instruction), the load or the masked store and its counter; else the call out (the trap).
    /// False (nothing emitted) when the register is not plain.
    private mutating func inlineCP0(_ d: DecodedInstruction, _ layout: InlineCP0Layout) -> Bool {
        let key = Int(d.imm & 0xFF), read = d.op == .mfc0
        let readOffset = layout.readOffsets[key], write = layout.writeFields[key]
        guard read ? readOffset >= 0 : write != nil else { return false }
        a.mov64(.rax, A.Mem(base: .rsi, disp: Int32(JITState.inlineCP0)))
        a.movzx16(.rdx, A.Mem(base: .rax, disp: Int32(InlineCP0.closedOffset)))  // closed or observed
        a.test(.rdx, .rdx)
        callOutIf(.ne)
        a.mov64(.rcx, A.Mem(base: .rax, disp: Int32(InlineCP0.cp0Offset)))
        a.mov(.rdx, A.Mem(base: .rcx, disp: layout.statusOffset))
        a.alu(.and, .rdx, imm: StatusBits.ie | StatusBits.exl | StatusBits.erl | StatusBits.ksuMask)
        let quiet = a.jcc(.e)  // kernel mode, interrupts off
        a.alu(.and, .rdx, imm: StatusBits.exl | StatusBits.erl)
        callOutIf(.e)  // neither EXL nor ERL: user or supervisor mode, or interrupts on
        a.bind(quiet)
        if read {
            a.mov(.rdx, A.Mem(base: .rcx, disp: readOffset))
            if d.rd != 0 && d.rd < 32 { a.mov(dst(d.rd), .rdx) }
            a.alu(.add, A.Mem(base: .rax, disp: Int32(InlineCP0.readsOffset)), imm: 1)
        } else if let w = write {
            a.alu(.add, A.Mem(base: .rax, disp: Int32(InlineCP0.writesOffset)), imm: 1)
            let field = A.Mem(base: .rcx, disp: w.offset)
            a.mov(.rax, src(d.rt))
            if w.take != 0xFFFF_FFFF { a.alu(.and, .rax, imm: w.take) }
            if w.keep != 0 {
                a.mov(.rdx, field)
                a.alu(.and, .rdx, imm: w.keep)
                a.alu(.or, .rax, .rdx)
            }
            a.mov(field, .rax)
        }
        return true
    }

    /// rd = rs OP rt. $zero operands become moves (`move` is `addu/or rd, rs, $zero`); a
    /// cached rd is computed in place when that does not clobber rt.
    private mutating func binary(_ op: A.ALU, _ d: DecodedInstruction) {
        let identity = op == .add || op == .sub || op == .or || op == .xor
        if identity && d.rt == 0 { return move(d.rd, from: d.rs) }
        if identity && op != .sub && d.rs == 0 { return move(d.rd, from: d.rt) }
        let rs = src(d.rs), rt = src(d.rt), rd = dst(d.rd)
        if case .reg(let h) = rd {
            if rd == rs || rd != rt {
                if rd != rs { a.mov(h, rs) }
                return a.alu(op, h, rt)
            }
            if op != .sub { return a.alu(op, h, rs) }  // rd = rt: the operation commutes
        }
        a.mov(.rax, rs)
        a.alu(op, .rax, rt)
        a.mov(rd, .rax)
    }

    /// Where an operation on `rd` in place can happen: rd itself when cached (after copying
    /// `from` into it), else rax (loaded from `from`; the caller stores it to rd).
    private mutating func inPlace(_ rd: A.Operand, from: A.Operand) -> A.Operand {
        if case .reg(let h) = rd {
            if rd != from { a.mov(h, from) }
            return rd
        }
        a.mov(.rax, from)
        return .reg(.rax)
    }

    /// rd = condition ? 1 : 0 (from the flags), straight into rd when it is cached.
    private mutating func setFlag(_ c: A.Cond, _ rd: UInt8) {
        a.set(c, .rcx)
        let r = dst(rd)
        if case .reg(let h) = r { return a.movzx8(h, .reg(.rcx)) }
        a.movzx8(.rcx, .reg(.rcx))
        a.mov(r, .rcx)
    }

    /// Sets the flags as `cmp rs, rt` (rs through rax unless it is cached).
    private mutating func compare(_ rs: UInt8, _ rt: UInt8) {
        if rt == 0 {  // against $zero: test a cached register, or compare memory with 0
            let s = src(rs)
            if case .reg(let h) = s { return a.test(s, h) }
            return a.alu(.cmp, s, imm: 0)
        }
        let s = src(rs), t = src(rt)
        if case .reg(let h) = s { return a.alu(.cmp, h, t) }
        a.mov(.rax, s)
        a.alu(.cmp, .rax, t)
    }

    /// rd = rs OP imm (imm already extended as the instruction wants).
    private mutating func immediate(_ op: A.ALU, _ d: DecodedInstruction) {
        if d.rs == 0 && (op == .add || op == .or || op == .xor) { return a.mov(dst(d.rd), imm: d.imm) }
        if d.imm == 0 && op != .and { return move(d.rd, from: d.rs) }
        let rs = src(d.rs), rd = dst(d.rd)
        if case .reg(let h) = rd {
            if rd != rs { a.mov(h, rs) }
            a.alu(op, .reg(h), imm: d.imm)
            return
        }
        a.mov(.rax, rs)
        a.alu(op, .rax, imm: d.imm)
        a.mov(rd, .rax)
    }

    /// rd = rs (nothing when they are the same register; an immediate 0 from $zero).
    private mutating func move(_ rd: UInt8, from rs: UInt8) {
        if rd == rs { return }
        if rs == 0 { return a.mov(dst(rd), imm: 0) }
        let s = src(rs), t = dst(rd)
        if case .reg(let h) = t { return a.mov(h, s) }
        if case .reg(let h) = s { return a.mov(t, h) }
        a.mov(.rax, s)
        a.mov(t, .rax)
    }

    /// state.target = condition ? taken target : the instruction after the delay slot.
    private mutating func branchTarget(_ c: A.Cond, cur: UInt32, imm: UInt32) {
        a.mov(.rcx, imm: cur &+ 8)
        a.mov(.rdx, imm: cur &+ 4 &+ imm)
        a.cmov(c, .rcx, .rdx)
        a.mov(JITTranslator.target, .rcx)
    }

    /// A branch or jump, from its entry in the instruction table: the condition it tests, how
    /// it finds its target, whether a not-taken branch nullifies its slot (likely) and whether
    /// it links (the decoder names the link register in rd: 31, jalr's rd, or the sink).
    private mutating func branch(_ d: DecodedInstruction, index i: Int, cur: UInt32) {
        typealias T = JITTranslator
        let b = d.op.info.branch
        let link = { (t: inout JITTranslator) in if b.links { t.a.mov(t.dst(d.rd), imm: cur &+ 8) } }
        switch b.kind {
        case .none:
            preconditionFailure("not a branch")
        case .jump:
            a.mov(T.target, imm: d.takenTarget(at: cur)!)
            link(&self)
        case .jumpRegister:
            a.mov(.rax, src(d.rs)); a.mov(T.target, .rax)  // rs is read before the link is written
            link(&self)
        case .conditional, .conditionalLikely:
            let c: A.Cond
            switch b.condition {
            case .always: c = .e; compare(0, 0)
            case .eq: c = .e; compare(d.rs, d.rt)
            case .ne: c = .ne; compare(d.rs, d.rt)
            case .lez: c = .le; compare(d.rs, 0)
            case .gtz: c = .g; compare(d.rs, 0)
            case .ltz: c = .l; compare(d.rs, 0)
            case .gez: c = .ge; compare(d.rs, 0)
            }
            // mov does not change the flags: the link is written whatever the outcome.
            link(&self)
            if b.kind == .conditionalLikely {
                nullified.append((index: i, fixup: a.jcc(c.inverted)))
                a.mov(T.target, imm: d.takenTarget(at: cur)!)
            } else {
                branchTarget(c, cur: cur, imm: d.imm)
            }
        }
    }

    /// The condition under which a conditional trap is taken (after `cmp rs, rt/imm`).
    private static func trapCondition(_ op: Op) -> A.Cond {
        switch op {
        case .tge, .tgei: return .ge
        case .tgeu, .tgeiu: return .ae
        case .tlt, .tlti: return .l
        case .tltu, .tltiu: return .b
        case .teq, .teqi: return .e
        default: return .ne
        }
    }

    /// Leaves in rax the virtual address `rs + imm` and in rcx its software-TLB entry (the
    /// read half, or the write half 4 KiB further), then compares the address, masked with
    /// `mask`, with the entry's tag: a mismatch (miss, unaligned, watched, device, code page)
    /// exits before instruction `index`.
    private mutating func lookUp(_ d: DecodedInstruction, index: Int, mask: UInt32, write: Bool) -> Int32 {
        let half: Int32 = write ? 256 * Int32(MemoryLayout<SoftTLBEntry>.stride) : 0
        let rs = src(d.rs)
        if case .reg(let h) = rs, d.imm != 0 {
            a.lea(.rax, A.Mem(base: h, disp: Int32(bitPattern: d.imm)))
        } else {
            a.mov(.rax, rs)
            if d.imm != 0 { a.alu(.add, .rax, imm: d.imm) }
        }
        a.mov(.rcx, .rax)
        a.shift(.shr, .rcx, imm: 8)
        a.alu(.and, .rcx, imm: 0xFF0)  // ((va >> 12) & 255) * 16
        a.alu64(.add, .rcx, A.Mem(base: .rsi, disp: Int32(JITState.softTLB)))
        a.mov(.rdx, .rax)
        a.alu(.and, .rdx, imm: mask)
        a.alu(.cmp, .rdx, A.Mem(base: .rcx, disp: half + Int32(JITState.tagOffset)))
        callOutIf(.ne)
        return half + Int32(JITState.addendOffset)
    }

    /// Leaves in rax the host address of `rs + imm` (as the interpreter's fast path computes
    /// it), or exits before instruction `index` on a tag mismatch.
    private mutating func softTLB(_ d: DecodedInstruction, index: Int, align: UInt32, write: Bool) {
        let addend = lookUp(d, index: index, mask: 0xFFFF_F000 | align, write: write)
        a.alu64(.add, .rax, A.Mem(base: .rcx, disp: addend))
    }

    /// Leaves in rax the host address of the aligned word holding `rs + imm` and in edx that
    /// address's byte offset times 8 (0, 8, 16, 24), or exits before instruction `index` when
    /// the page misses the software TLB (the interpreter looks the unaligned address up with
    /// no alignment bits in the tag).
    private mutating func wordTLB(_ d: DecodedInstruction, index: Int, write: Bool) {
        let addend = lookUp(d, index: index, mask: 0xFFFF_F000, write: write)
        a.mov(.rdx, .rax)
        a.alu(.and, .rax, imm: 0xFFFF_FFFC)  // 32-bit: the upper half is cleared
        a.alu64(.add, .rax, A.Mem(base: .rcx, disp: addend))
        a.alu(.and, .rdx, imm: 3)
        a.shift(.shl, .rdx, imm: 3)
    }

    /// LWL/LWR: the interpreter's merge of the aligned word into rt (rd = rt, read and written).
    /// LWL: rt = w << (24 - b) | rt & ((1 << (24 - b)) - 1); LWR: rt = w >> b | rt & ~(~0 >> b).
    private mutating func partialLoad(_ d: DecodedInstruction, index: Int, left: Bool) {
        wordTLB(d, index: index, write: false)
        a.mov(.rax, A.Mem(base: .rax, disp: 0))
        if left {
            a.mov(.rcx, imm: 24); a.alu(.sub, .rcx, .rdx)  // cl = 24 - b
            a.shiftByCL(.shl, .rax)
            a.mov(.rdx, imm: 1); a.shiftByCL(.shl, .rdx); a.alu(.sub, .rdx, imm: 1)
        } else {
            a.mov(.rcx, .rdx)  // cl = b
            a.shiftByCL(.shr, .rax)
            a.mov(.rdx, imm: 0xFFFF_FFFF); a.shiftByCL(.shr, .rdx); a.unary(.not, .rdx)
        }
        let rd = dst(d.rd)
        a.alu(.and, .rdx, rd)
        a.alu(.or, .rax, .rdx)
        a.mov(rd, .rax)
    }

    /// SC, as the interpreter decides it: it stores rt and sets rt to 1 when LLbit is set, the
    /// address is the LL's and the word still holds what the LL loaded; else rt = 0. LLbit is
    /// cleared either way. An unaligned address or a page the write half of the software TLB
    /// does not map exits before the SC (the interpreter raises the address error or walks the
    /// TLB); so does any other miss, whatever LLbit says: the interpreter decides from scratch.
    private mutating func storeConditional(_ d: DecodedInstruction, index: Int) {
        let addend = lookUp(d, index: index, mask: 0xFFFF_F003, write: true)
        let st = { (field: Int) in A.Mem(base: .rsi, disp: Int32(field)) }
        a.alu(.xor, .rdx, .rdx)  // rt's new value
        a.alu8(.cmp, st(JITState.llBit), imm: 0)
        let unlinked = a.jcc(.e)
        a.alu(.cmp, .rax, st(JITState.llVirtual))
        let elsewhere = a.jcc(.ne)
        a.alu64(.add, .rax, A.Mem(base: .rcx, disp: addend))
        a.mov(.rcx, A.Mem(base: .rax, disp: 0))
        a.alu(.cmp, .rcx, st(JITState.llValue))
        let changed = a.jcc(.ne)
        a.mov(.rcx, src(d.rt))
        a.mov(A.Mem(base: .rax, disp: 0), .rcx)
        a.mov(.rdx, imm: 1)
        a.bind(unlinked); a.bind(elsewhere); a.bind(changed)
        a.mov8(st(JITState.llBit), imm: 0)
        a.mov(dst(d.rd), .rdx)
    }

    /// SWL/SWR: the interpreter merges rt into the aligned word and stores it; on the fast path
    /// (the write half of the software TLB maps the page) that is a read-modify-write of the word.
    /// SWL: w = w & ~(~0 >> (24 - b)) | rt >> (24 - b); SWR: w = w & ((1 << b) - 1) | rt << b.
    private mutating func partialStore(_ d: DecodedInstruction, index: Int, left: Bool) {
        wordTLB(d, index: index, write: true)
        // rax = host address, edx = b: the kept bits of the word go back first, then rt's bits
        // are or-ed in (three scratch registers are all there are; the word is ordinary RAM).
        let word = A.Mem(base: .rax, disp: 0)
        if left {
            a.mov(.rcx, imm: 24); a.alu(.sub, .rcx, .rdx)  // cl = 24 - b
            a.mov(.rdx, imm: 0xFFFF_FFFF); a.shiftByCL(.shr, .rdx); a.unary(.not, .rdx)
        } else {
            a.mov(.rcx, .rdx)  // cl = b
            a.mov(.rdx, imm: 1); a.shiftByCL(.shl, .rdx); a.alu(.sub, .rdx, imm: 1)
        }
        a.alu(.and, .rdx, word)
        a.mov(word, .rdx)
        a.mov(.rdx, src(d.rt))
        a.shiftByCL(left ? .shr : .shl, .rdx)
        a.alu(.or, word, .rdx)
    }
}
