-- The VMM through the Lua API (Docs/lua-api.md, "Virtual machines"): guests side by side print
-- what they print on bare Malta; pause, step, injection, events, breakpoints, the policy, errors.
-- Run by `magritte test Tests/lua` and by `swift test` (LuaScriptTests), with the runner's assertions.

local TEACHOS = ".build/guests/os/teachos.elf"
local HELLO = ".build/guests/tests/hello.elf"

-- The deterministic lines of a console (Docs/guest-os.md: `timing:` lines vary).
local function stable(text)
  local out = {}
  for line in text:gmatch("[^\n]*") do
    if line ~= "" and not line:find("^timing:") then out[#out + 1] = line end
  end
  return out
end

local function same(a, b, what)
  assert(#a == #b, what .. ": " .. #a .. " lines vs " .. #b)
  for i = 1, #a do assert(a[i] == b[i], what .. ", line " .. i .. ": " .. a[i] .. " vs " .. b[i]) end
end

-- 1. Two teachos guests side by side print what bare teachos prints.
do
  local bare = magritte.machine{image = TEACHOS, append = "idle=wait", ram = "32M"}
  assert(bare:run() == "poweroff")
  local vmm = magritte.vmm()
  local a = vmm:add{image = TEACHOS, name = "a", idle = "wait"}
  local b = vmm:add{image = TEACHOS, name = "b", append = "idle=wait"}
  assert(a.append == "idle=wait" and b.append == "idle=wait")
  local lines = {a = 0, b = 0}
  vmm:on("output", function(e) lines[e.guest] = lines[e.guest] + 1 end)
  local reason = vmm:run()
  assert(reason == "poweroff", reason)
  assert(a.powered_off and b.powered_off and a.state == "powered_off")
  same(stable(a.console), stable(bare.console), "guest a")
  same(stable(b.console), stable(bare.console), "guest b")
  assert(lines.a == #a:lines() and lines.b == #b:lines(), "every line reached the output callback")
  local s = a.stats
  assert(s.instructions == s.kernel_instructions + s.user_instructions and s.instructions == a.instructions)
  assert(s.hidden_fills > 0 and s.reflected_tlb_misses > 0 and s.wait_cycles > 0)
  assert(s.traps.CpU > 0 and s.reflected.Sys > 0 and s.emulated.eret > 0 and s.emulated.tlbwr > 0)
  assert(s.exits == s.traps.CpU + (s.traps.TLBL or 0) + (s.traps.TLBS or 0) + (s.traps.Mod or 0) + (s.traps.Sys or 0)
         + (s.traps.Bp or 0) + (s.traps.RI or 0) + (s.traps.AdEL or 0) + (s.traps.AdES or 0) + (s.traps.Tr or 0)
         + (s.traps.Ov or 0) + (s.traps.Int or 0) + (s.traps.DBE or 0) + (s.traps.IBE or 0), "exits add up")
  assert(math.abs(s.exits_per_thousand - s.exits * 1000 / s.instructions) < 1e-9)
  assert(vmm.instructions >= a.instructions + b.instructions)
end

-- 2. A paused guest does not advance; step(n) advances exactly n.
do
  local vmm = magritte.vmm{ram = "64M"}
  local a = vmm:add{image = TEACHOS, name = "a", ram = "16M"}
  local b = vmm:add{image = TEACHOS, name = "b", ram = "16M"}
  a:pause()
  assert(a.paused)
  local pc = a.pc
  assert(vmm:run(2000000) == "steps")
  assert(a.instructions == 0 and a.pc == pc and a.stats.switches == 0)
  assert(b.instructions > 1000000)
  b.paused = true
  assert(vmm:run(1000) == "paused")
  local reason = a:step(1000)
  assert(reason == "steps", reason)
  assert(a.instructions == 1000 and a.paused, "a paused guest can be stepped")
  local before = b.instructions
  assert(a:step(54321) == "steps")
  assert(a.instructions == 55321 and b.instructions == before, "the other guest stays put")
  assert(a:step() == "steps" and a.instructions == 55322)
  a:resume()
  b:resume()
  assert(vmm:run(100000) == "steps")
end

-- 3. An injected syscall reaches the guest's own handler: a reflect event with cause Sys.
do
  local vmm = magritte.vmm()
  local a = vmm:add{image = TEACHOS, name = "a"}
  -- Run to the first real return into user mode (a breakpoint with a condition).
  local bp = vmm:break_on("return", a, function(e) return e.mode_after == "user" end)
  local reason, e = vmm:run()
  assert(reason == "return" and e.hook == bp.id and e.mode_before == "kernel" and e.mode_after == "user", reason)
  assert(a.mode == "user" and a.pc == e.target)
  bp:remove()
  local pc = a.pc
  local seen = {}
  vmm:on("reflect", function(ev) seen[#seen + 1] = ev end)
  a:inject("syscall")
  assert(#seen == 1, "the reflect callback ran at once")
  local r = seen[1]
  assert(r.cause == "Sys" and r.code == 8 and r.guest == "a" and r.mode_before == "user" and r.mode_after == "kernel")
  assert(r.vector == (a.cp0.ebase & 0xfffff000) + 0x180 and a.pc == r.vector and r.pc == pc)
  assert(a.cp0.epc == pc and (a.cp0.cause >> 2) & 31 == 8 and a.mode == "kernel")
  assert(a.stats.reflected.Sys == 1 and a.stats.traps.Sys == nil)
  local last = vmm:events{last = 1, kind = "reflect"}[1]
  assert(last.cause == "Sys" and last.text:find("reflect Sys"))
  -- Back in user mode (EXL clear), a TLB miss at an address the guest has not mapped goes to its
  -- refill vector.
  bp = vmm:break_on("return", a, function(e) return e.mode_after == "user" end)
  assert(vmm:run() == "return")
  bp:remove()
  a:inject("TLBL", 0x00701234)
  assert(seen[#seen].cause == "TLBL" and seen[#seen].vector == a.cp0.ebase & 0xfffff000 and a.cp0.badvaddr == 0x00701234)
  -- An interrupt line: taken when the guest runs with it enabled.
  vmm:break_on("reflect", "a", function(ev) return ev.cause == "Int" end)
  a:timer()
  assert(a.cp0.cause & 0x40008000 == 0x40008000, "Cause.TI and IP7")
  local why, ev = vmm:run()
  assert(why == "reflect" and ev.cause == "Int" and a.mode == "kernel", why)
  a:interrupt(0)
  assert(a.cp0.cause & 0x400 ~= 0, "Cause.IP2")
  a:interrupt(0, false)
  assert(a.cp0.cause & 0x400 == 0)
end

-- 4. A stop from an event returns at that event; an error in a callback is raised by run.
do
  local vmm = magritte.vmm()
  local a = vmm:add{image = HELLO, name = "h"}
  local count = 0
  local h = vmm:on("emulate", function(e)
    count = count + 1
    if count == 3 then return "stop" end
  end)
  local reason, info = vmm:run()
  assert(reason == "callback" and info.hook == h.id and info.kind == "emulate" and count == 3, reason)
  assert(vmm.instructions == info.instructions, "not one instruction after the event")
  assert(vmm.stop_reason == "callback")
  h:remove()
  vmm:on("trap", function() vmm:stop() end)
  reason, info = vmm:run()
  assert(reason == "stopped" and info.guest == "h", reason)
  for _, x in ipairs(vmm:hooks()) do x:remove() end
  vmm:on("wake", function() end)  -- a hook on an event that never comes
  local e = assert_error(function()
    vmm:on("trap", function() error("boom in a VMM callback") end)
    vmm:run()
  end)
  assert(e:find("boom in a VMM callback", 1, true) and e:find("stack traceback", 1, true), e)
  for _, x in ipairs(vmm:hooks()) do x:remove() end
  assert(#vmm:hooks() == 0)
  assert(vmm:run() == "poweroff" and a.console:find("hello from the guest", 1, true))
  assert(vmm:run() == "poweroff")
end

-- 5. The policy: called with the runnable guests and the last one; its choice is respected.
do
  local vmm = magritte.vmm()
  local a = vmm:add{image = HELLO, name = "a"}
  local b = vmm:add{image = HELLO, name = "b"}
  vmm.slice = 20000
  local calls, order = 0, {}
  vmm.policy = function(runnable, last)
    calls = calls + 1
    assert(type(runnable) == "table" and #runnable >= 1)
    for _, g in ipairs(runnable) do if g == b then return b end end
    return runnable[1]
  end
  vmm:on("switch", function(e) order[#order + 1] = e.guest end)
  assert(vmm:run() == "poweroff")
  assert(calls > 2 and order[1] == "b")
  local firstA
  for i, name in ipairs(order) do if name == "a" then firstA = firstA or i end end
  for i = firstA, #order do assert(order[i] == "a", "b ran to its end before a ran") end
  assert(b.console == a.console)
  assert(type(vmm.policy) == "function")
  vmm.policy = nil
  assert(vmm.policy == nil)
end

-- 6. Errors in the policy, and choices it may not make, end the run with a clear error.
do
  local vmm = magritte.vmm()
  local a = vmm:add{image = HELLO, name = "a"}
  vmm.policy = function() error("no idea", 0) end
  local e = assert_error(function() return vmm.run(vmm) end)
  assert(e:find("^policy: no idea"), e)
  vmm.policy = function() return 42 end
  e = assert_error(function() return vmm.run(vmm) end)
  assert(e:find("policy: must return one of the runnable guests it was given, or nil (got 42)", 1, true), e)
  assert(a.instructions == 0, "nothing ran")
  vmm.policy = function() return nil end   -- nil: round robin
  assert(vmm:run() == "poweroff")
end

-- 7. Bad arguments raise errors that name the argument.
do
  local vmm = magritte.vmm()
  local g = vmm:add{image = HELLO}
  assert(g.name == "hello" and vmm:add{image = HELLO}.name == "hello-2")
  local function err(f, ...)
    local args = table.pack(...)
    return (assert_error(function() return f(table.unpack(args, 1, args.n)) end)):match("^[^\n]*")
  end
  assert(err(vmm.run, vmm, "x") == "bad argument #1 to 'run' (table expected, got string)")
  assert(err(vmm.run, 5) == "calling 'run' on bad self (magritte.vmm expected, got number; call it as obj:run(...))")
  assert(err(g.step, g, "x") == "bad argument #1 to 'step' (integer expected, got string)")
  assert(err(g.step, g, -1) == "the number of steps must not be negative")
  assert(err(vmm.on, vmm, "nope", print) == "unknown VMM event 'nope' (trap, reflect, emulate, tlb_write, hidden_fill, return, switch, hypercall, device, idle, wake, poweroff, asid_rollover, output, exit or any)")
  assert(err(vmm.on, vmm, "trap", 5) == "bad argument #2 to 'on' (function expected, got number)")
  assert(err(vmm.on, vmm, "trap", print, "nobody") == "no guest named 'nobody' (guests: hello, hello-2)")
  assert(err(vmm.on, vmm, "trap", print, true) == "bad argument #3 to 'on' (guest or guest name expected, got boolean)")
  assert(err(vmm.add, vmm) == "bad argument #1 to 'add' (table expected, got no value)")
  assert(err(vmm.add, vmm, {image = ".build/guests/tests/nope.elf"}):find("build the guest programs with Scripts/build-guests", 1, true))
  assert(err(vmm.add, vmm, {image = "/nonexistent.elf"}) == "add: /nonexistent.elf: cannot read /nonexistent.elf: No such file or directory")
  assert(err(vmm.add, vmm, {}) == "add: image must be the path of an ELF file")
  assert(err(vmm.add, vmm, {image = "/nonexistent.elf"}):find("^add: /nonexistent.elf"))
  assert(err(vmm.add, vmm, {image = HELLO, name = "hello"}) == "add: a guest named hello already exists")
  assert(err(vmm.add, vmm, {image = HELLO, ram = "1G"}):find("^add: ram"))
  assert(err(vmm.add, vmm, {image = HELLO, ram = "200M"}):find("only %d+ MiB"))
  assert(err(vmm.add, vmm, {image = HELLO, idle = "nap"}) == "add: idle must be \"spin\", \"wait\" or \"hypercall\" (teachos' idle= boot argument)")
  assert(err(g.inject, g, "TLBS") == "inject: TLBS needs the faulting address as the second argument")
  assert(err(g.inject, g, "nope"):find("^unknown exception 'nope'"))
  assert(err(g.interrupt, g, 6) == "interrupt: hardware line must be 0..5 (Cause.IP2..IP7)")
  assert(err(function() g.cp0.status = 0 end):find("^a guest's CP0 is read%-only"))
  assert(err(function() return g.cp0.nosuch end):find("^unknown CP0 register 'nosuch'"))
  assert(err(function() return g.nosuch end) == "magritte.guest has no field or method 'nosuch'")
  assert(err(function() g.name = "x" end) == "magritte.guest.name is read-only")
  assert(err(function() vmm.slice = 0 end) == "slice must be at least 1 instruction (got 0)")
  assert(err(function() vmm.spin_policy = "ignore" end) == "unknown spin policy 'ignore' (account or deschedule)")
  assert(err(function() vmm.policy = 5 end) == "bad value for magritte.vmm.policy (function expected, got number)")
  assert(err(magritte.vmm, {ram = "1M"}):find("^ram: machine RAM must be"))
  assert(err(magritte.vmm, {tlb = 65}) == "tlb must be a number of physical TLB entries from 3 to 64")
  assert(err(magritte.vmm, {tlb = 2}) == "tlb must be a number of physical TLB entries from 3 to 64")
  assert(err(g.tlb, g, 16) == "tlb: index must be 0..15")
  assert(err(g.read32, g, 0x1000) == "guest virtual address 0x00001000 cannot be read (not mapped by the guest, or not its RAM)")
  assert(err(vmm.run, magritte.vmm()) == "run: the VMM has no guests (add one with vmm:add{image = path})")
  -- Callbacks cannot re-enter the VMM that runs them.
  local r = {}
  for _, f in ipairs{
    function() vmm:run(10) end, function() g:step() end, function() g:inject("Sys") end,
    function() vmm:add{image = HELLO} end,
  } do
    local h = vmm:on("trap", f)
    r[#r + 1] = err(vmm.run, vmm, 100000)
    h:remove()
  end
  assert(r[1]:find("already running") and r[2]:find("already running"), r[1])
  assert(r[3]:find("^inject: not while the VMM runs") and r[4]:find("^add: not while the VMM runs"), r[3])
end
