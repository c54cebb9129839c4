/// The CP0 registers of a 24Kc, their rules, and the exception entry: written once here and used
/// by the CPU (`CPU+CP0.swift`) and by the VMM for each guest's virtual CP0. The masks and reset
/// values are QEMU's 24Kc's (`Guests/tests/cp0_masks.c`, `cp0_reset.c`).

/// One CP0 register: its name, number and select, the bits MTC0 can change and its reset value.
public struct CP0Register: Sendable, Equatable {
    /// Where a register's value comes from.
    public enum Kind: Sendable, Equatable {
        /// Held in `CP0State`; MTC0 changes the `writeMask` bits.
        case stored
        /// Computed by its owner (Random, Count, PRId, Config1, Config3) or partly (Cause: IP, TI).
        case computed
        /// Always reads `resetValue` (Config2, Debug).
        case constant
        /// A register a 24Kc has (or QEMU models) that reads 0 here, whatever is written.
        case zero
    }

    public let name: String
    public let number: Int
    public let select: Int
    /// The bits MTC0 writes (the others keep their value); 0 for read-only registers.
    public let writeMask: UInt32
    public let resetValue: UInt32
    public let kind: Kind

    init(_ name: String, _ number: Int, _ select: Int, write: UInt32 = 0, reset: UInt32 = 0, _ kind: Kind = .stored) {
        self.name = name
        self.number = number
        self.select = select
        self.writeMask = write
        self.resetValue = reset
        self.kind = kind
    }

    /// (number, select), as `readCP0`/`writeCP0` take them.
    public var id: (Int, Int) { (number, select) }

    /// `value` after MTC0 of `written`: the writable bits from `written`, the rest kept.
    @inline(__always)
    public func merge(_ value: UInt32, _ written: UInt32) -> UInt32 {
        (value & ~writeMask) | (written & writeMask)
    }

    // Index: the index bits are bounded by the TLB size, P is read-only (see CP0State.write).
    public static let index = CP0Register("index", 0, 0, write: 0x3F)
    public static let random = CP0Register("random", 1, 0, .computed)
    public static let entryLo0 = CP0Register("entrylo0", 2, 0, write: 0x03FF_FFFF)
    public static let entryLo1 = CP0Register("entrylo1", 3, 0, write: 0x03FF_FFFF)
    /// PTEBase is writable; BadVPN2 is set by exceptions.
    public static let context = CP0Register("context", 4, 0, write: 0xFF80_0000)
    /// Only masks of 4 KiB × 4^k pages are kept (see CP0State.write).
    public static let pageMask = CP0Register("pagemask", 5, 0, write: 0x1FFF_E000)
    public static let pageGrain = CP0Register("pagegrain", 5, 1, .zero)
    // Segmentation control (Release 3), only with CPUConfiguration.segmentationControl; the
    // reset values give the legacy memory map.
    public static let segCtl0 = CP0Register("segctl0", 5, 2, write: 0xFE7F_FE7F, reset: 0x0020_0010)
    public static let segCtl1 = CP0Register("segctl1", 5, 3, write: 0xFE7F_FE7F, reset: 0x0003_0002)
    public static let segCtl2 = CP0Register("segctl2", 5, 4, write: 0xFE7F_FE7F, reset: 0x003B_043B)
    /// Wired is taken modulo the TLB size (see CP0State.write).
    public static let wired = CP0Register("wired", 6, 0, write: 0x3F)
    public static let hwrEna = CP0Register("hwrena", 7, 0, write: 0xF)
    public static let badVAddr = CP0Register("badvaddr", 8, 0)
    public static let count = CP0Register("count", 9, 0, write: 0xFFFF_FFFF, .computed)
    public static let entryHi = CP0Register("entryhi", 10, 0, write: 0xFFFF_E0FF)
    public static let compare = CP0Register("compare", 11, 0, write: 0xFFFF_FFFF)
    /// CU0, RE, BEV, TS, SR, NMI, IM7–0, KSU, ERL, EXL, IE (QEMU's 24Kc reads back 0x1278FF1F
    /// after writing all ones). Reset: BEV and ERL.
    public static let status = CP0Register("status", 12, 0, write: 0x1278_FF1F, reset: 0x0040_0004)
    public static let intCtl = CP0Register("intctl", 12, 1, write: 0x3E0, reset: 0xE000_0000)
    public static let srsCtl = CP0Register("srsctl", 12, 2, write: 0xF3C0)
    public static let srsMap = CP0Register("srsmap", 12, 3, write: 0xFFFF_FFFF)
    /// DC, IV, WP and the two software interrupts are writable (QEMU's 24Kc: 0x08C00300);
    /// IP7–2 and TI are added when read.
    public static let cause = CP0Register("cause", 13, 0, write: 0x08C0_0300)
    public static let epc = CP0Register("epc", 14, 0, write: 0xFFFF_FFFF)
    public static let prid = CP0Register("prid", 15, 0, reset: 0x0001_9300, .computed)
    public static let ebase = CP0Register("ebase", 15, 1, write: 0x3FFF_F000, reset: 0x8000_0000)
    public static let config0 = CP0Register("config", 16, 0, write: 0x7, reset: 0x8000_0482)
    /// Config1 of a 24Kc without FPU or MIPS16e; MMUSize-1 from the TLB size (16 entries: 0x9E190C8A).
    public static let config1 = CP0Register("config1", 16, 1, reset: 0x9E19_0C8A, .computed)
    public static let config2 = CP0Register("config2", 16, 2, reset: 0x8000_0000, .constant)
    /// Config3: SC (bit 25) with segmentation control, else 0.
    public static let config3 = CP0Register("config3", 16, 3, .computed)
    public static let llAddr = CP0Register("lladdr", 17, 0)
    public static let watchLo = CP0Register("watchlo", 18, 0, write: 0xFFFF_FFF8)
    public static let watchHi = CP0Register("watchhi", 19, 0, write: 0x40FF_0FF8, reset: 0x8000_0000)
    /// Debug as QEMU's 24Kc reads it.
    public static let debug = CP0Register("debug", 23, 0, reset: 0x0200_8000, .constant)
    public static let errCtl = CP0Register("errctl", 26, 0, write: 0x3000_0000)
    public static let tagLo = CP0Register("taglo", 28, 0, write: 0xFFFF_FCF6)
    public static let dataLo = CP0Register("datalo", 28, 1, write: 0xFFFF_FFFF)
    public static let errorEPC = CP0Register("errorepc", 30, 0, write: 0xFFFF_FFFF)
    public static let desave = CP0Register("desave", 31, 0, write: 0xFFFF_FFFF)
    /// Register 22 select 7: the VMM's hypercall register (Docs/hypercalls.md); reads 0 bare.
    public static let hypercall = CP0Register("hypercall", 22, 7, .zero)

    /// Every register with a name, in (number, select) order.
    public static let all: [CP0Register] = [
        index, random, entryLo0, entryLo1, context, pageMask, pageGrain, segCtl0, segCtl1, segCtl2, wired,
        hwrEna, badVAddr, count, entryHi, compare, status, intCtl, srsCtl, srsMap, cause, epc, prid, ebase,
        config0, config1, config2, config3, llAddr, watchLo, watchHi, hypercall, debug, errCtl, tagLo, dataLo,
        errorEPC, desave,
    ]

    /// Names for traces, the debugger and scripts, by (register, select); "config0" is another
    /// name of Config.
    public static let names: [String: (Int, Int)] = {
        var n: [String: (Int, Int)] = ["config0": config0.id]
        for r in all { n[r.name] = r.id }
        return n
    }()

    /// Whether (`number`, `select`) reads 0 without being in the table: registers or selects a
    /// 24Kc has (or QEMU models) that Magritte keeps at zero, as QEMU's 24Kc reads them
    /// (PageGrain, SRSConf, Config4–7, WatchLo/WatchHi 1–7, registers 21 and 22, DEPC,
    /// performance counters, CacheErr, the other TagLo/DataLo selects, TagHi/DataHi). Anything
    /// else a 24Kc lacks reads all ones, as on QEMU (pre-R6).
    public static func readsZero(_ number: Int, _ select: Int) -> Bool {
        switch (number, select) {
        case (5, 1), (6, 1...5), (16, 4...7), (18, _), (19, _), (21, _), (22, _), (24, 0), (25, _), (27, _), (28, _), (29, _):
            return true
        default:
            return false
        }
    }
}

/// Status register bits.
public enum StatusBits {
    public static let ie: UInt32 = 1 << 0
    public static let exl: UInt32 = 1 << 1
    public static let erl: UInt32 = 1 << 2
    public static let ksuShift: UInt32 = 3
    public static let ksuMask: UInt32 = 3 << 3
    /// KSU values (already shifted).
    public static let ksuSupervisor: UInt32 = 1 << 3
    public static let ksuUser: UInt32 = 2 << 3
    /// IM7–0 (the interrupt mask); IM7 is the timer's.
    public static let im: UInt32 = 0xFF00
    public static let im7: UInt32 = 1 << 15
    public static let bev: UInt32 = 1 << 22
    public static let cu0: UInt32 = 1 << 28
    public static var writable: UInt32 { CP0Register.status.writeMask }

    /// The mode `status` selects: kernel with EXL or ERL or KSU=0; KSU=3 (reserved) is user, as on QEMU.
    @inline(__always)
    public static func mode(_ status: UInt32) -> Mode {
        if status & (exl | erl) != 0 { return .kernel }
        switch (status & ksuMask) >> ksuShift {
        case 0: return .kernel
        case 1: return .supervisor
        default: return .user
        }
    }
}

/// Cause register bits.
public enum CauseBits {
    public static let bd: UInt32 = 1 << 31
    public static let ti: UInt32 = 1 << 30
    public static let ceShift: UInt32 = 28
    public static let ceMask: UInt32 = 3 << 28
    public static let dc: UInt32 = 1 << 27
    public static let iv: UInt32 = 1 << 23
    public static let excCodeShift: UInt32 = 2
    public static let excCodeMask: UInt32 = 0x1F << 2
    /// IP7, the timer's interrupt line.
    public static let ip7: UInt32 = 1 << 15
    /// IP2, the Malta's i8259 line (hardware line 0).
    public static let ip2: UInt32 = 1 << 10
    public static var writable: UInt32 { CP0Register.cause.writeMask }
}

extension ExceptionCode {
    /// TLB Modified, TLB Load or TLB Store: the exceptions of a failed TLB translation.
    public var isTLB: Bool { self == .tlbModified || self == .tlbLoad || self == .tlbStore }
}

/// EntryHi fields.
public enum EntryHiBits {
    /// VPN2: the virtual page pair (bits 31:13).
    public static let vpn2Mask: UInt32 = 0xFFFF_E000
    public static let asidMask: UInt32 = 0xFF
}

/// EntryLo0/1 fields.
public enum EntryLoBits {
    public static let global: UInt32 = 1 << 0
    public static let valid: UInt32 = 1 << 1
    public static let dirty: UInt32 = 1 << 2
    public static let cacheShift: UInt32 = 3
    /// C = 3: cacheable, noncoherent, write-back.
    public static let cacheable: UInt32 = 3 << 3
    public static let pfnShift: UInt32 = 6

    /// EntryLo mapping the 4 KiB frame at physical `address`.
    @inline(__always)
    public static func frame(_ address: UInt32) -> UInt32 { (address >> 12) << pfnShift }
    /// The physical address of EntryLo's frame.
    @inline(__always)
    public static func address(_ lo: UInt32) -> UInt32 { (lo >> pfnShift) << 12 }
}

/// What the owner of a CP0 state (the CPU, or the VMM for a guest) decides: the TLB size and
/// whether there is segmentation control.
public struct CP0Shape: Sendable, Equatable {
    public var tlbEntries: Int
    public var segmentationControl: Bool
    public var processorID: UInt32

    public init(tlbEntries: Int, segmentationControl: Bool = false, processorID: UInt32 = CP0Register.prid.resetValue) {
        self.tlbEntries = tlbEntries
        self.segmentationControl = segmentationControl
        self.processorID = processorID
    }
}

/// What the owner must do after an MTC0 (`CP0State.write`).
public enum CP0WriteEffect: Sendable, Equatable {
    case none
    /// Count was written: the owner restarts its counter from this value.
    case count(UInt32)
    /// Compare was written: the timer interrupt is acknowledged and rearmed.
    case compare
    /// Status was written (the mode, the interrupt enables or ERL may have changed).
    case status(old: UInt32)
    /// Cause was written (DC may stop or restart Count; software interrupts may be pending).
    case cause(old: UInt32)
    /// EntryHi was written; the ASID changed when `(old ^ new) & 0xFF != 0`.
    case entryHi(old: UInt32)
    /// A SegCtl register was written: the memory map changed.
    case segmentation
}

/// All of CP0 except Count (derived from the owner's cycle counter) and the TLB.
public struct CP0State: Sendable, Equatable {
    public var index: UInt32 = CP0Register.index.resetValue
    public var entryLo0: UInt32 = CP0Register.entryLo0.resetValue
    public var entryLo1: UInt32 = CP0Register.entryLo1.resetValue
    public var context: UInt32 = CP0Register.context.resetValue
    public var pageMask: UInt32 = CP0Register.pageMask.resetValue
    public var wired: UInt32 = CP0Register.wired.resetValue
    public var hwrEna: UInt32 = CP0Register.hwrEna.resetValue
    public var badVAddr: UInt32 = CP0Register.badVAddr.resetValue
    public var entryHi: UInt32 = CP0Register.entryHi.resetValue
    public var compare: UInt32 = CP0Register.compare.resetValue
    public var status: UInt32 = CP0Register.status.resetValue
    public var intCtl: UInt32 = CP0Register.intCtl.resetValue
    public var srsCtl: UInt32 = CP0Register.srsCtl.resetValue
    /// Cause as software wrote it plus ExcCode/BD/CE; IP7–2 and TI are added when read.
    public var cause: UInt32 = CP0Register.cause.resetValue
    public var epc: UInt32 = CP0Register.epc.resetValue
    public var ebase: UInt32 = CP0Register.ebase.resetValue
    public var config0: UInt32 = CP0Register.config0.resetValue
    public var errorEPC: UInt32 = CP0Register.errorEPC.resetValue
    public var llAddr: UInt32 = CP0Register.llAddr.resetValue
    public var segCtl0: UInt32 = CP0Register.segCtl0.resetValue
    public var segCtl1: UInt32 = CP0Register.segCtl1.resetValue
    public var segCtl2: UInt32 = CP0Register.segCtl2.resetValue
    // Registers that only hold what software writes (no effect on the CPU).
    public var srsMap: UInt32 = CP0Register.srsMap.resetValue
    public var watchLo: UInt32 = CP0Register.watchLo.resetValue
    public var watchHi: UInt32 = CP0Register.watchHi.resetValue
    public var errCtl: UInt32 = CP0Register.errCtl.resetValue
    public var tagLo: UInt32 = CP0Register.tagLo.resetValue
    public var dataLo: UInt32 = CP0Register.dataLo.resetValue
    public var desave: UInt32 = CP0Register.desave.resetValue

    public init() {}

    /// The mode Status selects.
    public var mode: Mode { StatusBits.mode(status) }

    /// The current address space (EntryHi.ASID).
    public var asid: UInt8 { UInt8(truncatingIfNeeded: entryHi) }

    /// The physical address of `va` where a CPU without segmentation control does not map
    /// it: kseg0 and kseg1 always, kuseg while Status.ERL is set. Nil: it goes through the TLB
    /// (or is an address error for the mode).
    @inline(__always)
    public func unmappedPhysical(_ va: UInt32) -> UInt32? {
        if va >= 0x8000_0000 && va < 0xC000_0000 { return va & 0x1FFF_FFFF }
        if va < 0x8000_0000 && status & StatusBits.erl != 0 { return va }
        return nil
    }

    // MARK: MFC0 and MTC0

    /// MFC0 of every register whose value this state holds, or which is fixed. The owner
    /// answers Random, Count, LLAddr and Cause's IP/TI bits itself (they depend on its time,
    /// memory and interrupt lines) and reads the rest here.
    public func read(_ reg: Int, _ sel: Int, shape: CP0Shape) -> UInt32 {
        let sc = shape.segmentationControl
        switch (reg, sel) {
        case (0, 0): return index
        case (2, 0): return entryLo0
        case (3, 0): return entryLo1
        case (4, 0): return context
        case (5, 0): return pageMask
        case (5, 2) where sc: return segCtl0
        case (5, 3) where sc: return segCtl1
        case (5, 4) where sc: return segCtl2
        case (6, 0): return wired
        case (7, 0): return hwrEna
        case (8, 0): return badVAddr
        case (10, 0): return entryHi
        case (11, 0): return compare
        case (12, 0): return status
        case (12, 1): return intCtl
        case (12, 2): return srsCtl
        case (12, 3): return srsMap
        case (13, 0): return cause
        case (14, 0): return epc
        case (15, 0): return shape.processorID
        case (15, 1): return ebase
        case (16, 0): return config0
        case (16, 1): return CP0State.config1(tlbEntries: shape.tlbEntries)
        case (16, 2): return CP0Register.config2.resetValue
        case (16, 3): return sc ? 1 << 25 : 0
        case (17, 0): return llAddr
        case (18, 0): return watchLo
        case (19, 0): return watchHi
        case (23, 0): return CP0Register.debug.resetValue
        case (26, 0): return errCtl
        case (28, 0): return tagLo
        case (28, 1): return dataLo
        case (30, 0): return errorEPC
        case (31, 0): return desave
        case let (r, s) where CP0Register.readsZero(r, s): return 0
        default:
            // Reading a register the CPU does not have is UNDEFINED; QEMU (pre-R6) reads all ones.
            return 0xFFFF_FFFF
        }
    }

    /// Config1 for a TLB of `tlbEntries` entries.
    public static func config1(tlbEntries: Int) -> UInt32 {
        (1 << 31) | UInt32(tlbEntries - 1) << 25 | CP0Register.config1.resetValue & 0x01FF_FFFF
    }

    /// MTC0 with the 24Kc's write masks. Count is not stored here: `.count(v)` tells the owner.
    public mutating func write(_ reg: Int, _ sel: Int, _ v: UInt32, shape: CP0Shape) -> CP0WriteEffect {
        let sc = shape.segmentationControl
        switch (reg, sel) {
        case (0, 0):
            // As QEMU: an index beyond the TLB leaves Index unchanged; P is read-only.
            let i = v & 0x7FFF_FFFF
            if i < UInt32(shape.tlbEntries) { index = (index & 0x8000_0000) | i }
        case (2, 0): entryLo0 = CP0Register.entryLo0.merge(entryLo0, v)
        case (3, 0): entryLo1 = CP0Register.entryLo1.merge(entryLo1, v)
        case (4, 0): context = CP0Register.context.merge(context, v)
        case (5, 0):
            // Page sizes are 4 KiB × 4^k: the mask must be an even run of ones from bit 13.
            // Anything else selects 4 KiB pages (as QEMU's 24Kc).
            let m = (v & CP0Register.pageMask.writeMask) >> 13
            pageMask = m & (m &+ 1) == 0 && m.nonzeroBitCount % 2 == 0 ? m << 13 : 0
        case (5, 2) where sc: segCtl0 = CP0Register.segCtl0.merge(segCtl0, v); return .segmentation
        case (5, 3) where sc: segCtl1 = CP0Register.segCtl1.merge(segCtl1, v); return .segmentation
        case (5, 4) where sc: segCtl2 = CP0Register.segCtl2.merge(segCtl2, v); return .segmentation
        case (6, 0): wired = v % UInt32(shape.tlbEntries)
        case (7, 0): hwrEna = CP0Register.hwrEna.merge(hwrEna, v)
        case (9, 0): return .count(v)
        case (10, 0):
            let old = entryHi
            entryHi = CP0Register.entryHi.merge(entryHi, v)
            return .entryHi(old: old)
        case (11, 0): compare = v; return .compare
        case (12, 0):
            let old = status
            status = CP0Register.status.merge(status, v)
            return .status(old: old)
        case (12, 1): intCtl = CP0Register.intCtl.merge(intCtl, v)
        case (12, 2): srsCtl = CP0Register.srsCtl.merge(srsCtl, v)
        case (12, 3): srsMap = v
        case (13, 0):
            let old = cause
            cause = CP0Register.cause.merge(cause, v)
            return .cause(old: old)
        case (14, 0): epc = v
        case (15, 1): ebase = CP0Register.ebase.merge(ebase, v)
        case (16, 0): config0 = CP0Register.config0.merge(config0, v)
        case (18, 0): watchLo = CP0Register.watchLo.merge(watchLo, v)
        case (19, 0): watchHi = CP0Register.watchHi.merge(watchHi, v)
        case (26, 0): errCtl = CP0Register.errCtl.merge(errCtl, v)
        case (28, 0): tagLo = CP0Register.tagLo.merge(tagLo, v)
        case (28, 1): dataLo = v
        case (30, 0): errorEPC = v
        case (31, 0): desave = v
        default: break  // read-only or unimplemented: ignored
        }
        return .none
    }

    /// Cause as software reads it: the stored bits plus the hardware lines IP7–2 (`hardwareIP`)
    /// and, while the timer interrupt is pending, TI and IP7.
    @inline(__always)
    public func causeAsRead(hardwareIP: UInt32, timerPending: Bool) -> UInt32 {
        cause | hardwareIP | (timerPending ? CauseBits.ti | CauseBits.ip7 : 0)
    }

    // MARK: Exceptions

    /// Takes `trap` as the MIPS32 manual's exception pseudocode says, with QEMU's choice where it
    /// leaves things UNPREDICTABLE: BadVAddr from the address; after a failed translation (a TLB
    /// exception, or an address error because the mode may not use the segment) also
    /// EntryHi.VPN2 (the ASID kept) and Context.BadVPN2, while a misaligned access changes
    /// neither; EPC and Cause.BD unless EXL was set; ExcCode; CE only for Coprocessor Unusable
    /// (otherwise it keeps its old value, as on QEMU); Status.EXL. Returns the vector: the refill
    /// vector for a TLB refill with EXL clear, the special interrupt vector with Cause.IV, the
    /// general one otherwise; based at 0xBFC00200 with Status.BEV, else at EBase.
    public mutating func enterException(_ trap: Trap) -> UInt32 {
        if let va = trap.badVAddr {
            badVAddr = va
            if trap.isTranslationFault {
                context = (context & 0xFF80_0000) | ((va >> 9) & 0x007F_FFF0)
                entryHi = (va & 0xFFFF_E000) | (entryHi & 0xFF)
            }
        }
        let exl = status & StatusBits.exl != 0
        if !exl {
            epc = trap.restartPC
            if trap.inDelaySlot { cause |= CauseBits.bd } else { cause &= ~CauseBits.bd }
        }
        cause = (cause & ~CauseBits.excCodeMask) | UInt32(trap.code.rawValue) << CauseBits.excCodeShift
        if trap.code == .coprocessorUnusable {
            cause = (cause & ~CauseBits.ceMask) | (trap.coprocessor & 3) << CauseBits.ceShift
        }
        let offset: UInt32
        if trap.isRefill && !exl {
            offset = 0x000
        } else if trap.code == .interrupt && cause & CauseBits.iv != 0 {
            offset = 0x200
        } else {
            offset = 0x180
        }
        let base: UInt32 = status & StatusBits.bev != 0 ? 0xBFC0_0200 : ebase & 0xFFFF_F000
        status |= StatusBits.exl
        return base &+ offset
    }

    /// ERET: leaves error level (to ErrorEPC) if ERL is set, else exception level (to EPC).
    /// Returns the target and whether it was ERL that cleared.
    public mutating func returnFromException() -> (target: UInt32, leftErrorLevel: Bool) {
        if status & StatusBits.erl != 0 {
            status &= ~StatusBits.erl
            return (errorEPC, true)
        }
        status &= ~StatusBits.exl
        return (epc, false)
    }

    // MARK: TLB instructions (over the owner's entry array, TLB.swift)

    /// The entry TLBWI writes: Index modulo the TLB size.
    public func indexedEntry(tlbEntries: Int) -> Int {
        Int((index & 0x7FFF_FFFF) % UInt32(tlbEntries))
    }

    /// The entry TLBWI/TLBWR write, from EntryHi, PageMask and EntryLo0/1.
    public var entryToWrite: TLBEntry {
        TLBEntry(entryHi: entryHi, pageMask: pageMask, entryLo0: entryLo0, entryLo1: entryLo1)
    }

    /// TLBR: loads EntryHi, PageMask and EntryLo0/1 from `e`. Returns whether the ASID changed.
    @discardableResult
    public mutating func load(_ e: TLBEntry) -> Bool {
        let asidChanged = (entryHi ^ e.entryHi) & 0xFF != 0
        entryHi = e.entryHi
        pageMask = e.pageMask
        entryLo0 = e.entryLo0
        entryLo1 = e.entryLo1
        return asidChanged
    }

    /// TLBP: Index becomes the matching entry, or gets P set (its other bits kept, as on QEMU).
    public mutating func probe(_ tlb: UnsafeBufferPointer<TLBEntry>) {
        probe(found: TLBEntry.probe(tlb, entryHi: entryHi))
    }

    /// TLBP with the matching entry already found (the CPU's TLB index).
    mutating func probe(found: Int?) {
        if let i = found {
            index = UInt32(i)
        } else {
            index |= 0x8000_0000
        }
    }

    public mutating func probe(_ tlb: [TLBEntry]) {
        tlb.withUnsafeBufferPointer { probe($0) }
    }
}

/// The Count/Compare timer: Count = base + (now − epoch) / ratio while Cause.DC is clear.
/// `now` is the owner's time base (the CPU's cycles; the VMM's machine time).
public enum CountTimer {
    /// Count at `now`.
    @inline(__always)
    public static func count(base: UInt32, epoch: UInt64, now: UInt64, ratio: UInt64, stopped: Bool) -> UInt32 {
        stopped ? base : base &+ UInt32(truncatingIfNeeded: (now &- epoch) / ratio)
    }

    /// The first time after `now` at which Count equals `compare` (a full wrap when it equals
    /// it now).
    public static func nextMatch(base: UInt32, epoch: UInt64, now: UInt64, ratio: UInt64, compare: UInt32) -> UInt64 {
        let ticks = (now &- epoch) / ratio
        let count = base &+ UInt32(truncatingIfNeeded: ticks)
        var delta = UInt64(compare &- count)
        if delta == 0 { delta = 1 << 32 }
        return epoch &+ (ticks &+ delta) &* ratio
    }

}
