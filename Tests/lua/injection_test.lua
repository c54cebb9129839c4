-- Injection: interrupt lines, exceptions raised as the hardware would, console input.
-- Run by `magritte test Tests/lua` and by `swift test` (LuaScriptTests), with the runner's assertions.

local HELLO = ".build/guests/tests/hello.elf"
local TEACHOS = ".build/guests/os/teachos.elf"

-- m:raise at the current instruction: CP0 as the hardware sets it, the vector, the callbacks
local m = magritte.machine{image = HELLO}
local main = m:symbol("main")
m:break_at(main)
assert(m:run() == "breakpoint")
for _, h in ipairs(m:hooks()) do h:remove() end
local seen
m:on("exception", function(e) seen = e end)
m:raise("syscall")
assert(seen.cause == "Sys" and seen.pc == main and seen.epc == main)
assert(m.cpu.cp0.epc == main and (m.cpu.cp0.cause >> 2) & 31 == 8 and m.cpu.exl)
assert(m.cpu.pc == 0xbfc00380, "Status.BEV = 1 at main: the boot vector 0xBFC00200 + 0x180")

-- a TLB refill at an address: BadVAddr, Context and EntryHi set, the refill vector (EXL = 0)
-- (A fresh machine: after m:reset() the CPU would not stop at main again, see lua-api.md.)
m = magritte.machine{image = HELLO}
m:break_at(main)
assert(m:run() == "breakpoint")
for _, h in ipairs(m:hooks()) do h:remove() end
m:on("exception", function(e) seen = e end)
assert(not m.cpu.exl)
m:raise("tlb_refill", 0x00403123)
assert(seen.cause == "TLBL" and seen.refill and seen.badvaddr == 0x00403123)
assert(m.cpu.cp0.badvaddr == 0x00403123 and m.cpu.cp0.entryhi & 0xffffe000 == 0x00402000)
assert((m.cpu.cp0.context >> 4) & 0x7ffff == 0x00403123 >> 13)
assert(m.cpu.pc == 0xbfc00200, "the refill vector: BEV base + 0x000")
assert_error(function() m:raise("TLBS") end, "needs the faulting address")
assert_error(function() m:raise("AdEL") end, "needs the faulting address")
assert_error(function() m:raise("nosuch") end, "unknown exception 'nosuch'")
m:raise("AdES", 0x80000001)
assert(seen.cause == "AdES" and m.cpu.cp0.badvaddr == 0x80000001)
m:raise("reserved_instruction")
assert(seen.cause == "RI")

-- A callback's error during m:raise is raised by m:raise
local h = m:on("exception", function() error("from the callback") end)
assert_error(function() m:raise("Bp") end, "from the callback")
h:remove()

-- Interrupt lines: Cause.IP2..IP7 follow the lines; taken only when enabled
local os_ = magritte.machine{image = TEACHOS}
local bp = os_:break_on_mode("kernel", "user")
assert(os_:run() == "mode_change")       -- the first process starts: IE = 1, IM7 only
bp:remove()
os_:interrupt(0)                          -- IP2: masked by teachos
assert(os_.cpu.cp0.cause & 0xff00 == 0x0400)
local ints = os_.exceptions.Int or 0
assert(os_:run(10000) == "steps" and (os_.exceptions.Int or 0) == ints)
os_:interrupt(0, false)
assert(os_.cpu.cp0.cause & 0x0400 == 0)
local irq = os_:break_on_exception("Int")
os_:interrupt(5)                          -- IP7: enabled
local before = os_.instructions
local reason, e = os_:run()
assert(reason == "exception" and e.cause == "Int" and os_.cpu.cp0.cause & 0x8000 ~= 0)
assert(os_.instructions - before <= 1, "taken at the next instruction boundary")
assert(os_.cpu.cp0.cause & (1 << 30) == 0, "not the timer (TI clear)")
os_:interrupt(5, false)
irq:remove()
assert_error(function() os_:interrupt(6) end, "hardware line must be 0..5")

-- The timer interrupt: Count reached Compare, TI and IP7 are set when the break stops (the
-- handler has not run yet). Count may be past Compare: the kernel had interrupts masked then.
local t = os_:break_on_exception("Int")
reason = os_:run()
assert(reason == "exception" and os_.cpu.pc == 0x80000180)
assert(os_.cpu.cp0.cause & 0x40008000 == 0x40008000)
assert((os_.cpu.cp0.count - os_.cpu.cp0.compare) & 0xffffffff < 100000)
t:remove()

-- m:type puts bytes in the UART's receive FIFO (LSR.DR, then RBR)
local u = magritte.machine{ram = "1M"}
local LSR, RBR = 0x180003f8 + 5, 0x180003f8
assert(u.phys:read8(LSR) & 1 == 0)
u:type("hi")
assert(u.phys:read8(LSR) & 1 == 1)
assert(u.phys:read8(RBR) == string.byte("h") and u.phys:read8(RBR) == string.byte("i"))
assert(u.phys:read8(LSR) & 1 == 0)
