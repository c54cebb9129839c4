import Foundation
import MagritteCore
import MagritteMachine
import MagritteTestSupport
import Testing
@testable import MagritteHypervisor

/// Console input reaches a guest's UART: in process through its board's `consoleInput`, and
/// from `magritte vmm --console NAME`'s standard input.
@Suite struct ConsoleInputTests {
    /// Polls the UART's line status until a byte arrives, echoes it plus one and a newline,
    /// powers off.
    static let echoNext: [UInt32] = [
        0x3C08_B800, 0x3508_03F8,                          // t0 = 0xB80003F8 (UART, kseg1)
        0x9109_0005, 0x3129_0001, 0x1120_FFFD, 0,          // until LSR.DR: lbu t1, 5(t0)
        0x910A_0000, 0x254A_0001, 0xA10A_0000,             // sb (rbr + 1), THR
        0x240B_000A, 0xA10B_0000,                          // sb '\n', THR
        0x3C0C_BF00, 0x358C_0500, 0x240D_0042, 0xA18D_0000, // SOFTRES = 0x42
        0x1000_FFFF, 0,
    ]

    final class Bytes: ConsoleInput {
        var bytes: [UInt8]
        init(_ s: String) { bytes = Array(s.utf8) }
        func poll() -> [UInt8] { defer { bytes = [] }; return bytes }
        func waitForInput() -> [UInt8]? { nil }
        func waitForInput(timeoutNanoseconds: UInt64) -> [UInt8] { poll() }
    }

    @Test func inputReachesTheGuestsUARTOnly() throws {
        let vmm = try VMM()
        let a = try vmm.addGuest(GuestConfiguration(name: "a"), image: try miniELF(Self.echoNext))
        let b = try vmm.addGuest(GuestConfiguration(name: "b"), image: try miniELF(Self.echoNext))
        a.board.consoleInput = Bytes("A")
        var raw: [UInt8] = []
        a.onOutput = { raw.append($0) }
        #expect(vmm.run(maxInstructions: 5_000_000) == .instructionLimit)  // b waits for input forever
        #expect(a.consoleText == "B\n" && raw == Array("B\n".utf8))
        #expect(a.state == .poweredOff && b.state == .runnable && b.console.isEmpty)
    }

    @Test(.enabled(if: VMMCommandTests.executable != nil)) func consoleOption() throws {
        let elf = FileManager.default.temporaryDirectory.appendingPathComponent("echo-\(UUID().uuidString).elf")
        try Data(try miniELF(Self.echoNext).bytes).write(to: elf)
        defer { try? FileManager.default.removeItem(at: elf) }
        let r = try runProcess(VMMCommandTests.executable!, ["vmm", elf.path, elf.path, "--name", "echo", "--name", "other", "--console", "echo",
                                                             "--max-instructions", "5000000"], input: Data("y".utf8))
        #expect(r.out == "z\n", "\(r.out)")         // raw, without a prefix; the other guest never got input
        #expect(r.status == 2)                      // the other guest still waits at the limit

        let bad = try VMMCommandTests.vmm([elf.path, "--console", "nobody"])
        #expect(bad.status == 1 && bad.err.contains("no guest of that name"))
    }
}
