-- vmm-tlb-miss.lua: the lecture's "TLB Miss with VMM" table, from a real run of teachos under
-- Magritte's VMM; and a TLB miss the guest never sees.
--
--   Scripts/build-guests                          (once: builds .build/guests/...)
--   magritte run Scripts/vmm-tlb-miss.lua
--
-- teachos manages its TLB in software (Docs/guest-os.md): on a miss its refill handler reads
-- the page table and writes the entry with `tlbwr`. Under the VMM:
--   1. a process's load misses in the (physical) TLB: the CPU traps into the VMM;
--   2. the VMM finds no entry in the guest's virtual TLB either: it calls the guest's refill
--      handler (reducing privilege);
--   3. the handler walks its page table and executes `tlbwr`, which traps: the VMM writes the
--      guest's VPN -> PFN into the virtual TLB and VPN -> MFN (machine frame) into the physical
--      TLB;
--   4. the handler's `eret` traps; the VMM does the real return;
--   5. the process retries the load, which now hits.
-- Later the physical TLB (shared by every guest) may lose that entry while the guest's virtual
-- TLB still has it: the VMM then refills it itself, a "hidden fill" the guest never sees.

local image = ".build/guests/os/teachos.elf"

local hex = magritte.hex

local vmm = magritte.vmm{ram = "64M"}
local g = vmm:add{image = image, name = "teachos"}

-- Keep the guest's events from a user-mode TLB refill (reflected) to the real return.
local events = {}
vmm:on("any", function(e)
  if e.kind == "trap" and e.mode_before == "user" and (e.cause == "TLBL" or e.cause == "TLBS") then events = {} end
  events[#events + 1] = e
end, g)
local bp = vmm:break_on("return", g, function(e)
  local first, second = events[1], events[2]
  return e.mode_after == "user" and first and first.kind == "trap" and second and second.kind == "reflect"
     and second.vector == (g.cp0.ebase & 0xfffff000)   -- the refill vector
end)
assert(vmm:run() == "return")
bp:remove()

print(("%-4s %-12s %-22s %-10s %s"):format("#", "event", "mode before -> after", "pc", "what"))
local tlbwr, written
for i, e in ipairs(events) do
  if e.kind == "emulate" and e.mnemonic == "tlbwr" then tlbwr = e end
  if e.kind == "tlb_write" then written = e end
  print(("%-4d %-12s %-22s %-10s %s"):format(i, e.kind, e.mode_before .. " -> " .. e.mode_after, hex(e.pc), e.text))
end
local trap, reflect, ret = events[1], events[2], events[#events]
assert(reflect.cause == trap.cause and reflect.mode_after == "kernel")
assert(tlbwr, "the guest's refill handler wrote the TLB, and the VMM emulated it")
assert(written and written.text:find("physical TLB") and written.machine0,
       "the VMM installed VPN -> MFN in the physical TLB")
assert(ret.target == trap.pc, "the process retries the instruction that missed")
local va = g.cp0.badvaddr
print()
print(("The process's access to %s missed; the guest's refill handler ran at reduced privilege,"):format(hex(va)))
print("its tlbwr trapped and the VMM put the guest's mapping in the virtual TLB and the machine")
print("frame in the physical TLB:")
local vpn2 = va & 0xffffe000
for _, e in ipairs(g:tlb()) do
  if e.vpn2 == vpn2 and e.asid == g.cp0.entryhi & 0xff then
    print(("  virtual TLB[%d]:  VPN2 %s ASID %d -> guest-physical %s / %s"):format(e.index, hex(e.vpn2), e.asid, hex(e.pfn0), hex(e.pfn1)))
  end
end
for _, e in ipairs(vmm:tlb()) do
  if e.vpn2 == vpn2 and (e.valid0 or e.valid1) then
    print(("  physical TLB[%d]: VPN2 %s ASID %d -> machine %s / %s (guest RAM starts at %s)"):format(
          e.index, hex(e.vpn2), e.asid, hex(e.pfn0), hex(e.pfn1), hex(g.memory_base)))
  end
end

-- The retry hits: the next events of this guest are not a miss at that address.
local retried = true
local h = vmm:on("trap", function(e)
  if (e.cause == "TLBL" or e.cause == "TLBS") and e.pc == trap.pc then retried = false end
  return "stop"
end, g)
vmm:run()
h:remove()
assert(retried, "the retried access hit in the TLB")
print("The process retried the access and it hit.")

-- A hidden fill: a miss the VMM answers from the guest's virtual TLB.
print()
local hidden = vmm:break_on("hidden_fill", g, function(e) return not e.kseg end)
local reason, fill = vmm:run()
hidden:remove()
assert(reason == "hidden_fill", reason)
print(("Hidden fill: %s"):format(fill.text))
print(("The guest's virtual TLB still mapped %s, but the physical TLB (shared by all guests and"):format(hex(fill.address)))
print("the VMM's own kseg0 mappings) had lost it: the VMM refilled it without the guest knowing.")
local s = g.stats
print(("So far: %d misses reflected to the guest, %d hidden fills, %d kseg0/kseg1 fills."):format(
      s.reflected_tlb_misses, s.hidden_fills, s.kseg_fills))
