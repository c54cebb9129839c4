import MagritteCore

/// The guest's virtual CP0 and virtual TLB: a plain 24Kc as the guest sees it (no segmentation
/// control), with the same write masks as the physical core (and QEMU's 24Kc).
extension VMM {
    /// The guest's CP0 as its CPU would have it: 16 TLB entries, no segmentation control.
    static let guestShape = CP0Shape(tlbEntries: Guest.tlbEntries)

    func readVirtualCP0(_ g: Guest, _ reg: Int, _ sel: Int) -> UInt32 {
        let id = (reg, sel)
        if id == CP0Register.random.id { return virtualRandom(g) }
        if id == CP0Register.count.id { return virtualCount(g) }
        if id == CP0Register.llAddr.id { return guestLLAddr(g) }
        if id == CP0Register.cause.id {
            updateTimer(g)  // Count may have reached Compare since the quantum began: TI shows it
            return virtualCause(g)
        }
        return g.cp0.read(reg, sel, shape: VMM.guestShape)
    }

    func writeVirtualCP0(_ g: Guest, _ reg: Int, _ sel: Int, _ v: UInt32) {
        switch g.cp0.write(reg, sel, v, shape: VMM.guestShape) {
        case .none, .segmentation:
            break
        case .count(let value):
            g.countBase = value
            g.countEpoch = now
            rearmTimer(g)
        case .compare:
            g.timerPending = false
            rearmTimer(g)
        case .status(let old):
            if (old ^ g.cp0.status) & StatusBits.erl != 0 { flushGuest(g) }
            accountModeChange(g, from: old)
            applyMode(g)
        case .cause(let old):
            if (old ^ g.cp0.cause) & CauseBits.dc != 0 {
                if g.cp0.cause & CauseBits.dc != 0 {
                    g.countBase = CountTimer.count(base: g.countBase, epoch: g.countEpoch, now: now, ratio: VMM.ticksPerCycle, stopped: false)
                } else {
                    g.countEpoch = now
                }
            }
            rearmTimer(g)
        case .entryHi(let old):
            if (old ^ g.cp0.entryHi) & EntryHiBits.asidMask != 0 { setPhysicalASID(g) }
        }
    }

    /// The mode may have changed through a Status write: book the instructions so far.
    func accountModeChange(_ g: Guest, from old: UInt32) {
        let n = cpu.retiredInstructions
        let delta = n &- g.modeMark
        if StatusBits.mode(old) == .kernel { g.statistics.kernelInstructions &+= delta } else { g.statistics.userInstructions &+= delta }
        g.modeMark = n
    }

    /// Random for the guest: deterministic, between Wired and the last entry.
    func virtualRandom(_ g: Guest) -> UInt32 {
        TLBEntry.random(now: now, tlbEntries: g.tlb.count, wired: g.cp0.wired)
    }

    func tlbRead(_ g: Guest) {
        if g.cp0.load(g.tlb[g.cp0.indexedEntry(tlbEntries: g.tlb.count)]) { setPhysicalASID(g) }
    }

    /// TLBWI/TLBWR: the guest's VPN → PFN goes into its virtual TLB; the VMM installs VPN → MFN
    /// in the physical TLB at once when the entry is for the running address space (4 KiB pages),
    /// so the retried access hits. Recorded as a `tlbWrite` event after the `emulate` one.
    func tlbWrite(_ g: Guest, _ i: Int, pc: UInt32) -> VMMEvent.Kind {
        let entry = g.cp0.entryToWrite
        let emptied = replaceVirtualTLB(g, i, entry)
        var even: UInt32?, odd: UInt32?
        if entry.pageMask == 0, entry.global || entry.asid == g.cp0.asid, g.cp0.unmappedPhysical(entry.vpn2) == nil {
            func machine(_ lo: UInt32) -> (UInt32?, Bool) {
                guard lo & EntryLoBits.valid != 0, let m = g.machineAddress(EntryLoBits.address(lo)) else { return (nil, false) }
                return (m, lo & EntryLoBits.dirty != 0)
            }
            let e = machine(entry.lo0), o = machine(entry.lo1)
            if e.0 != nil || o.0 != nil {
                installPhysical(va: entry.vpn2, even: e.0, odd: o.0, dirtyEven: e.1, dirtyOdd: o.1, reusing: emptied)
                even = e.0
                odd = o.0
            }
        }
        return .tlbWrite(index: i, entry: entry, evenMachine: even, oddMachine: odd)
    }

    /// Writes the guest's virtual TLB and keeps the physical TLB consistent: translations the
    /// old or new entry cover are dropped (they are refilled, hidden, on the next access).
    /// Returns the physical slots emptied.
    @discardableResult
    func replaceVirtualTLB(_ g: Guest, _ i: Int, _ entry: TLBEntry) -> UInt64 {
        let emptied = invalidatePhysical(g, covering: g.tlb[i], and: entry)
        g.tlb[i] = entry
        return emptied
    }

    func tlbProbe(_ g: Guest) {
        g.cp0.probe(g.tlb)
    }

    /// Drops every physical translation of the guest (its ASIDs get fresh physical ones).
    func flushGuest(_ g: Guest) {
        for i in physicalTLB.indices where asidOwner[Int(physicalTLB[i].asid)] == g.index {
            setPhysical(i, TLBEntry())
        }
        if current === g { setPhysicalASID(g) }
    }
}
