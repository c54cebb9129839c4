@testable import MagritteCore
import Testing
@testable import MagritteHypervisor

/// Translated code that emulates a guest kernel's plain `mfc0` and `mtc0` without calling out
/// (`InlineCP0`, VMM+InlineCP0.swift) against the VMM's direct path and its general path: the
/// guest, the statistics and the events must not see the difference.
@Suite struct InlineCP0Tests {
    /// Which registers are plain comes from the CP0 rules: stored fields, less what the VMM
    /// answers itself (Random, Count, Cause, LLAddr, the hypercall) and what has an effect.
    @Test func plainRegistersFollowTheCP0Rules() throws {
        let layout = VMM.inlineLayout
        for r in [CP0Register.epc, .badVAddr, .entryHi, .context, .errorEPC, .status, .entryLo0, .entryLo1, .index, .pageMask, .wired] {
            #expect(layout.isPlain(r.number, r.select, write: false), "\(r) read")
        }
        for r in [CP0Register.random, .count, .cause, .llAddr, .prid, .config1] {
            #expect(!layout.isPlain(r.number, r.select, write: false), "\(r) read")
        }
        #expect(!layout.isPlain(CP0Register.hypercall.number, CP0Register.hypercall.select, write: false))
        for r in [CP0Register.epc, .errorEPC, .entryLo0, .entryLo1, .context, .wired] {
            #expect(layout.isPlain(r.number, r.select, write: true), "\(r) write")
        }
        for r in [CP0Register.status, .cause, .entryHi, .compare, .count, .index, .pageMask, .random, .badVAddr] {
            #expect(!layout.isPlain(r.number, r.select, write: true), "\(r) write")
        }
        // A plain read is what the VMM's own read gives, whatever the state.
        let vmm = try VMM(engine: .interpreter)
        let g = try vmm.addGuest(GuestConfiguration(name: "g"), imagePath: GuestsUnderVMMTests.guest("vmm/syscalls"))
        var seed: UInt32 = 0x1234_5677
        for reg in 0..<32 {
            for sel in 0..<8 where layout.isPlain(reg, sel, write: false) {
                seed = seed &* 1_664_525 &+ 1_013_904_223
                var s = CP0State()
                withUnsafeMutableBytes(of: &s) { raw in
                    for i in 0..<(raw.count / 4) { raw.storeBytes(of: seed ^ UInt32(i) &* 0x9E37_79B9, toByteOffset: 4 * i, as: UInt32.self) }
                }
                g.cp0 = s
                let offset = layout.readOffsets[reg | sel << 5]
                #expect(vmm.readVirtualCP0(g, reg, sel) == withUnsafeBytes(of: s) { $0.load(fromByteOffset: Int(offset), as: UInt32.self) })
            }
        }
    }

    /// The gate is open only where the direct path would emulate: it closes for a listener,
    /// exit sites, clustering, an observer of the CPU, the options, a long quantum before its
    /// first exit, and without a running guest.
    @Test func theGateClosesWhereTheDirectPathWouldDecline() throws {
        let vmm = try VMM(engine: .jit)
        let g = try vmm.addGuest(GuestConfiguration(name: "g"), imagePath: GuestsUnderVMMTests.guest("vmm/syscalls"))
        let gate = try #require(vmm.cpu.inlineCP0)
        vmm.trace.recording = false
        vmm.current = g
        #expect(gate.isOpen)
        func closes(_ what: String, _ on: () -> Void, _ off: () -> Void) {
            on()
            #expect(!gate.isOpen, "\(what)")
            off()
            #expect(gate.isOpen, "\(what) undone")
        }
        closes("recording", { vmm.trace.recording = true }, { vmm.trace.recording = false })
        closes("a listener", { vmm.trace.listener = { _ in } }, { vmm.trace.listener = nil })
        closes("exit sites", { vmm.collectsExitSites = true }, { vmm.collectsExitSites = false })
        closes("clustering", { vmm.clustersExits = true }, { vmm.clustersExits = false })
        closes("no direct path", { vmm.emulatesDirectly = false }, { vmm.emulatesDirectly = true })
        closes("no inline", { vmm.inlinesCP0 = false }, { vmm.inlinesCP0 = true })
        closes("a long quantum", { vmm.exitEndsQuantum = true }, { vmm.exitEndsQuantum = false })
        closes("no guest", { vmm.current = nil }, { vmm.current = g })
        closes("an observer", { vmm.cpu.observer = Watcher() }, { vmm.cpu.observer = nil })
    }

    final class Watcher: CPUObserver {}

    /// Inline, direct path and general path: the same console, counts, time, registers,
    /// virtual CP0, TLB, RAM, statistics, events counted and exception counts; and translated
    /// code did emulate (most of the guest kernel's mfc0 on syscalls).
    @Test(arguments: [("vmm/syscalls", ""), ("vmm/cp0fuzz", ""), ("vmm/tlbstress", ""), ("os/teachos", "idle=wait")])
    func theGuestSeesNoDifference(_ image: String, _ append: String) throws {
        var vmms: [VMM] = []
        func run(inline: Bool, direct: Bool) throws -> ExitComparison {
            let outcome = try ExitComparison.run(image, append: append, engine: .jit, listens: false, skips: { _ in false }) {
                $0.inlinesCP0 = inline
                $0.emulatesDirectly = direct
                vmms.append($0)
            }
            #expect(outcome.outcome == .allPoweredOff, "\(image)")
            return outcome
        }
        let runs = [try run(inline: true, direct: true), try run(inline: false, direct: true), try run(inline: false, direct: false)]
        let inline = runs[0]
        for (other, name) in [(runs[1], "direct path"), (runs[2], "general path")] {
            #expect(inline.console == other.console, "\(name)")
            #expect(inline.statistics == other.statistics, "\(name)")
            #expect(inline.now == other.now, "\(name)")
            #expect(inline.retired == other.retired, "\(name)")
            #expect(inline.executed == other.executed, "\(name)")
            #expect(inline.registers == other.registers, "\(name)")
            #expect(inline.cp0 == other.cp0, "\(name)")
            #expect(inline.tlb == other.tlb, "\(name)")
            #expect(inline.ram == other.ram, "\(name)")
        }
        try #require(vmms.count == 3)
        #expect(vmms[0].trace.total == vmms[1].trace.total && vmms[0].trace.total == vmms[2].trace.total, "the same events (not recorded)")
        #expect(vmms[0].cpu.exceptionCounts == vmms[1].cpu.exceptionCounts && vmms[0].cpu.exceptionCounts == vmms[2].cpu.exceptionCounts)
        let gate = try #require(vmms[0].cpu.inlineCP0)
        let mfc0 = inline.statistics.emulated["mfc0", default: 0]
        #expect(mfc0 > 1000)
        // Translated code emulated a good part of them (the rest: in delay slots, with
        // interrupts on in kernel mode, before a long quantum's first exit, in the interpreter).
        #expect(gate.reads * 4 > mfc0, "\(gate.reads) of \(mfc0) mfc0 inline")
        #expect(vmms[1].cpu.inlineCP0?.reads == 0 && vmms[2].cpu.inlineCP0?.reads == 0)
    }

    /// Someone listening to the trace gets every event of every exit: translated code steps
    /// aside, and the events are those of the general path.
    @Test func aListenerSeesEveryEvent() throws {
        var gates: [InlineCP0] = []
        func run(inline: Bool) throws -> ExitComparison {
            try ExitComparison.run("vmm/syscalls", engine: .jit, listens: true, skips: { _ in false }) {
                $0.inlinesCP0 = inline
                $0.emulatesDirectly = inline
                if let gate = $0.cpu.inlineCP0 { gates.append(gate) }
            }
        }
        let a = try run(inline: true), b = try run(inline: false)
        #expect(a.eventCount == b.eventCount && a.events == b.events)
        #expect(a.eventCount > 2_000_000)
        #expect(gates.count == 2 && gates[0].reads == 0 && gates[0].writes == 0)
    }
}
