import Foundation
import MagritteCore
import Testing
@testable import MagritteHypervisor

/// Clustering (issue 12 item 3a): a privileged instruction right after an emulated one is
/// emulated in the same exit. The guest must not see the difference: the same console, the same
/// instruction counts by mode, the same emulated instructions, registers, virtual CP0 and TLB,
/// the same machine time, and the same VMM events apart from the traps the clusters saved.
@Suite struct ClusteringTests {
    struct Outcome {
        var console: String
        var statistics: GuestStatistics
        var now: UInt64
        var registers: [UInt32]
        var cp0: CP0State
        var tlb: [TLBEntry]
        /// A digest of every event except the Coprocessor Unusable traps (text, pc, instructions,
        /// modes), and their number.
        var events: UInt64
        var eventCount: Int
        var savedTraps: Int
    }

    func run(_ image: String, append: String = "", clustering: Bool, tlbEntries: Int = 64) throws -> Outcome {
        let vmm = try VMM(tlbEntries: tlbEntries)
        vmm.clustersExits = clustering
        vmm.trace.recording = false
        var digest: UInt64 = 0xcbf2_9ce4_8422_2325, count = 0
        var cpuTraps = 0
        vmm.trace.listener = { e in
            if case .trap(.coprocessorUnusable) = e.kind { cpuTraps += 1; return }
            count += 1
            for byte in "\(e.text) \(e.pc) \(e.instructions) \(e.modeBefore) \(e.modeAfter)".utf8 { digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        let g = try vmm.addGuest(GuestConfiguration(name: "g", commandLine: append), imagePath: GuestsUnderVMMTests.guest(image))
        #expect(vmm.run(maxInstructions: 2_000_000_000) == .allPoweredOff, "\(image)")
        let r = vmm.registers(of: g)
        return Outcome(console: g.consoleText, statistics: g.statistics, now: vmm.now, registers: r.gprs + [r.hi, r.lo, r.pc], cp0: g.cp0,
                       tlb: g.tlb, events: digest, eventCount: count, savedTraps: cpuTraps)
    }

    @Test(arguments: [("vmm/tlbstress", ""), ("vmm/syscalls", ""), ("vmm/cp0fuzz", ""), ("os/teachos", "idle=wait"), ("os/teachos", "idle=spin")])
    func theGuestSeesNoDifference(_ image: String, _ append: String) throws {
        let off = try run(image, append: append, clustering: false)
        let on = try run(image, append: append, clustering: true)
        #expect(on.console == off.console)
        #expect(on.statistics.kernelInstructions == off.statistics.kernelInstructions)
        #expect(on.statistics.userInstructions == off.statistics.userInstructions)
        #expect(on.statistics.emulated == off.statistics.emulated)
        #expect(on.now == off.now)
        #expect(on.registers == off.registers)
        #expect(on.cp0 == off.cp0)
        #expect(on.tlb == off.tlb)
        #expect(on.eventCount == off.eventCount)
        #expect(on.events == off.events)
        // Each clustered instruction is one trap fewer; nothing else changes.
        let clustered = on.statistics.clusteredInstructions
        #expect(off.statistics.clusteredInstructions == 0)
        #expect(on.statistics.traps.reduce(0, +) + clustered == off.statistics.traps.reduce(0, +))
        #expect(on.statistics.exitsByKind[ExitKind.privileged.rawValue] + clustered == off.statistics.exitsByKind[ExitKind.privileged.rawValue])
    }

    /// tlbstress's refill handler writes EntryLo0 and EntryLo1 back to back and ends with tlbwr;
    /// eret: two of its four privileged exits go — unless the handler's page has just left the
    /// physical TLB (its 64 entries are replaced round robin by the refills' fills), where the
    /// VMM cannot tell that the CPU would fetch the next instruction without a miss.
    @Test func theRefillHandlerTakesFewerExits() throws {
        let off = try run("vmm/tlbstress", clustering: false)
        let on = try run("vmm/tlbstress", clustering: true)
        let refills = off.statistics.reflectedTLBMisses
        #expect(refills > 500_000)
        #expect(on.statistics.clusteredInstructions <= 2 * refills)
        #expect(on.statistics.clusteredInstructions * 10 >= 2 * refills * 9)
        #expect(on.savedTraps + Int(on.statistics.clusteredInstructions) == off.savedTraps)
    }

    /// With the smallest physical TLB a tlbwr may evict the handler's own page: the eret after it
    /// then takes its fetch miss first, as without clustering.
    @Test func aTinyPhysicalTLBStillSeesNoDifference() throws {
        let off = try run("vmm/tlbstress", clustering: false, tlbEntries: VMM.physicalTLBSizes.lowerBound)
        let on = try run("vmm/tlbstress", clustering: true, tlbEntries: VMM.physicalTLBSizes.lowerBound)
        #expect(on.console == off.console)
        #expect(on.now == off.now)
        #expect(on.registers == off.registers)
        #expect(on.eventCount == off.eventCount)
        #expect(on.events == off.events)
        #expect(on.statistics.clusteredInstructions > 0)
    }
}
