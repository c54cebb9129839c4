-- idle.lua: the lecture's "information gap" in numbers. The same teachos runs three times side
-- by side under Magritte's VMM, once per idle mode (teachos' idle= boot argument):
--   spin       `while (1) ;` in the kernel's idle loop: to the VMM, busy work;
--   wait       the `wait` instruction: privileged, so it traps and the VMM deschedules the guest;
--   hypercall  para-virtualization: the guest tells the VMM it is idle (Docs/hypercalls.md).
--
--   Scripts/build-guests                          (once: builds .build/guests/...)
--   magritte run Scripts/idle.lua

local image = ".build/guests/os/teachos.elf"

local vmm = magritte.vmm{ram = "128M"}
-- "account": the VMM notices a spinning guest (same pc, same registers, a tight loop) and counts
-- the instructions, but lets it burn its slice, as a VMM without that knowledge would.
vmm.spin_policy = "account"
local guests = {}
for _, mode in ipairs{"spin", "wait", "hypercall"} do
  guests[#guests + 1] = vmm:add{image = image, name = mode, idle = mode}
end
local reason = vmm:run()
assert(reason == "poweroff", reason)

print(("%-10s %14s %14s %14s %16s %10s"):format("idle mode", "instructions", "spinning", "wait cycles",
      "hypercall idle", "hypercalls"))
for _, g in ipairs(guests) do
  local s = g.stats
  print(("%-10s %14d %14d %14d %16d %10d"):format(g.name, s.instructions, s.spin_instructions,
        s.wait_cycles, s.hypercall_idle_cycles, s.hypercalls))
end
local spin, wait, hyper = guests[1].stats, guests[2].stats, guests[3].stats
-- Every guest did the same work (the same console, but for timing lines)...
local function stable(text) return (text:gsub("timing:[^\n]*\n", "")) end
assert(stable(guests[1].console) == stable(guests[2].console) and stable(guests[2].console) == stable(guests[3].console))
-- ...but the spinning one burnt instructions where the others gave the CPU back.
assert(spin.spin_instructions > 0 and spin.wait_cycles == 0 and spin.hypercall_idle_cycles == 0)
assert(wait.wait_cycles > 0 and wait.spin_instructions == 0)
assert(hyper.hypercall_idle_cycles > 0 and hyper.hypercalls > 0 and hyper.spin_instructions == 0)
local extra = spin.instructions - wait.instructions
assert(extra > 0)
print()
print(("The spinning guest executed %d more instructions than the one that waits (%.1fx) for the"):format(
      extra, spin.instructions / wait.instructions))
print(("same work: its idle loop. The VMM's spin detector (same pc and registers at the end of two"):format())
print(("4096-instruction quanta, in a short loop without stores) recognised %d of them; a VMM"):format(spin.spin_instructions))
print("without it could not tell them from useful work. The waiting and the para-virtual guests were")
print("descheduled instead: their idle time is machine time given to the others.")
print(("Machine total: %d instructions, %d cycles."):format(vmm.instructions, vmm.cycles))

