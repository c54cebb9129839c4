import MagritteCore

/// Time travel's checkpoints, oldest first, by position, for a bare board (`TimeTravel`) and a
/// VMM (`VMMTimeTravel`): each shares with the one before it the RAM pages that did not change
/// between them (take it with the newest as `sharingWith`), and only what it adds counts against
/// the memory budget. Beyond the budget the oldest are dropped (the two newest always stay).
public final class CheckpointRing<C: MachineSnapshot> {
    public private(set) var checkpoints: [C] = []
    /// At most this many bytes of checkpoints are kept.
    public var memoryBudget: Int
    /// Bytes the checkpoints hold, each shared page counted once.
    public private(set) var memoryUsed = 0
    /// What each checkpoint adds: its state and the pages the one before does not share.
    private var costs: [Int] = []
    /// Entries of the input log each checkpoint's state had seen, by position.
    private var inputsSeen: [UInt64: Int] = [:]

    public init(memoryBudget: Int) { self.memoryBudget = memoryBudget }

    public var first: C? { checkpoints.first }
    public var last: C? { checkpoints.last }
    public var count: Int { checkpoints.count }
    /// The oldest position that can be reached.
    public var startOfHistory: UInt64 { checkpoints.first?.executed ?? 0 }

    /// Appends `c`, taken after the newest, whose state had seen `inputs` entries of the input
    /// log; then drops the oldest beyond the budget.
    public func append(_ c: C, inputs: Int) {
        costs.append(c.byteCount(notSharedWith: checkpoints.last))
        memoryUsed += costs.last!
        checkpoints.append(c)
        inputsSeen[c.executed] = inputs
        while memoryUsed > memoryBudget && checkpoints.count > 2 { removeFirst() }
    }

    /// Entries of the input log `c`'s state had seen.
    public func inputs(at c: C) -> Int { inputsSeen[c.executed] ?? 0 }

    /// Forgets the checkpoints taken after `position`.
    public func removeAll(after position: UInt64) {
        while let c = checkpoints.last, c.executed > position { removeLast() }
    }

    public func removeLast() {
        memoryUsed -= costs.removeLast()
        checkpoints.removeLast()
    }

    public func removeAll() {
        checkpoints = []
        costs = []
        inputsSeen = [:]
        memoryUsed = 0
    }

    private func removeFirst() {
        memoryUsed -= costs.removeFirst() + costs.first!
        checkpoints.removeFirst()
        // The new oldest holds alone the pages it shared with the one dropped.
        costs[0] = checkpoints[0].byteCount(notSharedWith: nil)
        memoryUsed += costs[0]
    }

    /// The newest checkpoint at or before `position`; nil before the start of history.
    public func base(for position: UInt64) -> C? { checkpoints.last { $0.executed <= position } }

    /// The spans of history before `end`, newest first: each checkpoint and where its span
    /// ends (the next checkpoint's position, or `end`). A reverse search scans them in turn.
    public func spans(before end: UInt64) -> [(start: C, end: UInt64)] {
        var spans: [(start: C, end: UInt64)] = []
        guard !checkpoints.isEmpty else { return spans }
        var spanEnd = end
        for c in checkpoints[...(checkpoints.lastIndex { $0.executed < end } ?? 0)].reversed() {
            spans.append((c, spanEnd))
            spanEnd = c.executed
        }
        return spans
    }
}

/// What reverse execution on a bare board (`TimeTravel`) and on a VMM (`VMMTimeTravel`) share:
/// a ring of checkpoints.
public protocol CheckpointHistory: AnyObject {
    associatedtype Snapshot: MachineSnapshot
    associatedtype Stop
    var ring: CheckpointRing<Snapshot> { get }
    /// The position now (`CPU.executedInstructions`).
    var position: UInt64 { get }
    /// Puts the machine where it was when `instruction` instructions had executed.
    func goTo(instruction: UInt64) -> Stop
    /// Restores the oldest checkpoint and says so (`.startOfHistory`).
    func restoreStartOfHistory() -> Stop
}

extension CheckpointHistory {
    /// At most this many bytes of checkpoints are kept; beyond, the oldest are dropped.
    public var memoryBudget: Int {
        get { ring.memoryBudget }
        set { ring.memoryBudget = newValue }
    }
    /// Checkpoints, oldest first, by position (`executed`); each shares with the one before the
    /// RAM pages that did not change.
    public var checkpoints: [Snapshot] { ring.checkpoints }
    /// The oldest position that can be reached.
    public var startOfHistory: UInt64 { ring.startOfHistory }
    /// Bytes the checkpoints hold (a page shared by several counted once).
    public var memoryUsed: Int { ring.memoryUsed }

    /// `goTo(position - n)`, or the start of history if fewer than `n` instructions are recorded.
    public func goBack(_ n: UInt64) -> Stop {
        let now = position
        guard n <= now, now - n >= startOfHistory else { return restoreStartOfHistory() }
        return goTo(instruction: now - n)
    }
}
