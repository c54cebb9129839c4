import Testing
@testable import MagritteLua

/// The console's chunk handling (`ReplSession`) fed lines without a terminal: what each line
/// answers, what the chunk prints through `print`, and its errors (Docs/console.md).
@Suite struct ReplSessionTests {
    /// A session whose global `print` appends its tab-separated arguments, one line per call, to
    /// the global `printed`.
    func session() throws -> ReplSession {
        let s = ReplSession(MagritteLua())
        _ = try s.lua.run("""
            printed = {}
            print = function(...)
              local t = table.pack(...)
              for i = 1, t.n do t[i] = tostring(t[i]) end
              printed[#printed + 1] = table.concat(t, "\\t", 1, t.n)
            end
            """)
        return s
    }

    /// What the chunk printed since the last call, one line per `print`.
    func printed(_ s: ReplSession) throws -> [String] {
        try s.lua.run("local p = table.concat(printed, '\\n'); printed = {}; return p")[0].split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
    }

    /// Feeds `line`; if it completes a chunk, runs it printing its results.
    func enter(_ s: ReplSession, _ line: String) -> ReplSession.Answer {
        let answer = s.feed(line)
        if case .chunk = answer { #expect(s.run(printResults: true) == .ok) }
        return answer
    }

    @Test func bareExpressionAndEqualsPrintTheirValues() throws {
        let s = try session()
        let top = s.lua.top
        #expect(enter(s, "1 + 1, 'two'") == .chunk(entry: "1 + 1, 'two'"))
        #expect(try printed(s) == ["2\ttwo"])
        #expect(enter(s, "=1+1") == .chunk(entry: "=1+1"))
        #expect(try printed(s) == ["2"])
        #expect(enter(s, "{1, 2}") == .chunk(entry: "{1, 2}"))
        #expect(try printed(s) == ["{1, 2}"])
        #expect(s.lua.top == top, "the stack is as it was")
    }

    @Test func statementPrintsNothingAndKeepsItsGlobals() throws {
        let s = try session()
        #expect(enter(s, "x = 6 * 7") == .chunk(entry: "x = 6 * 7"))
        #expect(try printed(s).isEmpty)
        #expect(enter(s, "x") == .chunk(entry: "x"))
        #expect(try printed(s) == ["42"])
    }

    @Test func multiLineFunctionIsOneChunkAndOneHistoryEntry() throws {
        let s = try session()
        #expect(enter(s, "function f(a)") == .needMore)
        #expect(s.isReadingChunk)
        #expect(enter(s, "  return a * 2") == .needMore)
        #expect(enter(s, "end") == .chunk(entry: "function f(a)\n  return a * 2\nend"))
        #expect(!s.isReadingChunk)
        #expect(enter(s, "f(21)") == .chunk(entry: "f(21)"))
        #expect(try printed(s) == ["42"])
        #expect(enter(s, "=f(") == .needMore, "`=` continues over lines as well")
        #expect(enter(s, "4)") == .chunk(entry: "=f(\n4)"))
        #expect(try printed(s) == ["8"])
    }

    @Test func syntaxErrorIsReportedAndTheChunkDropped() throws {
        let s = try session()
        #expect(enter(s, "x = = 1") == .syntaxError(entry: "x = = 1", message: "stdin:1: unexpected symbol near '='"))
        #expect(enter(s, "if true then") == .needMore)
        #expect(enter(s, "x = )") == .syntaxError(entry: "if true then\nx = )", message: "stdin:2: unexpected symbol near ')'"))
        #expect(!s.isReadingChunk)
        #expect(enter(s, "1") == .chunk(entry: "1"), "the next line starts a new chunk")
    }

    @Test func runtimeErrorComesWithATraceback() throws {
        let s = try session()
        #expect(s.feed("error('boom')") == .chunk(entry: "error('boom')"))
        guard case .error(let message) = s.run(printResults: true) else { Issue.record("no error"); return }
        #expect(message.hasPrefix("stdin:1: boom\nstack traceback:"), "\(message)")
        #expect(message.contains("[C]: in function 'error'"), "\(message)")
        #expect(try printed(s).isEmpty)
    }

    @Test func printThatFailsIsReported() throws {
        let s = try session()
        _ = try s.lua.run("print = function() error('no printing', 0) end")
        #expect(s.feed("1") == .chunk(entry: "1"))
        #expect(s.run(printResults: true) == .printError("error calling 'print' (no printing)"))
    }

    @Test func endAndInterruptInsideAChunk() throws {
        let s = try session()
        #expect(s.end() == nil && s.interrupt() == nil, "no chunk begun")
        #expect(s.feed("for i = 1, 2 do") == .needMore)
        let end = s.end()
        #expect(end?.entry == "for i = 1, 2 do" && end?.message == "stdin:1: 'end' expected near <eof>")
        #expect(!s.isReadingChunk)
        #expect(s.feed("t = {") == .needMore)
        #expect(s.interrupt() == "t = {")
        #expect(!s.isReadingChunk)
    }

    @Test func argumentsAreTheChunksVarargs() throws {
        let s = try session()
        try s.lua.load("return select('#', ...), ...", name: "=stdin")
        #expect(s.run(printResults: true, arguments: ["a", "b"]) == .ok)
        #expect(try printed(s) == ["2\ta\tb"])
    }
}
