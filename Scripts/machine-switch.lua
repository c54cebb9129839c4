-- machine-switch.lua: the lecture's "machine switch". To run several operating systems on one
-- CPU, the VMM saves the entire machine state of one guest (registers, pc, its virtual CP0, its
-- address space) and restores another's. Here the scheduling policy is a Lua function that gives
-- guest "heavy" three slices for each one of "light".
--
--   Scripts/build-guests                          (once: builds .build/guests/...)
--   magritte run Scripts/machine-switch.lua

local image = ".build/guests/os/teachos.elf"

local hex = magritte.hex

local vmm = magritte.vmm{ram = "128M"}
-- Both spin when idle, so both always want the CPU and the policy decides everything.
local heavy = vmm:add{image = image, name = "heavy", idle = "spin"}
local light = vmm:add{image = image, name = "light", idle = "spin"}
vmm.slice = 100000

-- The policy: called at every slice end with the guests that can run and the one that ran.
local turn = 0
local slices = {heavy = 0, light = 0}                   -- while both can run
vmm.policy = function(runnable, last)
  turn = turn + 1
  local want = (turn % 4 == 0) and light or heavy       -- heavy, heavy, heavy, light, ...
  for _, g in ipairs(runnable) do
    if g == want then
      if #runnable == 2 then slices[g.name] = slices[g.name] + 1 end
      return g
    end
  end
  return runnable[1]                                    -- the other one has powered off
end

-- Look at a few switches: what the VMM saved for the guest going out (its pc and registers as
-- `g:regs()` shows them, its virtual Status and EntryHi.ASID) and what it restored.
local shown, order = 0, {}
vmm:on("switch", function(e)
  order[#order + 1] = e.guest
  if shown < 4 and e.from then
    shown = shown + 1
    local out, into = vmm:guest(e.from), vmm:guest(e.guest)
    local r = out:regs()
    print(("switch %s -> %s after %d machine instructions"):format(e.from, e.guest, e.instructions))
    print(("  saved    %-5s pc %s sp %s  Status %s  ASID %d  mode %s"):format(out.name, hex(r.pc), hex(r.sp),
          hex(out.cp0.status), out.cp0.entryhi & 0xff, out.mode))
    print(("  restored %-5s pc %s sp %s  Status %s  ASID %d  mode %s"):format(into.name, hex(into.pc),
          hex(into:regs().sp), hex(into.cp0.status), into.cp0.entryhi & 0xff, into.mode))
  end
end)
local lightAtHeavysEnd
vmm:on("poweroff", function() lightAtHeavysEnd = light.instructions end, heavy)
assert(vmm:run() == "poweroff")

-- Both finished their work unchanged; heavy got about three slices for each of light's.
local function stable(text) return (text:gsub("timing:[^\n]*\n", "")) end
assert(stable(heavy.console) == stable(light.console))
local h, l = heavy.stats.switches, light.stats.switches
print()
print(("heavy was switched in %d times, light %d times; %d policy decisions"):format(h, l, turn))
print(("while both could run, the policy gave heavy %d slices and light %d"):format(slices.heavy, slices.light))
assert(math.abs(slices.heavy - 3 * slices.light) <= 3, "heavy got three slices for each of light's")
assert(heavy.stats.switches == light.stats.switches or math.abs(heavy.stats.switches - light.stats.switches) <= 1)
print(("heavy powered off after %d of its instructions; light had run %d by then, %d in all."):format(
      heavy.instructions, lightAtHeavysEnd, light.instructions))
assert(lightAtHeavysEnd < heavy.instructions)
