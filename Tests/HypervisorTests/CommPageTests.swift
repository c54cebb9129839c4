import MagritteCore
import MagritteMachine
import Testing
@testable import MagritteHypervisor

/// The comm page (hypercall 5, Docs/hypercalls.md): a guest's hot virtual CP0 registers in a
/// page of its own RAM, read and written without traps; exact at every exit.
@Suite struct CommPageTests {
    static let teachos = GuestsUnderVMMTests.guest("os/teachos")

    // MARK: The hypercall, on small guests

    /// Words that map the page at guest-physical `address` (built with lui/ori) and keep v0 in s0.
    static func map(_ address: UInt32) -> [UInt32] {
        [0x2404_0005,                                  // addiu a0, zero, 5
         0x3C05_0000 | address >> 16, 0x34A5_0000 | address & 0xFFFF,  // a1 = address
         0x4002_B007,                                  // mfc0 v0, $22, 7
         0x0040_8025]                                  // move s0, v0
    }
    static let powerOff: [UInt32] = [0x3C0A_BF00, 0x354A_0500, 0x240B_0042, 0xA14B_0000, 0x1000_FFFF, 0]

    static func run(_ words: [UInt32]) throws -> (VMM, Guest) {
        let vmm = try VMM()
        let g = try vmm.addGuest(GuestConfiguration(name: "cp"), image: try miniELF(words))
        #expect(vmm.run(maxInstructions: 100_000) == .allPoweredOff)
        return (vmm, g)
    }

    /// The page's words 0..<count, read from guest RAM.
    static func page(_ vmm: VMM, _ g: Guest, _ count: Int) -> [UInt32] {
        guard let page = g.commPage else { return [] }
        return (0..<count).map { vmm.readGuestMemory(g, physical: page.address + UInt32(4 * $0), size: 4) ?? 0xDEAD }
    }

    @Test func mappingFillsThePage() throws {
        let (vmm, g) = try Self.run(Self.map(0x5000) + Self.powerOff)
        #expect(g.gprs[16] == CommPage.mapped)
        #expect(g.commPage == CommPage(address: 0x5000))
        let words = Self.page(vmm, g, Int(CommPage.vmmBytes / 4))
        #expect(words[0] == CommPage.magic && words[1] == CommPage.version)
        // Every register as the guest's mfc0 reads it now.
        for (i, r) in CommPage.registers.enumerated() where (r.number, r.select) != CP0Register.cause.id {
            #expect(words[2 + i] == vmm.virtualCP0(g, r.number, r.select), "register \(r.number), \(r.select)")
        }
    }

    @Test(arguments: [(UInt32(0x5004), "unaligned"), (0x0200_0000, "just past the guest's 32 MiB"),
                      (0x1FC0_0000, "the boot ROM, a device"), (0xFFFF_F000, "far outside")])
    func aBadAddressIsRefused(address: UInt32, why: String) throws {
        let (vmm, g) = try Self.run(Self.map(address) + Self.powerOff)
        #expect(g.gprs[16] == 0xFFFF_FFFE, "\(why)")
        #expect(g.commPage == nil, "\(why)")
        if address == 0x5004 { #expect(vmm.readGuestMemory(g, physical: 0x5000, size: 4) == 0, "nothing written") }
    }

    @Test func aSecondPageIsRefusedAndTheFirstStays() throws {
        let (_, g) = try Self.run(Self.map(0x5000) + [0x0200_8825] + Self.map(0x6000) + Self.powerOff)  // move s1, s0 (first result)
        #expect(g.gprs[17] == CommPage.mapped)
        #expect(g.gprs[16] == 0xFFFF_FFFD)
        #expect(g.commPage == CommPage(address: 0x5000))
    }

    @Test func writesInThePageAreTakenAtTheNextExit() throws {
        let words = Self.map(0x5000) + [
            0x3C08_8000, 0x3508_5000,  // t0 = 0x80005000, the page in kseg0
            0x3C09_1234, 0x3529_5678,  // t1 = 0x12345678
            0xAD09_002C,               // sw t1, EPC in the page
            0xAD09_001C,               // sw t1, BadVAddr in the page (read-only)
            0x4011_7000,               // mfc0 s1, EPC       (traps: the page's EPC first)
            0x4012_4000,               // mfc0 s2, BadVAddr  (unchanged)
            0x8D13_001C,               // lw s3, BadVAddr in the page (restored by the exit)
            0x240A_0100, 0xAD0A_0028,  // Cause in the page = IP0 (a writable bit)
            0x4014_6800,               // mfc0 s4, Cause
        ] + Self.powerOff
        let (_, g) = try Self.run(words)
        #expect(g.gprs[17] == 0x1234_5678)
        #expect(g.cp0.epc == 0x1234_5678)
        #expect(g.gprs[18] == 0 && g.gprs[19] == 0)
        #expect(g.gprs[20] & 0x300 == 0x100)
    }

    @Test func interruptsEnabledInThePageAreTakenAtTheNextCheck() throws {
        // Put `b .` at the general vector 0x80000180; Status = IM7 | IE (BEV, EXL, ERL clear) in
        // the page; then spin without exits.
        let program = Self.map(0x5000) + [
            0x3C08_8000, 0x3508_5000,   // t0 = the page
            0x3C0A_1000, 0x354A_FFFF,   // t2 = 0x1000FFFF (b .)
            0x3C0B_8000, 0xAD6A_0180,   // sw t2, 0x80000180
            0x340C_8001,                // ori t4, zero, 0x8001: IM7 | IE
            0xAD0C_0024,                // sw t4, Status in the page
            0x1000_FFFF, 0,             // spin: b . (no exits)
        ]
        let vmm = try VMM()
        let g = try vmm.addGuest(GuestConfiguration(name: "cp"), image: try miniELF(program))
        #expect(vmm.step(g, instructions: 5_000) == .instructionLimit)
        let spin = 0x8010_0000 + UInt32(4 * (program.count - 2))
        #expect(vmm.registers(of: g).pc == spin || vmm.registers(of: g).pc == spin + 4)
        #expect(g.cp0.status & 0xFF01 == 0x8001, "the page's Status taken at the end of a quantum")
        vmm.fireTimer(g)
        #expect(vmm.step(g, instructions: 1) == .instructionLimit)
        #expect(g.cp0.cause >> 2 & 31 == 0 && g.cp0.status & StatusBits.exl != 0)
        #expect(g.cp0.epc == spin || g.cp0.epc == spin + 4)
        #expect(vmm.registers(of: g).pc & ~4 == 0x8000_0180, "at the guest's vector (b . or its delay slot)")
        #expect(Self.page(vmm, g, 12)[11] == g.cp0.epc, "the page shows the exception entry")
    }

    /// Junk in the page (random words in every register slot, between short runs of a guest
    /// that keeps trapping) is taken as mtc0 would take it: the host survives, the VMM keeps
    /// running, and a guest beside it prints what it prints alone.
    @Test func junkInThePageHarmsNoOne() throws {
        let loop = Self.map(0x5000) + [0x4008_6000, 0x1000_FFFE, 0]  // mfc0 t0, Status; b (back to it); nop
        let vmm = try VMM()
        let g = try vmm.addGuest(GuestConfiguration(name: "junk", ramSize: 4 << 20), image: try miniELF(loop))
        let hello = GuestsUnderVMMTests.guest("tests/hello")
        let other = try vmm.addGuest(GuestConfiguration(name: "hello", ramSize: 4 << 20), imagePath: hello)
        #expect(vmm.step(g, instructions: 100) == .instructionLimit)
        #expect(g.commPage == CommPage(address: 0x5000))
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func random() -> UInt32 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt32(truncatingIfNeeded: seed >> 32)
        }
        for _ in 0..<300 {
            for slot in 0..<CommPage.registers.count where random() % 3 == 0 {
                _ = vmm.writeGuestMemory(g, physical: 0x5000 + CommPage.firstRegister + UInt32(4 * slot), size: 4, value: random())
            }
            _ = vmm.step(g, instructions: 50)
            if g.state == .poweredOff { break }
        }
        #expect(vmm.step(other, instructions: 10_000_000) == .allPoweredOff)
        #expect(other.consoleText == (try GuestsUnderVMMTests().bare(hello)))
    }

    // MARK: teachos with pv=comm

    /// One of the lecture's flows as the VMM saw it: from a trap out of the guest's user mode
    /// (one of `causes`), reflected to the vector at `offset` from EBase, to the real return
    /// to user mode.
    struct Flow: Equatable {
        var exits = 0
        var fills = 0
        var emulated: [String] = []
        /// Exits that were not the VMM filling its TLB for the guest (kseg0 pages, hidden fills).
        var nonFillExits: Int { exits - fills }
    }

    static func firstFlow(_ commandLine: String, causes: [ExceptionCode], offset: UInt32) throws -> Flow {
        let vmm = try VMM()
        vmm.trace.recording = false
        let g = try vmm.addGuest(GuestConfiguration(name: "t", commandLine: commandLine), imagePath: teachos)
        var flow: Flow?, reflected = false, done: Flow?
        vmm.trace.listener = { e in
            guard done == nil else { return }
            switch e.kind {
            case .trap(let code):
                if e.modeBefore == .user, causes.contains(code) { flow = Flow(); reflected = false }
                flow?.exits += 1
            case .hiddenFill:
                if !reflected { flow = nil } else { flow?.fills += 1 }  // a miss the guest never saw
            case .reflect(_, let vector):
                if flow != nil, !reflected { reflected = true; if vector & 0xFFF != offset { flow = nil } }
            case .emulate(let text):
                flow?.emulated.append(String(text.prefix { $0 != " " }))
            case .realReturn where e.modeAfter == .user && reflected:
                done = flow
                vmm.stop()
            default: break
            }
        }
        _ = vmm.run(maxInstructions: 100_000_000)
        _ = g
        return try #require(done, "no such flow")
    }

    @Test func aSystemCallTrapsTwiceInsteadOfEightTimes() throws {
        let trapping = try Self.firstFlow("idle=wait", causes: [.syscall], offset: 0x180)
        let pv = try Self.firstFlow("idle=wait pv=comm", causes: [.syscall], offset: 0x180)
        #expect(trapping.emulated == ["mfc0", "mfc0", "mfc0", "mfc0", "mtc0", "mtc0", "eret"])
        #expect(trapping.nonFillExits == 8)
        #expect(pv.emulated == ["eret"])
        #expect(pv.nonFillExits == 2)
    }

    @Test func aTLBMissTrapsThreeTimesInsteadOfSeven() throws {
        let trapping = try Self.firstFlow("idle=wait", causes: [.tlbLoad, .tlbStore], offset: 0)
        let pv = try Self.firstFlow("idle=wait pv=comm", causes: [.tlbLoad, .tlbStore], offset: 0)
        #expect(trapping.emulated == ["mfc0", "mfc0", "mtc0", "mtc0", "tlbwr", "eret"])
        #expect(trapping.nonFillExits == 7)
        #expect(pv.emulated == ["tlbwr", "eret"])
        #expect(pv.nonFillExits == 3)
    }

    /// Side by side: the same console (and the same as on bare Malta), far fewer exits.
    @Test func teachosPrintsTheSameWithFewerExits() throws {
        let vmm = try VMM()
        let plain = try vmm.addGuest(GuestConfiguration(name: "plain", commandLine: "idle=wait"), imagePath: Self.teachos)
        let pv = try vmm.addGuest(GuestConfiguration(name: "pv", commandLine: "idle=wait pv=comm"), imagePath: Self.teachos)
        #expect(vmm.run(maxInstructions: 2_000_000_000) == .allPoweredOff)
        func stable(_ s: String) -> [String] { s.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("timing:") } }
        #expect(stable(pv.consoleText) == stable(plain.consoleText))
        #expect(stable(pv.consoleText) == stable(try GuestsUnderVMMTests().bare(Self.teachos, append: "idle=wait pv=comm")))
        #expect(pv.consoleText.contains("timing: pv: comm page at 0x"))
        #expect(pv.commPage != nil && plain.commPage == nil)
        #expect(plain.statistics.hypercalls == 0 && pv.statistics.hypercalls == 2)  // the probe, the map
        let cpu = Int(ExceptionCode.coprocessorUnusable.rawValue)
        let plainCpU = plain.statistics.traps[cpu], pvCpU = pv.statistics.traps[cpu]
        print("comm page: CpU exits \(plainCpU) -> \(pvCpU), all exits \(plain.statistics.traps.reduce(0, +)) -> \(pv.statistics.traps.reduce(0, +))")
        #expect(pvCpU * 2 < plainCpU)
        #expect(pv.statistics.traps.reduce(0, +) < plain.statistics.traps.reduce(0, +))
        // The mfc0/mtc0 of the handlers are gone; eret and tlbwr remain.
        #expect(pv.statistics.emulated["mfc0", default: 0] * 3 < plain.statistics.emulated["mfc0", default: 0])
        #expect(pv.statistics.emulated["eret", default: 0] > 0 && pv.statistics.emulated["tlbwr", default: 0] > 0)
    }
}
