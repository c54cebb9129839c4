-- The lecture's tables and sequence diagrams from a real run (Docs/lua-api.md, "The lecture's
-- tables"): vmm:flow, vmm:table, vmm:svg. Plain asserts: run by `magritte test Tests/lua` and by
-- `swift test` (LuaScriptTests).

local TEACHOS = ".build/guests/os/teachos.elf"

local vmm = magritte.vmm{}
local g = vmm:add{image = TEACHOS, name = "os", idle = "wait"}

-- Before anything ran there is no flow to show.
assert(vmm:flow("syscall") == nil)
assert(vmm:table("tlb-miss") == nil)

vmm:run(3000000)

-- The system call of a user process, in the lecture's columns, with the same flow on bare Malta.
local f = vmm:flow("syscall")
assert(f and f.guest == "os", "a system call flow of guest os")
assert(f.pc < 0x80000000, "made by a user process")
local lanes = {}
for i, s in ipairs(f.steps) do lanes[i] = s.lane end
assert(table.concat(lanes, ",") == "Process,VMM,Operating System,VMM,Process", table.concat(lanes, ","))
assert(f.steps[2].text:find("0x80000180", 1, true), f.steps[2].text)
assert(f.bare and f.bare.pc == f.pc, "the bare flow at the same syscall")
assert(#f.bare.steps == 6 and f.bare.lanes[2] == "Hardware")
-- The trace agrees: a trap event from user mode at that pc, then a reflect to the handler.
local seen = false
for _, e in ipairs(vmm:events{kind = "trap", guest = g, last = 100000}) do
  if e.pc == f.pc and e.mode_before == "user" then seen = true end
end
assert(seen, "the syscall's trap is in the trace")

-- Without the bare run; for one guest.
local only = vmm:flow("tlb-miss", {bare = false, guest = g})
assert(only and only.bare == nil and #only.steps == 7)
assert(only.steps[4].text:find("MFN 0x", 1, true), only.steps[4].text)

-- The text table and the SVG.
local text = vmm:table("syscall")
assert(text:find("System call with a VMM", 1, true) and text:find("Standard system call", 1, true))
assert(text:find("| Process", 1, true) and text:find("| VMM", 1, true))
local svg = vmm:svg({"syscall", "tlb-miss"})
assert(svg:sub(1, 4) == "<svg" and svg:find("Operating System", 1, true))
local path = os.tmpname()
assert(vmm:svg("syscall", path) == 1)
local file = io.open(path)
local written = file:read("a")
file:close()
os.remove(path)
assert(written:sub(1, 4) == "<svg")

-- Bad arguments are errors that say what is wrong.
assert(assert_error(function() return vmm.flow(vmm, "pagefault") end):find("unknown flow 'pagefault'", 1, true))
assert(assert_error(function() return vmm.table(vmm, "syscall", {bare = 1}) end):find("bare must be true or false", 1, true))
assert(assert_error(function() return vmm.svg(vmm, {}) end):find("give the flows", 1, true))
assert(assert_error(function() return vmm.svg(vmm, "syscall", "/nonexistent/dir/x.svg") end):find("cannot write", 1, true))
assert(assert_error(function() return vmm.flow(vmm, 42) end):find("unknown flow", 1, true))
print("lecture tables: ok")
