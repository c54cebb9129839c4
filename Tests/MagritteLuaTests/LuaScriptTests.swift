import Foundation
import Testing
@testable import MagritteLua

/// The Lua test scripts (Tests/lua/*.lua), the newcomer scenarios (Scripts/*.lua) and the
/// examples of Docs/lua-api.md, each run in a fresh Lua state as `magritte run FILE` would. A
/// script fails by raising an error (`assert`); the message, with its traceback, becomes the
/// test's failure.
///
/// They need the guest programs (Scripts/build-guests); without them each is skipped.
@Suite(.serialized) struct LuaScriptTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

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
        _ = try Self.run(path)
    }

    @Test(.enabled(if: guestsBuilt, "needs Scripts/build-guests"), .serialized, arguments: files(in: "Scripts"))
    func scenario(_ path: String) throws {
        let out = try Self.run(path)
        #expect(!out.isEmpty, "\(path) printed nothing")
        if ProcessInfo.processInfo.environment["MAGRITTE_SHOW_SCRIPTS"] != nil { print("=== \(path)\n\(out)") }
    }

    // MARK: Docs/lua-api.md

    /// A `lua` block of the documentation: its first line in the file, its code, and what it
    /// must print — the `text` block right after it, or else its `--> ` comments, one line each.
    struct DocExample {
        var line: Int
        var code: String
        var expectedText: String?
        var expectedLines: [String]
    }

    static func docExamples() -> [DocExample] {
        let text = (try? String(contentsOf: root.appendingPathComponent("Docs/lua-api.md"), encoding: .utf8)) ?? ""
        let lines = text.components(separatedBy: "\n")
        var examples: [DocExample] = []
        var i = 0
        func block(from start: Int) -> (lines: [String], end: Int) {
            var j = start
            var body: [String] = []
            while j < lines.count && !lines[j].hasPrefix("```") { body.append(lines[j]); j += 1 }
            return (body, j)
        }
        while i < lines.count {
            guard lines[i].hasPrefix("```lua") else { i += 1; continue }
            let (code, end) = block(from: i + 1)
            var example = DocExample(line: i + 2, code: code.joined(separator: "\n"), expectedText: nil, expectedLines: [])
            for l in code {
                if let r = l.range(of: "--> ") { example.expectedLines.append(String(l[r.upperBound...]).trimmingTrailingSpaces) }
            }
            i = end + 1
            if i < lines.count && lines[i].hasPrefix("```text") {
                let (expected, textEnd) = block(from: i + 1)
                example.expectedText = expected.map(\.trimmingTrailingSpaces).joined(separator: "\n")
                i = textEnd + 1
            }
            examples.append(example)
        }
        return examples
    }

    /// Output as the documentation shows it: tabs between printed values as one space, no
    /// trailing spaces, no trailing empty lines.
    static func normalized(_ s: String) -> String {
        var lines = s.replacingOccurrences(of: "\t", with: " ").components(separatedBy: "\n").map(\.trimmingTrailingSpaces)
        while lines.last == "" { lines.removeLast() }
        return lines.joined(separator: "\n")
    }

    @Test(.enabled(if: guestsBuilt, "needs Scripts/build-guests"), .serialized, arguments: docExamples().map(\.line))
    func docExample(_ line: Int) throws {
        let example = try #require(Self.docExamples().first { $0.line == line })
        // Blank lines first, so that error messages give the line in Docs/lua-api.md.
        let chunk = String(repeating: "\n", count: line - 1) + example.code
        let out = Self.normalized(try Self.run { lua throws(LuaError) in _ = try lua.run(chunk, name: "@Docs/lua-api.md") })
        if let expected = example.expectedText {
            #expect(out == Self.normalized(expected), "Docs/lua-api.md:\(line)")
        } else {
            #expect(out == example.expectedLines.joined(separator: "\n"), "Docs/lua-api.md:\(line)")
        }
    }
}

extension String {
    fileprivate var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
