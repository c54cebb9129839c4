-- The CPU: registers by name and number, HI/LO, pc, mode bits, CP0 and the TLB.
-- Run by `magritte test Tests/lua` and by `swift test` (LuaScriptTests), with the runner's assertions.

local HELLO = ".build/guests/tests/hello.elf"
local TEACHOS = ".build/guests/os/teachos.elf"

local m = magritte.machine{image = HELLO}
local cpu = m.cpu
assert(tostring(cpu):find("magritte.cpu(pc 0x", 1, true))

-- General-purpose registers: ABI names, r0..r31, s8 = fp, and gpr[n]
assert(cpu.a0 == 2 and cpu.gpr[4] == 2 and cpu.r4 == 2, "argc")
cpu.t0 = 0xdeadbeef
assert(cpu.gpr[8] == 0xdeadbeef and cpu.r8 == 0xdeadbeef)
cpu.gpr[9] = -1                       -- negative numbers wrap to 32 bits
assert(cpu.t1 == 0xffffffff)
cpu.s8 = 7
assert(cpu.fp == 7 and cpu.gpr[30] == 7)
cpu.zero = 5                          -- $zero stays 0
assert(cpu.zero == 0 and cpu.gpr[0] == 0)
assert_error(function() cpu.t0 = 2^32 end, "does not fit in 32 bits")
assert_error(function() cpu.t0 = "x" end, "bad value for magritte.cpu.t0")
assert_error(function() return cpu.gpr[32] end, "register number must be 0..31")
assert_error(function() return cpu.gpr.nosuch end, "unknown register 'nosuch'")
assert_error(function() return cpu.nosuch end, "no field or method 'nosuch'")

-- regs() is a table of everything; dump() a printable block
local r = cpu:regs()
assert(r.t0 == 0xdeadbeef and r.pc == cpu.pc and r.hi == cpu.hi and r.lo == cpu.lo and r.sp == cpu.sp)
assert(cpu:dump():find("t0   deadbeef", 1, true))

-- HI/LO and pc
cpu.hi, cpu.lo = 1, 2
assert(cpu.hi == 1 and cpu.lo == 2)
local entry = cpu.pc
cpu.pc = entry + 8
assert(cpu.pc == entry + 8 and cpu.npc == entry + 12 and not cpu.delay_slot)
cpu.pc = entry

-- Mode and Status bits
assert(cpu.mode == "kernel" and not cpu.exl and not cpu.erl and not cpu.ie)
assert_error(function() cpu.mode = "user" end, "read-only")

-- CP0 by name, by number, with a select
local cp0 = cpu.cp0
assert(cp0.prid == 0x00019300 and cp0[15] == 0x00019300 and cp0:read(15, 0) == 0x00019300)
assert(cp0.status == cp0[12] and cp0.status & (1 << 22) ~= 0, "BEV set at the entry")
assert(cp0.config1 == cp0:read(16, 1))
assert(((cp0.config1 >> 25) & 63) + 1 == cpu.tlb_entries, "Config1.MMUSize")
cp0.entryhi = 0x12345
assert(cp0.entryhi == 0x12345 & 0xffffe0ff, string.format("%x", cp0.entryhi))
cp0:write(14, 0, 0x80001234)          -- EPC
assert(cp0.epc == 0x80001234)
cp0.status = cp0.status | 1           -- IE
assert(cpu.ie)
assert_error(function() return cp0.nosuch end, "unknown CP0 register 'nosuch'")
assert_error(function() return cp0[32] end, "0..31")
assert_error(function() cp0:read(12, 8) end, "select 0..7")

-- Mode changes through CP0 writes (outside a run, callbacks still see them)
local changes = {}
local h = m:on("mode_change", function(e) changes[#changes + 1] = e.from .. ">" .. e.to .. ":" .. e.cause end)
cp0.status = (cp0.status & ~0x1f) | 0x10  -- KSU = user, EXL = ERL = 0
assert(cpu.mode == "user")
cp0.status = cp0.status & ~0x18
assert(cpu.mode == "kernel")
h:remove()
assert(changes[1] == "kernel>user:mtc0" and changes[2] == "user>kernel:mtc0", table.concat(changes, " "))

-- The TLB: entries as tables, after teachos filled some
local os_ = magritte.machine{image = TEACHOS}
assert(os_:run(3000000) == "steps")
local valid = 0
for i, e in ipairs(os_.cpu:tlb()) do
  assert(e.index == i - 1)
  assert(e.entryhi == e.vpn2 | e.asid)
  if e.valid0 or e.valid1 then
    valid = valid + 1
    assert(not e.global and e.asid >= 1 and e.vpn2 < 0x80000000, "teachos maps user pages per process")
    assert(e.pfn0 == (e.entrylo0 >> 6) << 12 and e.dirty0 == (e.entrylo0 & 4 ~= 0))
  end
end
assert(valid > 0 and #os_.cpu:tlb() == 16)
assert(os_.cpu:tlb(0).index == 0)
assert_error(function() os_.cpu:tlb(16) end, "index must be 0..15")
