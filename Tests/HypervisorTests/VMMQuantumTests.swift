import Foundation
import MagritteCore
import MagritteMachine
import Testing
@testable import MagritteHypervisor

/// Guests whose kernels run with interrupts on (the idle-loop detector samples them at every
/// quantum's end): a run that skips the ends of quanta where it may is the same run as one that
/// stops at every end, on both engines, with the trace listened to (every event digested, the
/// device window off) and without (the window on).
extension VMMQuantumTests {
    /// (winspin: device-window reads with interrupts off over several quanta, then a spin with
    /// them on, which the detector counts from the quantum of the first exit: `longQuantumSample`
    /// must leave out the window's faulted slots before it. winirq: a user program's store through
    /// the window raises an interrupt in a long quantum, taken without an exit: the kernel's
    /// handler runs on in that quantum up to its first exit.)
    static let interruptsOn = [("os/teachos", "idle=spin"), ("os/teachos", "idle=wait"), ("tests/timer_int", ""), ("vmm/rtcpoll", ""),
                               ("vmm/winspin", ""), ("vmm/winirq", "")]

    static func run(_ image: String, append: String, skipping: Bool, engine: Engine, listens: Bool,
                    policy: SpinPolicy = .account) throws -> (ExitComparison, UInt64) {
        var quanta: UInt64 = 0
        var vmm: VMM?
        let outcome = try ExitComparison.run(image, append: append, engine: engine, maxInstructions: 40_000_000, listens: listens,
                                             skips: { _ in false }, configure: {
            $0.skipsIdleQuantumEnds = skipping
            $0.spinPolicy = policy
            vmm = $0
        })
        quanta = vmm?.quantaRun ?? 0
        return (outcome, quanta)
    }

    @Test("Guests with interrupts on: skipping the ends of quanta changes nothing (consoles, counts, spin statistics, events, time, registers)",
          arguments: [Engine.interpreter, .jit])
    func interruptsOnGuestsSkipExactly(engine: Engine) throws {
        for (image, append) in Self.interruptsOn {
            for listens in [true, false] {
                let what = "\(image) \(append) on the \(engine), \(listens ? "listened to" : "not listened to")"
                let (every, quanta) = try Self.run(image, append: append, skipping: false, engine: engine, listens: listens)
                let (skipped, fewer) = try Self.run(image, append: append, skipping: true, engine: engine, listens: listens)
                skipped.expectSameGuestView(as: every, what)
                #expect(skipped.statistics == every.statistics, "\(what)")
                #expect(skipped.ram == every.ram, "\(what)")
                #expect(skipped.events == every.events && skipped.eventCount == every.eventCount, "\(what)")
                #expect(fewer < quanta, "\(what): \(fewer) quanta against \(quanta)")  // skipped indeed
                #expect(!every.console.isEmpty, "\(what) printed nothing")
                if append == "idle=spin" || image == "vmm/winspin" {
                    #expect(every.statistics.spinInstructions > 0, "\(what): the detector found no spinning")
                }
                if image == "vmm/winirq" {
                    #expect(every.console.contains("900 interrupts in 900 rounds"), "\(what): \(every.console)")
                    #expect((every.statistics.mappedDeviceAccesses > 0) == !listens, "\(what): the device window")
                }
            }
        }
    }

    /// With spinners descheduled, the detector ends the slice of a spinning kernel: the same
    /// with and without skipping.
    @Test("A spinning kernel descheduled: the same run with and without skipping", arguments: [Engine.interpreter, .jit])
    func descheduledSpinnerSkipsExactly(engine: Engine) throws {
        let (every, _) = try Self.run("os/teachos", append: "idle=spin", skipping: false, engine: engine, listens: true, policy: .deschedule)
        let (skipped, _) = try Self.run("os/teachos", append: "idle=spin", skipping: true, engine: engine, listens: true, policy: .deschedule)
        skipped.expectSameGuestView(as: every, "teachos idle=spin descheduled")
        #expect(skipped.statistics == every.statistics)
        #expect(skipped.events == every.events && skipped.eventCount == every.eventCount)
        #expect(every.statistics.spinInstructions > 0)
    }
}

/// A guest kept after its VMM has gone: its clock (the RTC's and the PIT's time) no longer reads
/// the VMM's, which it held unretained; it keeps the time it had.
@Suite struct GuestOutlivingItsVMMTests {
    @Test func itsClockKeepsTheTimeItHad() throws {
        var kept: Guest?
        var end: UInt64 = 0
        do {
            let vmm = try VMM(ramSize: 64 << 20)
            let g = try vmm.addGuest(GuestConfiguration(name: "r"), imagePath: GuestsUnderVMMTests.guest("vmm/rtcpoll"))
            _ = vmm.run(maxInstructions: 2_000_000)
            end = vmm.now
            #expect(g.board.clock.cycles == end)
            kept = g
        }
        let g = try #require(kept)
        #expect(g.board.clock.cycles == end)
        // The RTC answers from that time (index port 0x70, data port 0x71 through the ISA I/O space).
        #expect(g.deviceWrite(0x1800_0070, size: 1, value: 0x0A))
        #expect(g.deviceRead(0x1800_0071, size: 1) != nil)
    }

    /// Its console and its FPGA's soft reset still work on its own board: the VMM's callbacks
    /// there (console lines, power off) went with it instead of reaching a freed VMM.
    @Test func itsBoardNoLongerCallsItsVMM() throws {
        var kept: Guest?
        do {
            let vmm = try VMM(ramSize: 64 << 20)
            kept = try vmm.addGuest(GuestConfiguration(name: "h"), imagePath: GuestsUnderVMMTests.guest("tests/hello"))
            _ = vmm.run(maxInstructions: 100_000)
        }
        let g = try #require(kept)
        let console = g.console.count
        for byte in "after\n".utf8 { #expect(g.deviceWrite(0x1800_03F8, size: 1, value: UInt32(byte))) }  // COM1's THR
        #expect(g.console.count == console + 6 && g.consoleText.hasSuffix("after\n"))
        #expect(g.deviceWrite(0x1F00_0500, size: 4, value: 0x42))  // SOFTRES: the VMM would power the guest off
        #expect(g.state != .poweredOff)
    }
}
