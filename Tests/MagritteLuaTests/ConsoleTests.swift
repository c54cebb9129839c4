import Foundation
import MagritteTestSupport
import Testing
@testable import MagritteLua

/// The `magritte` executable's Lua side: `magritte test` (TAP), `magritte run`, the console on a
/// pipe, and the console through a pseudo-terminal against a golden transcript
/// (Tests/console/repl.session → repl.transcript; MAGRITTE_UPDATE_TRANSCRIPTS=1 rewrites it).
@Suite struct ConsoleTests {
    static let root = Repository.root

    /// The `magritte` built next to this test bundle (`swift build --build-tests` builds it).
    static let executable = Tools.magritte

    static let python = Tools.python

    static var hasPTY: Bool { FileManager.default.fileExists(atPath: "/dev/ptmx") }

    /// A fresh directory with `files` in it.
    static func directory(_ files: [String: String]) throws -> URL {
        // Short: Lua shortens chunk names past 60 characters ("...").
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mc-" + UUID().uuidString.prefix(8))
        for (name, text) in files {
            let url = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        return dir
    }

    struct Output {
        var status: Int32
        var out: String
        var err: String
    }

    /// Runs `program` with `arguments` in `directory`, stdin from `input`.
    static func run(_ program: String, _ arguments: [String], in directory: URL? = nil, input: String = "",
                    environment: [String: String] = [:]) throws -> Output {
        let r = try runProcess(program, arguments, in: directory, input: Data(input.utf8), environment: environment)
        return Output(status: r.status, out: r.out, err: r.err)
    }

    static let passing = """
        test("adds", function() assert_eq(1 + 1, 2) end)
        test("tables by contents", function() assert_eq({1, x = {2}}, {1, x = {2}}) end)
        test("errors", function() assert_error(function() error("kaput") end, "kaput") end)
        skip("later", "not yet")
        test("a machine", function()
          local m = magritte.machine{}
          assert_match(tostring(m), "^magritte%.machine")
        end)
        """

    static let failing = """
        test("first", function() assert_true(true) end)
        test("wrong value", function()
          assert_eq(0x80001000 + 4, 0x80001000, "pc after the branch")
        end)
        test("still runs", function() print("hello from a test") end)
        test("runtime error", function() local t = nil; return t.x end)
        """

    // MARK: The runner as a library

    @Test func runnerReportsPassingTestsAsTAP() throws {
        let dir = try Self.directory(["math_test.lua": Self.passing])
        defer { try? FileManager.default.removeItem(at: dir) }
        var lines: [String] = []
        let runner = LuaTestRunner { lines.append($0) }
        let ok = runner.run(files: [dir.appendingPathComponent("math_test.lua").path])
        let file = dir.appendingPathComponent("math_test.lua").path
        #expect(ok)
        #expect(lines == [
            "TAP version 13", "1..5",
            "ok 1 - \(file): adds",
            "ok 2 - \(file): tables by contents",
            "ok 3 - \(file): errors",
            "ok 4 - \(file): later # SKIP not yet",
            "ok 5 - \(file): a machine",
            "4 passed, 0 failed, 1 skipped",
        ])
    }

    @Test func runnerReportsFailuresWithBothValuesAndATraceback() throws {
        let dir = try Self.directory(["f_test.lua": Self.failing])
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("f_test.lua").path
        var lines: [String] = []
        let runner = LuaTestRunner { lines.append($0) }
        #expect(!runner.run(files: [file]))
        #expect(runner.passed == 2 && runner.failed == 2)
        let text = lines.joined(separator: "\n")
        #expect(text.contains("""
            not ok 2 - \(file): wrong value
              ---
              message: |-
                \(file):3: assert_eq failed: pc after the branch
                  expected: 2147487744 (0x80001000)
                  actual:   2147487748 (0x80001004)
              traceback: |-
                stack traceback:
                  \(file):3: in function <\(file):2>
              ...
            """))
        #expect(text.contains("# hello from a test\nok 3 - \(file): still runs"))
        #expect(text.contains("not ok 4 - \(file): runtime error\n  ---\n  message: |-\n    \(file):6: attempt to index a nil value (local 't')"))
        #expect(lines.last == "2 passed, 2 failed")
    }

    @Test func aFileThatDoesNotLoadIsOneFailedTestAndAPlainScriptIsOnePassedTest() throws {
        let dir = try Self.directory(["broken_test.lua": "test('x', function() end", "plain_test.lua": "assert(1 == 1)"])
        defer { try? FileManager.default.removeItem(at: dir) }
        var lines: [String] = []
        let runner = LuaTestRunner { lines.append($0) }
        let files = try LuaTestRunner.discover([dir.path])
        #expect(!runner.run(files: files))
        #expect(lines[1] == "1..2")
        #expect(lines[2].hasPrefix("not ok 1 - ") && lines[2].hasSuffix("broken_test.lua: (loading the file)"))
        #expect(lines.contains { $0.hasPrefix("ok 2 - ") && $0.hasSuffix("plain_test.lua: (the whole file)") })
    }

    @Test func discoveryFindsTestFilesRecursivelySortedSkippingHiddenDirectories() throws {
        let dir = try Self.directory([
            "b_test.lua": "", "a/test_x.lua": "", "a/helper.lua": "", "a/z/c_test.lua": "", ".hidden/d_test.lua": "",
            "notes.txt": "",
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        let found = try LuaTestRunner.discover([dir.path]).map { String($0.dropFirst(dir.path.count + 1)) }
        #expect(found == ["a/test_x.lua", "a/z/c_test.lua", "b_test.lua"])
        #expect(throws: LuaError.self) { try LuaTestRunner.discover([dir.appendingPathComponent("nope").path]) }
    }

    // MARK: The executable

    @Test(.enabled(if: executable != nil, "needs the magritte executable (swift build --build-tests)"))
    func testCommandExitStatus() throws {
        let dir = try Self.directory(["t/pass_test.lua": Self.passing, "u/fail_test.lua": Self.failing, "empty/notes.txt": ""])
        defer { try? FileManager.default.removeItem(at: dir) }
        let pass = try Self.run(Self.executable!, ["test", "t"], in: dir)
        #expect(pass.status == 0)
        #expect(pass.out.hasPrefix("TAP version 13\n1..5\nok 1 - t/pass_test.lua: adds\n"))
        #expect(pass.out.hasSuffix("\n4 passed, 0 failed, 1 skipped\n"))

        let all = try Self.run(Self.executable!, ["test", "t", "u"], in: dir)
        #expect(all.status == 1)
        #expect(all.out.contains("\n1..9\n"))
        #expect(all.out.contains("\nnot ok 7 - u/fail_test.lua: wrong value\n"))
        #expect(all.out.hasSuffix("\n6 passed, 2 failed, 1 skipped\n"))

        let none = try Self.run(Self.executable!, ["test", "empty"], in: dir)
        #expect(none.status == 2)
        #expect(none.err.contains("no test files"))
        let missing = try Self.run(Self.executable!, ["test", "nope"], in: dir)
        #expect(missing.status == 2)
        #expect(missing.err.contains("nope: no such file or directory"))
    }

    @Test(.enabled(if: executable != nil, "needs the magritte executable (swift build --build-tests)"))
    func runCommandSetsArgAndReportsErrors() throws {
        let dir = try Self.directory([
            "args.lua": "print(arg[0], arg[1], arg[2], arg[-1], select('#', ...), ...)",
            "fails.lua": "local function f() error('boom') end\nf()",
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        let ok = try Self.run(Self.executable!, ["run", "args.lua", "a", "--b"], in: dir)
        #expect(ok.status == 0)
        #expect(ok.out == "args.lua\ta\t--b\trun\t2\ta\t--b\n")
        let bad = try Self.run(Self.executable!, ["run", "fails.lua"], in: dir)
        #expect(bad.status == 1)
        #expect(bad.err.hasPrefix("magritte: fails.lua:1: boom\nstack traceback:\n"))
        #expect(bad.err.contains("fails.lua:2: in main chunk"))
        let missing = try Self.run(Self.executable!, ["run", "nope.lua"], in: dir)
        #expect(missing.status == 1)
        #expect(missing.err.contains("cannot open nope.lua"))
    }

    /// The command line as lua's (issue 13, item 4): a script with `arg`, -e, -i, -v, -, and
    /// unknown commands and options named as such.
    @Test(.enabled(if: executable != nil, "needs the magritte executable (swift build --build-tests)"))
    func commandLineAsLua() throws {
        let dir = try Self.directory([
            "args.lua": "print(arg[0], arg[1], arg[2], arg[-1], select('#', ...), ...)",
            "noext": "print('no extension', ...)",
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        let exe = Self.executable!
        let script = try Self.run(exe, ["args.lua", "a", "--b"], in: dir)
        #expect(script.status == 0 && script.out == "args.lua\ta\t--b\t\(exe)\t2\ta\t--b\n", "\(script)")
        let withOptions = try Self.run(exe, ["-e", "x = 6", "args.lua", "z"], in: dir)
        #expect(withOptions.out == "args.lua\tz\tnil\tx = 6\t1\tz\n", "\(withOptions)")
        #expect(try Self.run(exe, ["noext", "q"], in: dir).out == "no extension\tq\n")
        let chunks = try Self.run(exe, ["-e", "x = 6", "-e", "print(x * 7, arg[0] == nil, arg[1])"], in: dir)
        #expect(chunks.status == 0 && chunks.out == "42\tfalse\t-e\n", "\(chunks)")
        let version = try Self.run(exe, ["-v"], in: dir)
        #expect(version.status == 0 && version.out.hasPrefix("Magritte 0.1 (Lua 5.4)\n"), "\(version)")
        #expect(try Self.run(exe, ["--version"], in: dir).out == version.out)
        let interactive = try Self.run(exe, ["-i", "-e", "y = 5"], in: dir, input: "print(y + 1)\n")
        #expect(interactive.status == 0 && interactive.out == version.out + "6\n", "\(interactive)")
        let stdin = try Self.run(exe, ["-", "p"], in: dir, input: "print(arg[0], ...)\n")
        #expect(stdin.out == "-\tp\n", "\(stdin)")

        let failing = try Self.run(exe, ["-e", "error('boom')"], in: dir)
        #expect(failing.status == 1 && failing.err.hasPrefix("magritte: (command line):1: boom\nstack traceback:"), "\(failing)")
        let syntax = try Self.run(exe, ["-e", "x = = 1"], in: dir)
        #expect(syntax.status == 1 && syntax.err.hasPrefix("magritte: [string \"(command line)\"]") || syntax.err.hasPrefix("magritte: (command line):1:"), "\(syntax)")
        let missing = try Self.run(exe, ["nope.lua"], in: dir)
        #expect(missing.status == 1 && missing.err.contains("cannot open nope.lua"), "\(missing)")
        let noChunk = try Self.run(exe, ["-e"], in: dir)
        #expect(noChunk.status == 1 && noChunk.err == "magritte: '-e' needs an argument (a Lua chunk)\n")
        let unknown = try Self.run(exe, ["bot", "x.elf"], in: dir)
        #expect(unknown.status == 1 && unknown.err.hasPrefix("magritte: unknown command 'bot' (commands: repl, run, test, boot, vmm, linux, disasm;"), "\(unknown)")
        let option = try Self.run(exe, ["-x"], in: dir)
        #expect(option.status == 1 && option.err.hasPrefix("magritte: unrecognized option '-x'"), "\(option)")
        #expect(try Self.run(exe, ["--help"], in: dir).out.contains("magritte [-e CHUNK]... [-i] [-v] [SCRIPT.lua [ARGS...]]"))
    }

    /// An error in an event callback prints one traceback, from the callback down to the chunk.
    @Test(.enabled(if: executable != nil, "needs the magritte executable (swift build --build-tests)"),
          .enabled(if: FileManager.default.fileExists(atPath: root.appendingPathComponent(".build/guests/tests/hello.elf").path),
                   "needs Scripts/build-guests"))
    func callbackErrorHasOneTraceback() throws {
        let r = try Self.run(Self.executable!, [
            "-e", "m = magritte.machine{image = '.build/guests/tests/hello.elf'}; m:on('exception', function() error('cb fail') end); m:run()",
        ], in: Self.root)
        #expect(r.status == 1 && r.err.hasPrefix("magritte: (command line):1: cb fail\nstack traceback:\n"), "\(r.err)")
        #expect(r.err.components(separatedBy: "stack traceback:").count == 2, "\(r.err)")
        #expect(r.err.contains("in method 'run'"), "\(r.err)")
    }

    /// Running out of memory for machines is a Lua error, and the machines made before still run
    /// (issue 13, item 10: it was a crash in the CPU's allocation). Under `ulimit -v` 3 GB.
    @Test(.enabled(if: executable != nil, "needs the magritte executable (swift build --build-tests)"),
          .enabled(if: FileManager.default.fileExists(atPath: root.appendingPathComponent(".build/guests/tests/hello.elf").path),
                   "needs Scripts/build-guests"),
          .timeLimit(.minutes(2)))
    func outOfMemoryIsAnError() throws {
        let chunk = """
            ms = {}
            for i = 1, 40 do
              local ok, m = pcall(magritte.machine, {ram = "256M", image = ".build/guests/tests/hello.elf"})
              if not ok then print(m) break end
              ms[i] = m
            end
            print(#ms > 0, #ms < 40, (ms[1]:run()), (ms[#ms]:run()))
            """
        let r = try Self.run("/bin/sh", ["-c", "ulimit -v 3000000 && exec \"$0\" -e \"$1\"", Self.executable!, chunk], in: Self.root)
        #expect(r.status == 0, "\(r)")
        #expect(r.out.contains("machine: cannot allocate "), "\(r.out)")
        #expect(r.out.contains("the host is out of memory (or of address space under a ulimit)\n"), "\(r.out)")
        #expect(r.out.hasSuffix("true\ttrue\tpoweroff\tpoweroff\n"), "\(r.out)")

        let vmms = "vs = {} for i = 1, 40 do local ok, v = pcall(magritte.vmm, {}) if not ok then print(v) break end vs[i] = v end print(#vs > 0, #vs < 40)"
        let v = try Self.run("/bin/sh", ["-c", "ulimit -v 3000000 && exec \"$0\" -e \"$1\"", Self.executable!, vmms], in: Self.root)
        #expect(v.status == 0 && v.out.contains("the host is out of memory") && v.out.hasSuffix("true\ttrue\n"), "\(v)")
        #expect(v.out.contains("vmm: cannot allocate ") && !v.out.contains("(got"), "\(v.out)")

        // A guest's board that cannot be had: vmm:add is an error, and the VMM and its guest
        // added before still run. Machines of 256 MiB, then of 2 MiB, use up the host's memory
        // until one of 2 MiB fails; a guest of 2 MiB needs as much.
        let guests = """
            v = magritte.vmm{ram = "64M"}
            v:add{image = ".build/guests/tests/hello.elf", name = "first", ram = "16M"}
            ms = {}
            for _, ram in ipairs{"256M", "2M"} do
              while #ms < 1000 and pcall(function() ms[#ms + 1] = magritte.machine{ram = ram} end) do end
            end
            print(pcall(v.add, v, {image = ".build/guests/tests/hello.elf", name = "second", ram = "2M"}))
            print(#v.guests, (v:run()), #ms < 1000)
            """
        let g = try Self.run("/bin/sh", ["-c", "ulimit -v 3000000 && exec \"$0\" -e \"$1\"", Self.executable!, guests], in: Self.root)
        #expect(g.status == 0, "\(g)")
        #expect(g.out.hasPrefix("false\t") && g.out.contains("add: guest second: cannot allocate "), "\(g.out)")
        #expect(g.out.contains("the host is out of memory (or of address space under a ulimit)\n"), "\(g.out)")
        #expect(g.out.hasSuffix("1\tpoweroff\ttrue\n"), "\(g.out)")
    }

    /// A test file calling os.exit fails its test; the run goes on to its TAP summary.
    @Test(.enabled(if: executable != nil, "needs the magritte executable (swift build --build-tests)"))
    func osExitInATestFileDoesNotEndTheRun() throws {
        let dir = try Self.directory([
            "a_test.lua": "test('exits', function() os.exit(3) end)\ntest('after', function() end)",
            "b_test.lua": "os.exit(0)",
            "c_test.lua": "test('last', function() end)",
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try Self.run(Self.executable!, ["test", "."], in: dir)
        #expect(run.status == 1)
        #expect(run.out.contains("not ok 1 - ./a_test.lua: exits\n") || run.out.contains("not ok 1 - a_test.lua: exits\n"), "\(run.out)")
        #expect(run.out.contains("os.exit(3) in a test file"), "\(run.out)")
        #expect(run.out.contains("os.exit(0) in a test file"), "\(run.out)")
        #expect(run.out.hasSuffix("\n2 passed, 2 failed\n"), "\(run.out)")
    }

    @Test(.enabled(if: executable != nil, "needs the magritte executable (swift build --build-tests)"))
    func consoleRunsStandardInputWhenItIsNotATerminal() throws {
        let ok = try Self.run(Self.executable!, [], input: "x = 6\nprint(x * 7)\n")
        #expect(ok.status == 0)
        #expect(ok.out == "42\n")
        let bad = try Self.run(Self.executable!, [], input: "print('before')\nerror('oops')\n")
        #expect(bad.status == 1)
        #expect(bad.out == "before\n")
        #expect(bad.err.hasPrefix("magritte: stdin:2: oops\n"))
    }

    // MARK: The console through a pseudo-terminal

    /// A guest that branches to itself forever: `b .; nop` at 0x80100000, in a minimal ELF.
    static func loopingGuest() -> Data {
        var out: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 1, 1, 1] + [UInt8](repeating: 0, count: 9)
        func u16(_ v: UInt16) { out += [UInt8(v & 0xFF), UInt8(v >> 8)] }
        func u32(_ v: UInt32) { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
        u16(2); u16(8); u32(1); u32(0x8010_0000); u32(52); u32(0); u32(0x7000_1000)
        u16(52); u16(32); u16(1); u16(40); u16(0); u16(0)
        u32(1); u32(84); u32(0x8010_0000); u32(0x8010_0000); u32(8); u32(8); u32(5); u32(4)
        u32(0x1000_FFFF); u32(0)
        return Data(out)
    }

    @Test(.enabled(if: executable != nil, "needs the magritte executable (swift build --build-tests)"),
          .enabled(if: python != nil, "needs python3 to drive a pseudo-terminal"),
          .enabled(if: hasPTY, "no pseudo-terminals here (/dev/ptmx)"),
          .timeLimit(.minutes(3)))
    func replTranscript() throws {
        let dir = try Self.directory(["home/.keep": ""])
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.loopingGuest().write(to: dir.appendingPathComponent("loop.elf"))
        let console = Self.root.appendingPathComponent("Tests/console")
        let session = try Self.run(Self.python!, [
            console.appendingPathComponent("pty-session.py").path, console.appendingPathComponent("repl.session").path,
            Self.executable!,
        ], in: dir, environment: ["HOME": dir.appendingPathComponent("home").path])
        try #require(session.status == 0, "the session failed:\n\(session.err)")

        let golden = console.appendingPathComponent("repl.transcript")
        if ProcessInfo.processInfo.environment["MAGRITTE_UPDATE_TRANSCRIPTS"] != nil {
            try session.out.write(to: golden, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: golden, encoding: .utf8)
        #expect(Self.matches(session.out, golden: expected), "transcript differs from Tests/console/repl.transcript:\n\(session.out)")

        // The multi-line chunk is one history entry (libedit encodes its newlines as \012).
        let history = try String(contentsOf: dir.appendingPathComponent("home/.magritte_history"), encoding: .utf8)
        #expect(history.contains("function\\040f(x)\\012\\040\\040return\\040x\\040*\\0402\\012end\n"))
        #expect(history.contains("=10,\\040\"ten\"\n"))
    }

    /// Runs a pty-session.py session (Tests/console/NAME) on the magritte executable with
    /// `arguments`, in `directory`; the rendered screen, its last line the exit status.
    static func session(_ name: String, _ arguments: [String], in directory: URL) throws -> String {
        let console = Self.root.appendingPathComponent("Tests/console")
        let run = try Self.run(Self.python!, [console.appendingPathComponent("pty-session.py").path,
                                              console.appendingPathComponent(name).path, Self.executable!] + arguments,
                               in: directory)
        try #require(run.status == 0, "the session \(name) failed:\n\(run.err)")
        return run.out
    }

    @Test(.enabled(if: executable != nil, "needs the magritte executable (swift build --build-tests)"),
          .enabled(if: python != nil, "needs python3 to drive a pseudo-terminal"),
          .enabled(if: hasPTY, "no pseudo-terminals here (/dev/ptmx)"),
          .timeLimit(.minutes(2)))
    func bootConsoleKeys() throws {
        let dir = try Self.directory([".keep": ""])
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.loopingGuest().write(to: dir.appendingPathComponent("loop.elf"))
        let screen = try Self.session("boot-keys.session", ["boot", "loop.elf"], in: dir)
        #expect(screen.hasSuffix("magritte: ended by Ctrl-A x\n[exit status 0]\n"), "\(screen)")
    }

    /// `bytes` (an ELF with section headers) with every code section's size made to run 256 MiB
    /// past the end of the file.
    static func truncatedCode(_ bytes: Data) -> Data {
        var b = [UInt8](bytes)
        func u32(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 | Int(b[o + 2]) << 16 | Int(b[o + 3]) << 24 }
        func u16(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        let shoff = u32(32), shentsize = u16(46), shnum = u16(48)
        for i in 0..<shnum {
            let h = shoff + i * shentsize
            if u32(h + 8) & 4 != 0 {  // SHF_EXECINSTR
                for (k, v) in [0, 0, 0, 0x10].enumerated() { b[h + 20 + k] = UInt8(v) }
            }
        }
        return Data(b)
    }

    /// Bad input on the command line (issue 13, item 11): devices and FIFOs are refused before
    /// anything is read (no 1 GiB read of /dev/zero, no open() waiting for a FIFO's writer), a
    /// code section past the end of the file is an error as in llvm-objdump, guest names must be
    /// one non-empty line, and a missing image is named once.
    @Test(.enabled(if: executable != nil, "needs the magritte executable (swift build --build-tests)"),
          .timeLimit(.minutes(2)))
    func badFilesAreRefusedBeforeReading() throws {
        let dir = try Self.directory([".keep": ""])
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.loopingGuest().write(to: dir.appendingPathComponent("loop.elf"))
        try #require(mkfifo(dir.appendingPathComponent("fifo").path, 0o600) == 0)
        let exe = Self.executable!
        for (arguments, message) in [
            (["boot", "/dev/zero"], "cannot read /dev/zero: is a device, not a regular file"),
            (["boot", "fifo"], "cannot read fifo: is a FIFO, not a regular file"),
            (["vmm", "/dev/zero"], "cannot read /dev/zero: is a device, not a regular file"),
            (["disasm", "fifo"], "cannot read fifo: is a FIFO, not a regular file"),
            (["boot", "loop.elf", "--initrd", "/dev/zero"], "cannot read the initrd '/dev/zero': is a device, not a regular file"),
            (["boot", "loop.elf", "--initrd", "fifo"], "cannot read the initrd 'fifo': is a FIFO, not a regular file"),
            (["vmm", "loop.elf", "--initrd", "fifo"], "cannot read the initrd 'fifo': is a FIFO, not a regular file"),
            (["-e", "magritte.machine{image = '/dev/zero'}"], "cannot read /dev/zero: is a device, not a regular file"),
            (["-e", "magritte.machine{image = 'loop.elf', initrd = 'fifo'}"], "cannot read the initrd 'fifo': is a FIFO"),
            (["vmm", "nosuch.elf"], "magritte: cannot read nosuch.elf: No such file or directory\n"),
        ] {
            let r = try Self.run(exe, arguments, in: dir)
            #expect(r.status == 1 && r.err.contains(message), "\(arguments): \(r.err)")
            #expect(r.err.components(separatedBy: arguments.last!).count <= 3, "\(arguments) names the file once: \(r.err)")
        }
        #expect(try Self.run(exe, ["vmm", "nosuch.elf"], in: dir).err == "magritte: cannot read nosuch.elf: No such file or directory\n")
        for name in ["", "a\nb", "a|b"] {
            let r = try Self.run(exe, ["vmm", "loop.elf", "--name", name, "--max-instructions", "10"], in: dir)
            #expect(r.status == 64 && r.err.contains("a guest's name must be non-empty, on one line and without '|'"), "\(name.debugDescription): \(r.err)")
        }

        let guest = Self.root.appendingPathComponent(".build/guests/tests/alu_rr.elf")
        if let elf = try? Data(contentsOf: guest) {
            try Self.truncatedCode(elf).write(to: dir.appendingPathComponent("cut.elf"))
            let r = try Self.run(exe, ["disasm", "cut.elf"], in: dir)
            #expect(r.status == 1 && r.out.isEmpty, "\(r)")
            #expect(r.err.hasPrefix("magritte: cut.elf: section .text: offset 0x") && r.err.contains("runs past the end of the file"), "\(r.err)")
        }
    }

    /// `--progress` (issue 13, item 7): a line a second on stderr with time, instructions and
    /// speed, and for the VMM the guests' states.
    @Test(.enabled(if: executable != nil, "needs the magritte executable (swift build --build-tests)"),
          .timeLimit(.minutes(3)))
    func progressLines() throws {
        let dir = try Self.directory([".keep": ""])
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.loopingGuest().write(to: dir.appendingPathComponent("loop.elf"))
        // The interpreter, for a run of a few seconds whatever the host (the translator runs
        // this loop at billions of instructions a second).
        let n = "600000000"
        let boot = try Self.run(Self.executable!, ["boot", "loop.elf", "--progress", "--engine", "interpreter", "--max-instructions", n], in: dir)
        #expect(boot.status == 2)
        let line = try Regex("magritte: progress: [0-9.]+ s, [0-9.]+ G instructions, [0-9.]+ MIPS\n")
        #expect(boot.err.contains(line), "\(boot.err)")
        let vmm = try Self.run(Self.executable!, ["vmm", "loop.elf", "loop.elf", "--progress", "--engine", "interpreter", "--max-instructions", n], in: dir)
        let states = try Regex("magritte: progress: [0-9.]+ s, [0-9.]+ G instructions, [0-9.]+ MIPS; loop running, loop-2 running\n")
        #expect(vmm.err.contains(states), "\(vmm.err)")
        let quiet = try Self.run(Self.executable!, ["boot", "loop.elf", "--engine", "interpreter", "--max-instructions", n], in: dir)
        #expect(!quiet.err.contains("progress"), "without --progress and not on a terminal: \(quiet.err)")
    }

    static let linuxDirectory = root.appendingPathComponent(".cache/linux")
    static var linuxAvailable: Bool {
        FileManager.default.isReadableFile(atPath: linuxDirectory.appendingPathComponent("vmlinuz").path)
            && FileManager.default.isReadableFile(atPath: linuxDirectory.appendingPathComponent("initrd.gz").path)
    }

    /// Tests/console/linux.session: the first shell command answers within 2 s of its Enter,
    /// Ctrl-C interrupts the guest's `sleep 100`, Ctrl-A x ends `magritte linux` with status 0.
    @Test(.enabled(if: executable != nil, "needs the magritte executable (swift build --build-tests)"),
          .enabled(if: python != nil, "needs python3 to drive a pseudo-terminal"),
          .enabled(if: hasPTY, "no pseudo-terminals here (/dev/ptmx)"),
          .enabled(if: linuxAvailable, "the Debian kernel and initramfs are not in .cache/linux: run Scripts/fetch-linux"),
          .timeLimit(.minutes(30)))
    func linuxShellAnswersAtOnce() throws {
        let dir = try Self.directory([".keep": ""])
        defer { try? FileManager.default.removeItem(at: dir) }
        let screen = try Self.session("linux.session", ["linux", "--dir", Self.linuxDirectory.path], in: dir)
        #expect(screen.contains("~ # echo hi\nhi\n"), "\(screen)")
        #expect(screen.contains("~ # sleep 100\n^C\n~ # ") || screen.contains("~ # sleep 100\n\n~ # "), "\(screen)")
        #expect(screen.hasSuffix("magritte: ended by Ctrl-A x\n[exit status 0]\n"), "\(screen)")
    }

    /// Whether `text` matches `golden` line by line, where a golden line "…" stands for any number
    /// of lines (for lists that grow with the API, such as the completions of `m.cpu.`).
    static func matches(_ text: String, golden: String) -> Bool {
        let t = text.split(separator: "\n", omittingEmptySubsequences: false)
        let g = golden.split(separator: "\n", omittingEmptySubsequences: false)
        func match(_ i: Int, _ j: Int) -> Bool {
            if j == g.count { return i == t.count }
            if g[j] == "…" { return (i...t.count).contains { match($0, j + 1) } }
            return i < t.count && t[i] == g[j] && match(i + 1, j + 1)
        }
        return match(0, 0)
    }

    @Test func goldenWildcards() {
        #expect(Self.matches("a\nb\nc\n", golden: "a\n…\nc\n"))
        #expect(Self.matches("a\nc\n", golden: "a\n…\nc\n"))
        #expect(!Self.matches("a\nb\n", golden: "a\n…\nc\n"))
    }
}
