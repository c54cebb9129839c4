-- linux-and-teachos.lua: Debian's unmodified Linux for Malta and the teaching OS side by side on
-- one MIPS CPU, under Magritte's trap-and-emulate VMM.
--
--   Scripts/build-guests && Scripts/fetch-linux        (once)
--   magritte run Scripts/linux-and-teachos.lua
--
-- Linux believes it owns a Malta board with 128 MiB: its kernel runs in the CPU's supervisor
-- mode, every CP0 access and TLB write it makes traps into the VMM, its TLB misses are
-- reflected to its own refill handler, and its devices (UART, i8259, RTC, PIIX4…) are the
-- VMM's. Its /init prints a deterministic report (Tests/linux/init) and powers off. teachos
-- runs beside it in 32 MiB. Docs/vmm.md explains the machinery.

local kernel, initrd = ".cache/linux/vmlinuz", ".cache/linux/initrd.gz"
local os_image = ".build/guests/os/teachos.elf"
for _, path in ipairs({kernel, initrd, os_image}) do
  local f = io.open(path, "rb")
  if not f then
    print(path .. " not found: run Scripts/build-guests and Scripts/fetch-linux from the repository root first")
    return
  end
  f:close()
end

local vmm = magritte.vmm{ram = "256M"}
local linux = vmm:add{image = kernel, initrd = initrd, name = "linux", ram = "128M", append = "console=ttyS0 magritte.check"}
local os = vmm:add{image = os_image, name = "teachos", idle = "wait"}

-- Console lines as they come, prefixed with the guest's name.
vmm:on("output", function(e) print(("%-7s| %s"):format(e.guest, e.text)) end)
local reason = vmm:run()
assert(reason == "poweroff", "the run ended with " .. reason)
assert(linux.console:find("=== magritte check end", 1, true), "Linux ran its /init report")
assert(os.console:find("all 13 processes have ended", 1, true), "teachos finished")

print()
print(("Both guests powered off after %d machine instructions."):format(vmm.instructions))
local fmt = "%-8s %12s %12s %10s %10s %12s %12s %12s"
print(fmt:format("guest", "kernel ins", "user ins", "exits", "exits/k", "reflected TLB", "hidden TLB", "wait cycles"))
for _, g in ipairs(vmm.guests) do
  local s = g.stats
  print(fmt:format(g.name, s.kernel_instructions, s.user_instructions, s.exits, ("%.1f"):format(s.exits_per_thousand),
                   s.reflected_tlb_misses, s.hidden_fills, s.wait_cycles))
  assert(s.user_instructions > 0 and s.exits > 0)
end
