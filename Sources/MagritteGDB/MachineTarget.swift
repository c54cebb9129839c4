import MagritteCore
import MagritteMachine

/// A bare Malta as a one-thread GDB target: the CPU's registers, memory through its current
/// translation (RAM and the boot ROM; device registers are not read, reading a UART would
/// consume its input), breakpoints checked before each instruction, watchpoints through the
/// CPU's memory watches.
public final class MachineTarget: GDBTarget {
    public let machine: Malta
    /// The machine's history, when it records one: gdb can then go back (`bs`, `bc`).
    public let timeTravel: TimeTravel?
    var cpu: CPU { machine.cpu }
    var points = StopPoints()

    public init(machine: Malta, timeTravel: TimeTravel? = nil) {
        self.machine = machine
        self.timeTravel = timeTravel
    }

    public let threads = [1]
    public func threadDescription(_ thread: Int) -> String? { "cpu" }

    public func readRegister(_ n: Int, thread: Int) -> UInt32? {
        switch n {
        case 0..<32: return cpu.gpr(n)
        case GDBRegister.status: return cpu.cp0.status
        case GDBRegister.lo: return cpu.lo
        case GDBRegister.hi: return cpu.hi
        case GDBRegister.badVAddr: return cpu.cp0.badVAddr
        case GDBRegister.cause: return cpu.cause
        case GDBRegister.pc: return cpu.pc
        default: return nil
        }
    }

    public func writeRegister(_ n: Int, _ value: UInt32, thread: Int) -> Bool {
        switch n {
        case 0..<32: cpu.setGPR(n, value)
        case GDBRegister.status: cpu.setStatus(value)
        case GDBRegister.lo: cpu.lo = value
        case GDBRegister.hi: cpu.hi = value
        case GDBRegister.badVAddr: cpu.cp0.badVAddr = value
        case GDBRegister.cause: cpu.writeCP0(13, 0, value)
        case GDBRegister.pc: cpu.jump(to: value)
        default: return false
        }
        timeTravel?.discardFuture()
        return true
    }

    public func readByte(_ address: UInt32, thread: Int) -> UInt8? {
        guard let pa = cpu.physicalAddress(of: address) else { return nil }
        if machine.bus.ramPage(frame: pa >> 12) == nil && !MachineTarget.isROM(pa) { return nil }
        return cpu.readPhysical(pa, size: 1).map { UInt8(truncatingIfNeeded: $0) }
    }

    public func writeByte(_ address: UInt32, _ value: UInt8, thread: Int) -> Bool {
        guard let pa = cpu.physicalAddress(of: address, forWrite: true), machine.bus.ramPage(frame: pa >> 12) != nil else { return false }
        timeTravel?.discardFuture()
        return cpu.writePhysical(pa, size: 1, value: UInt32(value))
    }

    /// The boot ROM and flash window (reads have no side effects there).
    static func isROM(_ pa: UInt32) -> Bool {
        (Malta.Address.flash..<Malta.Address.fpga).contains(pa) || (Malta.Address.bootROM..<0x2000_0000).contains(pa)
    }

    public func insert(_ point: GDBStopPoint) -> Bool { points.insert(point) }
    public func remove(_ point: GDBStopPoint) -> Bool { points.remove(point) }

    public func step(thread: Int) -> GDBStop {
        if machine.poweredOff { return .exited(code: 0) }
        let stop = StopPointWatcher(breakpoints: [], watchpoints: points.watchpoints, foresees: false)
        // Observed even without breakpoints: that consumes the CPU's "skip the observer once
        // here" mark left by a breakpoint stop, which would otherwise hide a later hit.
        let outcome = cpu.debugged(by: stop, observeAll: true) { machine.run(maxInstructions: 1) }
        if outcome == .poweredOff { return .exited(code: 0) }
        if let hit = stop.watchHit { return .watch(hit.kind, address: hit.address, thread: 1) }
        return .trap(thread: 1)
    }

    /// One uninterrupted `Malta.run`, the socket polled at the end of each batch: the batches,
    /// and so what the devices show the guest, are those of a run without gdb.
    public func resume(thread: Int?, interrupted: () -> Bool) -> GDBStop {
        if machine.poweredOff { return .exited(code: 0) }
        let stop = StopPointWatcher(breakpoints: points.breakpoints, watchpoints: points.watchpoints, foresees: true)
        var pressedCtrlC = false, polls = false
        let outcome = withoutActuallyEscaping(interrupted) { interrupted in
            let previous = machine.onBatchEnd
            machine.onBatchEnd = { [unowned cpu] in
                previous?()
                // Polled once per batch until something stopped the run (the board calls this
                // once more after the batch that stopped: a second request would outlive it),
                // not after the first instruction run alone below (not the end of a batch).
                if polls && !stop.stopped && !pressedCtrlC && interrupted() {
                    pressedCtrlC = true
                    cpu.requestStop()
                }
            }
            defer { machine.onBatchEnd = previous }
            // The CPU's "skip the observer once here" mark left by the last stop is used up only
            // where the observer is asked (a later hit there would be hidden otherwise): the
            // first instruction runs observed, as in `step`, the rest only before the
            // breakpoints (the watchpoints are the slow path's, on their pages). The batches
            // are those of one run (the board ends them at multiples of its batch size).
            if cpu.observerStoppedAt != nil {
                let first = cpu.debugged(by: stop, observeAll: true) { machine.run(maxInstructions: 1) }
                if first != .instructionLimit || stop.stopped { return first }
            }
            polls = true
            return cpu.debugged(by: stop, observeAll: false) { machine.run() }
        }
        if outcome == .poweredOff { return .exited(code: 0) }
        if let hit = stop.watchHit { return .watch(hit.kind, address: hit.address, thread: 1) }
        return pressedCtrlC ? .interrupted(thread: 1) : .trap(thread: 1)
    }

    public func detach() {
        points = StopPoints()
    }
}

/// The CPU observer of a debugger's run: stops before an instruction at a breakpoint, and
/// before a load or store that will touch a watchpoint (as QEMU does: gdb treats MIPS
/// watchpoints as non-steppable, so it steps over the access itself and then compares the old
/// and new values). The watchpoints are the CPU's memory watches: only the accesses to their
/// pages take the slow path, which asks the watcher before each (`willAccessMemory`), and the
/// rest runs at full speed (translated). An access made without asking (the run resumed at a
/// stop before it, or a single step, which does not foresee) stops just after it.
final class StopPointWatcher: CPUObserver {
    let breakpoints: Set<UInt32>
    let watchpoints: [GDBStopPoint]
    /// Whether to stop before accesses to watchpoints (not while single-stepping, where gdb
    /// steps over the access on purpose).
    let foresees: Bool
    var onStop: (() -> Void)?
    /// Whether it stopped the CPU (a breakpoint or a watchpoint).
    private(set) var stopped = false
    private(set) var watchHit: (kind: GDBStopPoint.Kind, address: UInt32)?

    init(breakpoints: Set<UInt32>, watchpoints: [GDBStopPoint], foresees: Bool) {
        self.breakpoints = breakpoints
        self.watchpoints = watchpoints
        self.foresees = foresees
    }

    func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction {
        guard breakpoints.contains(pc) else { return .proceed }
        stopped = true
        onStop?()
        return .stop
    }

    func cpu(_ cpu: CPU, willAccessMemory access: MemoryAccess) -> ObserverAction {
        guard foresees, watchHit == nil else { return .proceed }
        let action = hit(access.virtual, size: access.size, isWrite: access.isWrite)
        if case .stop = action { stoppedBefore = access.pc }
        return action
    }

    /// The instruction it stopped before because its access touches a watchpoint, if it did.
    private(set) var stoppedBefore: UInt32?

    func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction {
        guard watchHit == nil else { return .proceed }
        return hit(access.virtual, size: access.size, isWrite: access.isWrite)
    }

    /// Where the CPU resumes without asking the observer (at the instruction a breakpoint
    /// stopped it before), looks at that instruction's access now, and takes the stop before it
    /// if it touches a watchpoint; returns whether it did. Not after a stop before that very
    /// access (`StopPoints.watchStop`): the debugger continues over it.
    func foreseeSkippedInstruction(_ cpu: CPU, after points: StopPoints, thread: Int) -> Bool {
        guard foresees, !watchpoints.isEmpty, let pc = cpu.observerStoppedAt, pc == cpu.pc,
              points.watchStop.map({ $0.thread != thread || $0.pc != pc }) ?? true,
              let word = cpu.readVirtual(pc, size: 4), let access = StopPointWatcher.dataAccess(decode(word), cpu),
              case .stop = hit(access.address, size: access.size, isWrite: access.isWrite) else { return false }
        stoppedBefore = pc
        return true
    }

    /// The data access `d` makes with the CPU's registers now (the instruction table's size and
    /// direction; LWL/LWR/SWL/SWR the aligned word, as the slow path asks), or nil.
    static func dataAccess(_ d: DecodedInstruction, _ cpu: CPU) -> (address: UInt32, size: Int, isWrite: Bool)? {
        guard let m = d.op.info.memory else { return nil }
        let address = cpu.gpr(Int(d.rs)) &+ d.imm
        switch d.op {
        case .lwl, .lwr, .swl, .swr: return (address & ~3, 4, m.isStore)
        default: return (address, m.size, m.isStore)
        }
    }

    func hit(_ address: UInt32, size: Int, isWrite: Bool) -> ObserverAction {
        guard let w = watchpoints.first(where: { $0.matches(access: address, size: size, isWrite: isWrite) }) else { return .proceed }
        // gdb finds the watchpoint by the address: report one inside the watched range.
        watchHit = (w.kind, max(address, w.address))
        stopped = true
        onStop?()
        return .stop
    }
}

/// The breakpoints and watchpoints the debugger inserted.
struct StopPoints {
    var breakpoints = Set<UInt32>()
    var watchpoints: [GDBStopPoint] = []
    /// Where the last run stopped before a watched access (thread, pc), until the next run.
    var watchStop: (thread: Int, pc: UInt32)?

    mutating func insert(_ point: GDBStopPoint) -> Bool {
        if point.kind == .software { breakpoints.insert(point.address) } else { watchpoints.append(point) }
        return true
    }

    mutating func remove(_ point: GDBStopPoint) -> Bool {
        if point.kind == .software { return breakpoints.remove(point.address) != nil }
        guard let i = watchpoints.firstIndex(of: point) else { return false }
        watchpoints.remove(at: i)
        return true
    }

    /// What a reverse-continue (`bc`) looks for. A watched access by the instruction just
    /// executed counts: gdb stops before an access and steps over it itself, so from a forward
    /// watchpoint stop the first change back is that access (reported at the position; gdb
    /// then steps back over it and shows the value before it).
    var reverseConditions: TimeTravel.Conditions {
        TimeTravel.Conditions(
            breakpoints: breakpoints,
            watchpoints: watchpoints.map {
                TimeTravel.Watchpoint($0.address...($0.address &+ max($0.length, 1) &- 1),
                                      reads: $0.kind != .write, writes: $0.kind != .read)
            },
            includesLastAccess: true)
    }
}

extension CPU {
    /// Runs `body` with `watcher` as the observer (before every instruction when `observeAll`,
    /// else before its breakpoints) and its watchpoints as memory watches, then puts back what
    /// was there (a Lua machine's hooks).
    func debugged<R>(by watcher: StopPointWatcher, observeAll: Bool, _ body: () -> R) -> R {
        let saved = (observer, observesInstructions, memoryWatches, observedPCs)
        observer = watcher
        observesInstructions = observeAll
        observedPCs = watcher.breakpoints
        memoryWatches = watcher.watchpoints.map { $0.address...($0.address &+ max($0.length, 1) &- 1) }
        defer {
            observer = saved.0
            observesInstructions = saved.1
            memoryWatches = saved.2
            observedPCs = saved.3
        }
        return body()
    }
}
