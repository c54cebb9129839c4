import Foundation
import MagritteCore
import MagritteMachine
import Testing

/// Every guest program (Guests/tests, Guests/bench, teachos) on the translator and on the
/// interpreter: the console output, the stop reason, the cycle, retired, faulted and idle counts,
/// the exception counts and the final pc must be identical (`Docs/jit.md`). The bench programs
/// run for a fixed budget (they take billions of instructions to the end), which also checks
/// that a budget ends both engines at the same instruction.
@Suite("Guest programs on both engines", .enabled(if: Engine.jitSupported))
struct EngineEquivalenceTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let guests = root.appendingPathComponent(".build/guests")

    static func elves(_ dir: String) -> [String] {
        let path = guests.appendingPathComponent(dir).path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { $0.hasSuffix(".elf") }.sorted().map { "\(dir)/\($0)" }
    }

    struct Outcome: Equatable, CustomStringConvertible {
        var console: String
        var outcome: String
        var cycles: UInt64
        var retired: UInt64
        var faulted: UInt64
        var idle: UInt64
        var exceptions: [UInt64]
        var pc: UInt32
        var description: String {
            "outcome=\(outcome) cycles=\(cycles) retired=\(retired) faulted=\(faulted) idle=\(idle) pc=\(String(pc, radix: 16)) exceptions=\(exceptions) console=\(console.count) bytes"
        }
    }

    static func run(_ elf: String, engine: Engine, commandLine: String = "", budget: UInt64) throws -> (Outcome, JITStatistics) {
        var bytes: [UInt8] = []
        var config = MaltaConfiguration(ramSize: 128 << 20)
        config.cpu.engine = engine
        config.commandLine = commandLine
        let board = Malta(configuration: config) { bytes.append($0) }
        try board.load(path: guests.appendingPathComponent(elf).path)
        board.boot()
        let outcome = board.run(maxInstructions: budget)
        let c = board.cpu
        #expect(c.engine == engine)
        return (Outcome(console: String(decoding: bytes, as: UTF8.self), outcome: "\(outcome)", cycles: c.cycles,
                        retired: c.retiredInstructions, faulted: c.faultedInstructions, idle: c.idleCycles,
                        exceptions: c.exceptionCounts, pc: c.pc), c.jitStatistics)
    }

    @discardableResult
    static func compare(_ elf: String, commandLine: String = "", budget: UInt64) throws -> JITStatistics {
        let (a, _) = try run(elf, engine: .interpreter, commandLine: commandLine, budget: budget)
        let (b, stats) = try run(elf, engine: .jit, commandLine: commandLine, budget: budget)
        #expect(a == b, "\(elf) \(commandLine): interpreter \(a), jit \(b)")
        if a.console != b.console {
            let la = a.console.split(separator: "\n"), lb = b.console.split(separator: "\n")
            if let i = Array(zip(la, lb)).firstIndex(where: { $0 != $1 }) {
                Issue.record("\(elf): first differing line \(i): interpreter \(la[i]) / jit \(lb[i])")
            }
        }
        #expect(stats.blocks > 0, "\(elf): the translator never ran")
        return stats
    }

    @Test("Guests/tests", arguments: elves("tests"))
    func testPrograms(elf: String) throws {
        try Self.compare(elf, budget: 200_000_000)
    }

    @Test("Guests/bench for 30 million instructions", arguments: elves("bench"))
    func benchPrograms(elf: String) throws {
        let stats = try Self.compare(elf, budget: 30_000_000)
        // Their loops run as chained blocks.
        #expect(stats.links > 0, "\(elf): no block was chained")
    }

    @Test("teachos", arguments: ["spin", "wait"])
    func teachos(idle: String) throws {
        try Self.compare("os/teachos.elf", commandLine: "idle=\(idle)", budget: 60_000_000)
    }

    @Test("The programs are there")
    func programsExist() {
        #expect(Self.elves("tests").count >= 40, "run Scripts/build-guests first")
        #expect(Self.elves("bench").count >= 4, "run Scripts/build-guests first")
    }
}
