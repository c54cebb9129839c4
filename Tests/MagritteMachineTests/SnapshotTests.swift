import Foundation
import MagritteCore
@testable import MagritteMachine
import Testing

/// Machine snapshots (`Docs/time-travel.md`): run to N, snapshot, run M more gives the same
/// console, registers, RAM, instruction count and event trace as restoring the snapshot (in
/// the same board, in another board, from a file) and running M; bad files are refused with
/// a clear error and change nothing.
@Suite struct SnapshotTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func guest(_ name: String) -> String { root.appendingPathComponent(".build/guests/\(name).elf").path }

    /// Records every exception and mode change with the instruction count at which it happened.
    final class EventTrace: CPUObserver {
        var events: [String] = []
        func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction { .proceed }
        func cpu(_ cpu: CPU, didTakeException trap: Trap) -> ObserverAction {
            events.append("\(cpu.retiredInstructions) exc \(trap.code) pc=\(String(trap.pc, radix: 16))")
            return .proceed
        }
        func cpu(_ cpu: CPU, didChangeMode change: ModeChange) -> ObserverAction {
            events.append("\(cpu.retiredInstructions) mode \(change.from)->\(change.to)")
            return .proceed
        }
        func cpu(_ cpu: CPU, didWriteTLB index: Int, entry: TLBEntry, pc: UInt32) -> ObserverAction {
            events.append("\(cpu.retiredInstructions) tlbw \(index)")
            return .proceed
        }
        func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction { .proceed }
    }

    /// What must be the same after the continuation (RAM is compared separately, byte for byte).
    struct Observed: Equatable {
        var outcome: RunOutcome
        var console: String
        var events: [String]
        var gprs: [UInt32]
        var pc: UInt32, hi: UInt32, lo: UInt32
        var cp0: CP0State
        var count: UInt32, cause: UInt32
        var retired: UInt64, cycles: UInt64, idle: UInt64
        var exceptionCounts: [UInt64]
    }

    final class Board {
        let malta: Malta
        let output = OutputBuffer()
        init(_ elf: String, commandLine: String, ramSize: Int = 16 << 20) throws {
            var config = MaltaConfiguration(ramSize: ramSize)
            config.commandLine = commandLine
            let output = self.output
            malta = Malta(configuration: config) { output.append($0) }
            try malta.load(path: elf)
            malta.boot()
        }

        /// Runs `m` instructions watched by an `EventTrace` and says what happened.
        func continuation(_ m: UInt64) -> Observed {
            let trace = EventTrace()
            let start = output.bytes.count
            malta.cpu.observer = trace
            let outcome = malta.run(maxInstructions: m)
            malta.cpu.observer = nil
            let cpu = malta.cpu
            return Observed(outcome: outcome, console: String(decoding: output.bytes[start...], as: UTF8.self),
                            events: trace.events, gprs: (0..<32).map(cpu.gpr), pc: cpu.pc, hi: cpu.hi, lo: cpu.lo,
                            cp0: cpu.cp0, count: cpu.count, cause: cpu.cause, retired: cpu.retiredInstructions,
                            cycles: cpu.cycles, idle: cpu.idleCycles, exceptionCounts: cpu.exceptionCounts)
        }

        func sameRAM(as other: Board) -> Bool {
            malta.bus.ramSize == other.malta.bus.ramSize && memcmp(malta.bus.ram, other.malta.bus.ram, malta.bus.ramSize) == 0
        }
    }

    static func requireGuest(_ name: String) throws -> String {
        let path = guest(name)
        try #require(FileManager.default.fileExists(atPath: path), "\(path) is missing: run Scripts/build-guests")
        return path
    }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString).snap").path
    }

    /// The promise, on `elf`: the straight run's continuation after N equals the continuation of
    /// a restore into a board that had run elsewhere, and of a restore from a file.
    static func checkDeterminism(_ elf: String, commandLine: String, n: UInt64, m: UInt64) throws -> Observed {
        let straight = try Board(elf, commandLine: commandLine)
        _ = straight.malta.run(maxInstructions: n)
        let snap = straight.malta.snapshot()
        #expect(snap.instructionCount == straight.malta.cpu.retiredInstructions)
        let path = temporaryPath("determinism")
        defer { unlink(path) }
        try snap.write(toFile: path)
        let expected = straight.continuation(m)

        // A board that ran to somewhere else first (its RAM, TLB, devices all differ).
        let elsewhere = try Board(elf, commandLine: commandLine)
        _ = elsewhere.malta.run(maxInstructions: n / 3 + m)
        try elsewhere.malta.restore(snap)
        #expect(elsewhere.continuation(m) == expected)
        #expect(elsewhere.sameRAM(as: straight))

        let fromFile = try Board(elf, commandLine: commandLine)
        try fromFile.malta.restore(fromFile: path)
        #expect(fromFile.continuation(m) == expected)
        #expect(fromFile.sameRAM(as: straight))

        // The same board, going back to the snapshot and running again.
        try straight.malta.restore(snap)
        #expect(straight.continuation(m) == expected)
        return expected
    }

    @Test func bareMetalTimerGuestContinuesIdentically() throws {
        let elf = try Self.requireGuest("tests/timer_int")
        let whole = try Board(elf, commandLine: "")
        _ = whole.malta.run(maxInstructions: 50_000_000)
        let total = whole.malta.cpu.retiredInstructions
        try #require(whole.malta.poweredOff && total > 1000)
        let after = try Self.checkDeterminism(elf, commandLine: "", n: total / 2, m: total)
        #expect(after.outcome == .poweredOff)
        #expect(after.events.contains { $0.contains("exc Int") }, "timer interrupts after the snapshot point")
        #expect(!after.console.isEmpty)
    }

    @Test func teachosContinuesIdenticallyAcrossTimerInterrupts() throws {
        let elf = try Self.requireGuest("os/teachos")
        let whole = try Board(elf, commandLine: "idle=wait")
        #expect(whole.malta.run(maxInstructions: 60_000_000) == .poweredOff)
        let total = whole.malta.cpu.retiredInstructions
        // Snapshot in the middle of the run, continue to the end.
        let after = try Self.checkDeterminism(elf, commandLine: "idle=wait", n: total / 2, m: total)
        #expect(after.outcome == .poweredOff)
        #expect(after.events.filter { $0.contains("exc Int") }.count > 5)
        #expect(after.events.contains { $0.contains("exc Sys") })
        #expect(after.idle > 0)
        #expect(!after.console.isEmpty)
    }

    // MARK: The file format

    static func smallSnapshot() throws -> (Board, MaltaSnapshot) {
        let board = try Board(try requireGuest("tests/timer_int"), commandLine: "")
        _ = board.malta.run(maxInstructions: 20_000)
        return (board, board.malta.snapshot())
    }

    @Test func fileRoundTripsAndIsCompact() throws {
        let (board, snap) = try Self.smallSnapshot()
        let bytes = snap.encoded()
        let decoded = try MaltaSnapshot(decoding: bytes)
        #expect(decoded.encoded() == bytes)
        #expect(decoded.instructionCount == snap.instructionCount && decoded.storedPages == snap.storedPages)
        // 16 MiB of RAM, a few pages used: the file holds those pages, run-length encoded.
        #expect(snap.storedPages > 0 && snap.storedPages < 64)
        #expect(bytes.count < snap.storedPages * 4096, "\(bytes.count) bytes for \(snap.storedPages) pages")
        _ = board
    }

    @Test func runLengthCodeRoundTrips() throws {
        var rng = SystemRandomNumberGenerator()
        for trial in 0..<200 {
            var page = [UInt8](repeating: 0, count: 4096)
            var i = 0
            while i < 4096 {
                let n = min(Int.random(in: 1...300, using: &rng), 4096 - i)
                let v = UInt8.random(in: 0...255, using: &rng)
                for j in i..<i + n { page[j] = trial % 2 == 0 ? v : UInt8.random(in: 0...3, using: &rng) }
                i += n
            }
            let code = page.withUnsafeBufferPointer { RunLength.encode($0) }
            #expect(try RunLength.decode(code, count: 4096) == page)
        }
    }

    /// Restoring `bytes` fails with a message containing `message`, and the board is unchanged.
    static func expectRefused(_ bytes: [UInt8], _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (board, _) = try smallSnapshot()
        let before = board.malta.snapshot().encoded()
        let path = temporaryPath("bad")
        defer { unlink(path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            try board.malta.restore(fromFile: path)
            Issue.record("a bad snapshot was accepted (expected: \(message))", sourceLocation: sourceLocation)
        } catch {
            #expect(error.message.contains(message), "\(error.message)", sourceLocation: sourceLocation)
        }
        #expect(board.malta.snapshot().encoded() == before, "the refused restore changed the board", sourceLocation: sourceLocation)
    }

    static func withChecksum(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes
        let sum = fnv1a(Array(b[MaltaSnapshot.headerSize...]))
        for i in 0..<8 { b[24 + i] = UInt8(truncatingIfNeeded: sum >> (8 * UInt64(i))) }
        return b
    }

    @Test func badFilesAreRefusedAndChangeNothing() throws {
        let good = try Self.smallSnapshot().1.encoded()
        try Self.expectRefused([], "not a Magritte snapshot")
        try Self.expectRefused(Array("#!/bin/sh\necho hello\n".utf8), "not a Magritte snapshot")
        try Self.expectRefused(Array(good[0..<20]), "truncated")
        try Self.expectRefused(Array(good.dropLast(100)), "truncated")
        try Self.expectRefused(good + [0], "corrupt")
        let current = MaltaSnapshot.formatVersion
        var version = good
        version[8] = UInt8(current + 1)
        try Self.expectRefused(version, "format version \(current + 1) (a newer Magritte wrote it); this Magritte reads version \(current)")
        var kind = good
        kind[12] = 7
        try Self.expectRefused(kind, "another kind of machine")
        for offset in [MaltaSnapshot.headerSize + 3, good.count / 2, good.count - 1] {
            var flipped = good
            flipped[offset] ^= 0x10
            try Self.expectRefused(flipped, "checksum")
        }
        // Corrupt state under a correct checksum: a flag byte of the CPU state set to 5.
        // The machine state begins after the configuration and counters (8+4+1+8+4+8+8+8+8+8 = 65
        // bytes) and its 4-byte length; the CPU's segmentation flag follows the ROM entry and
        // the TLB size (8 bytes in).
        var state = good
        state[MaltaSnapshot.headerSize + 65 + 4 + 8] = 5
        try Self.expectRefused(Self.withChecksum(state), "corrupt")
        // A page list that claims more pages than are there.
        var cut = Array(good.dropLast(10))
        let length = UInt64(cut.count - MaltaSnapshot.headerSize)
        for i in 0..<8 { cut[16 + i] = UInt8(truncatingIfNeeded: length >> (8 * UInt64(i))) }
        try Self.expectRefused(Self.withChecksum(cut), "truncated")
    }

    /// A file of the version before this one: the bytes main at 5c0ca86 wrote (its release
    /// build's files differ from this build's in the version field alone), refused with an error
    /// naming its version and the one this build reads, not as corrupt.
    @Test func anOlderVersionIsRefusedByItsVersion() throws {
        let current = MaltaSnapshot.formatVersion
        let good = try Self.smallSnapshot().1.encoded()
        let older = SnapshotFile.wrap(Array(good[MaltaSnapshot.headerSize...]), kind: .malta, version: current - 1)
        #expect(older[8..<12] == [UInt8(current - 1), 0, 0, 0][...] && older[12...] == good[12...])
        try Self.expectRefused(older, "the snapshot has format version \(current - 1) (an older Magritte wrote it); this Magritte reads version \(current)")
    }

    @Test func missingFileAndOtherConfigurationAreRefused() throws {
        let (board, snap) = try Self.smallSnapshot()
        #expect(throws: SnapshotError.self) { try board.malta.restore(fromFile: "/nonexistent/x.snap") }
        let other = try Board(try Self.requireGuest("tests/timer_int"), commandLine: "", ramSize: 32 << 20)
        let before = other.malta.snapshot().encoded()
        do {
            try other.malta.restore(snap)
            Issue.record("a snapshot of 16 MiB restored into 32 MiB")
        } catch {
            #expect(error.message.contains("another machine configuration") && error.message.contains("16 MiB"), "\(error)")
        }
        #expect(other.malta.snapshot().encoded() == before)
        #expect(throws: SnapshotError.self) { try snap.write(toFile: "/nonexistent/dir/x.snap") }
    }
}
