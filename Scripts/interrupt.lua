-- interrupt.lua: the timer interrupt taken by teachos, then a hardware interrupt injected.
--
--   Scripts/build-guests                          (once: builds .build/guests/...)
--   magritte run Scripts/interrupt.lua
--
-- Run it from the repository root. Cause.IP7..IP2 are the six hardware interrupt lines (IP7
-- is also the Count/Compare timer's, and Cause.TI says the timer asserts it); Status.IM7..IM2
-- enable them one by one and Status.IE enables them all. The CPU takes a pending, enabled
-- interrupt at the next instruction boundary when EXL and ERL are 0: ExcCode 0 (Int), EPC =
-- the next instruction to run. teachos (Docs/guest-os.md) enables only IM7: every tick ends a
-- time slice. Docs/lua-api.md describes every call used here.

local image = ".build/guests/os/teachos.elf"

local hex = magritte.hex
local function step(n, text) print(("\n== %d. %s"):format(n, text)) end
local function lines(bits)  -- "IP7 IP2" from Cause or "IM7" from Status (bits 15..8)
  local t = {}
  for i = 7, 0, -1 do if (bits >> (8 + i)) & 1 == 1 then t[#t + 1] = i end end
  return #t == 0 and "none" or table.concat(t, " ")
end
local function show(m)
  local c, s = m.cpu.cp0.cause, m.cpu.cp0.status
  print(("Cause  %s  pending IP: %s   TI (the timer asserts IP7) %d   ExcCode %d"):format(hex(c), lines(c),
        (c >> 30) & 1, (c >> 2) & 31))
  print(("Status %s  enabled IM: %s   IE %d  EXL %d  ERL %d  KSU %d"):format(hex(s), lines(s), s & 1,
        (s >> 1) & 1, (s >> 2) & 1, (s >> 3) & 3))
end

local m = magritte.machine{image = image}
local kstats = m:symbol("kstats")
-- kstats.timer_interrupts, read by physical address: kseg0 cannot be read in user mode.
local function timer_interrupts() return m.phys:read32((kstats + 28) & 0x1fffffff) end

step(1, "Boot teachos and break on the first interrupt exception")
local bp = m:break_on_exception("Int")
local reason, e = m:run()
print("run stopped:", reason, "- exception", e.cause, "at", hex(e.pc), "(" .. (m:where(e.pc) or "?") .. ")",
      "after", m.instructions, "instructions")
local ksu = (m.cpu.cp0.status >> 3) & 3
print(("Status.KSU = %d: the interrupted code ran in %s mode (EXL = 1 makes it kernel mode now); EPC = %s"):format(
      ksu, ({[0] = "kernel", "supervisor", "user"})[ksu] or "?", hex(m.cpu.cp0.epc)))

step(2, "Why: the timer. Count reached Compare, so Cause.TI and IP7 are set, and Status enables IM7")
show(m)
print(("Count %d = Compare %d"):format(m.cpu.cp0.count, m.cpu.cp0.compare))

step(3, "The handler: interrupts use the general exception vector too (Cause.IV = 0)")
print(m:disasm(m.cpu.pc, 4))

step(4, "Run until the kernel acknowledges the timer (writing Compare clears Cause.TI)")
local ack = m:on("instruction", function()
  if (m.cpu.cp0.cause >> 30) & 1 == 0 then return "stop" end
end)
local before = m.instructions
reason = m:run()
ack:remove()
print("run stopped:", reason, "after", m.instructions - before, "instructions of the handler; the write:")
print(m:disasm(m.cpu.pc - 8, 3))
show(m)
print(("new Compare %d: the next tick, %d Count cycles from now"):format(m.cpu.cp0.compare,
      m.cpu.cp0.compare - m.cpu.cp0.count))

step(5, "Run to the eret: every tick ends a time slice, so another process may run now")
local back = m:break_on_mode("kernel", "user")
local pid = m.cpu.cp0.entryhi & 0xff
reason, e = m:run()
back:remove()
print("run stopped:", reason, e.from, "->", e.to, "(" .. e.cause .. ")", "- ASID (pid) before", pid,
      "now", m.cpu.cp0.entryhi & 0xff, "; timer interrupts so far:", timer_interrupts())

step(6, "Inject a hardware interrupt on line 0 (IP2, the Malta's i8259): teachos masks it")
m:interrupt(0)                    -- assert; m:interrupt(0, false) clears it
show(m)
local taken = m.exceptions.Int
reason = m:run(50000)
print(("after 50000 more instructions: %s; interrupts taken %d -> %d (only the timer's)"):format(reason,
      taken, m.exceptions.Int))
m:interrupt(0, false)

step(7, "Inject on line 5 (IP7, the line the timer shares): enabled, so taken at once")
if m.cpu.exl or m.cpu.mode ~= "user" then   -- the kernel masks interrupts (EXL = 1): wait for user mode
  back = m:break_on_mode("kernel", "user")
  m:run()
  back:remove()
end
print("mode", m.cpu.mode, "EXL", m.cpu.exl, "IE", m.cpu.ie, "at", hex(m.cpu.pc))
m:interrupt(5)
local at = m.instructions
reason, e = m:run()
print("run stopped:", reason, "- exception", e.cause, "at", hex(e.pc), ("%d instructions after the injection"):format(
      m.instructions - at))
show(m)
print("IP7 without TI: not the timer. teachos only tests Cause.IP7, so it will count a tick.")
local ticks = timer_interrupts()
back = m:break_on_mode("kernel", "user")
m:run()
back:remove()
-- Still asserted, the line would interrupt again right after the eret: clear it now.
m:interrupt(5, false)
print(("back in user mode: timer interrupts %d -> %d, with no timer tick"):format(ticks, timer_interrupts()))
bp:remove()

step(8, "And the rest of the boot: all processes run to the end")
reason = m:run()
print("run stopped:", reason, "after", m.instructions, "instructions;", m.exceptions.Int, "interrupts taken")
for line in m.console:gmatch("[^\n]+") do
  if line:find("kstats:") then print(line) end
end
