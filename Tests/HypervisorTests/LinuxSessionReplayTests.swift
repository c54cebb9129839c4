import Foundation
import MagritteTestSupport
import Testing

/// An interactive Linux shell session recorded and replayed (issue 10, item 2): `magritte linux
/// --record` with commands typed on its stdin one at a time, each after the shell's prompt, then
/// `--replay` with no input: the same console, byte for byte, and the same instruction count.
/// One boot each (about 4 billion instructions); runs when Scripts/fetch-linux has filled
/// .cache/linux, as the other Linux tests.
@Suite(.serialized) struct LinuxSessionReplayTests {
    static let linux = Repository.root.appendingPathComponent(".cache/linux")
    static var linuxAvailable: Bool {
        FileManager.default.isReadableFile(atPath: linux.appendingPathComponent("vmlinuz").path)
            && FileManager.default.isReadableFile(atPath: linux.appendingPathComponent("initrd.gz").path)
    }

    /// Runs `magritte ARGS`; for each (wait, type) pair waits until stdout shows `wait` again
    /// (after what the previous wait matched), then writes `type` on stdin; closes stdin at the
    /// end. Gives up (killing it) after `seconds`.
    static func magritte(_ arguments: [String], dialogue: [(wait: String, type: String)], seconds: Double = 900) throws
        -> (out: String, err: String, status: Int32) {
        let exe = try #require(VMMCommandTests.executable, "magritte is not built next to the tests")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        (p.standardInput, p.standardOutput, p.standardError) = (stdin, stdout, stderr)
        try p.run()
        let watchdog = DispatchWorkItem { if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: watchdog)
        defer { watchdog.cancel() }
        var out = Data()
        var from = 0
        for step in dialogue {
            while true {
                if let r = out[from...].range(of: Data(step.wait.utf8)) {
                    from = r.upperBound
                    break
                }
                let chunk = stdout.fileHandleForReading.availableData
                if chunk.isEmpty { break }  // ended
                out += chunk
            }
            stdin.fileHandleForWriting.write(Data(step.type.utf8))
        }
        try stdin.fileHandleForWriting.close()
        out += stdout.fileHandleForReading.readDataToEndOfFile()
        let err = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (String(decoding: out, as: UTF8.self), err, p.terminationStatus)
    }

    @Test(.enabled(if: linuxAvailable, "the Debian kernel and initramfs are not in .cache/linux: run Scripts/fetch-linux"))
    func aTypedShellSessionReplaysExactly() throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("linux-session-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let base = ["linux", "--dir", Self.linux.path, "--stats"]
        // Typed ahead, before the kernel has a console: held until the shell's port is open.
        let recorded = try Self.magritte(base + ["--record", log.path], dialogue: [
            ("Linux version", "echo typed-ahead\n"),
            ("~ # ", "echo $((6 * 7)) > /tmp/x; cat /tmp/x\n"),
            ("\n42\r\n", "ls /data\n"),
            ("magritte.txt", "exit\n"),
        ])
        #expect(recorded.status == 0, "\(recorded.err)")
        #expect(recorded.out.contains("~ # echo typed-ahead\r\ntyped-ahead\r\n"), "\(recorded.out)")
        #expect(recorded.out.contains("\r\n42\r\n"), "\(recorded.out)")
        #expect(recorded.out.contains("magritte.txt"), "\(recorded.out)")
        #expect(recorded.out.contains("reboot: Power down"), "\(recorded.out)")
        // Each line was its own delivery, at its own instruction.
        let deliveries = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(deliveries.count >= 4, "\(deliveries)")

        let replayed = try Self.magritte(base + ["--replay", log.path], dialogue: [])
        #expect(replayed.status == 0, "\(replayed.err)")
        #expect(replayed.out == recorded.out)
        let count = { (s: String) in s.split(separator: "\n").first { $0.hasPrefix("instructions:") } }
        #expect(count(recorded.err) != nil && count(replayed.err) == count(recorded.err), "\(recorded.err)\n\(replayed.err)")
    }
}
