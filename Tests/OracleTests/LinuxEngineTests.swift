import Foundation
import MagritteCore
import MagritteMachine
import Testing

/// The start of Debian's Linux boot (`LinuxTests`) on both engines, bounded: after the same
/// number of instructions the translator and the interpreter must show the same console, the
/// same registers, CP0 state, counts and exceptions. Fails when the packages are missing
/// (`Scripts/fetch-linux`).
@Suite("Linux on both engines", .serialized, .enabled(if: Engine.jitSupported))
struct LinuxEngineTests {
    /// Past the decompressor (about 2 billion instructions, silent) into the kernel's own start:
    /// its first console lines (earlycon), memory setup, the first TLB refills.
    static let instructions: UInt64 = 2_200_000_000

    static func boot(_ engine: Engine) throws -> (state: String, console: String, stats: JITStatistics) {
        var bytes: [UInt8] = []
        var config = MaltaConfiguration(ramSize: 128 << 20)
        config.commandLine = LinuxTests.commandLine
        config.cpu.engine = engine
        let board = Malta(configuration: config) { bytes.append($0) }
        try board.load(path: LinuxTests.kernel)
        try board.loadInitrd(path: LinuxTests.initrd)
        board.boot()
        let outcome = board.run(maxInstructions: instructions)
        let c = board.cpu
        let gprs = (0..<32).map { String(c.gpr($0), radix: 16) }.joined(separator: " ")
        let cp0 = [c.cp0.status, c.cause, c.cp0.epc, c.cp0.badVAddr, c.cp0.entryHi, c.cp0.context, c.count, c.cp0.compare]
            .map { String($0, radix: 16) }.joined(separator: " ")
        let state = "\(outcome) pc=\(String(c.pc, radix: 16)) npc=\(String(c.npc, radix: 16)) cycles=\(c.cycles) "
            + "retired=\(c.retiredInstructions) faulted=\(c.faultedInstructions) idle=\(c.idleCycles) hi=\(c.hi) lo=\(c.lo) "
            + "gprs=\(gprs) cp0=\(cp0) exceptions=\(c.exceptionCounts)"
        return (state, String(decoding: bytes, as: UTF8.self), c.jitStatistics)
    }

    @Test("The first 2.2 billion instructions of the Linux boot agree")
    func firstInstructionsAgree() throws {
        try #require(LinuxTests.packagesAvailable, Comment(rawValue: LinuxTests.skipMessage))
        let interpreter = try Self.boot(.interpreter)
        let jit = try Self.boot(.jit)
        #expect(interpreter.console.contains("Linux version") && interpreter.console.utf8.filter({ $0 == 0x0A }).count >= 3,
                "the kernel printed too little yet:\n\(interpreter.console)")
        #expect(jit.console == interpreter.console)
        #expect(jit.state == interpreter.state)
        #expect(jit.stats.instructionsRun > Self.instructions / 2, "\(jit.stats.instructionsRun) instructions ran translated")
    }
}
