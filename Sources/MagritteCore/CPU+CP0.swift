/// Exception entry, CP0 reads and writes, and the TLB instructions.
extension CPU {
    // MARK: Exceptions

    /// Takes exception `code` for the instruction at `pc`: the one place where EPC, Cause,
    /// BadVAddr and Status.EXL change on an exception, as the MIPS32 manual's pseudocode says.
    public func enterException(
        _ code: ExceptionCode, pc: UInt32, inDelaySlot: Bool, badVAddr: UInt32? = nil,
        refill: Bool = false, coprocessor: UInt32 = 0, translationFault: Bool = false, usesSlot: Bool = true
    ) {
        exceptionCountStorage[Int(code.rawValue)] &+= 1
        if code != .interrupt && usesSlot { faultedInstructions &+= 1 }
        let trap = Trap(code: code, pc: pc, inDelaySlot: inDelaySlot, badVAddr: badVAddr, isRefill: refill,
                        coprocessor: coprocessor, isTranslationFault: translationFault)
        if hasTrapHandler {
            let before = TrapContext(self)
            let wasBreak = batchBreak
            batchBreak = false
            if let observer { notify(observer.cpu(self, didTakeException: trap)) }
            let restart = trap.restartPC
            self.pc = restart
            self.npc = restart &+ 4
            self.inDelaySlot = false
            trapHandlerType.unsafelyUnwrapped.handleTrap(unretained: trapHandlerAddress.unsafelyUnwrapped, trap, cpu: self)
            // The batch goes on in place (`Docs/jit.md`, "Handled traps") only when nothing the
            // run loop looks at changed: at the next instruction, or where the handler moved the
            // CPU (past instructions it emulated in the same exit), not in a delay slot.
            if wasBreak || batchBreak || !usesSlot || code == .interrupt || trap.inDelaySlot || !before.goesOn(self) {
                batchBreak = true
            }
            return
        }
        // EntryHi changes only in VPN2 (the ASID is kept): the software TLB stays valid.
        jump(to: cp0.enterException(trap))
        if let observer { notify(observer.cpu(self, didTakeException: trap)) }
        statusChanged(pc: pc, cause: .exception(code))
    }

    /// The trap handler's direct path (`TrapHandler.emulatePrivileged`) for an instruction that
    /// would raise an exception the handler answers without looking at the CPU's state around
    /// it — a privileged `mfc0`, `mtc0`, `di`, `ei`, `eret` or `cache` (Coprocessor Unusable), a
    /// `syscall` or `break` — not in a delay slot, where no observer is told of exceptions:
    /// counted as the exception (`exceptionCounts`, a faulted slot) before the handler runs, as
    /// `enterException` does. Nil (nothing counted) when there is no handler or it declines: the
    /// caller raises the exception.
    @inline(__always)
    func emulatePrivileged(_ d: DecodedInstruction, pc: UInt32, delay: Bool) -> Bool? {
        guard hasTrapHandler, !delay, observer == nil else { return nil }
        let code: ExceptionCode
        switch d.op {
        case .mfc0, .mtc0, .di, .ei, .eret, .cache: code = .coprocessorUnusable
        case .syscall: code = .syscall
        case .break: code = .breakpoint
        default: return nil
        }
        let counted = exceptionCountStorage + Int(code.rawValue)
        counted.pointee &+= 1
        faultedInstructions &+= 1
        guard let done = trapHandlerType.unsafelyUnwrapped.emulatePrivileged(unretained: trapHandlerAddress.unsafelyUnwrapped, d, pc: pc,
                                                                             cpu: self) else {
            counted.pointee &-= 1
            faultedInstructions &-= 1
            return nil
        }
        if !done { batchBreak = true }
        return done
    }

    /// What the run loop looks at between batches, before a trap handler runs: after it, the
    /// batch may go on in place only if none of it changed (the loop would do nothing but start
    /// the next batch at the next instruction).
    struct TrapContext {
        let status: UInt32, cause: UInt32, asid: UInt32, codeTag: UInt32
        let cycles: UInt64, nextTimerCycle: UInt64
        let observesInstructions: Bool

        @inline(__always)
        init(_ cpu: CPU) {
            status = cpu.cp0.status
            cause = cpu.cause
            asid = cpu.cp0.entryHi & 0xFF
            codeTag = cpu.codeTag
            cycles = cpu.cycles
            nextTimerCycle = cpu.nextTimerCycle
            observesInstructions = cpu.observesInstructions
        }

        /// Whether the CPU goes on in sequence (not in a delay slot) with no stop asked, no
        /// Status, Cause, ASID, fetch page, time, timer or observation change, not waiting and no
        /// interrupt to take: the run loop would only start the next batch at its pc. (A TLB,
        /// segment or mode change drops the fetch page; an observer, a device line or `endBatch`
        /// set `batchBreak`, which the caller checks.)
        @inline(__always)
        func goesOn(_ cpu: CPU) -> Bool {
            cpu.npc == cpu.pc &+ 4 && !cpu.inDelaySlot && !cpu.stopRequested && !cpu.waiting
                && cpu.codeTag == codeTag && cpu.cp0.status == status && cpu.cause == cause && cpu.cp0.entryHi & 0xFF == asid
                && cpu.cycles == cycles && cpu.nextTimerCycle == nextTimerCycle
                && cpu.observesInstructions == observesInstructions && !cpu.interruptPending
        }
    }

    /// For a trap handler that ran `slots` more instruction slots of the program on the CPU's
    /// behalf (a VMM emulating the instructions after a trapping one in the same exit), `faulted`
    /// of which would have raised an exception: the time and the counts (`cycles`,
    /// `retiredInstructions`, `executedInstructions`) advance as if the CPU had run them. The
    /// budget of the `run` in progress does not know of them: a handler that must end the run at
    /// a given slot asks it to stop (`requestStop`).
    public func accountEmulated(slots: UInt64, faulted: UInt64) {
        cycles &+= slots
        if inBatch { batchStart &+= slots }  // `currentCycles` inside the batch
        faultedInstructions &+= faulted
    }

    /// As `accountEmulated`, but the slots are charged to the `run` in progress when what is
    /// left of its batch has room for them: the batch counts them as used (its loop and a
    /// translated block take the lowered budget back after the handler), so the run ends at the
    /// same slot as if the CPU had run them, and need not stop. Returns false when there was no
    /// room: the slots were accounted as by `accountEmulated`, and a handler that must end the
    /// run at a given slot asks it to stop.
    public func chargeEmulated(slots: UInt64, faulted: UInt64) -> Bool {
        guard inBatch, slots <= batchRemaining else {
            accountEmulated(slots: slots, faulted: faulted)
            return false
        }
        batchRemaining &-= slots  // `currentCycles` moves on by them
        faultedInstructions &+= faulted
        return true
    }

    /// For a trap handler that answered the exception of the instruction that trapped without
    /// the program seeing it, and lets it run again (a VMM filling its own TLB from a mapping the
    /// program already has): the slot the exception used is given back, so the time and the
    /// executed count are as if the instruction had not been tried (`retiredInstructions` does
    /// not change). The budget of the `run` in progress counted the slot: a handler that must
    /// reach a given slot runs again for the rest.
    public func refundFaultedSlot() {
        cycles &-= 1
        if inBatch { batchStart &-= 1 }
        faultedInstructions &-= 1
    }

    /// The instruction word at `pc` when it lies in the page the CPU fetches from now, or in a
    /// code page the translator's fetch TLB maps now (a block entered through the lookup runs
    /// in another page than the loop's): what a trap handler reads of the instruction that
    /// trapped, without a translation. Nil otherwise.
    public func codeWord(at pc: UInt32) -> UInt32? {
        guard pc & 3 == 0, let page = codePage(containing: pc) else { return nil }
        return page[Int((pc >> 2) & 1023)]
    }

    /// The words of the page holding `pc` as the CPU fetches them now (see `codeWord`), nil
    /// when it is neither the loop's fetch page nor one the translator's fetch TLB maps.
    public func codePage(containing pc: UInt32) -> UnsafePointer<UInt32>? {
        let page = pc & 0xFFFF_F000
        if page == codeTag & 0xFFFF_F000 && codeTag & 3 == 0 { return UnsafePointer(codeHost) }
        guard let jit else { return nil }
        let e = jit.fetchTLB[Int(mode.rawValue) &* JIT.fetchPages + Int(pc >> 12) & (JIT.fetchPages - 1)]  // the current mode's
        guard e.tag == page else { return nil }
        return UnsafePointer(bitPattern: e.addend &+ UInt(page))
    }

    /// The host address of `va` when the CPU's software TLB maps it now for a load (or a store:
    /// only pages without decoded code or watches get such an entry): where its own fast path
    /// would reach RAM, without a translation or an exception. Nil otherwise (its slow path).
    public func mappedHostAddress(_ va: UInt32, store: Bool) -> UnsafeMutableRawPointer? {
        let e = currentSoftTLB[(store ? 256 : 0) + Int((va >> 12) & 255)]
        guard e.tag == va & 0xFFFF_F000 else { return nil }
        return UnsafeMutableRawPointer(bitPattern: e.addend &+ UInt(va))
    }

    /// Whether the CPU keeps decoded (or translated) instructions of machine frame `frame`: a
    /// store there must go through the CPU, which forgets them (a trap handler emulating a store).
    public func holdsCode(frame: UInt32) -> Bool {
        Int(frame) < CPU.physicalFrames && decodedPages[Int(frame)] != nil
    }

    /// ERET: return from exception (or error) level; clears the LL bit. No delay slot.
    func executeEret(pc eretPC: UInt32) {
        jump(to: cp0.returnFromException().target)
        llBit = false
        statusChanged(pc: eretPC, cause: .eret)
    }

    // MARK: CP0 register access

    /// What this CPU's CP0 looks like (TLB size, segmentation control, PRId).
    var cp0Shape: CP0Shape {
        CP0Shape(tlbEntries: configuration.tlbEntries, segmentationControl: configuration.segmentationControl,
                 processorID: configuration.processorID)
    }

    /// Reads CP0 register (`reg`, `sel`) as MFC0 does at cycle `now`. Unimplemented registers read 0.
    public func readCP0(_ reg: Int, _ sel: Int) -> UInt32 { readCP0(reg, sel, now: cycles) }

    /// Reads a CP0 register by name (`CP0Register.status`…).
    public func readCP0(_ r: CP0Register) -> UInt32 { readCP0(r.number, r.select) }

    func readCP0(_ reg: Int, _ sel: Int, now: UInt64) -> UInt32 {
        switch (reg, sel) {
        case (1, 0): return randomAt(now)
        case (9, 0): return countAt(now)
        case (13, 0): return cause
        default: return cp0.read(reg, sel, shape: cp0Shape)
        }
    }

    /// Writes CP0 register (`reg`, `sel`) as MTC0 does, with the 24Kc's write masks.
    public func writeCP0(_ reg: Int, _ sel: Int, _ value: UInt32) { writeCP0(reg, sel, value, now: cycles, pc: pc) }

    /// Writes a CP0 register by name (`CP0Register.entryHi`…).
    public func writeCP0(_ r: CP0Register, _ value: UInt32) { writeCP0(r.number, r.select, value) }

    func writeCP0(_ reg: Int, _ sel: Int, _ v: UInt32, now: UInt64, pc: UInt32) {
        switch cp0.write(reg, sel, v, shape: cp0Shape) {
        case .none:
            break
        case .count(let value):
            countBase = value
            countEpoch = now
            recomputeTimer(now: now)
        case .compare:
            timerPending = false
            recomputeTimer(now: now)
        case .status:
            statusChanged(pc: pc, cause: .statusWrite)
        case .cause(let old):
            if (old ^ cp0.cause) & CauseBits.dc != 0 {
                if cp0.cause & CauseBits.dc != 0 {
                    // freeze at the value it has now
                    countBase = CountTimer.count(base: countBase, epoch: countEpoch, now: now,
                                                 ratio: configuration.instructionsPerCountTick, stopped: false)
                } else {
                    countEpoch = now  // resume from the frozen value
                }
            }
            recomputeTimer(now: now)
            batchBreak = true
        case .entryHi(let old):
            if (old ^ cp0.entryHi) & 0xFF != 0 { flushSoftTLB() }
        case .segmentation:
            rebuildSegments(erl: segmentsBuiltWithERL)
        }
    }

    func recomputeTimer(now: UInt64) {
        // The timer arithmetic is relative to `cycles`; inside a batch `now` is ahead of it.
        let saved = cycles
        cycles = now
        recomputeTimer()
        cycles = saved
        batchBreak = true
    }

    // MARK: TLB instructions

    func tlbRead() {
        if cp0.load(tlbEntries[cp0.indexedEntry(tlbEntries: configuration.tlbEntries)]) { flushSoftTLB() }
    }

    func tlbWrite(_ i: Int, pc: UInt32) {
        let entry = cp0.entryToWrite
        replaceTLBEntry(i, entry)
        if let observer { notify(observer.cpu(self, didWriteTLB: i, entry: entry, pc: pc)) }
    }

    func tlbProbe() {
        cp0.probe(found: tlbIndex.firstMatch(tlb, cp0.entryHi, asid: UInt8(truncatingIfNeeded: cp0.entryHi)))
    }

    /// The TLB entries as a collection, for the shared rules (TLB.swift).
    var tlb: UnsafeBufferPointer<TLBEntry> {
        UnsafeBufferPointer(start: tlbEntries, count: configuration.tlbEntries)
    }
}
