-- Events, breakpoints, watches, handles and the trace.
-- Run by `magritte test Tests/lua` and by `swift test` (LuaScriptTests), with the runner's assertions.

local HELLO = ".build/guests/tests/hello.elf"
local SYSCALLS = ".build/guests/tests/syscall_break.elf"
local TEACHOS = ".build/guests/os/teachos.elf"

-- exception events: the table's fields, and a filter by name
local m = magritte.machine{image = SYSCALLS}
local all, sys = {}, 0
local h1 = m:on("exception", function(e) all[#all + 1] = e end)
local h2 = m:on("exception", function(e) sys = sys + 1 end, "Sys")
assert(m:run() == "poweroff")
assert(#all == 12 and sys == 6 and h1.hits == 12 and h2.hits == 6, #all .. " " .. sys)
local e = all[1]
assert(e.cause == "Sys" and e.code == 8 and e.pc == e.epc and not e.delay_slot and not e.refill)
assert(e.badvaddr == nil and e.instructions > 0)
local slot                                      -- "syscall in beq slot": EPC is the branch
for _, x in ipairs(all) do if x.delay_slot then slot = x break end end
assert(slot and slot.epc == slot.pc - 4)
assert(tostring(h1) == "magritte.handle(1, on exception, 12 hits)", tostring(h1))
assert(h2.description == "on exception Sys" and h1.id == 1 and h2.id == 2)

-- handles: disable, enable, remove; m:hooks() lists the installed ones in order
m:reset()
h1:disable()
assert(not h1.enabled and h1.active)
assert(m:run() == "poweroff" and h1.hits == 12 and h2.hits == 12)
h1.enabled = true
local list = m:hooks()
assert(#list == 2 and list[1].id == 1 and list[2].id == 2)
h1:remove()
h2:remove()
assert(#m:hooks() == 0 and not h1.active)

-- breakpoints with conditions: any value but nil and false stops
m:reset()
local n = 0
local bp = m:break_on_exception("Bp", function(ev) n = n + 1 return n == 3 and "third" end)
local reason, info = m:run()
assert(reason == "exception" and info.cause == "Bp" and n == 3 and bp.hits == 3, reason)
assert(m.cpu.exl and m.cpu.pc == 0x80000180, "stopped after CP0 was updated, at the vector")
bp:remove()

-- mode changes: any, from/to filters, break_on_mode
local u = magritte.machine{image = ".build/guests/tests/user_segments.elf"}
local modes = {}
u:on("mode_change", function(ev) modes[#modes + 1] = ev end)
local ku = 0
u:on("mode_change", function() ku = ku + 1 end, "kernel", "user")
local to_kernel = u:break_on_mode("any", "kernel")
reason, info = u:run()
assert(reason == "mode_change" and info.to == "kernel" and info.from ~= "kernel", reason)
assert(info.cause ~= "eret" and info.pc and info.instructions, info.cause)
assert(modes[#modes].to == "kernel" and ku >= 1)
to_kernel:remove()
assert(u:run() == "poweroff")
for _, ev in ipairs(modes) do assert(ev.from ~= ev.to) end
assert_error(function() u:break_on_mode("root") end, "unknown mode 'root'")

-- TLB writes
local os_ = magritte.machine{image = TEACHOS}
local writes = {}
os_:on("tlb_write", function(w) writes[#writes + 1] = w end)
local tw = os_:break_on_tlb_write(function(w) return w.entrylo0 & 2 ~= 0 end)  -- a valid even page
reason, info = os_:run()
assert(reason == "tlb_write" and info.entrylo0 & 2 ~= 0 and info.hook == tw.id)
local last = writes[#writes]
assert(last.index == info.index and last.entryhi == os_.cpu:tlb(info.index).entryhi)
assert(last.pagemask == 0 and os_:where(last.pc) ~= nil)
tw:remove()

-- memory watches: m:watch (a breakpoint) and m:on("memory") (a callback)
local kstats = os_:symbol("kstats")
local w = os_:watch(kstats + 12, 4, "w")           -- kstats.syscalls
reason, info = os_:run()
assert(reason == "watch" and info.write and info.address == kstats + 12 and info.size == 4)
assert(info.value == os_.mem:read32(kstats + 12) and info.physical == info.address & 0x1fffffff)
w:remove()
local reads = 0
local r = os_:on("memory", function(a) reads = reads + 1 end, {address = kstats + 12, size = 4, access = "r"})
assert(os_:run(3000000) == "steps" and reads > 0 and r.hits == reads)
r:remove()
assert_error(function() os_:on("memory", print) end, "needs a range")
assert_error(function() os_:watch(0, 0) end, "size must be at least 1")
assert_error(function() os_:watch(0, 4, "x") end, 'access must be "r", "w" or "rw"')

-- output (whole lines) and poweroff callbacks
m:reset()
local lines, off = {}, 0
m:on("output", function(text) lines[#lines + 1] = text end)
m:on("poweroff", function() off = off + 1 end)
assert(m:run() == "poweroff" and off == 1)
assert(table.concat(lines) == m.console and lines[1]:sub(-1) == "\n")

-- instruction callbacks and pc breakpoints
local hello = magritte.machine{image = HELLO}
local count, pcs = 0, {}
local ih = hello:on("instruction", function(pc) count = count + 1 pcs[count] = pc end)
assert(hello:run(50) == "steps" and count == 50 and pcs[1] == hello.entry)
ih:remove()
local main = hello:symbol("main")
local b1 = hello:break_at(main, function(pc) return pc == main end)
hello:trace_instructions(4)
reason, info = hello:run()
assert(reason == "breakpoint" and info.pc == main and info.hook == b1.id)
assert(tostring(b1):find("break at 0x" .. string.format("%08x", main), 1, true))
b1:remove()

-- the trace: trace_instructions keeps the last pcs, oldest first. The instruction a run
-- stopped at (a pc breakpoint) was recorded then, and is not recorded again when it runs.
local t = hello:trace_instructions()
assert(#t == 4 and t[4] == main, #t)
hello:step(2)
t = hello:trace_instructions()
assert(#t == 4 and t[3] == main and t[4] == main + 4 and hello.cpu.pc == main + 8)
hello:trace_instructions(0)
assert(#hello:trace_instructions() == 0)
assert(hello:run() == "poweroff")
local tr = hello:trace(3)
assert(#tr == 3 and tr[3].kind == "poweroff" and tr[1].kind == "exception" and tr[1].text:find("Tr at", 1, true))
assert(tr[1].instructions <= tr[2].instructions and tr[2].pc > 0)
assert(#hello:trace() == 3 and #hello:trace(1) == 1, "default: the last 20 events")

-- errors
assert_error(function() m:on("nosuch", print) end, "unknown event 'nosuch'")
assert_error(function() m:on("exception", 5) end, "bad argument #2 to 'on' (function expected, got number)")
assert_error(function() m:break_on_exception("nope") end, "unknown exception 'nope'")
assert_error(function() m:break_at("main") end, "bad argument #1 to 'break_at'")
