import Foundation
import MagritteCore
import MagritteMachine
import MagritteTestSupport
import Testing
@testable import MagritteHypervisor

/// Record and replay of the console input of a VMM's guests (`VMMInputLog`, `VMMReplayInput`,
/// `magritte vmm --record / --replay`), and time travel across typed input.
@Suite struct VMMRecordReplayTests {
    typealias Typist = RecordReplayTests.Typist

    /// The echo guest (console) beside the hello guest.
    static func pair(engine: Engine = .interpreter) throws -> VMM {
        let vmm = try VMM(engine: engine)
        try vmm.addGuest(GuestConfiguration(name: "echo", ramSize: 16 << 20), image: miniELF(RecordReplayTests.echoUntilQ))
        try vmm.addGuest(GuestConfiguration(name: "hello"), imagePath: Repository.guest("tests/hello"))
        return vmm
    }

    @Test func recordedInputReplaysExactly() throws {
        let vmm = try Self.pair()
        vmm.slice = 50_000
        vmm.guests[0].board.consoleInput = Typist(["ab", "c", "xyz", "q"], every: 7)
        vmm.inputLog = VMMInputLog(recording: vmm)
        #expect(vmm.run(maxInstructions: 100_000_000) == .allPoweredOff)
        let recorded = VMMSnapshotTests.observe(vmm)
        #expect(recorded.consoles[0] == "bcdyz{" && recorded.consoles[1].contains("hello from the guest"))
        let log = try #require(vmm.inputLog)
        log.end = vmm.cpu.executedInstructions
        #expect(log.entries.map(\.bytes) == ["ab", "c", "xyz", "q"].map { Array($0.utf8) } && log.entries.allSatisfy { $0.guest == 0 })

        // Through the file's text, into a VMM built the same way, without the typist.
        let parsed = try VMMInputLog(text: log.text)
        #expect(parsed.entries == log.entries && parsed.end == log.end && parsed.paced == log.paced)
        let again = try Self.pair()
        again.slice = 50_000
        try VMMReplayInput.replay(parsed, on: again, guests: [again.guests[0]])
        #expect(again.run(maxInstructions: 100_000_000) == .allPoweredOff)
        #expect(VMMSnapshotTests.differences(VMMSnapshotTests.observe(again), recorded) == [])
        #expect((again.guests[0].board.consoleInput as? VMMReplayInput)?.remaining == 0)

        // Input for a guest that has no console is refused.
        #expect(throws: SnapshotError.self) { try VMMReplayInput.replay(parsed, on: again, guests: []) }
    }

    @Test func timeTravelReplaysTheInputItCrosses() throws {
        let vmm = try Self.pair()
        vmm.slice = 20_000
        vmm.guests[0].board.consoleInput = Typist(["hi", "there", "q"], every: 9)
        // One checkpoint, at the start: going forward again re-executes across every input.
        let travel = VMMTimeTravel(vmm: vmm, interval: 1 << 40)
        #expect(travel.run(maxInstructions: 100_000_000) == .allPoweredOff)
        let end = VMMSnapshotTests.observe(vmm)
        #expect(end.consoles[0] == "ij" + "uifsf" && travel.inputs.entries.count == 3)
        let first = travel.inputs.entries[0]
        // Back to before any input was typed, then forward again: the same input at the same
        // instruction, although the typist has nothing left to type.
        #expect(travel.checkpoints.count == 1)
        #expect(travel.goTo(instruction: 1000) == .reached)
        #expect(vmm.guests[0].consoleText == "")
        #expect(travel.goTo(instruction: end.executed) == .reached)
        #expect(VMMSnapshotTests.differences(VMMSnapshotTests.observe(vmm), end) == [])
        #expect(travel.inputs.entries.count == 3 && travel.inputs.entries[0] == first)
    }

    @Test func badLogsAreRefused() {
        func refused(_ text: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
            expectRefused(text, message, by: { _ = try VMMInputLog(text: $0) }, sourceLocation: sourceLocation)
        }
        refused("magritte-input-log 1 100\n", "not a Magritte VMM input log")
        refused("magritte-vmm-input-log 2 0\n", "format version 2")
        refused("magritte-vmm-input-log 1 5\n", "neither 0 nor 1")
        refused("magritte-vmm-input-log 1 0\n5 0 6162\nfive 0 63\n", "corrupt at line 3")
        refused("magritte-vmm-input-log 1 0\n5 0 616\n", "corrupt at line 2")
        refused("magritte-vmm-input-log 1 0\n9 0 61\n5 0 62\n", "corrupt at line 3")
        refused("magritte-vmm-input-log 1 0\n9 99 61\n", "corrupt at line 2")
        refused("magritte-vmm-input-log 1 0\nend 5\n9 0 61\n", "corrupt at line 3")
        #expect(throws: SnapshotError.self) { try VMMInputLog(contentsOfFile: "/nonexistent/log") }
    }

    /// `magritte vmm --console echo --record` with typed input, then `--replay` with none: the
    /// same output, ending where the recorded session ended.
    @Test(.enabled(if: VMMCommandTests.executable != nil)) func vmmRecordAndReplay() throws {
        let files = TemporaryFiles()
        defer { files.remove() }
        let elf = files.url("echo.elf"), log = files.url("vmm.log")
        try Data(try miniELF(RecordReplayTests.echoUntilQ).bytes).write(to: elf)
        func vmm(_ options: [String], typing: [String]) throws -> (out: String, err: String, status: Int32) {
            try RecordReplayTests.magritte(["vmm", elf.path, Repository.guest("tests/hello"), "--name", "echo", "--console", "echo",
                                            "--max-instructions", "400000000"] + options, typing: typing)
        }
        let recorded = try vmm(["--record", log.path], typing: ["hi", "q"])
        #expect(recorded.out.contains("ij") && recorded.out.contains("hello| hello from the guest") && recorded.status == 0, "\(recorded)")
        let text = try String(contentsOf: log, encoding: .utf8)
        let parsed = try VMMInputLog(text: text)
        #expect(Array(parsed.entries.map(\.bytes).joined()) == Array("hiq".utf8) && parsed.end != nil, "\(text)")
        let replayed = try vmm(["--replay", log.path], typing: [])
        #expect(replayed.out == recorded.out && replayed.status == 0, "\(replayed)")

        let both = try vmm(["--record", log.path, "--replay", log.path], typing: [])
        #expect(both.status != 0 && both.err.contains("cannot be used together"))
        let missing = try vmm(["--replay", "/nonexistent/log"], typing: [])
        #expect(missing.status == 1 && missing.err.contains("cannot read the VMM input log"))
    }
}
