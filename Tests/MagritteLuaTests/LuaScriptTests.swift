import Foundation
import MagritteTestSupport
import Testing
@testable import MagritteLua

/// The Lua test scripts (Tests/lua/*.lua) and the newcomer scenarios (Scripts/*.lua), each run in a fresh Lua state as `magritte run FILE` would. A
/// script fails by raising an error (`assert`); the message, with its traceback, becomes the
/// test's failure.
///
/// They need the guest programs (Scripts/build-guests); without them each is skipped.
@Suite(.serialized) struct LuaScriptTests {
    static let root = Repository.root

    static func files(in dir: String) -> [String] {
        let url = root.appendingPathComponent(dir)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.filter { $0.hasSuffix(".lua") }.sorted().map { "\(dir)/\($0)" }
    }

    static let guestsBuilt = FileManager.default.fileExists(atPath: root.appendingPathComponent(".build/guests/os/teachos.elf").path)
        && FileManager.default.fileExists(atPath: root.appendingPathComponent(".build/guests/tests/hello.elf").path)

    /// Runs `path` (relative to the repository root, from the root, as the scripts expect) and
    /// returns what it printed.
    static func run(_ path: String) throws -> String {
        try run { lua throws(LuaError) in try lua.runFile(path) }
    }

    static func run(_ body: (LuaState) throws(LuaError) -> Void) throws -> String {
        let m = MagritteLua()
        var echoed: [UInt8] = []
        m.writeOut = { echoed.append($0) }
        // Collect print() instead of writing to the test's stdout.
        try m.lua.run("""
            local out = {}
            __printed = out
            local function put(sep, t)
              for i = 1, t.n do out[#out + 1] = (i > 1 and sep or "") .. tostring(t[i]) end
            end
            print = function(...) put("\\t", table.pack(...)) out[#out + 1] = "\\n" end
            io.write = function(...) put("", table.pack(...)) return io.stdout end
            """)
        // Guest paths in the scripts are relative to the repository root.
        _ = FileManager.default.changeCurrentDirectoryPath(root.path)
        var failure: LuaError?
        do { try body(m.lua) } catch { failure = error }
        let printed = (try? m.lua.run("return table.concat(__printed)").first) ?? ""
        if let failure { throw LuaError("\(failure.message)\n--- output so far ---\n\(printed)") }
        return printed + (echoed.isEmpty ? "" : "\n--- echoed console ---\n" + String(decoding: echoed, as: UTF8.self))
    }

    @Test(.enabled(if: guestsBuilt, "needs Scripts/build-guests"), .serialized, arguments: files(in: "Tests/lua"))
    func testScript(_ path: String) throws {
        // As `magritte test Tests/lua` runs it: the runner's assertions (assert_eq,
        // assert_error, …) are the one Lua test helper; a file without test() is one test.
        _ = FileManager.default.changeCurrentDirectoryPath(Self.root.path)
        var report: [String] = []
        let runner = LuaTestRunner { report.append($0) }
        let passed = runner.run(files: [path])
        #expect(passed && runner.failed == 0, "\(path):\n\(report.joined(separator: "\n"))")
    }

    @Test(.enabled(if: guestsBuilt, "needs Scripts/build-guests"), .serialized, arguments: files(in: "Scripts"))
    func scenario(_ path: String) throws {
        let out = try Self.run(path)
        #expect(!out.isEmpty, "\(path) printed nothing")
        if ProcessInfo.processInfo.environment["MAGRITTE_SHOW_SCRIPTS"] != nil { print("=== \(path)\n\(out)") }
    }

    /// `echo = true` writes each byte of the guest's console once: going back and running
    /// forward again re-executes the same output, which is not written again; after a reset the
    /// new run's output is written again.
    @Test(.enabled(if: guestsBuilt, "needs Scripts/build-guests")) func echoWritesReExecutedOutputOnce() throws {
        let out = try Self.run { lua throws(LuaError) in
            try lua.run("""
                local m = magritte.machine{image = ".build/guests/tests/hello.elf", echo = true}
                m:time_travel{interval = 1000}
                assert(m:run() == "poweroff")
                local console, executed = m.console, m.executed
                assert(#console > 10)
                assert(m:go_to(executed // 3) == "reached")
                assert(m:run() == "poweroff" and m.console == console and m.executed == executed)
                assert(m:step_back(5) == "reached")
                assert(m:run() == "poweroff" and m.console == console)
                print("console:" .. console)
                m:reset()
                assert(m:run() == "poweroff")
                """)
        }
        let printed = out.components(separatedBy: "\n--- echoed console ---\n")
        #expect(printed.count == 2, "\(out)")
        guard printed.count == 2, let c = printed[0].range(of: "console:") else { return }
        let console = String(printed[0][c.upperBound...].dropLast())  // print's newline
        #expect(printed[1] == console + console, "echoed:\n\(printed[1])\nconsole:\n\(console)")
    }

    /// The same under the VMM, whose echo writes each guest's lines ("a| …").
    @Test(.enabled(if: guestsBuilt, "needs Scripts/build-guests")) func vmmEchoWritesReExecutedLinesOnce() throws {
        let out = try Self.run { lua throws(LuaError) in
            try lua.run("""
                local vmm = magritte.vmm{echo = true}
                local a = vmm:add{image = ".build/guests/tests/hello.elf", name = "a"}
                local b = vmm:add{image = ".build/guests/tests/hello.elf", name = "b"}
                vmm:time_travel{interval = 1000}
                assert(vmm:run() == "poweroff")
                local ca, cb, executed = a.console, b.console, vmm.executed
                assert(vmm:go_to(1) == "reached")
                assert(vmm:run() == "poweroff" and a.console == ca and b.console == cb and vmm.executed == executed)
                assert(vmm:step_back(5) == "reached")
                assert(vmm:run() == "poweroff" and a.console == ca)
                for _, l in ipairs(a:lines()) do print("a| " .. l) end
                for _, l in ipairs(b:lines()) do print("b| " .. l) end
                """)
        }
        let printed = out.components(separatedBy: "\n--- echoed console ---\n")
        #expect(printed.count == 2, "\(out)")
        guard printed.count == 2 else { return }
        let expected = printed[0].split(separator: "\n").sorted(), echoed = printed[1].split(separator: "\n").sorted()
        #expect(!expected.isEmpty && echoed == expected, "echoed:\n\(printed[1])\nlines:\n\(printed[0])")
    }

    /// Output as the documentation shows it: tabs between printed values as one space, no
    /// trailing spaces, no trailing empty lines.
    static func normalized(_ s: String) -> String {
        var lines = s.replacingOccurrences(of: "\t", with: " ").components(separatedBy: "\n").map(\.trimmingTrailingSpaces)
        while lines.last == "" { lines.removeLast() }
        return lines.joined(separator: "\n")
    }
}

extension String {
    fileprivate var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
