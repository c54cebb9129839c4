-- Snapshots and time travel from Lua (Docs/time-travel.md): m:snapshot, m:restore, m:time_travel,
-- m:step_back, m:go_to, m:run_back and their errors.
-- Run by `magritte test Tests/lua` and by `swift test` (LuaScriptTests), with the runner's assertions.

local TEACHOS = ".build/guests/os/teachos.elf"

-- Snapshot, run on, restore, run again: the same instructions, registers and console.
local m = magritte.machine{image = TEACHOS, ram = "32M", append = "idle=wait"}
m:run(1500000)
local s = m:snapshot()
assert(s.instructions == m.instructions and s.cycles == m.cycles and s.pages > 0 and s.bytes >= s.pages * 4096)
local console = m.console
m:run(700000)
local after = {m.instructions, m.cpu.pc, m.cpu.sp, m.console, m.cpu.cp0.count}
m:restore(s)
assert(m.instructions == s.instructions and m.console == console)
m:run(700000)
assert(m.instructions == after[1] and m.cpu.pc == after[2] and m.cpu.sp == after[3] and m.console == after[4]
       and m.cpu.cp0.count == after[5])

-- Through a file, into another machine of the same configuration.
local path = os.tmpname()
local t = m:snapshot(path)
local other = magritte.machine{image = TEACHOS, ram = "32M", append = "idle=wait"}
other:restore(path)
assert(other.instructions == t.instructions and other.console == m.console and other.cpu.pc == m.cpu.pc)
local again = magritte.machine{image = TEACHOS, ram = "32M"}
again:restore(path)
t:save(path)
again:restore(path)
assert(again.cpu.pc == m.cpu.pc)

-- Bad files and other configurations are refused; the machine is unchanged.
local f = io.open(path, "wb") f:write("not a snapshot") f:close()
local pc, n = other.cpu.pc, other.instructions
assert_error(function() other:restore(path) end, "restore: not a Magritte snapshot")
assert_error(function() other:restore("/nonexistent/x.snap") end, "cannot read the snapshot file")
assert_error(function() other:restore({}) end, "snapshot or file name expected")
assert_error(function() magritte.machine{ram = "64M"}:restore(s) end, "another machine configuration")
assert_error(function() m:snapshot("/nonexistent/dir/x.snap") end, "snapshot: cannot write the snapshot file")
assert(other.cpu.pc == pc and other.instructions == n)
os.remove(path)

-- A callback cannot restore or travel while the machine runs.
local h = m:on("exception", function() m:restore(s) end)
assert_error(function() m:run(200000) end, "restore: not while the machine runs")
h:remove()

-- Time travel: no history until asked for.
local tt = magritte.machine{image = TEACHOS, append = "idle=wait"}
assert_error(function() tt:step_back() end, "step_back: no history is recorded")
assert(tt.history == nil)
assert_error(function() tt:time_travel{interval = 0} end, "interval must be a positive number")
tt:time_travel{interval = 300000, memory = 64 << 20}
local bp = tt:break_on_exception("Sys")
local hits = {}
for i = 1, 4 do
  assert(tt:run() == "exception")
  hits[i] = {tt.executed, tt.cpu.pc, tt.cpu.v0}
end
bp:disable()
tt:run(20)                                         -- (the next system call is further on)
bp:enable()
local fin = {tt.executed, tt.cpu.pc}
for i = 4, 1, -1 do
  local reason, info = tt:run_back()
  assert(reason == "exception" and info.cause == "Sys", reason)
  assert(tt.executed == hits[i][1] and info.executed == tt.executed and tt.cpu.pc == hits[i][2] and tt.cpu.v0 == hits[i][3], i)
end
assert(tt:run_back() == "start" and tt.executed == 0)
assert(tt:go_to(fin[1]) == "reached" and tt.cpu.pc == fin[2])
assert(tt:step_back(3) == "reached" and tt.executed == fin[1] - 3)
assert(tt:step_back(fin[1] * 2) == "start" and tt.executed == 0)
bp:remove()
-- Running forward after going back records history again.
tt:run(1000000)
assert(tt.history.checkpoints >= 3 and tt.history.start == 0 and tt.history.interval == 300000)

-- Injections are part of the history: going back across them and forward again finds them made.
local inj = magritte.machine{image = TEACHOS, append = "idle=wait"}
inj:time_travel{interval = 10000000}          -- one checkpoint: going forward re-executes all
inj:run(400000)
inj:raise("Ov")                                    -- into the kernel's handler, now
inj:type("x")
inj:run(300000)
inj:interrupt(0, true)
inj:run(300000)
local final = {inj.executed, inj.instructions, inj.cpu.pc, inj.cpu.sp, inj.cpu.cp0.cause, inj.console}
assert_eq(inj:go_to(100), "reached")
assert_eq(inj:go_to(final[1]), "reached")
assert_eq(table.concat({inj.executed, inj.instructions, inj.cpu.pc, inj.cpu.sp, inj.cpu.cp0.cause, inj.console}, "|"),
          table.concat(final, "|"))
