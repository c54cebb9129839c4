import Testing
@testable import MagritteCore

/// The CPU's TLB index (TLB.swift) against the linear scan it replaces (`TLBEntry.lookup`): the
/// same entry, hence the same translation, for random TLB contents and addresses.
@Suite struct TLBIndexTests {
    /// The disassembler tests' SplitMix64: the same contents for the same seed on every host.
    typealias Generator = DisassemblerTests.SplitMix64

    /// Every page size of the 24Kc, and masks of arbitrary bits (the index must not assume one).
    static let pageMasks: [UInt32] = [0, 0x6000, 0x1_E000, 0x7_E000, 0x1F_E000, 0x7F_E000, 0x1FF_E000, 0x7FF_E000, 0x1FFF_E000]
    static let asids: [UInt8] = [0, 1, 2, 0xFF]

    /// A random entry whose VPN2 comes from a small pool (entries overlap, repeat, differ only
    /// in ASID or size), with random G and V bits; sometimes the reset value.
    static func randomEntry(_ g: inout Generator, vpns: [UInt32]) -> TLBEntry {
        if g.below(10) == 0 { return TLBEntry() }
        let mask = g.below(8) == 0 ? g.word() & 0x1FFF_E000 : pageMasks[g.below(pageMasks.count)]
        let hi = (vpns[g.below(vpns.count)] ^ (g.below(4) == 0 ? g.word() & 0x1FFF_E000 : 0)) & 0xFFFF_E000
        let global: UInt32 = g.below(4) == 0 ? 1 : 0
        let lo0 = g.word() & 0x03FF_FFFE & ~(g.below(5) == 0 ? 2 : 0) | global
        let lo1 = g.word() & 0x03FF_FFFE & ~(g.below(5) == 0 ? 2 : 0) | global
        return TLBEntry(entryHi: hi | UInt32(asids[g.below(asids.count)]), pageMask: mask, entryLo0: lo0, entryLo1: lo1)
    }

    /// An address near an entry of `tlb` (inside its pair, in the other page, just outside it)
    /// or anywhere.
    static func randomAddress(_ g: inout Generator, _ tlb: [TLBEntry]) -> UInt32 {
        if g.below(8) == 0 { return g.word() }
        let e = tlb[g.below(tlb.count)]
        let span = e.pageSize &* 2
        var va = e.vpn2 &+ (g.word() & (span &- 1))
        if g.below(4) == 0 { va ^= 1 << UInt32(13 + g.below(19)) }  // flips one VPN2 bit
        return va
    }

    /// 60 random TLBs of `counts` entries, each written 40 times at random (as TLBWI/TLBWR do;
    /// sometimes a wholesale rebuild: reset, restore); `check` runs after each write.
    static func randomWrites(seed: UInt64, counts: [Int], _ check: (inout Generator, [TLBEntry], UnsafeBufferPointer<TLBEntry>, TLBIndex, [UInt32]) -> Void) {
        var g = Generator(state: seed)
        for _ in 0..<60 {
            let count = counts[g.below(counts.count)]
            let vpns = (0..<(1 + g.below(12))).map { _ in g.word() & 0xFFFF_E000 }
            var tlb = (0..<count).map { _ in Self.randomEntry(&g, vpns: vpns) }
            let index = TLBIndex()
            defer { index.deallocate() }
            tlb.withUnsafeBufferPointer { index.rebuild($0) }
            for _ in 0..<40 {
                let i = g.below(count), new = Self.randomEntry(&g, vpns: vpns)
                index.replace(i, old: tlb[i], new: new)
                tlb[i] = new
                if g.below(20) == 0 { tlb.withUnsafeBufferPointer { index.rebuild($0) } }
                tlb.withUnsafeBufferPointer { check(&g, tlb, $0, index, vpns) }
            }
        }
    }

    @Test(arguments: [1, 2, 3]) func indexedLookupIsTheLinearScan(seed: UInt64) {
        var checked = 0, hits = 0
        Self.randomWrites(seed: seed, counts: [1, 2, 16, 33, 64]) { g, tlb, buffer, index, _ in
            for _ in 0..<25 {
                let va = Self.randomAddress(&g, tlb), asid = Self.asids[g.below(Self.asids.count)]
                let linear = TLBEntry.lookup(buffer, va, asid: asid)
                let indexed = index.lookup(buffer, va, asid: asid)
                let first = buffer.firstIndex { $0.matches(va, asid: asid) }
                #expect(indexed == linear, "va \(Hex.prefixed(va)) asid \(asid): \(indexed) against \(linear)")
                #expect(index.firstMatch(buffer, va, asid: asid) == first, "va \(Hex.prefixed(va)) asid \(asid)")
                checked += 1
                if first != nil { hits += 1 }
            }
        }
        // The addresses must exercise both outcomes, else the comparison proves little.
        #expect(checked == 60 * 40 * 25)
        #expect(hits > checked / 5 && hits < checked * 4 / 5, "\(hits) of \(checked) addresses matched an entry")
    }

    /// `overlapping` (the VMM's installs and guest TLB writes) finds what a scan with
    /// `TLBEntry.overlaps` finds, for entries of every size against pairs larger and smaller
    /// than theirs and masks of arbitrary bits.
    @Test(arguments: [4, 5]) func overlappingIsTheScan(seed: UInt64) {
        var nonEmpty = 0
        Self.randomWrites(seed: seed, counts: [3, 16, 64]) { g, tlb, buffer, index, vpns in
            for _ in 0..<10 {
                let probe = Self.randomEntry(&g, vpns: vpns)
                var scan: UInt64 = 0
                for j in tlb.indices where tlb[j].overlaps(probe) { scan |= 1 << UInt64(j) }
                #expect(index.overlapping(buffer, probe) == scan, "\(probe)")
                if scan != 0 { nonEmpty += 1 }
            }
        }
        #expect(nonEmpty > 60 * 40 * 10 / 5, "\(nonEmpty) probes overlapped an entry")
    }

    /// Several entries match one address: the first (lowest index) decides, as in the scan.
    @Test func theFirstOfSeveralMatchingEntriesDecides() {
        let index = TLBIndex()
        defer { index.deallocate() }
        var tlb = [TLBEntry](repeating: TLBEntry(), count: 8)
        let big = TLBEntry(entryHi: 0xC000_0000, pageMask: 0x1FF_E000, entryLo0: 0x0000_0007, entryLo1: 0x0000_0047)
        let small = TLBEntry(entryHi: 0xC000_2000, pageMask: 0, entryLo0: 0x0000_1007, entryLo1: 0x0000_1047)
        tlb[5] = big
        tlb[3] = small
        tlb.withUnsafeBufferPointer { index.rebuild($0) }
        tlb.withUnsafeBufferPointer { b in
            #expect(index.firstMatch(b, 0xC000_2010, asid: 0) == 3)
            #expect(index.lookup(b, 0xC000_2010, asid: 0) == .mapped(physical: 0x0004_0010, dirty: true))  // PFN 0x40 of entry 3, not entry 5's 0x2010
            #expect(index.firstMatch(b, 0xC000_4010, asid: 0) == 5)
        }
        // Entry 3 is rewritten elsewhere: the big page now decides for that address.
        let moved = TLBEntry(entryHi: 0xD000_0000, pageMask: 0, entryLo0: 0, entryLo1: 0)
        index.replace(3, old: tlb[3], new: moved)
        tlb[3] = moved
        tlb.withUnsafeBufferPointer { b in
            #expect(index.firstMatch(b, 0xC000_2010, asid: 0) == 5)
            #expect(index.firstMatch(b, 0xD000_0010, asid: 0) == 3)
            #expect(index.lookup(b, 0xD000_0010, asid: 0) == .invalid)
        }
    }

    /// A TLB write forgets the software TLB's translations it changes and keeps the others: a
    /// new entry that hides an earlier one's page, the old entry's pages; not the pages of an
    /// entry of another ASID, nor of a write that overlaps nothing of the current ASID.
    @Test func aTLBWriteForgetsOnlyTheTranslationsItChanges() {
        let bus = TestBus()
        let cpu = CPU(bus: bus)
        cpu.setStatus(0)  // kernel mode, ERL clear: useg through the TLB
        for (frame, value) in [(0x100, 0x1111_1111), (0x200, 0x2222_2222), (0x300, 0x3333_3333)] as [(Int, UInt32)] {
            bus.ram.storeBytes(of: value, toByteOffset: frame << 12, as: UInt32.self)
        }
        let va: UInt32 = 0x0040_0000
        func pair(_ hi: UInt32, _ frame: UInt32) -> TLBEntry {
            TLBEntry(entryHi: hi, pageMask: 0, entryLo0: frame << 6 | 0x6, entryLo1: (frame + 1) << 6 | 0x6)
        }
        func cached(_ v: UInt32) -> Bool { cpu.currentSoftTLB[Int((v >> 12) & 255)].tag == v & 0xFFFF_F000 }
        cpu.setTLBEntry(5, pair(va, 0x100))
        #expect(cpu.slowLoad(va, size: 4, pc: 0, delay: false) == 0x1111_1111)
        #expect(cached(va))
        // Another ASID's entry over the same page, and an entry elsewhere: the translation stays.
        cpu.setTLBEntry(2, pair(va | 7, 0x200))
        cpu.setTLBEntry(3, pair(0x0080_0000, 0x300))
        #expect(cached(va))
        // An entry of this ASID before it hides it: forgotten, the load sees the new frame.
        cpu.setTLBEntry(1, pair(va, 0x200))
        #expect(!cached(va))
        #expect(cpu.slowLoad(va, size: 4, pc: 0, delay: false) == 0x2222_2222)
        // The hiding entry goes (its old pages forgotten): entry 5 decides again.
        cpu.setTLBEntry(1, TLBEntry())
        #expect(!cached(va))
        #expect(cpu.slowLoad(va, size: 4, pc: 0, delay: false) == 0x1111_1111)
        // A large pair of this ASID over it (a scan by range): forgotten too, another page kept.
        #expect(cpu.slowLoad(0x0080_0000, size: 4, pc: 0, delay: false) == 0x3333_3333)
        cpu.setTLBEntry(0, TLBEntry(entryHi: 0, pageMask: 0x1FF_E000, entryLo0: 0x6, entryLo1: 0x4006))
        #expect(!cached(va))
        #expect(cached(0x0080_0000) == false)  // 0x800000 is inside the 16 MiB pair too
        #expect(cpu.slowLoad(va, size: 4, pc: 0, delay: false) == bus.ram.load(fromByteOffset: Int(va), as: UInt32.self))
    }

    /// The CPU keeps its index through every write of its TLB: setTLBEntry (the VMM's and
    /// debuggers' writes; TLBWI/TLBWR take the same path), reset and snapshot restore; TLBP
    /// uses the same index.
    @Test func theCPUsTranslationFollowsEveryTLBWrite() throws {
        let bus = TestBus()
        let cpu = CPU(bus: bus)
        var g = Generator(state: 7)
        let vpns = (0..<6).map { _ in 0xC000_0000 | (g.word() & 0x1FFF_E000) }
        func check(_ label: String) {
            let tlb = (0..<cpu.configuration.tlbEntries).map { cpu.tlbEntry($0) }
            for _ in 0..<200 {
                let va = 0xC000_0000 | (Self.randomAddress(&g, tlb) & 0x1FFF_FFFF)  // kseg2: mapped in kernel mode
                let expected: UInt32? = switch TLBEntry.lookup(tlb, va, asid: cpu.cp0.asid) {
                case .mapped(let pa, _): pa
                default: nil
                }
                #expect(cpu.physicalAddress(of: va) == expected, "\(label): va \(Hex.prefixed(va))")
            }
            // TLBP finds the same entry as the scan (or sets P, keeping Index's other bits).
            for _ in 0..<50 {
                cpu.cp0.entryHi = 0xC000_0000 | (Self.randomAddress(&g, tlb) & 0x1FFF_E000) | UInt32(Self.asids[g.below(Self.asids.count)])
                cpu.cp0.index = g.word() & 0x8000_003F
                var linear = cpu.cp0
                linear.probe(tlb)
                cpu.tlbProbe()
                #expect(cpu.cp0.index == linear.index, "\(label): TLBP of EntryHi \(Hex.prefixed(cpu.cp0.entryHi))")
            }
        }
        for _ in 0..<200 { cpu.setTLBEntry(g.below(cpu.configuration.tlbEntries), Self.randomEntry(&g, vpns: vpns)) }
        check("after writes")
        var w = SnapshotWriter()
        cpu.saveState(to: &w)
        let saved = (0..<cpu.configuration.tlbEntries).map { cpu.tlbEntry($0) }
        cpu.reset()
        check("after reset")
        for _ in 0..<100 { cpu.setTLBEntry(g.below(cpu.configuration.tlbEntries), Self.randomEntry(&g, vpns: vpns)) }
        var r = SnapshotReader(w.bytes)
        try cpu.restoreState(from: &r)
        #expect((0..<cpu.configuration.tlbEntries).map { cpu.tlbEntry($0) } == saved)
        check("after restore")
    }
}

