-- vmm-syscall.lua: the lecture's "System Call with VMM" table, from a real run of teachos
-- under Magritte's VMM, one VMM event at a time.
--
--   Scripts/build-guests                          (once: builds .build/guests/...)
--   magritte run Scripts/vmm-syscall.lua
--
-- On bare hardware a syscall enters the kernel's handler in kernel mode (Scripts/syscall.lua).
-- Under the VMM the kernel runs at reduced privilege (the CPU's supervisor mode), so:
--   1. the process executes `syscall`: the CPU traps into the VMM (the real kernel mode);
--   2. the VMM calls the guest kernel's handler at its vector, at reduced privilege, with the
--      guest's virtual EPC, Cause and Status.EXL set as its CPU would have set them;
--   3. the guest handler runs; each privileged instruction it executes (mfc0, mtc0, ...) traps
--      and the VMM emulates it on the guest's virtual CP0; it ends with `eret`, which traps too;
--   4. the VMM performs the real return from trap;
--   5. the process resumes after its syscall.

local image = ".build/guests/os/teachos.elf"

local hex = magritte.hex

local vmm = magritte.vmm{ram = "64M"}
local g = vmm:add{image = image, name = "teachos", idle = "wait"}

-- Record the guest's VMM events from a process's syscall trap to the real return into user
-- mode: a callback on every event ("any") keeps them, a breakpoint on the "return" event stops
-- the run there.
local events = {}
vmm:on("any", function(e)
  if e.kind == "trap" and e.cause == "Sys" and e.mode_before == "user" then events = {} end
  events[#events + 1] = e
end, g)
local bp = vmm:break_on("return", g, function(e)
  return e.mode_after == "user" and events[1] and events[1].cause == "Sys"
end)
local reason = vmm:run()
assert(reason == "return", reason)
local trap = events[1]
print(("A process at %s executed syscall: the CPU trapped into the VMM."):format(hex(trap.pc)))
print()
print(("%-4s %-12s %-22s %-10s %s"):format("#", "event", "mode before -> after", "pc", "what"))
local counts = {}
for i, e in ipairs(events) do
  counts[e.kind] = (counts[e.kind] or 0) + 1
  print(("%-4d %-12s %-22s %-10s %s"):format(i, e.kind, e.mode_before .. " -> " .. e.mode_after, hex(e.pc), e.text))
end

-- What the table shows, checked.
local reflect, ret = events[2], events[#events]
assert(events[1].kind == "trap" and events[1].cause == "Sys" and events[1].mode_before == "user")
assert(reflect.kind == "reflect" and reflect.cause == "Sys", "the VMM calls the guest's handler next")
assert(reflect.mode_before == "user" and reflect.mode_after == "kernel")
assert(reflect.vector == (g.cp0.ebase & 0xfffff000) + 0x180, "at the guest's general exception vector")
assert((counts.emulate or 0) > 0, "the guest handler's privileged instructions were emulated")
assert(events[#events - 1].kind == "emulate" and events[#events - 1].mnemonic == "eret", "the guest's eret trapped")
assert(ret.kind == "return" and ret.mode_before == "kernel" and ret.mode_after == "user")
print()
print("The guest kernel ran its handler at reduced privilege (the physical CPU in supervisor mode:")
print(("every one of its %d privileged instructions trapped and was emulated), then its eret trapped"):format(counts.emulate))
print(("and the VMM did the real return to %s."):format(hex(ret.target)))
if ret.target == trap.pc + 4 then
  print(("The same process resumes after its syscall (pc + 4); v0 = %d is the result."):format(g:regs().v0))
else
  print("Another process resumes (the call blocked, yielded or exited).")
end
