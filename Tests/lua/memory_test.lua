-- Memory by virtual address (m.mem, through the current translation) and by physical address
-- (m.phys): 8/16/32-bit reads and writes, strings and bytes, and what cannot be reached.
-- Run by `magritte test Tests/lua` and by `swift test` (LuaScriptTests), with the runner's assertions.

local HELLO = ".build/guests/tests/hello.elf"
local TEACHOS = ".build/guests/os/teachos.elf"

local m = magritte.machine{image = HELLO}
local mem, phys = m.mem, m.phys
assert(tostring(mem) == "magritte.memory(virtual)" and tostring(phys) == "magritte.memory(physical)")

-- kseg0 (0x80000000) and kseg1 (0xA0000000) are RAM from physical 0, little-endian
mem:write32(0x80400000, 0x11223344)
assert(phys:read32(0x00400000) == 0x11223344)
assert(mem:read32(0xA0400000) == 0x11223344)
assert(mem:read8(0x80400000) == 0x44 and mem:read16(0x80400002) == 0x1122)
mem:write8(0x80400001, 0xff)
mem:write16(0x80400002, 0xabcd)
assert(mem:read32(0x80400000) == 0xabcdff44)
phys:write32(0x00400004, -1)          -- negative values wrap to 32 bits
assert(phys:read32(0x00400004) == 0xffffffff)
mem:write8(0x80400008, 0x1ff & 0xff)
assert(mem:read8(0x80400008) == 0xff)

-- The program's own data: its code starts at the entry point
assert(mem:read32(m.entry) == phys:read32(m.entry & 0x1fffffff))
assert(magritte.disasm_word(mem:read32(m.entry), m.entry):find("lui", 1, true))

-- Strings and bytes
mem:write_string(0x80400100, "Ceci n'est pas une pipe\0rest")
assert(mem:read_string(0x80400100) == "Ceci n'est pas une pipe", "stops at the NUL")
assert(mem:read_string(0x80400100, 4) == "Ceci", "or at the limit")
assert(mem:read_bytes(0x80400100, 28) == "Ceci n'est pas une pipe\0rest", "bytes include NULs")
assert(#phys:read_bytes(0x00400100, 0) == 0)

-- Writes that hit code are seen by the CPU (the decoded page is dropped)
local main = m:symbol("main")
local bp = m:break_at(main)
assert(m:run() == "breakpoint")
bp:remove()
mem:write32(main, 0x0000000d)         -- break
local seen
local h = m:on("exception", function(e) seen = e end)
m:step()
h:remove()
assert(seen and seen.cause == "Bp" and seen.pc == main, "the new instruction ran")

-- What cannot be reached
assert_error(function() mem:read32(0x00001000) end, "virtual address 0x00001000 cannot be read")
assert_error(function() mem:write32(0x00001000, 1) end, "cannot be written")
assert_error(function() mem:read32(2^32) end, "does not fit in 32 bits")
assert_error(function() phys:read32(0x20000000) end, "physical address 0x20000000 cannot be read (nothing answers there)")
assert(phys:read32(0x10000000) == 0, "unassigned addresses below 512 MiB read 0, as on QEMU's Malta")
assert_error(function() mem:read_bytes(0x80400000, -1) end, "count must be 0..16M")
assert_error(function() mem:write_string(0x80400000, 42) end, "string expected, got number")
assert_error(function() mem:read32() end, "bad argument #1 to 'read32'")

-- User addresses go through the TLB with the current ASID: readable while teachos' process
-- has them mapped, unreadable when no entry matches.
local os_ = magritte.machine{image = TEACHOS}
local bp2 = os_:break_on_mode("kernel", "user")
assert(os_:run() == "mode_change")
bp2:remove()
assert(os_.cpu.mode == "user")
os_:step()                            -- the refill: the first user instruction misses
assert(os_.cpu.pc == 0x80000000 and os_.cpu.cp0.badvaddr == 0x00400000)
assert_error(function() os_.mem:read32(0x00400000) end, "not mapped")
assert(os_.phys:read32(0x00400000) ~= 0, "the user image at physical 0x00400000")
os_:break_on_mode("kernel", "user")
assert(os_:run() == "mode_change")
assert(os_.mem:read32(0x00400000) == os_.phys:read32(0x00400000), "mapped 1:1 by the refill")
assert_error(function() os_.mem:read32(0x80000000) end, "not mapped in the current mode")  -- kseg0 from user mode
