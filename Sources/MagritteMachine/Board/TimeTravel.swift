import MagritteCore

/// Reverse execution on a bare `Malta`: a ring of periodic snapshots (checkpoints) taken while
/// the board runs forward, and deterministic re-execution from the nearest one. Going back to
/// instruction N restores the last checkpoint at or before N and runs forward to N; going back
/// to the previous breakpoint or watchpoint hit scans the span since the checkpoint for hits,
/// then replays to the last one. See `Docs/time-travel.md`.
///
/// This is the API a debugger stub calls: `stepBack(_:)` for gdb's `bs`, `continueBack(until:)`
/// for `bc`, `goTo(instruction:)`; each returns why it stopped (`Stop`), `.startOfHistory`
/// when nothing earlier is recorded (gdb's `replaylog:begin`).
///
/// Positions are `CPU.executedInstructions`: instructions executed, those that raised an
/// exception included, so that every instruction is one step (a SYSCALL and its handler's
/// first instruction are two positions; they are one in `retiredInstructions`). Re-execution is exact because guest time fixes
/// everything the board does (`Malta.run` services devices at fixed points of guest time) and
/// the console input delivered while recording is logged (`inputs`) and replayed.
public final class TimeTravel: CheckpointHistory {
    /// Why `goTo`, `stepBack` or `continueBack` stopped.
    public enum Stop: Equatable, Sendable {
        /// At the instruction asked for.
        case reached
        /// Before the instruction at a breakpoint's address (not executed yet).
        case breakpoint(pc: UInt32)
        /// After an access to a watched range.
        case watchpoint(address: UInt32, isWrite: Bool)
        /// After the CPU entered an exception of a watched kind.
        case exception(ExceptionCode)
        /// At the oldest checkpoint: nothing earlier is recorded.
        case startOfHistory
        /// The guest powered off or deadlocked before the instruction asked for.
        case halted(RunOutcome)
    }

    /// What `continueBack` looks for.
    public struct Conditions: Sendable, Equatable {
        /// Stop before executing at these addresses.
        public var breakpoints: Set<UInt32> = []
        /// Stop after a data access to these virtual ranges (reads, writes or both).
        public var watchpoints: [Watchpoint] = []
        /// Stop after entering these exceptions.
        public var exceptions: Set<ExceptionCode> = []
        /// Whether a watched access by the instruction just executed is a hit, though its stop
        /// is the position itself. gdb's: its watchpoints stop before the access and gdb steps
        /// over it, so going back from there first crosses that access (and gdb steps back over it).
        public var includesLastAccess = false

        public init(breakpoints: Set<UInt32> = [], watchpoints: [Watchpoint] = [],
                    exceptions: Set<ExceptionCode> = [], includesLastAccess: Bool = false) {
            self.breakpoints = breakpoints
            self.watchpoints = watchpoints
            self.exceptions = exceptions
            self.includesLastAccess = includesLastAccess
        }
    }

    /// A watched range of virtual addresses.
    public struct Watchpoint: Sendable, Equatable {
        public var range: ClosedRange<UInt32>
        public var reads: Bool
        public var writes: Bool

        public init(_ range: ClosedRange<UInt32>, reads: Bool = true, writes: Bool = true) {
            self.range = range
            self.reads = reads
            self.writes = writes
        }

        /// Whether `access` touches the range in a way watched.
        public func matches(_ access: MemoryAccess) -> Bool {
            let last = access.virtual &+ UInt32(max(access.size, 1) - 1)
            return access.virtual <= range.upperBound && last >= range.lowerBound && (access.isWrite ? writes : reads)
        }
    }

    public let board: Malta
    /// Instructions between checkpoints (the board's batch size is lowered to it, so that a
    /// checkpoint can be taken at every interval).
    public let interval: UInt64
    /// The checkpoints (`memoryBudget`, `checkpoints`, `memoryUsed`: `CheckpointHistory`).
    public let ring: CheckpointRing<MaltaSnapshot>
    /// Returns the console output so far, stored with each checkpoint (nil: none kept).
    public var console: (() -> [UInt8])?
    /// Called after a checkpoint was restored, before re-execution: the owner of the console
    /// output puts `snapshot.console` back (re-execution then appends to it).
    public var onRestore: ((MaltaSnapshot) -> Void)?
    /// The console input delivered while recording (the board's `inputLog`, created if it had
    /// none), replayed by re-execution; how many of its entries the state now has seen (nil:
    /// all, the machine is live).
    public let inputs: InputLog
    private var inputsSeen: Int?
    /// The recorded input being replayed, during re-execution.
    private var replaying: ReplayInput?

    /// Starts recording on `board` (it must not be running): the first checkpoint, the start
    /// of history, is taken now, and console input is logged (`board.inputLog`) from now on.
    public init(board: Malta, interval: UInt64 = 1_000_000, memoryBudget: Int = 512 << 20) {
        precondition(interval > 0, "the checkpoint interval must be at least one instruction")
        self.board = board
        self.interval = interval
        ring = CheckpointRing(memoryBudget: memoryBudget)
        board.batchSize = min(board.batchSize, interval)
        if board.inputLog == nil { board.inputLog = InputLog(recording: board) }
        inputs = board.inputLog!
        board.onServiced = { [unowned self] in self.checkpointIfDue() }
        takeCheckpoint()
    }

    deinit { board.onServiced = nil }

    /// The position now (`CPU.executedInstructions`).
    public var position: UInt64 { board.cpu.executedInstructions }

    /// Forgets the checkpoints after the current position. Call before running forward from a
    /// state changed by hand (a register or memory written, input injected): the recorded
    /// future is no longer the machine's.
    public func discardFuture() {
        let now = position
        if let seen = inputsSeen { inputs.truncate(to: seen) }
        inputsSeen = nil
        ring.removeAll(after: now)
        if changedByHand {
            // Re-execution cannot redo an injection: it starts from the state after it.
            changedByHand = false
            if ring.last?.executed == now { ring.removeLast() }
            takeCheckpoint()
        }
        if ring.count == 0 { takeCheckpoint() }
    }

    /// Says the state was changed from outside (input typed, an interrupt line set, an
    /// exception raised): the next `discardFuture` checkpoints it, so that going back across
    /// the change and forward again finds it made.
    public func stateChanged() { changedByHand = true }
    private var changedByHand = false

    // MARK: Going back

    /// Goes back `n` instructions (to the start of history if fewer are recorded).
    @discardableResult
    public func stepBack(_ n: UInt64 = 1) -> Stop {
        return goBack(n)
    }

    /// Puts the machine where it was (or will be) when `instruction` instructions had executed:
    /// restores the nearest checkpoint at or before it and runs forward.
    @discardableResult
    public func goTo(instruction target: UInt64) -> Stop {
        guard let base = ring.base(for: target) else { return restoreStartOfHistory() }
        let now = position
        if target == now { return .reached }
        // Forward within reach of the current state: no need to go back first.
        if !(target > now && base.executed <= now) { restore(base) }
        return replay { self.runForward(to: target) }
    }

    /// Goes back to the last hit of `conditions` before the current position (as gdb's
    /// reverse-continue); `.startOfHistory` when there is none since the oldest checkpoint.
    @discardableResult
    public func continueBack(until conditions: Conditions) -> Stop {
        let end = position
        for (start, spanEnd) in ring.spans(before: end) {
            restore(start)
            let scan = HitCounter(conditions, before: end, stopAt: nil)
            replay(observer: scan, conditions) { _ = self.runForward(to: spanEnd) }
            if let last = scan.lastHit {
                restore(start)
                let stopper = HitCounter(conditions, before: end, stopAt: scan.hits)
                replay(observer: stopper, conditions) { _ = self.runForward(to: spanEnd) }
                return last
            }
        }
        return restoreStartOfHistory()
    }

    /// Restores the oldest checkpoint (nothing earlier is recorded).
    public func restoreStartOfHistory() -> Stop {
        restore(ring.first!)
        return .startOfHistory
    }

    // MARK: Internals

    /// Takes a checkpoint after the newest (sharing its unchanged pages) and drops the oldest
    /// beyond the budget.
    private func takeCheckpoint() {
        var s = board.snapshot(sharingWith: ring.last)
        if let console { s.console = console() }
        ring.append(s, inputs: replaying?.delivered ?? inputs.entries.count)
    }

    private func checkpointIfDue() {
        // One checkpoint at the first service after each multiple of the interval (services
        // come at every batch, and the batch size is at most the interval).
        guard let last = ring.last, position / interval > last.executed / interval else { return }
        takeCheckpoint()
    }

    private func restore(_ s: MaltaSnapshot) {
        try! board.restore(s)  // a checkpoint of this board: same configuration
        inputsSeen = ring.inputs(at: s)
        onRestore?(s)
    }

    /// Runs `body` with the recorded console input in place of the host's (re-execution must
    /// not block for input or take new input) and, if given, `observer` in place of the CPU's with the watched ranges
    /// of `conditions` added.
    @discardableResult
    private func replay<T>(observer: (any CPUObserver)? = nil, _ conditions: Conditions = Conditions(), _ body: () -> T) -> T {
        let cpu = board.cpu
        let (savedObserver, savedObserves, savedWatches, savedInput) = (cpu.observer, cpu.observesInstructions, cpu.memoryWatches, board.consoleInput)
        cpu.observer = observer
        cpu.observesInstructions = !conditions.breakpoints.isEmpty
        if !conditions.watchpoints.isEmpty { cpu.memoryWatches = savedWatches + conditions.watchpoints.map(\.range) }
        // The console input recorded, from where the state is (no new input, no waiting).
        let replayed = ReplayInput(inputs, board: board, from: inputsSeen ?? inputs.entries.count)
        board.consoleInput = replayed
        board.inputLog = nil
        replaying = replayed
        defer {
            replaying = nil
            inputsSeen = replayed.delivered
            board.inputLog = inputs
            cpu.observer = savedObserver
            cpu.observesInstructions = savedObserves
            if !conditions.watchpoints.isEmpty { cpu.memoryWatches = savedWatches }
            board.consoleInput = savedInput
        }
        return body()
    }

    /// Runs until `target` instructions have retired (or the guest stops on its own).
    private func runForward(to target: UInt64) -> Stop {
        while position < target {
            let outcome = board.run(maxInstructions: target - position)
            if outcome == .stopped || position >= target { return .reached }  // (or a HitCounter stopped it)
            if outcome != .instructionLimit { return .halted(outcome) }
        }
        return .reached
    }
}

/// Counts the hits of `TimeTravel.Conditions` during a re-execution and, with `stopAt`, stops
/// at that hit (1 = the first). A hit's position is the instruction count of the state it
/// stops in (before a breakpoint's instruction, after a watched access or an exception entry);
/// only hits before `before` count (not the one the machine is stopped at, unless
/// `includesLastAccess` and it is the access just made).
private final class HitCounter: CPUObserver {
    let conditions: TimeTravel.Conditions
    let before: UInt64
    let stopAt: Int?
    var hits = 0
    var lastHit: TimeTravel.Stop?

    init(_ conditions: TimeTravel.Conditions, before: UInt64, stopAt: Int?) {
        self.conditions = conditions
        self.before = before
        self.stopAt = stopAt
    }

    private func hit(_ stop: TimeTravel.Stop, _ cpu: CPU, atPosition: Bool = false) -> ObserverAction {
        guard cpu.executedInstructions < before || (atPosition && cpu.executedInstructions == before) else { return .proceed }
        hits += 1
        lastHit = stop
        return hits == stopAt ? .stop : .proceed
    }

    func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction {
        conditions.breakpoints.contains(pc) ? hit(.breakpoint(pc: pc), cpu) : .proceed
    }

    func cpu(_ cpu: CPU, didTakeException trap: Trap) -> ObserverAction {
        conditions.exceptions.contains(trap.code) ? hit(.exception(trap.code), cpu) : .proceed
    }

    func cpu(_ cpu: CPU, didChangeMode change: ModeChange) -> ObserverAction { .proceed }
    func cpu(_ cpu: CPU, didWriteTLB index: Int, entry: TLBEntry, pc: UInt32) -> ObserverAction { .proceed }

    func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction {
        guard conditions.watchpoints.contains(where: { $0.matches(access) }) else { return .proceed }
        return hit(.watchpoint(address: access.virtual, isWrite: access.isWrite), cpu, atPosition: conditions.includesLastAccess)
    }
}
