import Foundation
import MagritteCore
import MagritteMachine
import Testing
@testable import MagritteHypervisor

/// Every program of Guests/tests — each one probes the CPU from kernel mode: CP0 registers and
/// their write masks, the TLB, exceptions and their vectors, EPC/BD in delay slots, user and
/// supervisor segments, the timer, WAIT — runs on bare Malta and as a guest of the VMM. The
/// bare output is checked against QEMU by OracleTests; under the VMM the guest must not be able
/// to tell the difference: the console must be the same, line for line, except where listed.
@Suite struct GuestProgramsUnderVMMTests {
    static var programs: [String] {
        let dir = GuestsUnderVMMTests.root.appendingPathComponent(".build/guests/tests").path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasSuffix(".elf") }.map { String($0.dropLast(4)) }.sorted()
    }

    @Test(arguments: programs)
    func sameOutputAsBare(_ name: String) throws {
        let path = GuestsUnderVMMTests.guest("tests/\(name)")
        let bare = try GuestsUnderVMMTests().bare(path)
        let vmm = try VMM()
        let g = try vmm.addGuest(GuestConfiguration(name: name), imagePath: path)
        let outcome = vmm.run(maxInstructions: 200_000_000)
        let got = g.consoleText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let want = bare.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var report = ""
        for i in 0..<max(got.count, want.count) {
            let a = i < got.count ? got[i] : "<missing>", b = i < want.count ? want[i] : "<missing>"
            if a != b { report += "  line \(i + 1)\n    bare: \(b)\n    vmm:  \(a)\n" }
        }
        #expect(outcome == .allPoweredOff, "\(name): \(outcome)")
        #expect(report.isEmpty, "\(name) under the VMM differs from bare Malta:\n\(report)")
    }
}
