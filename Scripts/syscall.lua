-- syscall.lua: follow one system call of teachos from user mode into the kernel and back.
--
--   Scripts/build-guests                          (once: builds .build/guests/...)
--   magritte run Scripts/syscall.lua
--
-- Run it from the repository root. teachos (Docs/guest-os.md) runs 13 user processes; a
-- process asks the kernel for a service with `syscall`: v0 = the call's number, a0..a2 = its
-- arguments, the result comes back in v0. The CPU enters the general exception vector
-- (EBase + 0x180) in kernel mode with EXL set, EPC = the syscall instruction and
-- Cause.ExcCode = 8 (Sys); the kernel saves the registers, serves the call and returns with
-- `eret` to EPC + 4. Docs/lua-api.md describes every call used here.

local image = ".build/guests/os/teachos.elf"

local hex = magritte.hex
local function step(n, text) print(("\n== %d. %s"):format(n, text)) end
local syscalls = {[0] = "exit", "write", "getpid", "yield", "sleep", "sbrk", "time"}  -- teachos' abi.h

step(1, "Boot teachos and run until a process enters the kernel through a syscall")
local m = magritte.machine{image = image}
-- Other ways into the kernel come first (TLB refills and misses, the timer): count them.
local before = {}
local counter = m:on("mode_change", function(e)
  if e.cause ~= "Sys" then before[e.cause] = (before[e.cause] or 0) + 1 end
end, "user", "kernel")
-- A breakpoint on the user -> kernel mode change, with a condition on the event.
local bp = m:break_on_mode("user", "kernel", function(e) return e.cause == "Sys" end)
-- The exception event comes just before the mode change it causes: keep the last one.
local exception
local watcher = m:on("exception", function(e) exception = e end)
local reason, info = m:run()
counter:remove()
bp:remove()
watcher:remove()
print("run stopped:", reason, "- mode", info.from, "->", info.to, "because of", info.cause,
      "at", hex(info.pc), "after", m.instructions, "instructions")
local others = {}
for cause, n in pairs(before) do others[#others + 1] = n .. " " .. cause end
table.sort(others)
print("user -> kernel changes before it, for other reasons:", table.concat(others, ", "))

step(2, "The exception: the event, then CP0 Cause, EPC and Status as the CPU left them")
print(("event: cause %s (ExcCode %d), pc %s, epc %s, in a delay slot: %s"):format(exception.cause,
      exception.code, hex(exception.pc), hex(exception.epc), exception.delay_slot))
local cp0 = m.cpu.cp0
local epc = cp0.epc
print(("Cause    %s  ExcCode = (Cause >> 2) & 31 = %d, BD (delay slot) = Cause >> 31 = %d"):format(
      hex(cp0.cause), (cp0.cause >> 2) & 31, cp0.cause >> 31))
print(("EPC      %s  the syscall instruction (%s)"):format(hex(epc), m:where(epc) or "?"))
print(("Status   %s  EXL = %s: kernel mode whatever KSU says, interrupts masked"):format(
      hex(cp0.status), m.cpu.exl))
print(("EntryHi  %s  ASID %d = the pid of the calling process"):format(hex(cp0.entryhi), cp0.entryhi & 0xff))
local number = m.cpu.v0
print(("v0 = %d: %s(%s, %s, %s)"):format(number, syscalls[number] or "?", hex(m.cpu.a0),
      hex(m.cpu.a1), hex(m.cpu.a2)))
print("The user code around EPC (readable now: the TLB still maps the caller's page):")
print(m:disasm(epc - 4, 4))

step(3, "The handler: pc is at the general exception vector, EBase + 0x180")
print("pc =", hex(m.cpu.pc), "mode", m.cpu.mode)
print(m:disasm(m.cpu.pc, 4))
local general = m:symbol("exc_general")
print("which jumps to exc_general, the assembly that saves the interrupted registers:")
print(m:disasm(general, 6))

step(4, "Step through the handler, one instruction at a time (the first 10)")
for _ = 1, 10 do
  io.write(m:disasm(m.cpu.pc, 1))
  m:step()
end
print("...")

step(5, "Run on to the eret that goes back to user mode, keeping the last instructions")
m:trace_instructions(8)
local start = m.instructions
local back = m:break_on_mode("kernel", "user")
reason, info = m:run()
back:remove()
print("run stopped:", reason, "- mode", info.from, "->", info.to, "because of", info.cause,
      "at", hex(info.pc), "(" .. (m:where(info.pc) or "?") .. ")")
print(("the kernel ran %d instructions for this call; the last ones were:"):format(m.instructions - start))
for _, pc in ipairs(m:trace_instructions()) do io.write(m:disasm(pc, 1)) end
m:trace_instructions(0)

step(6, "Back in user mode")
local pid = m.cpu.cp0.entryhi & 0xff
print("pc =", hex(m.cpu.pc), "mode", m.cpu.mode, "EXL", m.cpu.exl, "ASID (pid)", pid)
if m.cpu.pc == epc + 4 then
  print(("the same process resumes after its syscall (EPC + 4); v0 = %d is the result of %s"):format(
        m.cpu.v0, syscalls[number] or "the call"))
else
  print("another process runs now (the call blocked, yielded or exited): the kernel resumed pid " .. pid)
end
print(m:disasm(m.cpu.pc, 3))
