import Foundation
import MagritteCore
import MagritteMachine
import Testing
@testable import MagritteHypervisor

/// Controlling single guests (VMM+Control.swift): pause, step, injected exceptions and
/// interrupts, and `stop` from inside a run.
@Suite struct ControlTests {
    static let teachos = GuestsUnderVMMTests.guest("os/teachos")
    static let hello = GuestsUnderVMMTests.guest("tests/hello")

    /// A VMM with two teachos guests, "a" and "b".
    func twoGuests(_ idle: String = "wait") throws -> (VMM, Guest, Guest) {
        let vmm = try VMM()
        let a = try vmm.addGuest(GuestConfiguration(name: "a", commandLine: "idle=\(idle)"), imagePath: Self.teachos)
        let b = try vmm.addGuest(GuestConfiguration(name: "b", commandLine: "idle=\(idle)"), imagePath: Self.teachos)
        return (vmm, a, b)
    }

    /// Runs `g` alone until its first process runs in user mode, and returns the VMM's event
    /// that brought it there (the real return to user mode).
    func runToUserMode(_ vmm: VMM, _ g: Guest) -> VMMEvent? {
        var seen: VMMEvent?
        vmm.trace.listener = { e in
            if case .realReturn = e.kind, e.guest == g.name, e.modeAfter == .user, seen == nil {
                seen = e
                vmm.stop()
            }
        }
        defer { vmm.trace.listener = nil }
        #expect(vmm.step(g, instructions: 50_000_000) == .stopped)
        return seen
    }

    @Test func aPausedGuestIsNotScheduled() throws {
        let (vmm, a, b) = try twoGuests()
        vmm.pause(a)
        let pc = vmm.registers(of: a).pc
        #expect(vmm.run(maxInstructions: 3_000_000) == .instructionLimit)
        #expect(a.statistics.instructions == 0)
        #expect(a.statistics.switchesIn == 0)
        #expect(vmm.registers(of: a).pc == pc)
        #expect(b.statistics.instructions > 2_000_000)
        // With every guest that is still on paused, nothing can run.
        vmm.pause(b)
        #expect(vmm.run(maxInstructions: 1000) == .deadlock)
        vmm.resume(a)
        vmm.resume(b)
        #expect(vmm.run(maxInstructions: 1_000_000) == .instructionLimit)
        #expect(a.statistics.instructions > 0)
    }

    @Test func pausingFromAListenerEndsTheSlice() throws {
        let (vmm, a, b) = try twoGuests()
        vmm.slice = 1_000_000
        var paused = false
        vmm.trace.listener = { e in
            if !paused, e.guest == "a", e.name == "emulate" { paused = true; vmm.pause(a) }
        }
        #expect(vmm.run(maxInstructions: 200_000) == .instructionLimit)
        #expect(paused && a.paused)
        #expect(a.statistics.instructions < 200_000)
        #expect(b.statistics.instructions > 0)
    }

    @Test func stepRunsOneGuestForExactlyNInstructions() throws {
        let (vmm, a, b) = try twoGuests()
        #expect(vmm.step(a, instructions: 1000) == .instructionLimit)
        #expect(a.statistics.instructions == 1000)
        #expect(b.statistics.instructions == 0)
        #expect(vmm.step(a, instructions: 123_457) == .instructionLimit)
        #expect(a.statistics.instructions == 124_457)
        #expect(vmm.step(b, instructions: 1) == .instructionLimit)
        #expect(b.statistics.instructions == 1)
        #expect(a.statistics.instructions == 124_457)
        // A paused guest can still be stepped, and stays paused.
        vmm.pause(a)
        #expect(vmm.step(a, instructions: 10) == .instructionLimit)
        #expect(a.statistics.instructions == 124_467 && a.paused)
        // Through WAITs (teachos idles at the end) to its power-off.
        #expect(vmm.step(b, instructions: .max) == .allPoweredOff)
        #expect(b.consoleText.contains("teachos: all 13 processes have ended"))
        #expect(a.statistics.instructions == 124_467)
        #expect(vmm.step(b, instructions: 5) == .allPoweredOff)
    }

    @Test func anInjectedSyscallRunsTheGuestsOwnHandler() throws {
        let (vmm, a, _) = try twoGuests()
        _ = try #require(runToUserMode(vmm, a))
        let pc = vmm.registers(of: a).pc
        #expect(a.mode == .user)
        let before = vmm.trace.total
        try vmm.inject(.syscall, into: a)
        let events = vmm.trace.events.suffix(Int(vmm.trace.total - before))
        let reflect = try #require(events.last)
        let vector = (a.cp0.ebase & 0xFFFF_F000) + 0x180
        #expect(reflect.kind == .reflect(.syscall, vector: vector))
        #expect(reflect.modeBefore == .user && reflect.modeAfter == .kernel)
        #expect(vmm.registers(of: a).pc == vector)
        #expect(vmm.virtualCP0(a, 14, 0) == pc)  // EPC
        #expect((vmm.virtualCP0(a, 13, 0) >> 2) & 31 == 8)  // Cause.ExcCode = Sys
        #expect(a.statistics.reflected[8] == 1)
        #expect(a.statistics.traps[8] == 0)  // no physical trap
        // The guest's handler runs at reduced privilege: its privileged instructions trap into the
        // VMM and are emulated, and its eret is the VMM's real return.
        var emulated = 0
        var returned = false
        vmm.trace.listener = { e in
            guard e.guest == "a" else { return }
            if case .emulate = e.kind { emulated += 1 }
            if case .realReturn = e.kind { returned = true; vmm.stop() }
        }
        #expect(vmm.step(a, instructions: 1_000_000) == .stopped)
        #expect(emulated > 0 && returned)
    }

    @Test func injectedTLBMissesGoToTheRefillVector() throws {
        let (vmm, a, _) = try twoGuests()
        _ = try #require(runToUserMode(vmm, a))
        let misses = a.statistics.reflectedTLBMisses
        try vmm.inject(.tlbLoad, into: a, badVAddr: 0x0070_1234)
        let e = try #require(vmm.trace.events.last)
        let base = a.cp0.ebase & 0xFFFF_F000
        #expect(e.kind == .reflect(.tlbLoad, vector: base))  // no entry: the refill vector
        #expect(vmm.virtualCP0(a, 8, 0) == 0x0070_1234)  // BadVAddr
        #expect(vmm.virtualCP0(a, 10, 0) & 0xFFFF_E000 == 0x0070_0000)  // EntryHi.VPN2
        #expect(a.statistics.reflectedTLBMisses == misses + 1)
        #expect(throws: VMMError.self) { try vmm.inject(.tlbStore, into: a) }
        #expect(throws: VMMError.self) { try vmm.inject(.addressErrorLoad, into: a) }
    }

    @Test func injectedInterruptsAreTakenWhenEnabled() throws {
        let (vmm, a, _) = try twoGuests()
        _ = try #require(runToUserMode(vmm, a))
        // teachos runs processes with IE = 1 and only IM7 (the timer's line) unmasked.
        #expect(vmm.virtualCP0(a, 12, 0) & 0xFF01 == 0x8001)
        var interrupts = 0
        vmm.trace.listener = { e in if case .reflect(.interrupt, _) = e.kind { interrupts += 1 } }
        try vmm.setInterruptLine(a, 5, asserted: true)  // IP7: enabled, taken before the next instruction
        #expect(vmm.step(a, instructions: 1) == .instructionLimit)
        #expect(interrupts == 1)
        #expect(a.mode == .kernel)
        try vmm.setInterruptLine(a, 5, asserted: false)
        _ = runToUserMode(vmm, a)
        vmm.trace.listener = { e in if case .reflect(.interrupt, _) = e.kind { interrupts += 1 } }
        try vmm.setInterruptLine(a, 0, asserted: true)  // IP2: masked, nothing happens
        #expect(vmm.step(a, instructions: 1) == .instructionLimit)
        #expect(interrupts == 1)
        #expect(vmm.virtualCP0(a, 13, 0) & 0x400 != 0)  // but Cause.IP2 shows it
        try vmm.setInterruptLine(a, 0, asserted: false)
        #expect(vmm.virtualCP0(a, 13, 0) & 0x400 == 0)
        #expect(throws: VMMError.self) { try vmm.setInterruptLine(a, 6, asserted: true) }
        // The timer: Cause.TI and IP7.
        _ = runToUserMode(vmm, a)
        vmm.trace.listener = { e in if case .reflect(.interrupt, _) = e.kind { interrupts += 1 } }
        vmm.fireTimer(a)
        #expect(vmm.virtualCP0(a, 13, 0) & 0x4000_8000 == 0x4000_8000)
        #expect(vmm.step(a, instructions: 1) == .instructionLimit)
        #expect(interrupts == 2)
    }

    @Test func aWaitingGuestWakesForAnInjectedException() throws {
        let vmm = try VMM()
        let g = try vmm.addGuest(GuestConfiguration(name: "w", commandLine: "idle=wait"), imagePath: Self.teachos)
        var idle = false
        vmm.trace.listener = { e in if case .idle("wait") = e.kind { idle = true; vmm.stop() } }
        #expect(vmm.run() == .stopped)
        vmm.trace.listener = nil
        #expect(idle && g.state == .waiting)
        try vmm.inject(.breakpoint, into: g)
        #expect(g.state == .runnable)
        #expect(g.statistics.reflected[9] == 1)
    }

    @Test func stopFromAListenerEndsRunAtThatEvent() throws {
        let (vmm, a, _) = try twoGuests()
        var at: VMMEvent?
        vmm.trace.listener = { e in
            // The listener runs inside handleTrap: the trap is handled, then run returns.
            if at == nil, case .reflect(.syscall, _) = e.kind { at = e; vmm.stop() }
        }
        #expect(vmm.run() == .stopped)
        let e = try #require(at)
        #expect(vmm.cpu.retiredInstructions == e.instructions)  // not one instruction more
        #expect(vmm.trace.events.last == e)
        vmm.trace.listener = nil
        // Stopped at a machine switch, outside any trap: run returns before the guest runs, and
        // the next run is not cut short by the stop.
        var switches = 0
        vmm.trace.listener = { e in if case .machineSwitch = e.kind { switches += 1; vmm.stop() } }
        let n = vmm.cpu.retiredInstructions
        #expect(vmm.run() == .stopped)
        #expect(switches == 1 && vmm.cpu.retiredInstructions == n)
        vmm.trace.listener = nil
        let before = a.statistics.instructions + vmm.guests[1].statistics.instructions
        #expect(vmm.step(vmm.current!, instructions: 777) == .instructionLimit)
        #expect(a.statistics.instructions + vmm.guests[1].statistics.instructions == before + 777)
    }

    @Test func aPolicyMayOnlyChooseARunnableGuest() throws {
        let (vmm, a, b) = try twoGuests()
        var asked = 0
        vmm.policy = { runnable, _ in
            asked += 1
            return runnable.contains { $0 === b } ? b : runnable.first
        }
        #expect(vmm.run(maxInstructions: 1_000_000) == .instructionLimit)
        #expect(asked > 0 && a.statistics.instructions == 0 && b.statistics.instructions > 0)
        vmm.pause(b)
        vmm.policy = { _, _ in b }  // paused: not one of the runnable guests
        #expect(vmm.run(maxInstructions: 1_000_000) == .deadlock)
        #expect(a.statistics.instructions == 0)
    }

    @Test func registersAndMemoryAsTheGuestSeesThem() throws {
        let vmm = try VMM()
        let g = try vmm.addGuest(GuestConfiguration(name: "h"), imagePath: Self.hello)
        let entry = try #require(g.image?.entry)
        #expect(vmm.registers(of: g).pc == entry)
        #expect(vmm.registers(of: g).gprs[4] == 2)  // argc
        #expect(vmm.virtualCP0(g, 15, 0) == 0x0001_9300)  // PRId
        let word = try #require(vmm.readGuestMemory(g, virtual: entry, size: 4))
        #expect(word != 0 && word == vmm.cpu.readPhysical(g.memoryBase + (entry & 0x1FFF_FFFF), size: 4))
        #expect(vmm.readGuestMemory(g, virtual: 0x0000_1000, size: 4) == nil)  // useg: no TLB entry
        #expect(vmm.step(g, instructions: 3) == .instructionLimit)
        #expect(vmm.registers(of: g).pc == entry + 12)
    }
}
