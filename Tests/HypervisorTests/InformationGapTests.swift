import MagritteCore
import MagritteMachine
import Testing
@testable import MagritteHypervisor

/// The lecture's information gap, measured: the same teaching OS idles by spinning, by `wait`
/// and by the idle hypercall, side by side under one VMM.
@Suite struct InformationGapTests {
    @Test func threeIdleModesSideBySide() throws {
        let path = GuestsUnderVMMTests.guest("os/teachos")
        let vmm = try VMM()
        let spin = try vmm.addGuest(GuestConfiguration(name: "spin", commandLine: "idle=spin"), imagePath: path)
        let wait = try vmm.addGuest(GuestConfiguration(name: "wait", commandLine: "idle=wait"), imagePath: path)
        let hyper = try vmm.addGuest(GuestConfiguration(name: "hyper", commandLine: "idle=hypercall hv=idle"), imagePath: path)
        #expect(vmm.run(maxInstructions: 2_000_000_000) == .allPoweredOff)
        func stable(_ s: String) -> [String] { s.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("timing:") } }
        // Same work, same output as on bare Malta.
        #expect(stable(spin.consoleText) == stable(try GuestsUnderVMMTests().bare(path, append: "idle=spin")))
        #expect(stable(wait.consoleText) == stable(try GuestsUnderVMMTests().bare(path, append: "idle=wait")))
        #expect(hyper.consoleText.contains("effective hypercall"))

        // The spinner burns instructions the VMM can only detect; the others give the CPU back.
        #expect(spin.statistics.spinInstructions > 0)
        #expect(spin.statistics.waitCycles == 0 && spin.statistics.hypercallIdleCycles == 0)
        #expect(wait.statistics.waitCycles > 0 && wait.statistics.spinInstructions == 0)
        #expect(hyper.statistics.hypercallIdleCycles > 0 && hyper.statistics.hypercalls > 0)
        #expect(hyper.statistics.spinInstructions == 0)
        // The useful work is the same (user instructions agree to within the branches that run
        // again when a fault in their delay slot is retried), so the difference in kernel
        // instructions is the idle loop.
        let a = spin.statistics.userInstructions, b = wait.statistics.userInstructions
        #expect(max(a, b) - min(a, b) < 1000)
        // Pause-loop detection finds (almost) all of the spinner's extra instructions.
        let extra = spin.statistics.instructions - wait.statistics.instructions
        #expect(spin.statistics.spinInstructions >= extra * 9 / 10 && spin.statistics.spinInstructions <= extra * 11 / 10,
                "spin \(spin.statistics.spinInstructions) of \(extra) extra instructions")
        #expect(spin.statistics.instructions > hyper.statistics.instructions)
    }

    /// Descheduling a detected spinner gives its time to a guest with work: in the same machine
    /// time, a CPU-bound guest beside a spinning teachos gets more instructions done.
    @Test func deschedulingSpinnersHelpsTheGuestWithWork() throws {
        func share(_ policy: SpinPolicy) throws -> (work: UInt64, spun: UInt64) {
            let vmm = try VMM()
            vmm.spinPolicy = policy
            let os = try vmm.addGuest(GuestConfiguration(name: "os", commandLine: "idle=spin"), imagePath: GuestsUnderVMMTests.guest("os/teachos"))
            let crc = try vmm.addGuest(GuestConfiguration(name: "crc"), imagePath: GuestsUnderVMMTests.guest("bench/crc32"))
            #expect(vmm.run(maxInstructions: 24_000_000) == .instructionLimit)
            return (crc.statistics.instructions, os.statistics.spinInstructions)
        }
        let accounted = try share(.account), descheduled = try share(.deschedule)
        #expect(descheduled.work > accounted.work, "crc32 ran \(descheduled.work) vs \(accounted.work) instructions")
        #expect(descheduled.spun < accounted.spun / 2, "spun \(descheduled.spun) vs \(accounted.spun)")
    }

    /// Para-virtual console and TLB writes remove VMM entries on hot paths: device accesses and
    /// the traps of the refill handler's CP0 instructions.
    @Test func hypercallsRemoveTraps() throws {
        let path = GuestsUnderVMMTests.guest("os/teachos")
        let vmm = try VMM()
        let plain = try vmm.addGuest(GuestConfiguration(name: "plain", commandLine: "idle=wait"), imagePath: path)
        let pv = try vmm.addGuest(GuestConfiguration(name: "pv", commandLine: "idle=wait hv=console,tlb"), imagePath: path)
        #expect(vmm.run(maxInstructions: 2_000_000_000) == .allPoweredOff)
        #expect(pv.statistics.hypercalls > 0)
        #expect(pv.statistics.deviceAccesses * 10 < plain.statistics.deviceAccesses)
        let plainExits = plain.statistics.traps.reduce(0, +), pvExits = pv.statistics.traps.reduce(0, +)
        #expect(pvExits < plainExits)
    }
}
