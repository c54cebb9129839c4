-- vmm-paravirt.lua: trap-and-emulate against para-virtualization on the same workloads. teachos
-- runs under the VMM as it is (its exception handlers read and write CP0 with mfc0/mtc0, and
-- each traps) and with `pv=comm` (it asks the VMM for a comm page, Docs/hypercalls.md, and its
-- handlers load and store EPC, Status, Cause, BadVAddr, EntryLo0/1 there: no trap). The same
-- flows as Scripts/vmm-syscall.lua and Scripts/vmm-tlb-miss.lua, then whole runs.
--
--   Scripts/build-guests                          (once: builds .build/guests/...)
--   magritte run Scripts/vmm-paravirt.lua

local image = ".build/guests/os/teachos.elf"
local modes = {
  {name = "trap-and-emulate", append = "idle=wait"},
  {name = "comm page", append = "idle=wait pv=comm"},
}

-- The first flow of a user process whose trap is one of `causes` and goes to the guest's
-- vector at EBase + `offset`, to the VMM's real return to user mode: its exits (VMM entries),
-- those that were only the VMM filling its own TLB (kseg0 pages), and what it emulated.
local function flow(append, causes, offset)
  local vmm = magritte.vmm{ram = "64M"}
  local g = vmm:add{image = image, name = "teachos", append = append}
  local f, reflected
  vmm:on("any", function(e)
    if e.kind == "trap" then
      if e.mode_before == "user" and causes[e.cause] then f, reflected = {exits = 0, fills = 0, emulated = {}}, false end
      if f then f.exits = f.exits + 1 end
    elseif not f then
      return
    elseif e.kind == "hidden_fill" then
      if reflected then f.fills = f.fills + 1 else f = nil end  -- a miss the guest never saw
    elseif e.kind == "reflect" and not reflected then
      reflected = true
      if e.vector & 0xfff ~= offset then f = nil end
    elseif e.kind == "emulate" then
      f.emulated[#f.emulated + 1] = e.mnemonic
    end
  end, g)
  vmm:break_on("return", g, function(e) return f and reflected and e.mode_after == "user" end)
  local reason = vmm:run()
  assert(reason == "return", reason)
  f.vmm_exits = f.exits - f.fills
  return f
end

-- A whole run of teachos alone under the VMM.
local function whole(append)
  local vmm = magritte.vmm{ram = "64M"}
  local g = vmm:add{image = image, name = "teachos", append = append}
  local start = os.clock()
  assert(vmm:run() == "poweroff")
  local seconds = os.clock() - start
  local lines = {}
  for _, l in ipairs(g:lines()) do if not l:find("^timing:") then lines[#lines + 1] = l end end
  return {stats = g.stats, seconds = seconds, console = table.concat(lines, "\n")}
end

local syscall, miss, run = {}, {}, {}
for i, m in ipairs(modes) do
  syscall[i] = flow(m.append, {Sys = true}, 0x180)
  miss[i] = flow(m.append, {TLBL = true, TLBS = true}, 0x000)
  run[i] = whole(m.append)
end

local function row(label, f)
  print(("%-44s %18s %18s"):format(label, f(1), f(2)))
end
row("", function(i) return modes[i].name end)
print("A system call (a process's first)")
row("  exits into the VMM (+ kseg0 fills)", function(i) return ("%d (+%d)"):format(syscall[i].vmm_exits, syscall[i].fills) end)
row("  instructions emulated", function(i) return table.concat(syscall[i].emulated, " ") end)
print("A TLB miss (a process's first refill)")
row("  exits into the VMM (+ kseg0 fills)", function(i) return ("%d (+%d)"):format(miss[i].vmm_exits, miss[i].fills) end)
row("  instructions emulated", function(i) return table.concat(miss[i].emulated, " ") end)
print("The whole run")
row("  system calls, TLB misses reflected", function(i) return ("%d, %d"):format(run[i].stats.reflected.Sys, run[i].stats.reflected_tlb_misses) end)
row("  exits", function(i) return run[i].stats.exits end)
row("  of which privileged instructions (CpU)", function(i) return run[i].stats.traps.CpU end)
row("  exits per 1000 instructions", function(i) return ("%.2f"):format(run[i].stats.exits_per_thousand) end)
row("  guest instructions", function(i) return run[i].stats.instructions end)
row("  host time (s)", function(i) return ("%.2f"):format(run[i].seconds) end)

-- What the table shows, checked (the times are not: they depend on the host).
local function same(a, b) return table.concat(a, " ") == table.concat(b, " ") end
assert(same(syscall[1].emulated, {"mfc0", "mfc0", "mfc0", "mfc0", "mtc0", "mtc0", "eret"}) and syscall[1].vmm_exits == 8)
assert(same(syscall[2].emulated, {"eret"}) and syscall[2].vmm_exits == 2, "with the comm page only syscall and eret trap")
assert(same(miss[1].emulated, {"mfc0", "mfc0", "mtc0", "mtc0", "tlbwr", "eret"}) and miss[1].vmm_exits == 7)
assert(same(miss[2].emulated, {"tlbwr", "eret"}) and miss[2].vmm_exits == 3, "with the comm page only the miss, tlbwr and eret trap")
assert(run[2].console == run[1].console, "the same console either way")
assert(run[2].stats.traps.CpU * 2 < run[1].stats.traps.CpU and run[2].stats.exits < run[1].stats.exits)
print()
print("Both runs printed the same console; the comm page removed the exits of the handlers' mfc0/mtc0.")
