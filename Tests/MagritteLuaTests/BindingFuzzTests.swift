import Foundation
import MagritteTestSupport
import Testing
import CMagritteLua
import MagritteMachine
@testable import MagritteLua

/// Bad input never crashes the host (issue 3, item 7): every method and field of every Magritte
/// userdata type is called with random arguments (fixed seed, bounded count) and must either
/// return or raise a Lua error with a message; plus the awkward cases one by one (handles used
/// after removal, errors and re-entry in callbacks, machines without an image, coroutines,
/// machines that Lua collects).
@Suite struct BindingFuzzTests {
    static let root = Repository.root
    static let hello = root.appendingPathComponent(".build/guests/tests/hello.elf").path
    static let guestsBuilt = FileManager.default.fileExists(atPath: hello)

    /// A state with `HELLO` (the path of a small guest, or nil) and `fields` (every key each
    /// class declares, by class name) as globals.
    func state() throws -> MagritteLua {
        let api = MagritteLua()
        api.writeOut = { _ in }
        let L = api.lua.L
        if Self.guestsBuilt { api.lua.push(Self.hello) } else { api.lua.pushNil() }
        lua_setglobal(L, "HELLO")
        lua_createtable(L, 0, 8)
        let classes: [(String, [String])] = [
            (api.machineClass.name, api.machineClass.keys), (api.cpuClass.name, api.cpuClass.keys),
            (api.gprClass.name, api.gprClass.keys), (api.cp0Class.name, api.cp0Class.keys),
            (api.memoryClass.name, api.memoryClass.keys), (api.handleClass.name, api.handleClass.keys),
            (api.vmmClass.name, api.vmmClass.keys), (api.guestClass.name, api.guestClass.keys),
            (api.guestCP0Class.name, api.guestCP0Class.keys),
        ]
        for (name, keys) in classes {
            lua_createtable(L, Int32(keys.count), 0)
            for (i, k) in keys.sorted().enumerated() {
                api.lua.push(k)
                lua_rawseti(L, -2, lua_Integer(i + 1))
            }
            lua_setfield(L, -2, name)
        }
        lua_setglobal(L, "fields")
        return api
    }

    /// The random calls, in Lua: `math.randomseed` makes them the same on every run.
    static let fuzz = #"""
        math.randomseed(tonumber(os.getenv("MAGRITTE_FUZZ_SEED")) or 20261126)
        local calls, errors = 0, 0

        local function machine()
          local m = magritte.machine{image = HELLO, ram = "16M", tlb = 16}
          return m
        end
        local m, bare = machine(), magritte.machine{ram = "1M"}
        local h = m:break_at(0x80100000)
        local dead = m:break_at(0x80100004); dead:remove()
        local co = coroutine.create(function() end)
        local vmm = magritte.vmm{ram = "16M"}
        local g = HELLO and vmm:add{image = HELLO, ram = "4M"} or nil
        local vh = vmm:on("trap", function() end)

        -- The pool of argument values.
        local pool = {
          function() return nil end, function() return true end, function() return false end,
          function() return 0 end, function() return 1 end, function() return -1 end,
          function() return math.random(0, 40) end, function() return math.random(-2^31, 2^32) end,
          function() return 2^31 end, function() return 2^32 end, function() return 2^53 end,
          function() return math.maxinteger end, function() return math.mininteger end,
          function() return 0x80100000 + 4 * math.random(0, 64) end, function() return 0xBFC00000 end,
          function() return 0.5 end, function() return -0.0 end, function() return 1e300 end,
          function() return 0/0 end, function() return math.huge end, function() return -math.huge end,
          function() return "" end, function() return "x" end, function() return "5" end,
          function() return "0x10" end, function() return "1e9" end, function() return "user" end,
          function() return "kernel" end, function() return "any" end, function() return "Sys" end,
          function() return "TLBL" end, function() return "tlb_refill" end, function() return "Int" end,
          function() return "rw" end, function() return "w" end, function() return "64M" end,
          function() return "status" end, function() return "t0" end, function() return "mode_change" end,
          function() return "exception" end, function() return "instruction" end, function() return "memory" end,
          function() return "output" end, function() return "poweroff" end, function() return "tlb_write" end,
          function() return string.rep("A", 5000) end, function() return "\0\1\255" end,
          function() return {} end, function() return {1, 2, 3} end,
          function() return {address = 0x80100000, size = math.random(-4, 64), access = "rw"} end,
          function() return {address = "x"} end, function() return {address = 0xFFFFFFFF, size = math.maxinteger} end, function() return {steps = math.random(0, 20000)} end,
          function() return {steps = 100, until_output = "hello"} end, function() return {until_output = "("} end,
          function() return {ram = "2M", tlb = math.random(-2, 70)} end, function() return {image = 5} end,
          function() return setmetatable({}, {__index = function() error("meta") end}) end,
          function() return function() end end,
          function() return function() error("boom in callback") end end,
          function() return function() error({}) end end,
          function() return function() return "stop" end end,
          function() return function() return true end end,
          function() return function() return m:run(10) end end,
          function() return function() m:reset() end end,
          function() return function() m.cpu.pc = 0 end end,
          function() return function() m:raise("Sys") end end,
          function() return function() for _, x in ipairs(m:hooks()) do x:remove() end end end,
          function() return function() m:on("instruction", function() end) end end,
          function() return function() m:trace_instructions(math.random(0, 8)) end end,
          function() return function() return m.cpu.pc, m.mem:read32(m.cpu.pc) end end,
          function() return m end, function() return bare end, function() return m.cpu end,
          function() return m.mem end, function() return m.phys end, function() return h end,
          function() return dead end, function() return m.cpu.gpr end, function() return m.cpu.cp0 end,
          function() return co end, function() return io.stdout end,
          function() return vmm end, function() return g end, function() return vh end,
          function() return g and g.cp0 end, function() return "reflect" end, function() return "hello" end,
          function() return function() vmm:stop() end end,
          function() return function() return vmm:run(10) end end,
          function() return function(r) return r and r[1] end end,
        }
        local function value() return pool[math.random(#pool)]() end

        -- run and step must stay bounded (a random pc could loop forever): their first argument
        -- is a step count or a table with one, or a value of the wrong type.
        local function bounded()
          local r = math.random(8)
          if r == 1 then return math.random(0, 20000) end
          if r == 2 then return {steps = math.random(0, 20000), until_output = math.random(2) == 1 and "o" or "("} end
          if r == 3 then return {steps = -5} end
          if r == 4 then return {steps = "x"} end
          if r == 5 then return -math.random(1, 100) end
          if r == 6 then return 0.5 end
          if r == 7 then return "x" end
          return {until_output = 5}
        end

        local trace = os.getenv("MAGRITTE_FUZZ_TRACE")  -- set it to see each call on stderr
        local function check(what, ok, err)
          calls = calls + 1
          if trace then io.stderr:write(calls, " ", what, " -> ", tostring(ok), " ", tostring(err):match("^[^\n]*"), "\n") end
          if not ok then
            errors = errors + 1
            assert(type(err) == "string" and #err > 0, what .. ": error without a message: " .. tostring(err))
          end
        end

        local function args(name)
          local a = {}
          local n = math.random(0, 5)
          for i = 1, n do a[i] = value() end
          if name == "run" or name == "step" or name == "go_to" then
            a[1] = bounded()
            n = math.max(n, 1)
          end
          if name == "gdb" then  -- it waits for a debugger: give it a port it must refuse
            a[1] = ({70000, -1, 2^53, "x", 0.5})[math.random(5)]
            n = math.max(n, 1)
          end
          -- A path would write a snapshot file in the working directory: one that cannot be written.
          if name == "snapshot" and (type(a[1]) == "string" or type(a[1]) == "number") then a[1] = "/nonexistent/fuzz.snap" end
          return a, n
        end

        local objects = {
          {"magritte.machine", function() return m end},
          {"magritte.machine", function() return bare end},
          {"magritte.cpu", function() return m.cpu end},
          {"magritte.gpr", function() return m.cpu.gpr end},
          {"magritte.cp0", function() return m.cpu.cp0 end},
          {"magritte.memory", function() return m.mem end},
          {"magritte.memory", function() return m.phys end},
          {"magritte.handle", function() return h end},
          {"magritte.handle", function() return dead end},
          {"magritte.vmm", function() return vmm end},
          {"magritte.handle", function() return vh end},
        }
        if g then
          objects[#objects + 1] = {"magritte.guest", function() return g end}
          objects[#objects + 1] = {"magritte.guest_cp0", function() return g.cp0 end}
        end

        for round = 1, ROUNDS do
          for _, entry in ipairs(objects) do
            local class, get = entry[1], entry[2]
            local obj = get()
            local methods = getmetatable(obj).__methods
            local names = {}
            for name in pairs(methods) do names[#names + 1] = name end
            table.sort(names)  -- pairs' order changes from state to state
            for _, name in ipairs(names) do
              local f = methods[name]
              local a, n = args(name)
              check(class .. ":" .. name, pcall(f, obj, table.unpack(a, 1, n)))
              check(class .. "." .. name .. " with a bad self", pcall(f, value(), table.unpack(a, 1, n)))
            end
            for _, key in ipairs(fields[class]) do
              check(class .. "." .. key, pcall(function() return obj[key] end))
              check(class .. "." .. key .. " = ...", pcall(function() obj[key] = value() end))
            end
            for _ = 1, 4 do
              local key = value()
              if key ~= nil and key == key then
                check(class .. "[?]", pcall(function() return obj[key] end))
                check(class .. "[?] = ...", pcall(function() obj[key] = value() end))
              end
            end
            check("tostring " .. class, pcall(tostring, obj))
          end
          -- Start over now and then: hooks with callbacks slow every run down.
          if round % 5 == 0 then
            for _, x in ipairs(m:hooks()) do if x ~= h then pcall(x.remove, x) end end
            m:trace_instructions(0)
            if HELLO then pcall(m.load, m, HELLO) end
            h = m:break_at(0x80100000)
            for _, x in ipairs(vmm:hooks()) do if x ~= vh then pcall(x.remove, x) end end
            vmm.policy = nil
          end
        end
        return calls, errors
        """#

    @Test func everyBindingSurvivesRandomArguments() throws {
        let api = try state()
        let out = try withExtendedLifetime(api) { try api.lua.run("ROUNDS = 40\n" + Self.fuzz, name: "=fuzz") }
        let calls = Int(out[0]) ?? 0, errors = Int(out[1]) ?? 0
        #expect(calls > 15000, "\(calls) calls")
        #expect(errors > 0 && errors < calls)
    }

    /// Runs `script` in a fresh state and returns its results as strings.
    func run(_ script: String) throws -> [String] {
        let api = try state()
        return try withExtendedLifetime(api) { try api.lua.run(script, name: "=test") }
    }

    @Test func handlesRemovedTwiceOrUsedAfterRemoval() throws {
        let out = try run("""
            local m = magritte.machine()
            local h = m:break_at(0x80100000)
            assert(h.active and h.enabled and h.hits == 0)
            h:remove()
            local r = {}
            for _, f in ipairs{
              function() h:remove() end, function() return h.hits end, function() return h.enabled end,
              function() h.enabled = true end, function() h:enable() end, function() h:disable() end,
              function() return h.description end,
            } do
              local ok, e = pcall(f)
              assert(not ok)
              r[#r + 1] = e
            end
            assert(h.active == false and h.id == 1)
            return tostring(h), table.concat(r, "|")
            """)
        #expect(out[0] == "magritte.handle(1, removed)")
        #expect(out[1].components(separatedBy: "|").allSatisfy { $0.contains("hook 1 has been removed") })
    }

    @Test(.enabled(if: guestsBuilt)) func errorsInsideEveryKindOfCallback() throws {
        let out = try run("""
            local m = magritte.machine{image = HELLO}
            local kinds = {
              function(f) return m:on("exception", f) end, function(f) return m:on("instruction", f) end,
              function(f) return m:on("output", f) end, function(f) return m:on("poweroff", f) end,
              function(f) return m:on("memory", f, {address = m:symbol("main") or 0x80100000, size = 4096}) end,
              function(f) return m:break_at(m:symbol("main"), f) end,
              function(f) return m:break_on_exception("Bp", f) end,
              function(f) return m:on("exception", f, "Tr") end,
            }
            local seen = {}
            for i, install in ipairs(kinds) do
              m:reset()
              local h = install(function() error("callback " .. i .. " failed") end)
              local ok, e = pcall(m.run, m)
              assert(not ok, "callback " .. i .. " did not fail")
              assert(e:find("callback " .. i .. " failed", 1, true), e)
              assert(e:find("stack traceback", 1, true), e)
              h:remove()
              -- The machine is still usable: the rest of the program runs.
              seen[#seen + 1] = m:run()
            end
            -- Error values that are not strings.
            m:reset()
            local h = m:on("instruction", function() error({}) end)
            local ok, e = pcall(m.run, m, 100)
            assert(not ok and e:find("error object is a table value", 1, true), e)
            h:remove()
            m:reset()
            h = m:on("instruction", function() error(setmetatable({}, {__tostring = function() return "custom" end})) end)
            ok, e = pcall(m.run, m, 100)
            assert(not ok and e:find("custom", 1, true), e)
            return table.concat(seen, " ")
            """)
        #expect(out[0] == Array(repeating: "poweroff", count: 8).joined(separator: " "))
    }

    @Test(.enabled(if: guestsBuilt)) func callbacksCannotReenterTheMachine() throws {
        let out = try run("""
            local m = magritte.machine{image = HELLO}
            local r = {}
            for _, f in ipairs{
              function() m:run(10) end, function() m:step() end, function() m:reset() end,
              function() m:load(HELLO) end, function() m:raise("Sys") end,
              function() m.cpu.pc = 0x80100000 end, function() m.cpu.cp0.status = 0 end,
              function() m.cpu.cp0:write(12, 0, 0) end,
            } do
              m:reset()
              local h = m:on("instruction", f)
              local ok, e = pcall(m.run, m, 1000)
              assert(not ok)
              r[#r + 1] = e:match("^[^\\n]*")
              h:remove()
            end
            -- What a callback may do: registers, memory, other machines, stop.
            m:reset()
            local other = magritte.machine{image = HELLO}
            local h = m:on("instruction", function(pc)
              m.cpu.t9 = m.cpu.t9
              m.mem:write32(0x80400000, pc)
              assert(other:run(100) == "steps")
              return "stop"
            end)
            local reason, info = m:run()
            assert(reason == "callback" and info.hook == h.id and m.mem:read32(0x80400000) == info.pc, reason)
            h:remove()
            assert(m:run() == "poweroff")
            return table.unpack(r)
            """)
        #expect(out.count == 8)
        #expect(out[0].contains("already running"))
        #expect(out[1].contains("already running"))
        for line in out[2...] { #expect(line.contains("not while the machine runs"), "\(line)") }
    }

    @Test(.enabled(if: guestsBuilt)) func hooksAddedAndRemovedInsideCallbacks() throws {
        let out = try run("""
            local m = magritte.machine{image = HELLO}
            local count, added = 0, 0
            local hs = {}
            for i = 1, 5 do
              hs[i] = m:on("instruction", function()
                count = count + 1
                if count % 7 == 0 then
                  -- remove ourselves and others, add new ones, list them
                  for _, h in ipairs(m:hooks()) do if math.random(2) == 1 then h:remove() end end
                  m:on("instruction", function() added = added + 1 end)
                  m:on("exception", function() end)
                end
              end)
            end
            local reason = m:run(20000)
            local n = #m:hooks()
            for _, h in ipairs(m:hooks()) do h:remove() end
            return reason, n > 0, count > 0, added > 0, #m:hooks(), (m:run())
            """)
        #expect(out == ["steps", "true", "true", "true", "0", "poweroff"])
    }

    @Test func machinesWithoutAnImage() throws {
        let out = try run("""
            local m = magritte.machine()
            local r = {}
            for _, f in ipairs{ function() return m:run() end, function() return m:step() end, function() return m:reset() end } do
              local ok, e = pcall(f)
              assert(not ok)
              r[#r + 1] = e
            end
            assert(m.image == nil and m.entry == nil and m.instructions == 0)
            assert(m:disasm(0xBFC00000, 2):find("bfc00000"))
            -- Code a script writes itself runs once pc leaves the reset vector: a WAIT with
            -- interrupts off can never end.
            m.mem:write32(0x80001000, 0x42000020)  -- wait
            m.cpu.pc = 0x80001000
            local reason, info = m:run()
            r[#r + 1] = reason
            r[#r + 1] = string.format("%x", info.pc)
            return table.unpack(r)
            """)
        #expect(out[0].contains("no image loaded"))
        #expect(out[1].contains("no image loaded"))
        #expect(out[2].contains("no image loaded"))
        #expect(out[3] == "deadlock")
        #expect(out[4] == "80001004")
    }

    @Test(.enabled(if: guestsBuilt)) func methodsFromCoroutines() throws {
        let out = try run("""
            local m = magritte.machine{image = HELLO}
            local n = 0
            m:on("exception", function(e) n = n + 1 end)
            local co = coroutine.wrap(function()
              local pc = m.cpu.pc
              local reason = m:run()
              coroutine.yield(pc, reason)
              return m.cpu.mode, magritte.hex(255)
            end)
            local pc, reason = co()
            local mode, hx = co()
            return pc == m.entry, reason, n > 0, mode, hx
            """)
        #expect(out == ["true", "poweroff", "true", "kernel", "0x000000ff"])
    }

    @Test func collectedMachinesAreFreed() throws {
        let api = try state()
        weak var machine: LuaMachine?
        weak var board: Malta?
        try api.lua.run("""
            m = magritte.machine{ram = "1M"}
            m:on("exception", function() end)
            m:break_on_mode("user", "kernel")
            m:trace_instructions(10)
            local cpu, mem = m.cpu, m.mem
            """)
        do {
            lua_getglobal(api.lua.L, "m")
            let m = try #require(api.machineClass.object(api.lua.L, -1))
            mg_pop(api.lua.L, 1)
            machine = m
            board = m.board
        }
        #expect(machine != nil)
        try api.lua.run("m = nil; collectgarbage(); collectgarbage()")
        #expect(machine == nil)
        #expect(board == nil)
    }

    @Test(.enabled(if: guestsBuilt)) func interruptStopsTheRun() throws {
        let api = try state()
        api.lua.register("interrupt_now") { [unowned api] _ in
            api.interrupt()
            return 0
        }
        let out = try api.lua.run("""
            local m = magritte.machine{image = HELLO}
            local n = 0
            m:on("instruction", function() n = n + 1 if n == 100 then interrupt_now() end end)
            local ok, e = pcall(m.run, m)
            return ok, e, m.powered_off
            """)
        #expect(out[0] == "false")
        #expect(out[1].contains("interrupted!"))
        #expect(out[2] == "false")
    }

    /// The CPU skips the observer once at the pc where it last stopped for it, so that resuming
    /// does not stop again; moving pc elsewhere (reset, raise, setting pc) forgets that skip,
    /// so a breakpoint there is hit again.
    @Test(.enabled(if: guestsBuilt)) func breakpointsHitAgainAfterAResetOrAJump() throws {
        let out = try run("""
            local m = magritte.machine{image = HELLO}
            local main = m:symbol("main")
            local bp = m:break_at(main)
            local first = m:run()
            bp:remove()
            assert(m:run() == "poweroff")           -- resumed at main: fine
            bp = m:break_at(main)
            m:reset()
            assert(m:run() == "breakpoint")         -- the skip was used up when it resumed
            m:reset()                               -- reset while stopped at main
            local again = m:run()
            bp:remove()
            m = magritte.machine{image = HELLO}
            bp = m:break_at(main)
            m:run()
            m.cpu.pc = m.entry                      -- jump back: main must stop again
            return first, again, (m:run())
            """)
        #expect(out[0] == "breakpoint")
        #expect(out[1] == "breakpoint")
        #expect(out[2] == "breakpoint")
    }

    @Test(.enabled(if: guestsBuilt)) func outOfRangeAndUnknownNames() throws {
        let out = try run("""
            local m = magritte.machine{image = HELLO}
            local r = {}
            for _, f in ipairs{
              function() return m.mem:read32(0x00001000) end,          -- useg, no TLB entry
              function() return m.mem:read32(2^32) end,
              function() return m.cpu.nosuch end, function() return m.cpu.gpr.nosuch end,
              function() return m.cpu.cp0.nosuch end, function() return m.cpu.gpr[32] end,
              function() return m.cpu.cp0[32] end, function() return m.cpu:tlb(16) end,
              function() m:interrupt(6) end, function() m:raise("TLBL") end,
              function() return m:watch(0xFFFFFFF0, 32) end, function() m:on("nosuch", print) end,
              function() m:break_on_mode("root") end, function() return m.phys:read_bytes(0, 2^25) end,
            } do
              local ok, e = pcall(f)
              assert(not ok)
              r[#r + 1] = e
            end
            return table.unpack(r)
            """)
        let expected = [
            "virtual address 0x00001000 cannot be read", "does not fit in 32 bits", "no field or method 'nosuch'",
            "unknown register 'nosuch'", "unknown CP0 register 'nosuch'", "register number must be 0..31",
            "CP0 register number must be 0..31", "tlb: index must be 0..15", "hardware line must be 0..5",
            "needs the faulting address", "stay below 4 GiB", "unknown event 'nosuch'", "unknown mode 'root'",
            "count must be 0..16M",
        ]
        #expect(out.count == expected.count)
        for (o, e) in zip(out, expected) { #expect(o.contains(e), "\(o) does not say \(e)") }
    }
}
