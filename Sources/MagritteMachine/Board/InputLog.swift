#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MagritteCore

/// Console input as it reached a guest, by position (`CPU.executedInstructions`): what
/// `magritte boot|linux --record FILE` writes and `--replay FILE` feeds back, so that an
/// interactive session runs again exactly (see `Docs/time-travel.md`).
///
/// The board delivers input only when it services its devices, at points fixed by guest time
/// (`Malta.run`); `quantum` is the batch size those points follow, which a replay must use too.
/// The file is text: a line `magritte-input-log 1 QUANTUM`, then one line per delivery, the
/// position and the bytes in hex.
public final class InputLog {
    public struct Entry: Equatable, Sendable {
        public var position: UInt64
        public var bytes: [UInt8]
        public init(position: UInt64, bytes: [UInt8]) {
            self.position = position
            self.bytes = bytes
        }
    }

    public let quantum: UInt64
    public private(set) var entries: [Entry] = []

    public init(quantum: UInt64, entries: [Entry] = []) {
        self.quantum = quantum
        self.entries = entries
    }

    /// The log to record on `board` as it is set up now (its batch size, paced or not).
    public convenience init(recording board: Malta) {
        self.init(quantum: board.paceIdleToHostClock ? board.pacedBatchSize : board.batchSize)
    }

    func record(_ bytes: [UInt8], at position: UInt64) {
        entries.append(Entry(position: position, bytes: bytes))
    }

    /// Keeps the first `count` entries (time travel discarding a future).
    func truncate(to count: Int) {
        if count < entries.count { entries.removeLast(entries.count - count) }
    }

    static let format = InputLogFormat.bare

    public var text: String {
        InputLog.format.text(flag: "\(quantum)", lines: entries.map { "\($0.position) " + InputLog.hex($0.bytes) })
    }

    /// Parses the text of a log; a foreign or malformed file is refused with its line.
    public convenience init(text: String) throws(SnapshotError) {
        var entries: [Entry] = []
        let quantum = try InputLog.format.parse(text, flag: { (flag: Substring) throws(SnapshotError) -> UInt64 in
            guard let quantum = UInt64(flag), quantum > 0 else { throw SnapshotError("the input log's batch size '\(flag)' is not a positive number") }
            return quantum
        }, line: { parts in
            guard parts.count == 2, let position = UInt64(parts[0]), let bytes = InputLog.bytes(hex: parts[1]), !bytes.isEmpty,
                  position >= entries.last?.position ?? 0 else { return false }
            entries.append(Entry(position: position, bytes: bytes))
            return true
        })
        self.init(quantum: quantum, entries: entries)
    }

    public convenience init(contentsOfFile path: String) throws(SnapshotError) {
        try self.init(text: InputLog.format.read(path))
    }

    public func write(toFile path: String) throws(SnapshotError) {
        try InputLog.format.write(text, toFile: path)
    }

    /// The text of the log file at `path`; errors name it as `what`.
    public static func readText(_ path: String, what: String) throws(SnapshotError) -> String {
        guard let bytes = readWholeFile(path) else {
            throw SnapshotError("cannot read \(what) '\(path)': \(String(cString: strerror(errno)))")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes a log's `text` to `path`; errors name it as `what`.
    public static func write(_ text: String, toFile path: String, what: String) throws(SnapshotError) {
        guard let f = fopen(path, "w") else {
            throw SnapshotError("cannot write \(what) '\(path)': \(String(cString: strerror(errno)))")
        }
        let ok = fputs(text, f) >= 0
        guard fclose(f) == 0, ok else { throw SnapshotError("cannot write \(what) '\(path)': \(String(cString: strerror(errno)))") }
    }
}

/// The text format of both input logs (`InputLog`, `VMMInputLog`): a first line `NAME 1 FLAG`
/// (the format version is 1), then one line per entry, its fields separated by spaces.
public struct InputLogFormat: Sendable {
    /// The first word of the file, the log's name in errors, and its flag's name in them.
    public let name: String
    public let what: String
    public let flagName: String

    /// A bare machine's (`InputLog`) and a VMM's (`VMMInputLog`).
    public static let bare = InputLogFormat(name: "magritte-input-log", what: "input log", flagName: "N")
    public static let vmm = InputLogFormat(name: "magritte-vmm-input-log", what: "VMM input log", flagName: "PACED")

    /// The file's text: the first line with `flag`, then `lines`.
    public func text(flag: String, lines: [String]) -> String {
        "\(name) 1 \(flag)\n" + lines.map { $0 + "\n" }.joined()
    }

    /// Reads `text`: checks its first line, reads its flag with `flag`, and gives each other
    /// line that is not empty, split into fields, to `line`, which returns false on a malformed
    /// one. A foreign or malformed file is refused with its line.
    public func parse<Flag>(_ text: String, flag: (Substring) throws(SnapshotError) -> Flag,
                            line: ([Substring]) -> Bool) throws(SnapshotError) -> Flag {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let head = lines.first.map { $0.split(separator: " ") } ?? []
        guard head.count == 3, head[0] == name else {
            throw SnapshotError("not a Magritte \(what) (the first line is not \"\(name) 1 \(flagName)\")")
        }
        guard head[1] == "1" else { throw SnapshotError("the \(what) has format version \(head[1]); this Magritte reads version 1") }
        let value = try flag(head[2])
        for (i, text) in lines.dropFirst().enumerated() where !text.isEmpty {
            guard line(text.split(separator: " ")) else { throw SnapshotError("the \(what) is corrupt at line \(i + 2): '\(text.prefix(60))'") }
        }
        return value
    }

    /// The text of the log file at `path`.
    public func read(_ path: String) throws(SnapshotError) -> String {
        try InputLog.readText(path, what: "the \(what)")
    }

    /// Writes a log's `text` to `path`.
    public func write(_ text: String, toFile path: String) throws(SnapshotError) {
        try InputLog.write(text, toFile: path, what: "the \(what)")
    }
}

extension InputLog {
    /// `bytes` as hex digit pairs; the logs' format.
    public static func hex(_ bytes: [UInt8]) -> String { bytes.map { Hex.padded($0, width: 2) }.joined() }

    /// The bytes a string of hex digit pairs spells (nil: not such a string); the logs' format.
    public static func bytes(hex s: Substring) -> [UInt8]? {
        guard s.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            guard let b = UInt8(s[i..<j], radix: 16) else { return nil }
            out.append(b)
            i = j
        }
        return out
    }
}

/// Console input that replays an `InputLog`: each entry's bytes at its position. Set it as the
/// board's `consoleInput` after `prepare(board)`; host input is not read.
public final class ReplayInput: ConsoleInput {
    public let log: InputLog
    private unowned let board: Malta
    private var next = 0

    /// Replays `log` on `board`, whose batch size becomes the log's (and pacing off).
    public init(_ log: InputLog, board: Malta) {
        self.log = log
        self.board = board
        board.batchSize = log.quantum
        board.paceIdleToHostClock = false
    }

    /// Replays `log` from entry `index` on, on a board already set up as when it was recorded.
    init(_ log: InputLog, board: Malta, from index: Int) {
        self.log = log
        self.board = board
        next = index
    }

    /// Entries not delivered yet.
    public var remaining: Int { log.entries.count - next }
    /// The entries delivered (recorded and replayed).
    var delivered: Int { next }

    public func poll() -> [UInt8] {
        guard next < log.entries.count, log.entries[next].position <= board.cpu.executedInstructions else { return [] }
        defer { next += 1 }
        return log.entries[next].bytes
    }

    /// Idle with nothing to wake the guest: the next entry is due now (the service that follows
    /// delivers it), or the replay is over.
    public func waitForInput() -> [UInt8]? {
        guard next < log.entries.count, log.entries[next].position <= board.cpu.executedInstructions else { return nil }
        return []
    }

    public func waitForInput(timeoutNanoseconds: UInt64) -> [UInt8] { [] }
}
