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

    /// Checkpoints share with the one before the pages that did not change, and only those:
    /// each holds the bytes a full snapshot at its position has, a page is shared exactly when
    /// a full snapshot before has the same bytes there, the memory counted is each page once,
    /// a budget holds more of them than of full copies, and going back is exact.
    @Test func checkpointsShareTheirUnchangedPagesAndGoingBackStaysExact() throws {
        let board = try Self.teachos()
        let travel = TimeTravel(board: board.malta, interval: 400_000)
        #expect(board.malta.run(maxInstructions: 4_000_000) == .instructionLimit)
        let checkpoints = travel.checkpoints
        try #require(checkpoints.count >= 10)

        // The oracle: full copies (`snapshot()` shares nothing) from a straight run, in turn.
        let straight = try Self.teachos()
        var previous: (checkpoint: MaltaSnapshot, full: MaltaSnapshot)?
        var (shared, stored) = (0, 0)
        for c in checkpoints {
            while straight.malta.cpu.executedInstructions < c.executed {
                _ = straight.malta.run(maxInstructions: c.executed - straight.malta.cpu.executedInstructions)
            }
            let full = straight.malta.snapshot()
            try #require(full.ram.frames == c.ram.frames, "pages stored at \(c.executed)")
            for (i, frame) in c.ram.frames.enumerated() {
                #expect(memcmp(c.ram.pages[i].bytes, full.ram.pages[i].bytes, 4096) == 0, "page \(frame) at \(c.executed)")
                guard let previous else { continue }
                let j = previous.full.ram.frames.firstIndex(of: frame)
                let unchanged = j.map { memcmp(previous.full.ram.pages[$0].bytes, full.ram.pages[i].bytes, 4096) == 0 } ?? false
                let shares = j.map { previous.checkpoint.ram.pages[$0] === c.ram.pages[i] } ?? false
                #expect(shares == unchanged, "page \(frame) at \(c.executed): shared \(shares), unchanged \(unchanged)")
                if shares { shared += 1 }
                stored += 1
            }
            #expect(full.ram.pages.allSatisfy { p in !c.ram.pages.contains { $0 === p } })  // `snapshot()` copies
            previous = (c, full)
        }
        #expect(shared * 2 > stored, "\(shared) of \(stored) pages shared")

        // Memory: each page once, however many checkpoints share it.
        func counted(_ checkpoints: ArraySlice<MaltaSnapshot>) -> Int {
            let pages = Set(checkpoints.flatMap { $0.ram.pages.map(ObjectIdentifier.init) })
            return pages.count * 4096 + checkpoints.reduce(0) { $0 + $1.stateByteCount + $1.ram.frames.count * 4 }
        }
        #expect(travel.memoryUsed == counted(checkpoints[...]))
        let full = checkpoints.reduce(0) { $0 + $1.byteCount }
        #expect(travel.memoryUsed * 2 < full, "\(travel.memoryUsed) bytes, \(full) as full copies")

        // Half that budget keeps the newest checkpoints that fit in it, counted that way (after
        // dropping the oldest ones): more than full copies would.
        let budget = travel.memoryUsed / 2
        let kept = (0..<checkpoints.count).first { counted(checkpoints[$0...]) <= budget }!
        let tight = try Self.teachos()
        let small = TimeTravel(board: tight.malta, interval: 400_000, memoryBudget: budget)
        #expect(tight.malta.run(maxInstructions: 4_000_000) == .instructionLimit)
        #expect(small.checkpoints.map(\.executed) == checkpoints[kept...].map(\.executed))
        #expect(small.memoryUsed <= budget && small.memoryUsed == counted(small.checkpoints[...]))
        #expect(small.checkpoints.count > budget / checkpoints.last!.byteCount, "\(small.checkpoints.count) checkpoints in \(budget) bytes")

        // Back into the middle of a span, across shared pages, and forward again: exact.
        let end = board.malta.cpu.executedInstructions
        #expect(travel.goTo(instruction: 1_234_567) == .reached)
        Self.expectSameState(board, try Self.straight(1_234_567), "back to 1234567")
        #expect(travel.goTo(instruction: end - 3) == .reached)
        let reference = board.malta.snapshot()
        #expect(travel.stepBack(1) == .reached)
        Self.expectSameState(board, try Self.straight(end - 4), "one back")
        #expect(travel.goTo(instruction: end - 3) == .reached)
        let atEnd = try Self.teachos()
        try atEnd.malta.restore(reference)
        Self.expectSameState(board, atEnd, "forward again")
    }
}
