#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import CEditLine
import MagritteLua

/// `magritte test FILES-OR-DIRS…`: runs Lua test scripts and prints TAP.
struct Test: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run Lua test scripts and report them as TAP.",
        discussion: """
            A directory stands for every *_test.lua and test_*.lua inside it, recursively, sorted \
            (hidden directories are skipped). Each file runs in its own Lua state; it registers \
            tests with test("name", function() … end) and checks with assert_eq, assert_ne, \
            assert_true, assert_false, assert_nil, assert_match and assert_error (see \
            Docs/console.md). Output: TAP version 13, then a line "N passed, N failed". Exit \
            status: 0 when every test passed, 1 when one failed (or Ctrl-C stopped the run), 2 when \
            there is nothing to run.
            """)

    @Argument(help: ArgumentHelp("Test files, or directories to search.", valueName: "files-or-dirs"))
    var paths: [String]

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give test files or directories (e.g. magritte test Tests)") }
    }

    func run() throws {
        let files: [String]
        do {
            files = try LuaTestRunner.discover(paths)
        } catch {
            complain(error.message)
            throw ExitCode(2)
        }
        if files.isEmpty {
            complain("no test files (*_test.lua, test_*.lua) in \(paths.joined(separator: ", "))")
            throw ExitCode(2)
        }
        Interrupt.install()
        var afterInterrupt = false
        let runner = LuaTestRunner(output: { line in
            // The terminal echoed ^C: the next line starts on a line of its own.
            if Interrupt.happened && !afterInterrupt && isatty(1) != 0 {
                afterInterrupt = true
                fputs("\n", mg_stdout())
            }
            fputs(line + "\n", mg_stdout())
            fflush(mg_stdout())
        })
        var armed = false
        runner.willRun = { api in
            if armed { Interrupt.retarget(api) } else { Interrupt.arm(api); armed = true }
        }
        runner.shouldStop = { Interrupt.happened }
        defer { Interrupt.disarm() }
        if !runner.run(files: files) { throw ExitCode(1) }
    }
}
