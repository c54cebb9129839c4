import Foundation
import MagritteCore
import Testing
@testable import MagritteHypervisor

/// Clustering (issue 12 item 3a): a privileged instruction right after an emulated one is
/// emulated in the same exit. The guest must not see the difference: the same console, the same
/// instruction counts by mode, the same emulated instructions, registers, virtual CP0 and TLB,
/// the same machine time, and the same VMM events apart from the traps the clusters saved.
@Suite struct ClusteringTests {
    func run(_ image: String, append: String = "", clustering: Bool, tlbEntries: Int = 64, engine: Engine = .hostDefault) throws -> ExitComparison {
        let outcome = try ExitComparison.run(image, append: append, engine: engine, tlbEntries: tlbEntries, skips: { $0 == .coprocessorUnusable }) {
            $0.clustersExits = clustering
        }
        #expect(outcome.outcome == .allPoweredOff, "\(image)")
        return outcome
    }

    @Test(arguments: [("vmm/tlbstress", ""), ("vmm/syscalls", ""), ("vmm/cp0fuzz", ""), ("os/teachos", "idle=wait"), ("os/teachos", "idle=spin")])
    func theGuestSeesNoDifference(_ image: String, _ append: String) throws {
        try compare(image, append: append, engine: .hostDefault)
    }

    /// The same on the interpreter (the plain instructions a cluster emulates are the
    /// interpreter's to run without clustering there).
    @Test(arguments: [("vmm/syscalls", ""), ("os/teachos", "idle=wait")])
    func theGuestSeesNoDifferenceOnTheInterpreter(_ image: String, _ append: String) throws {
        try compare(image, append: append, engine: .interpreter)
    }

    func compare(_ image: String, append: String, engine: Engine) throws {
        let off = try run(image, append: append, clustering: false, engine: engine)
        let on = try run(image, append: append, clustering: true, engine: engine)
        #expect(on.console == off.console)
        #expect(on.statistics.kernelInstructions == off.statistics.kernelInstructions)
        #expect(on.statistics.userInstructions == off.statistics.userInstructions)
        #expect(on.statistics.emulated == off.statistics.emulated)
        #expect(on.now == off.now)
        #expect(on.executed == off.executed)
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

    /// tlbstress's refill handler (`mfc0 Context; lw; lw; mtc0 EntryLo0; mtc0 EntryLo1; ehb;
    /// tlbwr; eret`) takes one exit instead of five: the loads and the `ehb` between its
    /// privileged instructions are emulated in the same exit — unless the handler's or the page
    /// table's page has just left the physical TLB (its 64 entries are replaced round robin by
    /// the refills' fills), where the CPU runs them and takes the miss.
    @Test func theRefillHandlerTakesOneExit() throws {
        let off = try run("vmm/tlbstress", clustering: false)
        let on = try run("vmm/tlbstress", clustering: true)
        let refills = off.statistics.reflectedTLBMisses
        #expect(refills > 500_000)
        #expect(on.statistics.clusteredInstructions <= 4 * refills)
        #expect(on.statistics.clusteredInstructions * 10 >= 4 * refills * 9)
        #expect(on.skippedTraps + Int(on.statistics.clusteredInstructions) == off.skippedTraps)
    }

    /// The system-call entry of the guests' runtime saves each CP0 register it reads with a store
    /// (`mfc0 EPC; sw; mfc0 Status; sw; …`): those stores to its exception stack are emulated
    /// in the exit, so the `mfc0` run takes one exit.
    @Test func theExceptionEntryClustersAcrossStores() throws {
        let off = try run("vmm/syscalls", clustering: false)
        let on = try run("vmm/syscalls", clustering: true)
        let calls: UInt64 = 200_000
        let privileged = off.statistics.exitsByKind[ExitKind.privileged.rawValue]
        #expect(privileged >= 5 * calls)
        // At least two of each call's privileged exits are gone.
        #expect(on.statistics.clusteredInstructions >= 2 * calls)
        #expect(on.statistics.exitsByKind[ExitKind.privileged.rawValue] + on.statistics.clusteredInstructions == privileged)
    }

    /// Clustering while time travel records: going to a position re-executes from a checkpoint
    /// (clustering as the recorded run did) and lands in the state of a run stopped there, the
    /// statistics and events included, and a step back lands where a run stopped there would.
    @Test func timeTravelWithClusteringIsExact() throws {
        typealias S = VMMSnapshotTests
        func make() throws -> VMM {
            let vmm = try S.teachosPair(engine: .jit)
            vmm.clustersExits = true
            return vmm
        }
        let vmm = try make()
        let travel = VMMTimeTravel(vmm: vmm, interval: 1_000_000)
        #expect(travel.run(maxInstructions: 5_000_000) == .instructionLimit)
        let end = S.observe(vmm)
        #expect(end.statistics.contains { $0.clusteredInstructions > 0 })
        for target: UInt64 in [3_210_987, 1_000_001, 4_999_999] {
            let reference = try make()
            _ = reference.run(maxInstructions: target)
            #expect(travel.goTo(instruction: target) == .reached)
            #expect(S.differences(S.observe(vmm), S.observe(reference)) == [], "at \(target)")
        }
        #expect(travel.goTo(instruction: 5_000_000) == .reached)
        #expect(S.differences(S.observe(vmm), end) == [])
        #expect(travel.stepBack(1) == .reached && vmm.cpu.executedInstructions == 4_999_999)
        let reference = try make()
        _ = reference.run(maxInstructions: 4_999_999)
        #expect(S.observe(vmm).registers == S.observe(reference).registers)
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
