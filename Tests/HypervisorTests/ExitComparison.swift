import Foundation
import MagritteCore
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
    /// A digest of every event but the traps `skips` and the events `skipsEvent` leave out (text,
    /// pc, instructions, modes), and their number.
    var events: UInt64
    var eventCount: Int
    /// The traps left out.
    var skippedTraps: Int
    var outcome: VMMRunOutcome

    /// Runs `image` (a name under .build/guests) with `configure` applied to the VMM.
    static func run(_ image: String, append: String = "", ramSize: Int = 32 << 20, engine: Engine = .hostDefault, tlbEntries: Int = 64,
                    maxInstructions: UInt64 = 2_000_000_000, skips: @escaping (ExceptionCode) -> Bool,
                    skipsEvent: @escaping (VMMEvent.Kind) -> Bool = { _ in false },
                    configure: (VMM) -> Void) throws -> ExitComparison {
        let vmm = try VMM(tlbEntries: tlbEntries, engine: engine)
        configure(vmm)
        vmm.trace.recording = false
        var digest: UInt64 = 0xcbf2_9ce4_8422_2325, count = 0, skipped = 0
        vmm.trace.listener = { e in
            if case .trap(let code) = e.kind, skips(code) { skipped += 1; return }
            if skipsEvent(e.kind) { return }
            count += 1
            for byte in "\(e.text) \(e.pc) \(e.instructions) \(e.modeBefore) \(e.modeAfter)".utf8 { digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        let g = try vmm.addGuest(GuestConfiguration(name: "g", ramSize: ramSize, commandLine: append), imagePath: GuestsUnderVMMTests.guest(image))
        let outcome = vmm.run(maxInstructions: maxInstructions)
        let r = vmm.registers(of: g)
        return ExitComparison(console: g.consoleText, statistics: g.statistics, now: vmm.now, retired: vmm.cpu.retiredInstructions,
                              executed: vmm.cpu.executedInstructions, registers: r.gprs + [r.hi, r.lo, r.pc], cp0: g.cp0, tlb: g.tlb,
                              events: digest, eventCount: count, skippedTraps: skipped, outcome: outcome)
    }
}
