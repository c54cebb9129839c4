/// A MIPS32 Release 2 CPU (MIPS 24Kc without FPU), little-endian.
///
/// The state is owned by this one object in unsafe buffers so the interpreter's hot loop does no
/// reference counting, bounds checks or allocation (see `Docs/architecture.md`). Memory reaches
/// it only through `PhysicalBus`. Guest exceptions are data: an instruction that faults calls
/// `enterException`, which updates CP0 in one place; Swift errors are never used for them.
public final class CPU {
    public let configuration: CPUConfiguration
    public let bus: any PhysicalBus

    /// GPRs 0–31, then the sink slot 32 that absorbs writes to `$zero`.
    @usableFromInline let regs: UnsafeMutablePointer<UInt32>
    @exclusivity(unchecked) public var hi: UInt32 = 0
    @exclusivity(unchecked) public var lo: UInt32 = 0
    /// Address of the next instruction to execute.
    @exclusivity(unchecked) public internal(set) var pc: UInt32 = 0xBFC0_0000
    /// Address of the instruction after it (the branch target when `pc` is a delay slot).
    @exclusivity(unchecked) public internal(set) var npc: UInt32 = 0xBFC0_0004
    /// Whether the instruction at `pc` is in the delay slot of the branch at `pc - 4`.
    @exclusivity(unchecked) public internal(set) var inDelaySlot = false

    @exclusivity(unchecked) public var cp0 = CP0State()
    let tlbEntries: UnsafeMutablePointer<TLBEntry>
    /// Finds the entries that can match an address (TLB.swift); kept by every write of `tlbEntries`.
    let tlbIndex = TLBIndex()

    // Time. `cycles` is the guest time base: one per executed instruction slot, plus idle
    // cycles skipped while in WAIT. Count = countBase + (cycles - countEpoch) / ratio.
    /// Cycles elapsed (instruction slots plus WAIT idle time).
    @exclusivity(unchecked) public internal(set) var cycles: UInt64 = 0
    /// Instruction slots that raised an exception instead of completing.
    @exclusivity(unchecked) public internal(set) var faultedInstructions: UInt64 = 0
    /// Cycles spent idle in WAIT.
    @exclusivity(unchecked) public internal(set) var idleCycles: UInt64 = 0
    @exclusivity(unchecked) var countBase: UInt32 = 0
    @exclusivity(unchecked) var countEpoch: UInt64 = 0
    /// Cycle at which Count next equals Compare (UInt64.max when the counter is stopped).
    @exclusivity(unchecked) var nextTimerCycle: UInt64 = .max

    /// Hardware interrupt lines IP2–IP7 as Cause bits 15:10 (bit 10 = line 0).
    @exclusivity(unchecked) var hardwareIP: UInt32 = 0
    @exclusivity(unchecked) var timerPending = false
    @exclusivity(unchecked) var waiting = false
    /// Set from outside the loop (devices, host) to end the current batch.
    @exclusivity(unchecked) var batchBreak = false
    // The batch in progress, published by the loop before it calls out of line.
    @exclusivity(unchecked) var inBatch = false
    @exclusivity(unchecked) var batchStart: UInt64 = 0
    @exclusivity(unchecked) var batchBudget: UInt64 = 0
    @exclusivity(unchecked) var batchRemaining: UInt64 = 0
    @exclusivity(unchecked) var stopRequested = false
    /// The pc of the instruction whose load or store the bus is answering now (set on the slow
    /// path before every `PhysicalBus.read`/`write` of a data access; `CPU.hostAccess` for the
    /// host's `readPhysical`/`writePhysical`): a bus that serves an access differently by
    /// instruction (the VMM's device window) looks at it.
    @exclusivity(unchecked) public internal(set) var busAccessPC: UInt32 = 0
    /// `busAccessPC` while the host reads or writes the bus (a debugger, a script, the CPU
    /// looking at an instruction word): no instruction's pc (those are word-aligned).
    public static let hostAccess: UInt32 = 0xFFFF_FFFF
    /// Whether the last `run` stopped (with `.stopRequested`) because the host could not give
    /// memory the CPU needed: a code page's decoded instructions. Running again retries.
    @exclusivity(unchecked) public internal(set) var outOfHostMemory = false
    /// What front ends say when a run ends for `outOfHostMemory`.
    public static let outOfHostMemoryMessage = "out of host memory: the host cannot give the CPU a page of decoded instructions (the guest stopped before the instruction; running again retries)"
    /// For tests: refuse decoded pages as a host out of memory would.
    var refuseDecodedPages = false

    // LL/SC
    @exclusivity(unchecked) var llBit = false
    @exclusivity(unchecked) var llVirtual: UInt32 = 0
    @exclusivity(unchecked) var llValue: UInt32 = 0

    @exclusivity(unchecked) public internal(set) var mode: Mode = .kernel

    /// Receives exceptions, mode changes, TLB writes, watched accesses and, while
    /// `observesInstructions` is set, every instruction. Nil costs nothing.
    @exclusivity(unchecked) public var observer: (any CPUObserver)? {
        didSet { batchBreak = true; observerChangedForInlineCP0() }
    }
    /// Calls `observer.cpu(_:willExecuteAt:)` before every instruction (a slower loop).
    @exclusivity(unchecked) public var observesInstructions = false
    /// Virtual pcs before which `observer.cpu(_:willExecuteAt:)` is called even while
    /// `observesInstructions` is false (breakpoints): everything else runs at full speed, and
    /// no translated block runs past one of them (`Docs/jit.md`, "Observation").
    @exclusivity(unchecked) public var observedPCs: Set<UInt32> = [] {
        didSet { observedPCsChanged(from: oldValue) }
    }
    /// Virtual address ranges whose data accesses are reported to the observer.
    @exclusivity(unchecked) public var memoryWatches: [ClosedRange<UInt32>] = [] {
        didSet { flushSoftTLB() }
    }
    /// When set, exceptions go to it instead of the MIPS vectors (the hypervisor's hook).
    /// Unowned: the handler (a hypervisor) owns the CPU, not the other way round, and clears
    /// this before it goes. Not weak: a weakly referenced object keeps its reference counts in a
    /// side table, which made every retain and release of the VMM, and this load on every exit,
    /// take the runtime's slow path (~15 % of an exit-heavy guest's time). Unsafe (no check on
    /// each load): an unowned load costs a retain and a release of the handler on every exit.
    @exclusivity(unchecked) public unowned(unsafe) var trapHandler: (any TrapHandler)? {
        didSet {
            hasTrapHandler = trapHandler != nil
            trapHandlerType = trapHandler.map { type(of: $0) }
            trapHandlerAddress = trapHandler.map { Unmanaged.passUnretained($0 as AnyObject).toOpaque() }
        }
    }
    /// Whether `trapHandler` is set: what every exception and direct path asks (testing the
    /// unowned existential for nil costs a retain and a release of the handler).
    @exclusivity(unchecked) var hasTrapHandler = false
    /// The trap handler's dynamic type and address while it is set: the CPU calls it through
    /// them without a retain and a release (`TrapHandler.handleTrap(unretained:_:cpu:)`).
    @exclusivity(unchecked) var trapHandlerType: (any TrapHandler.Type)?
    @exclusivity(unchecked) var trapHandlerAddress: UnsafeMutableRawPointer?
    /// The trap handler's gate for translated code (`inlineCP0`, JIT/JITVirtualCP0.swift).
    @exclusivity(unchecked) var inlineCP0Gate: InlineCP0?
    /// The pc at which `run` last stopped for an observer, so that resuming there does not stop
    /// again before the instruction has run.
    @exclusivity(unchecked) var observerStopPC: UInt32? = nil
    /// The instruction (pc, retired count) whose watched access the observer was last asked
    /// about before it happened (`stopsBeforeAccess`): that instruction again at the same count
    /// (resumed after a stop there, retried after a TLB fill) is not asked again.
    @exclusivity(unchecked) var accessAsked: (pc: UInt32, retired: UInt64)? = nil
    /// Exceptions taken, by ExcCode (a copy: count into `exceptionCountStorage`, which an
    /// `exceptionCounts[i] &+= n` through a setter would copy twice on every call).
    public var exceptionCounts: [UInt64] { Array(UnsafeBufferPointer(start: exceptionCountStorage, count: 32)) }
    /// Sets every count (a snapshot's restore).
    func setExceptionCounts(_ counts: [UInt64]) {
        precondition(counts.count == 32, "one count per ExcCode")
        for (i, n) in counts.enumerated() { exceptionCountStorage[i] = n }
    }
    /// Where `exceptionCounts` lives: counted on every exception without an array's uniqueness check.
    let exceptionCountStorage: UnsafeMutablePointer<UInt64>

    // Address translation: per mode, the action for each 512 MiB region (va >> 29).
    @exclusivity(unchecked) var segments = SegmentMap()
    @exclusivity(unchecked) var segmentsBuiltWithERL = false
    // Software TLB: 3 modes × (256 read + 256 write) entries, page → host addend.
    let softTLB: UnsafeMutablePointer<SoftTLBEntry>
    /// The read half of the current mode's software TLB; the write half follows 256 entries on.
    @exclusivity(unchecked) var currentSoftTLB: UnsafeMutablePointer<SoftTLBEntry>
    // Decoded-instruction cache per physical frame (1024 slots each), created on first fetch.
    let decodedPages: UnsafeMutablePointer<UnsafeMutablePointer<DecodedInstruction>?>
    public static let physicalFrames = 1 << 20
    // The page the fetch loop is in: tag is its virtual base (0xFFFFFFFF = none).
    @exclusivity(unchecked) var codeTag: UInt32 = 0xFFFF_FFFF
    @exclusivity(unchecked) var codeDecoded: UnsafeMutablePointer<DecodedInstruction>
    @exclusivity(unchecked) var codeHost: UnsafeMutablePointer<UInt32>
    /// The physical frame of that page.
    @exclusivity(unchecked) var codeFrame: UInt32 = 0
    /// The translator's code cache and block table, made on first use (`Docs/jit.md`).
    @exclusivity(unchecked) var jit: JIT? = nil

    public init(bus: any PhysicalBus, configuration: CPUConfiguration = CPUConfiguration()) {
        precondition((1...64).contains(configuration.tlbEntries), "tlbEntries must be 1...64")
        precondition(configuration.instructionsPerCountTick >= 1)
        self.configuration = configuration
        self.bus = bus
        regs = .allocate(capacity: 33)
        regs.initialize(repeating: 0, count: 33)
        tlbEntries = .allocate(capacity: configuration.tlbEntries)
        tlbEntries.initialize(repeating: TLBEntry(), count: configuration.tlbEntries)
        exceptionCountStorage = .allocate(capacity: 32)
        exceptionCountStorage.initialize(repeating: 0, count: 32)
        softTLB = .allocate(capacity: 3 * 512)
        softTLB.initialize(repeating: SoftTLBEntry(), count: 3 * 512)
        currentSoftTLB = softTLB
        let raw = calloc(CPU.physicalFrames, MemoryLayout<UnsafeMutablePointer<DecodedInstruction>?>.stride)!
        decodedPages = raw.bindMemory(to: UnsafeMutablePointer<DecodedInstruction>?.self, capacity: CPU.physicalFrames)
        codeDecoded = CPU.emptyPage
        codeHost = CPU.emptyWords
        reset()
    }

    deinit {
        for i in 0..<CPU.physicalFrames { free(decodedPages[i]) }  // malloc'd in enterCodePage
        free(decodedPages)
        regs.deallocate()
        tlbEntries.deallocate()
        tlbIndex.deallocate()
        softTLB.deallocate()
        exceptionCountStorage.deallocate()
    }

    nonisolated(unsafe) static let emptyPage: UnsafeMutablePointer<DecodedInstruction> = {
        let p = UnsafeMutablePointer<DecodedInstruction>.allocate(capacity: 1024)
        p.initialize(repeating: .undecoded, count: 1024)
        return p
    }()
    nonisolated(unsafe) static let emptyWords: UnsafeMutablePointer<UInt32> = {
        let p = UnsafeMutablePointer<UInt32>.allocate(capacity: 1024)
        p.initialize(repeating: 0, count: 1024)
        return p
    }()

    /// Puts the CPU in its reset state: kernel mode, Status.BEV|ERL, PC at the reset vector.
    /// TLB, GPRs and counters are cleared; decoded code is forgotten.
    public func reset() {
        for i in 0..<33 { regs[i] = 0 }
        hi = 0
        lo = 0
        cp0 = CP0State()
        cp0.wired = 0
        for i in 0..<configuration.tlbEntries { tlbEntries[i] = TLBEntry() }
        tlbIndex.rebuild(tlb)
        cycles = 0
        faultedInstructions = 0
        idleCycles = 0
        countBase = 0
        countEpoch = 0
        hardwareIP = 0
        timerPending = false
        waiting = false
        batchBreak = false
        stopRequested = false
        llBit = false
        exceptionCountStorage.update(repeating: 0, count: 32)
        for i in 0..<CPU.physicalFrames where decodedPages[i] != nil {
            decodedPages[i]!.update(repeating: .undecoded, count: 1024)
        }
        jit?.flush()
        jump(to: 0xBFC0_0000)
        statusChanged(pc: pc, cause: .host)
        recomputeTimer()
    }

    // MARK: Registers

    /// General-purpose register `n` (0–31).
    public func gpr(_ n: Int) -> UInt32 {
        precondition((0..<32).contains(n), "GPR number out of range")
        return regs[n]
    }

    /// Sets general-purpose register `n` (writes to register 0 are ignored).
    public func setGPR(_ n: Int, _ value: UInt32) {
        precondition((0..<32).contains(n), "GPR number out of range")
        if n != 0 { regs[n] = value }
    }

    /// Instructions that completed (executed slots minus those that raised an exception),
    /// exact also inside observer and trap-handler callbacks during a batch.
    public var retiredInstructions: UInt64 { currentCycles &- idleCycles &- faultedInstructions }

    /// `cycles`, including the progress of the batch being executed (for callbacks).
    public var currentCycles: UInt64 { inBatch ? batchStart &+ (batchBudget &- batchRemaining) : cycles }

    /// Continues execution at `address` (not in a delay slot), as after a reset or a jump from
    /// a debugger.
    public func jump(to address: UInt32) {
        pc = address
        npc = address &+ 4
        inDelaySlot = false
        waiting = false
        observerStopPC = nil
        accessAsked = nil
    }

    /// The CP0 Count register now.
    public var count: UInt32 { countAt(cycles) }

    @inline(__always)
    func countAt(_ now: UInt64) -> UInt32 {
        CountTimer.count(base: countBase, epoch: countEpoch, now: now, ratio: configuration.instructionsPerCountTick,
                         stopped: cp0.cause & CauseBits.dc != 0)
    }

    /// The CP0 Random register now: deterministic, between Wired and the last TLB entry.
    public var random: UInt32 { randomAt(cycles) }

    func randomAt(_ now: UInt64) -> UInt32 {
        TLBEntry.random(now: now, tlbEntries: configuration.tlbEntries, wired: cp0.wired)
    }

    /// A TLB entry (for debuggers and tests).
    public func tlbEntry(_ i: Int) -> TLBEntry {
        precondition((0..<configuration.tlbEntries).contains(i), "TLB index out of range")
        return tlbEntries[i]
    }

    /// Replaces a TLB entry from outside the guest (debugger, VMM).
    public func setTLBEntry(_ i: Int, _ entry: TLBEntry) {
        precondition((0..<configuration.tlbEntries).contains(i), "TLB index out of range")
        replaceTLBEntry(i, entry)
    }

    /// The TLB entries whose range can share an address with the range of `e`, whatever their
    /// ASIDs (`TLBEntry.overlaps`), as a mask of indices — a scan's result, found through the
    /// CPU's TLB index (the VMM's TLB writes and fills: `VMM.installPhysical`).
    public func tlbEntries(overlapping e: TLBEntry) -> UInt64 {
        tlbIndex.overlapping(tlb, e)
    }

    // MARK: Interrupts and run control

    /// Drives hardware interrupt line `line` (0–5, i.e. Cause.IP2–IP7).
    public func setInterruptLine(_ line: Int, asserted: Bool) {
        precondition((0..<6).contains(line), "hardware interrupt line must be 0...5")
        let bit = UInt32(1) << (10 + UInt32(line))
        let new = asserted ? hardwareIP | bit : hardwareIP & ~bit
        if new != hardwareIP {
            hardwareIP = new
            batchBreak = true
        }
    }

    /// Ends the current batch of `execute` after the instruction being executed, without
    /// stopping `run`. `cycles` only advances between batches, so a device whose registers
    /// depend on guest time (an RTC, a PIT) calls this from an access: the guest's next access
    /// then sees `cycles` exact to within the instructions between the two.
    public func endBatch() {
        batchBreak = true
    }

    /// Ends `run` at the next instruction boundary with `.stopRequested`.
    public func requestStop() {
        stopRequested = true
        batchBreak = true
    }

    /// Cause as software reads it.
    public var cause: UInt32 {
        cp0.causeAsRead(hardwareIP: hardwareIP, timerPending: timerPending)
    }

    /// Whether an enabled interrupt is pending (the CPU takes it at the next boundary).
    public var interruptPending: Bool {
        let s = cp0.status
        guard s & StatusBits.ie != 0, s & (StatusBits.exl | StatusBits.erl) == 0 else { return false }
        return (cause & s & StatusBits.im) != 0
    }

    /// Runs up to `instructions` instruction slots (an instruction that raises an exception
    /// uses its slot). Returns early on `requestStop()` or a WAIT that nothing can end.
    public func run(instructions: UInt64) -> StopReason {
        var budget = instructions
        outOfHostMemory = false
        // A stop requested before this call (Ctrl-C between batches) is honoured, not lost.
        while true {
            if stopRequested { stopRequested = false; return .stopRequested }
            if cycles >= nextTimerCycle { fireTimer() }
            if interruptPending {
                waiting = false
                enterException(.interrupt, pc: pc, inDelaySlot: inDelaySlot)
                continue  // an observer may have asked to stop at the handler
            }
            if waiting {
                // Idle until the timer (the only thing inside the CPU that can end a WAIT).
                guard nextTimerCycle != .max, canWakeOnTimer else { return .waitingForInterrupt }
                let skip = nextTimerCycle - cycles
                cycles += skip
                idleCycles += skip
                continue
            }
            if budget == 0 { return .budgetExhausted }
            var batch = budget
            if nextTimerCycle != .max { batch = min(batch, nextTimerCycle - cycles) }
            if batch == 0 { batch = 1 }
            let done = observesInstructions ? executeObserved(batch)
                : engine == .jit ? executeTranslated(batch)
                : observedPCs.isEmpty ? executeFast(batch) : executeObserved(batch)
            budget -= done
        }
    }

    var canWakeOnTimer: Bool {
        let s = cp0.status
        return s & StatusBits.ie != 0 && s & (StatusBits.exl | StatusBits.erl) == 0 && s & StatusBits.im7 != 0
    }

    func fireTimer() {
        timerPending = true
        recomputeTimer()
    }

    /// Recomputes `nextTimerCycle` after Count, Compare, Cause.DC or the cycle counter moved.
    func recomputeTimer() {
        if cp0.cause & CauseBits.dc != 0 { nextTimerCycle = .max; return }
        nextTimerCycle = CountTimer.nextMatch(base: countBase, epoch: countEpoch, now: cycles,
                                              ratio: configuration.instructionsPerCountTick, compare: cp0.compare)
    }
}

/// One software-TLB slot: the virtual page it holds (0xFFFFFFFF = empty) and the value to add to
/// a virtual address in that page to get the host address.
struct SoftTLBEntry {
    var tag: UInt32 = 0xFFFF_FFFF
    var addend: UInt = 0
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
