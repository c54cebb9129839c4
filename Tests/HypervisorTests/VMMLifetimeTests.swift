import MagritteCore
import MagritteMachine
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

/// The machine's bus kept after its VMM has gone: the device window (a device on that bus that
/// holds the VMM unretained) answers a host access with a bus error, as while the VMM lived,
/// without reaching the freed VMM.
@Suite struct BusOutlivingItsVMMTests {
    @Test func theDeviceWindowAnswersNothing() throws {
        let uartStatus = DeviceWindow.base + 0x0800_03FD  // guest 0's COM1 LSR in the window
        var kept: MaltaBus?
        do {
            let vmm = try VMM(ramSize: 64 << 20)
            try vmm.addGuest(GuestConfiguration(name: "h"), imagePath: GuestsUnderVMMTests.guest("tests/hello"))
            _ = vmm.run(maxInstructions: 100_000)
            #expect(vmm.bus.read(uartStatus, size: 1) == nil)
            kept = vmm.bus
        }
        let bus = try #require(kept)
        #expect(bus.read(uartStatus, size: 1) == nil)
        #expect(!bus.write(uartStatus, size: 1, value: 65))
    }
}
