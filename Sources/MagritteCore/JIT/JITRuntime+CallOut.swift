/// Calling the interpreter's code from inside a translated block (`Docs/jit.md`, "Calling out").
///
/// A load or store the inline software TLB does not serve (a miss, a device, a watched page,
/// an unaligned address) and the instructions the translator leaves to the interpreter but that
/// usually complete quietly (`JITOpRules.calledOut`: the CP0 instructions, LL, RDHWR, CACHE)
/// call `JIT.callOut` from the block: it runs the interpreter's code for that one instruction
/// with the CPU as the interpreter would have it there (guest registers stored back, HI/LO and
/// the LL state copied in, the time published for `currentCycles`), and the block goes on when
/// the instruction completed and nothing the run loop must see happened. Otherwise the block
/// returns right after the instruction (which used its slot, as in the interpreter):
///
/// - an exception (or ERET) moved pc: the block returns with the CPU's pc, npc and delay flag —
///   but a trap a handler (the VMM) emulated, leaving the CPU at the next instruction and
///   nothing else for the run loop to do, goes on in the block (`CPU.enterException`);
/// - `batchBreak` or a stop request (a device raised a line or asked for the exact time, an
///   observer stopped, a CP0 write changed interrupt or mode state): the batch ends there, as the
///   interpreter's does after such an instruction;
/// - the interpreter's fetch check was dropped (a TLB or ASID change), the block's page left the
///   fetch TLB (a TLB write covering it), or a frame with translated code was written: the block
///   may no longer be what the interpreter would run next.

extension JITState {
    /// The CPU (unretained) and `JIT.callOut`, for the generated code's call.
    static let cpu = 96
    static let callOut = 104
    /// `cycles` plus the batch slots used before the block the loop entered.
    static let batchBase = 112
    /// Why the last call out ended the block (`JITReturnReason`, 0 when none did).
    static let callOutReason = 120
    /// `JITStatistics.invalidations` (low 32 bits), where a call out reads it without ARC.
    static let invalidations = 124
    /// `JIT.refillLookup`, which the lookup stub calls when it misses.
    static let refillLookup = 128
    /// The CPU's `InlineCP0` block (`InlineCP0.closedBlock` without one).
    static let inlineCP0 = 136
}

extension JIT {
    /// `(state, decoded instruction, pc | 1 when a delay slot, block start) -> 0 to go on in the
    /// block, else the instructions the block completed (the call-out's included), with
    /// `toLookup` when the block goes on at the new pc through the lookup`.
    typealias CallOut = @convention(c) (UnsafeMutableRawPointer, UInt64, UInt32, UInt32) -> UInt32

    /// A call out's result with this bit: the block goes on at state.pc through the lookup, the
    /// low bits being the instructions it completed (the call out's included).
    static let toLookup: UInt32 = 0x8000_0000

    static let callOut: CallOut = { state, bits, pcAndDelay, start in
        // No retain and release of the CPU: with weak references to it (the board's devices
        // hold some) its reference count lives in a side table, and each costs a slow path.
        Unmanaged<CPU>.fromOpaque(state.load(fromByteOffset: JITState.cpu, as: UnsafeRawPointer.self))
            ._withUnsafeGuaranteedRef {
                $0.callOut(state, unsafeBitCast(bits, to: DecodedInstruction.self), pc: pcAndDelay & ~3,
                           delay: pcAndDelay & 1 != 0, start: start)
            }
    }

    /// Points the state at `cpu` and the call-out (once, when the JIT is made).
    func attach(to cpu: CPU) {
        state.storeBytes(of: UnsafeRawPointer(Unmanaged.passUnretained(cpu).toOpaque()), toByteOffset: JITState.cpu,
                         as: UnsafeRawPointer.self)
        state.storeBytes(of: unsafeBitCast(JIT.callOut, to: UnsafeRawPointer.self), toByteOffset: JITState.callOut,
                         as: UnsafeRawPointer.self)
        state.storeBytes(of: unsafeBitCast(JIT.refillLookup, to: UnsafeRawPointer.self), toByteOffset: JITState.refillLookup,
                         as: UnsafeRawPointer.self)
        state.storeBytes(of: cpu.inlineCP0Gate?.block ?? InlineCP0.closedBlock, toByteOffset: JITState.inlineCP0, as: UnsafeMutableRawPointer.self)
    }
}

extension CPU {
    /// Runs instruction `d` at `pc` for a block that started at `start` (see the file's comment).
    @inline(never)
    func callOut(_ st: UnsafeMutableRawPointer, _ d: DecodedInstruction, pc: UInt32, delay: Bool, start: UInt32) -> UInt32 {
        foldInlineCP0(state: st)  // what the block emulated before, counted before anything else runs
        let index = (pc &- start) >> 2
        hi = st.load(fromByteOffset: JITState.hi, as: UInt32.self)
        lo = st.load(fromByteOffset: JITState.lo, as: UInt32.self)
        llBit = st.load(fromByteOffset: JITState.llBit, as: UInt8.self) != 0
        llVirtual = st.load(fromByteOffset: JITState.llVirtual, as: UInt32.self)
        llValue = st.load(fromByteOffset: JITState.llValue, as: UInt32.self)
        // The time as in an interpreter step there: this instruction's slot counts as used.
        let before = UInt64(st.load(fromByteOffset: JITState.accumulated, as: UInt32.self)) &+ UInt64(index)
        inBatch = true
        batchStart = st.load(fromByteOffset: JITState.batchBase, as: UInt64.self) &+ before
        // What the batch has left after this slot (the block was entered with `left` for all
        // of it): room a trap handler may charge the slots it emulated to (`chargeEmulated`).
        let left = st.load(fromByteOffset: JITState.left, as: UInt32.self)
        let room = left > index ? left &- index &- 1 : 0
        batchBudget = 1 &+ UInt64(room)
        batchRemaining = UInt64(room)
        let tag = codeTag
        let modeBefore = mode
        let cyclesBefore = cycles
        let invalidations = st.load(fromByteOffset: JITState.invalidations, as: UInt32.self)
        let completed: Bool
        switch d.op {
        case .lw, .lb, .lbu, .lh, .lhu:
            completed = callOutLoad(d, pc: pc, delay: delay)
        case .sw, .sb, .sh:
            let size: UInt32 = d.op == .sw ? 4 : d.op == .sh ? 2 : 1
            completed = slowStore(regs[Int(d.rs)] &+ d.imm, size: size, value: regs[Int(d.rt)], pc: pc, delay: delay)
        default:
            completed = executeRare(d, pc: pc, delay: delay)
        }
        inBatch = false
        // Slots charged by the handler count as completed by the chain before this block; the
        // rest of the block must still fit in what is left (else it ends after the instruction).
        let charged = room &- UInt32(truncatingIfNeeded: batchRemaining)
        var fits = true
        if charged != 0 {
            let accumulated = st.load(fromByteOffset: JITState.accumulated, as: UInt32.self)
            st.storeBytes(of: accumulated &+ charged, toByteOffset: JITState.accumulated, as: UInt32.self)
            st.storeBytes(of: left &- charged, toByteOffset: JITState.left, as: UInt32.self)
            fits = left &- charged >= UInt32(JITTranslator.maxInstructions)
        }
        st.storeBytes(of: hi, toByteOffset: JITState.hi, as: UInt32.self)
        st.storeBytes(of: lo, toByteOffset: JITState.lo, as: UInt32.self)
        st.storeBytes(of: llBit ? 1 : 0, toByteOffset: JITState.llBit, as: UInt8.self)
        st.storeBytes(of: llVirtual, toByteOffset: JITState.llVirtual, as: UInt32.self)
        st.storeBytes(of: llValue, toByteOffset: JITState.llValue, as: UInt32.self)
        // The block's own page may be another than the loop's (`codeTag`: blocks chain through
        // the lookup into other pages), so its entry in the fetch TLB, which TLB writes drop
        // for the pages they cover, says whether it still maps as when the block was entered.
        let page = pc & 0xFFFF_F000
        let fetch = st.load(fromByteOffset: JITState.fetchTLB, as: UnsafeMutablePointer<SoftTLBEntry>.self)
        let remapped = codeTag != tag || fetch[Int(page >> 12) & (JIT.fetchPages - 1)].tag != page
            || st.load(fromByteOffset: JITState.invalidations, as: UInt32.self) != invalidations
        // A trap a handler emulated, leaving the CPU at the next instruction with nothing for the
        // run loop to do (`enterException` then leaves `batchBreak` clear), goes on as if the
        // instruction had completed (its slot counted as faulted, as in the interpreter).
        let goesOn = completed || (!batchBreak && !delay && self.pc == pc &+ 4)
        if goesOn && !stopRequested && !remapped && fits
            && (!batchBreak || (mode == modeBefore && endsBatchInPlace(st, index: index, cyclesBefore: cyclesBefore))) {
            if !completed { noteTrapGoneOn() }
            return 0
        }
        // The instruction moved pc (an exception, an ERET): on to the new pc through the lookup
        // (`JITLookup`, which checks the new mode's fetch TLB), when the run loop would only
        // have started the next batch there.
        if !goesOn && !stopRequested && !inDelaySlot && self.npc == self.pc &+ 4
            && (!batchBreak || endsBatchInPlace(st, index: index, cyclesBefore: cyclesBefore)) {
            jit?.statistics.exceptionsGoneOn &+= 1
            st.storeBytes(of: self.pc, toByteOffset: JITState.pc, as: UInt32.self)
            st.storeBytes(of: currentSoftTLB, toByteOffset: JITState.softTLB, as: UnsafeMutablePointer<SoftTLBEntry>.self)
            if let jit {
                st.storeBytes(of: jit.fetchTLB + Int(mode.rawValue) &* JIT.fetchPages, toByteOffset: JITState.fetchTLB,
                              as: UnsafeMutablePointer<SoftTLBEntry>.self)
            }
            return JIT.toLookup | (index &+ 1)
        }
        // The block ends after the instruction.
        let reason: Int
        if goesOn {
            reason = batchBreak || stopRequested || !fits ? JITReturnReason.callOutBatchEnd : JITReturnReason.callOutRemapped
            let next = delay ? st.load(fromByteOffset: JITState.target, as: UInt32.self) : pc &+ 4
            st.storeBytes(of: next, toByteOffset: JITState.pc, as: UInt32.self)
            st.storeBytes(of: next &+ 4, toByteOffset: JITState.npc, as: UInt32.self)
            st.storeBytes(of: 0, toByteOffset: JITState.delay, as: UInt8.self)
        } else {
            reason = JITReturnReason.callOutException
            st.storeBytes(of: self.pc, toByteOffset: JITState.pc, as: UInt32.self)
            st.storeBytes(of: self.npc, toByteOffset: JITState.npc, as: UInt32.self)
            st.storeBytes(of: self.inDelaySlot ? 1 : 0, toByteOffset: JITState.delay, as: UInt8.self)
        }
        st.storeBytes(of: 0, toByteOffset: JITState.interpreterNext, as: UInt8.self)
        st.storeBytes(of: UInt32(reason) &+ UInt32(d.op.rawValue), toByteOffset: JITState.callOutReason, as: UInt32.self)
        return index &+ 1
    }

    @inline(never)
    private func noteTrapGoneOn() { jit?.statistics.trapsGoneOn &+= 1 }

    /// After the instruction at `index` of the block ended the batch (`batchBreak`): when the
    /// run loop would do nothing but start the next batch — no stop, not waiting, no interrupt
    /// to take, the same timer, time and observation, room left — does that batch end here
    /// (`cycles` moves on by the batch's slots so far, `batchBreak` clears) and returns true: the
    /// next batch's bound is what is left of this one, so the block may go on.
    @inline(never)
    func endsBatchInPlace(_ st: UnsafeMutableRawPointer, index: UInt32, cyclesBefore: UInt64) -> Bool {
        guard let jit, !stopRequested, !waiting, !observesInstructions, cycles == cyclesBefore,
              nextTimerCycle == jit.batchTimer, observedPCs.isEmpty != jit.batchObserving, !interruptPending,
              st.load(fromByteOffset: JITState.left, as: UInt32.self) > index &+ 1 else { return false }
        let used = st.load(fromByteOffset: JITState.batchBase, as: UInt64.self) &- cycles
            &+ UInt64(st.load(fromByteOffset: JITState.accumulated, as: UInt32.self)) &+ UInt64(index) &+ 1
        cycles &+= used
        jit.movedCycles &+= used
        batchBreak = false
        jit.statistics.batchEndsInPlace &+= 1
        return true
    }

    /// LB/LBU/LH/LHU/LW through the interpreter's slow path (the inline TLB missed).
    @inline(__always)
    private func callOutLoad(_ d: DecodedInstruction, pc: UInt32, delay: Bool) -> Bool {
        let size: UInt32 = d.op == .lw ? 4 : d.op == .lh || d.op == .lhu ? 2 : 1
        guard var v = slowLoad(regs[Int(d.rs)] &+ d.imm, size: size, pc: pc, delay: delay) else { return false }
        if d.op == .lb { v = UInt32(bitPattern: Int32(Int8(truncatingIfNeeded: v))) }
        if d.op == .lh { v = UInt32(bitPattern: Int32(Int16(truncatingIfNeeded: v))) }
        regs[Int(d.rd)] = v
        return true
    }
}
