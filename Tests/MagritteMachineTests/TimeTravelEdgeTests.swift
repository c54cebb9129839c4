import MagritteCore
@testable import MagritteMachine
import Testing

/// Reverse search across a checkpoint's edge (issue 10): a watched store or a breakpoint hit
/// made by the last instruction before a checkpoint, or by the instruction at a checkpoint's
/// position, is found by `continueBack` exactly where a forward run saw it, on both engines.
@Suite struct TimeTravelEdgeTests {
    /// The hits a forward run sees: positions after a write to `watched`, before `pc`.
    final class Seen: CPUObserver {
        let pc: UInt32?
        let watched: ClosedRange<UInt32>?
        var hits: [UInt64] = []
        /// The pc of each watched write.
        var storePCs: [UInt32] = []
        init(pc: UInt32? = nil, watched: ClosedRange<UInt32>? = nil) { (self.pc, self.watched) = (pc, watched) }
        func cpu(_ cpu: CPU, willExecuteAt at: UInt32) -> ObserverAction {
            if at == pc { hits.append(cpu.executedInstructions) }
            return .proceed
        }
        func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction {
            if access.isWrite, let watched, watched.contains(access.virtual) {
                hits.append(cpu.executedInstructions)
                storePCs.append(access.pc)
            }
            return .proceed
        }
    }

    static func teachos(_ engine: Engine) throws -> Malta {
        var config = MaltaConfiguration(ramSize: 16 << 20)
        config.commandLine = "idle=wait"
        config.cpu.engine = engine
        let m = Malta(configuration: config) { _ in }
        try m.load(path: try SnapshotTests.requireGuest("os/teachos"))
        m.boot()
        return m
    }

    /// Runs `m` to `target` with `seen` watching; returns the hits it saw.
    static func run(_ m: Malta, to target: UInt64, _ seen: Seen) {
        m.cpu.observer = seen
        m.cpu.observesInstructions = seen.pc != nil
        m.cpu.memoryWatches = seen.watched.map { [$0] } ?? []
        while m.cpu.executedInstructions < target {
            guard m.run(maxInstructions: target - m.cpu.executedInstructions) == .instructionLimit else { break }
        }
        m.cpu.observer = nil
        m.cpu.observesInstructions = false
        m.cpu.memoryWatches = []
    }

    /// A forward run finds the hits of `seen` (the `n`th after 1.5 M instructions is `hit`);
    /// then a board with time travel (checkpoints every 700 000) gets a checkpoint at
    /// `hit + offset` and runs on past two more hits: `continueBack` stops at those, then at
    /// `hit`, then at the one before it, as the forward run saw them.
    static func expectFoundAcrossACheckpoint(_ engine: Engine, _ make: () -> Seen, offset: Int64,
                                             _ conditions: TimeTravel.Conditions, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let probe = try teachos(engine)
        let forward = make()
        run(probe, to: 4_000_000, forward)
        let later = forward.hits.enumerated().filter { $0.element > 1_500_000 }.map(\.offset)
        try #require(later.count >= 3 && later[0] > 0, "too few hits", sourceLocation: sourceLocation)
        let i = later[0]
        let hit = forward.hits[i]
        let edge = UInt64(Int64(hit) + offset)
        let end = forward.hits[i + 2] + 1

        let m = try teachos(engine)
        let travel = TimeTravel(board: m, interval: 700_000)
        let seen = make()
        run(m, to: edge, seen)
        travel.stateChanged()
        travel.discardFuture()  // a checkpoint here, the history before kept
        run(m, to: end, seen)
        #expect(seen.hits == forward.hits.filter { $0 < end }, "the same run", sourceLocation: sourceLocation)
        #expect(travel.checkpoints.contains { $0.executed == edge } && travel.checkpoints.contains { $0.executed < hit - 1 },
                "\(travel.checkpoints.map(\.executed))", sourceLocation: sourceLocation)
        for expected in forward.hits[(i - 1)...(i + 2)].reversed() {
            let stop = travel.continueBack(until: conditions)
            #expect(stop != .startOfHistory && stop != .reached, "\(stop)", sourceLocation: sourceLocation)
            #expect(m.cpu.executedInstructions == expected, "expected \(expected) (the edge at \(edge))", sourceLocation: sourceLocation)
        }
        // Stopped right after the store whose stop is the checkpoint: with gdb's rule, that
        // store is the hit (its stop the position itself), found in the span before.
        if offset == 0 && !conditions.watchpoints.isEmpty {
            var last = conditions
            last.includesLastAccess = true
            #expect(travel.goTo(instruction: edge) == .reached, sourceLocation: sourceLocation)
            let stop = travel.continueBack(until: last)
            #expect(stop != .startOfHistory && stop != .reached && m.cpu.executedInstructions == edge, "\(stop)", sourceLocation: sourceLocation)
        }
    }

    static func kstats(_ engine: Engine) throws -> ClosedRange<UInt32> {
        let m = try teachos(engine)
        let a = try #require(m.image?.symbolTable.first { $0.name == "kstats" }?.address)
        return a...(a + 31)
    }

    @Test("a watched store just before a checkpoint and at its position", arguments: Engine.allCases)
    func watchedStoreAtACheckpointsEdge(engine: Engine) throws {
        let range = try Self.kstats(engine)
        let conditions = TimeTravel.Conditions(watchpoints: [.init(range, reads: false)])
        // The stop after the store is the checkpoint (the store is the span's last instruction),
        // then the store is the checkpoint's own instruction.
        for offset: Int64 in [0, -1] {
            try Self.expectFoundAcrossACheckpoint(engine, { Seen(watched: range) }, offset: offset, conditions)
        }
    }

    @Test("a breakpoint just before a checkpoint and at its position", arguments: Engine.allCases)
    func breakpointAtACheckpointsEdge(engine: Engine) throws {
        // The pc of a store to kstats: hit often, between the other hits.
        let range = try Self.kstats(engine)
        let probe = try Self.teachos(engine)
        let stores = Seen(watched: range)
        Self.run(probe, to: 2_000_000, stores)
        let pc = try #require(stores.storePCs.last)
        let conditions = TimeTravel.Conditions(breakpoints: [pc])
        // At the checkpoint (its first instruction), then the span's last instruction.
        for offset: Int64 in [0, 1] {
            try Self.expectFoundAcrossACheckpoint(engine, { Seen(pc: pc) }, offset: offset, conditions)
        }
    }
}
