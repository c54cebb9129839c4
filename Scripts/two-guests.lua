-- two-guests.lua: two unmodified teachos kernels side by side on one MIPS CPU, under
-- Magritte's trap-and-emulate VMM (the lecture "Virtual Machine", /work/shared/reference).
--
--   Scripts/build-guests                          (once: builds .build/guests/...)
--   magritte run Scripts/two-guests.lua
--
-- Each guest believes it owns a Malta board: it runs its kernel in "kernel mode" (really the
-- CPU's supervisor mode), writes CP0 and the TLB (each write traps into the VMM, which emulates
-- it), and talks to its own UART. The VMM switches machines every `vmm.slice` instructions.
-- Docs/lua-api.md ("Virtual machines") describes every call used here.

local image = ".build/guests/os/teachos.elf"

-- The machine: 256 MiB of RAM, of which each guest gets 32 MiB it believes start at 0.
local vmm = magritte.vmm{ram = "256M"}
local a = vmm:add{image = image, name = "alpha", idle = "wait"}
local b = vmm:add{image = image, name = "beta", idle = "wait"}
print(("%s at machine address 0x%08x, %s at 0x%08x"):format(a.name, a.memory_base, b.name, b.memory_base))

-- Every console line as it comes, prefixed with its guest's name: the lines interleave as the
-- VMM switches between the two machines.
vmm:on("output", function(e)
  if not e.text:find("^timing:") then print(e.guest .. "| " .. e.text) end
end)
local switches = 0
vmm:on("switch", function() switches = switches + 1 end)

local reason = vmm:run()
assert(reason == "poweroff", "the run ended with " .. reason)
assert(a.powered_off and b.powered_off)

-- What each guest printed is exactly what teachos prints alone on a bare Malta board.
local bare = magritte.machine{image = image, append = "idle=wait", ram = "32M"}
assert(bare:run() == "poweroff")
local function stable(text) return (text:gsub("timing:[^\n]*\n", "")) end
assert(stable(a.console) == stable(bare.console), "alpha's console differs from bare teachos")
assert(stable(b.console) == stable(bare.console), "beta's console differs from bare teachos")

print()
print("Both guests printed exactly what teachos prints alone on bare hardware.")
print(("%d machine switches; %d instructions in all"):format(switches, vmm.instructions))
print()
local fmt = "%-8s %12s %12s %10s %10s %10s %10s %12s %8s"
print(fmt:format("guest", "kernel ins", "user ins", "exits", "emulated", "reflected", "hidden TLB", "wait cycles", "exits/k"))
for _, g in ipairs(vmm.guests) do
  local s = g.stats
  local emulated, reflected = 0, 0
  for _, n in pairs(s.emulated) do emulated = emulated + n end
  for _, n in pairs(s.reflected) do reflected = reflected + n end
  print(fmt:format(g.name, s.kernel_instructions, s.user_instructions, s.exits, emulated, reflected,
                   s.hidden_fills, s.wait_cycles, ("%.1f"):format(s.exits_per_thousand)))
  assert(s.exits > 0 and emulated > 0 and reflected > 0 and s.hidden_fills > 0)
end
print()
print("exits: traps into the VMM; emulated: privileged instructions the VMM did for the guest;")
print("reflected: exceptions handed to the guest's own handler; hidden TLB: misses the VMM filled")
print("from the guest's virtual TLB without the guest knowing.")
