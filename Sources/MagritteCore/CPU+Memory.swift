#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Address translation, the software TLB and the memory slow paths.
///
/// The hot loop tries the current mode's software TLB (page → host addend, alignment folded
/// into the tag compare); everything else comes here: segment rules, the joint TLB, device
/// accesses through the bus, and the exceptions they raise.

/// Per mode, what each 512 MiB region (va >> 29) of the virtual address space does.
struct SegmentMap {
    static let mapped: UInt32 = 0xFFFF_FFFF
    static let error: UInt32 = 0xFFFF_FFFE
    /// [mode * 8 + region]: `mapped`, `error`, or the physical base of the region.
    var table = [UInt32](repeating: 0, count: 24)

    /// Builds the map from SegCtl0–2 (whose reset values give the legacy MIPS32 map).
    init(segCtl: (UInt32, UInt32, UInt32) = (0x0020_0010, 0x0003_0002, 0x003B_043B), erl: Bool = false) {
        // Configuration of each region: CFG5 (1 GiB at 0) covers regions 0-1, CFG4 (1 GiB at
        // 0x40000000) regions 2-3, CFG3 0x80000000, CFG2 0xA0000000, CFG1 0xC0000000, CFG0 0xE0000000.
        let cfg: [UInt32] = [
            segCtl.2 >> 16, segCtl.2 >> 16, segCtl.2 & 0xFFFF, segCtl.2 & 0xFFFF,
            segCtl.1 >> 16, segCtl.1 & 0xFFFF, segCtl.0 >> 16, segCtl.0 & 0xFFFF,
        ]
        for region in 0..<8 {
            let c = cfg[region]
            let am = (c >> 4) & 7
            let eu = (c >> 3) & 1 != 0
            let pa = (c >> 9) & 0x7F
            var base = pa << 29
            if region < 4 { base = (base & ~0x3FFF_FFFF) | (UInt32(region & 1) << 29) }
            // kernel, supervisor, user: 0 = error, 1 = mapped, 2 = unmapped
            let access: (UInt8, UInt8, UInt8)
            switch am {
            case 0: access = (2, 0, 0)
            case 1: access = (1, 0, 0)
            case 2: access = (1, 1, 0)
            case 3: access = (1, 1, 1)
            case 4: access = (2, 1, 1)
            case 5: access = (2, 2, 0)
            case 7: access = (2, 2, 2)
            default: access = (0, 0, 0)
            }
            for (mode, a) in [access.0, access.1, access.2].enumerated() {
                var kind = a
                if mode == 0 && erl && eu && kind == 1 { kind = 2 }
                table[mode * 8 + region] = kind == 0 ? SegmentMap.error : kind == 1 ? SegmentMap.mapped : base
            }
        }
    }
}

enum Translation {
    case physical(UInt32)
    case addressError
    case tlb(TLBFault)
}

/// Why a mapped access failed in the TLB.
enum TLBFault {
    case refill
    case invalid
    case modified
}

enum AccessKind { case load, store, fetch }

/// A software-TLB slot may also hold the translation of a page that is not RAM (a device, or
/// the VMM's device window), so that the slow path's next access there skips the TLB walk: its
/// tag is the page with `device` set, a bit no access compares (the fast paths, the
/// interpreter's and the translated code's, mask the address with the page and at most the two
/// alignment bits), so such an entry never hits there and the access still reaches the bus
/// through the slow path. The addend holds the physical page. It is kept and forgotten exactly
/// as the RAM translations are (per mode, read and write halves, dropped by TLB writes, ASID,
/// segment and ERL changes), so it says what `translate` would say; which frames are RAM never
/// changes for a bus (`PhysicalBus.ramPage`).
extension SoftTLBEntry {
    static let device: UInt32 = 4

    init(device va: UInt32, physical pa: UInt32) {
        self.init(tag: va & 0xFFFF_F000 | SoftTLBEntry.device, addend: UInt(pa & 0xFFFF_F000))
    }

    /// The physical address of `va` when this entry holds the device page of `va`.
    @inline(__always)
    func devicePage(_ va: UInt32) -> UInt32? {
        tag == va & 0xFFFF_F000 | SoftTLBEntry.device ? UInt32(truncatingIfNeeded: addend) | va & 0xFFF : nil
    }
}

extension CPU {
    // MARK: Mode and software TLB upkeep

    /// Recomputes the mode and everything derived from Status (call after any Status change).
    func statusChanged(pc: UInt32, cause: ModeChangeCause) {
        let s = cp0.status
        let newMode = StatusBits.mode(s)
        let erl = s & StatusBits.erl != 0
        if erl != segmentsBuiltWithERL { rebuildSegments(erl: erl) }
        if newMode != mode {
            let old = mode
            mode = newMode
            currentSoftTLB = softTLB + Int(newMode.rawValue) * 512
            codeTag = 0xFFFF_FFFF
            if let observer { notify(observer.cpu(self, didChangeMode: ModeChange(from: old, to: newMode, pc: pc, cause: cause))) }
        }
        batchBreak = true
    }

    func rebuildSegments(erl: Bool) {
        segments = SegmentMap(segCtl: (cp0.segCtl0, cp0.segCtl1, cp0.segCtl2), erl: erl)
        segmentsBuiltWithERL = erl
        flushSoftTLB()
    }

    /// Writes TLB entry `i` and forgets the cached translations that the old and the new entry
    /// cover (a TLB refill handler writes an entry every few dozen instructions: flushing the
    /// whole software TLB each time would cost more than the handler). The software TLB holds
    /// translations of the current ASID only (a change of ASID flushes it), each through a valid
    /// page: the old entry's pages are forgotten when it could have given one, the new entry's
    /// when it matches in the current ASID (it may hide an entry after it, valid or not) — the
    /// VMM's writes of other address spaces' entries (`VMM.installPhysical`) cost nothing here.
    /// (Skipping the new entry's pages when the index shows no other entry it could hide cost
    /// more than it saved: tlbstress under the VMM.)
    func replaceTLBEntry(_ i: Int, _ entry: TLBEntry) {
        let old = tlbEntries[i]
        tlbEntries[i] = entry
        tlbIndex.replace(i, old: old, new: entry)
        let asid = cp0.asid
        if (old.lo0 | old.lo1) & 2 != 0, old.global || old.asid == asid { invalidateSoftTLB(covering: old) }
        if entry.global || entry.asid == asid { invalidateSoftTLB(covering: entry) }
    }

    /// Forgets the cached translations of the pages `e` maps (whatever their ASID), visiting
    /// only the slots its pages use: the translations of other pages stay (a large pair too).
    /// A mode whose segment map does not map those pages through the TLB (the VMM's kernel
    /// segments in user mode: an address error) holds no translation of them that the entry
    /// gave, and is skipped (a large kseg fill otherwise visits every slot of every mode).
    func invalidateSoftTLB(covering e: TLBEntry) {
        let span = e.pageSize &* 2, first = e.vpn2 & ~(span &- 1)
        let regions = (Int(first >> 29), Int((first &+ (span &- 1)) >> 29))
        for m in 0..<3 {
            let map = segments.table[m * 8 + regions.0] == SegmentMap.mapped || segments.table[m * 8 + regions.1] == SegmentMap.mapped
            guard map else { continue }
            CPU.forget(first, span: span, in: softTLB + m * 512, parts: 2, slots: 256)  // reads and writes
            if let jit { CPU.forget(first, span: span, in: jit.fetchTLB + m * JIT.fetchPages, parts: 1, slots: JIT.fetchPages) }
        }
        if (codeTag & 0xFFFF_F000) &- first < span { codeTag = 0xFFFF_FFFF }  // only the pages it maps may change
    }

    /// Clears the entries of a table of page translations (`parts` runs of `slots` entries, each
    /// page at slot page number mod `slots`) whose page lies in the `span` bytes from `first`:
    /// only the slots those pages use.
    static func forget(_ first: UInt32, span: UInt32, in table: UnsafeMutablePointer<SoftTLBEntry>, parts: Int, slots: Int) {
        let used = Int(min(span >> 12, UInt32(slots)))
        for part in 0..<parts {
            let run = table + part * slots
            for k in 0..<used {
                let slot = (Int(first >> 12) &+ k) & (slots - 1)
                if (run[slot].tag & 0xFFFF_F000) &- first < span { run[slot] = SoftTLBEntry() }
            }
        }
    }

    /// Forgets every cached translation (after TLB writes, ASID or segment changes).
    public func flushSoftTLB() {
        for i in 0..<(3 * 512) { softTLB[i] = SoftTLBEntry() }
        jit?.forgetFetchPages()
        codeTag = 0xFFFF_FFFF
    }

    // MARK: Translation

    /// Translates `va` for an access in the current mode (no side effects).
    func translate(_ va: UInt32, _ kind: AccessKind) -> Translation {
        let seg = segments.table[Int(mode.rawValue) * 8 + Int(va >> 29)]
        if seg == SegmentMap.error { return .addressError }
        if seg != SegmentMap.mapped { return .physical(seg | (va & 0x1FFF_FFFF)) }
        switch tlbIndex.lookup(tlb, va, asid: cp0.asid) {
        case .miss: return .tlb(.refill)
        case .invalid: return .tlb(.invalid)
        case .mapped(let pa, let dirty): return kind == .store && !dirty ? .tlb(.modified) : .physical(pa)
        }
    }

    /// Translates for a debugger: the physical address `va` maps to in the current mode and
    /// address space, or nil (no side effects, no exceptions).
    public func physicalAddress(of va: UInt32, forWrite: Bool = false) -> UInt32? {
        if case .physical(let pa) = translate(va, forWrite ? .store : .load) { return pa }
        return nil
    }

    /// Raises the exception for a failed translation of `va`.
    func raiseTranslationFault(_ t: Translation, va: UInt32, kind: AccessKind, pc: UInt32, delay: Bool) {
        let store = kind == .store
        switch t {
        case .physical: break
        case .addressError:
            // The mode may not use the segment: a translation fault (EntryHi and Context change).
            enterException(store ? .addressErrorStore : .addressErrorLoad, pc: pc, inDelaySlot: delay, badVAddr: va,
                           translationFault: true)
        case .tlb(let r):
            let code: ExceptionCode = r == .modified ? .tlbModified : store ? .tlbStore : .tlbLoad
            enterException(code, pc: pc, inDelaySlot: delay, badVAddr: va, refill: r == .refill, translationFault: true)
        }
    }

    // MARK: Data slow paths

    /// The slow paths' translation of `va` through software-TLB slot `slot`: the physical address
    /// and, when it is RAM, its host page; nil after raising the exception. A device page the
    /// slot translated last (`SoftTLBEntry.device`) needs no walk and is not RAM.
    @inline(__always)
    private func slowTranslation(_ va: UInt32, slot: Int, _ kind: AccessKind, pc: UInt32, delay: Bool)
        -> (pa: UInt32, ram: UnsafeMutableRawPointer?)? {
        if let device = currentSoftTLB[slot].devicePage(va) { return (device, nil) }
        let t = translate(va, kind)
        guard case .physical(let pa) = t else {
            raiseTranslationFault(t, va: va, kind: kind, pc: pc, delay: delay)
            return nil
        }
        return (pa, bus.ramPage(frame: pa >> 12))
    }

    /// A load of `size` bytes the software TLB could not serve. Returns nil after raising an
    /// exception (the caller reloads pc from `self`).
    @inline(never)
    func slowLoad(_ va: UInt32, size: UInt32, pc: UInt32, delay: Bool) -> UInt32? {
        if !memoryWatches.isEmpty && stopsBeforeAccess(va, size: size, value: 0, write: false, pc: pc, delay: delay) { return nil }
        if va & (size &- 1) != 0 {
            enterException(.addressErrorLoad, pc: pc, inDelaySlot: delay, badVAddr: va)
            return nil
        }
        let slot = Int((va >> 12) & 255)
        let value: UInt32
        guard let (pa, ram) = slowTranslation(va, slot: slot, .load, pc: pc, delay: delay) else { return nil }
        if let page = ram {
            let watched = !memoryWatches.isEmpty && pageIsWatched(va)
            if !watched {
                currentSoftTLB[slot] = SoftTLBEntry(tag: va & 0xFFFF_F000, addend: UInt(bitPattern: page) &- UInt(va & 0xFFFF_F000))
            }
            let p = page + Int(pa & 0xFFF)
            switch size {
            case 1: value = UInt32(p.load(as: UInt8.self))
            case 2: value = UInt32(p.loadUnaligned(as: UInt16.self))
            default: value = p.loadUnaligned(as: UInt32.self)
            }
            if !watched { return value }
        } else {
            currentSoftTLB[slot] = SoftTLBEntry(device: va, physical: pa)
            busAccessPC = pc
            guard let v = bus.read(pa, size: Int(size)) else {
                enterException(.busErrorData, pc: pc, inDelaySlot: delay)
                return nil
            }
            value = v
        }
        if !memoryWatches.isEmpty { reportAccess(va, pa: pa, size: size, value: value, write: false, pc: pc) }
        return value
    }

    /// A store the software TLB could not serve. Returns false after raising an exception.
    @inline(never)
    func slowStore(_ va: UInt32, size: UInt32, value: UInt32, pc: UInt32, delay: Bool) -> Bool {
        if !memoryWatches.isEmpty && stopsBeforeAccess(va, size: size, value: value, write: true, pc: pc, delay: delay) { return false }
        if va & (size &- 1) != 0 {
            enterException(.addressErrorStore, pc: pc, inDelaySlot: delay, badVAddr: va)
            return false
        }
        let slot = 256 + Int((va >> 12) & 255)
        guard let (pa, ram) = slowTranslation(va, slot: slot, .store, pc: pc, delay: delay) else { return false }
        let frame = pa >> 12
        if let page = ram {
            if let decoded = decodedPages[Int(frame)] {
                // A page with decoded code: keep stores on this path and forget the old decode.
                decoded[Int((pa & 0xFFF) >> 2)] = .undecoded
                invalidateTranslations(frame: Int(frame))
            } else if memoryWatches.isEmpty || !pageIsWatched(va) {
                currentSoftTLB[slot] = SoftTLBEntry(tag: va & 0xFFFF_F000, addend: UInt(bitPattern: page) &- UInt(va & 0xFFFF_F000))
            }
            let p = page + Int(pa & 0xFFF)
            switch size {
            case 1: p.storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
            case 2: p.storeBytes(of: UInt16(truncatingIfNeeded: value), as: UInt16.self)
            default: p.storeBytes(of: value, as: UInt32.self)
            }
        } else {
            currentSoftTLB[slot] = SoftTLBEntry(device: va, physical: pa)
            busAccessPC = pc
            guard bus.write(pa, size: Int(size), value: value) else {
                enterException(.busErrorData, pc: pc, inDelaySlot: delay)
                return false
            }
        }
        if !memoryWatches.isEmpty { reportAccess(va, pa: pa, size: size, value: value, write: true, pc: pc) }
        return true
    }

    // MARK: Fetch slow path

    /// Makes the page of `pc` the current code page. Returns false after raising an exception,
    /// or, when the host cannot give the page's decoded instructions, after setting
    /// `outOfHostMemory` and requesting a stop (pc unchanged).
    @inline(never)
    func enterCodePage(_ pc: UInt32, delay: Bool) -> Bool {
        if pc & 3 != 0 {
            enterException(.addressErrorLoad, pc: pc, inDelaySlot: delay, badVAddr: pc)
            return false
        }
        let t = translate(pc, .fetch)
        guard case .physical(let pa) = t else {
            raiseTranslationFault(t, va: pc, kind: .fetch, pc: pc, delay: delay)
            return false
        }
        let frame = Int(pa >> 12)
        guard let page = bus.ramPage(frame: pa >> 12) else {
            enterException(.busErrorFetch, pc: pc, inDelaySlot: delay)
            return false
        }
        let decoded: UnsafeMutablePointer<DecodedInstruction>
        if let d = decodedPages[frame] {
            decoded = d
        } else {
            // malloc, not `allocate` (which traps): a host out of memory stops `run` cleanly.
            guard !refuseDecodedPages, let raw = malloc(1024 * MemoryLayout<DecodedInstruction>.stride) else {
                outOfHostMemory = true
                stopRequested = true
                batchBreak = true
                return false
            }
            decoded = raw.bindMemory(to: DecodedInstruction.self, capacity: 1024)
            decoded.initialize(repeating: .undecoded, count: 1024)
            decodedPages[frame] = decoded
            forgetWriteMappings(toHostPage: page)
        }
        codeTag = pc & 0xFFFF_F000
        codeFrame = UInt32(frame)
        codeDecoded = decoded
        codeHost = page.assumingMemoryBound(to: UInt32.self)
        return true
    }

    /// Drops software-TLB write entries that point into `page`, so stores to it take the slow
    /// path (which invalidates decoded instructions).
    func forgetWriteMappings(toHostPage page: UnsafeMutableRawPointer) {
        let host = UInt(bitPattern: page)
        for m in 0..<3 {
            for i in 0..<256 {
                let e = softTLB[m * 512 + 256 + i]
                if e.tag != 0xFFFF_FFFF && e.tag & SoftTLBEntry.device == 0 && e.addend &+ UInt(e.tag) == host {
                    softTLB[m * 512 + 256 + i] = SoftTLBEntry()
                }
            }
        }
    }

    /// Tells the CPU that the host changed physical memory behind its back (loader, debugger):
    /// decoded instructions of those pages are forgotten.
    public func invalidateCode(physical address: UInt32, length: Int) {
        guard length > 0 else { return }
        let first = Int(address >> 12)
        let last = min(Int((UInt64(address) + UInt64(length) - 1) >> 12), CPU.physicalFrames - 1)
        for f in first...last {
            decodedPages[f]?.update(repeating: .undecoded, count: 1024)
            invalidateTranslations(frame: f)
        }
    }

    // MARK: Host access (debuggers, loaders)

    /// Reads `size` bytes at virtual address `va` through the current translation, without
    /// exceptions or side effects on CP0. Nil when unmapped or nothing answers.
    public func readVirtual(_ va: UInt32, size: Int) -> UInt32? {
        guard size == 1 || size == 2 || size == 4, let pa = physicalAddress(of: va) else { return nil }
        return readPhysical(pa, size: size)
    }

    /// Reads physical memory (RAM directly, devices through the bus).
    public func readPhysical(_ pa: UInt32, size: Int) -> UInt32? {
        guard size == 1 || size == 2 || size == 4 else { return nil }
        if let page = bus.ramPage(frame: pa >> 12), Int(pa & 0xFFF) + size <= 4096 {
            let p = page + Int(pa & 0xFFF)
            switch size {
            case 1: return UInt32(p.load(as: UInt8.self))
            case 2: return UInt32(p.loadUnaligned(as: UInt16.self))
            default: return p.loadUnaligned(as: UInt32.self)
            }
        }
        busAccessPC = CPU.hostAccess
        return bus.read(pa, size: size)
    }

    /// Writes physical memory and forgets decoded code there. False when nothing answers.
    @discardableResult
    public func writePhysical(_ pa: UInt32, size: Int, value: UInt32) -> Bool {
        guard size == 1 || size == 2 || size == 4 else { return false }
        if let page = bus.ramPage(frame: pa >> 12), Int(pa & 0xFFF) + size <= 4096 {
            let p = page + Int(pa & 0xFFF)
            switch size {
            case 1: p.storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
            case 2: p.storeBytes(of: UInt16(truncatingIfNeeded: value), toByteOffset: 0, as: UInt16.self)
            default: p.storeBytes(of: value, toByteOffset: 0, as: UInt32.self)
            }
            invalidateCode(physical: pa, length: size)
            return true
        }
        busAccessPC = CPU.hostAccess
        return bus.write(pa, size: size, value: value)
    }

    /// Writes through the current translation (debugger). False when unmapped or read-only.
    @discardableResult
    public func writeVirtual(_ va: UInt32, size: Int, value: UInt32) -> Bool {
        guard let pa = physicalAddress(of: va, forWrite: true) else { return false }
        return writePhysical(pa, size: size, value: value)
    }
}
