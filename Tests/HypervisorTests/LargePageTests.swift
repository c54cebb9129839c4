import Foundation
import MagritteCore
import Testing
@testable import MagritteHypervisor

/// Large physical pages for the guests' kseg0/kseg1 RAM and hidden fills, kseg0/kseg1 fills as
/// global entries, and fills that take no guest time (issue 12). The guest must not see any of
/// it: the same console, instruction counts by mode, emulated and reflected exceptions,
/// registers, virtual CP0 and TLB, machine time and VMM events as with 4 KiB pairs, apart from
/// the fills themselves (their traps and `hidden_fill` events) — on both engines, with the
/// default and the smallest physical TLB.
@Suite struct LargePageTests {
    typealias Outcome = ExitComparison

    /// (tlb_pagemask maps guest-physical 32-112 MiB.)
    static var largePages: FastPath {
        FastPath(knob: { $0.usesLargePages = $1 }, skips: { $0.isTLB }, skipsEvent: { if case .hiddenFill = $0 { true } else { false } },
                 ramSize: { $0 == "tests/tlb_pagemask" ? 128 << 20 : 32 << 20 }, expectSame: expectSame)
    }

    static func expectSame(_ large: Outcome, _ small: Outcome, _ what: String) {
        large.expectSameGuestView(as: small, what)
        #expect(large.statistics.reflectedTLBMisses == small.statistics.reflectedTLBMisses, "\(what)")
        #expect(large.statistics.spinInstructions == small.statistics.spinInstructions, "\(what)")
        #expect(large.statistics.waitCycles == small.statistics.waitCycles, "\(what)")
        #expect(large.eventCount == small.eventCount, "\(what)")
        #expect(large.events == small.events, "\(what)")
        // The fills' traps are the difference (and device accesses that trapped rather than
        // being polled, where polling stops at a page the physical TLB does not map now).
        let fills = { (o: Outcome) in
            o.statistics.ksegFills + o.statistics.hiddenTLBFills + o.statistics.deviceAccesses - o.statistics.polledDeviceAccesses
        }
        let tlbTraps = { (o: Outcome) in [ExceptionCode.tlbLoad, .tlbStore, .tlbModified].map { o.statistics.traps[Int($0.rawValue)] }.reduce(0, +) }
        #expect(tlbTraps(large) - fills(large) == tlbTraps(small) - fills(small), "\(what)")
    }

    /// (Not cp0fuzz: its random words put branches in delay slots, UNPREDICTABLE code whose
    /// restart after a fill cannot be made exact: `VMM.resumeAfterFill`. IsolationTests run it.)
    static let workloads = [("vmm/syscalls", ""), ("vmm/tlbstress", ""), ("vmm/memscan", ""), ("vmm/rtcpoll", ""),
                            ("os/teachos", "idle=wait"), ("os/teachos", "idle=spin"), ("os/teachos", "idle=wait pv=comm"),
                            ("tests/tlb_pagemask", ""), ("tests/tlb_refill", ""), ("tests/timer_int", "")]

    @Test(arguments: Engine.allCases)
    func theGuestSeesNoDifference(_ engine: Engine) throws {
        try Self.largePages.expectNoDifference(Self.workloads, engine: engine)
    }

    /// Two guests together (each machine switch drops the other's global kseg0 entries): the
    /// same for each guest, and the same machine time and events.
    @Test(arguments: Engine.allCases)
    func twoGuestsTogetherSeeNoDifference(_ engine: Engine) throws {
        func run(large: Bool) throws -> (consoles: [String], counts: [[UInt64]], cp0: [CP0State], now: UInt64, events: [String], fills: UInt64) {
            let vmm = try VMM(engine: engine)
            vmm.usesLargePages = large
            vmm.slice = 20_000
            vmm.trace.recording = false
            var events: [String] = []
            vmm.trace.listener = { e in
                if case .trap(let code) = e.kind, code.isTLB { return }
                if case .hiddenFill = e.kind { return }
                events.append("\(e.guest) \(e.text) \(e.pc) \(e.instructions)")
            }
            let a = try vmm.addGuest(GuestConfiguration(name: "a", commandLine: "idle=wait"), imagePath: GuestsUnderVMMTests.guest("os/teachos"))
            let b = try vmm.addGuest(GuestConfiguration(name: "b"), imagePath: GuestsUnderVMMTests.guest("vmm/tlbstress"))
            #expect(vmm.run(maxInstructions: 2_000_000_000) == .allPoweredOff)
            let gs = [a, b]
            return (gs.map(\.consoleText), gs.map { [$0.statistics.kernelInstructions, $0.statistics.userInstructions, $0.statistics.switchesIn] },
                    gs.map(\.cp0), vmm.now, events, gs.map { $0.statistics.ksegFills + $0.statistics.hiddenTLBFills }.reduce(0, +))
        }
        let small = try run(large: false), large = try run(large: true)
        #expect(large.consoles == small.consoles)
        #expect(large.counts == small.counts)
        #expect(large.cp0 == small.cp0)
        #expect(large.now == small.now)
        #expect(large.events.count == small.events.count)
        let same = zip(large.events, small.events).prefix { $0 == $1 }.count
        #expect(same == small.events.count, "first difference at event \(same): \(large.events.dropFirst(same).first ?? "-") against \(small.events.dropFirst(same).first ?? "-")")
        #expect(large.fills < small.fills)
    }

    /// With the smallest physical TLB a large entry is evicted as often as any other: the guest
    /// still runs to the end, as with 4 KiB pairs.
    @Test func theSmallestPhysicalTLBSeesNoDifference() throws {
        let runs = try Self.largePages.expectNoDifference([("os/teachos", "idle=wait"), ("vmm/tlbstress", ""), ("tests/tlb_pagemask", "")],
                                                          tlbEntries: VMM.physicalTLBSizes.lowerBound)
        #expect(runs.count == 3 && runs.allSatisfy { $0.on.outcome == .allPoweredOff })
    }

    /// Fills no longer take guest time, so the physical TLB's size does not change what the guest
    /// sees either.
    @Test func thePhysicalTLBSizeMakesNoDifference() throws {
        let big = try Self.largePages.run("os/teachos", append: "idle=wait", on: true)
        let tiny = try Self.largePages.run("os/teachos", append: "idle=wait", on: true, tlbEntries: VMM.physicalTLBSizes.lowerBound)
        Self.expectSame(tiny, big, "teachos with 64 and 3 physical TLB entries")
        #expect(tiny.statistics.ksegFills > big.statistics.ksegFills)
    }

    /// Large pages cut the fills: teachos's kseg0 fills (global entries, no refill per address
    /// space), tlb_pagemask's hidden fills of its 16 KiB–16 MiB pages.
    @Test func fillsDrop() throws {
        let (large, small) = try Self.largePages.pair("os/teachos", append: "idle=wait")
        #expect(large.statistics.ksegFills * 4 < small.statistics.ksegFills, "\(large.statistics.ksegFills) against \(small.statistics.ksegFills)")
        let (pagesLarge, pagesSmall) = try Self.largePages.pair("tests/tlb_pagemask")
        #expect(pagesLarge.statistics.hiddenTLBFills < pagesSmall.statistics.hiddenTLBFills,
                "\(pagesLarge.statistics.hiddenTLBFills) against \(pagesSmall.statistics.hiddenTLBFills)")
    }

    // MARK: What is installed

    static func vmmWithGuest(ramSize: Int = 32 << 20) throws -> (VMM, Guest) {
        let vmm = try VMM(ramSize: 64 << 20)
        let g = try vmm.addGuest(GuestConfiguration(name: "g", ramSize: ramSize), imagePath: GuestsUnderVMMTests.guest("tests/hello"))
        vmm.switchTo(g)
        return (vmm, g)
    }

    /// The physical entry that maps `va` now, and its index.
    static func entry(_ vmm: VMM, _ va: UInt32) -> TLBEntry? {
        (0..<vmm.cpu.configuration.tlbEntries).map(vmm.cpu.tlbEntry).first { $0.matches(va, asid: vmm.cpu.cp0.asid) }
    }

    @Test func ksegFillsUseTheLargestAlignedPairInsideRAM() throws {
        // 2 MiB + 12 KiB of RAM at machine 1 MiB: 1 MiB pages (the frames' alignment) up to
        // 2 MiB, then 4 KiB ones.
        let (vmm, g) = try Self.vmmWithGuest(ramSize: (2 << 20) + 0x3000)
        #expect(g.memoryBase == 0x10_0000)
        #expect(vmm.installUnmapped(g, va: 0x8000_1234, gpa: 0x1234) == 1 << 20)
        let e = try #require(Self.entry(vmm, 0x8000_1234))
        #expect(e.global && e.pageSize == 1 << 20 && e.vpn2 == 0x8000_0000)
        #expect(e.translate(0x8010_0010) == .mapped(physical: 0x20_0010, dirty: true))
        #expect(vmm.physicalTranslation(0xA00F_FFFC) == nil, "kseg1 is another pair")
        // Near RAM's end: the 4 KiB pair, its odd page (past RAM) invalid.
        #expect(vmm.installUnmapped(g, va: 0xA020_2008, gpa: 0x20_2008) == 0x1000)
        let end = try #require(Self.entry(vmm, 0xA020_2008))
        #expect(end.pageSize == 0x1000 && end.lo1 & EntryLoBits.valid == 0)
        #expect(vmm.physicalTranslation(0xA020_2008) == 0x30_2008)
        // With large pages off: always the 4 KiB pair.
        vmm.usesLargePages = false
        #expect(vmm.installUnmapped(g, va: 0x8020_0000, gpa: 0x20_0000) == 0x1000)
        #expect(Self.entry(vmm, 0x8020_0000)?.pageSize == 0x1000)
        #expect(Self.entry(vmm, 0x8000_1234)?.pageSize == 1 << 20, "the large pair it does not overlap stays")
    }

    @Test func aLargePairReplacesTheSmallPairsItCovers() throws {
        let (vmm, g) = try Self.vmmWithGuest()
        vmm.usesLargePages = false
        vmm.installUnmapped(g, va: 0x8000_0000, gpa: 0)
        vmm.installUnmapped(g, va: 0x8000_4000, gpa: 0x4000)
        vmm.usesLargePages = true
        #expect(vmm.installUnmapped(g, va: 0x8000_2000, gpa: 0x2000) == 1 << 20)
        let matching = (0..<64).map(vmm.cpu.tlbEntry).filter { $0.lo0 & EntryLoBits.valid != 0 }
        #expect(matching.count == 1, "one entry maps 0x80000000-0x801FFFFF: \(matching)")
        #expect(vmm.physicalTranslation(0x8010_0004) == 0x20_0004)
    }

    @Test func hiddenFillsUseTheGuestsPageSizeWhereTheFramesAllow() throws {
        let (vmm, g) = try Self.vmmWithGuest()
        g.cp0.entryHi = 0x0040_0000 | 5
        vmm.setPhysicalASID(g)
        // A 1 MiB pair at 0x00400000 -> guest-physical 0x00800000 (even, dirty) and 0x01F00000
        // (odd: the last MiB of RAM, clean); machine frames at base 1 MiB, aligned.
        g.tlb[3] = TLBEntry(entryHi: 0x0040_0000 | 5, pageMask: 0x1F_E000, entryLo0: EntryLoBits.frame(0x80_0000) | 6,
                            entryLo1: EntryLoBits.frame(0x1F0_0000) | 2)
        #expect(vmm.installMapped(g, va: 0x0050_0000) == 1 << 20)
        #expect(vmm.physicalMapping(0x0040_0010).map { [$0.address, $0.dirty ? 1 : 0] } == [0x90_0010, 1])
        #expect(vmm.physicalMapping(0x005F_FFFC).map { [$0.address, $0.dirty ? 1 : 0] } == [0x210_0000 - 4, 0])
        // An earlier guest entry over part of the pair decides there: 4 KiB pairs then.
        g.tlb[1] = TLBEntry(entryHi: 0x0048_0000 | 5, pageMask: 0, entryLo0: EntryLoBits.frame(0x10_0000) | 6, entryLo1: 0)
        vmm.invalidatePhysical(g, covering: g.tlb[1])
        #expect(vmm.physicalTranslation(0x0040_0010) == nil, "the guest's write dropped the large pair it overlaps")
        #expect(vmm.installMapped(g, va: 0x0040_0010) == 256 << 10, "the largest pair beside it")
        #expect(vmm.physicalTranslation(0x0047_FFF0) == 0x97_FFF0)
        #expect(vmm.installMapped(g, va: 0x0048_0010) == 0x1000)
        #expect(vmm.physicalTranslation(0x0048_0010) == 0x20_0010)
        // A page past RAM's end: the largest size where both pages fit.
        g.tlb[1] = TLBEntry()
        g.tlb[3] = TLBEntry(entryHi: 0x0100_0000 | 5, pageMask: 0x7F_E000, entryLo0: EntryLoBits.frame(0x1C0_0000) | 6,
                            entryLo1: EntryLoBits.frame(0x2000_0000) | 6)
        vmm.flushGuest(g)
        #expect(vmm.installMapped(g, va: 0x0100_0000) == 1 << 20, "machine 0x1D00000 is not 4 MiB-aligned, and the odd page is a device")
        #expect(vmm.physicalTranslation(0x0100_0000) == 0x1D0_0000)
        #expect(vmm.installMapped(g, va: 0x0140_0000) == 0x1000, "no large pair over a device")
        #expect(vmm.physicalTranslation(0x0140_0000) == nil)
    }

    // MARK: Isolation

    /// Two guests with the same kseg0 addresses alternate every few thousand instructions: one
    /// fills its RAM with a marker through kseg0, the other reads all of its RAM through kseg0
    /// and kseg1 and must find none; neither may ever run with the other's global entries.
    @Test(arguments: Engine.allCases)
    func guestsWithTheSameKsegAddressesAlternate(_ engine: Engine) throws {
        let vmm = try VMM(ramSize: 16 << 20, engine: engine)
        var leaks: [String] = []
        vmm.trace.recording = false
        vmm.trace.listener = { [unowned vmm] e in
            guard case .machineSwitch = e.kind, let g = vmm.current else { return }
            for i in 0..<vmm.cpu.configuration.tlbEntries {
                let p = vmm.cpu.tlbEntry(i)
                if p.global, (p.lo0 | p.lo1) & EntryLoBits.valid != 0, vmm.asidOwner[Int(p.asid)] != g.index {
                    leaks.append("\(g.name) runs with a global entry 0x\(Hex.word(p.vpn2)) of guest \(vmm.asidOwner[Int(p.asid)])")
                }
            }
        }
        let hex = String(IsolationTests.marker, radix: 16)
        let filler = try vmm.addGuest(GuestConfiguration(name: "filler", ramSize: 4 << 20, commandLine: "marker=\(hex) fill"),
                                      imagePath: IsolationTests.memscan)
        let scanner = try vmm.addGuest(GuestConfiguration(name: "scanner", ramSize: 4 << 20, commandLine: "marker=\(hex)"),
                                       imagePath: IsolationTests.memscan)
        vmm.slice = 3000
        #expect(vmm.run(maxInstructions: 400_000_000) == .allPoweredOff)
        #expect(leaks.isEmpty, "\(leaks.prefix(3))")
        #expect(filler.statistics.switchesIn > 100 && scanner.statistics.switchesIn > 100)
        #expect(scanner.consoleText.contains("marker pairs in own RAM (outside the image): 0\n"), "\(scanner.consoleText)")
        #expect(!filler.consoleText.contains("marker pairs in own RAM (outside the image): 0\n"), "\(filler.consoleText)")
        let bareFill = try IsolationTests.bare(IsolationTests.memscan, ramSize: 4 << 20, append: "marker=\(hex) fill")
        let bareScan = try IsolationTests.bare(IsolationTests.memscan, ramSize: 4 << 20, append: "marker=\(hex)")
        #expect(IsolationTests.lines(filler.consoleText) == IsolationTests.lines(bareFill.console))
        #expect(IsolationTests.lines(scanner.consoleText) == IsolationTests.lines(bareScan.console))
        #expect(filler.statistics.ksegFills > 0 && scanner.statistics.ksegFills > 0)
    }
}
