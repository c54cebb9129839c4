import CMagritteLua
import Foundation
import MagritteCore
import Testing
@testable import MagritteLua

/// A guest's pc hooks (`g:break_at`) under the VMM run at translated speed: they are the CPU's
/// `observedPCs`, not a reason to observe every instruction, and fire only for their guest, at
/// the same instructions with both engines (`Docs/lua-api.md`, "The cost of observation").
@Suite(.enabled(if: Engine.jitSupported)) struct VMMTranslatedHooksTests {
    static let teachos = MachineAPITests.guest("os/teachos")

    /// Runs two teachos guests with a counting breakpoint on guest a's trap handler and a
    /// stopping one on guest b's, with `engine`; returns the script's report and the share of
    /// instructions that ran translated.
    func run(engine: String) throws -> (report: [String], translated: Double) {
        let m = MagritteLua()
        m.writeOut = { _ in }
        let report = try m.lua.run("""
            V = magritte.vmm{ram = "80M", engine = "\(engine)"}
            local a = V:add{image = "\(Self.teachos)", name = "a", ram = "32M", idle = "wait"}
            local b = V:add{image = "\(Self.teachos)", name = "b", ram = "32M", idle = "spin"}
            local trap = a:symbol("trap")
            local seen = {}
            a:break_at(trap, function(pc)
              seen[#seen + 1] = string.format("%x@%d", pc, a.instructions)
              return false
            end)
            local hits = 0
            b:break_at(trap, function() hits = hits + 1 return hits % 40 == 0 end)
            local out = {}
            for i = 1, 3 do
              local reason, info = V:run{steps = 4000000}
              out[#out + 1] = string.format("%s %s %x %d %d %d", reason, tostring(info.guest), b.pc, #seen, a.instructions, b.instructions)
            end
            return table.concat(out, "\\n"), table.concat(seen, " ", 1, math.min(#seen, 50)), hits
            """, name: "=test")
        let L = m.lua.L
        lua_getglobal(L, "V")
        defer { mg_pop(L, 1) }
        let v = try #require(m.vmmClass.object(L, -1))
        #expect(!v.vmm.cpu.observesInstructions && v.vmm.cpu.observedPCs.count == 1)
        let stats = v.vmm.cpu.jitStatistics
        return (report, Double(stats.instructionsRun) / Double(max(v.vmm.cpu.executedInstructions, 1)))
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: teachos)))
    func guestBreakpointsFireForTheirGuestAtTranslatedSpeed() throws {
        let interpreted = try run(engine: "interpreter")
        let translated = try run(engine: "jit")
        #expect(interpreted.report == translated.report)
        let lines = try #require(interpreted.report.first).split(separator: "\n")
        #expect(lines.count == 3 && lines.allSatisfy { $0.hasPrefix("breakpoint b ") }, "\(lines)")
        #expect(Int(interpreted.report.last ?? "") == 120)
        #expect(translated.translated > 0.9, "\(Int(translated.translated * 100)) % translated")
    }
}
