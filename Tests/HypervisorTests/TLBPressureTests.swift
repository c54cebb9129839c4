import Foundation
import MagritteCore
import MagritteMachine
import Testing
@testable import MagritteHypervisor

/// Forward progress under TLB pressure (issue 12 item 6): every physical TLB size the VMM
/// accepts runs a guest to the end; smaller ones are refused with a reason.
@Suite struct TLBPressureTests {
    @Test func physicalTLBsTooSmallForProgressAreRefused() {
        for n in [0, 1, 2, 65] {
            #expect(throws: VMMError.self, "tlbEntries \(n)") { _ = try VMM(tlbEntries: n) }
        }
        do {
            _ = try VMM(tlbEntries: 2)
        } catch {
            #expect(error.message.hasPrefix("the physical TLB has 3 to 64 entries"))
        }
    }

    @Test func teachosRunsWithTheSmallestPhysicalTLB() throws {
        let path = GuestsUnderVMMTests.guest("os/teachos")
        let vmm = try VMM(tlbEntries: VMM.physicalTLBSizes.lowerBound)
        let g = try vmm.addGuest(GuestConfiguration(name: "small", commandLine: "idle=wait"), imagePath: path)
        #expect(vmm.run(maxInstructions: 2_000_000_000) == .allPoweredOff)
        func stable(_ s: String) -> [String] { s.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("timing:") } }
        #expect(stable(g.consoleText) == stable(try GuestsUnderVMMTests().bare(path, append: "idle=wait")))
        #expect(g.statistics.hiddenTLBFills > 0)
    }
}
