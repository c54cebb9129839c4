-- first-steps.lua: boot a test program and look around — the console, the registers, the code.
--
--   Scripts/build-guests                          (once: builds .build/guests/...)
--   magritte run Scripts/first-steps.lua [PROGRAM.elf]
--
-- Run it from the repository root. The program defaults to the "hello" test program, which
-- prints a few lines, takes a trap and a breakpoint exception, and powers the board off.
-- Docs/lua-api.md describes every call used here.

local image = arg and arg[1] or ".build/guests/tests/hello.elf"
local hex = magritte.hex
local function step(n, text) print(("\n== %d. %s"):format(n, text)) end

step(1, "Create a Malta board, load the ELF file and reset the CPU to its entry point")
local m = magritte.machine{image = image}
print(m)
print("entry point:", hex(m.entry), "(" .. (m:where(m.entry) or "?") .. ")")
print("mode:", m.cpu.mode, "  EXL:", m.cpu.exl, "  ERL:", m.cpu.erl)

step(2, "The registers at the entry point (the boot loader's a0..a3 = argc, argv, envp, RAM size)")
print(m.cpu:dump())

step(3, "The first instructions; => marks pc")
print(m:disasm(m.cpu.pc, 6))

step(4, "Run to main() with a breakpoint, then look at the code from pc on")
local main = m:symbol("main")
if main then
  local bp = m:break_at(main)
  local reason, info = m:run()
  print("run stopped:", reason, "at", hex(info.pc), "after", m.instructions, "instructions")
  print(m:disasm(m.cpu.pc, 8))
  print("sp:", hex(m.cpu.sp), " ra:", hex(m.cpu.ra), "(returns to " .. (m:where(m.cpu.ra) or "?") .. ")")
  bp:remove()
else
  print("(no symbol main in " .. image .. ")")
end

step(5, "Let it run to the end and read what it printed on the console")
local reason = m:run()
print("run stopped:", reason, "after", m.instructions, "instructions")
io.write(m.console)

step(6, "What happened on the way: exceptions taken, and the last events of the trace")
local names = {}
for name in pairs(m.exceptions) do names[#names + 1] = name end
table.sort(names)
for _, name in ipairs(names) do print(("  %-5s %d"):format(name, m.exceptions[name])) end
for _, e in ipairs(m:trace(4)) do
  print(("  %-12s at %s  %s"):format(e.kind, hex(e.pc), e.text))
end
