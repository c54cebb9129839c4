import Foundation
import MagritteCore
import MagritteMachine
import Testing

/// The translator's runtime against the interpreter (`Docs/jit.md`): breakpoints and memory
/// watches at block granularity (the same hits, stops and accesses, at the same instruction, with
/// most instructions still translated), the lookup of jump targets and the bounded code cache.
@Suite("The translator's runtime", .enabled(if: Engine.jitSupported))
struct JITRuntimeTests {
    /// Records what the CPU reports; stops at the `stopAt`-th breakpoint hit.
    final class Recorder: CPUObserver {
        struct Hit: Equatable {
            var pc: UInt32
            var cycle: UInt64
            var v0: UInt32
        }
        var hits: [Hit] = []
        var accesses: [MemoryAccess] = []
        var stopAt: Int?
        var histogram: [UInt32: Int]?

        func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction {
            if histogram != nil {
                histogram![pc, default: 0] += 1
                return .proceed
            }
            hits.append(Hit(pc: pc, cycle: cpu.currentCycles, v0: cpu.gpr(2)))
            return hits.count == stopAt ? .stop : .proceed
        }

        func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction {
            accesses.append(access)
            return .proceed
        }
    }

    /// A board with `elf` loaded and booted; its console so far.
    final class Run {
        let board: Malta
        var console: [UInt8] = []
        var cpu: CPU { board.cpu }

        init(_ elf: String, engine: Engine, codeCacheBytes: Int? = nil) throws {
            var config = MaltaConfiguration(ramSize: 128 << 20)
            config.cpu.engine = engine
            if let codeCacheBytes { config.cpu.codeCacheBytes = codeCacheBytes }
            var sink: ((UInt8) -> Void)?
            board = Malta(configuration: config) { sink?($0) }
            sink = { [unowned self] in self.console.append($0) }
            try board.load(path: EngineEquivalenceTests.guests.appendingPathComponent(elf).path)
            board.boot()
        }

        /// What must agree between the engines.
        var state: String {
            let c = cpu
            let gprs = (0..<32).map { String(c.gpr($0), radix: 16) }.joined(separator: " ")
            return "pc=\(String(c.pc, radix: 16)) cycles=\(c.cycles) retired=\(c.retiredInstructions) faulted=\(c.faultedInstructions) "
                + "hi=\(c.hi) lo=\(c.lo) exceptions=\(c.exceptionCounts) gprs=\(gprs) console=\(String(decoding: console, as: UTF8.self))"
        }
    }

    /// The pc the interpreter executes most often in the program's first `instructions`.
    static func hottestPC(_ elf: String, instructions: UInt64 = 2_000_000) throws -> UInt32 {
        let run = try Run(elf, engine: .interpreter)
        let recorder = Recorder()
        recorder.histogram = [:]
        run.cpu.observer = recorder
        run.cpu.observesInstructions = true
        _ = run.board.run(maxInstructions: instructions)
        return try #require(recorder.histogram!.max { $0.value < $1.value }?.key)
    }

    @Test("A breakpoint is reported at the same instructions, and the rest runs translated",
          arguments: ["bench/crc32.elf", "bench/interp.elf", "bench/sort.elf"])
    func breakpointsKeepTranslatedSpeed(elf: String) throws {
        let hot = try Self.hottestPC(elf)
        var outcomes: [Engine: (state: String, hits: [Recorder.Hit])] = [:]
        for engine in [Engine.interpreter, .jit] {
            let run = try Run(elf, engine: engine)
            let recorder = Recorder()
            run.cpu.observer = recorder
            run.cpu.observedPCs = [hot]
            _ = run.board.run(maxInstructions: 20_000_000)
            outcomes[engine] = (run.state, recorder.hits)
            if engine == .jit {
                let stats = run.cpu.jitStatistics
                #expect(stats.instructionsRun * 10 >= run.cpu.retiredInstructions * 9,
                        "\(elf): only \(stats.instructionsRun) of \(run.cpu.retiredInstructions) instructions ran translated")
            }
        }
        let (i, j) = (try #require(outcomes[.interpreter]), try #require(outcomes[.jit]))
        #expect(i.hits.count > 1000, "\(elf): the breakpoint at \(String(hot, radix: 16)) was hit \(i.hits.count) times")
        #expect(i.hits.allSatisfy { $0.pc == hot })
        #expect(i.hits == j.hits, "\(elf): \(i.hits.count) hits on the interpreter, \(j.hits.count) on the translator")
        #expect(i.state == j.state)
    }

    @Test("A breakpoint stops before its instruction, and the run resumes past it")
    func breakpointStopsAndResumes() throws {
        let elf = "bench/crc32.elf"
        let hot = try Self.hottestPC(elf)
        var states: [Engine: [String]] = [:]
        for engine in [Engine.interpreter, .jit] {
            let run = try Run(elf, engine: engine)
            let recorder = Recorder()
            recorder.stopAt = 1000
            run.cpu.observer = recorder
            run.cpu.observedPCs = [hot]
            var seen: [String] = []
            let first = run.board.run(maxInstructions: 20_000_000)
            #expect(first == .stopped, "\(engine): \(first)")
            #expect(run.cpu.pc == hot)
            seen.append(run.state)
            recorder.stopAt = 2000
            let second = run.board.run(maxInstructions: 20_000_000)
            #expect(second == .stopped, "\(engine): \(second)")
            #expect(recorder.hits.count == 2000)
            seen.append(run.state)
            // Without breakpoints again: the blocks that ended at the breakpoint are translated anew.
            run.cpu.observedPCs = []
            _ = run.board.run(maxInstructions: 5_000_000)
            seen.append(run.state)
            states[engine] = seen
        }
        #expect(states[.interpreter] == states[.jit])
    }

    @Test("Memory watches report the same accesses, and unwatched pages stay translated")
    func watchesKeepTranslatedSpeed() throws {
        let elf = "bench/sort.elf"
        var outcomes: [Engine: (state: String, accesses: [MemoryAccess])] = [:]
        for engine in [Engine.interpreter, .jit] {
            let run = try Run(elf, engine: engine)
            let recorder = Recorder()
            run.cpu.observer = recorder
            // Past the start-up code, which sets the stack pointer: watch the top of the stack.
            _ = run.board.run(maxInstructions: 10_000)
            let sp = run.cpu.gpr(29)
            run.cpu.memoryWatches = [(sp &- 64)...(sp &+ 63)]
            _ = run.board.run(maxInstructions: 20_000_000)
            outcomes[engine] = (run.state, recorder.accesses)
            if engine == .jit {
                let stats = run.cpu.jitStatistics
                #expect(stats.instructionsRun * 2 >= run.cpu.retiredInstructions,
                        "only \(stats.instructionsRun) of \(run.cpu.retiredInstructions) instructions ran translated")
            }
        }
        let (i, j) = (try #require(outcomes[.interpreter]), try #require(outcomes[.jit]))
        #expect(!i.accesses.isEmpty, "the watch saw nothing")
        #expect(i.accesses == j.accesses, "\(i.accesses.count) accesses on the interpreter, \(j.accesses.count) on the translator")
        #expect(i.state == j.state)
    }

    @Test("A full code cache is emptied whole, and the run goes on the same",
          arguments: ["bench/interp.elf", "tests/smc.elf"])
    func fullCodeCacheIsFlushed(elf: String) throws {
        let budget: UInt64 = 20_000_000
        let reference = try Run(elf, engine: .interpreter)
        _ = reference.board.run(maxInstructions: budget)
        let small = try Run(elf, engine: .jit, codeCacheBytes: 8192)
        _ = small.board.run(maxInstructions: budget)
        let stats = small.cpu.jitStatistics
        #expect(stats.flushes > 0, "\(elf): \(stats.bytes) bytes of code never filled 8 KiB")
        #expect(stats.bytes > 8192)
        #expect(stats.instructionsRun > 0)
        #expect(small.state == reference.state)
    }

    @Test("Jumps through registers and into other pages stay in translated code",
          arguments: ["bench/interp.elf", "bench/sort.elf"])
    func lookupKeepsIndirectJumpsTranslated(elf: String) throws {
        let run = try Run(elf, engine: .jit)
        _ = run.board.run(maxInstructions: 20_000_000)
        let stats = run.cpu.jitStatistics
        #expect(stats.instructionsRun * 100 >= run.cpu.retiredInstructions * 95,
                "\(elf): \(stats.instructionsRun) of \(run.cpu.retiredInstructions) ran translated")
        // A block is at most 64 instructions: more per entry from the loop means that most
        // blocks were entered from other blocks, through chain slots and the lookup.
        #expect(stats.instructionsRun > 256 * stats.entries,
                "\(elf): \(stats.entries) entries from the loop for \(stats.instructionsRun) instructions")
    }
}
