import MagritteCore
import Testing
@testable import MagritteHypervisor

/// The direct path for a guest kernel's `mfc0`, `mtc0`, `di`, `ei`, `eret` and `cache` and for
/// the reflection of a `syscall` or `break` (`VMM.emulatePrivileged`, which the CPU calls
/// instead of taking the exception) against the general path (`VMM.handleTrap`): the guest and
/// the statistics must not see the difference — the same console, counts, machine time,
/// registers, virtual CP0, TLB and RAM, on both engines.
@Suite struct DirectPathTests {
    /// What each guest makes the direct path take (at least once).
    static let taken: [String: [Op]] = [
        "vmm/syscalls": [.mfc0, .mtc0, .eret, .syscall], "vmm/cp0fuzz": [.mfc0, .mtc0, .ei, .eret, .cache, .syscall, .break],
        "vmm/tlbstress": [.mfc0, .mtc0, .eret], "os/teachos": [.mfc0, .mtc0, .eret, .syscall],
        "tests/syscall_break": [.syscall, .break, .eret], "tests/noops": [.cache],
    ]

    @Test(arguments: [("vmm/syscalls", "", Engine.jit), ("vmm/syscalls", "", .interpreter), ("vmm/cp0fuzz", "", .jit),
                      ("vmm/tlbstress", "", .jit), ("os/teachos", "idle=wait", .jit), ("os/teachos", "idle=wait", .interpreter),
                      ("tests/syscall_break", "", .jit), ("tests/noops", "", .interpreter)])
    func theGuestSeesNoDifference(_ image: String, _ append: String, _ engine: Engine) throws {
        var vmms: [VMM] = []
        func run(direct: Bool) throws -> ExitComparison {
            let outcome = try ExitComparison.run(image, append: append, engine: engine, listens: false, skips: { _ in false }) {
                $0.emulatesDirectly = direct
                vmms.append($0)
            }
            #expect(outcome.outcome == .allPoweredOff, "\(image)")
            return outcome
        }
        let direct = try run(direct: true)
        let full = try run(direct: false)
        #expect(direct.console == full.console)
        #expect(direct.statistics == full.statistics)
        #expect(direct.now == full.now)
        #expect(direct.retired == full.retired)
        #expect(direct.executed == full.executed)
        #expect(direct.registers == full.registers)
        #expect(direct.cp0 == full.cp0)
        #expect(direct.tlb == full.tlb)
        #expect(direct.ram == full.ram)
        #expect(vmms.count == 2 && vmms[0].trace.total == vmms[1].trace.total, "the same events (not recorded)")
        #expect(vmms.count == 2 && vmms[0].cpu.exceptionCounts == vmms[1].cpu.exceptionCounts)
        guard vmms.count == 2 else { return }
        print("\(image) \(engine): the direct path took " + Op.allCases.filter { vmms[0].directExits[Int($0.rawValue)] > 0 }
            .map { "\($0) \(vmms[0].directExits[Int($0.rawValue)])" }.joined(separator: ", "))
        for op in DirectPathTests.taken[image] ?? [] {
            #expect(vmms[0].directExits[Int(op.rawValue)] > 0, "\(image): \(op) took the direct path")
        }
        #expect(vmms[1].directExits.allSatisfy { $0 == 0 }, "off, nothing takes it")
        if engine == .jit, DirectPathTests.taken[image]?.contains(.mfc0) == true {
            // The direct path ran: its instructions complete in their block instead of going on
            // there after a handled trap.
            let fast = vmms[0].cpu.jitStatistics.trapsGoneOn, slow = vmms[1].cpu.jitStatistics.trapsGoneOn
            #expect(fast < slow, "\(fast) against \(slow) traps went on in their block")
        }
    }

    /// Someone listening to the trace (a Lua hook, the lecture's tables) gets every event of
    /// every exit: the direct path steps aside, and the events are those of the general path.
    @Test func aListenerSeesEveryEvent() throws {
        func run(direct: Bool) throws -> ExitComparison {
            try ExitComparison.run("vmm/syscalls", listens: true, skips: { _ in false }) { $0.emulatesDirectly = direct }
        }
        let a = try run(direct: true), b = try run(direct: false)
        #expect(a.eventCount == b.eventCount && a.events == b.events)
        #expect(a.eventCount > 2_000_000)
    }
}
