import Foundation
import MagritteTestSupport
import Testing

/// The session issue 10 asks for, on a C guest with debug information (`-O0 -gdwarf-4`): gdb
/// breaks on a function by name, prints a local and a global from DWARF, watches the global,
/// steps, steps back, reverse-continues to the watchpoint and to the breakpoint, and continues
/// to the end; the console is the guest's. The guest is compiled here (clang and ld.lld, as
/// Scripts/build-guests does, with the runtime it built); fails when a tool is missing.
@Suite(.serialized) struct GDBDwarfTests {
    static let source = """
        #include "rt.h"

        int counter;

        static int step(int n) {
            int doubled = n * 2;
            counter += doubled;
            return doubled;
        }

        int main(void) {
            int total = 0;
            for (int i = 1; i <= 5; i++) total += step(i);
            printf("total %d counter %d\\n", total, counter);
            return 0;
        }

        """

    /// Compiles `source` into an ELF in a temporary directory.
    static func build(_ source: String = source) throws -> URL {
        let clang = try #require(Tools.clang, "clang is not installed (Scripts/build-guests needs it too)")
        let lld = try #require(Tools.lld, "ld.lld is not installed (Scripts/build-guests needs it too)")
        let root = GDBProcessTests.root
        let lib = root.appendingPathComponent(".build/guests/lib")
        let runtime = ["start.o", "exc.o", "rt.o"].map { lib.appendingPathComponent($0).path }
        for o in runtime { try #require(FileManager.default.fileExists(atPath: o), "\(o) is not built: run Scripts/build-guests") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dwarf-guest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let c = dir.appendingPathComponent("counter.c"), o = dir.appendingPathComponent("counter.o"), elf = dir.appendingPathComponent("counter.elf")
        try source.write(to: c, atomically: true, encoding: .utf8)
        func run(_ tool: String, _ arguments: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: tool)
            p.arguments = arguments
            let err = Pipe()
            p.standardError = err
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            try #require(p.terminationStatus == 0, "\(tool) \(arguments): \(text)")
        }
        // Scripts/build-guests' flags, with -O0 -gdwarf-4 instead of -O2.
        try run(clang, ["--target=mipsel-unknown-none-elf", "-march=mips32r2", "-ffreestanding", "-nostdlib", "-fno-pic",
                        "-mno-abicalls", "-G0", "-O0", "-gdwarf-4", "-fno-jump-tables", "-fno-builtin", "-Wall",
                        "-I" + root.appendingPathComponent("Guests/lib").path, "-c", c.path, "-o", o.path])
        try run(lld, ["-m", "elf32ltsmip", "--no-undefined", "-T", root.appendingPathComponent("Guests/lib/guest.ld").path,
                      "-o", elf.path] + runtime + [o.path])
        return elf
    }

    @Test func breakPrintWatchStepAndGoBackWithDWARF() throws {
        let elf = try Self.build()
        defer { try? FileManager.default.removeItem(at: elf.deletingLastPathComponent()) }
        let s = try GDBProcessTests.debug(["boot", elf.path], elf: elf.path, commands: [
            "break step", "continue", "continue", "print n", "print counter", "up", "print total", "print i", "down",
            "watch counter", "continue", "stepi", "reverse-stepi", "reverse-continue", "reverse-continue",
            "print n", "print counter", "delete", "continue",
        ])
        // The second call, step(2): the argument, the global (2 after step(1)), main's locals.
        #expect(s.gdb.contains("Breakpoint 1, step (n=1) at ") && s.gdb.contains("Breakpoint 1, step (n=2) at "), "\(s.gdb)")
        #expect(s.gdb.contains("counter.c:6\n6\t    int doubled = n * 2;"), "\(s.gdb)")
        #expect(s.gdb.contains("$1 = 2\n$2 = 2\n"), "\(s.gdb)")
        #expect(s.gdb.contains("$3 = 2\n$4 = 2\n"), "\(s.gdb)")  // total after step(1), i = 2
        // The watchpoint: counter 2 -> 6 at line 7's store, gdb showing line 8 after it.
        #expect(s.gdb.contains("Hardware watchpoint 2: counter\n\nOld value = 2\nNew value = 6\nstep (n=2) at "), "\(s.gdb)")
        // Back: the same store in reverse (6 -> 2, at line 7), then the breakpoint of step(2)
        // again, where n and counter are as they were.
        #expect(s.gdb.contains("Hardware watchpoint 2: counter\n\nOld value = 6\nNew value = 2\n"), "\(s.gdb)")
        #expect(s.gdb.contains("counter.c:7\n7\t    counter += doubled;"), "\(s.gdb)")
        #expect(s.gdb.components(separatedBy: "Breakpoint 1, step (n=2) at ").count == 3, "\(s.gdb)")
        #expect(s.gdb.contains("$5 = 2\n$6 = 2\n"), "\(s.gdb)")
        #expect(s.gdb.contains("[Inferior 1 (Remote target) exited normally]"), "\(s.gdb)")
        #expect(s.out == "total 30 counter 30\n", "\(s.out)")
        #expect(s.status == 0, "\(s.err)")
    }

    /// Ctrl-C from gdb-multiarch (SIGINT to gdb, which sends the stub a 0x03) stops a guest
    /// that never ends; gdb then reads its global, goes back one instruction and kills it.
    @Test func ctrlCStopsAGuestThatSpins() throws {
        let elf = try Self.build("""
            #include "rt.h"
            volatile unsigned spins;
            int main(void) { for (;;) spins++; }

            """)
        defer { try? FileManager.default.removeItem(at: elf.deletingLastPathComponent()) }
        let gdbPath = try #require(GDBProcessTests.gdb, "gdb-multiarch is not installed")
        let exe = try #require(GDBProcessTests.executable)
        let magritte = Process()
        magritte.executableURL = URL(fileURLWithPath: exe)
        magritte.arguments = ["boot", elf.path, "--gdb", "0"]
        let err = Pipe()
        magritte.standardError = err
        magritte.standardOutput = FileHandle.nullDevice
        magritte.standardInput = FileHandle.nullDevice
        try magritte.run()
        defer { if magritte.isRunning { kill(magritte.processIdentifier, SIGKILL) } }
        var errText = ""
        while !errText.contains("\n") && magritte.isRunning {
            errText += String(decoding: err.fileHandleForReading.availableData, as: UTF8.self)
        }
        let port = try #require(errText.firstMatch(of: /target remote :(\d+)/).map { String($0.1) }, "\(errText)")
        // gdb reading commands from a pipe, as a person would type them.
        // (Through env: a test runner started in the background has SIGINT ignored, and a
        // child inherits that; gdb would not see the Ctrl-C.)
        let gdb = Process()
        gdb.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gdb.arguments = ["--default-signal=INT", gdbPath, "-nx", "-q", elf.path, "-ex", "set arch mips", "-ex", "set confirm off", "-ex", "target remote :\(port)"]
        let input = Pipe(), output = Pipe()
        (gdb.standardInput, gdb.standardOutput, gdb.standardError) = (input, output, output)
        try gdb.run()
        defer { if gdb.isRunning { kill(gdb.processIdentifier, SIGKILL) } }
        let watchdog = DispatchWorkItem {
            if gdb.isRunning { kill(gdb.processIdentifier, SIGKILL) }
            if magritte.isRunning { kill(magritte.processIdentifier, SIGKILL) }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60, execute: watchdog)
        defer { watchdog.cancel() }
        input.fileHandleForWriting.write(Data("continue\n".utf8))
        sleep(2)
        gdb.interrupt()  // SIGINT, as Ctrl-C at gdb's terminal
        sleep(1)
        input.fileHandleForWriting.write(Data("print spins\nreverse-stepi\nprint $pc\nkill\nquit\n".utf8))
        try input.fileHandleForWriting.close()
        let transcript = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        gdb.waitUntilExit()
        magritte.waitUntilExit()
        #expect(transcript.contains("Program received signal SIGINT, Interrupt."), "\(transcript)")
        let spins = try #require(transcript.firstMatch(of: /\$1 = (\d+)/).flatMap { UInt64($0.1) }, "\(transcript)")
        #expect(spins > 1000, "\(transcript)")
        #expect(transcript.contains("$2 = (void (*)()) 0x") && transcript.contains(" <main+"), "\(transcript)")
        #expect(transcript.contains("[Inferior 1 (Remote target) killed]"), "\(transcript)")
        #expect(magritte.terminationStatus == 137, "\(errText)")
    }
}
