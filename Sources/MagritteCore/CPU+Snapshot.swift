#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension CPU {
    /// Instructions executed: those that completed and those that raised an exception (every
    /// instruction slot but WAIT's idle time); exact inside callbacks. Time travel's position.
    public var executedInstructions: UInt64 { currentCycles &- idleCycles }

    /// Where an observer stopped the last run before executing the instruction (nil: it did
    /// not): resuming there runs that instruction without asking again. Time travel keeps it to
    /// know such a stop from the instruction's later first run.
    public var observerStoppedAt: UInt32? { observerStopPC }

    /// Forgets everything derived from guest memory and the TLB that the CPU keeps to go fast:
    /// decoded instructions, the software TLB, the current code page. Call after guest state
    /// was replaced wholesale (a snapshot restored); a translator extends this to drop its code.
    public func invalidateCaches() {
        for i in 0..<CPU.physicalFrames where decodedPages[i] != nil {
            decodedPages[i]!.update(repeating: .undecoded, count: 1024)
        }
        flushSoftTLB()
        codeDecoded = CPU.emptyPage
        codeHost = CPU.emptyWords
        jit?.flush()  // RAM was replaced under the translated blocks
        batchBreak = true
    }

    /// The physical frames below `limit` whose code the CPU has decoded (`holdsCode`), in order:
    /// what the decoded-code cache knows besides the instructions. A store to such a frame is
    /// the CPU's (it forgets the code there), so the VMM's exits that store to guest RAM
    /// themselves stop before one: a VMM snapshot keeps these frames (`holdCode`) so that the
    /// run after a restore counts what the run after the snapshot counted.
    public func codeFrames(below limit: Int) -> [UInt32] {
        var frames: [UInt32] = []
        for f in 0..<min(limit, CPU.physicalFrames) where decodedPages[f] != nil { frames.append(UInt32(f)) }
        return frames
    }

    /// Makes `frames` (increasing, as `codeFrames(below: limit)` gave them) the frames below
    /// `limit` that hold code: the decoded instructions of the others are freed, `frames` get
    /// theirs (all undecoded). Call right after `invalidateCaches` (nothing refers to a page of
    /// decoded instructions then). A frame the host has no memory for is left without (then only
    /// what the VMM counts can differ).
    public func holdCode(inFrames frames: [UInt32], below limit: Int) {
        var next = 0
        for f in 0..<min(limit, CPU.physicalFrames) {
            let wanted = next < frames.count && frames[next] == UInt32(f)
            if wanted { next += 1 }
            if wanted, decodedPages[f] == nil, !refuseDecodedPages, let raw = malloc(1024 * MemoryLayout<DecodedInstruction>.stride) {
                let decoded = raw.bindMemory(to: DecodedInstruction.self, capacity: 1024)
                decoded.initialize(repeating: .undecoded, count: 1024)
                decodedPages[f] = decoded
            } else if !wanted, let decoded = decodedPages[f] {
                free(decoded)
                decodedPages[f] = nil
            }
        }
        flushSoftTLB()  // no write mapping into a frame that holds code now
    }

    /// Appends the CPU's whole architectural and timing state (registers, CP0, TLB, counters,
    /// pending timer and interrupt lines, WAIT and LL state) to `w`. Host-side settings (the
    /// observer, watches, the trap handler) are not state of the guest and are not saved.
    /// Call between runs, not from inside a callback.
    public func saveState(to w: inout SnapshotWriter) {
        w.put(UInt32(configuration.tlbEntries))
        w.put(configuration.segmentationControl)
        w.put(configuration.instructionsPerCountTick)
        w.put(configuration.processorID)
        for i in 0..<32 { w.put(regs[i]) }
        ProgramState(hi: hi, lo: lo, pc: pc, npc: npc, inDelaySlot: inDelaySlot, cp0: cp0).save(to: &w)
        for i in 0..<configuration.tlbEntries { tlbEntries[i].saveState(to: &w) }
        w.put(cycles)
        w.put(faultedInstructions)
        w.put(idleCycles)
        w.put(countBase)
        w.put(countEpoch)
        w.put(hardwareIP)
        w.put(timerPending)
        w.put(waiting)
        w.put(llBit)
        w.put(llVirtual)
        w.put(llValue)
        w.put(exceptionCounts)
    }

    /// Replaces the CPU's state with what `saveState` wrote. Everything is read and checked
    /// before anything changes: on error the CPU is untouched. Caches are flushed.
    public func restoreState(from r: inout SnapshotReader) throws(SnapshotError) {
        let tlbCount = Int(try r.u32()), sc = try r.bool(), ratio = try r.u64(), prid = try r.u32()
        guard tlbCount == configuration.tlbEntries, sc == configuration.segmentationControl,
              ratio == configuration.instructionsPerCountTick, prid == configuration.processorID else {
            throw SnapshotError("the snapshot is of another CPU model (\(tlbCount) TLB entries, PRId \(Hex.prefixed(prid)), "
                + "this one has \(configuration.tlbEntries) and \(Hex.prefixed(configuration.processorID)))")
        }
        var gprs = [UInt32](repeating: 0, count: 32)
        for i in 0..<32 { gprs[i] = try r.u32() }
        let program = try ProgramState(from: &r)
        let (hi, lo, pc, npc, delay, cp0) = (program.hi, program.lo, program.pc, program.npc, program.inDelaySlot, program.cp0)
        var tlb: [TLBEntry] = []
        for _ in 0..<tlbCount { tlb.append(try TLBEntry(from: &r)) }
        let cycles = try r.u64(), faulted = try r.u64(), idle = try r.u64()
        let countBase = try r.u32(), countEpoch = try r.u64(), ip = try r.u32()
        let timerPending = try r.bool(), waiting = try r.bool()
        let llBit = try r.bool(), llVirtual = try r.u32(), llValue = try r.u32()
        let counts = try r.doubleWords(count: 32)
        guard faulted &+ idle <= cycles, ip & ~0xFC00 == 0 else {
            throw SnapshotError("the snapshot is corrupt (inconsistent CPU counters)")
        }

        // Nothing can fail from here on.
        regs[0] = 0
        for i in 1..<32 { regs[i] = gprs[i] }
        self.hi = hi
        self.lo = lo
        self.pc = pc
        self.npc = npc
        inDelaySlot = delay
        self.cp0 = cp0
        for i in 0..<tlbCount { tlbEntries[i] = tlb[i] }
        tlbIndex.rebuild(self.tlb)
        self.cycles = cycles
        faultedInstructions = faulted
        idleCycles = idle
        self.countBase = countBase
        self.countEpoch = countEpoch
        hardwareIP = ip
        self.timerPending = timerPending
        self.waiting = waiting
        self.llBit = llBit
        self.llVirtual = llVirtual
        self.llValue = llValue
        setExceptionCounts(counts)
        stopRequested = false
        observerStopPC = nil
        // Derived state: the mode and its software TLB, the segment map (without telling the
        // observer: nothing happened in the guest).
        let watcher = observer
        observer = nil
        statusChanged(pc: pc, cause: .host)
        observer = watcher
        rebuildSegments(erl: cp0.status & StatusBits.erl != 0)
        recomputeTimer()
        invalidateCaches()
    }
}

extension TLBEntry {
    /// Appends the entry in the snapshot format.
    public func saveState(to w: inout SnapshotWriter) {
        w.put(vpn2)
        w.put(pageMask)
        w.put(asid)
        w.put(global)
        w.put(lo0)
        w.put(lo1)
    }

    /// Reads what `saveState` wrote.
    public init(from r: inout SnapshotReader) throws(SnapshotError) {
        self.init()
        vpn2 = try r.u32()
        pageMask = try r.u32()
        asid = try r.u8()
        global = try r.bool()
        lo0 = try r.u32()
        lo1 = try r.u32()
    }
}

extension CP0State {
    static let snapshotWordCount = 30

    /// Appends every field in the snapshot format (a VMM saves its guests' virtual CP0 so).
    public func saveState(to w: inout SnapshotWriter) {
        for v in snapshotWords { w.put(v) }
    }

    /// Reads what `saveState` wrote.
    public init(from r: inout SnapshotReader) throws(SnapshotError) {
        var words = [UInt32]()
        for _ in 0..<CP0State.snapshotWordCount { words.append(try r.u32()) }
        self.init(snapshotWords: words)
    }

    /// Every field, in a fixed order (the snapshot format's).
    var snapshotWords: [UInt32] {
        [index, entryLo0, entryLo1, context, pageMask, wired, hwrEna, badVAddr, entryHi, compare,
         status, intCtl, srsCtl, cause, epc, ebase, config0, errorEPC, llAddr, segCtl0, segCtl1,
         segCtl2, srsMap, watchLo, watchHi, errCtl, tagLo, dataLo, desave, 0]
    }

    init(snapshotWords w: [UInt32]) {
        self.init()
        (index, entryLo0, entryLo1, context, pageMask, wired, hwrEna, badVAddr) = (w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7])
        (entryHi, compare, status, intCtl, srsCtl, cause, epc, ebase) = (w[8], w[9], w[10], w[11], w[12], w[13], w[14], w[15])
        (config0, errorEPC, llAddr, segCtl0, segCtl1, segCtl2, srsMap) = (w[16], w[17], w[18], w[19], w[20], w[21], w[22])
        (watchLo, watchHi, errCtl, tagLo, dataLo, desave) = (w[23], w[24], w[25], w[26], w[27], w[28])
    }
}
