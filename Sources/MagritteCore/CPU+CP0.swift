/// Exception entry, CP0 reads and writes, and the TLB instructions.
extension CPU {
    // MARK: Exceptions

    /// Takes exception `code` for the instruction at `pc`: the one place where EPC, Cause,
    /// BadVAddr and Status.EXL change on an exception, as the MIPS32 manual's pseudocode says.
    public func enterException(
        _ code: ExceptionCode, pc: UInt32, inDelaySlot: Bool, badVAddr: UInt32? = nil,
        refill: Bool = false, coprocessor: UInt32 = 0, usesSlot: Bool = true
    ) {
        exceptionCounts[Int(code.rawValue)] &+= 1
        if code != .interrupt && usesSlot { faultedInstructions &+= 1 }
        if let trapHandler {
            let trap = Trap(code: code, pc: pc, inDelaySlot: inDelaySlot, badVAddr: badVAddr, isRefill: refill, coprocessor: coprocessor)
            if let observer { notify(observer.cpu(self, didTakeException: trap)) }
            let restart = inDelaySlot ? pc &- 4 : pc
            self.pc = restart
            self.npc = restart &+ 4
            self.inDelaySlot = false
            trapHandler.handleTrap(trap, cpu: self)
            batchBreak = true
            return
        }
        if let badVAddr { cp0.badVAddr = badVAddr }
        let status = cp0.status
        let exl = status & StatusBits.exl != 0
        if !exl {
            cp0.epc = inDelaySlot ? pc &- 4 : pc
            if inDelaySlot { cp0.cause |= CauseBits.bd } else { cp0.cause &= ~CauseBits.bd }
        }
        cp0.cause = (cp0.cause & ~0x7C) | UInt32(code.rawValue) << 2
        // CE is UNPREDICTABLE except for Coprocessor Unusable; like QEMU, leave it alone then.
        if code == .coprocessorUnusable {
            cp0.cause = (cp0.cause & ~(3 << CauseBits.ceShift)) | (coprocessor & 3) << CauseBits.ceShift
        }
        let offset: UInt32
        if refill && !exl {
            offset = 0x000
        } else if code == .interrupt && cp0.cause & CauseBits.iv != 0 {
            offset = 0x200
        } else {
            offset = 0x180
        }
        let base: UInt32 = status & StatusBits.bev != 0 ? 0xBFC0_0200 : cp0.ebase & 0xFFFF_F000
        cp0.status = status | StatusBits.exl
        jump(to: base &+ offset)
        if let observer {
            let trap = Trap(code: code, pc: pc, inDelaySlot: inDelaySlot, badVAddr: badVAddr, isRefill: refill, coprocessor: coprocessor)
            notify(observer.cpu(self, didTakeException: trap))
        }
        statusChanged(pc: pc, cause: .exception(code))
    }

    /// ERET: return from exception (or error) level; clears the LL bit. No delay slot.
    func executeEret(pc eretPC: UInt32) {
        if cp0.status & StatusBits.erl != 0 {
            cp0.status &= ~StatusBits.erl
            jump(to: cp0.errorEPC)
        } else {
            cp0.status &= ~StatusBits.exl
            jump(to: cp0.epc)
        }
        llBit = false
        statusChanged(pc: eretPC, cause: .eret)
    }

    // MARK: CP0 register access

    /// Reads CP0 register (`reg`, `sel`) as MFC0 does at cycle `now`. Unimplemented registers read 0.
    public func readCP0(_ reg: Int, _ sel: Int) -> UInt32 { readCP0(reg, sel, now: cycles) }

    func readCP0(_ reg: Int, _ sel: Int, now: UInt64) -> UInt32 {
        let sc = configuration.segmentationControl
        switch (reg, sel) {
        case (0, 0): return cp0.index
        case (1, 0): return randomAt(now)
        case (2, 0): return cp0.entryLo0
        case (3, 0): return cp0.entryLo1
        case (4, 0): return cp0.context
        case (5, 0): return cp0.pageMask
        case (5, 2) where sc: return cp0.segCtl0
        case (5, 3) where sc: return cp0.segCtl1
        case (5, 4) where sc: return cp0.segCtl2
        case (6, 0): return cp0.wired
        case (7, 0): return cp0.hwrEna
        case (8, 0): return cp0.badVAddr
        case (9, 0): return countAt(now)
        case (10, 0): return cp0.entryHi
        case (11, 0): return cp0.compare
        case (12, 0): return cp0.status
        case (12, 1): return cp0.intCtl
        case (12, 2): return cp0.srsCtl
        case (13, 0): return cause
        case (14, 0): return cp0.epc
        case (15, 0): return configuration.processorID
        case (15, 1): return cp0.ebase
        case (16, 0): return cp0.config0
        case (16, 1): return config1
        case (16, 2): return 0x8000_0000
        case (16, 3): return sc ? 1 << 25 : 0
        case (17, 0): return cp0.llAddr
        case (12, 3): return cp0.srsMap
        case (18, 0): return cp0.watchLo
        case (19, 0): return cp0.watchHi
        case (23, 0): return 0x0200_8000  // Debug, as QEMU's 24Kc reads it
        case (26, 0): return cp0.errCtl
        case (28, 0): return cp0.tagLo
        case (28, 1): return cp0.dataLo
        case (30, 0): return cp0.errorEPC
        case (31, 0): return cp0.desave
        // Registers a 24Kc has (or QEMU models) but Magritte keeps at zero: PageGrain, SRSConf,
        // Config4-7, WatchLo, Framemask, register 22 (also the VMM's hypercall register),
        // performance counters, ErrCtl, CacheErr, TagLo/DataLo, TagHi/DataHi, DESAVE.
        case (5, 1), (6, 1...5), (16, 4...7), (18, _), (19, _), (21, _), (22, _), (24, 0),
            (25, _), (27, _), (28, _), (29, _):
            return 0
        default:
            // Reading a register the CPU does not have is UNDEFINED; QEMU (pre-R6) reads all ones.
            return 0xFFFF_FFFF
        }
    }

    /// Config1 of a 24Kc without FPU: MMU size from the TLB entries, 64 sets × 16 B × 4 ways
    /// of I- and D-cache, watch registers and EJTAG present. QEMU's 24Kc reads 0x9E190C8E, which
    /// also claims MIPS16e (CA, bit 2); Magritte has no MIPS16e, so it reads 0x9E190C8A.
    var config1: UInt32 {
        (1 << 31) | UInt32(configuration.tlbEntries - 1) << 25 | 0x0019_0C8A & 0x01FF_FFFF
    }

    /// Writes CP0 register (`reg`, `sel`) as MTC0 does, with the 24Kc's write masks.
    public func writeCP0(_ reg: Int, _ sel: Int, _ value: UInt32) { writeCP0(reg, sel, value, now: cycles, pc: pc) }

    func writeCP0(_ reg: Int, _ sel: Int, _ v: UInt32, now: UInt64, pc: UInt32) {
        let sc = configuration.segmentationControl
        switch (reg, sel) {
        case (0, 0):
            // As QEMU: an index beyond the TLB leaves Index unchanged; P is read-only.
            let i = v & 0x7FFF_FFFF
            if i < UInt32(configuration.tlbEntries) { cp0.index = (cp0.index & 0x8000_0000) | i }
        case (2, 0): cp0.entryLo0 = v & 0x03FF_FFFF
        case (3, 0): cp0.entryLo1 = v & 0x03FF_FFFF
        case (4, 0): cp0.context = (cp0.context & 0x007F_FFFF) | (v & 0xFF80_0000)
        case (5, 0):
            // Page sizes are 4 KiB × 4^k: the mask must be an even run of ones from bit 13.
            // Anything else selects 4 KiB pages (as QEMU's 24Kc).
            let m = (v & 0x1FFF_E000) >> 13
            cp0.pageMask = m & (m &+ 1) == 0 && m.nonzeroBitCount % 2 == 0 ? m << 13 : 0
        case (5, 2) where sc: cp0.segCtl0 = v & 0xFE7F_FE7F; rebuildSegments(erl: segmentsBuiltWithERL)
        case (5, 3) where sc: cp0.segCtl1 = v & 0xFE7F_FE7F; rebuildSegments(erl: segmentsBuiltWithERL)
        case (5, 4) where sc: cp0.segCtl2 = v & 0xFE7F_FE7F; rebuildSegments(erl: segmentsBuiltWithERL)
        case (6, 0): cp0.wired = v % UInt32(configuration.tlbEntries)
        case (7, 0): cp0.hwrEna = v & 0xF
        case (9, 0):
            countBase = v
            countEpoch = now
            recomputeTimer(now: now)
        case (10, 0):
            let new = v & 0xFFFF_E0FF
            if (new ^ cp0.entryHi) & 0xFF != 0 { flushSoftTLB() }
            cp0.entryHi = new
        case (11, 0):
            cp0.compare = v
            timerPending = false
            recomputeTimer(now: now)
        case (12, 0):
            cp0.status = (cp0.status & ~StatusBits.writable) | (v & StatusBits.writable)
            statusChanged(pc: pc, cause: .statusWrite)
        case (12, 1): cp0.intCtl = 0xE000_0000 | (v & 0x3E0)
        case (12, 2): cp0.srsCtl = v & 0xF3C0
        case (13, 0):
            let old = cp0.cause
            let new = (old & ~CauseBits.writable) | (v & CauseBits.writable)
            if (old ^ new) & CauseBits.dc != 0 {
                if new & CauseBits.dc != 0 {
                    countBase = countAt(now)  // freeze
                } else {
                    countEpoch = now  // resume from the frozen value
                }
            }
            cp0.cause = new
            recomputeTimer(now: now)
            batchBreak = true
        case (14, 0): cp0.epc = v
        case (15, 1): cp0.ebase = (cp0.ebase & ~0x3FFF_F000) | (v & 0x3FFF_F000)
        case (16, 0): cp0.config0 = (cp0.config0 & ~7) | (v & 7)
        case (30, 0): cp0.errorEPC = v
        case (12, 3): cp0.srsMap = v
        case (18, 0): cp0.watchLo = v & 0xFFFF_FFF8
        case (19, 0): cp0.watchHi = 0x8000_0000 | (v & 0x40FF_0FF8)
        case (26, 0): cp0.errCtl = v & 0x3000_0000
        case (28, 0): cp0.tagLo = v & 0xFFFF_FCF6
        case (28, 1): cp0.dataLo = v
        case (31, 0): cp0.desave = v
        default: break  // read-only or unimplemented: ignored
        }
    }

    func recomputeTimer(now: UInt64) {
        // The timer arithmetic is relative to `cycles`; inside a batch `now` is ahead of it.
        let saved = cycles
        cycles = now
        recomputeTimer()
        cycles = saved
        batchBreak = true
    }

    // MARK: TLB instructions

    func tlbRead() {
        let e = tlbEntries[Int((cp0.index & 0x7FFF_FFFF) % UInt32(configuration.tlbEntries))]
        if (cp0.entryHi ^ e.entryHi) & 0xFF != 0 { flushSoftTLB() }
        cp0.entryHi = e.entryHi
        cp0.pageMask = e.pageMask
        cp0.entryLo0 = e.entryLo0
        cp0.entryLo1 = e.entryLo1
    }

    func tlbWrite(_ i: Int, pc: UInt32) {
        let entry = TLBEntry(entryHi: cp0.entryHi, pageMask: cp0.pageMask, entryLo0: cp0.entryLo0, entryLo1: cp0.entryLo1)
        replaceTLBEntry(i, entry)
        if let observer { notify(observer.cpu(self, didWriteTLB: i, entry: entry, pc: pc)) }
    }

    func tlbProbe() {
        let asid = UInt8(truncatingIfNeeded: cp0.entryHi)
        for i in 0..<configuration.tlbEntries {
            let e = tlbEntries[i]
            if (cp0.entryHi ^ e.vpn2) & ~(e.pageMask | 0x1FFF) == 0 && (e.global || e.asid == asid) {
                cp0.index = UInt32(i)
                return
            }
        }
        cp0.index |= 0x8000_0000
    }
}
