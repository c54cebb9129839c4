-- VMM snapshots and time travel from Lua (Docs/time-travel.md): vmm:snapshot, vmm:restore,
-- vmm:time_travel, vmm:step_back, vmm:go_to, vmm:run_back, g:step_back, g:run_back and their errors.
-- Run by `magritte test Tests/lua` and by `swift test` (LuaScriptTests).

local TEACHOS = ".build/guests/os/teachos.elf"

local function pair()
  local vmm = magritte.vmm{ram = "256M"}
  vmm:add{image = TEACHOS, name = "a", idle = "wait"}
  vmm:add{image = TEACHOS, name = "b", idle = "spin"}
  return vmm
end

local function state(vmm)
  local a, b = vmm:guest("a"), vmm:guest("b")
  return table.concat({vmm.executed, vmm.instructions, a.pc, b.pc, a.instructions, b.instructions,
                       #a.console, #b.console, a.cp0.status, b.cp0.count, a.stats.switches_in or 0}, " ")
end

-- Snapshot, run on, restore, run again: the same state; through a file into another VMM too.
local vmm = pair()
vmm:run(2000000)
local path = os.tmpname()
local s = vmm:snapshot(path)
assert(s.executed == vmm.executed and s.instructions == vmm.instructions and s.pages > 0)
vmm:run(1500000)
local after = state(vmm)
vmm:restore(s)
assert_eq(vmm.executed, s.executed)
vmm:run(1500000)
assert_eq(state(vmm), after)
local other = pair()
other:restore(path)
other:run(1500000)
assert_eq(state(other), after)

-- Refused: not a snapshot, a machine's snapshot, another configuration; nothing changes.
local before = state(other)
local f = io.open(path, "wb") f:write("not a snapshot") f:close()
assert_error(function() other:restore(path) end, "restore: not a Magritte snapshot")
assert_error(function() other:restore(magritte.machine{ram = "32M"}:snapshot()) end, "a machine's snapshot")
assert_error(function() magritte.machine{ram = "32M"}:restore(s) end, "a VMM's snapshot")
local single = magritte.vmm{}
single:add{image = TEACHOS, name = "a"}
assert_error(function() single:restore(s) end, "another VMM configuration")
assert_eq(state(other), before)
os.remove(path)

-- Time travel: back and forth land on the states the run went through.
local t = pair()
assert_error(function() t:step_back() end, "no history is recorded")
t:time_travel{interval = 500000}
t:run(1000000)
local mid = state(t)
t:run(1000000)
local stop = state(t)
local reason, info = t:go_to(1000000)
assert_eq(reason, "reached")
assert_eq(state(t), mid)
assert_eq(t:go_to(2000000), "reached")
assert_eq(state(t), stop)
reason, info = t:step_back(10)
assert_eq(info.executed, 2000000 - 10)
assert(t.history.checkpoints >= 3 and t.history["end"] == 2000000)

-- A guest's breakpoint: run_back goes to its previous hit, g:step_back to the guest's previous instruction.
local a = t:guest("a")
t:go_to(2000000)
local trap = a:symbol("trap")
a:break_at(trap)
reason, info = t:run_back()
assert_eq(reason, "breakpoint")
assert_eq(info.pc, trap)
assert_eq(info.guest, "a")
assert_eq(a.pc, trap)
local at = t.executed
reason, info = a:step_back()
assert_eq(reason, "reached")
assert(t.executed < at and info.guest == "a" and a.pc == info.pc)
reason = a:run_back()
assert(reason == "breakpoint" or reason == "start")

-- run_back stops where the forward runs stopped at a guest's breakpoint, in reverse (a guest
-- that resumes at its breakpoint after another guest ran is not at a new hit).
local r = pair()
r:time_travel{interval = 300000}
local ra = r:guest("a")
ra:break_at(ra:symbol("trap"))
local stops = {}
for i = 1, 4 do
  assert_eq(r:run(), "breakpoint")
  stops[i] = r.executed
end
for i = 3, 1, -1 do
  reason, info = r:run_back()
  assert_eq(reason, "breakpoint")
  assert_eq(info.executed, stops[i])
  assert_eq(info.guest, "a")
end

-- A restore starts the history again (the old one is another timeline); bad arguments are errors.
local h = pair()
h:time_travel{interval = 200000}
h:run(500000)
local snap = h:snapshot()
h:run(500000)
h:restore(snap)
assert_eq(h.history.start, snap.executed)
assert_eq((h:step_back(10)), "start")
assert_eq(h.executed, snap.executed)
assert_error(function() h:go_to(-1) end, "")
assert_error(function() h:step_back("x") end, "")
assert_error(function() h:time_travel{interval = 0} end, "interval must be a positive number")
assert_error(function() h:guest("a"):step_back(-5) end, "")
