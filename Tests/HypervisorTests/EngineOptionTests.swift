import Foundation
import MagritteCore
import Testing

/// `--engine jit|interpreter` on `magritte boot` and `magritte vmm`: `--stats` names the engine,
/// both engines print the same console and count the same instructions, a bad name is refused.
@Suite struct EngineOptionTests {
    typealias C = VMMCommandTests

    static func line(_ prefix: String, in text: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init)
    }

    @Test(.enabled(if: C.executable != nil)) func bootOnBothEngines() throws {
        let i = try C.magritte(["boot", C.hello, "--stats", "--engine", "interpreter"])
        let j = try C.magritte(["boot", C.hello, "--stats", "--engine", "jit"])
        #expect(i.status == 0 && j.status == 0, "\(i.err)\(j.err)")
        #expect(Self.line("engine:", in: i.err) == "engine: interpreter")
        #expect(Self.line("engine:", in: j.err) == "engine: \(Engine.jitSupported ? "jit" : "interpreter")")
        #expect(Self.line("instructions:", in: i.err) != nil)
        #expect(Self.line("instructions:", in: i.err) == Self.line("instructions:", in: j.err))
        #expect(i.out == j.out && i.out.contains("hello from the guest"))
        if Engine.jitSupported { #expect(Self.line("jit:", in: j.err) != nil, "\(j.err)") }
    }

    @Test(.enabled(if: C.executable != nil)) func vmmOnBothEngines() throws {
        let i = try C.vmm([C.hello, "--stats", "--engine", "interpreter"])
        let j = try C.vmm([C.hello, "--stats", "--engine", "jit"])
        #expect(i.status == 0 && j.status == 0, "\(i.err)\(j.err)")
        #expect(Self.line("engine:", in: i.err) == "engine: interpreter")
        #expect(Self.line("engine:", in: j.err) == "engine: \(Engine.jitSupported ? "jit" : "interpreter")")
        #expect(i.out == j.out && !i.out.isEmpty)
        if Engine.jitSupported { #expect(Self.line("jit:", in: j.err) != nil, "\(j.err)") }
    }

    @Test(.enabled(if: C.executable != nil)) func unknownEngineIsRefused() throws {
        let r = try C.magritte(["boot", C.hello, "--engine", "fast"])
        #expect(r.status != 0)
        #expect(r.err.contains("--engine") && r.err.contains("fast"), "\(r.err)")
    }
}
