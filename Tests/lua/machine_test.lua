-- Machines: creation options, loading, reset, run control and every run reason.
-- Run by `magritte test Tests/lua` and by `swift test` (LuaScriptTests), with the runner's assertions.
-- Needs the guests (Scripts/build-guests); paths are relative to the repository root.

local HELLO = ".build/guests/tests/hello.elf"
local TEACHOS = ".build/guests/os/teachos.elf"

-- Creation
local m = magritte.machine{image = HELLO, ram = "64M", tlb = 32}
assert(tostring(m):find("64 MiB", 1, true))
assert(m.cpu.tlb_entries == 32)
assert(m.image == HELLO and m.entry == m:symbol("_start") and m.cpu.pc == m.entry)
assert(m.cpu.a3 == 64 << 20, "the boot loader passes the RAM size in a3")
assert(magritte.machine{ram = 16 << 20}.cpu.a3 == 0, "no image: nothing booted")
assert(require("magritte") == magritte and magritte.version)
assert_error(function() magritte.machine{ram = "5G"} end, "too large")
assert_error(function() magritte.machine{ram = 12345} end, "multiple of 4 KiB")
assert_error(function() magritte.machine{tlb = 0} end, "tlb must be")
assert_error(function() magritte.machine{image = "/nonexistent.elf"} end, "cannot load /nonexistent.elf")
-- A guest program that was not built: the error says how to get it.
assert_error(function() magritte.machine{image = ".build/guests/tests/nope.elf"} end, "build the guest programs with Scripts/build-guests")
assert_error(function() magritte.machine{echo = "yes"} end, "echo must be a boolean")
assert_error(function() magritte.machine{engine = "fast"} end, 'engine must be "jit" or "interpreter"')
assert_error(function() magritte.machine{engine = 1} end, 'engine must be "jit" or "interpreter"')
assert(magritte.machine{engine = "interpreter"}.engine == "interpreter")
-- The translator runs the same guest to the same instruction count.
local jit_, int_ = magritte.machine{image = HELLO, engine = "jit"}, magritte.machine{image = HELLO, engine = "interpreter"}
jit_:run(); int_:run()
assert(jit_.instructions == int_.instructions and jit_.cycles == int_.cycles and jit_.console == int_.console)

-- append reaches the guest's command line (teachos prints it)
local os_ = magritte.machine{image = TEACHOS, append = "idle=wait"}
assert(os_:run{until_output = "idle: requested (%a+)"} == "output")
assert(os_.console:find('command line "idle=wait"', 1, true), os_.console)

-- Run reasons: steps, breakpoint, poweroff
assert(m.instructions == 0 and m.cycles == 0 and not m.powered_off)
local reason, info = m:run(1000)
assert(reason == "steps" and next(info) == nil and m.instructions == 1000)
reason, info = m:step()
assert(reason == "steps" and m.instructions == 1001)
assert(m:step(0) == "steps" and m.instructions == 1001)
local main = m:symbol("main")
local bp = m:break_at(main)
reason, info = m:run()
assert(reason == "breakpoint" and info.pc == main and info.hook == bp.id and m.cpu.pc == main)
assert(m.stop_reason == "breakpoint")
-- Resuming at a breakpoint runs its instruction first (it does not stop there again).
assert(m:step() == "steps" and m.cpu.pc == main + 4)
bp:remove()
reason, info = m:run()
assert(reason == "poweroff" and m.powered_off, reason)
assert(m.console:find("hello from the guest", 1, true))
assert(m.exceptions.Tr == 1 and m.exceptions.Bp == 1 and m.exceptions.Sys == nil)
assert(m.cycles >= m.instructions)
assert(m:run() == "poweroff", "a powered-off machine stays off")
local total = m.instructions

-- reset: back at the entry, console cleared, same program again
m:reset()
assert(m.cpu.pc == m.entry and m.console == "" and not m.powered_off and m.instructions == 0)
assert(m:run() == "poweroff" and m.instructions == total, "the same program again, the same count")

-- output: until_output matches a Lua pattern on the console output of this run
m:reset()
reason, info = m:run{until_output = "dec (%-%d+)"}
assert(reason == "output" and info.pattern == "dec (%-%d+)")
-- The pattern is tried after every byte: the run stops at the first match, "dec -4".
assert(not m.powered_off and m.console:sub(-6) == "dec -4", m.console)
reason = m:run{until_output = "no such text", steps = 5000}
assert(reason == "steps")
assert_error(function() m:run{until_output = "("} end, "bad output pattern")
assert_error(function() m:run{steps = -1} end, "must not be negative")
assert_error(function() m:run{steps = "many"} end, "steps must be an integer")

-- callback: a callback returned "stop"
m:reset()
local h = m:on("exception", function(e) if e.cause == "Bp" then return "stop" end end)
reason, info = m:run()
assert(reason == "callback" and info.cause == "Bp" and info.hook == h.id, reason)
h:remove()

-- stopped: a callback called m:stop()
m:reset()
h = m:on("exception", function() m:stop() end)
reason, info = m:run()
assert(reason == "stopped" and info.pc == m.cpu.pc, reason)
h:remove()
assert(m:run() == "poweroff")

-- deadlock: a WAIT nothing can end (interrupts off, no timer)
local bare = magritte.machine{ram = "1M"}
bare.mem:write32(0x80000100, 0x42000020)  -- wait
bare.cpu.pc = 0x80000100
reason, info = bare:run()
assert(reason == "deadlock" and info.pc == 0x80000104, reason)

-- echo copies the console to the host's stdout (off by default)
assert(m.echo == false)
m.echo = true
assert(m.echo == true)
m.echo = false

-- errors
assert_error(function() magritte.machine():run() end, "no image loaded")
assert_error(function() magritte.machine():reset() end, "no image loaded")
assert_error(function() m:load("/nonexistent.elf") end, "cannot load")
assert_error(function() m.instructions = 5 end, "read-only")
assert_error(function() return m.nosuch end, "no field or method 'nosuch'")
assert_error(function() m.run() end, "calling 'run' on bad self")
