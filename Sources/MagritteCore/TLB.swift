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
    @inline(__always)
    func matches(_ va: UInt32, asid: UInt8) -> Bool {
        (va ^ vpn2) & ~(pageMask | 0x1FFF) == 0 && (global || self.asid == asid)
    }

    /// Size in bytes of each of the two pages.
    @inline(__always)
    var pageSize: UInt32 { (pageMask >> 1 | 0xFFF) &+ 1 }
}

/// The result of a TLB lookup for one access.
enum TLBResult {
    case hit(physical: UInt32)
    case refill
    case invalid
    case modified
}
