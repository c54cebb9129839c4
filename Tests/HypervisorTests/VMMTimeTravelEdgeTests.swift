import MagritteCore
@testable import MagritteMachine
import Testing
@testable import MagritteHypervisor

/// Reverse search across a checkpoint's edge under the VMM (issue 10): a watched store or a
/// breakpoint hit made by the last instruction before a checkpoint, or by the instruction at a
/// checkpoint's position, is found by `continueBack` exactly where the forward run saw it.
@Suite struct VMMTimeTravelEdgeTests {
    typealias S = VMMSnapshotTests

    /// The hits a forward run sees, by any guest: positions after a write to `watched`, before
    /// `pc` (its first try: the retry after a fill the VMM handled unseen is no new hit).
    final class Seen: CPUObserver {
        let vmm: VMM
        let pc: UInt32?
        let watched: ClosedRange<UInt32>?
        var hits: [UInt64] = []
        var storePCs: [UInt32] = []
        /// Stops the VMM before the instruction at this position (as a debugger would).
        var stopAt: UInt64?
        private var last: [Int: (UInt32, UInt64)] = [:]
        init(_ vmm: VMM, pc: UInt32? = nil, watched: ClosedRange<UInt32>? = nil) { (self.vmm, self.pc, self.watched) = (vmm, pc, watched) }
        func cpu(_ cpu: CPU, willExecuteAt at: UInt32) -> ObserverAction {
            if at == pc, let g = vmm.current {
                let retired = vmm.retiredInstructions(of: g)
                if last[g.index].map({ $0 != (at, retired) }) ?? true { hits.append(cpu.executedInstructions) }
                last[g.index] = (at, retired)
            }
            guard cpu.executedInstructions == stopAt else { return .proceed }
            vmm.stop()
            return .stop
        }
        func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction {
            if access.isWrite, let watched, watched.contains(access.virtual) {
                hits.append(cpu.executedInstructions)
                storePCs.append(access.pc)
            }
            return .proceed
        }
    }

    /// `body` with `seen` watching the CPU.
    static func watching<T>(_ vmm: VMM, _ seen: Seen, _ body: () -> T) -> T {
        vmm.cpu.observer = seen
        vmm.cpu.observesInstructions = seen.pc != nil || seen.stopAt != nil
        vmm.cpu.memoryWatches = seen.watched.map { [$0] } ?? []
        defer {
            vmm.cpu.observer = nil
            vmm.cpu.observesInstructions = false
            vmm.cpu.memoryWatches = []
        }
        return body()
    }

    static func kstats(_ vmm: VMM) throws -> ClosedRange<UInt32> {
        let a = try #require(vmm.guests[0].image?.symbolTable.first { $0.name == "kstats" }?.address)
        return a...(a + 31)
    }

    /// A forward run finds the hits of `make` (the first after 1.5 M instructions is `hit`);
    /// then a VMM with time travel (checkpoints every 700 000) runs until an observer stops it
    /// before the instruction at `hit + offset` (the stop after a store, or before the pc of a
    /// breakpoint, is its hit's position), where a change by hand that changes nothing
    /// checkpoints it, and on past two more hits:
    /// `continueBack` stops at each hit that run saw, newest first, `hit` and the one before it included.
    static func expectFoundAcrossACheckpoint(_ engine: Engine, _ make: (VMM) -> Seen, offset: Int64,
                                             _ conditions: TimeTravel.Conditions, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let probe = try S.teachosPair(engine: engine)
        let forward = make(probe)
        _ = watching(probe, forward) { probe.run(maxInstructions: 4_000_000) }
        guard let i = forward.hits.firstIndex(where: { $0 > 1_500_000 }), i > 0 else {
            Issue.record("too few hits: \(forward.hits)", sourceLocation: sourceLocation)
            return
        }
        let hit = forward.hits[i]
        let edge = UInt64(Int64(hit) + offset)

        let vmm = try S.teachosPair(engine: engine)
        let travel = VMMTimeTravel(vmm: vmm, interval: 700_000)
        let seen = make(vmm)
        seen.stopAt = edge
        _ = watching(vmm, seen) { travel.run(maxInstructions: 4_000_000) }
        seen.stopAt = nil
        #expect(vmm.cpu.executedInstructions == edge, sourceLocation: sourceLocation)
        // A change by hand that changes nothing: the next call starts with a checkpoint here.
        // It steps the guest stopped here, so that the instruction at the edge is its own (a
        // new run would start a new slice, maybe with the other guest).
        let g = try #require(vmm.current, sourceLocation: sourceLocation), r = vmm.registers(of: g)
        vmm.setHiLo(of: g, hi: r.hi, lo: r.lo)
        let pcAtEdge = r.pc
        _ = watching(vmm, seen) { travel.step(g, instructions: 1) }
        #expect(vmm.cpu.executedInstructions == edge + 1, sourceLocation: sourceLocation)
        _ = watching(vmm, seen) { travel.run(maxInstructions: 1_500_000) }
        #expect(seen.hits.filter { $0 < edge } == forward.hits.filter { $0 < edge }, "the same run to the edge", sourceLocation: sourceLocation)
        #expect(seen.hits.count > i && seen.hits[i] == hit, "the hit at \(hit) again: \(seen.hits.dropFirst(i - 1).prefix(3))", sourceLocation: sourceLocation)
        #expect(travel.checkpoints.contains { $0.executed == edge } && travel.checkpoints.contains { $0.executed < hit - 1 },
                "\(travel.checkpoints.map(\.executed))", sourceLocation: sourceLocation)
        guard seen.hits.count >= i + 3 else {
            Issue.record("too few hits after the edge: \(seen.hits)", sourceLocation: sourceLocation)
            return
        }
        #expect(travel.goTo(instruction: seen.hits[i + 2] + 1) == .reached, sourceLocation: sourceLocation)
        for expected in seen.hits[(i - 1)...(i + 2)].reversed() {
            let stop = travel.continueBack(until: conditions)
            #expect(stop != .startOfHistory && stop != .reached, "\(stop)", sourceLocation: sourceLocation)
            #expect(vmm.cpu.executedInstructions == expected, "expected \(expected) (the edge at \(edge))", sourceLocation: sourceLocation)
        }
        // The guest's step back from there: its instruction at the checkpoint's position.
        #expect(travel.goTo(instruction: edge + 1) == .reached, sourceLocation: sourceLocation)
        #expect(travel.stepBack(1, guest: g) == .instruction(pc: pcAtEdge, guest: g.index) && vmm.cpu.executedInstructions == edge,
                sourceLocation: sourceLocation)
        // Stopped right after the store whose stop is the checkpoint: with gdb's rule, that
        // store is the hit (its stop the position itself), found in the span before.
        if offset == 0 && !conditions.watchpoints.isEmpty {
            var last = conditions
            last.includesLastAccess = true
            #expect(travel.goTo(instruction: edge) == .reached, sourceLocation: sourceLocation)
            let stop = travel.continueBack(until: last)
            #expect(stop != .startOfHistory && stop != .reached && vmm.cpu.executedInstructions == edge, "\(stop)", sourceLocation: sourceLocation)
        }
    }

    @Test("a watched store just before a checkpoint and at its position", arguments: Engine.allCases)
    func watchedStoreAtACheckpointsEdge(engine: Engine) throws {
        let range = try Self.kstats(try S.teachosPair(engine: engine))
        let conditions = TimeTravel.Conditions(watchpoints: [.init(range, reads: false)])
        for offset: Int64 in [0, -1] {
            try Self.expectFoundAcrossACheckpoint(engine, { Seen($0, watched: range) }, offset: offset, conditions)
        }
    }

    @Test("a breakpoint just before a checkpoint and at its position", arguments: Engine.allCases)
    func breakpointAtACheckpointsEdge(engine: Engine) throws {
        let probe = try S.teachosPair(engine: engine)
        let stores = Seen(probe, watched: try Self.kstats(probe))
        _ = Self.watching(probe, stores) { probe.run(maxInstructions: 2_000_000) }
        let pc = try #require(stores.storePCs.last)
        let conditions = TimeTravel.Conditions(breakpoints: [pc])
        for offset: Int64 in [0, 1] {
            try Self.expectFoundAcrossACheckpoint(engine, { Seen($0, pc: pc) }, offset: offset, conditions)
        }
    }
}
