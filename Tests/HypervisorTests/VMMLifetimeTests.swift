import MagritteCore
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

    /// The CPU holds its trap handler unowned (no weak reference: it made every exit pay the
    /// runtime's slow reference counting): a CPU kept after its VMM has gone has no handler (the
    /// VMM clears it as it goes) and takes exceptions at its own vectors instead of calling a
    /// freed object.
    @Test func aCPUOutlivingItsVMMHasNoTrapHandler() throws {
        var kept: CPU?
        do {
            let vmm = try VMM(ramSize: 64 << 20)
            try vmm.addGuest(GuestConfiguration(name: "h"), imagePath: GuestsUnderVMMTests.guest("tests/hello"))
            #expect(vmm.cpu.trapHandler === vmm)
            _ = vmm.run(maxInstructions: 100_000)
            kept = vmm.cpu
        }
        let cpu = try #require(kept)
        #expect(cpu.trapHandler == nil)
        let exceptions = cpu.exceptionCounts.reduce(0, +)
        cpu.inject(.syscall)  // taken at the CPU's own vector
        #expect(cpu.exceptionCounts.reduce(0, +) == exceptions + 1)
        #expect(cpu.cp0.status & StatusBits.exl != 0)
    }
}
