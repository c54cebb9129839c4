/// CP0 register numbers (register, select) and field masks used by the core.
public enum CP0Register: Sendable {
    public static let index: (Int, Int) = (0, 0)
    public static let random = (1, 0)
    public static let entryLo0 = (2, 0)
    public static let entryLo1 = (3, 0)
    public static let context = (4, 0)
    public static let pageMask = (5, 0)
    public static let segCtl0 = (5, 2)
    public static let segCtl1 = (5, 3)
    public static let segCtl2 = (5, 4)
    public static let wired = (6, 0)
    public static let hwrEna = (7, 0)
    public static let badVAddr = (8, 0)
    public static let count = (9, 0)
    public static let entryHi = (10, 0)
    public static let compare = (11, 0)
    public static let status = (12, 0)
    public static let intCtl = (12, 1)
    public static let srsCtl = (12, 2)
    public static let srsMap = (12, 3)
    public static let cause = (13, 0)
    public static let epc = (14, 0)
    public static let prid = (15, 0)
    public static let ebase = (15, 1)
    public static let config0 = (16, 0)
    public static let config1 = (16, 1)
    public static let config2 = (16, 2)
    public static let config3 = (16, 3)
    public static let llAddr = (17, 0)
    public static let errorEPC = (30, 0)

    /// Names for traces, the debugger and `mfc0` disassembly comments, by (register, select).
    public static let names: [String: (Int, Int)] = [
        "index": index, "random": random, "entrylo0": entryLo0, "entrylo1": entryLo1,
        "context": context, "pagemask": pageMask, "segctl0": segCtl0, "segctl1": segCtl1,
        "segctl2": segCtl2, "wired": wired, "hwrena": hwrEna, "badvaddr": badVAddr, "count": count,
        "entryhi": entryHi, "compare": compare, "status": status, "intctl": intCtl, "srsctl": srsCtl,
        "srsmap": srsMap, "cause": cause, "epc": epc, "prid": prid, "ebase": ebase,
        "config": config0, "config0": config0, "config1": config1, "config2": config2,
        "config3": config3, "lladdr": llAddr, "errorepc": errorEPC,
    ]
}

/// Status register bits.
public enum StatusBits {
    public static let ie: UInt32 = 1 << 0
    public static let exl: UInt32 = 1 << 1
    public static let erl: UInt32 = 1 << 2
    public static let ksuShift: UInt32 = 3
    public static let ksuMask: UInt32 = 3 << 3
    public static let bev: UInt32 = 1 << 22
    public static let cu0: UInt32 = 1 << 28
    /// What software can write on a 24Kc (measured on QEMU's 24Kc: writing all ones reads back
    /// 0x1278FF1F with EXL, i.e. CU0, RE, BEV, TS, SR, NMI, IM7–0, KSU, ERL, EXL, IE).
    public static let writable: UInt32 = 0x1278_FF1F
}

/// Cause register bits.
public enum CauseBits {
    public static let bd: UInt32 = 1 << 31
    public static let ti: UInt32 = 1 << 30
    public static let ceShift: UInt32 = 28
    public static let dc: UInt32 = 1 << 27
    public static let iv: UInt32 = 1 << 23
    /// DC, IV, WP and the two software interrupt bits (QEMU's 24Kc reads back 0x08C00300).
    public static let writable: UInt32 = 0x08C0_0300
}

/// All of CP0 except Count (derived from the cycle counter) and the TLB.
public struct CP0State: Sendable, Equatable {
    public var index: UInt32 = 0
    public var entryLo0: UInt32 = 0
    public var entryLo1: UInt32 = 0
    public var context: UInt32 = 0
    public var pageMask: UInt32 = 0
    public var wired: UInt32 = 0
    public var hwrEna: UInt32 = 0
    public var badVAddr: UInt32 = 0
    public var entryHi: UInt32 = 0
    public var compare: UInt32 = 0
    public var status: UInt32 = StatusBits.bev | StatusBits.erl
    public var intCtl: UInt32 = 0xE000_0000
    public var srsCtl: UInt32 = 0
    /// Cause as software wrote it plus ExcCode/BD/CE; IP7–2 and TI are added when read.
    public var cause: UInt32 = 0
    public var epc: UInt32 = 0
    public var ebase: UInt32 = 0x8000_0000
    public var config0: UInt32 = 0x8000_0482
    public var errorEPC: UInt32 = 0
    public var llAddr: UInt32 = 0
    /// Segmentation control (Release 3), reset values giving the legacy memory map.
    public var segCtl0: UInt32 = 0x0020_0010
    public var segCtl1: UInt32 = 0x0003_0002
    public var segCtl2: UInt32 = 0x003B_043B
    // Registers that only hold what software writes (no effect on the CPU), with the write
    // masks QEMU's 24Kc shows.
    public var srsMap: UInt32 = 0
    public var watchLo: UInt32 = 0
    public var watchHi: UInt32 = 0x8000_0000
    public var errCtl: UInt32 = 0
    public var tagLo: UInt32 = 0
    public var dataLo: UInt32 = 0
    public var desave: UInt32 = 0

    public init() {}
}
