import Foundation
import MagritteCore
import Testing
@testable import MagritteHypervisor

/// One guest run alone under the VMM with a fast path of the exits on or off (clustering, device
/// polling), and what the guest could see of it: the tests compare the two.
struct ExitComparison {
    var console: String
    var statistics: GuestStatistics
    var now: UInt64
    var retired: UInt64
    var executed: UInt64
    var registers: [UInt32]
    var cp0: CP0State
    var tlb: [TLBEntry]
    /// A digest of the guest's RAM.
    var ram: UInt64
    /// A digest of every event but the traps `skips` and the events `skipsEvent` leave out (text,
    /// pc, instructions, modes), and their number.
    var events: UInt64
    var eventCount: Int
    /// The traps left out.
    var skippedTraps: Int
    var outcome: VMMRunOutcome

    /// Runs `image` (a name under .build/guests) with `configure` applied to the VMM; without
    /// `listens`, nobody listens to the trace (no events are digested: the VMM's trace is
    /// inactive, as in `magritte vmm` without tables).
    static func run(_ image: String, append: String = "", ramSize: Int = 32 << 20, engine: Engine = .hostDefault, tlbEntries: Int = 64,
                    maxInstructions: UInt64 = 2_000_000_000, listens: Bool = true, skips: @escaping (ExceptionCode) -> Bool,
                    skipsEvent: @escaping (VMMEvent.Kind) -> Bool = { _ in false },
                    configure: (VMM) -> Void, guest: (Guest) -> Void = { _ in }) throws -> ExitComparison {
        let vmm = try VMM(tlbEntries: tlbEntries, engine: engine)
        configure(vmm)
        vmm.trace.recording = false
        var digest: UInt64 = 0xcbf2_9ce4_8422_2325, count = 0, skipped = 0
        if listens { vmm.trace.listener = { e in
            if case .trap(let code) = e.kind, skips(code) { skipped += 1; return }
            if skipsEvent(e.kind) { return }
            count += 1
            for byte in "\(e.text) \(e.pc) \(e.instructions) \(e.modeBefore) \(e.modeAfter)".utf8 { digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3 }
        } }
        let g = try vmm.addGuest(GuestConfiguration(name: "g", ramSize: ramSize, commandLine: append), imagePath: GuestsUnderVMMTests.guest(image))
        guest(g)
        let outcome = vmm.run(maxInstructions: maxInstructions)
        var ram: UInt64 = 0xcbf2_9ce4_8422_2325
        let words = (vmm.bus.ram + Int(g.memoryBase)).assumingMemoryBound(to: UInt64.self)
        for i in 0..<(g.ramSize / 8) { ram = (ram ^ words[i]) &* 0x100_0000_01b3 }
        let r = vmm.registers(of: g)
        return ExitComparison(console: g.consoleText, statistics: g.statistics, now: vmm.now, retired: vmm.cpu.retiredInstructions,
                              executed: vmm.cpu.executedInstructions, registers: r.gprs + [r.hi, r.lo, r.pc], cp0: g.cp0, tlb: g.tlb, ram: ram,
                              events: digest, eventCount: count, skippedTraps: skipped, outcome: outcome)
    }

    /// Expects what the guest could see of two runs (`self` with a fast path on, `off` without)
    /// to be the same: outcome, console, instruction counts by mode, emulated instructions, device
    /// accesses, reflected exceptions, machine time, retired and executed counts, registers,
    /// virtual CP0 and TLB.
    func expectSameGuestView(as off: ExitComparison, _ what: String) {
        #expect(outcome == off.outcome, "\(what)")
        #expect(console == off.console, "\(what)")
        #expect(statistics.kernelInstructions == off.statistics.kernelInstructions, "\(what)")
        #expect(statistics.userInstructions == off.statistics.userInstructions, "\(what)")
        #expect(statistics.emulated == off.statistics.emulated, "\(what)")
        #expect(statistics.deviceAccesses == off.statistics.deviceAccesses, "\(what)")
        #expect(statistics.reflected == off.statistics.reflected, "\(what)")
        #expect(now == off.now, "\(what)")
        #expect(retired == off.retired, "\(what)")
        #expect(executed == off.executed, "\(what)")
        #expect(registers == off.registers, "\(what)")
        #expect(cp0 == off.cp0, "\(what)")
        #expect(tlb == off.tlb, "\(what)")
    }
}

/// A fast path of the exits that a knob of the VMM turns on and off (clustering, device polling,
/// the device window, large pages), and how to compare a run with it to one without: the suites
/// give their guests and what the guest must see the same (`expectSame`, the run with the fast
/// path on first); the runs and their pairing are here.
struct FastPath {
    /// Turns the fast path on (true) or off.
    var knob: (VMM, Bool) -> Void
    /// The traps and events the fast path may remove (left out of the events' digest), and
    /// whether anybody listens to the trace (`ExitComparison.run`).
    var skips: (ExceptionCode) -> Bool = { _ in true }
    var skipsEvent: (VMMEvent.Kind) -> Bool = { _ in false }
    var listens = true
    /// The guest's RAM for an image.
    var ramSize: (String) -> Int = { _ in 32 << 20 }
    /// Applied to the guest before it runs.
    var guest: (Guest) -> Void = { _ in }
    /// Expects the run with the fast path on (first) to show the guest what the one without
    /// it (second) shows; the third argument names the run in failures.
    var expectSame: (ExitComparison, ExitComparison, String) -> Void

    /// `image` (a name under .build/guests) run with the fast path on or off.
    func run(_ image: String, append: String = "", on: Bool, engine: Engine = .hostDefault, tlbEntries: Int = 64,
             maxInstructions: UInt64 = 2_000_000_000) throws -> ExitComparison {
        try ExitComparison.run(image, append: append, ramSize: ramSize(image), engine: engine, tlbEntries: tlbEntries,
                               maxInstructions: maxInstructions, listens: listens, skips: skips, skipsEvent: skipsEvent,
                               configure: { knob($0, on) }, guest: guest)
    }

    /// `image` run with the fast path off and on.
    func pair(_ image: String, append: String = "", engine: Engine = .hostDefault, tlbEntries: Int = 64,
              maxInstructions: UInt64 = 2_000_000_000) throws -> (on: ExitComparison, off: ExitComparison) {
        let off = try run(image, append: append, on: false, engine: engine, tlbEntries: tlbEntries, maxInstructions: maxInstructions)
        let on = try run(image, append: append, on: true, engine: engine, tlbEntries: tlbEntries, maxInstructions: maxInstructions)
        return (on, off)
    }

    /// rtcpoll (Linux's clock calibration in small: RTC, PIT and UART polling loops) with the
    /// fast path off and on; the loops ran (the PIT's count changed, tens of thousands of
    /// device accesses).
    func rtcpoll(engine: Engine) throws -> (on: ExitComparison, off: ExitComparison) {
        let runs = try pair("vmm/rtcpoll", engine: engine)
        #expect(runs.off.console.contains("rtcpoll: PIT count changed"))
        #expect(runs.off.statistics.deviceAccesses > 20_000 && runs.on.statistics.deviceAccesses == runs.off.statistics.deviceAccesses)
        return runs
    }

    /// Runs each of `guests` (image, kernel command line) with the fast path off and on and
    /// expects the guest to see no difference (`expectSame`); returns the runs, for more checks.
    @discardableResult
    func expectNoDifference(_ guests: [(String, String)], engine: Engine = .hostDefault,
                            tlbEntries: Int = 64) throws -> [(on: ExitComparison, off: ExitComparison)] {
        try guests.map { image, append in
            let runs = try pair(image, append: append, engine: engine, tlbEntries: tlbEntries)
            expectSame(runs.on, runs.off, "\(image) \(append) on the \(engine) with \(tlbEntries) physical TLB entries")
            return runs
        }
    }
}
