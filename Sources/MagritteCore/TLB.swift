/// One joint-TLB entry: a pair of pages (even/odd) of size 4 KiB × 4^k.
public struct TLBEntry: Sendable, Equatable {
    /// Virtual page number of the pair, EntryHi bits 31:13 as written. Bits covered by the page
    /// mask are kept (TLBR returns them, as on QEMU) but ignored when matching.
    public var vpn2: UInt32 = 0
    /// PageMask bits 28:13.
    public var pageMask: UInt32 = 0
    public var asid: UInt8 = 0
    public var global: Bool = false
    /// EntryLo0/EntryLo1 as written (PFN 25:6, C 5:3, D 2, V 1), without the G bit.
    public var lo0: UInt32 = 0
    public var lo1: UInt32 = 0

    public init() {}

    public init(entryHi: UInt32, pageMask: UInt32, entryLo0: UInt32, entryLo1: UInt32) {
        self.pageMask = pageMask & 0x1FFF_E000
        self.vpn2 = entryHi & 0xFFFF_E000
        self.asid = UInt8(truncatingIfNeeded: entryHi)
        self.global = (entryLo0 & entryLo1 & 1) != 0
        // PFN bits below the page size are dropped (TLBR returns them as zero, as on QEMU).
        let pfnMask = ~((self.pageMask >> 13) << 6)
        self.lo0 = entryLo0 & 0x03FF_FFFE & pfnMask
        self.lo1 = entryLo1 & 0x03FF_FFFE & pfnMask
    }

    /// EntryHi as TLBR returns it.
    public var entryHi: UInt32 { vpn2 | UInt32(asid) }
    /// EntryLo0/1 as TLBR returns them (the G bit in both).
    public var entryLo0: UInt32 { lo0 | (global ? 1 : 0) }
    public var entryLo1: UInt32 { lo1 | (global ? 1 : 0) }

    /// Whether this entry maps `va` for address space `asid`.
    @inlinable @inline(__always)
    public func matches(_ va: UInt32, asid: UInt8) -> Bool {
        (va ^ vpn2) & ~(pageMask | 0x1FFF) == 0 && (global || self.asid == asid)
    }

    /// Size in bytes of each of the two pages.
    @inlinable @inline(__always)
    public var pageSize: UInt32 { (pageMask >> 1 | 0xFFF) &+ 1 }

    /// What `va` translates to through this (matching) entry.
    @inlinable @inline(__always)
    public func translate(_ va: UInt32) -> TLBLookup {
        let size = pageSize
        let lo = va & size != 0 ? lo1 : lo0
        if lo & 2 == 0 { return .invalid }
        let base = ((lo >> 6) << 12) & ~(size &- 1)
        return .mapped(physical: base | (va & (size &- 1)), dirty: lo & 4 != 0)
    }

    // MARK: Rules over a whole TLB (the CPU's entries, a guest's virtual TLB)

    /// Looks `va` up in address space `asid`: the first matching entry decides. (Over a
    /// buffer, not a generic collection: the lookup stays cheap in debug builds too.)
    @inlinable
    public static func lookup(_ tlb: UnsafeBufferPointer<TLBEntry>, _ va: UInt32, asid: UInt8) -> TLBLookup {
        for i in 0..<tlb.count where tlb[i].matches(va, asid: asid) {
            return tlb[i].translate(va)
        }
        return .miss
    }

    @inlinable
    public static func lookup(_ tlb: [TLBEntry], _ va: UInt32, asid: UInt8) -> TLBLookup {
        tlb.withUnsafeBufferPointer { lookup($0, va, asid: asid) }
    }

    /// TLBP: the index of the entry matching EntryHi's VPN2 and ASID, nil when none does.
    @inlinable
    public static func probe(_ tlb: UnsafeBufferPointer<TLBEntry>, entryHi: UInt32) -> Int? {
        let asid = UInt8(truncatingIfNeeded: entryHi)
        for i in 0..<tlb.count where tlb[i].matches(entryHi, asid: asid) {
            return i
        }
        return nil
    }

    /// Random: deterministic at time `now`, between Wired and the last entry.
    @inline(__always)
    public static func random(now: UInt64, tlbEntries: Int, wired: UInt32) -> UInt32 {
        let n = UInt64(tlbEntries), w = UInt64(wired)
        if w >= n { return UInt32(n - 1) }
        return UInt32(n - 1 - now % (n - w))
    }
}

/// The result of a TLB lookup.
public enum TLBLookup: Equatable, Sendable {
    /// No entry matches: a refill.
    case miss
    /// The matching entry's page is not valid.
    case invalid
    /// Mapped to `physical`; a store needs `dirty` (else a TLB Modified exception).
    case mapped(physical: UInt32, dirty: Bool)
}
