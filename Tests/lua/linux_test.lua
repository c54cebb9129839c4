-- Debian's Malta Linux under Lua (Docs/linux.md): the events and breakpoints work on a Linux
-- boot. Break at the first user-mode instruction (the start of /init, which is busybox), count
-- the system calls by number until the check report powers the board off.
-- Needs .cache/linux (Scripts/fetch-linux); without it the file says so and passes.
local dir = ".cache/linux"
local probe = io.open(dir .. "/initrd.gz", "rb")
if not probe then
  print("skipped: no " .. dir .. "/initrd.gz (Scripts/fetch-linux gets Debian's kernel and busybox)")
  return
end
probe:close()

-- busybox's entry point: e_entry, at offset 24 of its ELF header
local b = assert(io.open(dir .. "/busybox", "rb"))
local entry = string.unpack("<I4", b:read(28), 25)
b:close()

local m = magritte.machine{image = dir .. "/vmlinuz", initrd = dir .. "/initrd.gz",
                           append = "console=ttyS0 magritte.check"}
local first_user = m:break_on_mode("kernel", "user")
local reason, info = m:run()
assert(reason == "mode_change" and info.to == "user" and info.cause == "eret", reason)
assert(m.cpu.pc == entry, string.format("first user instruction at %08x, busybox starts at %08x", m.cpu.pc, entry))
assert(m.console:find("Run /init as init process", 1, true))
assert(m.console:find("Kernel command line: rd_start=0xffffffff87%x+ rd_size=%d+ console=ttyS0"), "the initrd announced as by QEMU")
first_user:remove()

-- o32 system calls: v0 = 4000 + number at the SYSCALL
local calls, total = {}, 0
m:on("exception", function(e)
  if e.cause == "Sys" then
    local n = m.cpu.v0
    calls[n] = (calls[n] or 0) + 1
    total = total + 1
  end
end)
assert(m:run() == "poweroff")
assert(m.console:find("=== magritte check end", 1, true))
assert(m.console:find("reboot: Power down", 1, true))
assert((calls[4011] or 0) >= 1, "execve")     -- the shell runs applets
assert((calls[4004] or 0) >= 40, "write")     -- the report's lines
assert((calls[4002] or 0) + (calls[4120] or 0) >= 1, "fork or clone")
assert(calls[4088] == 1, "one reboot(POWER_OFF)")
print(string.format("%d system calls, %d different; write %d, execve %d", total,
      (function() local n = 0 for _ in pairs(calls) do n = n + 1 end return n end)(),
      calls[4004], calls[4011]))
