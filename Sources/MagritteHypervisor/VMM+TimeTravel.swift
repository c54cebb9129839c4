import MagritteCore
import MagritteMachine

/// Reverse execution for a `VMM` and its guests: checkpoints (`VMMSnapshot`s) taken while it
/// runs forward, and deterministic re-execution from the nearest one. See `Docs/time-travel.md`.
///
/// Positions are the physical CPU's `executedInstructions` (every guest's instructions, those
/// that trapped included). The VMM's schedule depends on how its runs are cut (a `run` starts a
/// new slice, `step` runs one guest alone), so the history records every forward call — run
/// it through `run(maxInstructions:)` and `step(_:instructions:)` here — and re-execution makes
/// the same calls again: from a checkpoint inside a `run` (taken at a slice boundary, where a
/// run can be restarted with the same future) it runs on to where that call ended, then the
/// next call. A state changed by hand (`VMM.changesByHand`: registers, memory, injections,
/// pause) is checkpointed before the next forward call, so going back across it is exact too.
/// Console input delivered while recording (`inputs`) is replayed by re-execution.
public final class VMMTimeTravel: CheckpointHistory {
    /// Why a trip through time stopped.
    public enum Stop: Equatable, Sendable {
        case reached
        /// Before the instruction at a breakpoint's address, in guest `guest` (its index).
        case breakpoint(pc: UInt32, guest: Int)
        /// After an access to a watched range by guest `guest`.
        case watchpoint(address: UInt32, isWrite: Bool, guest: Int)
        /// Before guest `guest`'s instruction at `pc` (a guest's step back).
        case instruction(pc: UInt32, guest: Int)
        /// At the oldest checkpoint: nothing earlier is recorded (gdb's `replaylog:begin`).
        case startOfHistory
        /// At the newest state recorded: nothing later is known.
        case endOfHistory
        /// The guests stopped on their own before the position asked for.
        case halted(VMMRunOutcome)
    }

    /// A forward call as recorded: re-execution makes it again.
    enum Call: Equatable {
        case run
        case step(guest: Int, instructions: UInt64)
    }

    struct Segment {
        var start: UInt64
        var end: UInt64
        var call: Call
        /// The guest (index) and pc an observer (a breakpoint) stopped the call before: the
        /// instruction a later call resumes with is that hit again, not a new one.
        var stoppedBefore: (guest: Int, pc: UInt32, retired: UInt64)?
    }

    public let vmm: VMM
    /// Instructions between checkpoints (taken at the first slice boundary after each multiple).
    public let interval: UInt64
    /// The checkpoints (`memoryBudget`, `checkpoints`, `memoryUsed`: `CheckpointHistory`).
    public let ring: CheckpointRing<VMMSnapshot>
    private var segments: [Segment] = []
    private var changesSeen: UInt64
    /// The console input delivered while recording, replayed by re-execution.
    public let inputs: VMMInputLog
    /// Entries of `inputs` the state now has seen (nil: all, the VMM is live).
    private var inputsSeen: Int?
    private var replaying = false

    /// Starts recording (the VMM must not be running): the first checkpoint, the start of
    /// history, is taken now, and console input is logged from now on (`inputs`).
    public init(vmm: VMM, interval: UInt64 = 1_000_000, memoryBudget: Int = 512 << 20) {
        precondition(interval > 0, "the checkpoint interval must be at least one instruction")
        self.vmm = vmm
        self.interval = interval
        ring = CheckpointRing(memoryBudget: memoryBudget)
        changesSeen = vmm.changesByHand
        inputs = vmm.inputLog ?? VMMInputLog(recording: vmm)
        vmm.inputLog = inputs
        vmm.onSliceBoundary = { [unowned self] in self.checkpointIfDue() }
        takeCheckpoint()
    }

    deinit { vmm.onSliceBoundary = nil }

    /// The position now (`CPU.executedInstructions` of the physical CPU).
    public var position: UInt64 { vmm.cpu.executedInstructions }
    /// The newest position recorded.
    public var endOfHistory: UInt64 { max(segments.last?.end ?? 0, ring.last?.executed ?? 0) }

    // MARK: Going forward

    /// `vmm.run(maxInstructions:)`, recorded. The future recorded after the position is forgotten.
    public func run(maxInstructions: UInt64 = .max) -> VMMRunOutcome {
        forward(.run) { vmm.run(maxInstructions: maxInstructions) }
    }

    /// `vmm.step(g, instructions:)`, recorded.
    public func step(_ g: Guest, instructions: UInt64) -> VMMRunOutcome {
        forward(.step(guest: g.index, instructions: instructions)) { vmm.step(g, instructions: instructions) }
    }

    private func forward(_ call: Call, _ body: () -> VMMRunOutcome) -> VMMRunOutcome {
        restartIfReconfigured()
        discardFuture()
        let start = position
        if vmm.changesByHand != changesSeen || (segments.last.map { $0.end != start } ?? false) {
            // Changed by hand since the history was recorded: re-execution starts from here.
            if ring.last?.executed == start { ring.removeLast() }
            takeCheckpoint()
        }
        let outcome = body()
        var segment = Segment(start: start, end: position, call: call)
        if outcome == .stopped, let g = vmm.current, let pc = vmm.cpu.observerStoppedAt, pc == vmm.cpu.pc {
            segment.stoppedBefore = (g.index, pc, vmm.retiredInstructions(of: g))
        }
        segments.append(segment)
        changesSeen = vmm.changesByHand
        return outcome
    }

    /// Forgets what was recorded after the position (checkpoints, calls, input): the next
    /// forward call makes a new future.
    public func discardFuture() {
        let now = position
        if let seen = inputsSeen { inputs.truncate(to: seen) }
        inputsSeen = nil
        ring.removeAll(after: now)
        segments.removeAll { $0.start >= now }
        if let last = segments.last, last.end > now {
            segments[segments.count - 1].end = now
            segments[segments.count - 1].stoppedBefore = nil
        }
        if ring.count == 0 { takeCheckpoint() }
    }

    // MARK: Going back

    /// Goes back `n` instructions of the machine (to the start of history if fewer are recorded).
    @discardableResult
    public func stepBack(_ n: UInt64 = 1) -> Stop {
        if restartIfReconfigured() { return .startOfHistory }
        return goBack(n)
    }

    /// Goes back `n` instructions of guest `g`: to where it was about to execute the `n`th
    /// instruction before the one it is at (other guests' instructions in between are undone too).
    @discardableResult
    public func stepBack(_ n: Int = 1, guest g: Guest) -> Stop {
        reverse(Matcher(guest: g.index, everyInstruction: true), count: max(n, 1))
    }

    /// Puts the VMM where it was when `instruction` instructions had executed: restores the
    /// nearest checkpoint at or before it and re-executes the recorded calls.
    @discardableResult
    public func goTo(instruction target: UInt64) -> Stop {
        if restartIfReconfigured() { return target == position ? .reached : .startOfHistory }
        guard let base = ring.base(for: target) else { return restoreStartOfHistory() }
        let now = position
        if target == now { return .reached }
        // Forward from the state now only where a recorded call starts or ends: stopped inside
        // one, a new call would begin a new slice and leave the recorded schedule.
        let restartable = segments.contains { $0.start == now || $0.end == now }
        if !(target > now && base.executed <= now && restartable) { restore(base) }
        return replay(nil) { runForward(to: target) }
    }

    /// Goes back to the last hit of `conditions` before the position (gdb's reverse-continue),
    /// by any guest or only by `guest`; `.startOfHistory` when there is none.
    @discardableResult
    public func continueBack(until conditions: TimeTravel.Conditions, guest: Guest? = nil) -> Stop {
        reverse(Matcher(conditions: conditions, guest: guest?.index), count: 1)
    }

    /// Goes back to the last hit, by any guest, of that guest's own conditions (keyed by guest
    /// index: a script's breakpoints and watchpoints belong to one guest each).
    @discardableResult
    public func continueBack(untilEach conditions: [Int: TimeTravel.Conditions]) -> Stop {
        reverse(Matcher(perGuest: conditions), count: 1)
    }

    // MARK: Internals

    struct Matcher {
        var conditions = TimeTravel.Conditions()
        var guest: Int?
        var everyInstruction = false
        /// Conditions per guest index, instead of `conditions` for all.
        var perGuest: [Int: TimeTravel.Conditions]?

        func conditions(of g: Int) -> TimeTravel.Conditions? {
            if let perGuest { return perGuest[g] }
            return guest == nil || guest == g ? conditions : nil
        }

        var allConditions: [TimeTravel.Conditions] { perGuest.map { Array($0.values) } ?? [conditions] }
    }

    /// Scans the spans between checkpoints backwards from the position for the `count`th last
    /// hit of `matcher`, then re-executes to it.
    private func reverse(_ matcher: Matcher, count: Int) -> Stop {
        if restartIfReconfigured() { return .startOfHistory }
        let end = position
        var needed = count
        // A guest's step back looks at every instruction, which is slow: first only at the
        // last slices before the position (observation starts at a slice's end), then, if the
        // guest did not run there, at the whole span.
        let slices = vmm.slice.multipliedReportingOverflow(by: 4)  // a huge slice from a script must not trap
        let window: UInt64? = matcher.everyInstruction && count == 1 ? (slices.overflow ? .max : slices.partialValue) : nil
        var windowed = window != nil
        // Hits count before `end`, not before the span's end: a store by the span's last
        // instruction stops at the span's end (the next checkpoint), and belongs to this span.
        for (start, spanEnd) in ring.spans(before: end) {
            var hits = 0
            while true {
                let from = windowed ? spanEnd &- min(window!, spanEnd) : nil
                restore(start)
                let scan = HitFinder(vmm, matcher, before: end, stopAt: nil)
                scan.observeFrom = from
                seed(scan, at: start.executed)
                _ = replay(scan) { runForward(to: spanEnd) }
                hits = scan.hits
                if hits >= needed {
                    restore(start)
                    let stopper = HitFinder(vmm, matcher, before: end, stopAt: scan.hits - needed + 1)
                    stopper.observeFrom = from
                    seed(stopper, at: start.executed)
                    _ = replay(stopper) { runForward(to: spanEnd) }
                    return stopper.lastHit ?? .reached
                }
                let retry = windowed && from! > start.executed
                windowed = false  // not in the window: the whole span, observed
                if !retry { break }
            }
            needed -= hits
        }
        return restoreStartOfHistory()
    }

    /// Restores the oldest checkpoint (nothing earlier is recorded).
    public func restoreStartOfHistory() -> Stop {
        restore(ring.first!)
        return .startOfHistory
    }

    /// Tells `finder` where breakpoints stopped calls before `position`: a guest that resumes
    /// there later is not at a new hit.
    private func seed(_ finder: HitFinder, at position: UInt64) {
        for s in segments where s.end < position {
            if let stop = s.stoppedBefore { finder.seen(guest: stop.guest, pc: stop.pc, retired: stop.retired) }
        }
    }

    /// A guest added since the history began makes its checkpoints another configuration's:
    /// the history starts again here. Returns whether it did.
    @discardableResult
    private func restartIfReconfigured() -> Bool {
        guard let first = ring.first, first.configuration != vmm.snapshotConfiguration else { return false }
        ring.removeAll()
        segments = []
        inputs.truncate(to: 0)
        inputsSeen = nil
        takeCheckpoint()
        changesSeen = vmm.changesByHand
        return true
    }

    /// Takes a checkpoint after the newest (sharing its unchanged pages) and drops the oldest
    /// beyond the budget.
    private func takeCheckpoint() {
        ring.append(vmm.snapshot(sharingWith: ring.last), inputs: inputsSeen ?? inputs.entries.count)
    }

    private func checkpointIfDue() {
        if replaying, let finder = vmm.cpu.observer as? HitFinder, let from = finder.observeFrom,
           position &+ vmm.slice >= from, finder.observesInstructions {
            observeInstructions(for: finder)  // the window of a guest's step back begins
        }
        guard !replaying, let last = ring.last, position / interval > last.executed / interval else { return }
        takeCheckpoint()
    }

    private func restore(_ s: VMMSnapshot) {
        try! vmm.restore(s)  // a checkpoint of this VMM: same configuration
        inputsSeen = ring.inputs(at: s)
        changesSeen = vmm.changesByHand
    }

    /// Runs `body` with the recorded input in place of the guests' console input, `observer`
    /// (if any) in place of the CPU's, and the VMM's listeners (trace, console lines, output,
    /// slice ends) quiet: re-execution shows nothing twice.
    private func replay(_ observer: HitFinder?, _ body: () -> Stop) -> Stop {
        let cpu = vmm.cpu
        let saved = (cpu.observer, cpu.observesInstructions, cpu.memoryWatches, vmm.trace.listener, vmm.onConsoleLine, vmm.onSliceEnd)
        let (savedPCs, savedObservedGuests) = (cpu.observedPCs, vmm.instructionObservedGuests)
        let outputs = vmm.guests.map(\.onOutput)
        let consoles = vmm.guests.map(\.board.consoleInput)
        cpu.observer = observer
        vmm.instructionObservedGuests = nil
        cpu.observesInstructions = false
        if let finder = observer, finder.observesInstructions, finder.observeFrom.map({ position &+ vmm.slice >= $0 }) ?? true {
            observeInstructions(for: finder)
        }
        cpu.memoryWatches = observer?.matcher.allConditions.flatMap { $0.watchpoints.map(\.range) } ?? []
        // Breakpoints (every guest's) end translated blocks; the finder tells the guests apart.
        let pcs = observer?.breakpoints ?? []
        if cpu.observedPCs != pcs { cpu.observedPCs = pcs }
        vmm.trace.listener = nil
        vmm.onConsoleLine = nil
        vmm.onSliceEnd = nil
        for g in vmm.guests { g.onOutput = nil }
        let replayer = VMMReplayInput.install(inputs, on: vmm, from: inputsSeen ?? inputs.entries.count)
        vmm.inputLog = nil
        replaying = true
        defer {
            replaying = false
            inputsSeen = replayer.delivered
            vmm.inputLog = inputs
            (cpu.observer, cpu.observesInstructions, cpu.memoryWatches) = (saved.0, saved.1, saved.2)
            vmm.instructionObservedGuests = savedObservedGuests  // for the guest on the CPU now
            if cpu.observedPCs != savedPCs { cpu.observedPCs = savedPCs }
            (vmm.trace.listener, vmm.onConsoleLine, vmm.onSliceEnd) = (saved.3, saved.4, saved.5)
            for (g, (output, console)) in zip(vmm.guests, zip(outputs, consoles)) {
                g.onOutput = output
                g.board.consoleInput = console
            }
        }
        return body()
    }

    /// Shows `finder` every instruction from now on: only while its guest runs when it looks
    /// for one guest's (a guest's step back; the others run translated), else all.
    private func observeInstructions(for finder: HitFinder) {
        if let g = finder.matcher.guest, finder.matcher.perGuest == nil {
            vmm.instructionObservedGuests = [g]
        } else {
            vmm.cpu.observesInstructions = true
        }
    }

    /// Makes the recorded calls again from the position up to `target`.
    private func runForward(to target: UInt64) -> Stop {
        var stalls = 0
        var resumed: UInt64?
        while position < target {
            let p = position
            // A call that a breakpoint stopped here: its hit is here, not where the guest resumes.
            if resumed != p, let finder = vmm.cpu.observer as? HitFinder,
               let stop = segments.last(where: { $0.end == p })?.stoppedBefore {
                resumed = p
                if finder.resumePoint(guest: stop.guest, pc: stop.pc) { return .reached }
            }
            guard let s = segments.last(where: { $0.start <= p && p < $0.end }) else { return .endOfHistory }
            let end = min(s.end, target)
            let outcome: VMMRunOutcome
            switch s.call {
            case .run:
                outcome = vmm.run(maxInstructions: end - p)
            case .step(let index, let n):
                // No checkpoint lies inside a step: it starts at its beginning. It stops where
                // it ended (a debugger may have stopped it early) or at the target.
                let g = vmm.guests[index]
                let finder = (vmm.cpu.observer as? HitFinder) ?? HitFinder(vmm, Matcher(), before: 0, stopAt: nil)
                finder.stopPosition = end
                let (observer, observes, guests) = (vmm.cpu.observer, vmm.cpu.observesInstructions, vmm.instructionObservedGuests)
                vmm.instructionObservedGuests = nil
                (vmm.cpu.observer, vmm.cpu.observesInstructions) = (finder, true)
                outcome = vmm.step(g, instructions: n)
                (vmm.cpu.observer, vmm.cpu.observesInstructions) = (observer, observes)
                vmm.instructionObservedGuests = guests
                finder.stopPosition = nil
            }
            if let finder = vmm.cpu.observer as? HitFinder, finder.stoppedAtHit { return .reached }
            if position == p {
                stalls += 1
                if stalls > 2 { return .halted(outcome) }
            }
        }
        return .reached
    }
}

/// Finds the hits of a `VMMTimeTravel.Matcher` during a re-execution and, with `stopAt`, stops
/// the VMM at that hit (1 = the first); also stops at `stopPosition`. A hit's position is that
/// of the state it stops in (before an instruction, after a watched access); only hits before
/// `before` count.
final class HitFinder: CPUObserver {
    unowned let vmm: VMM
    let matcher: VMMTimeTravel.Matcher
    let before: UInt64
    let stopAt: Int?
    var stopPosition: UInt64?
    /// Instructions are looked at only from the slice end at which the position is within a
    /// slice of this (nil: from the start).
    var observeFrom: UInt64?
    var hits = 0
    var lastHit: VMMTimeTravel.Stop?
    /// Whether it stopped the VMM at the hit asked for.
    var stoppedAtHit = false
    /// Per guest, the pc and retired count of its last instruction seen: the same again is a
    /// retry after a fault the VMM handled unseen (a hidden TLB fill), not a new instruction.
    private var lastSeen: [Int: (pc: UInt32, retired: UInt64)] = [:]

    init(_ vmm: VMM, _ matcher: VMMTimeTravel.Matcher, before: UInt64, stopAt: Int?) {
        self.vmm = vmm
        self.matcher = matcher
        self.before = before
        self.stopAt = stopAt
    }

    /// Whether the CPU must report every instruction: only for a step back (`everyInstruction`);
    /// breakpoints are the CPU's `observedPCs` (`breakpoints`), reported before their pcs while
    /// the rest runs translated.
    var observesInstructions: Bool { matcher.everyInstruction }

    /// Every guest's breakpoint pcs.
    var breakpoints: Set<UInt32> { matcher.everyInstruction ? [] : matcher.allConditions.reduce(into: []) { $0.formUnion($1.breakpoints) } }

    private func stop() -> ObserverAction {
        vmm.stop()
        return .stop
    }

    private func hit(_ stop: VMMTimeTravel.Stop, _ cpu: CPU, atPosition: Bool = false) -> ObserverAction {
        // (`includesLastAccess`: the access just made, whose stop is the position, counts.)
        guard cpu.executedInstructions < before || (atPosition && cpu.executedInstructions == before) else { return .proceed }
        hits += 1
        lastHit = stop
        guard hits == stopAt else { return .proceed }
        stoppedAtHit = true
        return self.stop()
    }

    func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction {
        if let p = stopPosition, cpu.executedInstructions >= p { return stop() }
        guard let g = vmm.current, let conditions = matcher.conditions(of: g.index),
              matcher.everyInstruction || conditions.breakpoints.contains(pc) else { return .proceed }
        // The same pc at the same retired count is the retry after a hidden fill: the first
        // try is the hit (where a forward run stops, as LuaVMM and the gdb stub do).
        let retired = vmm.retiredInstructions(of: g)
        if let last = lastSeen[g.index], last.pc == pc, last.retired == retired { return .proceed }
        lastSeen[g.index] = (pc, retired)
        return hit(matcher.everyInstruction ? .instruction(pc: pc, guest: g.index) : .breakpoint(pc: pc, guest: g.index), cpu)
    }

    func seen(guest: Int, pc: UInt32, retired: UInt64) { lastSeen[guest] = (pc, retired) }

    /// The instruction at `pc` of guest `guest`, before which a recorded call was stopped:
    /// seen (and a hit) here. Returns whether it is the hit to stop at (the VMM is there).
    func resumePoint(guest: Int, pc: UInt32) -> Bool {
        guard let conditions = matcher.conditions(of: guest), matcher.everyInstruction || conditions.breakpoints.contains(pc) else { return false }
        let retired = vmm.retiredInstructions(of: vmm.guests[guest])
        if let last = lastSeen[guest], last.pc == pc, last.retired == retired { return false }
        lastSeen[guest] = (pc, retired)
        guard vmm.cpu.executedInstructions < before else { return false }
        hits += 1
        lastHit = matcher.everyInstruction ? .instruction(pc: pc, guest: guest) : .breakpoint(pc: pc, guest: guest)
        guard hits == stopAt else { return false }
        stoppedAtHit = true
        return true
    }

    func cpu(_ cpu: CPU, didTakeException trap: Trap) -> ObserverAction { .proceed }
    func cpu(_ cpu: CPU, didChangeMode change: ModeChange) -> ObserverAction { .proceed }
    func cpu(_ cpu: CPU, didWriteTLB index: Int, entry: TLBEntry, pc: UInt32) -> ObserverAction { .proceed }

    func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction {
        guard let g = vmm.current, let conditions = matcher.conditions(of: g.index),
              conditions.watchpoints.contains(where: { $0.matches(access) }) else { return .proceed }
        return hit(.watchpoint(address: access.virtual, isWrite: access.isWrite, guest: g.index), cpu, atPosition: conditions.includesLastAccess)
    }
}
