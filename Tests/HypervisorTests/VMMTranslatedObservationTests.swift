import Foundation
import MagritteCore
import MagritteMachine
import MagritteTestSupport
import Testing
@testable import MagritteHypervisor

/// Breakpoints under the VMM at translated speed (issue 9, item 5; `Docs/jit.md`, "Observation"):
/// the CPU's `observedPCs` end translated blocks before every guest's breakpoints, the observer
/// tells the guests apart, and the rest of every guest runs translated. Both engines report the
/// same hits at the same instructions.
@Suite("Observation under the VMM at translated speed", .enabled(if: Engine.jitSupported))
struct VMMTranslatedObservationTests {
    /// Two guests running the same program at the same virtual addresses.
    static func pair(_ program: String, engine: Engine) throws -> VMM {
        let vmm = try VMM(ramSize: 72 << 20, engine: engine)
        for name in ["a", "b"] {
            try vmm.addGuest(GuestConfiguration(name: name, ramSize: 32 << 20), imagePath: Repository.guest(program))
        }
        vmm.slice = 50_000
        return vmm
    }

    /// Records every instruction the CPU reports, with the guest that ran it.
    final class Recorder: CPUObserver {
        struct Hit: Equatable {
            var guest: Int
            var pc: UInt32
            var retired: UInt64
            var v0: UInt32
        }
        unowned let vmm: VMM
        var hits: [Hit] = []
        var histogram: [UInt32: Int]?
        /// Stops the run at this guest's `stopAt`-th hit.
        var stopGuest = 0
        var stopAt: Int?
        var stopGuestHits = 0

        init(_ vmm: VMM) { self.vmm = vmm }

        func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction {
            guard let g = vmm.current else { return .proceed }
            if histogram != nil {
                histogram![pc, default: 0] += 1
                return .proceed
            }
            hits.append(Hit(guest: g.index, pc: pc, retired: vmm.retiredInstructions(of: g), v0: cpu.gpr(2)))
            if g.index == stopGuest { stopGuestHits += 1 }
            if g.index == stopGuest, stopGuestHits == stopAt {
                vmm.stop()
                return .stop
            }
            return .proceed
        }
    }

    /// The pc the interpreter executes most often in the program's first instructions under the VMM.
    static func hottestPC(_ program: String) throws -> UInt32 {
        let vmm = try pair(program, engine: .interpreter)
        let recorder = Recorder(vmm)
        recorder.histogram = [:]
        vmm.cpu.observer = recorder
        vmm.cpu.observesInstructions = true
        _ = vmm.run(maxInstructions: 2_000_000)
        return try #require(recorder.histogram!.max { $0.value < $1.value }?.key)
    }

    /// What must agree between the engines after a run.
    static func state(_ vmm: VMM) -> String {
        vmm.guests.map { g in
            let r = vmm.registers(of: g)
            return "\(g.name): pc=\(String(r.pc, radix: 16)) retired=\(vmm.retiredInstructions(of: g)) gprs=\(r.gprs) console=\(g.consoleText)"
        }.joined(separator: "\n") + "\nexecuted=\(vmm.cpu.executedInstructions) now=\(vmm.now)"
    }

    /// Quanta that end inside a block (every 4096 slots for a guest kernel with interrupts on)
    /// must not make the translator start a new block at every instruction a quantum ended at
    /// (`JIT.catchUp`, `Docs/jit.md`, "Lookup and invalidation"): the same guest instructions are
    /// translated, within a few per cent, as with long quanta, and the guests see the same.
    @Test("Quanta that end inside blocks translate no more than long quanta", arguments: ["bench/crc32", "bench/sort"])
    func quantumEndsDoNotMultiplyBlocks(program: String) throws {
        var translated: [Bool: UInt64] = [:], states: [Bool: String] = [:]
        for everyQuantum in [false, true] {
            let vmm = try Self.pair(program, engine: .jit)
            vmm.skipsIdleQuantumEnds = !everyQuantum
            #expect(vmm.run(maxInstructions: 40_000_000) == .instructionLimit)
            translated[everyQuantum] = vmm.cpu.jitStatistics.guestInstructions
            states[everyQuantum] = Self.state(vmm)
        }
        let long = try #require(translated[false]), short = try #require(translated[true])
        #expect(states[false] == states[true])
        #expect(short * 100 <= long * 105 + 2000, "\(program): \(short) guest instructions translated with every quantum's end, \(long) without")
    }

    @Test("A breakpoint in both guests' hottest loop: the same hits on both engines, more than 90 % still translated",
          arguments: ["bench/crc32", "bench/interp", "bench/sort"])
    func breakpointsKeepTranslatedSpeed(program: String) throws {
        let hot = try Self.hottestPC(program)
        var outcomes: [Engine: (state: String, hits: [Recorder.Hit])] = [:]
        for engine in [Engine.interpreter, .jit] {
            let vmm = try Self.pair(program, engine: engine)
            let recorder = Recorder(vmm)
            vmm.cpu.observer = recorder
            vmm.cpu.observedPCs = [hot]
            let before = vmm.cpu.jitStatistics.instructionsRun
            #expect(vmm.run(maxInstructions: 20_000_000) == .instructionLimit)
            outcomes[engine] = (Self.state(vmm), recorder.hits)
            if engine == .jit {
                let translated = Double(vmm.cpu.jitStatistics.instructionsRun - before) / Double(vmm.cpu.executedInstructions)
                #expect(translated > 0.9, "\(program): \(Int(translated * 100)) % translated with a breakpoint armed")
            }
        }
        let (i, j) = (try #require(outcomes[.interpreter]), try #require(outcomes[.jit]))
        #expect(i.hits.count > 1000 && Set(i.hits.map(\.guest)) == [0, 1], "\(program): both guests reach the breakpoint")
        #expect(i.hits.allSatisfy { $0.pc == hot })
        #expect(i.hits == j.hits, "\(program): \(i.hits.count) hits by the interpreter, \(j.hits.count) translated")
        #expect(i.state == j.state)
    }

    @Test("A stop at one guest's breakpoint and the run resumed from it: the same on both engines, the other guest went past",
          arguments: ["bench/crc32", "bench/sort"])
    func stopAndResume(program: String) throws {
        let hot = try Self.hottestPC(program)
        var outcomes: [Engine: [String]] = [:]
        for engine in [Engine.interpreter, .jit] {
            let vmm = try Self.pair(program, engine: engine)
            let recorder = Recorder(vmm)
            recorder.stopGuest = 1
            recorder.stopAt = 5000
            vmm.cpu.observer = recorder
            vmm.cpu.observedPCs = [hot]
            var seen: [String] = []
            #expect(vmm.run(maxInstructions: 20_000_000) == .stopped)
            let b = vmm.guests[1]
            #expect(vmm.current === b && b.statistics.instructions > 0)
            #expect(vmm.registers(of: b).pc == hot)
            seen.append(Self.state(vmm))
            // Resumed (the other guest first, round robin): b's instruction at the breakpoint is
            // reported again when b comes back, and its run goes on to the 8000th hit.
            recorder.stopAt = 8000
            #expect(vmm.run(maxInstructions: 20_000_000) == .stopped)
            #expect(vmm.registers(of: b).pc == hot)
            seen.append(Self.state(vmm))
            // Removed: the blocks are translated again without the limit, and the run goes on.
            vmm.cpu.observedPCs = []
            #expect(vmm.run(maxInstructions: 2_000_000) == .instructionLimit)
            seen.append(Self.state(vmm))
            seen.append("\(recorder.hits.count) hits")
            outcomes[engine] = seen
        }
        #expect(outcomes[.interpreter] == outcomes[.jit])
    }

    @Test("Time travel's breakpoints of one guest: the same hit on both engines, the other guest's passes ignored")
    func continueBackOnBothEngines() throws {
        var stops: [Engine: [String]] = [:]
        for engine in [Engine.interpreter, .jit] {
            let vmm = try VMMSnapshotTests.teachosPair(engine: engine)
            let trap = try VMMTimeTravelTests.symbol(vmm, "trap")
            let travel = VMMTimeTravel(vmm: vmm, interval: 500_000)
            #expect(travel.run(maxInstructions: 3_000_000) == .instructionLimit)
            var seen: [String] = []
            for _ in 0..<3 {
                let (position, translated) = (vmm.cpu.executedInstructions, vmm.cpu.jitStatistics.instructionsRun)
                let stop = travel.continueBack(untilEach: [1: TimeTravel.Conditions(breakpoints: [trap])])
                if engine == .jit {
                    // Re-execution covered at least the way back, and ran translated.
                    let back = position - vmm.cpu.executedInstructions
                    #expect(back > 0 && (vmm.cpu.jitStatistics.instructionsRun - translated) * 10 >= back * 9)
                }
                #expect(stop == .breakpoint(pc: trap, guest: 1))
                #expect(vmm.current === vmm.guests[1] && vmm.registers(of: vmm.guests[1]).pc == trap)
                seen.append("\(stop) at \(vmm.cpu.executedInstructions): \(Self.state(vmm))")
            }
            // No breakpoint is left behind for the runs after the trip.
            #expect(vmm.cpu.observedPCs.isEmpty)
            stops[engine] = seen
        }
        #expect(stops[.interpreter] == stops[.jit])
    }
}

/// The ends of quanta the VMM skips (`VMM.skipsQuantumEnds`, `Docs/vmm.md`): a run that skips
/// them is the same run as one that stops at every one, on both engines.
@Suite struct VMMQuantumTests {
    typealias S = VMMSnapshotTests

    static func run(_ make: () throws -> VMM, skipping: Bool, instructions: UInt64) throws -> (S.Observed, VMMRunOutcome, UInt64) {
        let vmm = try make()
        vmm.skipsIdleQuantumEnds = skipping
        let outcome = vmm.run(maxInstructions: instructions)
        return (S.observe(vmm), outcome, vmm.quantaRun)
    }

    @Test("Skipping the ends of quanta changes nothing: consoles, registers, statistics, events and time",
          arguments: [Engine.interpreter, .jit])
    func skippedQuantumEndsChangeNothing(engine: Engine) throws {
        let workloads: [(String, () throws -> VMM, UInt64)] = [
            ("teachos pair", { try S.teachosPair(engine: engine) }, 6_000_000),
            ("crc32 pair", { try VMMTranslatedObservationTests.pair("bench/crc32", engine: engine) }, 3_000_000),
            ("syscalls", {
                let vmm = try VMM(ramSize: 40 << 20, engine: engine)
                try vmm.addGuest(GuestConfiguration(name: "s", ramSize: 32 << 20), imagePath: Repository.guest("vmm/syscalls"))
                return vmm
            }, 40_000_000),
            ("tlbstress", {
                let vmm = try VMM(ramSize: 40 << 20, engine: engine)
                try vmm.addGuest(GuestConfiguration(name: "t", ramSize: 32 << 20), imagePath: Repository.guest("vmm/tlbstress"))
                return vmm
            }, 20_000_000),
        ]
        for (name, make, n) in workloads {
            let (every, o1, quanta) = try Self.run(make, skipping: false, instructions: n)
            let (skipped, o2, fewer) = try Self.run(make, skipping: true, instructions: n)
            #expect(o1 == o2, "\(name)")
            // Skipped indeed: CPU-bound kernels with interrupts off leave the VMM about once a slice;
            // teachos in part (its user processes); the exit-heavy loops end almost every
            // quantum with an exit anyway.
            let ratio: Double = ["crc32 pair": 0.2, "teachos pair": 0.8][name] ?? 1
            #expect(Double(fewer) <= Double(quanta) * ratio, "\(name): \(fewer) quanta against \(quanta)")
            #expect(S.differences(every, skipped) == [], "\(name)")
            #expect(every.consoles.contains { !$0.isEmpty }, "\(name) printed nothing")
        }
    }

    /// Clustering no longer keeps a guest from skipping the ends of quanta: an exit in a long
    /// quantum bounds what it emulates by the end of the ordinary quantum it falls in, so a run
    /// that clusters and skips is the same run as one that clusters and stops at every end.
    @Test("Skipping the ends of quanta with clustering on changes nothing", arguments: [Engine.interpreter, .jit])
    func skippedQuantumEndsWithClusteringChangeNothing(engine: Engine) throws {
        let workloads: [(String, () throws -> VMM, UInt64)] = [
            ("teachos pair", { try S.teachosPair(engine: engine) }, 6_000_000),
            ("tlbstress", {
                let vmm = try VMM(ramSize: 40 << 20, engine: engine)
                try vmm.addGuest(GuestConfiguration(name: "t", ramSize: 32 << 20), imagePath: Repository.guest("vmm/tlbstress"))
                return vmm
            }, 20_000_000),
        ]
        for (name, make, n) in workloads {
            let clustering = { () throws -> VMM in
                let vmm = try make()
                vmm.clustersExits = true
                return vmm
            }
            let (every, o1, quanta) = try Self.run(clustering, skipping: false, instructions: n)
            let (skipped, o2, fewer) = try Self.run(clustering, skipping: true, instructions: n)
            #expect(o1 == o2, "\(name)")
            #expect(fewer < quanta, "\(name): \(fewer) quanta against \(quanta)")
            #expect(S.differences(every, skipped) == [], "\(name)")
            #expect(skipped.statistics.contains { $0.clusteredInstructions > 0 }, "\(name) clustered nothing")
        }
    }

    @Test func registerFingerprintTellsRegistersApart() throws {
        let cpu = try VMM(ramSize: 4 << 20).cpu
        for i in 1..<32 { cpu.setGPR(i, UInt32(truncatingIfNeeded: i &* 0x9E37_79B9)) }
        let base = cpu.registerFingerprint
        #expect(cpu.registerFingerprint == base)
        for i in 1..<32 {
            let v = cpu.gpr(i)
            for bit in [0, 17, 31] {
                cpu.setGPR(i, v ^ (1 << UInt32(bit)))
                #expect(cpu.registerFingerprint != base, "register \(i) bit \(bit)")
                cpu.setGPR(i, v)
            }
        }
        #expect(cpu.registerFingerprint == base)
    }
}

/// Per-instruction observation of one guest (`VMM.instructionObservedGuests`: Lua's
/// `g:on("instruction")`, a guest's step back): the CPU observes every instruction only while
/// that guest runs, and the others run translated. The observed guest's instructions are the
/// same as when every instruction of every guest is observed.
@Suite("Per-instruction observation of one guest under the VMM", .enabled(if: Engine.jitSupported))
struct VMMGuestInstructionObservationTests {
    /// Digests the instructions of guest `guest` (pc, its retired count, v0) the CPU reports.
    final class Digest: CPUObserver {
        unowned let vmm: VMM
        let guest: Int
        var count = 0
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var otherGuests = 0

        init(_ vmm: VMM, guest: Int) {
            self.vmm = vmm
            self.guest = guest
        }

        func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction {
            guard let g = vmm.current else { return .proceed }
            guard g.index == guest else { otherGuests += 1; return .proceed }
            count += 1
            for v in [UInt64(pc), vmm.retiredInstructions(of: g), UInt64(cpu.gpr(2))] { hash = (hash ^ v) &* 0x100_0000_01b3 }
            return .proceed
        }
    }

    @Test("One guest observed: the same instructions as with all observed, both engines; the other guest runs translated",
          arguments: ["bench/crc32", "bench/sort"])
    func oneGuestObserved(program: String) throws {
        var outcomes: [String] = []
        for (engine, onlyOne) in [(Engine.interpreter, false), (.interpreter, true), (.jit, true)] {
            let vmm = try VMMTranslatedObservationTests.pair(program, engine: engine)
            let digest = Digest(vmm, guest: 1)
            vmm.cpu.observer = digest
            if onlyOne { vmm.instructionObservedGuests = [1] } else { vmm.cpu.observesInstructions = true }
            let translated = vmm.cpu.jitStatistics.instructionsRun
            #expect(vmm.run(maxInstructions: 4_000_000) == .instructionLimit)
            if onlyOne { #expect(digest.otherGuests == 0, "\(program): guest 0 observed") }
            let a = vmm.retiredInstructions(of: vmm.guests[0])
            #expect(digest.count > 1_000_000 && a > 1_000_000, "\(program): \(digest.count) observed, guest 0 \(a)")
            if engine == .jit {
                // Guest 0's share ran translated (the observed guest's instructions are interpreted).
                let share = Double(vmm.cpu.jitStatistics.instructionsRun - translated) / Double(a)
                #expect(share > 0.9, "\(program): \(Int(share * 100)) % of guest 0's instructions translated")
            }
            vmm.instructionObservedGuests = nil
            outcomes.append("\(digest.count) \(digest.hash) \(VMMTranslatedObservationTests.state(vmm))")
        }
        #expect(Set(outcomes).count == 1, "\(program): \(outcomes)")
    }
}
