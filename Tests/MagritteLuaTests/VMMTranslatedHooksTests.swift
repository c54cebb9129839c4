import CMagritteLua
import Foundation
import MagritteCore
import MagritteHypervisor
import Testing
@testable import MagritteLua

/// A guest's pc hooks (`g:break_at`) under the VMM run at translated speed: they are the CPU's
/// `observedPCs`, not a reason to observe every instruction, and fire only for their guest, at
/// the same instructions with both engines (`Docs/lua-api.md`, "The cost of observation").
@Suite(.enabled(if: Engine.jitSupported)) struct VMMTranslatedHooksTests {
    static let teachos = MachineAPITests.guest("os/teachos")

    /// Runs `script` after making `V` a VMM with `engine` and two teachos guests, `a` and `b`;
    /// returns what it returns and the VMM.
    func withTeachosPair(engine: String, _ script: String) throws -> (report: [String], vmm: VMM) {
        let m = MagritteLua()
        m.writeOut = { _ in }
        let report = try m.lua.run("""
            V = magritte.vmm{ram = "80M", engine = "\(engine)"}
            local a = V:add{image = "\(Self.teachos)", name = "a", ram = "32M", idle = "wait"}
            local b = V:add{image = "\(Self.teachos)", name = "b", ram = "32M", idle = "spin"}
            \(script)
            """, name: "=test")
        let L = m.lua.L
        lua_getglobal(L, "V")
        defer { mg_pop(L, 1) }
        return (report, try #require(m.vmmClass.object(L, -1)).vmm)
    }

    /// `body` with the interpreter, then with the translator; the two reports must be the same.
    func onBothEngines<R>(_ body: (String) throws -> R, report: (R) -> [String]) throws -> (interpreted: R, translated: R) {
        let interpreted = try body("interpreter"), translated = try body("jit")
        #expect(report(interpreted) == report(translated))
        return (interpreted, translated)
    }

    /// The share of the VMM's instructions that ran translated.
    static func translated(_ vmm: VMM) -> Double {
        Double(vmm.cpu.jitStatistics.instructionsRun) / Double(max(vmm.cpu.executedInstructions, 1))
    }

    /// Runs two teachos guests with a counting breakpoint on guest a's trap handler and a
    /// stopping one on guest b's, with `engine`; returns the script's report and the share of
    /// instructions that ran translated.
    func run(engine: String) throws -> (report: [String], translated: Double) {
        let (report, vmm) = try withTeachosPair(engine: engine, """
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
            """)
        #expect(!vmm.cpu.observesInstructions && vmm.cpu.observedPCs.count == 1)
        return (report, Self.translated(vmm))
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: teachos)))
    func guestBreakpointsFireForTheirGuestAtTranslatedSpeed() throws {
        let (interpreted, translated) = try onBothEngines(run(engine:), report: { $0.report })
        let lines = try #require(interpreted.report.first).split(separator: "\n")
        #expect(lines.count == 3 && lines.allSatisfy { $0.hasPrefix("breakpoint b ") }, "\(lines)")
        #expect(Int(interpreted.report.last ?? "") == 120)
        #expect(translated.translated > 0.9, "\(Int(translated.translated * 100)) % translated")
    }

    /// An instruction hook on guest a of two teachos guests: only a's instructions are
    /// observed (`VMM.instructionObservedGuests`), b runs translated; the same instructions
    /// reach the hook with both engines.
    func runInstructionHook(engine: String) throws -> (report: [String], translated: Double, b: Double) {
        let (report, vmm) = try withTeachosPair(engine: engine, """
            local count, sum = 0, 0
            a:on("instruction", function(pc)
              count = count + 1
              sum = (sum * 31 + pc + a.instructions) % 4294967296
            end)
            local reason = V:run{steps = 3000000}
            return string.format("%s %d %d %d %d %x %x", reason, count, sum, a.instructions, b.instructions, a.pc, b.pc)
            """)
        let b = Double(vmm.retiredInstructions(of: vmm.guests[1])) / Double(max(vmm.cpu.executedInstructions, 1))
        return (report, Self.translated(vmm), b)
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: teachos)))
    func guestInstructionHooksLeaveTheOtherGuestTranslated() throws {
        let (interpreted, translated) = try onBothEngines(runInstructionHook(engine:), report: { $0.report })
        let fields = try #require(interpreted.report.first).split(separator: " ")
        #expect(fields.first == "steps" && (Int(fields[1]) ?? 0) > 100_000, "\(fields)")
        // Guest b's instructions (most of them) ran translated; a's were observed one by one.
        #expect(translated.b > 0.2 && translated.translated > translated.b * 0.9,
                "\(Int(translated.translated * 100)) % translated, b ran \(Int(translated.b * 100)) %")
    }

    /// A guest's watch (`g:watch`, a write to the process-table field teachos counts up at every
    /// trap) and `vmm:run_back()` to it: the same stops with both engines, and the guests run
    /// translated (the watched page takes the slow path, nothing else).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: teachos)))
    func guestWatchesAndRunBackAtTranslatedSpeed() throws {
        var reports: [[String]] = []
        for engine in ["interpreter", "jit"] {
            let (report, vmm) = try withTeachosPair(engine: engine, """
                V:time_travel{interval = 1000000}
                local field = a:symbol("procs") + 1256 + 188
                b:watch(field, 4, "w")
                local out = {}
                for i = 1, 4 do
                  local reason, info = V:run{steps = 4000000}
                  out[#out + 1] = string.format("%s %s %x %x %d %d", reason, tostring(info.guest), b.pc, info.pc or 0, a.instructions, b.instructions)
                end
                local reason, info = V:run_back()
                out[#out + 1] = string.format("back %s %s %x %d %d", reason, tostring(info.guest), b.pc, a.instructions, b.instructions)
                return table.concat(out, "\\n")
                """)
            let lines = try #require(report.first).split(separator: "\n")
            #expect(lines.count == 5 && lines.dropLast().allSatisfy { $0.hasPrefix("watch b ") }, "\(lines)")
            if engine == "jit" { #expect(Self.translated(vmm) > 0.9, "\(Int(Self.translated(vmm) * 100)) % translated") }
            reports.append(report)
        }
        #expect(reports[0] == reports[1])
    }
}
