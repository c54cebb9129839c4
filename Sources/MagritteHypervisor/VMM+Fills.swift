import MagritteCore

/// The VMM filling its own physical TLB (Docs/vmm.md, "Memory"): kseg fills (addresses the
/// guest believes unmapped) and hidden fills (answered from the guest's virtual TLB), with the
/// largest page pair the guest's RAM and the machine frames allow, and without taking the
/// guest's time.
extension VMM {
    /// Fills that make no progress (the same executed position) take the guest's time from the
    /// fill after this many in a row on, so that a thrashing physical TLB still lets time pass.
    /// An instruction needs at most three page pairs at once (`physicalTLBSizes`).
    static let freeFillsInARow = 8

    /// Installs the translation of `va`, which the guest believes unmapped (kseg0/kseg1, or useg
    /// under ERL) at guest-physical `gpa` in its RAM: the largest page pair of
    /// `largePageSizes` whose whole range lies in the guest's RAM with both machine frames
    /// aligned to the page size (Guest.machineAddress: RAM is one run of machine memory), else a
    /// 4 KiB pair (its odd page invalid past RAM's end). kseg0/kseg1 entries are global: they
    /// are the same in every address space of the guest. Returns the page size.
    @discardableResult
    func installUnmapped(_ g: Guest, va: UInt32, gpa: UInt32) -> UInt32 {
        // useg under ERL is not global: it is dropped (`flushGuest`) when ERL changes.
        let global = va >= 0x8000_0000
        if usesLargePages {
            for size in VMM.largePageSizes {
                let span = size &* 2
                let first = gpa & ~(span &- 1)
                guard UInt64(first) + UInt64(span) <= UInt64(g.ramSize), (g.memoryBase &+ first) & (size &- 1) == 0 else { continue }
                let machine = g.memoryBase &+ first
                installPhysical(va: va, even: machine, odd: machine &+ size, dirtyEven: true, dirtyOdd: true, pageSize: size, global: global)
                return size
            }
        }
        let even = gpa & ~0x1FFF
        installPhysical(va: va, even: g.machineAddress(even), odd: g.machineAddress(even | 0x1000), dirtyEven: true, dirtyOdd: true,
                        global: global)
        return 0x1000
    }

    /// Installs the translation of `va` from the guest's virtual TLB, whose entry maps it to RAM
    /// (a hidden fill): with the entry's own page size, or the largest smaller one, when each
    /// page of the pair is invalid in the entry or lies wholly in the guest's RAM at a machine
    /// frame aligned to the size, and no entry before it in the guest's TLB overlaps the pair
    /// (it would decide some of its addresses); else a 4 KiB pair of what the guest's TLB says
    /// for each page. Returns the page size.
    @discardableResult
    func installMapped(_ g: Guest, va: UInt32) -> UInt32 {
        let asid = g.cp0.asid
        if usesLargePages, let i = g.tlb.firstIndex(where: { $0.matches(va, asid: asid) }), g.tlb[i].pageMask != 0 {
            let e = g.tlb[i]
            for size in VMM.largePageSizes where size <= e.pageSize {
                if let pair = largePair(g, e, index: i, va: va, size: size) {
                    installPhysical(va: va, even: pair.even.machine, odd: pair.odd.machine, dirtyEven: pair.even.dirty,
                                    dirtyOdd: pair.odd.dirty, pageSize: size)
                    return size
                }
            }
        }
        func half(_ v: UInt32) -> (UInt32?, Bool) {
            if case .mapped(let p, let d) = TLBEntry.lookup(g.tlb, v, asid: asid), let m = g.machineAddress(p) { return (m & ~0xFFF, d) }
            return (nil, false)
        }
        let pair = va & EntryHiBits.vpn2Mask
        let even = half(pair), odd = half(pair | 0x1000)
        installPhysical(va: pair, even: even.0, odd: odd.0, dirtyEven: even.1, dirtyOdd: odd.1)
        return 0x1000
    }

    /// The machine frames of the pair of `size`-byte pages around `va` through guest entry `e`
    /// (index `index` of its TLB, matching `va`), or nil when that pair cannot be installed.
    func largePair(_ g: Guest, _ e: TLBEntry, index: Int, va: UInt32, size: UInt32)
        -> (even: (machine: UInt32?, dirty: Bool), odd: (machine: UInt32?, dirty: Bool))? {
        let first = va & ~(size &* 2 &- 1)
        let pair = TLBEntry(entryHi: first, pageMask: (size &- 0x1000) << 1, entryLo0: 0, entryLo1: 0)
        let asid = g.cp0.asid
        for j in 0..<index where (g.tlb[j].global || g.tlb[j].asid == asid) && g.tlb[j].overlaps(pair) { return nil }
        func page(_ v: UInt32) -> (machine: UInt32?, dirty: Bool)? {
            switch e.translate(v) {
            case .invalid: return (nil, false)
            case .mapped(let gpa, let dirty):
                guard UInt64(gpa) + UInt64(size) <= UInt64(g.ramSize), (g.memoryBase &+ gpa) & (size &- 1) == 0 else { return nil }
                return (g.memoryBase &+ gpa, dirty)
            case .miss: return nil
            }
        }
        guard let even = page(first), let odd = page(first &+ size) else { return nil }
        return (even, odd)
    }

    /// A fill is the VMM's own work, not the guest's: the guest goes on as if the access had not
    /// faulted. The slot of the instruction that trapped is given back (`CPU.refundFaultedSlot`),
    /// and a fault in a delay slot resumes at the delay slot, with the branch's target (the
    /// CPU would restart at the branch and run it twice), so the guest's time, and with it its
    /// timer interrupts and instruction counts, do not depend on the physical TLB (its size, the
    /// page sizes, what other guests evicted). Only fills in a row at one position beyond
    /// `freeFillsInARow` keep their slot: time passes even if the physical TLB thrashes. The CPU's
    /// run counted the slot: the quantum goes on for it (`runSlice`).
    ///
    /// Not for code whose branch target cannot be found again (`repeatedBranchTarget`: a branch
    /// in a delay slot, one that links into the register it reads, both UNPREDICTABLE; cp0fuzz's
    /// random words): there the CPU restarts at the word before the delay slot, as it always
    /// did, and the fill keeps its slot.
    func resumeAfterFill(_ g: Guest, _ trap: Trap) {
        if trap.inDelaySlot {
            guard let target = repeatedBranchTarget(g, at: trap.pc &- 4) else { return }
            cpu.setPosition(pc: trap.pc, npc: target, inDelaySlot: true)
        }
        let position = cpu.executedInstructions
        if position == fillPosition { fillsInARow += 1 } else { fillPosition = position; fillsInARow = 1 }
        guard fillsInARow <= VMM.freeFillsInARow else { return }
        cpu.refundFaultedSlot()
        clusterEndedRun = true
    }

    /// Where the branch at `bpc`, whose delay slot just faulted, went: evaluated again with the
    /// guest's registers, when that gives what it gave (`DecodedInstruction.repeatedTarget`).
    /// Nil otherwise.
    func repeatedBranchTarget(_ g: Guest, at bpc: UInt32) -> UInt32? {
        guard let w = trappedWord(g, bpc) else { return nil }
        let d = decode(w)
        return d.repeatedTarget(afterBranchAt: bpc, rs: cpu.gpr(Int(d.rs)), rt: d.rt < 32 ? cpu.gpr(Int(d.rt)) : 0)
    }
}
