import MagritteCore

/// The guest's virtual CP0 and virtual TLB: a plain 24Kc as the guest sees it (no segmentation
/// control), with the same write masks as the physical core (and QEMU's 24Kc).
extension VMM {
    func readVirtualCP0(_ g: Guest, _ reg: Int, _ sel: Int) -> UInt32 {
        let c = g.cp0
        switch (reg, sel) {
        case (0, 0): return c.index
        case (1, 0): return virtualRandom(g)
        case (2, 0): return c.entryLo0
        case (3, 0): return c.entryLo1
        case (4, 0): return c.context
        case (5, 0): return c.pageMask
        case (6, 0): return c.wired
        case (7, 0): return c.hwrEna
        case (8, 0): return c.badVAddr
        case (9, 0): return virtualCount(g)
        case (10, 0): return c.entryHi
        case (11, 0): return c.compare
        case (12, 0): return c.status
        case (12, 1): return c.intCtl
        case (12, 2): return c.srsCtl
        case (12, 3): return c.srsMap
        case (13, 0):
            updateTimer(g)  // Count may have reached Compare since the quantum began: TI shows it
            return virtualCause(g)
        case (14, 0): return c.epc
        case (15, 0): return 0x0001_9300
        case (15, 1): return c.ebase
        case (16, 0): return c.config0
        case (16, 1): return 0x9E19_0C8A  // 16 TLB entries, no FPU, no MIPS16e
        case (16, 2): return 0x8000_0000
        case (16, 3): return 0  // no segmentation control, no vectored interrupts
        case (17, 0): return guestLLAddr(g)
        case (18, 0): return c.watchLo
        case (19, 0): return c.watchHi
        case (23, 0): return 0x0200_8000
        case (26, 0): return c.errCtl
        case (28, 0): return c.tagLo
        case (28, 1): return c.dataLo
        case (30, 0): return c.errorEPC
        case (31, 0): return c.desave
        case (5, 1), (6, 1...5), (16, 4...7), (18, _), (19, _), (21, _), (22, _), (24, 0), (25, _), (27, _), (28, _), (29, _):
            return 0
        default: return 0xFFFF_FFFF
        }
    }

    func writeVirtualCP0(_ g: Guest, _ reg: Int, _ sel: Int, _ v: UInt32) {
        switch (reg, sel) {
        case (0, 0):
            let i = v & 0x7FFF_FFFF
            if i < UInt32(g.tlb.count) { g.cp0.index = (g.cp0.index & 0x8000_0000) | i }
        case (2, 0): g.cp0.entryLo0 = v & 0x03FF_FFFF
        case (3, 0): g.cp0.entryLo1 = v & 0x03FF_FFFF
        case (4, 0): g.cp0.context = (g.cp0.context & 0x007F_FFFF) | (v & 0xFF80_0000)
        case (5, 0):
            let m = (v & 0x1FFF_E000) >> 13
            g.cp0.pageMask = m & (m &+ 1) == 0 && m.nonzeroBitCount % 2 == 0 ? m << 13 : 0
        case (6, 0): g.cp0.wired = v % UInt32(g.tlb.count)
        case (7, 0): g.cp0.hwrEna = v & 0xF
        case (9, 0):
            g.countBase = v
            g.countEpoch = now
            rearmTimer(g)
        case (10, 0):
            let old = g.cp0.entryHi
            g.cp0.entryHi = v & 0xFFFF_E0FF
            if (old ^ g.cp0.entryHi) & 0xFF != 0 { setPhysicalASID(g) }
        case (11, 0):
            g.cp0.compare = v
            g.timerPending = false
            rearmTimer(g)
        case (12, 0):
            let old = g.cp0.status
            g.cp0.status = (old & ~StatusBits.writable) | (v & StatusBits.writable)
            if (old ^ g.cp0.status) & StatusBits.erl != 0 { flushGuest(g) }
            accountModeChange(g, from: old)
            applyMode(g)
        case (12, 1): g.cp0.intCtl = 0xE000_0000 | (v & 0x3E0)
        case (12, 2): g.cp0.srsCtl = v & 0xF3C0
        case (12, 3): g.cp0.srsMap = v
        case (13, 0):
            let old = g.cp0.cause
            let new = (old & ~CauseBits.writable) | (v & CauseBits.writable)
            if (old ^ new) & CauseBits.dc != 0 {
                if new & CauseBits.dc != 0 { g.countBase = virtualCount(g) } else { g.countEpoch = now }
            }
            g.cp0.cause = new
            rearmTimer(g)
        case (14, 0): g.cp0.epc = v
        case (15, 1): g.cp0.ebase = (g.cp0.ebase & ~0x3FFF_F000) | (v & 0x3FFF_F000)
        case (16, 0): g.cp0.config0 = (g.cp0.config0 & ~7) | (v & 7)
        case (18, 0): g.cp0.watchLo = v & 0xFFFF_FFF8
        case (19, 0): g.cp0.watchHi = 0x8000_0000 | (v & 0x40FF_0FF8)
        case (26, 0): g.cp0.errCtl = v & 0x3000_0000
        case (28, 0): g.cp0.tagLo = v & 0xFFFF_FCF6
        case (28, 1): g.cp0.dataLo = v
        case (30, 0): g.cp0.errorEPC = v
        case (31, 0): g.cp0.desave = v
        default: break
        }
    }

    /// The mode may have changed through a Status write: book the instructions so far.
    func accountModeChange(_ g: Guest, from old: UInt32) {
        let n = cpu.retiredInstructions
        let delta = n &- g.modeMark
        let wasKernel = old & (StatusBits.exl | StatusBits.erl) != 0 || (old >> 3) & 3 == 0
        if wasKernel { g.statistics.kernelInstructions &+= delta } else { g.statistics.userInstructions &+= delta }
        g.modeMark = n
    }

    /// Random for the guest: deterministic, between Wired and the last entry.
    func virtualRandom(_ g: Guest) -> UInt32 {
        let n = UInt64(g.tlb.count), wired = UInt64(g.cp0.wired)
        if wired >= n { return UInt32(n - 1) }
        return UInt32(n - 1 - now % (n - wired))
    }

    func tlbRead(_ g: Guest) {
        let e = g.tlb[Int((g.cp0.index & 0x7FFF_FFFF) % UInt32(g.tlb.count))]
        let oldASID = g.cp0.entryHi & 0xFF
        g.cp0.entryHi = e.entryHi
        g.cp0.pageMask = e.pageMask
        g.cp0.entryLo0 = e.entryLo0
        g.cp0.entryLo1 = e.entryLo1
        if oldASID != e.entryHi & 0xFF { setPhysicalASID(g) }
    }

    /// TLBWI/TLBWR: the guest's VPN → PFN goes into its virtual TLB; the VMM installs VPN → MFN
    /// in the physical TLB at once when the entry is for the running address space (4 KiB pages),
    /// so the retried access hits. Recorded as a `tlbWrite` event after the `emulate` one.
    func tlbWrite(_ g: Guest, _ i: Int, pc: UInt32) -> VMMEvent.Kind {
        let entry = TLBEntry(entryHi: g.cp0.entryHi, pageMask: g.cp0.pageMask, entryLo0: g.cp0.entryLo0, entryLo1: g.cp0.entryLo1)
        replaceVirtualTLB(g, i, entry)
        var even: UInt32?, odd: UInt32?
        let current = UInt8(truncatingIfNeeded: g.cp0.entryHi)
        if entry.pageMask == 0, entry.global || entry.asid == current, entry.vpn2 < 0x8000_0000 || entry.vpn2 >= 0xC000_0000 {
            func machine(_ lo: UInt32) -> (UInt32?, Bool) {
                guard lo & 2 != 0, let m = g.machineAddress((lo >> 6) << 12) else { return (nil, false) }
                return (m, lo & 4 != 0)
            }
            let e = machine(entry.lo0), o = machine(entry.lo1)
            if e.0 != nil || o.0 != nil {
                installPhysical(va: entry.vpn2, even: e.0, odd: o.0, dirtyEven: e.1, dirtyOdd: o.1)
                even = e.0
                odd = o.0
            }
        }
        return .tlbWrite(index: i, entry: entry, evenMachine: even, oddMachine: odd)
    }

    /// Writes the guest's virtual TLB and keeps the physical TLB consistent: translations the
    /// old or new entry cover are dropped (they are refilled, hidden, on the next access).
    func replaceVirtualTLB(_ g: Guest, _ i: Int, _ entry: TLBEntry) {
        invalidatePhysical(g, covering: g.tlb[i])
        invalidatePhysical(g, covering: entry)
        g.tlb[i] = entry
    }

    func tlbProbe(_ g: Guest) {
        let asid = UInt8(truncatingIfNeeded: g.cp0.entryHi)
        for (i, e) in g.tlb.enumerated() where (g.cp0.entryHi ^ e.vpn2) & ~(e.pageMask | 0x1FFF) == 0 && (e.global || e.asid == asid) {
            g.cp0.index = UInt32(i)
            return
        }
        g.cp0.index |= 0x8000_0000
    }

    /// Drops every physical translation of the guest (its ASIDs get fresh physical ones).
    func flushGuest(_ g: Guest) {
        for i in physicalTLB.indices where asidOwner[Int(physicalTLB[i].asid)] == g.index {
            setPhysical(i, TLBEntry())
        }
        if current === g { setPhysicalASID(g) }
    }
}
