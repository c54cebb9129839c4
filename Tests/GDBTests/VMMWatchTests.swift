import Foundation
import MagritteCore
import MagritteHypervisor
import MagritteMachine
import MagritteTestSupport
import Testing
@testable import MagritteGDB

/// The stub's watchpoints under the VMM at translated speed (issue 9, "Observation"; `Docs/jit.md`):
/// only the accesses to watched pages take the slow path, which asks the stub before each one
/// (`CPUObserver.willAccessMemory`); everything else runs translated. The stops must be those
/// of the stub's old way, which observed every instruction, decoded it and computed its access
/// from the registers (`ForeseeingWatcher` here): the same pc, registers, counts and consoles,
/// on both engines.
@Suite("Watchpoints under the VMM at translated speed", .enabled(if: Engine.jitSupported))
struct VMMWatchTests {
    /// The reference: every instruction observed; one whose access (address from the registers
    /// now) touches a watchpoint stops before it; an access made without that stops after it.
    final class ForeseeingWatcher: CPUObserver {
        let watchpoints: [GDBStopPoint]
        let onStop: () -> Void
        var hit: (kind: GDBStopPoint.Kind, address: UInt32)?

        init(_ watchpoints: [GDBStopPoint], onStop: @escaping () -> Void = {}) {
            self.watchpoints = watchpoints
            self.onStop = onStop
        }

        func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction {
            guard hit == nil, let word = cpu.readVirtual(pc, size: 4), let a = StopPointWatcher.dataAccess(decode(word), cpu) else { return .proceed }
            return stop(a.address, size: a.size, isWrite: a.isWrite)
        }

        func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction {
            hit == nil ? stop(access.virtual, size: access.size, isWrite: access.isWrite) : .proceed
        }

        func stop(_ address: UInt32, size: Int, isWrite: Bool) -> ObserverAction {
            guard let w = watchpoints.first(where: { $0.matches(access: address, size: size, isWrite: isWrite) }) else { return .proceed }
            hit = (w.kind, max(address, w.address))
            onStop()
            return .stop
        }
    }

    /// A debugged VMM: what gdb does after each watchpoint stop (remove the watchpoints, step
    /// the thread over the access, insert them again, continue), with the stub's watcher or the
    /// reference's.
    struct Scenario: Sendable {
        var name: String
        var make: @Sendable (Engine) throws -> VMM
        var watchpoints: @Sendable (VMM) throws -> [GDBStopPoint]
        var stops = 12
        /// Instructions run before the watchpoints are inserted.
        var before: UInt64 = 0
        /// Whether every guest first runs to `main` (past the runtime's clearing of its BSS).
        var fromMain = false
    }

    /// The stub alone, the reference, or the stub with a breakpoint no guest reaches (the CPU's
    /// observing loop runs with the interpreter, blocks end before it with the translator).
    enum Way: String { case stub, reference, stubWithBreakpoint }

    /// The registers, position and console of every guest, and the machine's counts.
    static func state(_ vmm: VMM) -> String {
        let guests = vmm.guests.map { g in
            let r = vmm.registers(of: g)
            return "\(g.name) pc=\(Hex.word(r.pc)) retired=\(vmm.retiredInstructions(of: g)) hi=\(r.hi) lo=\(r.lo) gprs=\(r.gprs) console=\(g.consoleText.count)"
        }
        return guests.joined(separator: " | ") + " | npc=\(Hex.word(vmm.cpu.npc)) delay=\(vmm.cpu.inDelaySlot) executed=\(vmm.cpu.executedInstructions) now=\(vmm.now)"
    }

    static func ranges(_ watchpoints: [GDBStopPoint]) -> [ClosedRange<UInt32>] {
        watchpoints.map { $0.address...($0.address &+ $0.length &- 1) }
    }

    static func referenceResume(_ vmm: VMM, _ watchpoints: [GDBStopPoint]) -> GDBStop {
        let w = ForeseeingWatcher(watchpoints) { vmm.stop() }
        let cpu = vmm.cpu
        (cpu.observer, cpu.observesInstructions) = (w, true)
        cpu.memoryWatches = ranges(watchpoints)
        defer { (cpu.observer, cpu.observesInstructions, cpu.memoryWatches) = (nil, false, []) }
        let outcome = vmm.run()
        let thread = (vmm.current?.index ?? 0) + 1
        if let h = w.hit { return .watch(h.kind, address: h.address, thread: thread) }
        return outcome == .allPoweredOff ? .exited(code: 0) : .trap(thread: thread)
    }

    /// The stops of `s` (each with the state there and after the step over it), and the share
    /// of the instructions that ran translated.
    static func stops(_ s: Scenario, engine: Engine, way: Way) throws -> (stops: [String], translated: Double, inDelaySlot: Int) {
        let vmm = try s.make(engine)
        if s.before > 0 { #expect(vmm.run(maxInstructions: s.before) == .instructionLimit, "\(s.name)") }
        let target = VMMTarget(vmm: vmm)
        if s.fromMain {
            let main = GDBStopPoint(kind: .software, address: try symbol(vmm, "main"), length: 4)
            #expect(target.insert(main))
            for g in vmm.guests { #expect(target.resume(thread: nil, interrupted: { false }) == .trap(thread: g.index + 1), "\(s.name)") }
            #expect(target.remove(main))
        }
        let watchpoints = try s.watchpoints(vmm)
        if way == .stubWithBreakpoint { #expect(target.insert(GDBStopPoint(kind: .software, address: 0x0000_0004, length: 4))) }
        let (executed, translated) = (vmm.cpu.executedInstructions, vmm.cpu.jitStatistics.instructionsRun)
        var seen: [String] = []
        var delaySlots = 0
        for _ in 0..<s.stops {
            for w in watchpoints { #expect(target.insert(w)) }
            let stop = way == .reference ? referenceResume(vmm, watchpoints) : target.resume(thread: nil, interrupted: { false })
            if vmm.cpu.inDelaySlot { delaySlots += 1 }
            seen.append("\(stop) \(state(vmm))")
            guard case .watch(_, _, let thread) = stop else { break }
            for w in watchpoints { #expect(target.remove(w)) }
            seen.append("step \(target.step(thread: thread)) \(state(vmm))")
        }
        let share = Double(vmm.cpu.jitStatistics.instructionsRun - translated) / Double(max(vmm.cpu.executedInstructions - executed, 1))
        return (seen, share, delaySlots)
    }

    static func symbol(_ vmm: VMM, _ name: String) throws -> UInt32 {
        try #require(vmm.guests[0].image?.symbolTable.first { $0.name == name }?.address, "no symbol \(name)")
    }

    static func guests(_ programs: [String], engine: Engine) throws -> VMM {
        let vmm = try VMM(ramSize: 72 << 20, engine: engine)
        for (i, p) in programs.enumerated() {
            try vmm.addGuest(GuestConfiguration(name: "g\(i)", ramSize: 32 << 20), imagePath: Repository.guest(p))
        }
        vmm.slice = 50_000
        return vmm
    }

    static func teachosPair(_ engine: Engine) throws -> VMM {
        let vmm = try VMM(ramSize: 72 << 20, engine: engine)
        for (name, idle) in [("a", "idle=wait"), ("b", "idle=spin")] {
            try vmm.addGuest(GuestConfiguration(name: name, ramSize: 32 << 20, commandLine: idle), imagePath: Repository.guest("os/teachos"))
        }
        return vmm
    }

    /// The process-table field teachos counts up at every trap (GDBWatchTests' watchpoint).
    static func teachosField(_ vmm: VMM) throws -> [GDBStopPoint] {
        [GDBStopPoint(kind: .write, address: try symbol(vmm, "procs") + 1256 + 188, length: 4)]
    }

    static let scenarios: [Scenario] = [
        Scenario(name: "teachos pair, a field both guests count up", make: teachosPair, watchpoints: teachosField),
        Scenario(name: "teachos pair, set while one guest is descheduled", make: teachosPair, watchpoints: teachosField,
                 before: 3_000_000),
        Scenario(name: "teachos pair, the user processes' stacks (guest TLB mappings: hidden fills, ASIDs, TLB writes)",
                 make: teachosPair, watchpoints: { _ in [GDBStopPoint(kind: .access, address: 0x7FFF_EF00, length: 256)] }, stops: 40,
                 before: 3_000_000),
        Scenario(name: "crc32 pair, the top of the stack", make: { try guests(["bench/crc32", "bench/crc32"], engine: $0) },
                 watchpoints: { [GDBStopPoint(kind: .access, address: try symbol($0, "rt_stack_top") - 64, length: 64)] }, stops: 30),
        Scenario(name: "hello pair, the stack", make: { try guests(["tests/hello", "tests/hello"], engine: $0) },
                 watchpoints: { [GDBStopPoint(kind: .write, address: try symbol($0, "rt_stack_top") - 512, length: 512)] }, stops: 60,
                 fromMain: true),
        Scenario(name: "smc, a function it rewrites (a page that is also code)", make: { try guests(["tests/smc"], engine: $0) },
                 watchpoints: { [GDBStopPoint(kind: .access, address: try symbol($0, "fn"), length: 32)] }, stops: 40, fromMain: true),
        Scenario(name: "hello pair, the UART (a device page; printf's padding is stored in delay slots)",
                 make: { try guests(["tests/hello", "tests/hello"], engine: $0) },
                 watchpoints: { _ in [GDBStopPoint(kind: .access, address: 0xB800_03F8, length: 8)] }, stops: 160),
        Scenario(name: "lwl_lwr, its buffer read", make: { try guests(["tests/lwl_lwr"], engine: $0) },
                 watchpoints: { [GDBStopPoint(kind: .read, address: try symbol($0, "buf"), length: 16)] }),
        Scenario(name: "swl_swr, its buffer written", make: { try guests(["tests/swl_swr"], engine: $0) },
                 watchpoints: { [GDBStopPoint(kind: .write, address: try symbol($0, "buf") + 4, length: 4)] }, stops: 30, fromMain: true),
        Scenario(name: "llsc, its words", make: { try guests(["tests/llsc"], engine: $0) },
                 watchpoints: { [GDBStopPoint(kind: .access, address: try symbol($0, "words"), length: 16)] }, stops: 40, fromMain: true),
    ]

    @Test("The stub's watchpoint stops are the reference's: same pc, registers, counts and consoles, both engines, with a breakpoint or not",
          arguments: scenarios.indices)
    func stopsAreTheReferences(scenario: Int) throws {
        let s = Self.scenarios[scenario]
        let reference = try Self.stops(s, engine: .interpreter, way: .reference)
        #expect(reference.stops.count > 4 && reference.stops.first?.hasPrefix("watch") == true, "\(s.name): \(reference.stops.first ?? "")")
        for engine in [Engine.interpreter, .jit] {
            for way in [Way.stub, .stubWithBreakpoint] {
                Self.expectSameStops(reference.stops, try Self.stops(s, engine: engine, way: way).stops, "\(s.name), \(engine), \(way)")
            }
        }
    }

    /// Records the first stop where `stub` differs from `reference`.
    static func expectSameStops(_ reference: [String], _ stub: [String], _ what: String) {
        #expect(stub.count == reference.count, "\(what)")
        for (i, (a, b)) in zip(reference, stub).enumerated() where a != b {
            Issue.record("\(what): stop \(i)\n reference \(a)\n stub      \(b)")
            break
        }
    }

    @Test("A stop before a watched access in a delay slot: at the slot, the branch's target next, as the reference")
    func stopsInDelaySlots() throws {
        let s = try #require(Self.scenarios.first { $0.name.contains("delay slots") })
        let stub = try Self.stops(s, engine: .jit, way: .stub)
        #expect(stub.inDelaySlot > 0, "no stop in a delay slot among \(stub.stops.count / 2)")
        #expect(try Self.stops(s, engine: .interpreter, way: .reference).stops == stub.stops)
    }

    @Test("With a watchpoint armed in both guests, most instructions run translated")
    func watchpointsKeepTranslatedSpeed() throws {
        let s = Scenario(name: "teachos", make: Self.teachosPair, watchpoints: Self.teachosField, stops: 20)
        let stub = try Self.stops(s, engine: .jit, way: .stub)
        #expect(stub.stops.count == 40 && stub.stops.allSatisfy { $0.contains("watch(MagritteGDB.GDBStopPoint.Kind.write") || $0.hasPrefix("step") })
        #expect(stub.translated > 0.9, "\(Int(stub.translated * 100)) % translated")
    }

    @Test("Reverse-continue to a watchpoint: re-execution runs translated, and lands on the access the stop before it saw",
          arguments: [Engine.interpreter, .jit])
    func reverseContinueToAWatchpointRunsTranslated(engine: Engine) throws {
        let vmm = try Self.teachosPair(engine)
        let travel = VMMTimeTravel(vmm: vmm, interval: 500_000)
        let target = VMMTarget(vmm: vmm, timeTravel: travel)
        #expect(travel.run(maxInstructions: 2_000_000) == .instructionLimit)
        let watch = try Self.teachosField(vmm)[0]
        #expect(target.insert(watch))
        var stops: [String] = []
        for _ in 0..<3 {
            let stop = target.resume(thread: nil, interrupted: { false })
            stops.append("\(stop) \(Self.state(vmm))")
            guard case .watch(_, _, let thread) = stop else { break }
            #expect(target.remove(watch))
            _ = target.step(thread: thread)
            #expect(target.insert(watch))
        }
        // From after the third stop's store: back to it (the access just made: the position
        // itself; gdb then steps back over it), then to the second's, re-executed.
        for i in 0..<2 {
            let (position, translated) = (vmm.cpu.executedInstructions, vmm.cpu.jitStatistics.instructionsRun)
            let stop = target.continueBack(thread: nil, interrupted: { false })
            guard case .watch(.write, watch.address, _) = stop else {
                Issue.record("\(stop)")
                break
            }
            let back = position - vmm.cpu.executedInstructions
            #expect(i == 0 ? back == 0 : back > 0)
            if engine == .jit { #expect((vmm.cpu.jitStatistics.instructionsRun - translated) * 10 >= back * 9) }
            // The stop is after the store: stepping back over it is the stop before it, going forward.
            _ = target.stepBack(thread: (vmm.current?.index ?? 0) + 1)
            #expect(stops.contains { $0.hasSuffix(Self.state(vmm)) }, "\(Self.state(vmm))")
        }
    }

    @Test("A breakpoint on a watched store: continuing from the breakpoint stops before the store for the watchpoint at once, then not again",
          arguments: [Engine.interpreter, .jit])
    func breakpointOnAWatchedStore(engine: Engine) throws {
        let vmm = try Self.teachosPair(engine)
        let target = VMMTarget(vmm: vmm)
        let watch = try Self.teachosField(vmm)[0]
        #expect(vmm.run(maxInstructions: 3_000_000) == .instructionLimit)  // past the kernel's BSS clearing: the trap's store
        #expect(target.insert(watch))
        guard case .watch = target.resume(thread: nil, interrupted: { false }) else { Issue.record("no watchpoint stop"); return }
        let store = GDBStopPoint(kind: .software, address: vmm.cpu.pc, length: 4)
        #expect(target.remove(watch) && target.insert(store))
        // The breakpoint's pass that stores to the watched field (`sw at, 188(s1)`; other passes
        // store to other processes' slots).
        var thread = 0
        for _ in 0..<1000 where thread == 0 {
            guard case .trap(let t) = target.resume(thread: nil, interrupted: { false }) else { Issue.record("no breakpoint stop"); return }
            if vmm.cpu.gpr(17) &+ 188 == watch.address { thread = t }
        }
        let (position, before) = (vmm.cpu.executedInstructions, Self.state(vmm))
        #expect(thread != 0 && vmm.cpu.pc == store.address)
        #expect(target.insert(watch))
        #expect(target.resume(thread: nil, interrupted: { false }) == .watch(.write, address: watch.address, thread: thread))
        #expect(vmm.cpu.executedInstructions == position && Self.state(vmm) == before)
        // Continued again (gdb would step over the store first): the run goes on.
        #expect(target.remove(store))
        _ = target.resume(thread: nil, interrupted: { false })
        #expect(vmm.cpu.executedInstructions > position)
    }

    @Test("Under gdb, a script's per-guest instruction observation is off (its observer is not the CPU's) and comes back after")
    func scriptsInstructionObservationWaitsForGDB() throws {
        let s = Scenario(name: "teachos", make: Self.teachosPair, watchpoints: Self.teachosField, stops: 10)
        let vmm = try s.make(.jit)
        let target = VMMTarget(vmm: vmm)
        vmm.instructionObservedGuests = [0, 1]
        #expect(target.insert(try s.watchpoints(vmm)[0]))
        let translated = vmm.cpu.jitStatistics.instructionsRun
        for _ in 0..<s.stops { _ = target.resume(thread: nil, interrupted: { false }) }
        #expect(vmm.cpu.jitStatistics.instructionsRun - translated > vmm.cpu.executedInstructions / 2)
        #expect(vmm.instructionObservedGuests == [0, 1] && vmm.cpu.observesInstructions)
    }
}
