import Foundation
import MagritteCore
import MagritteMachine
import MagritteTestSupport
import Testing
@testable import MagritteGDB

/// The stub's watchpoints on a bare machine: the slow path of the watched pages asks it before
/// each access, everything else runs translated; the stops are those of the reference that
/// observes every instruction (`VMMWatchTests.ForeseeingWatcher`), on both engines.
@Suite("Watchpoints on a bare machine at translated speed", .enabled(if: Engine.jitSupported))
struct MachineWatchTests {
    typealias W = VMMWatchTests

    static func machine(_ program: String, engine: Engine) throws -> (Malta, () -> String) {
        var config = MaltaConfiguration(ramSize: 128 << 20)
        config.cpu.engine = engine
        var console: [UInt8] = []
        let m = Malta(configuration: config) { console.append($0) }
        try m.load(path: Repository.guest(program))
        m.boot()
        let cpu = m.cpu
        return (m, {
            "pc=\(Hex.word(cpu.pc)) npc=\(Hex.word(cpu.npc)) delay=\(cpu.inDelaySlot) cycles=\(cpu.cycles) retired=\(cpu.retiredInstructions) "
                + "hi=\(cpu.hi) lo=\(cpu.lo) gprs=\((0..<32).map { cpu.gpr($0) }) console=\(console.count)"
        })
    }

    /// The first `count` stops (each with the state there and after the step over it, as gdb
    /// steps) and the share of the instructions run translated.
    static func stops(_ program: String, _ watchpoints: (Malta) throws -> [GDBStopPoint], count: Int, engine: Engine,
                      reference: Bool) throws -> (stops: [String], translated: Double) {
        let (m, state) = try machine(program, engine: engine)
        let target = MachineTarget(machine: m)
        let main = GDBStopPoint(kind: .software, address: try #require(m.image?.symbolTable.first { $0.name == "main" }?.address), length: 4)
        #expect(target.insert(main) && target.resume(thread: nil, interrupted: { false }) == .trap(thread: 1) && target.remove(main))
        let points = try watchpoints(m)
        let executed = m.cpu.executedInstructions, translated = m.cpu.jitStatistics.instructionsRun
        var seen: [String] = []
        for _ in 0..<count {
            let stop: GDBStop
            if reference {
                let w = W.ForeseeingWatcher(points)
                (m.cpu.observer, m.cpu.observesInstructions, m.cpu.memoryWatches) = (w, true, W.ranges(points))
                let outcome = m.run()
                (m.cpu.observer, m.cpu.observesInstructions, m.cpu.memoryWatches) = (nil, false, [])
                stop = w.hit.map { .watch($0.kind, address: $0.address, thread: 1) } ?? (outcome == .poweredOff ? .exited(code: 0) : .trap(thread: 1))
            } else {
                for p in points { #expect(target.insert(p)) }
                stop = target.resume(thread: nil, interrupted: { false })
                for p in points { #expect(target.remove(p)) }
            }
            seen.append("\(stop) \(state())")
            guard case .watch = stop else { break }
            seen.append("step \(target.step(thread: 1)) \(state())")
        }
        let share = Double(m.cpu.jitStatistics.instructionsRun - translated) / Double(max(m.cpu.executedInstructions - executed, 1))
        return (seen, share)
    }

    @Test("The same stops as the reference: the UART (a device page; padding stored in delay slots), the stack, LWL/LWR, LL/SC",
          arguments: [
            ("tests/hello", "uart"), ("tests/hello", "stack"), ("tests/lwl_lwr", "buf"), ("tests/llsc", "words"), ("tests/smc", "fn"),
          ])
    func stopsAreTheReferences(program: String, watched: String) throws {
        let watchpoints: (Malta) throws -> [GDBStopPoint] = { m in
            if watched == "uart" { return [GDBStopPoint(kind: .access, address: 0xB800_03F8, length: 8)] }
            let symbol = try #require(m.image?.symbolTable.first { $0.name == (watched == "stack" ? "rt_stack_top" : watched) }?.address)
            return watched == "stack" ? [GDBStopPoint(kind: .write, address: symbol - 512, length: 512)]
                : [GDBStopPoint(kind: .access, address: symbol, length: 16)]
        }
        let reference = try Self.stops(program, watchpoints, count: 80, engine: .interpreter, reference: true)
        #expect(reference.stops.count > 8 && reference.stops[0].hasPrefix("watch"), "\(reference.stops.first ?? "")")
        for engine in [Engine.interpreter, .jit] {
            let stub = try Self.stops(program, watchpoints, count: 80, engine: engine, reference: false)
            W.expectSameStops(reference.stops, stub.stops, "\(program) \(watched) \(engine)")
        }
    }

    @Test("A watchpoint on bench/crc32's stack, to the end of the run: more than 90 % of it translated")
    func watchpointsKeepTranslatedSpeed() throws {
        // Its frames (printf's): written at each line printed, not in the CRC loops.
        let stub = try Self.stops("bench/crc32", { m in
            let top = try #require(m.image?.symbolTable.first { $0.name == "rt_stack_top" }?.address)
            return [GDBStopPoint(kind: .write, address: top - 2048, length: 2048)]
        }, count: 5000, engine: .jit, reference: false)
        #expect(stub.stops.count > 40 && stub.stops.last?.hasPrefix("exited") == true, "\(stub.stops.count) \(stub.stops.last ?? "")")
        #expect(stub.translated > 0.9, "\(Int(stub.translated * 100)) % translated")
    }
}
