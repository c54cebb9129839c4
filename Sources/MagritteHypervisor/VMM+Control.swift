import MagritteCore
import MagritteMachine

/// Control of single guests, as a debugger or a script needs it (Docs/lua-api.md, "Virtual
/// machines"): pause and resume, run one guest alone, inject an exception or an interrupt, and
/// read the virtual CPU a guest would see.
///
/// Nothing here bypasses the VMM: an injected exception goes through `reflect`, so the guest's
/// own handler runs at reduced privilege exactly as after a real trap; an injected interrupt
/// raises a virtual Cause.IP line that `deliverInterrupt` takes at the next instruction boundary
/// where the guest has it enabled. These calls are for use between runs (or between steps), not
/// from inside `run` (a trace listener or the policy may call `stop`, `pause` and `resume`).
extension VMM {
    // MARK: Pause and resume

    /// Takes `g` off the schedule: `run` does not switch to it until `resume(g)`. Its virtual time
    /// (Count) goes on. From inside a run (a trace listener) the guest's slice ends at once.
    public func pause(_ g: Guest) {
        changesByHand &+= 1
        g.paused = true
        if current === g {
            sliceEnd = true
            cpu.requestStop()
        }
    }

    public func resume(_ g: Guest) {
        changesByHand &+= 1
        g.paused = false
    }

    // MARK: Running one guest

    /// Runs `g` alone for `instructions` retired guest instructions (the others stay where they
    /// are; machine time passes for all), paused or not. Stops earlier when the guest powers
    /// off (`.allPoweredOff`), waits for an interrupt nothing can raise (`.deadlock`) or `stop()`
    /// is called (`.stopped`); `.instructionLimit` when all ran. A guest that waits (WAIT, the
    /// idle hypercall) skips machine time to its next virtual timer interrupt, as `run` does
    /// when every guest waits.
    public func step(_ g: Guest, instructions: UInt64) -> VMMRunOutcome {
        precondition(guests.contains { $0 === g }, "step: the guest belongs to another VMM")
        stopRequested = false
        hostMemoryFailed = false
        discardStaleStop()
        var left = instructions
        var fruitless = 0
        while true {
            if stopRequested { stopRequested = false; save(); return takeStop() }
            if g.state == .poweredOff { save(); return .allPoweredOff }
            if left == 0 { save(); return .instructionLimit }
            if g.state == .waiting {
                updateTimer(g)
                if interruptPending(g) {
                    wake(g)
                } else {
                    guard g.cp0.status & StatusBits.im7 != 0, let t = nextTimerCycle(g) else { save(); return .deadlock }
                    if t > now { skippedCycles &+= t - now }
                    updateTimer(g)
                    guard interruptPending(g) else { save(); return .deadlock }
                    wake(g)
                }
            }
            switchTo(g)
            let before = cpu.retiredInstructions
            _ = runSlice(left)
            let done = cpu.retiredInstructions &- before
            left -= min(done, left)
            // A guest that only faults (a handler that faults again) retires nothing: give up
            // rather than loop forever.
            fruitless = done == 0 && g.state == .runnable && !stopRequested ? fruitless + 1 : 0
            if fruitless > 10_000 { save(); return .instructionLimit }
        }
    }

    /// A stop asked for when the CPU no longer ran (from a switch event, between runs) stays
    /// pending in the CPU and would end the next quantum before its first instruction.
    func discardStaleStop() {
        _ = cpu.run(instructions: 0)
    }

    // MARK: Injection

    /// Raises exception `code` in `g` at its current instruction boundary, as its CPU would take
    /// it: EPC (the branch in a delay slot), Cause, BadVAddr (and Context and EntryHi for TLB
    /// exceptions), Status.EXL, and the guest's own vector at reduced privilege. A TLB exception
    /// is a refill when the guest's virtual TLB has no entry for `badVAddr` (unless `refill` says
    /// otherwise). A waiting guest wakes up to take it. Address errors and TLB exceptions need
    /// `badVAddr`.
    public func inject(_ code: ExceptionCode, into g: Guest, badVAddr: UInt32? = nil, refill: Bool? = nil) throws(VMMError) {
        precondition(guests.contains { $0 === g }, "inject: the guest belongs to another VMM")
        guard g.state != .poweredOff else { throw VMMError("guest \(g.name) is powered off") }
        let tlb = code.isTLB
        let needsAddress = tlb || code == .addressErrorLoad || code == .addressErrorStore
        if needsAddress && badVAddr == nil { throw VMMError("\(code) needs the faulting address") }
        var isRefill = false
        if tlb, let va = badVAddr {
            if case .miss = TLBEntry.lookup(g.tlb, va, asid: g.cp0.asid) { isRefill = code != .tlbModified }
            isRefill = refill ?? isRefill
        }
        changesByHand &+= 1
        if g.state == .waiting { wake(g) }
        switchTo(g)
        reflect(g, code, pc: cpu.pc, inDelaySlot: cpu.inDelaySlot, badVAddr: needsAddress ? badVAddr : nil, refill: isRefill,
                coprocessor: code == .coprocessorUnusable ? 1 : 0)
        save()
    }

    /// Asserts (or clears) hardware interrupt line `line` (0...5: Cause.IP2...IP7) of `g`'s
    /// virtual CPU. It stays asserted until cleared; the guest takes it at the next instruction
    /// boundary where Status.IE and the line's IM bit allow it, and a waiting guest wakes.
    public func setInterruptLine(_ g: Guest, _ line: Int, asserted: Bool) throws(VMMError) {
        guard (0...5).contains(line) else { throw VMMError("hardware line must be 0..5 (Cause.IP2..IP7)") }
        let bit = UInt32(1) << (10 + UInt32(line))
        changesByHand &+= 1
        if asserted { g.hardwareIP |= bit } else { g.hardwareIP &= ~bit }
    }

    /// Makes `g`'s virtual timer fire now (Cause.TI and IP7), as when Count reaches Compare; the
    /// guest clears it by writing Compare.
    public func fireTimer(_ g: Guest) {
        changesByHand &+= 1
        g.timerPending = true
    }

    // MARK: The virtual CPU as the guest sees it

    /// CP0 register `reg`, select `sel`, as the guest's `mfc0` reads it.
    public func virtualCP0(_ g: Guest, _ reg: Int, _ sel: Int) -> UInt32 {
        readVirtualCP0(g, reg & 31, sel & 7)
    }

    /// The guest's general registers (0...31), HI, LO and pc: from the physical CPU while it is
    /// the guest loaded there, else as saved at its last machine switch.
    public func registers(of g: Guest) -> (gprs: [UInt32], hi: UInt32, lo: UInt32, pc: UInt32) {
        guard current === g else { return (g.gprs, g.hi, g.lo, g.pc) }
        return ((0..<32).map { cpu.gpr($0) }, cpu.hi, cpu.lo, cpu.pc)
    }

    /// The instructions `g` has retired, exact also inside a run (its statistics are brought up
    /// to date at the end of each quantum).
    public func retiredInstructions(of g: Guest) -> UInt64 {
        let s = g.statistics.kernelInstructions &+ g.statistics.userInstructions
        return current === g ? s &+ (cpu.retiredInstructions &- g.modeMark) : s
    }

    /// Reads `size` bytes (1, 2, 4) at guest-virtual `va` through the guest's own translation
    /// (kseg0/kseg1 unmapped, the rest through its virtual TLB), without side effects; nil when the
    /// guest has no valid mapping there or the address is not its RAM.
    public func readGuestMemory(_ g: Guest, virtual va: UInt32, size: Int) -> UInt32? {
        readGuest(g, va, size: size)
    }

    /// Writes `size` bytes (1, 2, 4) at guest-virtual `va` through the guest's own translation
    /// (a mapped page must be dirty, i.e. writable, as for the guest's stores); false when the
    /// guest has no writable mapping there or the address is not its RAM.
    public func writeGuestMemory(_ g: Guest, virtual va: UInt32, size: Int, value: UInt32) -> Bool {
        guard let gpa = guestPhysical(g, va, store: true) else { return false }
        return writeGuestMemory(g, physical: gpa, size: size, value: value)
    }

    /// Reads `size` bytes at guest-physical `gpa` (the guest's RAM only, no device); nil outside it.
    public func readGuestMemory(_ g: Guest, physical gpa: UInt32, size: Int) -> UInt32? {
        guard let ma = g.machineAddress(gpa), gpa &+ UInt32(size) <= UInt32(g.ramSize) else { return nil }
        return cpu.readPhysical(ma, size: size)
    }

    /// Writes `size` bytes at guest-physical `gpa` (the guest's RAM only); false outside it.
    public func writeGuestMemory(_ g: Guest, physical gpa: UInt32, size: Int, value: UInt32) -> Bool {
        guard let ma = g.machineAddress(gpa), gpa &+ UInt32(size) <= UInt32(g.ramSize) else { return false }
        changesByHand &+= 1
        return cpu.writePhysical(ma, size: size, value: value)
    }
}
