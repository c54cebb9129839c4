import MagritteCore
import MagritteHypervisor

/// The guests of a VMM as the threads of one GDB target: thread N is guest N-1. Registers are
/// the selected guest's own (its virtual CP0 for status, cause and badvaddr), memory goes through
/// its own translation, and a breakpoint or watchpoint stops whichever guest reaches it at its
/// own virtual address.
public final class VMMTarget: GDBTarget {
    public let vmm: VMM
    /// The history gdb goes back through (`bs`, `bc`; VMMTarget+Reverse.swift); runs and steps
    /// go through it. Nil: no reverse execution.
    public let timeTravel: VMMTimeTravel?
    var points = StopPoints()
    /// Instructions a guest that runs alone (gdb's software single-step) runs between two looks
    /// at the socket; when all run, the socket is polled at the end of each VMM slice.
    public var slice: UInt64 = 100_000

    public init(vmm: VMM, timeTravel: VMMTimeTravel? = nil) {
        self.vmm = vmm
        self.timeTravel = timeTravel
    }

    func run(_ maxInstructions: UInt64 = .max) -> VMMRunOutcome {
        timeTravel?.run(maxInstructions: maxInstructions) ?? vmm.run(maxInstructions: maxInstructions)
    }

    func step(_ g: Guest, _ n: UInt64) -> VMMRunOutcome {
        timeTravel?.step(g, instructions: n) ?? vmm.step(g, instructions: n)
    }

    /// Runs `body` with `watcher` observing the CPU (`CPU.debugged`), without the per-guest
    /// instruction observation a script's hooks set (`VMM.instructionObservedGuests`: their
    /// observer is not the CPU's meanwhile), which comes back after.
    func debugged<R>(by watcher: StopPointWatcher, observeAll: Bool, _ body: () -> R) -> R {
        let observed = vmm.instructionObservedGuests
        vmm.instructionObservedGuests = nil
        defer { vmm.instructionObservedGuests = observed }
        return vmm.cpu.debugged(by: watcher, observeAll: observeAll, body)
    }

    public var threads: [Int] { vmm.guests.map { $0.index + 1 } }

    func guest(_ thread: Int) -> Guest? {
        vmm.guests.first { $0.index + 1 == thread }
    }

    public func threadDescription(_ thread: Int) -> String? {
        guard let g = guest(thread) else { return nil }
        return "\(g.name) (\(g.state == .poweredOff ? "off" : g.state == .waiting ? "waiting" : "runnable"))"
    }

    public func readRegister(_ n: Int, thread: Int) -> UInt32? {
        guard let g = guest(thread) else { return nil }
        let r = vmm.registers(of: g)
        switch n {
        case 0..<32: return r.gprs[n]
        case GDBRegister.status: return vmm.virtualCP0(g, 12, 0)
        case GDBRegister.lo: return r.lo
        case GDBRegister.hi: return r.hi
        case GDBRegister.badVAddr: return vmm.virtualCP0(g, 8, 0)
        case GDBRegister.cause: return vmm.virtualCP0(g, 13, 0)
        case GDBRegister.pc: return r.pc
        default: return nil
        }
    }

    public func writeRegister(_ n: Int, _ value: UInt32, thread: Int) -> Bool {
        guard let g = guest(thread) else { return false }
        timeTravel?.discardFuture()  // the recorded future is no longer this state's
        let r = vmm.registers(of: g)
        switch n {
        case 0..<32: vmm.setRegister(of: g, n, value)
        case GDBRegister.lo: vmm.setHiLo(of: g, hi: r.hi, lo: value)
        case GDBRegister.hi: vmm.setHiLo(of: g, hi: value, lo: r.lo)
        case GDBRegister.pc: vmm.setPC(of: g, value)
        default: return false  // the virtual CP0 changes only through the guest's own mtc0
        }
        return true
    }

    public func readByte(_ address: UInt32, thread: Int) -> UInt8? {
        guard let g = guest(thread) else { return nil }
        return vmm.readGuestMemory(g, virtual: address, size: 1).map { UInt8(truncatingIfNeeded: $0) }
    }

    public func writeByte(_ address: UInt32, _ value: UInt8, thread: Int) -> Bool {
        guard let g = guest(thread) else { return false }
        timeTravel?.discardFuture()
        return vmm.writeGuestMemory(g, virtual: address, size: 1, value: UInt32(value))
    }

    public func insert(_ point: GDBStopPoint) -> Bool { points.insert(point) }
    public func remove(_ point: GDBStopPoint) -> Bool { points.remove(point) }

    var currentThread: Int { (vmm.current?.index ?? 0) + 1 }

    public func step(thread: Int) -> GDBStop {
        points.watchStop = nil
        guard let g = guest(thread) else { return .trap(thread: currentThread) }
        if g.state == .poweredOff { return .trap(thread: thread) }
        let watcher = StopPointWatcher(breakpoints: [], watchpoints: points.watchpoints, foresees: false)
        _ = debugged(by: watcher, observeAll: true) { step(g, 1) }
        if let hit = watcher.watchHit { return .watch(hit.kind, address: hit.address, thread: thread) }
        return .trap(thread: thread)
    }

    /// Runs every guest as the scheduler would (`thread` nil), or only guest `thread`: gdb
    /// single-steps MIPS in software, continuing one thread to a temporary breakpoint, and
    /// expects that thread to be the one that stops.
    public func resume(thread: Int?, interrupted: () -> Bool) -> GDBStop {
        let watcher = StopPointWatcher(breakpoints: points.breakpoints, watchpoints: points.watchpoints, foresees: true)
        watcher.onStop = { [unowned vmm] in vmm.stop() }
        defer { points.watchStop = watcher.stoppedBefore.map { (currentThread, $0) } }
        // Resumed where a breakpoint stopped the guest on the CPU, before an instruction whose
        // access touches a watchpoint: the stop before that access comes first, before any
        // guest runs on (the scheduler would run the others first, and the breakpoint would
        // stop that guest again when it comes back).
        if let g = vmm.current, thread == nil || thread == g.index + 1,
           watcher.foreseeSkippedInstruction(vmm.cpu, after: points, thread: g.index + 1) {
            return stop(.stopped, watcher, thread: g.index + 1, pressedCtrlC: false)
        }
        if let t = thread, let g = guest(t) { return runAlone(g, watcher, interrupted) }
        // All guests: one uninterrupted `run`, the socket polled at the end of each slice, so
        // the schedule is the one a run without gdb has.
        var pressedCtrlC = false
        let outcome = withoutActuallyEscaping(interrupted) { interrupted in
            let previous = vmm.onSliceEnd
            vmm.onSliceEnd = { [unowned vmm] in
                previous?()
                if interrupted() {
                    pressedCtrlC = true
                    vmm.stop()
                }
            }
            defer { vmm.onSliceEnd = previous }
            return debugged(by: watcher, observeAll: false) { run() }
        }
        return stop(outcome, watcher, thread: currentThread, pressedCtrlC: pressedCtrlC)
    }

    func runAlone(_ g: Guest, _ watcher: StopPointWatcher, _ interrupted: () -> Bool) -> GDBStop {
        while true {
            let outcome = debugged(by: watcher, observeAll: false) { step(g, slice) }
            if outcome == .instructionLimit {
                if interrupted() { return .interrupted(thread: g.index + 1) }
                continue
            }
            return stop(outcome, watcher, thread: g.index + 1, pressedCtrlC: false)
        }
    }

    func stop(_ outcome: VMMRunOutcome, _ watcher: StopPointWatcher, thread: Int, pressedCtrlC: Bool) -> GDBStop {
        if let hit = watcher.watchHit { return .watch(hit.kind, address: hit.address, thread: thread) }
        if outcome == .allPoweredOff && vmm.guests.allSatisfy({ $0.state == .poweredOff }) { return .exited(code: 0) }
        return pressedCtrlC ? .interrupted(thread: thread) : .trap(thread: thread)
    }

    public func detach() {
        points = StopPoints()
    }
}
