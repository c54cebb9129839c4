import Foundation
import Testing
@testable import MagritteLua

/// Scripts that attack the bridge through the `debug` library or precompiled chunks (issue 11,
/// item 7). Each runs in its own `magritte run` process, because the failure this guards
/// against is the host dying (signal 11): the process must end by exiting, with a Lua error
/// message, or finish.
@Suite struct HostileScriptTests {
    struct Outcome {
        var signalled: Bool
        var status: Int32
        var out: String
        var err: String
    }

    /// Runs `script` with `magritte run`.
    func run(_ script: String) throws -> Outcome {
        let exe = try #require(ConsoleTests.executable, "build with swift build --build-tests: the magritte executable is missing")
        let dir = try ConsoleTests.directory(["s.lua": script])
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["run", dir.appendingPathComponent("s.lua").path]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Outcome(signalled: p.terminationReason == .uncaughtSignal, status: p.terminationStatus,
                       out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self))
    }

    /// Each case, done without protection: the script must end with this Lua error.
    static let cases: [(String, String)] = [
        // __gc twice, on a released object, on a value that is not ours
        ("local m = magritte.machine{ram = '1M'}; local gc = getmetatable(m).__gc; gc(m); gc(m); return m.cpu",
         "a Magritte value released by its __gc"),
        ("local gc = getmetatable(magritte.machine{ram = '1M'}).__gc; gc(42)", "__gc: a Magritte value expected, got number"),
        ("local gc = getmetatable(magritte.machine{ram = '1M'}).__gc; gc(io.stdout)", "__gc: a Magritte value expected, got userdata"),
        ("local f = magritte.disasm_word; local box = select(2, debug.getupvalue(f, 1)); getmetatable(box).__gc(box); getmetatable(box).__gc(box); f(0)",
         "this Magritte function was released"),
        // the registry entry of a class replaced
        ("local m = magritte.machine{ram = '1M'}; debug.getregistry()['magritte.machine'] = 42; local n = magritte.machine{ram = '1M'}; assert(n.cpu); return m.cpu",
         "a Magritte value of another class, or one whose metatable was replaced"),
        // a C closure's upvalue swapped for another userdata, ours or not
        ("debug.setupvalue(magritte.hex, 1, io.stdout); magritte.hex(1)", "upvalue was replaced"),
        ("local m = magritte.machine{ram = '1M'}; debug.setupvalue(magritte.hex, 1, m); magritte.hex(1)", "upvalue was replaced"),
        ("debug.setupvalue(magritte.hex, 1, 42); magritte.hex(1)", "upvalue was replaced"),
        // a metatable moved onto a userdata that is not ours, or onto one of another class
        ("local m = magritte.machine{ram = '1M'}; debug.setmetatable(io.stdout, getmetatable(m)); return io.stdout.cpu",
         "magritte.machine expected, got userdata"),
        ("local m = magritte.machine{ram = '1M'}; local c = m.cpu; debug.setmetatable(c, getmetatable(m)); return c.cpu",
         "magritte.machine expected"),
        // a metatable of our own tables that raises
        ("local m = magritte.machine{ram = '1M'}; setmetatable(getmetatable(m).__methods, {__index = function() error('boom') end}); return m.nosuch",
         "magritte.machine has no field or method 'nosuch'"),
        // precompiled chunks
        ("assert(load(string.dump(function() return 1 end)))", "attempt to load a binary chunk (mode is 't')"),
        ("local n = os.tmpname(); local f = io.open(n, 'wb'); f:write(string.dump(function() end)); f:close(); dofile(n)",
         "attempt to load a binary chunk (mode is 't')"),
        ("local n = os.tmpname(); local f = io.open(n, 'wb'); f:write(string.dump(function() end)); f:close(); assert(loadfile(n))",
         "attempt to load a binary chunk (mode is 't')"),
        ("local d = os.tmpname(); os.remove(d); os.execute('mkdir ' .. d); local f = io.open(d .. '/evil.lua', 'wb'); f:write(string.dump(function() end)); f:close(); package.path = d .. '/?.lua'; require('evil')",
         "attempt to load a binary chunk (mode is 't')"),
    ]

    @Test(arguments: cases) func hostileCaseIsALuaError(_ c: (String, String)) throws {
        let o = try run(c.0)
        #expect(!o.signalled, "killed by signal \(o.status): \(c.0)")
        #expect(o.status == 1, "\(c.0): \(o.err)")
        #expect(o.err.contains(c.1), "\(c.0): \(o.err)")
    }

    /// Binary chunks still load when a script asks for them by mode, and text loads as before.
    @Test func explicitModesStillWork() throws {
        let o = try run("""
            local dumped = string.dump(function() return 7 end)
            local parts = {"return ", "6"}
            print(load(dumped, "d", "b")(), load(dumped, "d", "bt")(), load(function() return table.remove(parts, 1) end)(), load("return 5")())
            print(select(2, load("return 1", "x", "t", {})) == nil)
            """)
        #expect(!o.signalled)
        #expect(o.status == 0, "\(o.err)")
        #expect(o.out == "7\t7\t6\t5\ntrue\n")
    }

    /// Random hostile moves (fixed seed, bounded count): swapping upvalues of the module's
    /// functions and methods, moving metatables between values, calling `__gc`, replacing
    /// registry entries, then calling everything under pcall. The process must finish.
    @Test func randomHostileMovesNeverCrash() throws {
        let o = try run("""
            math.randomseed(tonumber(os.getenv("MAGRITTE_FUZZ_SEED")) or 11007)
            local m = magritte.machine{ram = "1M"}
            local v = magritte.vmm{ram = "16M"}
            local values = {m, m.cpu, m.mem, m.cpu.gpr, m.cpu.cp0, m:break_at(0), v, io.stdout, 42, "x", {}, print}
            local functions = {magritte.hex, magritte.disasm_word, magritte.machine, magritte.vmm}
            for _, obj in ipairs({m, m.cpu, m.mem, v}) do
              for k, f in pairs(getmetatable(obj).__methods) do functions[#functions + 1] = f end
              values[#values + 1] = getmetatable(obj)
              functions[#functions + 1] = getmetatable(obj).__gc
              functions[#functions + 1] = getmetatable(obj).__index
              functions[#functions + 1] = getmetatable(obj).__newindex
            end
            for _, f in ipairs(functions) do
              local up = select(2, debug.getupvalue(f, 1))
              if up ~= nil then values[#values + 1] = up end
            end
            local names = {"magritte.machine", "magritte.cpu", "magritte.memory", "magritte.function", "magritte.vmm"}
            local function pick(t) return t[math.random(#t)] end
            for i = 1, 3000 do
              local r = math.random(5)
              if r == 1 then pcall(debug.setupvalue, pick(functions), 1, pick(values))
              elseif r == 2 then pcall(debug.setmetatable, pick(values), getmetatable(pick(values)))
              elseif r == 3 then pcall(pick(functions), pick(values))
              elseif r == 4 then debug.getregistry()[pick(names)] = pick(values)
              else pcall(pick(functions), pick(values), pick(values), pick(values)) end
            end
            collectgarbage()
            print("done")
            """)
        #expect(!o.signalled, "killed by signal \(o.status): \(o.err)")
        #expect(o.out.hasSuffix("done\n"), "\(o.err)")
    }
}
