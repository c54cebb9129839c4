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

    /// Whether some virtual address can match both this entry and `other` (their ASIDs aside):
    /// their VPN2s agree outside both page masks (exact for any masks).
    @inlinable @inline(__always)
    public func overlaps(_ other: TLBEntry) -> Bool {
        (vpn2 ^ other.vpn2) & ~(pageMask | other.pageMask | 0x1FFF) == 0
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

/// An index over a TLB of at most 64 entries that finds the entries which can match an address
/// without scanning them all (the CPU's lookup after a software-TLB miss). For each page mask in
/// use it keeps the set of entries with that mask; a table of 256 buckets keeps, per bucket, the
/// entries whose VPN2 (under their own mask) hashes there. A lookup ORs, for each mask in use,
/// the bucket of `va` under that mask restricted to that mask's entries: a superset of the
/// matching entries, which it checks lowest index first with `TLBEntry.matches` — so the result
/// is the linear scan's (`TLBEntry.lookup`: the first matching entry decides). Every write of an
/// entry must go through `replace` (or `rebuild` after a wholesale change).
///
/// One allocation of 64-bit words, owned by its user (`deallocate`): no ARC on the lookup.
struct TLBIndex {
    private static let bucketCount = 256
    private static let masksAt = 256, entriesAt = 320, groupCountAt = 384, words = 385
    private let words: UnsafeMutablePointer<UInt64>

    init() {
        words = .allocate(capacity: TLBIndex.words)
        words.initialize(repeating: 0, count: TLBIndex.words)
    }

    func deallocate() { words.deallocate() }

    /// The bucket of `va`'s VPN2 under page mask `mask`.
    @inline(__always)
    private static func bucket(_ va: UInt32, mask: UInt32) -> Int {
        let key = (va & ~(mask | 0x1FFF)) >> 13
        return Int((key &* 0x9E37_79B1) >> 24)
    }

    @inline(__always) private var groupCount: Int {
        get { Int(words[TLBIndex.groupCountAt]) }
        nonmutating set { words[TLBIndex.groupCountAt] = UInt64(newValue) }
    }

    /// Forgets everything and indexes `tlb` afresh.
    func rebuild(_ tlb: UnsafeBufferPointer<TLBEntry>) {
        precondition(tlb.count <= 64, "a TLB index covers at most 64 entries")
        words.update(repeating: 0, count: TLBIndex.words)
        for i in 0..<tlb.count { insert(i, tlb[i]) }
    }

    /// Entry `i` changes from `old` to `new`.
    @inline(__always)
    func replace(_ i: Int, old: TLBEntry, new: TLBEntry) {
        remove(i, old)
        insert(i, new)
    }

    private func insert(_ i: Int, _ e: TLBEntry) {
        let bit = UInt64(1) << UInt64(i)
        words[TLBIndex.bucket(e.vpn2, mask: e.pageMask)] |= bit
        let n = groupCount
        for g in 0..<n where words[TLBIndex.masksAt + g] == UInt64(e.pageMask) {
            words[TLBIndex.entriesAt + g] |= bit
            return
        }
        words[TLBIndex.masksAt + n] = UInt64(e.pageMask)
        words[TLBIndex.entriesAt + n] = bit
        groupCount = n + 1
    }

    private func remove(_ i: Int, _ e: TLBEntry) {
        let bit = UInt64(1) << UInt64(i)
        words[TLBIndex.bucket(e.vpn2, mask: e.pageMask)] &= ~bit
        let n = groupCount
        for g in 0..<n where words[TLBIndex.masksAt + g] == UInt64(e.pageMask) {
            words[TLBIndex.entriesAt + g] &= ~bit
            if words[TLBIndex.entriesAt + g] == 0 {  // the last entry of this mask: drop the group
                words[TLBIndex.masksAt + g] = words[TLBIndex.masksAt + n - 1]
                words[TLBIndex.entriesAt + g] = words[TLBIndex.entriesAt + n - 1]
                groupCount = n - 1
            }
            return
        }
    }

    /// The index of the first entry of `tlb` (the one this index covers) that maps `va` for
    /// address space `asid`, or nil — what a linear scan with `TLBEntry.matches` finds.
    @inline(__always)
    func firstMatch(_ tlb: UnsafeBufferPointer<TLBEntry>, _ va: UInt32, asid: UInt8) -> Int? {
        var candidates: UInt64 = 0
        for g in 0..<groupCount {
            candidates |= words[TLBIndex.bucket(va, mask: UInt32(truncatingIfNeeded: words[TLBIndex.masksAt + g]))]
                & words[TLBIndex.entriesAt + g]
        }
        while candidates != 0 {
            let i = candidates.trailingZeroBitCount
            if tlb[i].matches(va, asid: asid) { return i }
            candidates &= candidates &- 1
        }
        return nil
    }

    /// The entries of `tlb` (the one this index covers) whose range can share an address with
    /// the range of `e`, whatever their ASIDs (`TLBEntry.overlaps`), as a bit mask — what a scan
    /// of all entries with `overlaps` finds. For each page mask in use: when `e`'s pages are no
    /// larger, the one bucket of `e`'s VPN2 under that mask; when they are larger, the buckets
    /// of each pair of that size `e` covers (up to 16, else every entry of that mask).
    /// Every candidate is checked with `overlaps`.
    func overlapping(_ tlb: UnsafeBufferPointer<TLBEntry>, _ e: TLBEntry) -> UInt64 {
        var candidates: UInt64 = 0
        for g in 0..<groupCount {
            let mask = UInt32(truncatingIfNeeded: words[TLBIndex.masksAt + g]), entries = words[TLBIndex.entriesAt + g]
            if e.pageMask & ~mask == 0 {
                candidates |= words[TLBIndex.bucket(e.vpn2, mask: mask)] & entries
                continue
            }
            // (Masks a guest wrote need not be runs of low bits: then every entry of the mask.)
            let span = (mask | 0x1FFF) &+ 1, whole = (e.pageMask | 0x1FFF) &+ 1, pairs = whole / span
            guard span & (span &- 1) == 0, whole & (whole &- 1) == 0, pairs <= 16 else { candidates |= entries; continue }
            var va = e.vpn2 & ~(e.pageMask | 0x1FFF)
            for _ in 0..<pairs {
                candidates |= words[TLBIndex.bucket(va, mask: mask)] & entries
                va &+= span
            }
        }
        var found: UInt64 = 0
        while candidates != 0 {
            let i = candidates.trailingZeroBitCount
            if tlb[i].overlaps(e) { found |= 1 << UInt64(i) }
            candidates &= candidates &- 1
        }
        return found
    }

    /// `TLBEntry.lookup(tlb, va, asid:)` through the index.
    @inline(__always)
    func lookup(_ tlb: UnsafeBufferPointer<TLBEntry>, _ va: UInt32, asid: UInt8) -> TLBLookup {
        guard let i = firstMatch(tlb, va, asid: asid) else { return .miss }
        return tlb[i].translate(va)
    }
}
