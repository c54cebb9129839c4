import Foundation
import MagritteCore
import MagritteHypervisor
import MagritteMachine
import Testing
import MagritteGDB

/// The real gdb-multiarch, in batch mode, against `magritte boot --gdb` and `magritte vmm --gdb`
/// on guest programs of Guests/tests. What gdb prints is checked against Magritte's own API at
/// the same instruction. These tests fail (they do not skip) when gdb-multiarch is missing:
/// CI installs it (.ci/run).
@Suite(.serialized) struct GDBProcessTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func guest(_ name: String) -> String { root.appendingPathComponent(".build/guests/\(name).elf").path }
    static let hello = guest("tests/hello")

    /// The `magritte` built next to this test bundle (`swift build --build-tests` builds it).
    static let executable: String? = {
        let tests = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let path = URL(fileURLWithPath: tests).deletingLastPathComponent().appendingPathComponent("magritte").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()

    static let gdb: String? = ["/usr/bin/gdb-multiarch", "/usr/local/bin/gdb-multiarch"].first { FileManager.default.isExecutableFile(atPath: $0) }

    struct Session {
        var gdb: String
        var out: String
        var err: String
        var status: Int32
    }

    /// Starts `magritte ARGS --gdb 0`, reads the port it chose, runs gdb-multiarch in batch mode
    /// with `commands` on `elf`, and waits for both.
    static func debug(_ arguments: [String], elf: String, commands: [String]) throws -> Session {
        let gdbPath = try #require(gdb, "gdb-multiarch is not installed (apt-get install gdb-multiarch): the gdb stub's end-to-end tests need it")
        let exe = try #require(executable, "magritte is not built next to the tests (swift build --build-tests)")
        #expect(FileManager.default.fileExists(atPath: elf), "\(elf) is not built: run Scripts/build-guests")
        let magritte = Process()
        magritte.executableURL = URL(fileURLWithPath: exe)
        magritte.arguments = arguments + ["--gdb", "0"]
        let out = Pipe(), err = Pipe()
        magritte.standardOutput = out
        magritte.standardError = err
        magritte.standardInput = FileHandle.nullDevice
        try magritte.run()
        defer { if magritte.isRunning { magritte.terminate() } }
        // The first stderr line names the port.
        var errText = ""
        let deadline = Date().addingTimeInterval(30)
        while !errText.contains("\n") && Date() < deadline && magritte.isRunning {
            errText += String(decoding: err.fileHandleForReading.availableData, as: UTF8.self)
        }
        let port = try #require(errText.firstMatch(of: /target remote :(\d+)/).map { String($0.1) }, "no port in: \(errText)")

        let debugger = Process()
        debugger.executableURL = URL(fileURLWithPath: gdbPath)
        debugger.arguments = ["-batch", "-nx", elf, "-ex", "set arch mips", "-ex", "set confirm off", "-ex", "target remote :\(port)"]
            + commands.flatMap { ["-ex", $0] }
        let gdbOut = Pipe()
        debugger.standardOutput = gdbOut
        debugger.standardError = gdbOut
        debugger.standardInput = FileHandle.nullDevice
        try debugger.run()
        defer { if debugger.isRunning { debugger.terminate() } }
        let watchdog = DispatchWorkItem {
            if debugger.isRunning { debugger.terminate() }
            if magritte.isRunning { magritte.terminate() }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
        defer { watchdog.cancel() }
        let transcript = String(decoding: gdbOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        debugger.waitUntilExit()
        let console = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        errText += String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        magritte.waitUntilExit()
        return Session(gdb: transcript, out: console, err: errText, status: magritte.terminationStatus)
    }

    /// Runs `magritte ARGS` with stdin empty, to its end: stdout, stderr, exit status.
    static func run(_ arguments: [String]) throws -> (out: String, err: String, status: Int32) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try #require(executable, "magritte is not built next to the tests"))
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        (p.standardOutput, p.standardError) = (out, err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // stderr is short; stdout is read to its end first, so neither pipe fills.
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (text, errors, p.terminationStatus)
    }

    /// `info registers` as name → value.
    static func registers(in text: String) -> [String: UInt32] {
        var result: [String: UInt32] = [:]
        var names: [String] = []
        for line in text.split(separator: "\n") {
            var tokens = line.split(separator: " ").map(String.init)
            if let first = tokens.first, first.hasPrefix("R"), Int(first.dropFirst()) != nil { tokens.removeFirst() }
            if !names.isEmpty, tokens.count == names.count, tokens.allSatisfy({ $0.count == 8 && UInt32($0, radix: 16) != nil }) {
                for (n, v) in zip(names, tokens) { result[n] = UInt32(v, radix: 16) }
                names = []
            } else {
                names = tokens
            }
        }
        return result
    }

    /// hello.elf on a bare Malta, run in process up to (not including) the instruction at `pc`.
    static func bareMachine(stoppedAt pc: UInt32) throws -> Malta {
        let m = Malta()
        try m.load(path: hello)
        m.boot()
        final class Stop: CPUObserver {
            let pc: UInt32
            init(_ pc: UInt32) { self.pc = pc }
            func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction { pc == self.pc ? .stop : .proceed }
        }
        let stop = Stop(pc)
        m.cpu.observer = stop
        m.cpu.observesInstructions = true
        #expect(m.run(maxInstructions: 10_000_000) == .stopped)
        m.cpu.observer = nil
        m.cpu.observesInstructions = false
        return m
    }

    @Test func breakRegistersMemoryStepWatchAndRunToTheEnd() throws {
        let s = try Self.debug(["boot", Self.hello], elf: Self.hello, commands: [
            "break main", "continue", "info registers", "x/4wx $pc", "stepi", "watch *(int *)&rt_exc", "continue",
            "print/x $pc", "delete", "continue",
        ])
        // Stopped before the first instruction, at the kernel's entry.
        #expect(s.gdb.contains("0x80100000 in _start ()"), "\(s.gdb)")
        let bp = try #require(s.gdb.firstMatch(of: /Breakpoint 1 at 0x([0-9a-f]+)/).flatMap { UInt32($0.1, radix: 16) }, "\(s.gdb)")
        #expect(s.gdb.contains("Breakpoint 1, 0x\(String(bp, radix: 16)) in main ()"))

        // Every register gdb shows is the one Magritte's API reports at that instruction.
        let m = try Self.bareMachine(stoppedAt: bp)
        let regs = Self.registers(in: s.gdb)
        let gprNames = ["zero", "at", "v0", "v1", "a0", "a1", "a2", "a3", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7",
                        "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "t8", "t9", "k0", "k1", "gp", "sp", "s8", "ra"]
        for (i, name) in gprNames.enumerated() { #expect(regs[name] == m.cpu.gpr(i), "\(name)") }
        #expect(regs["status"] == m.cpu.cp0.status)
        #expect(regs["lo"] == m.cpu.lo && regs["hi"] == m.cpu.hi)
        #expect(regs["badvaddr"] == m.cpu.cp0.badVAddr)
        #expect(regs["cause"] == m.cpu.cause)
        #expect(regs["pc"] == bp)
        #expect(regs["fcsr"] == 0 && regs["fir"] == 0)
        // Memory at pc, as the CPU reads it.
        let words = (0..<4).map { String(format: "0x%08x", m.cpu.readVirtual(bp + UInt32($0) * 4, size: 4) ?? 0) }
        #expect(s.gdb.contains(String(format: "0x%08x <main+%d>:\t", bp, bp - 0x8010_1ca0) + words.joined(separator: "\t")), "\(s.gdb)")
        // main's first call is puts("hello from the guest"): stepi goes through the jal and its delay slot.
        #expect(s.gdb.contains(" in puts ()"))
        // The trap handler counts the teq exception in rt_exc.count: the watchpoint sees 0 -> 1,
        // stopping where QEMU's stub stops (just after the store).
        #expect(s.gdb.contains("Hardware watchpoint 2: *(int *)&rt_exc\n\nOld value = 0\nNew value = 1\n"), "\(s.gdb)")
        #expect(s.gdb.contains("in on_exception ()"))
        #expect(s.gdb.contains("[Inferior 1 (Remote target) exited normally]"), "\(s.gdb)")
        #expect(s.out.contains("hello from the guest\n"))
        #expect(s.out.contains("break 7: Bp bd=0 epc=mark+0 vec=180 ce=0"))
        #expect(s.status == 0, "\(s.err)")
    }

    /// `magritte boot --gdb` records the machine's history: reverse-stepi goes back one
    /// instruction (into the delay slot of main's `jal puts`), reverse-continue back to the
    /// previous breakpoint hit with every register as it was there, and then, with no earlier
    /// hit, to the start of history (gdb: "No more reverse-execution history"); forward again
    /// the run ends as without gdb.
    @Test func reverseStepAndContinue() throws {
        let s = try Self.debug(["boot", Self.hello], elf: Self.hello, commands: [
            "break main", "continue", "stepi", "stepi", "print/x $pc", "reverse-stepi", "print/x $pc",
            "reverse-continue", "info registers", "reverse-continue", "print/x $pc", "delete", "continue",
        ])
        let bp = try #require(s.gdb.firstMatch(of: /Breakpoint 1 at 0x([0-9a-f]+)/).flatMap { UInt32($0.1, radix: 16) }, "\(s.gdb)")
        let printed = s.gdb.matches(of: /\$\d+ = 0x([0-9a-f]+)/).compactMap { UInt32($0.1, radix: 16) }
        try #require(printed.count == 3, "\(s.gdb)")
        // Two steps: through the jal and its delay slot into puts, then one more; one back.
        #expect(s.gdb.contains(" in puts ()"), "\(s.gdb)")
        #expect(printed[1] == printed[0] &- 4, "\(s.gdb)")
        // reverse-continue stops at main's breakpoint, the state exactly as when it was first hit.
        #expect(s.gdb.components(separatedBy: "Breakpoint 1, 0x\(String(bp, radix: 16)) in main ()").count == 3, "\(s.gdb)")
        let m = try Self.bareMachine(stoppedAt: bp)
        let regs = Self.registers(in: s.gdb)
        let gprNames = ["zero", "at", "v0", "v1", "a0", "a1", "a2", "a3", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7",
                        "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "t8", "t9", "k0", "k1", "gp", "sp", "s8", "ra"]
        for (i, name) in gprNames.enumerated() { #expect(regs[name] == m.cpu.gpr(i), "\(name)") }
        #expect(regs["pc"] == bp && regs["status"] == m.cpu.cp0.status && regs["cause"] == m.cpu.cause)
        #expect(regs["lo"] == m.cpu.lo && regs["hi"] == m.cpu.hi)
        // No earlier hit: back to where the history starts, the kernel's entry.
        #expect(s.gdb.contains("No more reverse-execution history."), "\(s.gdb)")
        #expect(printed[2] == 0x8010_0000, "\(s.gdb)")
        #expect(s.gdb.contains("[Inferior 1 (Remote target) exited normally]"), "\(s.gdb)")
        #expect(s.out.contains("hello from the guest\n"))
        #expect(s.status == 0, "\(s.err)")
    }

    /// The session shown in Docs/gdb.md is what gdb prints today.
    @Test func theDocumentedTranscriptIsReal() throws {
        let doc = try String(contentsOf: Self.root.appendingPathComponent("Docs/gdb.md"), encoding: .utf8)
        let block = try #require(doc.firstMatch(of: /<!-- transcript -->\n```\n([\s\S]*?)```/).map { String($0.1) })
        let commands = block.split(separator: "\n").filter { $0.hasPrefix("(gdb) ") }.map { String($0.dropFirst(6)) }
        #expect(commands.first?.hasPrefix("target remote") == true)
        let s = try Self.debug(["boot", Self.hello], elf: Self.hello, commands: Array(commands.dropFirst()))
        let expected = block.split(separator: "\n").filter { !$0.hasPrefix("(gdb) ") && !$0.hasPrefix("$ ") }.map(String.init)
        let got = s.gdb.split(separator: "\n").map(String.init)
        var i = 0
        for line in got where i < expected.count && line == expected[i] { i += 1 }
        #expect(i == expected.count, "missing from gdb's output: \(expected.dropFirst(i).first ?? "")\n--- gdb printed:\n\(s.gdb)")
    }

    @Test func guestsOfTheVMMAreThreads() throws {
        let s = try Self.debug(["vmm", Self.hello, Self.hello], elf: Self.hello, commands: [
            "info threads", "thread 2", "break main", "continue", "print/x $pc", "x/2wx $pc", "print/x $sr", "stepi",
            "continue", "watch *(int *)&rt_exc", "continue", "info threads", "delete", "continue",
        ])
        #expect(s.gdb.contains("* 1    Thread 1 (hello (runnable))   0x80100000 in _start ()"), "\(s.gdb)")
        #expect(s.gdb.contains("  2    Thread 2 (hello-2 (runnable)) 0x80100000 in _start ()"))
        #expect(s.gdb.contains("[Switching to thread 2 (Thread 2)]"))
        let bp = try #require(s.gdb.firstMatch(of: /Breakpoint 1 at 0x([0-9a-f]+)/).flatMap { UInt32($0.1, radix: 16) }, "\(s.gdb)")
        let at = "0x" + String(bp, radix: 16)
        // Round robin: the first guest reaches main first; gdb switches to it.
        #expect(s.gdb.contains("[Switching to Thread 1]\n\nThread 1 hit Breakpoint 1, \(at) in main ()"), "\(s.gdb)")
        #expect(s.gdb.contains("$1 = \(at)"))
        // Its code and its Status (virtual CP0) as on the bare machine at main.
        let m = try Self.bareMachine(stoppedAt: bp)
        let words = (0..<2).map { String(format: "0x%08x", m.cpu.readVirtual(bp + UInt32($0) * 4, size: 4) ?? 0) }
        #expect(s.gdb.contains(String(format: "0x%08x <main+%d>:\t", bp, bp - 0x8010_1ca0) + words.joined(separator: "\t")), "\(s.gdb)")
        #expect(s.gdb.contains("$2 = 0x\(String(m.cpu.cp0.status, radix: 16))"), "\(s.gdb)")
        // gdb steps MIPS in software (a temporary breakpoint, then continue of that thread
        // alone): the stepped guest is the one that stops.
        #expect(s.gdb.contains("$2 = 0x\(String(m.cpu.cp0.status, radix: 16))\n0x8010036c in puts ()"), "\(s.gdb)")
        // The other guest reaches the same breakpoint in its own address space.
        #expect(s.gdb.contains("[Switching to Thread 2]\n\nThread 2 hit Breakpoint 1, \(at) in main ()"), "\(s.gdb)")
        // Each guest's rt_exc is its own: the first to take its teq trap stops.
        #expect(s.gdb.contains("hit Hardware watchpoint 2: *(int *)&rt_exc\n\nOld value = 0\nNew value = 1\n"), "\(s.gdb)")
        #expect(s.gdb.contains("[Inferior 1 (Remote target) exited normally]"))
        #expect(s.out.contains("hello  | hello from the guest") && s.out.contains("hello-2| hello from the guest"), "\(s.out)")
        #expect(s.status == 0, "\(s.err)")
    }

    /// `magritte vmm --gdb` records the VMM's history: reverse-stepi takes the selected guest
    /// back to its own previous instruction, reverse-continue goes back to the previous hit of a
    /// breakpoint by any guest (gdb switches to its thread) and then to the start of history;
    /// forward again both guests run to the end as without gdb.
    @Test func guestsOfTheVMMGoBack() throws {
        let s = try Self.debug(["vmm", Self.hello, Self.hello], elf: Self.hello, commands: [
            "break main", "continue", "continue", "stepi", "stepi", "print/x $pc", "reverse-stepi", "print/x $pc",
            "info registers", "reverse-stepi", "reverse-continue", "print/x $pc", "reverse-continue", "print/x $pc",
            "reverse-continue", "print/x $pc", "delete", "continue",
        ])
        let bp = try #require(s.gdb.firstMatch(of: /Breakpoint 1 at 0x([0-9a-f]+)/).flatMap { UInt32($0.1, radix: 16) }, "\(s.gdb)")
        let at = "0x" + String(bp, radix: 16)
        let printed = s.gdb.matches(of: /\$\d+ = 0x([0-9a-f]+)/).compactMap { UInt32($0.1, radix: 16) }
        try #require(printed.count == 5, "\(s.gdb)")
        // Guest 2 stepped twice from main and back once.
        #expect(s.gdb.contains("Thread 2 hit Breakpoint 1, \(at) in main ()"), "\(s.gdb)")
        #expect(printed[1] == printed[0] &- 4, "\(s.gdb)")
        // Its registers there are the bare machine's one instruction after main's first.
        let m = try Self.bareMachine(stoppedAt: printed[1])
        let regs = Self.registers(in: s.gdb)
        let gprNames = ["zero", "at", "v0", "v1", "a0", "a1", "a2", "a3", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7",
                        "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "t8", "t9", "k0", "k1", "gp", "sp", "s8", "ra"]
        // (a3 is the RAM size the boot state passes: 32 MiB for a guest, 128 MiB on that board.)
        for (i, name) in gprNames.enumerated() where name != "a3" { #expect(regs[name] == m.cpu.gpr(i), "\(name)") }
        #expect(regs["pc"] == printed[1] && regs["status"] == m.cpu.cp0.status)
        // One more back: the jal's delay slot in main; then reverse-continue: guest 2's own hit
        // of main, and then guest 1's earlier one (gdb switches threads).
        #expect(s.gdb.contains("$2 = 0x\(String(printed[1], radix: 16))\n" ), "\(s.gdb)")
        #expect(s.gdb.contains("0x\(String(bp + 4, radix: 16)) in main ()\n\nThread 2 hit Breakpoint 1, \(at) in main ()"), "\(s.gdb)")
        #expect(s.gdb.contains("[Switching to Thread 1]\n\nThread 1 hit Breakpoint 1, \(at) in main ()\n$4 = \(at)"), "\(s.gdb)")
        #expect(printed[2] == bp && printed[3] == bp, "\(s.gdb)")
        // No earlier hit: the start of history, the kernel's entry.
        #expect(s.gdb.contains("No more reverse-execution history."), "\(s.gdb)")
        #expect(printed[4] == 0x8010_0000, "\(s.gdb)")
        #expect(s.gdb.contains("[Inferior 1 (Remote target) exited normally]"), "\(s.gdb)")
        #expect(s.out.contains("hello  | hello from the guest") && s.out.contains("hello-2| hello from the guest"), "\(s.out)")
        #expect(s.status == 0, "\(s.err)")
    }

    @Test func aLuaScriptServesGDBAndGoesOn() throws {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("gdb-\(UUID().uuidString).lua")
        try """
            local m = magritte.machine{image = "\(Self.hello)", echo = false}
            print("gdb:", m:gdb(0))
            print("pc:", magritte.hex(m.cpu.pc))
            print("run:", (m:run()))
            """.write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let s = try Self.debug(["run", script.path], elf: Self.hello, commands: ["break main", "continue", "print/x $a0", "detach"])
        let bp = try #require(s.gdb.firstMatch(of: /Breakpoint 1 at 0x([0-9a-f]+)/).map { String($0.1) }, "\(s.gdb)")
        #expect(s.gdb.contains("Breakpoint 1, 0x\(bp) in main ()"), "\(s.gdb)")
        #expect(s.out.contains("gdb:\tdetached\npc:\t0x\(bp)\nrun:\tpoweroff"), "\(s.out)\n\(s.err)")
    }

    /// `m:gdb()` on a machine that records its history (`m:time_travel{}`): gdb can go back
    /// (reverse-stepi, reverse-continue to main's breakpoint), and after `detach` the script
    /// goes on from where gdb left the machine, to the end.
    @Test func aLuaScriptWithHistoryServesReverseExecution() throws {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("gdb-\(UUID().uuidString).lua")
        try """
            local m = magritte.machine{image = "\(Self.hello)", echo = false}
            m:time_travel{interval = 100000}
            print("gdb:", m:gdb(0))
            print("pc:", magritte.hex(m.cpu.pc))
            print("run:", (m:run()))
            print("console:", m.console:match("hello from the guest") ~= nil)
            """.write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let s = try Self.debug(["run", script.path], elf: Self.hello, commands: [
            "break main", "continue", "stepi", "stepi", "reverse-stepi", "reverse-continue", "detach",
        ])
        let bp = try #require(s.gdb.firstMatch(of: /Breakpoint 1 at 0x([0-9a-f]+)/).map { String($0.1) }, "\(s.gdb)")
        #expect(s.gdb.components(separatedBy: "Breakpoint 1, 0x\(bp) in main ()").count == 3, "\(s.gdb)")
        #expect(s.out.contains("gdb:\tdetached\npc:\t0x\(bp)\nrun:\tpoweroff\nconsole:\ttrue"), "\(s.out)\n\(s.err)")
    }

    /// `--gdb` with a port that is taken or not a port: a clear message, no run.
    @Test func badPortsAreRefused() throws {
        let taken = try GDBServer(port: 0)
        for (port, status, message) in [("\(taken.port)", Int32(1), "magritte: gdb: cannot listen on 127.0.0.1:\(taken.port): Address already in use"),
                                        ("70000", Int32(64), "The value '70000' is invalid for '--gdb <port>'")] {
            let (_, text, exit) = try Self.run(["boot", Self.hello, "--gdb", port])
            #expect(exit == status, "\(text)")
            #expect(text.contains(message), "\(text)")
        }
    }

    @Test func killEndsMagritte() throws {
        let s = try Self.debug(["boot", Self.hello], elf: Self.hello, commands: ["stepi", "kill"])
        #expect(s.gdb.contains("[Inferior 1 (Remote target) killed]"), "\(s.gdb)")
        #expect(s.status == 137 && s.err.contains("magritte: killed by the debugger"), "\(s.err)")
        #expect(!s.out.contains("hello from the guest"))
    }
}
