import Foundation
import MagritteCore
@testable import MagritteMachine
import MagritteTestSupport
import Testing
@testable import MagritteHypervisor

/// Time travel under the VMM (issue 10, item 2): going to a position re-executes the recorded
/// calls from a checkpoint and lands in the state a run had there; going back finds the
/// previous breakpoint, watchpoint or guest instruction.
@Suite struct VMMTimeTravelTests {
    typealias S = VMMSnapshotTests

    static func symbol(_ vmm: VMM, _ name: String) throws -> UInt32 {
        try #require(vmm.guests[0].image?.symbolTable.first { $0.name == name }?.address, "no symbol \(name)")
    }

    @Test("go_to lands where a run stopped there would be; forward again where it was", arguments: [Engine.interpreter, .jit])
    func goToIsTheStateOfARunThere(engine: Engine) throws {
        let vmm = try S.teachosPair(engine: engine)
        let travel = VMMTimeTravel(vmm: vmm, interval: 1_000_000)
        #expect(travel.run(maxInstructions: 7_000_000) == .instructionLimit)
        let end = S.observe(vmm)
        #expect(travel.checkpoints.count >= 5)
        for target: UInt64 in [4_321_987, 1_000_000, 6_999_999, 123] {
            let reference = try S.teachosPair(engine: engine)
            _ = reference.run(maxInstructions: target)
            #expect(travel.goTo(instruction: target) == .reached)
            #expect(vmm.cpu.executedInstructions == target)
            #expect(S.differences(S.observe(vmm), S.observe(reference)) == [], "at \(target)")
        }
        #expect(travel.goTo(instruction: 7_000_000) == .reached)
        #expect(S.differences(S.observe(vmm), end) == [])
        #expect(travel.stepBack(1) == .reached && vmm.cpu.executedInstructions == 6_999_999)
        #expect(travel.goTo(instruction: 9_000_000) == .endOfHistory)
    }

    /// A VMM's checkpoints share with the one before the RAM pages that did not change and the
    /// trace's events they both hold: each holds what a full snapshot of a run stopped there
    /// holds, the memory counted is each page and chunk of events once, and going back is exact.
    @Test func checkpointsShareUnchangedPagesAndEvents() throws {
        let vmm = try S.teachosPair(engine: .interpreter)
        let travel = VMMTimeTravel(vmm: vmm, interval: 400_000)
        #expect(travel.run(maxInstructions: 4_000_000) == .instructionLimit)
        let end = S.observe(vmm)
        let checkpoints = travel.checkpoints
        try #require(checkpoints.count >= 9)
        let straight = try S.teachosPair(engine: .interpreter)
        var (shared, stored) = (0, 0)
        for (i, c) in checkpoints.enumerated() {
            _ = straight.run(maxInstructions: c.executed - straight.cpu.executedInstructions)
            let full = straight.snapshot()  // shares nothing
            #expect(full.executed == c.executed && full.state == c.state && full.events == c.events && full.eventTotal == c.eventTotal)
            try #require(full.ram.frames == c.ram.frames, "pages stored at \(c.executed)")
            for (j, frame) in c.ram.frames.enumerated() {
                #expect(memcmp(c.ram.pages[j].bytes, full.ram.pages[j].bytes, 4096) == 0, "page \(frame) at \(c.executed)")
                if i > 0, let k = checkpoints[i - 1].ram.frames.firstIndex(of: frame), checkpoints[i - 1].ram.pages[k] === c.ram.pages[j] { shared += 1 }
                stored += 1
            }
        }
        #expect(shared * 2 > stored, "\(shared) of \(stored) pages shared")
        let full = checkpoints.reduce(0) { $0 + $1.byteCount }
        #expect(travel.memoryUsed * 2 < full && travel.memoryUsed == checkpoints.enumerated().reduce(0) { sum, c in
            sum + c.element.byteCount(notSharedWith: c.offset == 0 ? nil : checkpoints[c.offset - 1])
        }, "\(travel.memoryUsed) bytes, \(full) as full copies")

        // Back into a span and forward again: exact, events included.
        let reference = try S.teachosPair(engine: .interpreter)
        _ = reference.run(maxInstructions: 2_345_678)
        #expect(travel.goTo(instruction: 2_345_678) == .reached)
        #expect(S.differences(S.observe(vmm), S.observe(reference)) == [])
        #expect(travel.goTo(instruction: 4_000_000) == .reached)
        #expect(S.differences(S.observe(vmm), end) == [])
    }

    @Test func mixedCallsAndChangesByHandAreReplayed() throws {
        let vmm = try S.teachosPair(engine: .interpreter)
        let travel = VMMTimeTravel(vmm: vmm, interval: 500_000)
        var marks: [(UInt64, S.Observed)] = []
        func mark() { marks.append((vmm.cpu.executedInstructions, S.observe(vmm))) }
        #expect(travel.run(maxInstructions: 1_200_000) == .instructionLimit)
        mark()
        #expect(travel.step(vmm.guests[1], instructions: 300_000) == .instructionLimit)
        // Changed by hand: going to this position again lands after the change.
        vmm.setRegister(of: vmm.guests[0], 9, 0xDEAD_BEEF)  // t1: teachos overwrites it soon
        vmm.fireTimer(vmm.guests[0])
        mark()
        #expect(travel.run(maxInstructions: 1_000_000) == .instructionLimit)
        mark()
        #expect(travel.step(vmm.guests[0], instructions: 1) == .instructionLimit)
        mark()
        #expect(travel.run(maxInstructions: 700_000) == .instructionLimit)
        mark()
        for (position, seen) in marks.reversed() + marks {
            #expect(travel.goTo(instruction: position) == .reached)
            #expect(S.differences(S.observe(vmm), seen) == [], "at \(position)")
        }
        // Going back and running on makes a new future: the old one is forgotten.
        #expect(travel.goTo(instruction: marks[1].0) == .reached)
        #expect(travel.run(maxInstructions: 10) == .instructionLimit)
        #expect(travel.endOfHistory == marks[1].0 + 10)
        #expect(travel.goTo(instruction: marks[0].0) == .reached)
        #expect(S.differences(S.observe(vmm), marks[0].1) == [])
    }

    /// Positions (executed instructions) and guests where the CPU was about to run `pc`.
    final class Hits: CPUObserver {
        let vmm: VMM
        let pc: UInt32?
        let guest: Int?
        var seen: [(position: UInt64, pc: UInt32, guest: Int)] = []
        var last: [Int: (UInt32, UInt64)] = [:]
        init(_ vmm: VMM, pc: UInt32?, guest: Int?) { (self.vmm, self.pc, self.guest) = (vmm, pc, guest) }
        func cpu(_ cpu: CPU, willExecuteAt at: UInt32) -> ObserverAction {
            guard let g = vmm.current, guest == nil || guest == g.index, pc == nil || pc == at else { return .proceed }
            let retired = vmm.retiredInstructions(of: g)
            if pc == nil, let l = last[g.index], l == (at, retired) { return .proceed }  // a retry after a hidden fill
            last[g.index] = (at, retired)
            seen.append((cpu.executedInstructions, at, g.index))
            return .proceed
        }
        func cpu(_ cpu: CPU, didTakeException trap: Trap) -> ObserverAction { .proceed }
        func cpu(_ cpu: CPU, didChangeMode change: ModeChange) -> ObserverAction { .proceed }
        func cpu(_ cpu: CPU, didWriteTLB index: Int, entry: TLBEntry, pc: UInt32) -> ObserverAction { .proceed }
        func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction { .proceed }
    }

    @Test func continueBackStopsAtThePreviousBreakpointHitsOfEveryGuest() throws {
        let vmm = try S.teachosPair(engine: .interpreter)
        let trap = try Self.symbol(vmm, "trap")
        let travel = VMMTimeTravel(vmm: vmm, interval: 400_000)
        let hits = Hits(vmm, pc: trap, guest: nil)
        vmm.cpu.observer = hits
        vmm.cpu.observesInstructions = true
        #expect(travel.run(maxInstructions: 3_000_000) == .instructionLimit)
        vmm.cpu.observer = nil
        vmm.cpu.observesInstructions = false
        try #require(hits.seen.count > 10)
        #expect(Set(hits.seen.map(\.guest)) == [0, 1])
        let conditions = TimeTravel.Conditions(breakpoints: [trap])
        for expected in hits.seen.suffix(6).reversed() {
            #expect(travel.continueBack(until: conditions) == .breakpoint(pc: trap, guest: expected.guest))
            #expect(vmm.cpu.executedInstructions == expected.position && vmm.cpu.pc == trap && vmm.current?.index == expected.guest)
        }
        // Only guest b's hits.
        let lastOfB = hits.seen.filter { $0.guest == 1 && $0.position < vmm.cpu.executedInstructions }.last!
        #expect(travel.continueBack(until: conditions, guest: vmm.guests[1]) == .breakpoint(pc: trap, guest: 1))
        #expect(vmm.cpu.executedInstructions == lastOfB.position)
        // Back before the first hit: the start of history.
        #expect(travel.goTo(instruction: hits.seen[0].position) == .reached)
        #expect(travel.continueBack(until: conditions) == .startOfHistory)
        #expect(vmm.cpu.executedInstructions == travel.startOfHistory)
    }

    @Test func continueBackStopsAfterTheLastWriteToAWatchedField() throws {
        let vmm = try S.teachosPair(engine: .interpreter)
        let kstats = try Self.symbol(vmm, "kstats")
        let travel = VMMTimeTravel(vmm: vmm, interval: 500_000)
        #expect(travel.run(maxInstructions: 2_500_000) == .instructionLimit)
        let end = vmm.cpu.executedInstructions
        let conditions = TimeTravel.Conditions(watchpoints: [.init(kstats...(kstats + 31), reads: false, writes: true)])
        guard case .watchpoint(let address, true, let guest) = travel.continueBack(until: conditions) else {
            Issue.record("no write to kstats found")
            return
        }
        #expect((kstats...(kstats + 31)).contains(address))
        let position = vmm.cpu.executedInstructions
        #expect(position < end)
        // Nothing wrote there between the hit and the end: the guest's field is already final.
        let value = vmm.readGuestMemory(vmm.guests[guest], virtual: address & ~3, size: 4)
        #expect(travel.goTo(instruction: end) == .reached)
        #expect(vmm.readGuestMemory(vmm.guests[guest], virtual: address & ~3, size: 4) == value)
    }

    @Test func aGuestStepsBackToItsOwnPreviousInstruction() throws {
        let vmm = try S.teachosPair(engine: .interpreter)
        let travel = VMMTimeTravel(vmm: vmm, interval: 300_000)
        _ = travel.run(maxInstructions: 1_000_000)
        let hits = Hits(vmm, pc: nil, guest: 0)
        vmm.cpu.observer = hits
        vmm.cpu.observesInstructions = true
        _ = travel.run(maxInstructions: 1_000_000)
        vmm.cpu.observer = nil
        vmm.cpu.observesInstructions = false
        let a = vmm.guests[0]
        let before = hits.seen.filter { $0.position < vmm.cpu.executedInstructions }
        #expect(travel.stepBack(1, guest: a) == .instruction(pc: before.last!.pc, guest: 0))
        #expect(vmm.cpu.executedInstructions == before.last!.position && vmm.registers(of: a).pc == before.last!.pc)
        let three = before[before.count - 4]
        #expect(travel.stepBack(3, guest: a) == .instruction(pc: three.pc, guest: 0))
        #expect(vmm.cpu.executedInstructions == three.position)
    }
}

extension VMMTimeTravelTests {
    /// A guest added after the history began: the history starts again there (its checkpoints
    /// are of another configuration), and nothing traps.
    @Test func aGuestAddedLaterRestartsTheHistory() throws {
        let vmm = try VMM(engine: .interpreter)
        try vmm.addGuest(GuestConfiguration(name: "a"), imagePath: Repository.guest("tests/hello"))
        let travel = VMMTimeTravel(vmm: vmm, interval: 10_000)
        _ = travel.run(maxInstructions: 50_000)
        try vmm.addGuest(GuestConfiguration(name: "b"), imagePath: Repository.guest("tests/hello"))
        let here = vmm.cpu.executedInstructions
        #expect(travel.stepBack(10) == .startOfHistory)
        #expect(vmm.cpu.executedInstructions == here && travel.startOfHistory == here && travel.checkpoints.count == 1)
        #expect(travel.run() == .allPoweredOff)
        #expect(vmm.guests.allSatisfy { $0.consoleText.contains("hello from the guest") })
        #expect(travel.goTo(instruction: here + 1000) == .reached)
    }
}
