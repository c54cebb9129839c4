import Foundation
import MagritteCore
import MagritteMachine
import MagritteTestSupport
import Testing
@testable import MagritteHypervisor

/// Unmodified guests under the VMM print exactly what they print on bare Malta.
@Suite struct GuestsUnderVMMTests {
    static let root = Repository.root
    static func guest(_ name: String) -> String { root.appendingPathComponent(".build/guests/\(name).elf").path }

    /// Runs `path` alone on bare Malta and returns its console.
    func bare(_ path: String, append: String = "") throws -> String {
        var bytes: [UInt8] = []
        var config = MaltaConfiguration(ramSize: 32 << 20)
        config.commandLine = append
        let board = Malta(configuration: config) { bytes.append($0) }
        try board.load(path: path)
        board.boot()
        #expect(board.run(maxInstructions: 500_000_000) == .poweredOff)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func helloUnderTheVMM() throws {
        let path = Self.guest("tests/hello")
        let vmm = try VMM()
        let g = try vmm.addGuest(GuestConfiguration(name: "hello"), imagePath: path)
        #expect(vmm.run(maxInstructions: 100_000_000) == .allPoweredOff)
        #expect(g.consoleText == (try bare(path)))
        #expect(g.statistics.traps.reduce(0, +) > 0)
    }

    @Test func teachosTwiceSideBySide() throws {
        let path = Self.guest("os/teachos")
        let vmm = try VMM()
        let a = try vmm.addGuest(GuestConfiguration(name: "a", commandLine: "idle=wait"), imagePath: path)
        let b = try vmm.addGuest(GuestConfiguration(name: "b", commandLine: "idle=spin"), imagePath: path)
        #expect(vmm.run(maxInstructions: 2_000_000_000) == .allPoweredOff)
        func stable(_ s: String) -> [String] { s.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("timing:") } }
        #expect(stable(a.consoleText) == stable(try bare(path, append: "idle=wait")))
        #expect(stable(b.consoleText) == stable(try bare(path, append: "idle=spin")))
        #expect(a.statistics.hiddenTLBFills > 0)
        #expect(a.statistics.reflectedTLBMisses > 0)
        #expect(a.statistics.waitCycles > 0)
        #expect(b.statistics.spinInstructions > 0)
    }
}
