import Foundation
import MagritteCore
import MagritteMachine
import MagritteTestSupport
import Testing

/// Record and replay of console input (`InputLog`, `ReplayInput`, `magritte boot --record /
/// --replay`): a recorded interactive session runs again exactly.
@Suite struct RecordReplayTests {
    /// Echoes every byte typed plus one, until it reads 'q', then powers off (polling LSR.DR).
    static let echoUntilQ: [UInt32] = [
        0x3C08_B800, 0x3508_03F8,              // t0 = 0xB80003F8 (UART, kseg1)
        0x9109_0005, 0x3129_0001, 0x1120_FFFD, 0, // loop: until LSR.DR
        0x910A_0000, 0x240B_0071, 0x114B_0005, 0, // t2 = RBR; 'q' -> off
        0x254A_0001, 0xA10A_0000, 0x1000_FFF5, 0, // THR = t2 + 1; again
        0x3C0C_BF00, 0x358C_0500, 0x240D_0042, 0xA18D_0000, // SOFTRES = 0x42
        0x1000_FFFF, 0,
    ]

    /// Hands out its chunks one per poll, every `every` polls, as a person typing would.
    final class Typist: ConsoleInput {
        var chunks: [[UInt8]]
        let every: Int
        var polls = 0
        init(_ chunks: [String], every: Int) {
            self.chunks = chunks.map { Array($0.utf8) }
            self.every = every
        }
        func poll() -> [UInt8] {
            polls += 1
            guard polls % every == 0, !chunks.isEmpty else { return [] }
            return chunks.removeFirst()
        }
        func waitForInput() -> [UInt8]? { chunks.isEmpty ? nil : chunks.removeFirst() }
    }

    struct Session: Equatable {
        var output: String
        var outcome: RunOutcome
        var executed: UInt64
        var pc: UInt32
        var gprs: [UInt32]
    }

    static func run(_ input: (Malta) -> (any ConsoleInput), record: Bool, batchSize: UInt64 = 100_000) throws -> (Session, InputLog?) {
        var out: [UInt8] = []
        let board = Malta(configuration: MaltaConfiguration(ramSize: 16 << 20)) { out.append($0) }
        try board.load(elf: miniELF(echoUntilQ))
        board.boot()
        board.batchSize = batchSize
        board.consoleInput = input(board)
        if record { board.inputLog = InputLog(recording: board) }
        let outcome = board.run(maxInstructions: 50_000_000)
        let cpu = board.cpu
        return (Session(output: String(decoding: out, as: UTF8.self), outcome: outcome, executed: cpu.executedInstructions,
                        pc: cpu.pc, gprs: (0..<32).map(cpu.gpr)), board.inputLog)
    }

    @Test func recordedSessionReplaysExactly() throws {
        let (recorded, log) = try Self.run({ _ in Typist(["ab", "c", "xyz", "q"], every: 3) }, record: true)
        #expect(recorded.output == "bcdyz{" && recorded.outcome == .poweredOff)
        let entries = try #require(log).entries
        #expect(entries.map { String(decoding: $0.bytes, as: UTF8.self) } == ["ab", "c", "xyz", "q"])
        #expect(entries.map(\.position) == entries.map(\.position).sorted() && Set(entries.map(\.position)).count == 4)

        // Through the text of the file.
        let parsed = try InputLog(text: try #require(log).text)
        #expect(parsed.entries == entries && parsed.quantum == 100_000)
        let (replayed, _) = try Self.run({ ReplayInput(parsed, board: $0) }, record: false, batchSize: 1)
        #expect(replayed == recorded)

        // Input typed at other moments is another session (the replay is not a coincidence).
        let (other, _) = try Self.run({ _ in Typist(["ab", "c", "xyz", "q"], every: 5) }, record: false)
        #expect(other.output == recorded.output && other.executed != recorded.executed)
    }

    /// Going back across typed input and forward again replays the input (`TimeTravel.inputs`).
    @Test func timeTravelReplaysTheInputItCrosses() throws {
        var out: [UInt8] = []
        let board = Malta(configuration: MaltaConfiguration(ramSize: 16 << 20)) { out.append($0) }
        try board.load(elf: miniELF(Self.echoUntilQ))
        board.boot()
        board.batchSize = 100_000
        board.consoleInput = Typist(["ab", "c", "xyz", "q"], every: 3)
        let travel = TimeTravel(board: board, interval: 150_000)
        travel.console = { out }
        travel.onRestore = { out = $0.console }
        #expect(board.run(maxInstructions: 50_000_000) == .poweredOff)
        let end = board.cpu.executedInstructions
        let (full, registers) = (out, (0..<32).map(board.cpu.gpr))
        #expect(String(decoding: full, as: UTF8.self) == "bcdyz{" && travel.inputs.entries.count == 4)
        let middle = travel.inputs.entries[1].position - 10  // before "c" is typed

        #expect(travel.goTo(instruction: middle) == .reached)
        #expect(String(decoding: out, as: UTF8.self) == "bc")
        #expect(travel.goTo(instruction: end) == .reached)
        #expect(out == full && (0..<32).map(board.cpu.gpr) == registers && board.poweredOff)
        #expect(travel.stepBack(end) == .reached && out.isEmpty)
        #expect(travel.goTo(instruction: end) == .reached && out == full)

        // Going back, then running live: the recorded future input is dropped, new input is read.
        _ = travel.goTo(instruction: middle)
        travel.discardFuture()
        #expect(travel.inputs.entries.count == 1)
        board.consoleInput = Typist(["Q", "q"], every: 1)
        #expect(board.run(maxInstructions: 50_000_000) == .poweredOff)
        #expect(String(decoding: out, as: UTF8.self) == "bcR" && travel.inputs.entries.count == 3)
    }

    @Test func badLogsAreRefused() {
        func refused(_ text: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
            expectRefused(text, message, by: { _ = try InputLog(text: $0) }, sourceLocation: sourceLocation)
        }
        refused("", "not a Magritte input log")
        refused("MAGRSNAP....", "not a Magritte input log")
        refused("magritte-input-log 2 100\n", "format version 2")
        refused("magritte-input-log 1 0\n", "not a positive number")
        refused("magritte-input-log 1 100\n5 6162\nfive 63\n", "corrupt at line 3")
        refused("magritte-input-log 1 100\n5 616\n", "corrupt at line 2")
        refused("magritte-input-log 1 100\n9 61\n5 62\n", "corrupt at line 3")
        #expect(throws: SnapshotError.self) { try InputLog(contentsOfFile: "/nonexistent/log") }
    }

    /// Runs the `magritte` built next to the tests with `arguments`, typing each chunk on its
    /// stdin 0.2 s apart, then closing it.
    static func magritte(_ arguments: [String], typing: [String]) throws -> (out: String, err: String, status: Int32) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: VMMCommandTests.executable!)
        p.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        (p.standardInput, p.standardOutput, p.standardError) = (stdin, stdout, stderr)
        try p.run()
        for chunk in typing {
            stdin.fileHandleForWriting.write(Data(chunk.utf8))
            usleep(200_000)
        }
        try stdin.fileHandleForWriting.close()
        let out = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (out, err, p.terminationStatus)
    }

    /// `magritte boot --record` with typed input, then `--replay` with none: the same output and
    /// instruction count.
    @Test(.enabled(if: VMMCommandTests.executable != nil)) func bootRecordAndReplay() throws {
        let files = TemporaryFiles()
        defer { files.remove() }
        let elf = files.url("echo-q.elf"), log = files.url("session.log")
        try Data(try miniELF(Self.echoUntilQ).bytes).write(to: elf)
        func boot(_ options: [String], typing: [String]) throws -> (out: String, err: String, status: Int32) {
            try Self.magritte(["boot", elf.path, "--stats", "--max-instructions", "400000000"] + options, typing: typing)
        }
        let recorded = try boot(["--record", log.path], typing: ["hi", "q"])
        #expect(recorded.out == "ij" && recorded.status == 0, "\(recorded)")
        let replayed = try boot(["--replay", log.path], typing: [])
        #expect(replayed.out == recorded.out && replayed.status == 0, "\(replayed)")
        let count = { (s: String) in s.split(separator: "\n").first { $0.hasPrefix("instructions:") } }
        #expect(count(replayed.err) != nil && count(replayed.err) == count(recorded.err))

        let both = try boot(["--record", log.path, "--replay", log.path], typing: [])
        #expect(both.status != 0 && both.err.contains("cannot be used together"))
        let missing = try boot(["--replay", "/nonexistent/log"], typing: [])
        #expect(missing.status == 1 && missing.err.contains("cannot read the input log"))
    }
}
