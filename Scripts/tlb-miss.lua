-- tlb-miss.lua: a TLB refill in teachos, from the miss to the retried access.
--
--   Scripts/build-guests                          (once: builds .build/guests/...)
--   magritte run Scripts/tlb-miss.lua
--
-- Run it from the repository root. User addresses (below 0x80000000) go through the TLB,
-- which the software fills: when no entry matches, the CPU takes a TLB refill exception
-- (TLBL for a load or a fetch, TLBS for a store) at EBase + 0x000 with BadVAddr = the address,
-- Context and EntryHi already holding its virtual page number, and EPC = the instruction.
-- teachos' refill handler (22 instructions, Docs/guest-os.md) reads the page table entry pair
-- into EntryLo0/EntryLo1, writes a random TLB entry with `tlbwr` and returns with `eret`; the
-- instruction runs again and now hits. Docs/lua-api.md describes every call used here.

local image = ".build/guests/os/teachos.elf"

local hex = magritte.hex
local function step(n, text) print(("\n== %d. %s"):format(n, text)) end
local function entrylo(lo)
  return ("PFN %s  C %d  D %d  V %d  G %d"):format(hex((lo >> 6) << 12), (lo >> 3) & 7, (lo >> 2) & 1,
         (lo >> 1) & 1, lo & 1)
end

step(1, "Boot teachos and break on the first TLB refill")
local m = magritte.machine{image = image}
-- Any exception, on the condition that it is a refill (no TLB entry matched).
local bp = m:break_on_exception(nil, function(e) return e.refill end)
local reason, miss = m:run()
bp:remove()
print("run stopped:", reason, "- exception", miss.cause, "refill", miss.refill, "after", m.instructions, "instructions")
print(("the instruction at %s (%s, in user mode) missed on %s"):format(hex(miss.pc),
      m:where(miss.pc) or "?", hex(miss.badvaddr)))
print(miss.pc == miss.badvaddr and "(an instruction fetch: the process's very first instruction)" or "")

step(2, "What the CPU prepared for the handler (CP0)")
local cp0 = m.cpu.cp0
print(("BadVAddr %s  the address that missed"):format(hex(cp0.badvaddr)))
print(("Context  %s  PTEBase | BadVPN2 << 4: VA[31:13] = %s (teachos does not use it)"):format(
      hex(cp0.context), hex(((cp0.context >> 4) & 0x7ffff) << 13)))
print(("EntryHi  %s  VPN2 %s, ASID %d: ready for tlbwr"):format(hex(cp0.entryhi),
      hex(cp0.entryhi & 0xffffe000), cp0.entryhi & 0xff))
print(("EPC      %s  where to retry; Status %s (EXL %s)"):format(hex(cp0.epc), hex(cp0.status), m.cpu.exl))
print(("pc       %s  = EBase (%s) + 0x000, the refill vector"):format(hex(m.cpu.pc), hex(cp0.ebase & 0xfffff000)))

step(3, "The refill handler (copied to the vector at boot): it uses only k0 and k1")
print(m:disasm(m.cpu.pc, 22))

step(4, "Watch the tlbwr: break on the next TLB write")
local refills = m:symbol("kstats") + 16  -- kstats.tlb_refills (Guests/os/teachos/kernel.h)
local tw = m:break_on_tlb_write()
local write
reason, write = m:run()
tw:remove()
print("run stopped:", reason, "after the instruction at", hex(write.pc), "(" .. m:disasm(write.pc, 1):match("%x+:%s+%x+%s+(.-)\n") .. ")")
print(("TLB[%d] (the Random register chose it)"):format(write.index))
print(("  EntryHi  %s"):format(hex(write.entryhi)))
print(("  EntryLo0 %s  %s  (the even page)"):format(hex(write.entrylo0), entrylo(write.entrylo0)))
print(("  EntryLo1 %s  %s  (the odd page)"):format(hex(write.entrylo1), entrylo(write.entrylo1)))
local e = m.cpu:tlb(write.index)
print(("m.cpu:tlb(%d): vpn2 %s asid %d global %s, even page -> %s valid %s dirty %s, odd page -> %s valid %s dirty %s"):format(
      write.index, hex(e.vpn2), e.asid, e.global, hex(e.pfn0), e.valid0, e.dirty0, hex(e.pfn1), e.valid1, e.dirty1))
print("the handler counted it: kstats.tlb_refills =", m.mem:read32(refills))

step(5, "Step to the eret and back to the instruction that missed")
repeat
  io.write(m:disasm(m.cpu.pc, 1))
  m:step()
until m.cpu.mode == "user"
print("pc =", hex(m.cpu.pc), "mode", m.cpu.mode, "- the same instruction again:")
io.write(m:disasm(m.cpu.pc, 1))
m:step()
print("it ran (pc moved on to " .. hex(m.cpu.pc) .. "); no exception this time:")
local last = m:trace(1)[1]
print("the last event in the trace is still:", last.kind, last.text)
print(("the page is mapped now: m.mem:read32(%s) = %s (read through the TLB, in user mode)"):format(
      hex(miss.badvaddr), hex(m.mem:read32(miss.badvaddr))))
