import Foundation
import Testing
@testable import MagritteLua

/// The documentation cannot drift from the code: every example of every document runs.
///
/// Documents: `README.md`, `Guests/README.md` and every `Docs/*.md`. In each:
/// - a `lua` block runs in a fresh Lua state (as `magritte run` would) and must print what the
///   `text` block right after it shows, or else its `--> ` comments, one line each; a block that
///   defines tests (`test("…", function() … end)`) runs as `magritte test` would, and the `text`
///   block after it is its TAP report (the file name is the block's first-line comment);
/// - a `sh` block is checked command by command: a `Scripts/…` command must exist and know every
///   `--option` used; a `magritte SUBCOMMAND` (also through `swift run … magritte`) must be a
///   subcommand whose `--help` names every option used. A block opened with ```` ```sh run ```` is
///   also executed, line by line, in a scratch directory that sees the repository's files
///   (`magritte` is the one built with the tests); each command must exit 0;
/// - every repository path it names (`Scripts/…`, `Docs/…`, `Sources/…`, `Tests/…`, `Guests/…`,
///   `Examples/…`, `.build/guests/…`) exists.
///
/// Examples that need Debian's Linux (`.cache/linux`) run when `Scripts/fetch-linux` has fetched
/// it (CI does), and say so otherwise.
@Suite(.serialized) struct DocsTests {
    static let root = LuaScriptTests.root

    static var documents: [String] {
        let docs = (try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("Docs").path)) ?? []
        return ["README.md", "Guests/README.md"] + docs.filter { $0.hasSuffix(".md") }.sorted().map { "Docs/\($0)" }
    }

    static func text(_ document: String) -> String {
        (try? String(contentsOf: root.appendingPathComponent(document), encoding: .utf8)) ?? ""
    }

    // MARK: Blocks

    /// A fenced block: its info string (`lua`, `sh run`, …), the line of its first body line, its body.
    struct Block {
        var info: String
        var line: Int
        var body: [String]
    }

    static func blocks(_ document: String) -> [Block] {
        let lines = text(document).components(separatedBy: "\n")
        var result: [Block] = []
        var i = 0
        while i < lines.count {
            guard lines[i].hasPrefix("```") else { i += 1; continue }
            let info = String(lines[i].dropFirst(3)).trimmingCharacters(in: .whitespaces)
            var j = i + 1
            var body: [String] = []
            while j < lines.count && !lines[j].hasPrefix("```") { body.append(lines[j]); j += 1 }
            result.append(Block(info: info, line: i + 2, body: body))
            i = j + 1
        }
        return result
    }

    /// A `lua` block and what it must print.
    struct LuaExample {
        var document: String
        var line: Int
        var code: String
        var expectedText: String?
        var expectedLines: [String]
        var id: String { "\(document):\(line)" }
        var definesTests: Bool { code.contains("\ntest(") || code.hasPrefix("test(") }
        var needsLinux: Bool { code.contains(".cache/linux") }
    }

    static func luaExamples() -> [LuaExample] {
        var examples: [LuaExample] = []
        for document in documents {
            let all = blocks(document)
            for (k, b) in all.enumerated() where b.info == "lua" {
                var e = LuaExample(document: document, line: b.line, code: b.body.joined(separator: "\n"),
                                   expectedText: nil, expectedLines: [])
                for l in b.body {
                    if let r = l.range(of: "--> ") { e.expectedLines.append(String(l[r.upperBound...]).trimmingTrailingSpaces) }
                }
                if k + 1 < all.count, all[k + 1].info == "text", all[k + 1].line == b.line + b.body.count + 2 {
                    e.expectedText = all[k + 1].body.map(\.trimmingTrailingSpaces).joined(separator: "\n")
                } else if e.definesTests, let report = all[(k + 1)...].first(where: { $0.body.first == "TAP version 13" }) {
                    // A block of tests: its report is the TAP transcript shown after it.
                    e.expectedText = report.body.map(\.trimmingTrailingSpaces).joined(separator: "\n")
                }
                examples.append(e)
            }
        }
        return examples
    }

    static let linuxFetched = FileManager.default.fileExists(atPath: root.appendingPathComponent(".cache/linux/initrd.gz").path)

    @Test(.enabled(if: LuaScriptTests.guestsBuilt, "needs Scripts/build-guests"), arguments: luaExamples().map(\.id))
    func luaExample(_ id: String) throws {
        let example = try #require(Self.luaExamples().first { $0.id == id })
        if example.needsLinux && !Self.linuxFetched {
            print("\(id): not run: .cache/linux is missing (Scripts/fetch-linux)")
            return
        }
        let out: String
        if example.definesTests {
            out = try Self.runTests(example)
        } else {
            // Blank lines first, so that error messages give the line in the document.
            let chunk = String(repeating: "\n", count: example.line - 1) + example.code
            out = Self.normalized(try LuaScriptTests.run { lua throws(LuaError) in _ = try lua.run(chunk, name: "@" + example.document) })
        }
        if let expected = example.expectedText {
            #expect(out == Self.normalized(expected), "\(id)")
        } else if !example.definesTests {
            #expect(out == example.expectedLines.joined(separator: "\n"), "\(id)")
        }
    }

    /// Runs a block of tests as `magritte test FILE` would; the TAP report with the block's own
    /// file name (its first line, `-- NAME`) in place of the scratch file's.
    static func runTests(_ example: LuaExample) throws -> String {
        let first = example.code.split(separator: "\n", omittingEmptySubsequences: false).first ?? ""
        let name = first.hasPrefix("-- ") ? String(first.dropFirst(3)).trimmingCharacters(in: .whitespaces) : "example_test.lua"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("doc-" + UUID().uuidString.prefix(8))
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try (example.code + "\n").write(to: file, atomically: true, encoding: .utf8)
        var report = ""
        _ = FileManager.default.changeCurrentDirectoryPath(root.path)  // guest paths are relative to the root
        let runner = LuaTestRunner { report += $0 + "\n" }
        _ = runner.run(files: [file.path])
        return normalized(report.replacingOccurrences(of: file.path, with: name))
    }

    /// Output as the documentation shows it: tabs as one space, no trailing spaces or empty lines.
    static func normalized(_ s: String) -> String {
        LuaScriptTests.normalized(s)
    }

    // MARK: Shell examples

    /// One command of a `sh` block (continuation lines joined, comment removed) and where it is.
    struct Command {
        var document: String
        var line: Int
        var text: String
        var run: Bool
        var id: String { "\(document):\(line)" }
    }

    static func commands() -> [Command] {
        var result: [Command] = []
        for document in documents {
            for b in blocks(document) where b.info == "sh" || b.info == "sh run" {
                var pending = "", start = b.line
                var hereDocument: String?  // the end marker of a here-document being skipped
                for (k, raw) in b.body.enumerated() {
                    if let end = hereDocument {
                        if raw.trimmingCharacters(in: .whitespaces) == end { hereDocument = nil }
                        continue
                    }
                    if let m = raw.firstMatch(of: /<<-?\s*'?"?([A-Za-z_]+)/) { hereDocument = String(m.1) }
                    if pending.isEmpty { start = b.line + k }
                    let line = raw.trimmingCharacters(in: .whitespaces)
                    if line.hasSuffix("\\") { pending += line.dropLast() + " "; continue }
                    let text = withoutComment(pending + line).trimmingCharacters(in: .whitespaces)
                    pending = ""
                    if !text.isEmpty { result.append(Command(document: document, line: start, text: text, run: b.info == "sh run")) }
                }
            }
        }
        return result
    }

    /// `text` without a `#` comment (a `#` that starts a word outside quotes).
    static func withoutComment(_ text: String) -> String {
        var quote: Character? = nil
        var previous: Character = " "
        for (i, c) in zip(text.indices, text) {
            if let q = quote { if c == q { quote = nil } } else if c == "\"" || c == "'" { quote = c } else if c == "#" && previous == " " {
                return String(text[..<i])
            }
            previous = c
        }
        return text
    }

    /// Splits a command into words (quotes removed), as the shell would for these examples.
    static func words(_ text: String) -> [String] {
        var words: [String] = [], word = "", quote: Character? = nil, inWord = false
        for c in text {
            if let q = quote {
                if c == q { quote = nil } else { word.append(c) }
            } else if c == "\"" || c == "'" {
                quote = c; inWord = true
            } else if c == " " {
                if inWord { words.append(word); word = ""; inWord = false }
            } else {
                word.append(c); inWord = true
            }
        }
        if inWord { words.append(word) }
        return words
    }

    /// The simple commands of a command line (split at `&&`, `||`, `;` and `|`).
    static func simpleCommands(_ words: [String]) -> [[String]] {
        var result: [[String]] = [], current: [String] = []
        // A subshell's parentheses are not part of the words.
        for word in words {
            var w = Substring(word)
            while w.first == "(" { w = w.dropFirst() }
            while w.last == ")" { w = w.dropLast() }
            if w.isEmpty { continue }
            let token = String(w)
            if ["&&", "||", ";", "|"].contains(token) { result.append(current); current = [] } else { current.append(token) }
        }
        result.append(current)
        return result.filter { !$0.isEmpty }
    }

    /// Commands the examples may use that are not the project's own (installed or system tools).
    static let systemCommands: Set<String> = ["apt-get", "qemu-system-mipsel", "gdb-multiarch", "git", "cd", "ls", "cat",
                                              "llvm-objdump", "llvm-objcopy", "python3", "time", "export", "rm", "mkdir"]

    static let helpCache = HelpCache()
    final class HelpCache: @unchecked Sendable {
        private var texts: [String: String] = [:]
        private let lock = NSLock()
        func help(_ subcommand: String) throws -> String? {
            lock.lock(); defer { lock.unlock() }
            if let t = texts[subcommand] { return t }
            guard let exe = ConsoleTests.executable else { return nil }
            let out = try ConsoleTests.run(exe, [subcommand, "--help"])
            let text = out.status == 0 ? out.out + out.err : nil
            texts[subcommand] = text
            return text
        }
    }

    /// What is wrong with one simple command, or nil.
    static func problem(_ command: [String]) throws -> String? {
        var w = command
        if w.first == "swift", w.count >= 2, w[1] == "run" {
            // swift run [-c release] [--skip-build] magritte ARGS
            w.removeFirst(2)
            while let f = w.first, f.hasPrefix("-") { w.removeFirst(); if f == "-c" { w.removeFirst() } }
            if w.first != "magritte" { return nil }  // another package's product (Examples/embed)
        }
        guard let program = w.first else { return nil }
        if program == "magritte" {
            guard w.count >= 2, !w[1].hasPrefix("-") else { return nil }  // the console itself
            let sub = w[1]
            guard let help = try helpCache.help(sub) else {
                return ConsoleTests.executable == nil ? "the magritte executable is not built" : "magritte has no subcommand \(sub)"
            }
            for option in w.dropFirst(2) where option.hasPrefix("--") {
                let name = String(option.split(separator: "=").first ?? "")
                if !help.contains(name) { return "magritte \(sub) has no option \(name)" }
            }
            return nil
        }
        if program.hasPrefix("Scripts/") {
            let url = root.appendingPathComponent(program)
            guard FileManager.default.isExecutableFile(atPath: url.path) else { return "\(program) is not an executable script" }
            let script = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
            for option in w.dropFirst() where option.hasPrefix("--") {
                let name = String(option.split(separator: "=").first ?? "")
                if !script.contains(name) { return "\(program) has no option \(name)" }
            }
            return nil
        }
        if systemCommands.contains(program) { return nil }
        return "unknown command \(program) (the project's commands are Scripts/… and magritte)"
    }

    @Test(arguments: commands().map(\.id))
    func shellExample(_ id: String) throws {
        let command = try #require(Self.commands().first { $0.id == id })
        for simple in Self.simpleCommands(Self.words(command.text)) {
            if let p = try Self.problem(simple) { Issue.record(Comment(rawValue: "\(id): `\(command.text)`: \(p)")) }
        }
        guard command.run else { return }
        let exe = try #require(ConsoleTests.executable, "the magritte executable is not built")
        // A scratch directory that sees the repository, so files the example writes stay out of it.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("docsh-" + UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for entry in try FileManager.default.contentsOfDirectory(atPath: Self.root.path) where entry != ".git" {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(entry), withDestinationURL: Self.root.appendingPathComponent(entry))
        }
        let script = """
            set -e
            magritte() { "\(exe)" "$@"; }
            swift() { shift; while [ "${1#-}" != "$1" ]; do [ "$1" = -c ] && shift; shift; done; shift; "\(exe)" "$@"; }
            \(command.text)
            """
        let out = try ConsoleTests.run("/bin/bash", ["-c", script], in: dir)
        #expect(out.status == 0, "\(id): `\(command.text)` exited \(out.status)\n\(out.err.suffix(2000))")
    }

    // MARK: Paths

    static let pathPattern = try! NSRegularExpression(
        pattern: #"(?<![A-Za-z0-9_./-])((?:\.build/guests|Scripts|Docs|Sources|Tests|Guests|Examples)/[A-Za-z0-9_./+-]*[A-Za-z0-9_+-])"#)

    /// Every repository path a document names, with its line.
    static func paths(_ document: String) -> [(line: Int, path: String)] {
        var result: [(Int, String)] = []
        for (k, line) in text(document).components(separatedBy: "\n").enumerated() {
            for m in pathPattern.matches(in: line, range: NSRange(line.startIndex..., in: line)) {
                guard let r = Range(m.range(at: 1), in: line) else { continue }
                let path = String(line[r])
                // Patterns (Scripts/*.lua, Guests/…) and placeholders (Guests/tests/NAME.c) are not paths.
                let after = line[r.upperBound...]
                if after.hasPrefix("*") || after.hasPrefix("…") || after.hasPrefix("<") || after.hasPrefix("{") { continue }
                let placeholder = path.split(separator: "/").contains { part in
                    let stem = part.split(separator: ".").first ?? part
                    return stem.count >= 1 && stem.allSatisfy { $0.isUppercase || $0 == "_" }
                }
                if placeholder && !FileManager.default.fileExists(atPath: root.appendingPathComponent(path).path) { continue }
                result.append((k + 1, path))
            }
        }
        return result
    }

    @Test(.enabled(if: LuaScriptTests.guestsBuilt, "needs Scripts/build-guests"), arguments: documents)
    func namedPathsExist(_ document: String) {
        for (line, path) in Self.paths(document) {
            let exists = FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(path).path)
            #expect(exists, "\(document):\(line) names \(path), which does not exist")
        }
    }

    @Test func everyDocumentHasItsChecks() {
        // The parsers see the examples that are there (a broken fence would hide them all).
        #expect(Self.documents.count >= 10)
        #expect(Self.luaExamples().count >= 30)
        #expect(Self.commands().count >= 10)
    }
}

extension String {
    fileprivate var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
