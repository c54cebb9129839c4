import Foundation
import MagritteCore
@testable import MagritteMachine
import Testing

/// Reverse execution on teachos (`TimeTravel`): going back and forth lands in exactly the state
/// a straight run has at that instruction, and continuing back stops at the previous hit of a
/// breakpoint or watchpoint (the hits a forward run saw, in reverse).
@Suite struct TimeTravelTests {
    typealias Board = SnapshotTests.Board

    static func teachos() throws -> Board {
        try Board(try SnapshotTests.requireGuest("os/teachos"), commandLine: "idle=wait")
    }

    static func symbol(_ board: Board, _ name: String) throws -> UInt32 {
        try #require(board.malta.image?.symbolTable.first { $0.name == name }?.address, "no symbol \(name)")
    }

    /// A straight run of `n` instructions on a fresh board, in one call.
    static func straight(_ n: UInt64) throws -> Board {
        let b = try teachos()
        while b.malta.cpu.executedInstructions < n {
            #expect(b.malta.run(maxInstructions: n - b.malta.cpu.executedInstructions) == .instructionLimit)
        }
        return b
    }

    /// Whether `a` is in the state `b` is: registers, CP0, counters, RAM, and the continuation.
    static func expectSameState(_ a: Board, _ b: Board, _ note: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let (x, y) = (a.malta.cpu, b.malta.cpu)
        #expect(x.executedInstructions == y.executedInstructions && x.pc == y.pc && x.cycles == y.cycles, "\(note)", sourceLocation: sourceLocation)
        #expect((0..<32).map(x.gpr) == (0..<32).map(y.gpr) && x.cp0 == y.cp0 && x.cause == y.cause, "\(note)", sourceLocation: sourceLocation)
        #expect(a.sameRAM(as: b), "\(note): RAM differs", sourceLocation: sourceLocation)
        #expect(a.continuation(200_000) == b.continuation(200_000), "\(note): the continuation differs", sourceLocation: sourceLocation)
    }

    @Test func runSplitIntoPiecesEqualsOneRun() throws {
        let whole = try Self.straight(3_000_000)
        let pieces = try Self.teachos()
        var sizes: [UInt64] = [1, 7, 999_999, 13, 250_000, 1, 1]
        while pieces.malta.cpu.executedInstructions < 3_000_000 {
            let left = 3_000_000 - pieces.malta.cpu.executedInstructions
            _ = pieces.malta.run(maxInstructions: min(left, sizes.isEmpty ? 77_777 : sizes.removeFirst()))
        }
        Self.expectSameState(pieces, whole, "pieces")
    }

    @Test func backThenForwardGivesTheSameState() throws {
        let board = try Self.teachos()
        let travel = TimeTravel(board: board.malta, interval: 500_000)
        #expect(board.malta.run(maxInstructions: 3_500_000) == .instructionLimit)
        #expect(travel.checkpoints.count >= 7)
        let end = board.malta.cpu.executedInstructions
        let reference = board.malta.snapshot()

        #expect(travel.stepBack(1_234_567) == .reached)
        #expect(board.malta.cpu.executedInstructions == end - 1_234_567)
        Self.expectSameState(board, try Self.straight(end - 1_234_567), "back 1234567")

        #expect(travel.goTo(instruction: end) == .reached)
        let atEnd = try Self.teachos()
        try atEnd.malta.restore(reference)
        Self.expectSameState(board, atEnd, "forward again")

        // One instruction back, deep in the run, then its cost.
        _ = travel.goTo(instruction: end)
        let clock = ContinuousClock()
        let elapsed = clock.measure { #expect(travel.stepBack(1) == .reached) }
        #expect(board.malta.cpu.executedInstructions == end - 1)
        Self.expectSameState(board, try Self.straight(end - 1), "back 1")
        print("step_back(1) at instruction \(end), checkpoints every \(travel.interval): \(elapsed)")

        #expect(travel.goTo(instruction: 0) == .reached)
        #expect(travel.stepBack(1) == .startOfHistory && board.malta.cpu.executedInstructions == 0)
    }

    /// Forward positions of the hits of `conditions` from a fresh boot up to `end`.
    final class Positions: CPUObserver {
        let pc: UInt32?
        let watched: ClosedRange<UInt32>?
        var hits: [UInt64] = []
        init(pc: UInt32? = nil, watched: ClosedRange<UInt32>? = nil) {
            self.pc = pc
            self.watched = watched
        }
        func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction {
            if pc == self.pc { hits.append(cpu.executedInstructions) }
            return .proceed
        }
        func cpu(_ cpu: CPU, didTakeException trap: Trap) -> ObserverAction { .proceed }
        func cpu(_ cpu: CPU, didChangeMode change: ModeChange) -> ObserverAction { .proceed }
        func cpu(_ cpu: CPU, didWriteTLB index: Int, entry: TLBEntry, pc: UInt32) -> ObserverAction { .proceed }
        func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction {
            if access.isWrite { hits.append(cpu.executedInstructions) }
            return .proceed
        }
    }

    @Test func continueBackStopsAtThePreviousBreakpointHits() throws {
        let board = try Self.teachos()
        let trap = try Self.symbol(board, "trap")
        let travel = TimeTravel(board: board.malta, interval: 400_000)
        let seen = Positions(pc: trap)
        board.malta.cpu.observer = seen
        board.malta.cpu.observesInstructions = true
        _ = board.malta.run(maxInstructions: 2_000_000)
        board.malta.cpu.observer = nil
        board.malta.cpu.observesInstructions = false
        try #require(seen.hits.count > 5)

        let conditions = TimeTravel.Conditions(breakpoints: [trap])
        for expected in seen.hits.reversed().prefix(4) {
            #expect(travel.continueBack(until: conditions) == .breakpoint(pc: trap))
            #expect(board.malta.cpu.pc == trap && board.malta.cpu.executedInstructions == expected)
        }
        // Before the first hit there is none: back to the start.
        _ = travel.goTo(instruction: seen.hits[0])
        #expect(travel.continueBack(until: conditions) == .startOfHistory)
        #expect(board.malta.cpu.executedInstructions == 0)
    }

    @Test func continueBackStopsAfterThePreviousWatchedWrite() throws {
        let board = try Self.teachos()
        let kstats = try Self.symbol(board, "kstats")
        let range = kstats...(kstats + 31)
        let travel = TimeTravel(board: board.malta, interval: 300_000)
        let seen = Positions(watched: range)
        board.malta.cpu.observer = seen
        board.malta.cpu.memoryWatches = [range]
        _ = board.malta.run(maxInstructions: 2_000_000)
        board.malta.cpu.observer = nil
        board.malta.cpu.memoryWatches = []
        try #require(seen.hits.count > 2)
        let conditions = TimeTravel.Conditions(watchpoints: [.init(range, reads: false)])
        for expected in seen.hits.reversed().prefix(3) {
            let stop = travel.continueBack(until: conditions)
            guard case .watchpoint(let address, true) = stop else { Issue.record("\(stop)"); return }
            #expect(range.contains(address))
            // Stopped after the store, in the state the forward run's callback saw.
            #expect(board.malta.cpu.executedInstructions == expected)
        }
    }
}
