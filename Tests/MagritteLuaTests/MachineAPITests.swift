import Foundation
import MagritteTestSupport
import Testing
@testable import MagritteLua

/// The Lua API on real guest programs (built by Scripts/build-guests).
@Suite struct MachineAPITests {
    static let root = Repository.root
    static func guest(_ name: String) -> String { root.appendingPathComponent(".build/guests/\(name).elf").path }

    func run(_ script: String) throws -> [String] {
        let m = MagritteLua()
        m.writeOut = { _ in }
        return try m.lua.run(script, name: "=test")
    }

    @Test func bootsAGuestAndReadsTheConsole() throws {
        let out = try run("""
            local m = magritte.machine{image = "\(Self.guest("tests/hello"))"}
            local reason = m:run()
            return reason, m.console:match("hello from the guest") ~= nil, m.powered_off, m.instructions > 0
            """)
        #expect(out == ["poweroff", "true", "true", "true"])
    }

    @Test func stopsAtTheFirstUserToKernelModeChange() throws {
        let out = try run("""
            local m = magritte.machine{image = "\(Self.guest("tests/user_segments"))"}
            local seen = {}
            m:on("exception", function(e) seen[#seen + 1] = e.cause end)
            local bp = m:break_on_mode("user", "kernel")
            local reason, info = m:run{steps = 10000000}
            assert(reason == "mode_change", reason)
            assert(m.cpu.mode == "kernel" and m.cpu.exl)
            local cause = (m.cpu.cp0.cause >> 2) & 31
            bp:remove()
            assert(not bp.active)
            assert(m:run() == "poweroff")
            return info.from, info.to, cause == 4 or cause == 5 or cause == 11 or cause == 8, #seen > 0
            """)
        #expect(out == ["user", "kernel", "true", "true"])
    }

    @Test func breakpointsRegistersAndMemory() throws {
        let out = try run("""
            local m = magritte.machine{image = "\(Self.guest("tests/hello"))"}
            local main = m:symbol("main")
            assert(main, "no main symbol")
            m:break_at(main)
            local reason, info = m:run()
            assert(reason == "breakpoint" and info.pc == main and m.cpu.pc == main)
            m.cpu.t0 = 0x1234
            assert(m.cpu.gpr[8] == 0x1234 and m.cpu.t0 == 0x1234)
            m.mem:write32(0x80400000, 0xdeadbeef)
            assert(m.phys:read32(0x00400000) == 0xdeadbeef)
            assert(m:disasm(main, 2):find("main"))
            assert(m.cpu.cp0.prid == 0x00019300)
            return m:run()
            """)
        #expect(out.first == "poweroff")
    }

    @Test func errorsAreLuaErrors() throws {
        let script = """
            local m = magritte.machine{image = "\(Self.guest("tests/hello"))"}
            local function err(f, ...) local ok, e = pcall(f, ...) assert(not ok) return e end
            local r = {}
            r[#r+1] = err(function() return m.cpu.nosuch end)
            r[#r+1] = err(function() return m.mem:read32(0xdead) end)
            r[#r+1] = err(function() m:break_on_exception("nope") end)
            r[#r+1] = err(function() return m.cpu.gpr[40] end)
            r[#r+1] = err(function() m:run("x") end)
            local h = m:break_at(0x80100000); h:remove()
            r[#r+1] = err(function() h:remove() end)
            r[#r+1] = err(function() magritte.machine{ram = "5G"} end)
            r[#r+1] = err(function() m:load("/nonexistent.elf") end)
            m:on("exception", function() error("boom in callback") end)
            r[#r+1] = err(function() m:run() end)
            return table.unpack(r)
            """
        let out = try run(script)
        #expect(out.count == 9)
        #expect(out[0].contains("no field or method 'nosuch'"))
        #expect(out[1].contains("cannot be read"))
        #expect(out[2].contains("unknown exception 'nope'"))
        #expect(out[3].contains("0..31"))
        #expect(out[5].contains("removed"))
        #expect(out[8].contains("boom in callback"))
    }
}
