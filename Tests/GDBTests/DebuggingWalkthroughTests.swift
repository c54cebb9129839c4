import Foundation
import Testing

/// The gdb walkthrough of Docs/debugging.md, run as the doc shows it: the magritte command line,
/// the ELF given to gdb and every `(gdb)` command are read from the doc's transcript block, so
/// the doc cannot drift from what the real gdb-multiarch prints. Fails (does not skip) when
/// gdb-multiarch is missing, as GDBProcessTests.
@Suite(.serialized) struct DebuggingWalkthroughTests {
    struct Transcript {
        var magritte: [String]
        var elf: String
        var commands: [String]
        var expected: [String]
    }

    /// The block after `<!-- gdb walkthrough -->` in Docs/debugging.md.
    static func transcript() throws -> Transcript {
        let root = GDBProcessTests.root
        let doc = try String(contentsOf: root.appendingPathComponent("Docs/debugging.md"), encoding: .utf8)
        let block = try #require(doc.firstMatch(of: /<!-- gdb walkthrough -->\n```\n([\s\S]*?)```/).map { String($0.1) },
                                 "no transcript block in Docs/debugging.md")
        let lines = block.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // Paths in the doc are relative to the package's root.
        func resolve(_ word: String) -> String { word.hasPrefix(".build/") ? root.appendingPathComponent(word).path : word }
        let shell = lines.filter { $0.hasPrefix("$ ") }.map { $0.dropFirst(2).split(separator: " ").map(String.init) }
        let server = try #require(shell.first { $0.first == "magritte" }, "no `$ magritte …` line")
        // `--gdb PORT` is the helper's (it lets magritte choose a free port).
        var arguments = Array(server.dropFirst())
        if let i = arguments.firstIndex(of: "--gdb") { arguments.removeSubrange(i...min(i + 1, arguments.count - 1)) }
        let debugger = try #require(shell.first { $0.first == "gdb-multiarch" }, "no `$ gdb-multiarch …` line")
        let elf = try #require(debugger.dropFirst().first { !$0.hasPrefix("-") }, "no ELF on the gdb-multiarch line")
        let commands = lines.filter { $0.hasPrefix("(gdb) ") }.map { String($0.dropFirst(6)) }
        #expect(commands.first?.hasPrefix("target remote") == true)
        let expected = lines.filter { !$0.hasPrefix("(gdb) ") && !$0.hasPrefix("$ ") }
        return Transcript(magritte: arguments.map(resolve), elf: resolve(elf), commands: Array(commands.dropFirst()), expected: expected)
    }

    /// The address of `symbol` in `elf` as llvm-objdump reads its symbol table.
    static func address(of symbol: String, in elf: String) throws -> UInt32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["llvm-objdump", "-t", elf]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let line = try #require(text.split(separator: "\n").first { $0.split(separator: " ").last.map(String.init) == symbol },
                                "llvm-objdump -t \(elf) has no \(symbol)")
        return try #require(UInt32(line.prefix(8), radix: 16))
    }

    @Test func theWalkthroughIsWhatGDBPrints() throws {
        let t = try Self.transcript()
        let s = try GDBProcessTests.debug(t.magritte, elf: t.elf, commands: t.commands)
        // Every line the doc shows, in order.
        let got = s.gdb.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var i = 0
        for line in got where i < t.expected.count && line == t.expected[i] { i += 1 }
        #expect(i == t.expected.count, "missing from gdb's output: \(t.expected.dropFirst(i).first ?? "")\n--- gdb printed:\n\(s.gdb)")
        // What the doc's lines claim, checked against the ELF (llvm-objdump) and gdb's own values:
        // the breakpoint is inside trap, the field is pid 2's, and each reverse-continue stops
        // at a store to the counter with the value one lower than the one after it.
        let trap = try Self.address(of: "trap", in: t.elf)
        let bp = try #require(s.gdb.firstMatch(of: /Breakpoint 1 at 0x([0-9a-f]+)/).flatMap { UInt32($0.1, radix: 16) }, "\(s.gdb)")
        #expect(bp > trap && bp < trap + 0x100, "\(s.gdb)")
        #expect(s.gdb.contains("$1 = 2\n"), "\(s.gdb)")
        let count = try #require(s.gdb.firstMatch(of: /\$2 = (\d+)\n/).flatMap { Int($0.1) }, "\(s.gdb)")
        let changes = s.gdb.matches(of: /Old value = (\d+)\nNew value = (\d+)\n0x([0-9a-f]+) in trap \(\)/)
            .compactMap { m in Int(m.1).flatMap { old in Int(m.2).flatMap { new in UInt32(m.3, radix: 16).map { (old, new, $0) } } } }
        try #require(changes.count == 2, "\(s.gdb)")
        #expect(changes[0].0 == count && changes[0].1 == count - 1 && changes[1].0 == count - 1 && changes[1].1 == count - 2, "\(s.gdb)")
        #expect(changes.allSatisfy { $0.2 > trap && $0.2 < trap + 0xed0 }, "\(s.gdb)")
        #expect(s.gdb.contains(String(format: "=> 0x%08x <trap+%d>:\tsw\t", changes[0].2, changes[0].2 - trap)) && s.gdb.contains(",188("), "\(s.gdb)")
        #expect(s.gdb.contains("[Inferior 1 (Remote target) exited normally]"), "\(s.gdb)")
        #expect(s.out.contains("teachos| teachos: powering off"), "\(s.out)")
        #expect(s.status == 0, "\(s.err)")
    }
}
