import Foundation
import Testing
import CMagritteLua
import MagritteHypervisor
@testable import MagritteMachine
@testable import MagritteLua

/// The VMM's Lua API (MagritteLua+VMM.swift) on its error paths: every bad input is a Lua
/// error with a message, callbacks that fail or misbehave end the run cleanly, and VMMs that Lua
/// collects are freed.
@Suite struct VMMAPITests {
    static let hello = MachineAPITests.guest("tests/hello")
    static let guestsBuilt = FileManager.default.fileExists(atPath: hello)

    func run(_ script: String) throws -> [String] {
        let m = MagritteLua()
        m.writeOut = { _ in }
        return try m.lua.run("HELLO = \"\(Self.hello)\"\n" + script, name: "=test")
    }

    /// The first line of the error `script` raises.
    func error(_ script: String) throws -> String {
        do {
            _ = try run(script)
        } catch let error as LuaError {
            return String(error.message.prefix { $0 != "\n" })
        }
        Issue.record("no error from: \(script)")
        return ""
    }

    @Test func badConstructorArguments() throws {
        #expect(try error("magritte.vmm(5)") == "bad argument #1 to 'magritte.vmm' (table expected, got number)")
        #expect(try error("magritte.vmm{ram = {}}") == "ram must be a size such as \"256M\" or a number of bytes")
        #expect(try error("magritte.vmm{ram = 3}").hasPrefix("ram: machine RAM must be a multiple of 4 KiB"))
        #expect(try error("magritte.vmm{ram = \"lots\"}").hasPrefix("ram: "))
        #expect(try error("magritte.vmm{slice = 0}") == "slice must be a number of instructions, at least 1")
        #expect(try error("magritte.vmm{echo = 1}") == "echo must be a boolean")
    }

    @Test(.enabled(if: guestsBuilt)) func badGuestArguments() throws {
        let add = "local v = magritte.vmm{ram = \"16M\"}\n"
        #expect(try error(add + "v:add{image = HELLO, name = 5}") == "add: name must be a non-empty string")
        #expect(try error(add + "v:add{image = HELLO, ram = {}}") == "add: ram must be a size such as \"32M\" or a number of bytes")
        #expect(try error(add + "v:add{image = HELLO, ram = 100}") == "add: guest hello: RAM must be a multiple of 4 KiB, at least 1 MiB")
        #expect(try error(add + "v:add{image = HELLO, append = 1}") == "add: append must be a string (the kernel command line)")
        #expect(try error(add + "v:add{image = HELLO, ram = \"16M\"}").contains("only 15 MiB"))
        #expect(try error(add + "v:guest('x')") == "no guest named 'x' (guests: )")
        #expect(try error(add + "local w = magritte.vmm{ram = \"16M\"}; local g = w:add{image = HELLO, ram = \"4M\"}; v:on('trap', print, g)")
            == "bad argument #3 to 'on' (the guest belongs to another VMM)")
        #expect(try error(add + "v:events{last = -1}") == "events: last must be a number of events, 0 or more")
        #expect(try error(add + "v:events{kind = 'x'}").hasPrefix("unknown VMM event 'x'"))
        #expect(try error(add + "v:run{until_output = 5}") == "run: until_output must be a Lua pattern (a string)")
        #expect(try error(add + "v:run{steps = 'x'}") == "run: steps must be an integer")
        #expect(try error(add + "v:add{image = HELLO, ram = \"4M\"}; v:run{until_output = '('}").hasPrefix("bad output pattern"))
        #expect(try error(add + "v:tlb(64)") == "tlb: index must be 0..63")
    }

    /// `m:restore` and `vmm:restore` of a file of the snapshot format's previous version say
    /// which version it is and which this build reads.
    @Test func olderSnapshotFilesSayTheirVersion() throws {
        let current = SnapshotFile.formatVersion
        func older(_ file: [UInt8], _ kind: SnapshotFile.Kind, _ name: String) throws -> String {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("older-\(getpid())-\(name).snap").path
            try Data(SnapshotFile.wrap(Array(file[SnapshotFile.headerSize...]), kind: kind, version: current - 1)).write(to: URL(fileURLWithPath: path))
            return path
        }
        let machine = try older(Malta(configuration: MaltaConfiguration(ramSize: 32 << 20)).snapshot().encoded(), .malta, "machine")
        let vmm = try older(try VMM(ramSize: 16 << 20).snapshot().encoded(), .vmm, "vmm")
        defer { unlink(machine); unlink(vmm) }
        let message = "restore: the snapshot has format version \(current - 1) (an older Magritte wrote it); this Magritte reads version \(current)"
        #expect(try error("magritte.machine{ram = \"32M\"}:restore(\"\(machine)\")") == message)
        #expect(try error("magritte.vmm{ram = \"16M\"}:restore(\"\(vmm)\")") == message)
    }

    @Test(.enabled(if: guestsBuilt)) func runsAndReasons() throws {
        let out = try run("""
            local v = magritte.vmm{ram = "16M"}
            local g = v:add{image = HELLO, ram = "4M"}
            local r = {}
            r[#r + 1] = v:run(1000)
            local reason, info = v:run{until_output = "hello (%a+)"}
            r[#r + 1] = reason .. " " .. info.guest .. " " .. info.text
            g:pause()
            r[#r + 1] = v:run()
            r[#r + 1] = g:step(10)
            g:resume()
            r[#r + 1] = v:run()
            r[#r + 1] = g:step(10)
            r[#r + 1] = tostring(#v:events{guest = g, last = 5})
            r[#r + 1] = tostring(#v:events{last = 0})
            return table.unpack(r)
            """)
        #expect(out == ["steps", "output hello hello from the guest", "paused", "steps", "poweroff", "poweroff", "5", "0"])
    }

    @Test(.enabled(if: guestsBuilt)) func handlesOfVMMHooks() throws {
        let out = try run("""
            local v = magritte.vmm{ram = "16M"}
            v:add{image = HELLO, ram = "4M"}
            local h = v:on("emulate", function() end, "hello")
            local b = v:break_on("poweroff")
            b:disable()
            local reason = v:run()
            local hits = h.hits
            h:remove()
            return h.active, tostring(h), hits > 0, b.hits, b.description, reason, #v:hooks()
            """)
        #expect(out == ["false", "magritte.handle(1, removed)", "true", "0", "break on poweroff", "poweroff", "1"])
    }

    @Test(.enabled(if: guestsBuilt)) func echoPrefixesLinesWithTheGuestsName() throws {
        let m = MagritteLua()
        var echoed: [UInt8] = []
        m.writeOut = { echoed.append($0) }
        try m.lua.run("local v = magritte.vmm{ram = '16M', echo = true}; v:add{image = '\(Self.hello)', name = 'x', ram = '4M'}; v:run()")
        #expect(String(decoding: echoed, as: UTF8.self).hasPrefix("x| hello from the guest\n"))
    }

    @Test func collectedVMMsAreFreed() throws {
        let api = MagritteLua()
        weak var vmm: VMM?
        weak var luaVMM: LuaVMM?
        try api.lua.run("""
            v = magritte.vmm{ram = "16M"}
            v:on("trap", function() end)
            v.policy = function(r) return r[1] end
            """)
        do {
            lua_getglobal(api.lua.L, "v")
            let v = try #require(api.vmmClass.object(api.lua.L, -1))
            mg_pop(api.lua.L, 1)
            vmm = v.vmm
            luaVMM = v
        }
        #expect(vmm != nil && luaVMM != nil)
        try api.lua.run("v = nil; collectgarbage(); collectgarbage()")
        #expect(luaVMM == nil)
        #expect(vmm == nil)
    }

    /// A script cannot reach a VMM that has gone (its CPU holds it unowned, its device window and
    /// its guests' clocks unretained): a guest keeps its VMM alive after the VMM's own name is
    /// dropped — it runs, restores a snapshot and travels back through `g.vmm` — and the VMM goes
    /// with its last guest.
    @Test(.enabled(if: guestsBuilt)) func aGuestKeepsItsVMMAlive() throws {
        let api = MagritteLua()
        api.writeOut = { _ in }
        let out = try api.lua.run("""
            local s
            do
              local v = magritte.vmm{ram = "16M"}
              g = v:add{image = "\(Self.hello)", ram = "4M"}
              v:time_travel{interval = 10000}
              v:run(20000)
              s = v:snapshot()
            end
            collectgarbage(); collectgarbage()
            local v = g.vmm
            v:run()
            local console = g.console
            v:restore(s)
            local back = v.executed
            v:run()
            v:step_back(5)
            return g.console == console, back < v.executed, g.powered_off
            """)
        #expect(out == ["true", "true", "false"])
        weak var vmm: VMM?
        do {
            lua_getglobal(api.lua.L, "g")
            vmm = try #require(api.guestClass.object(api.lua.L, -1)).vmm
            mg_pop(api.lua.L, 1)
        }
        #expect(vmm != nil)
        try api.lua.run("g = nil; collectgarbage(); collectgarbage()")
        #expect(vmm == nil)
    }

    @Test(.enabled(if: guestsBuilt)) func interruptStopsAVMMRun() throws {
        let api = MagritteLua()
        api.writeOut = { _ in }
        api.lua.register("interrupt_now") { [unowned api] _ in
            api.interrupt()
            return 0
        }
        let out = try api.lua.run("""
            local v = magritte.vmm{ram = "16M"}
            local g = v:add{image = "\(Self.hello)", ram = "4M"}
            local n = 0
            v:on("trap", function() n = n + 1 if n == 10 then interrupt_now() end end)
            local ok, e = pcall(v.run, v)
            return ok, e, g.powered_off
            """)
        #expect(out[0] == "false")
        #expect(out[1].contains("interrupted!"))
        #expect(out[2] == "false")
    }
}
