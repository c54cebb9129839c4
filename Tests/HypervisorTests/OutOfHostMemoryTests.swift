import Testing
@testable import MagritteCore
@testable import MagritteHypervisor
import MagritteMachine

/// A page of decoded instructions the host cannot give ends the run cleanly, reported as
/// `.outOfHostMemory` by the board and the VMM; the machine is as before the instruction, and
/// running again (with memory back) gives what a run that never failed gives (issue 13, item 10).
@Suite struct OutOfHostMemoryTests {
    @Test func bareMachineStopsAndRunsAgain() throws {
        let path = GuestsUnderVMMTests.guest("tests/hello")
        var bytes: [UInt8] = []
        let board = try Malta.make(configuration: MaltaConfiguration(ramSize: 32 << 20)) { bytes.append($0) }
        try board.load(path: path)
        board.boot()
        let pc = board.cpu.pc
        board.cpu.refuseDecodedPages = true
        #expect(board.run(maxInstructions: 1_000_000) == .outOfHostMemory)
        #expect(board.cpu.outOfHostMemory)
        #expect(board.cpu.pc == pc && board.cpu.executedInstructions == 0)
        board.cpu.refuseDecodedPages = false
        #expect(board.run(maxInstructions: 500_000_000) == .poweredOff)
        #expect(!board.cpu.outOfHostMemory)
        #expect(String(decoding: bytes, as: UTF8.self) == (try GuestsUnderVMMTests().bare(path)))
    }

    @Test(arguments: [Engine.interpreter, .jit])
    func vmmStopsAndRunsAgain(engine: Engine) throws {
        let path = GuestsUnderVMMTests.guest("tests/hello")
        let vmm = try VMM(ramSize: 64 << 20, engine: engine)
        let g = try vmm.addGuest(GuestConfiguration(name: "h"), imagePath: path)
        vmm.cpu.refuseDecodedPages = true
        #expect(vmm.run(maxInstructions: 100_000_000) == .outOfHostMemory)
        #expect(g.state == .runnable && g.console.isEmpty)
        // Still out of memory: the same outcome, again and again, from `step` too.
        #expect(vmm.step(g, instructions: 1000) == .outOfHostMemory)
        vmm.cpu.refuseDecodedPages = false
        #expect(vmm.run(maxInstructions: 100_000_000) == .allPoweredOff)
        #expect(g.consoleText == (try GuestsUnderVMMTests().bare(path)))
    }

    /// The translator's code memory refused: no translator, and the CPU runs the interpreter.
    @Test func jitWithoutCodeMemoryIsNil() {
        #expect(JIT(capacity: 1 << 62) == nil)
    }
}
