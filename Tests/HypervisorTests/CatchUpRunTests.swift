import MagritteCore
import Testing
@testable import MagritteHypervisor
@testable import MagritteCore

/// The translator's catch-up in runs (`CPU.catchUpRun`, `Docs/jit.md`, "A batch that ends inside
/// a block") under a VMM that ends every quantum: the same as stepping one instruction at a time,
/// for the guests and for the translator (the same blocks, the same instructions run translated,
/// the same returns to the run loop).
@Suite("Catch-up runs", .enabled(if: Engine.jitSupported))
struct CatchUpRunTests {
    @Test("A catch-up run interprets what stepping one instruction at a time interpreted",
          arguments: ["bench/crc32", "bench/sort", "bench/interp"])
    func runsStepAsOneAtATime(program: String) throws {
        var outcomes: [Int: (state: String, statistics: JITStatistics)] = [:]
        for limit in [1, JIT.catchUpSteps] {
            let vmm = try VMMTranslatedObservationTests.pair(program, engine: .jit)
            vmm.skipsIdleQuantumEnds = false
            try #require(vmm.cpu.makeJIT()).catchUpRunLimit = limit
            #expect(vmm.run(maxInstructions: 20_000_000) == .instructionLimit)
            var s = vmm.cpu.jitStatistics
            s.translationNanoseconds = 0  // host time
            outcomes[limit] = (VMMTranslatedObservationTests.state(vmm), s)
        }
        let (one, runs) = (try #require(outcomes[1]), try #require(outcomes[JIT.catchUpSteps]))
        #expect(one.state == runs.state)
        #expect(one.statistics == runs.statistics)
        #expect(runs.statistics.instructionsRun > 15_000_000, "\(program): most of it ran translated")
    }
}
