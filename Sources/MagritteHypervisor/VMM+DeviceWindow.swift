import MagritteCore
import MagritteMachine

/// Guest device pages served without a trap (issue 12; Docs/vmm.md, "The device window").
///
/// A guest's device registers are not its RAM, so the VMM never maps them and every access to
/// one used to be an exit. With the device window (`VMM.mapsDevices`, on by default), the first
/// access to a guest's device page maps that page in the physical TLB to a machine-physical
/// address of the **device window**, a range of the machine's physical address space outside
/// its RAM that the machine's bus sends to this VMM: from then on the guest's loads and stores
/// there run on the CPU (translated, through the JIT's call-out to the bus), and the VMM
/// answers each one on the guest's own board without an exit.
///
/// The window is `DeviceWindow.base` (0x2000_0000, above the largest machine RAM, 256 MiB, and
/// above the low 512 MiB that kseg0/kseg1 reach) to 0xFFFF_FFFF: 256 MiB per guest, guest `i`
/// at `base + i * 0x1000_0000`, which holds the guest-physical range 0x1000_0000–0x1FFF_FFFF
/// (every Malta device: PCI I/O with the i8259s, PIT, RTC and UART ports, the GT-64120, the
/// FPGA with its UART, the boot ROM) at the same offset. The machine address of a guest's device
/// page is therefore a function of the guest and the page alone, so the physical TLB's window
/// entries stay right across snapshots, restores and guest switches (they belong to the guest's
/// physical ASIDs and are dropped with them, as its other entries). Accesses elsewhere (below
/// 0x1000_0000 past a guest's RAM, or above 0x2000_0000 through a guest's TLB) and the guests
/// after the 14th keep the trap path.
///
/// The window's entries live in the last `DeviceWindow.slots` entries of the physical TLB, which
/// the VMM's replacement of RAM entries (`installPhysical`) leaves alone, with the window on or
/// off: a window entry never takes the place of a RAM entry, so the kseg and hidden fills come at
/// the same instructions either way (each costs the slot of the instruction that missed: with
/// fewer places for RAM, fills would come elsewhere and the guest's time would shift). A page
/// pair is mapped to the window only when none of its halves is RAM, in place of the pair's
/// entry when it has one; a pair's other half that the guest does not map stays invalid.
///
/// What the guest sees does not change. Each access is answered at the same machine time
/// (`VMM.now` counts its slot, as in the exit), counted as an emulated instruction (not
/// retired), in `deviceAccesses` (and `mappedDeviceAccesses`); an interrupt it raises is taken
/// right after it (the CPU stops there and `runSlice` delivers it); a bus error is the CPU's,
/// reflected as the VMM reflects it. Instructions the trap path emulates in its own way (LL, SC,
/// LWL/LWR/SWL/SWR) and every access while something must see each one (the trace, an observer,
/// memory watches, time travel, a comm page) are not served here: the handler answers with a
/// bus error that `handleTrap` turns back into the memory fault the access would have taken
/// without the window (`windowTrap`), and then the trap path does exactly what it did before.
final class DeviceWindow: Device {
    /// The first machine-physical address of the window.
    static let base: UInt32 = 0x2000_0000
    /// Bytes of the window per guest: the guest-physical range `guestBase ..< guestBase + span`.
    static let span: UInt32 = 0x1000_0000
    static let guestBase: UInt32 = 0x1000_0000
    /// Guests with an index below this have a part of the window (up to 0xFFFF_FFFF).
    static let guests = Int((0x1_0000_0000 - UInt64(base)) / UInt64(span))
    /// Physical TLB entries kept for the window (the last ones), with a physical TLB of at least
    /// `minimumTLB` entries; none (and no window) with a smaller one.
    static let slots = 2
    static let minimumTLB = 16
    static func slots(tlbEntries: Int) -> Int { tlbEntries >= minimumTLB ? slots : 0 }

    /// The VMM (unretained: its CPU, which holds it, is the only caller; no reference counting
    /// per access, which costs a slow path on an object with weak references).
    @exclusivity(unchecked) var vmm: Unmanaged<VMM>?
    /// Whether the VMM maps guest device pages to the window (`VMM.mapsDevices`).
    @exclusivity(unchecked) var enabled = true
    /// Set by an access the handler left to the trap path: its virtual address, and whether the
    /// instruction stores (`VMM.windowTrap` turns the CPU's bus error back into that fault).
    @exclusivity(unchecked) var deferred: (va: UInt32, store: Bool)?
    /// Set when an access made an interrupt deliverable: the CPU stops after it, `runSlice`
    /// delivers it (`VMM.takeWindowInterrupt`).
    @exclusivity(unchecked) var interrupted = false

    /// Whether the instruction word `w` is a plain load or store (LB, LH, LW, LBU, LHU, SB, SH,
    /// SW by their major opcodes; not LWL/LWR/SWL/SWR, LL or SC), tested without a decode.
    @inline(__always)
    static func isPlainAccess(_ w: UInt32) -> Bool { (0x0000_0B3B_0000_0000 as UInt64) >> UInt64(w >> 26) & 1 != 0 }

    /// Whether the load or store `w` stores (SB, SH, SWL, SW, SWR, SC).
    @inline(__always)
    static func isStore(_ w: UInt32) -> Bool { (0x0100_4F00_0000_0000 as UInt64) >> UInt64(w >> 26) & 1 != 0 }

    /// The machine address of guest-physical `gpa` of guest `index` in the window, or nil.
    @inline(__always)
    static func machineAddress(guest index: Int, _ gpa: UInt32) -> UInt32? {
        guard index < guests, gpa &- guestBase < span else { return nil }
        return base &+ UInt32(index) &* span &+ (gpa &- guestBase)
    }

    /// Whether machine address `ma` lies in the window.
    @inline(__always)
    static func contains(_ ma: UInt32) -> Bool { ma >= base }

    func read(offset: UInt32, size: Int) -> UInt32? {
        vmm?._withUnsafeGuaranteedRef { $0.windowAccess(offset, size: size, store: false, value: 0) }
    }

    func write(offset: UInt32, size: Int, value: UInt32) -> Bool {
        vmm?._withUnsafeGuaranteedRef { $0.windowAccess(offset, size: size, store: true, value: value) } != nil
    }
}

extension VMM {
    /// Whether a guest's device pages are mapped to the device window, so that its accesses to
    /// them take no exit (see `DeviceWindow`; on by default). Turning it off drops the mappings.
    public var mapsDevices: Bool {
        get { deviceWindow.enabled }
        set {
            deviceWindow.enabled = newValue
            if !newValue { dropDeviceWindow() }
        }
    }

    /// The physical TLB entries kept for the device window (the last ones).
    var windowSlots: Int { DeviceWindow.slots(tlbEntries: physicalTLB.count) }

    /// Whether the window may serve `g`'s accesses now: nothing must see each one.
    /// (`unobserved`: the CPU has no observer and no memory watches, when the caller knows.)
    @inline(__always)
    func windowServes(_ g: Guest, unobserved: Bool? = nil) -> Bool {
        deviceWindow.enabled && windowSlots > 0 && g.index < DeviceWindow.guests && g.commPage == nil && !trace.isActive && onSliceBoundary == nil
            && unobserved ?? (cpu.observer == nil && cpu.memoryWatches.isEmpty)
    }

    /// Called by memoryFault for an access to `g`'s device page at `va` (not a fetch): maps the
    /// page pair to the window when it may. True when the access's page is mapped now.
    func mapDeviceWindow(_ g: Guest, _ va: UInt32) -> Bool {
        guard windowServes(g) else { return false }
        let asid = g.cp0.asid
        // RAM as the kseg and hidden fills map it, device pages to the window, the rest invalid.
        func half(_ v: UInt32) -> (UInt32?, Bool) {
            let gpa: UInt32, dirty: Bool
            if let p = g.cp0.unmappedPhysical(v) {
                (gpa, dirty) = (p, true)
            } else if case .mapped(let p, let d) = TLBEntry.lookup(g.tlb, v, asid: asid) {
                (gpa, dirty) = (p, d)
            } else {
                return (nil, false)
            }
            return ((g.machineAddress(gpa) ?? DeviceWindow.machineAddress(guest: g.index, gpa)).map { $0 & ~0xFFF }, dirty)
        }
        let pair = va & EntryHiBits.vpn2Mask
        let even = half(pair), odd = half(pair | 0x1000)
        guard let ma = va & 0x1000 == 0 ? even.0 : odd.0, DeviceWindow.contains(ma),
              [even.0, odd.0].allSatisfy({ $0.map(DeviceWindow.contains) ?? true }) else { return false }
        func lo(_ h: (UInt32?, Bool)) -> UInt32 {
            guard let a = h.0 else { return 0 }
            return EntryLoBits.frame(a) | (h.1 ? EntryLoBits.dirty : 0) | EntryLoBits.valid
        }
        let physicalASID = UInt32(cpu.cp0.asid)
        let entry = TLBEntry(entryHi: pair | physicalASID, pageMask: 0, entryLo0: lo(even), entryLo1: lo(odd))
        // In place of the pair's entry (a fill left it with invalid halves), else in a window slot
        // chosen by the pair (no replacement state: a snapshot holds all there is).
        let n = physicalTLB.count
        // (An entry of this guest that overlaps the pair is replaced, so no address has two matches.)
        let slot = physicalTLB.firstIndex { $0.overlaps(entry) && ($0.global || UInt32($0.asid) == physicalASID) && asidOwner[Int($0.asid)] == g.index }
            ?? n - windowSlots + Int((pair >> 13) % UInt32(windowSlots))
        setPhysical(slot, entry)
        return true
    }

    /// Removes every physical TLB entry that maps a page of the window.
    func dropDeviceWindow() {
        for i in physicalTLB.indices {
            let e = physicalTLB[i]
            let inWindow = [e.lo0, e.lo1].contains { $0 & EntryLoBits.valid != 0 && DeviceWindow.contains(EntryLoBits.address($0)) }
            if inWindow { setPhysical(i, TLBEntry()) }
        }
    }

    /// The bus's call for a load (`store` false) or store of `size` bytes at `offset` into the
    /// window, made by the CPU executing the current guest's instruction. Nil: a bus error (the
    /// board has nothing there, or the access is left to the trap path: `deferred`). The host's
    /// reads and writes there (`CPU.readPhysical`, `readVirtual`, `writePhysical` of a window
    /// address) find nothing and change nothing: no device, statistic, time or mapping.
    func windowAccess(_ offset: UInt32, size: Int, store: Bool, value: UInt32) -> UInt32? {
        let (pc, known, unobserved) = cpu.busAccessInstruction()
        // The running guest borrowed, not retained (as `handleTrap` does).
        guard pc != CPU.hostAccess, let g = current.map({ Unmanaged.passUnretained($0) }) else { return nil }
        return g._withUnsafeGuaranteedRef {
            windowAccess($0, offset, size: size, store: store, value: value, pc: pc, known: known, unobserved: unobserved)
        }
    }

    private func windowAccess(_ g: Guest, _ offset: UInt32, size: Int, store: Bool, value: UInt32, pc: UInt32, known: UInt32?,
                              unobserved: Bool) -> UInt32? {
        guard Int(offset / DeviceWindow.span) == g.index else { return nil }  // another guest's part: never mapped
        let gpa = DeviceWindow.guestBase | (offset % DeviceWindow.span)
        // The instruction at the bus: plain loads and stores only (the others as the trap path does them).
        guard let word = known ?? fetch(g, pc) else { return nil }
        guard DeviceWindow.isPlainAccess(word), unobserved, windowServes(g, unobserved: true) else {
            let va = cpu.gpr(Int((word >> 21) & 31)) &+ UInt32(bitPattern: Int32(Int16(truncatingIfNeeded: word)))
            deviceWindow.deferred = (va, DeviceWindow.isStore(word))
            if !windowServes(g) { dropDeviceWindow() }
            return nil
        }
        g.statistics.deviceAccesses &+= 1
        g.statistics.mappedDeviceAccesses &+= 1
        let result: UInt32
        if store {
            guard g.deviceWrite(gpa, size: size, value: value) else { return nil }
            result = 0
        } else {
            guard let v = g.deviceRead(gpa, size: size) else { return nil }
            result = v
        }
        // As when the access trapped: its slot counts as emulated, not retired.
        cpu.accountEmulated(slots: 0, faulted: 1)
        noteWindowFault()
        let s = g.cp0.status
        if g.state == .runnable, s & StatusBits.ie != 0, s & (StatusBits.exl | StatusBits.erl) == 0, interruptPending(g) {
            deviceWindow.interrupted = true
            cpu.requestStop()
        }
        return result
    }

    /// For `handleTrap`: a bus error the window caused, as the trap the access would have taken
    /// without it (a TLB miss on the device page, which `memoryFault` then handles as before);
    /// any other trap as it is.
    @inline(__always)
    func windowTrap(_ trap: Trap) -> Trap {
        guard trap.code == .busErrorData || trap.code == .busErrorFetch else { return trap }
        if trap.code == .busErrorData, let (va, store) = deviceWindow.deferred {
            deviceWindow.deferred = nil
            return Trap(code: store ? .tlbStore : .tlbLoad, pc: trap.pc, inDelaySlot: trap.inDelaySlot, badVAddr: va, isRefill: true,
                        isTranslationFault: true)
        }
        // A fetch from a page mapped to the window: without it, a miss there.
        if trap.code == .busErrorFetch, let ma = physicalTranslation(trap.pc), DeviceWindow.contains(ma) {
            return Trap(code: .tlbLoad, pc: trap.pc, inDelaySlot: trap.inDelaySlot, badVAddr: trap.pc, isRefill: true,
                        isTranslationFault: true)
        }
        return trap
    }

    /// For `runSlice`, after the CPU's run: an access through the window made an interrupt
    /// deliverable and stopped the CPU after it; it is taken there, as after the access's exit,
    /// which would have ended a long quantum (`VMM.endLongQuantum`: the guest's kernel runs on
    /// with the ends of quanta a run that stops at every end has).
    @inline(__always)
    func takeWindowInterrupt(_ g: Guest) {
        guard deviceWindow.interrupted else { return }
        deviceWindow.interrupted = false
        if exitEndsQuantum { endLongQuantum() }
        deliverInterrupt(g)
        clusterEndedRun = true  // the quantum goes on
    }
}
