import Testing
@testable import MagritteCore

/// The CP0 rules shared by the CPU and the VMM's virtual CPUs (CP0.swift, TLB.swift). The
/// values after an exception are QEMU's (Guests/tests/expected/addr_error_regs.txt).
@Suite struct CP0RulesTests {
    static let shape = CP0Shape(tlbEntries: 16)

    @Test func registerTableHasOneEntryPerRegisterAndName() {
        let ids = CP0Register.all.map { $0.number * 8 + $0.select }
        #expect(Set(ids).count == ids.count, "two table entries share a (number, select)")
        #expect(Set(CP0Register.all.map(\.name)).count == CP0Register.all.count, "two table entries share a name")
        for r in CP0Register.all {
            #expect(CP0Register.names[r.name]! == r.id)
            #expect((0..<32).contains(r.number) && (0..<8).contains(r.select), "\(r.name)")
        }
        #expect(CP0Register.names["config0"]! == CP0Register.config0.id)
    }

    @Test func aFreshStateReadsTheTablesResetValues() {
        let sc = CP0Shape(tlbEntries: 16, segmentationControl: true)
        let state = CP0State()
        for r in CP0Register.all where r.kind == .stored || r.kind == .constant || r.kind == .zero {
            #expect(state.read(r.number, r.select, shape: sc) == r.resetValue, "\(r.name)")
        }
        #expect(state.read(CP0Register.prid.number, 0, shape: sc) == CP0Register.prid.resetValue)
        #expect(state.read(16, 1, shape: Self.shape) == CP0Register.config1.resetValue)
        // No segmentation control: SegCtl does not exist and reads all ones, Config3.SC is clear.
        #expect(state.read(5, 2, shape: Self.shape) == 0xFFFF_FFFF)
        #expect(state.read(16, 3, shape: Self.shape) == 0)
        #expect(state.read(16, 3, shape: sc) == 1 << 25)
        #expect(state.read(20, 0, shape: Self.shape) == 0xFFFF_FFFF)
    }

    /// MTC0 changes exactly the table's write mask of each register stored in CP0State (Index,
    /// Wired and PageMask have rules of their own, tested below).
    @Test func mtc0ChangesExactlyTheWriteMask() {
        let sc = CP0Shape(tlbEntries: 16, segmentationControl: true)
        let special = [CP0Register.index, .wired, .pageMask, .count]
        for r in CP0Register.all where r.kind == .stored && !special.contains(r) {
            var s = CP0State()
            _ = s.write(r.number, r.select, 0xFFFF_FFFF, shape: sc)
            #expect(s.read(r.number, r.select, shape: sc) == r.resetValue | r.writeMask, "\(r.name) after writing ones")
            _ = s.write(r.number, r.select, 0, shape: sc)
            #expect(s.read(r.number, r.select, shape: sc) == r.resetValue & ~r.writeMask, "\(r.name) after writing zeros")
        }
    }

    @Test func indexWiredAndPageMaskFollowTheTLBSize() {
        var s = CP0State()
        _ = s.write(0, 0, 0x8000_0005, shape: Self.shape)
        #expect(s.index == 5, "Index.P is read-only")
        _ = s.write(0, 0, 16, shape: Self.shape)
        #expect(s.index == 5, "an index beyond the TLB leaves Index unchanged")
        _ = s.write(6, 0, 17, shape: Self.shape)
        #expect(s.wired == 1)
        _ = s.write(5, 0, 0x0000_6000, shape: Self.shape)
        #expect(s.pageMask == 0x6000, "16 KiB pages")
        _ = s.write(5, 0, 0x0000_2000, shape: Self.shape)
        #expect(s.pageMask == 0, "an odd run of ones selects 4 KiB pages")
    }

    @Test func mtc0ReportsWhatTheOwnerMustDo() {
        var s = CP0State()
        #expect(s.write(9, 0, 1234, shape: Self.shape) == .count(1234))
        #expect(s.write(11, 0, 5, shape: Self.shape) == .compare)
        #expect(s.write(12, 0, 0x10, shape: Self.shape) == .status(old: CP0Register.status.resetValue))
        #expect(s.write(10, 0, 0x1234_5677, shape: Self.shape) == .entryHi(old: 0))
        #expect(s.entryHi == 0x1234_4077)
        #expect(s.write(5, 2, 0, shape: Self.shape) == .none, "no SegCtl without segmentation control")
        #expect(s.write(5, 2, 0, shape: CP0Shape(tlbEntries: 16, segmentationControl: true)) == .segmentation)
    }

    // MARK: Exception entry

    /// A state as Guests/tests/addr_error_regs.c sets it up before each probe.
    func prepared() -> CP0State {
        var s = CP0State()
        s.status = 0x0000_0010  // user mode, EXL clear, BEV clear
        s.ebase = 0x8000_0000
        s.entryHi = 0x00FF_E02A
        s.context = 0x7F80_0000
        return s
    }

    @Test func anAddressErrorFromTheSegmentSetsEntryHiAndContextAsQEMU() {
        var s = prepared()
        let v = s.enterException(Trap(code: .addressErrorLoad, pc: 0x0010_0018, inDelaySlot: false, badVAddr: 0x8012_3458,
                                      isTranslationFault: true))
        #expect(v == 0x8000_0180)
        #expect(s.badVAddr == 0x8012_3458)
        #expect(s.entryHi == 0x8012_202A)  // QEMU: entryhi=8012202a
        #expect(s.context == 0x7FC0_0910)  // QEMU: context=7fc00910
        #expect(s.epc == 0x0010_0018)
        #expect(s.cause & CauseBits.excCodeMask == 4 << 2)
        #expect(s.status & StatusBits.exl != 0)
    }

    @Test func aMisalignedAccessSetsOnlyBadVAddr() {
        var s = prepared()
        _ = s.enterException(Trap(code: .addressErrorStore, pc: 0x0010_0018, inDelaySlot: false, badVAddr: 0x0010_0001))
        #expect(s.badVAddr == 0x0010_0001)
        #expect(s.entryHi == 0x00FF_E02A)
        #expect(s.context == 0x7F80_0000)
        #expect(s.cause & CauseBits.excCodeMask == 5 << 2)
    }

    @Test func vectorsFollowBEVEBaseIVRefillAndEXL() {
        func vector(_ code: ExceptionCode, status: UInt32, ebase: UInt32 = 0x8004_0000, iv: Bool = false, refill: Bool = false) -> UInt32 {
            var s = CP0State()
            s.status = status
            s.ebase = ebase
            if iv { s.cause |= CauseBits.iv }
            return s.enterException(Trap(code: code, pc: 0x8010_0000, inDelaySlot: false, badVAddr: refill ? 0x1000 : nil,
                                         isRefill: refill, isTranslationFault: refill))
        }
        #expect(vector(.syscall, status: StatusBits.bev) == 0xBFC0_0380)
        #expect(vector(.tlbLoad, status: StatusBits.bev, refill: true) == 0xBFC0_0200)
        #expect(vector(.interrupt, status: StatusBits.bev, iv: true) == 0xBFC0_0400)
        #expect(vector(.syscall, status: 0) == 0x8004_0180)
        #expect(vector(.tlbStore, status: 0, refill: true) == 0x8004_0000)
        #expect(vector(.tlbStore, status: StatusBits.exl, refill: true) == 0x8004_0180, "a refill at EXL=1 uses the general vector")
        #expect(vector(.interrupt, status: 0) == 0x8004_0180)
        #expect(vector(.interrupt, status: 0, iv: true) == 0x8004_0200)
        #expect(vector(.syscall, status: 0, ebase: 0x8004_0FFF) == 0x8004_0180, "EBase bits 11:0 are not part of the base")
    }

    @Test func epcAndBDOnlyChangeWithEXLClearAndCEOnlyForCpU() {
        var s = CP0State()
        s.status = 0
        s.cause = 2 << CauseBits.ceShift
        _ = s.enterException(Trap(code: .breakpoint, pc: 0x8010_0004, inDelaySlot: true))
        #expect(s.epc == 0x8010_0000 && s.cause & CauseBits.bd != 0)
        #expect(s.cause & CauseBits.ceMask == 2 << CauseBits.ceShift, "CE keeps its value for other exceptions")
        _ = s.enterException(Trap(code: .coprocessorUnusable, pc: 0x8020_0000, inDelaySlot: false, coprocessor: 1))
        #expect(s.epc == 0x8010_0000 && s.cause & CauseBits.bd != 0, "EXL was set: EPC and BD stay")
        #expect(s.cause & CauseBits.ceMask == 1 << CauseBits.ceShift)
        let r1 = s.returnFromException()
        #expect(r1.target == 0x8010_0000 && !r1.leftErrorLevel)
        #expect(s.status & StatusBits.exl == 0)
        s.status |= StatusBits.erl
        s.errorEPC = 0xBFC0_0000
        let r2 = s.returnFromException()
        #expect(r2.target == 0xBFC0_0000 && r2.leftErrorLevel)
    }

    // MARK: Timer and TLB

    @Test func countTimerMatchesCompareAndWrapsWhenEqual() {
        #expect(CountTimer.count(base: 10, epoch: 100, now: 120, ratio: 2, stopped: false) == 20)
        #expect(CountTimer.count(base: 10, epoch: 100, now: 120, ratio: 2, stopped: true) == 10)
        #expect(CountTimer.nextMatch(base: 10, epoch: 100, now: 120, ratio: 2, compare: 25) == 130)
        #expect(CountTimer.nextMatch(base: 10, epoch: 100, now: 120, ratio: 2, compare: 20) == 120 + (1 << 33))
        #expect(CountTimer.nextMatch(base: 0xFFFF_FFFF, epoch: 0, now: 0, ratio: 1, compare: 1) == 2, "Count wraps")
    }

    @Test func tlbLookupProbeAndReadAreOneRule() {
        var tlb = [TLBEntry](repeating: TLBEntry(), count: 4)
        // 0x00400000/0x00401000 → 0x01000000 (dirty) / invalid, ASID 5; a global 16 KiB pair at 0x10000000.
        tlb[1] = TLBEntry(entryHi: 0x0040_0005, pageMask: 0, entryLo0: (0x0100_0000 >> 12) << 6 | 0x6, entryLo1: 0)
        tlb[2] = TLBEntry(entryHi: 0x1000_0000, pageMask: 0x6000, entryLo0: (0x0200_0000 >> 12) << 6 | 0x3, entryLo1: 0x3)
        #expect(TLBEntry.lookup(tlb, 0x0040_0123, asid: 5) == .mapped(physical: 0x0100_0123, dirty: true))
        #expect(TLBEntry.lookup(tlb, 0x0040_1123, asid: 5) == .invalid)
        #expect(TLBEntry.lookup(tlb, 0x0040_0123, asid: 6) == .miss)
        #expect(TLBEntry.lookup(tlb, 0x1000_3FFC, asid: 9) == .mapped(physical: 0x0200_3FFC, dirty: false))
        var s = CP0State()
        s.entryHi = 0x1000_2009
        s.probe(tlb)
        #expect(s.index == 2)
        s.entryHi = 0x0040_0006
        s.probe(tlb)
        #expect(s.index == 0x8000_0002, "a miss sets P and keeps the index bits")
        s.index = 1
        let asidChanged = s.load(tlb[s.indexedEntry(tlbEntries: tlb.count)])
        #expect(asidChanged, "the ASID changed")
        #expect(s.entryHi == 0x0040_0005 && s.entryToWrite == tlb[1])
        #expect(TLBEntry.random(now: 7, tlbEntries: 16, wired: 15) == 15)
        #expect((3...15).contains(TLBEntry.random(now: 12345, tlbEntries: 16, wired: 3)))
    }
}
