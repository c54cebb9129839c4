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
    static func build() throws -> URL {
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
}
