import Testing
@testable import MagritteHypervisor

/// A VMM and its guests are freed when the last reference goes (the CPU does not keep its trap
/// handler alive).
@Suite struct VMMLifetimeTests {
    @Test func aFinishedVMMIsFreed() throws {
        weak var weakVMM: VMM?
        weak var weakGuest: Guest?
        do {
            let vmm = try VMM(ramSize: 64 << 20)
            let g = try vmm.addGuest(GuestConfiguration(name: "h"), imagePath: GuestsUnderVMMTests.guest("tests/hello"))
            #expect(vmm.run(maxInstructions: 10_000_000) == .allPoweredOff)
            weakVMM = vmm
            weakGuest = g
        }
        #expect(weakVMM == nil)
        #expect(weakGuest == nil)
    }
}
