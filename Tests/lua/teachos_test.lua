-- teachos end to end through the Lua API: what the events say agrees with the kernel's own
-- counters (kstats, Docs/guest-os.md), and every process's output arrives.
-- Run by `magritte test Tests/lua` and by `swift test` (LuaScriptTests), with the runner's assertions.

local TEACHOS = ".build/guests/os/teachos.elf"

local m = magritte.machine{image = TEACHOS}
local count = {syscalls = 0, refills = 0, tlbwr = 0, user_to_kernel = 0, to_user = 0, ticks = 0}
local refill_handler = 0x80000000
m:on("exception", function(e)
  if e.cause == "Sys" then count.syscalls = count.syscalls + 1 end
  if e.refill then count.refills = count.refills + 1 end
end)
m:on("tlb_write", function(w)
  if w.pc >= refill_handler and w.pc < refill_handler + 0x80 then count.tlbwr = count.tlbwr + 1 end
end)
m:on("mode_change", function() count.user_to_kernel = count.user_to_kernel + 1 end, "user", "kernel")
m:on("mode_change", function(e)
  assert(e.cause == "eret", "only eret returns to user mode")
  count.to_user = count.to_user + 1
end, "any", "user")
local lines = 0
m:on("output", function(text) for _ in text:gmatch("\n") do lines = lines + 1 end end)

local reason = m:run()
assert(reason == "poweroff", reason)
assert(m.console:find("teachos: all 13 processes have ended", 1, true))
assert(m.console:find("memory: all %d+ frames free again"))
assert(lines == select(2, m.console:gsub("\n", "")), "every line reached the output callback")

local function kstat(offset) return m.mem:read32(m:symbol("kstats") + offset) end
assert(kstat(0) == 0x3154534B, "kstats magic 'KST1'")
-- syscalls counts Sys exceptions from user mode; a syscall in a delay slot is killed, but counted
assert(count.syscalls == kstat(12), count.syscalls .. " vs " .. kstat(12))
assert(count.refills == kstat(16), count.refills .. " vs " .. kstat(16))
assert(count.tlbwr == count.refills, "one tlbwr per refill")
assert(m.exceptions.Sys == count.syscalls)
assert(count.to_user >= count.user_to_kernel - 13, "every entry returns, but for the processes that end")

-- the console line printed by the kernel agrees too
local syscalls = tonumber(m.console:match("kstats: syscalls (%d+)"))
assert(syscalls == count.syscalls)
