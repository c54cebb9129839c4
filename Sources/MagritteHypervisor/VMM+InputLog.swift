import MagritteCore
import MagritteMachine

/// Console input as it reached the guests of a VMM, by machine time (`VMM.now`) and guest:
/// what `magritte vmm --record FILE` writes and `--replay FILE` feeds back, and what time
/// travel replays when it re-executes (see `Docs/time-travel.md`).
///
/// The VMM delivers input only at the end of a slice and, when every guest waits and the idle
/// machine is paced to the host's clock, once per wait; both happen at machine times fixed by
/// the run, so an entry delivered again at its time reaches the guest at the same instruction.
/// Whether the idle machine was paced changes how it skips time, so the log says it. The file
/// is text: a line `magritte-vmm-input-log 1 PACED` (0 or 1), then one line per delivery —
/// the machine time, the guest's index and the bytes in hex — and, when the session ended, a
/// line `end POSITION` (`CPU.executedInstructions` at its end).
public final class VMMInputLog {
    public struct Entry: Equatable, Sendable {
        public var time: UInt64
        public var guest: Int
        public var bytes: [UInt8]
        public init(time: UInt64, guest: Int, bytes: [UInt8]) {
            self.time = time
            self.guest = guest
            self.bytes = bytes
        }
    }

    public let paced: Bool
    public private(set) var entries: [Entry] = []
    /// Where the recorded session ended (nil: not known, it goes on).
    public var end: UInt64?

    public init(paced: Bool, entries: [Entry] = [], end: UInt64? = nil) {
        self.paced = paced
        self.entries = entries
        self.end = end
    }

    /// A log to record on `vmm` as it is set up now (paced or not).
    public convenience init(recording vmm: VMM) {
        self.init(paced: vmm.paceIdleToHostClock)
    }

    func record(_ bytes: [UInt8], guest: Int, at time: UInt64) {
        entries.append(Entry(time: time, guest: guest, bytes: bytes))
    }

    /// Keeps the first `count` entries (time travel discarding a future).
    func truncate(to count: Int) {
        if count < entries.count { entries.removeLast(entries.count - count) }
    }

    static let format = InputLogFormat.vmm

    public var text: String {
        VMMInputLog.format.text(flag: paced ? "1" : "0", lines: entries.map { "\($0.time) \($0.guest) " + InputLog.hex($0.bytes) }
                                    + (end.map { ["end \($0)"] } ?? []))
    }

    /// Parses the text of a log; a foreign or malformed file is refused with its line.
    public convenience init(text: String) throws(SnapshotError) {
        var entries: [Entry] = []
        var end: UInt64?
        let paced = try VMMInputLog.format.parse(text, flag: { (flag: Substring) throws(SnapshotError) -> Bool in
            guard flag == "0" || flag == "1" else { throw SnapshotError("the VMM input log's pacing flag '\(flag)' is neither 0 nor 1") }
            return flag == "1"
        }, line: { parts in
            if end == nil, parts.count == 2, parts[0] == "end", let position = UInt64(parts[1]) {
                end = position
                return true
            }
            guard end == nil, parts.count == 3, let time = UInt64(parts[0]), let guest = Int(parts[1]), (0..<64).contains(guest),
                  let bytes = InputLog.bytes(hex: parts[2]), !bytes.isEmpty, time >= entries.last?.time ?? 0 else { return false }
            entries.append(Entry(time: time, guest: guest, bytes: bytes))
            return true
        })
        self.init(paced: paced, entries: entries, end: end)
    }

    public convenience init(contentsOfFile path: String) throws(SnapshotError) {
        try self.init(text: VMMInputLog.format.read(path))
    }

    public func write(toFile path: String) throws(SnapshotError) {
        try VMMInputLog.format.write(text, toFile: path)
    }
}

/// Console input of one guest that replays a `VMMInputLog`: each of the guest's entries when
/// the machine's time reaches the entry's. Never blocks and never reads the host.
public final class VMMReplayInput: ConsoleInput {
    public let log: VMMInputLog
    private unowned let vmm: VMM
    let guest: Int
    private var next: Int

    init(_ log: VMMInputLog, vmm: VMM, guest: Int, from index: Int) {
        self.log = log
        self.vmm = vmm
        self.guest = guest
        next = index
        skipOthers()
    }

    /// Replays `log` on `vmm` from its start: `guests` (those that had console input when it
    /// was recorded) read it, and the idle machine is paced as it was then. Refuses a log with
    /// input for another guest.
    public static func replay(_ log: VMMInputLog, on vmm: VMM, guests: [Guest]) throws(SnapshotError) {
        if let bad = log.entries.first(where: { e in !guests.contains { $0.index == e.guest } }) {
            let name = bad.guest < vmm.guests.count ? "guest \(vmm.guests[bad.guest].name)" : "guest \(bad.guest + 1), which this VMM does not have"
            throw SnapshotError("the VMM input log has input for \(name), not for the console guest\(guests.isEmpty ? " (give --console)" : "")")
        }
        for g in guests { g.board.consoleInput = VMMReplayInput(log, vmm: vmm, guest: g.index, from: 0) }
        vmm.paceIdleToHostClock = log.paced
    }

    /// Replaces the console input of the guests that have one by `log` from entry `index` on
    /// (time travel's re-execution); returns the replay to ask how far it got.
    static func install(_ log: VMMInputLog, on vmm: VMM, from index: Int) -> VMMReplay {
        let replay = VMMReplay()
        for g in vmm.guests where g.board.consoleInput != nil {
            let input = VMMReplayInput(log, vmm: vmm, guest: g.index, from: index)
            replay.inputs.append(input)
            g.board.consoleInput = input
        }
        replay.start = index
        return replay
    }

    private func skipOthers() {
        while next < log.entries.count, log.entries[next].guest != guest { next += 1 }
    }

    /// Entries of this guest delivered since `from`.
    var delivered = 0

    public func poll() -> [UInt8] {
        guard next < log.entries.count, log.entries[next].time <= vmm.now else { return [] }
        let bytes = log.entries[next].bytes
        next += 1
        delivered += 1
        skipOthers()
        return bytes
    }

    public func waitForInput() -> [UInt8]? {
        next < log.entries.count ? poll() : nil
    }

    public func waitForInput(timeoutNanoseconds: UInt64) -> [UInt8] { poll() }

    /// Entries not delivered yet.
    public var remaining: Int { log.entries[next...].filter { $0.guest == guest }.count }
}

/// The replay inputs of one re-execution.
final class VMMReplay {
    var inputs: [VMMReplayInput] = []
    var start = 0
    /// Entries of the log the state has seen after the re-execution: those before `start` and
    /// those delivered (entries are delivered in the order recorded, by time).
    var delivered: Int { start + inputs.reduce(0) { $0 + $1.delivered } }
}
