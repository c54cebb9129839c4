import Foundation
import MagritteCore
import MagritteMachine
import Testing
@testable import MagritteHypervisor

/// Debian's unmodified Linux for Malta as a guest of the VMM, beside teachos: its /init report
/// (Tests/linux/init, the deterministic check that OracleTests' LinuxTests compares between bare
/// Magritte and QEMU) must be the one Linux prints alone on bare Magritte, and teachos must print
/// what it prints alone. Skipped, saying why, when Scripts/fetch-linux could not get the
/// packages.
@Suite(.serialized) struct LinuxUnderVMMTests {
    static let directory = GuestsUnderVMMTests.root.appendingPathComponent(".cache/linux")
    static let kernel = directory.appendingPathComponent("vmlinuz").path
    static let initrd = directory.appendingPathComponent("initrd.gz").path
    static let commandLine = "console=ttyS0 magritte.check"
    static var packagesAvailable: Bool {
        FileManager.default.isReadableFile(atPath: kernel) && FileManager.default.isReadableFile(atPath: initrd)
    }

    /// The lines between the report's markers, carriage returns removed.
    static func report(_ output: String) -> [String] {
        let lines = output.replacingOccurrences(of: "\r", with: "").components(separatedBy: "\n")
        guard let begin = lines.firstIndex(of: "=== magritte check begin"),
              let end = lines.firstIndex(of: "=== magritte check end"), begin < end else { return [] }
        return Array(lines[begin...end])
    }

    @Test(.enabled(if: packagesAvailable, "the Debian kernel and initramfs are not in .cache/linux (Scripts/fetch-linux)"))
    func linuxBesideTeachOS() throws {
        let initrdBytes = try #require(readWholeFile(Self.initrd))
        // Bare Magritte first: the reference report.
        var bareBytes: [UInt8] = []
        var config = MaltaConfiguration(ramSize: 128 << 20)
        config.commandLine = Self.commandLine
        let board = Malta(configuration: config) { bareBytes.append($0) }
        try board.load(path: Self.kernel)
        try board.load(initrd: initrdBytes)
        board.boot()
        #expect(board.run(maxInstructions: 12_000_000_000) == .poweredOff)
        let bare = Self.report(String(decoding: bareBytes, as: UTF8.self))
        #expect(bare.count > 50, "bare Linux printed no report")

        let vmm = try VMM()
        var linuxConfig = GuestConfiguration(name: "linux", ramSize: 128 << 20, commandLine: Self.commandLine)
        linuxConfig.initrd = initrdBytes
        let linux = try vmm.addGuest(linuxConfig, imagePath: Self.kernel)
        let os = try vmm.addGuest(GuestConfiguration(name: "teachos", commandLine: "idle=wait"), imagePath: GuestsUnderVMMTests.guest("os/teachos"))
        #expect(vmm.run(maxInstructions: 16_000_000_000) == .allPoweredOff)
        let report = Self.report(linux.consoleText)
        var problems = ""
        for i in 0..<max(report.count, bare.count) where (i < report.count ? report[i] : nil) != (i < bare.count ? bare[i] : nil) {
            problems += "line \(i + 1)\n  bare: \(i < bare.count ? bare[i] : "<missing>")\n  vmm:  \(i < report.count ? report[i] : "<missing>")\n"
        }
        #expect(problems.isEmpty, "Linux's /init report under the VMM differs from bare Magritte's:\n\(problems)")
        #expect(linux.consoleText.contains("Run /init as init process") && linux.consoleText.contains("reboot: Power down"))
        func stable(_ s: String) -> [String] { s.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("timing:") } }
        #expect(stable(os.consoleText) == stable(try GuestsUnderVMMTests().bare(GuestsUnderVMMTests.guest("os/teachos"), append: "idle=wait")))
        // Linux's own processes ran in user mode, its kernel at reduced privilege, and it idled in wait.
        let s = linux.statistics
        #expect(s.userInstructions > 0 && s.kernelInstructions > 0)
        #expect(s.reflected[Int(ExceptionCode.syscall.rawValue)] > 0 && s.reflectedTLBMisses > 0 && s.hiddenTLBFills > 0)
        #expect(s.waitCycles > 0)
    }
}
