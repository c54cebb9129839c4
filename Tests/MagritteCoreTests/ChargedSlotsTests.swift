import Testing
@testable import MagritteCore

/// `CPU.chargeEmulated`: a trap handler that emulates instructions after the trapping one in
/// the same exit (the VMM's clustering) charges their slots to the run in progress, which then
/// goes on (no stop) and ends at the same slot as if the CPU had run them — on both engines, in
/// the interpreter's loop and in a translated block.
@Suite struct ChargedSlotsTests {
    /// Emulates `mfc0 $8, Status` together with the `addu $10, $10, $8` after it (one charged
    /// slot, the CPU going on after the `addu`), and every other privileged instruction alone.
    /// Logs each trap with the time and the retired count.
    final class ClusteringHandler: TrapHandler {
        var log: [String] = []
        var charged = 0, outside = 0
        func handleTrap(_ trap: Trap, cpu: CPU) {
            log.append("\(trap.code) at \(String(trap.pc, radix: 16)), time \(cpu.currentCycles), retired \(cpu.retiredInstructions)")
            var next = trap.pc &+ 4
            if let w = cpu.codeWord(at: trap.pc) ?? cpu.readVirtual(trap.pc, size: 4), decode(w).op == .mfc0 {
                cpu.setGPR(8, 0x1234)
                cpu.setGPR(10, cpu.gpr(10) &+ 0x1234)  // the addu, emulated
                if cpu.chargeEmulated(slots: 1, faulted: 0) {
                    charged += 1
                } else {
                    outside += 1
                    cpu.requestStop()  // the run's budget did not count the slot
                }
                next &+= 4
            }
            cpu.setPosition(pc: next, npc: next &+ 4, inDelaySlot: false)
        }
    }

    typealias D = JITDifferentialTests

    func machine(_ engine: Engine, stopsCount: Bool = true) -> (D.Machine, ClusteringHandler) {
        let m = D.machineUnderHandler(seed: 9, engine: engine, program: D.privilegedLoop, quiet: true)
        let h = ClusteringHandler()
        m.cpu.trapHandler = h
        m.cpu.setStatus(0x0000_0010)  // user mode, no interrupts: only the traps
        m.cpu.setGPR(10, 0)  // the sum of the emulated `addu`s
        if stopsCount { m.cpu.writeCP0(13, 0, CauseBits.dc) }  // no timer: batches as long as the budget
        return (m, h)
    }

    @Test("Charged slots do not end the run, and the run ends at its budget, on both engines")
    func chargedSlotsKeepTheRunGoing() {
        let (a, ha) = machine(.interpreter), (b, hb) = machine(.jit)
        for (m, h) in [(a, ha), (b, hb)] {
            let start = m.cpu.cycles
            #expect(m.cpu.run(instructions: 8 * 1000 + 50) == .budgetExhausted, "\(m.cpu.engine)")
            #expect(m.cpu.cycles &- start == 8 * 1000 + 50, "\(m.cpu.engine): the budget counts the charged slots")
            #expect(m.cpu.gpr(9) == 0 && m.cpu.gpr(10) == 1000 &* 0x1234, "\(m.cpu.engine): the loop ran to its end")
            #expect(h.charged == 1000 && h.outside == 0, "\(m.cpu.engine): \(h.charged) charged, \(h.outside) not")
        }
        #expect(D.snapshot(a) == D.snapshot(b))
        #expect(ha.log == hb.log, "the same traps at the same times")
        #expect(a.cpu.faultedInstructions == 4000)
        // The translated blocks went on after the traps the handler left at the next instruction.
        #expect(b.cpu.jitStatistics.trapsGoneOn >= 2990)
    }

    /// Budgets (and the timer's batches) that end right at or inside a cluster: where the batch
    /// has no room for the charged slot, it is accounted outside the budget and the handler stops the run; the
    /// machine time and the state are those of the interpreter either way.
    @Test("A budget that ends inside a cluster", arguments: [1, 2, 3, 7, 9, 17, 100])
    func budgetsEndingInsideAClusterAgree(chunk: Int) {
        let (a, ha) = machine(.interpreter, stopsCount: false), (b, hb) = machine(.jit, stopsCount: false)
        for m in [a, b] {
            let start = m.cpu.cycles
            while m.cpu.cycles &- start < 8 * 300 {
                _ = m.cpu.run(instructions: UInt64(chunk))
            }
        }
        #expect(D.snapshot(a) == D.snapshot(b), "chunk \(chunk)")
        #expect(ha.log == hb.log, "chunk \(chunk)")
        #expect(ha.charged + ha.outside == hb.charged + hb.outside)
        #expect(ha.charged + ha.outside >= 290)
        if chunk == 1 { #expect(ha.outside > 0) }
    }
}
