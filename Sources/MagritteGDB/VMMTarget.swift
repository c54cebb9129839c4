import MagritteCore
import MagritteHypervisor

/// The guests of a VMM as the threads of one GDB target: thread N is guest N-1. Registers are
/// the selected guest's own (its virtual CP0 for status, cause and badvaddr), memory goes through
/// its own translation, and a breakpoint or watchpoint stops whichever guest reaches it at its
/// own virtual address.
public final class VMMTarget: GDBTarget {
    public let vmm: VMM
    var points = StopPoints()
    /// Guest instructions run between two looks at the socket.
    public var slice: UInt64 = 100_000

    public init(vmm: VMM) { self.vmm = vmm }

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
        return vmm.writeGuestMemory(g, virtual: address, size: 1, value: UInt32(value))
    }

    public func insert(_ point: GDBStopPoint) -> Bool { points.insert(point) }
    public func remove(_ point: GDBStopPoint) -> Bool { points.remove(point) }

    var currentThread: Int { (vmm.current?.index ?? 0) + 1 }

    public func step(thread: Int) -> GDBStop {
        guard let g = guest(thread) else { return .trap(thread: currentThread) }
        if g.state == .poweredOff { return .trap(thread: thread) }
        let watcher = StopPointWatcher(breakpoints: [], watchpoints: points.watchpoints, foresees: false)
        _ = vmm.cpu.debugged(by: watcher, observeAll: true) { vmm.step(g, instructions: 1) }
        if let hit = watcher.watchHit { return .watch(hit.kind, address: hit.address, thread: thread) }
        return .trap(thread: thread)
    }

    /// Runs every guest as the scheduler would (`thread` nil), or only guest `thread`: gdb
    /// single-steps MIPS in software, continuing one thread to a temporary breakpoint, and
    /// expects that thread to be the one that stops.
    public func resume(thread: Int?, interrupted: () -> Bool) -> GDBStop {
        let alone = thread.flatMap { guest($0) }
        let watcher = StopPointWatcher(breakpoints: points.breakpoints, watchpoints: points.watchpoints, foresees: true)
        watcher.onStop = { [unowned vmm] in vmm.stop() }
        while true {
            let outcome = vmm.cpu.debugged(by: watcher, observeAll: false) {
                alone.map { vmm.step($0, instructions: slice) } ?? vmm.run(maxInstructions: slice)
            }
            let stopped = alone.map { $0.index + 1 } ?? currentThread
            switch outcome {
            case .allPoweredOff:
                if vmm.guests.allSatisfy({ $0.state == .poweredOff }) { return .exited(code: 0) }
                return .trap(thread: stopped)
            case .stopped, .deadlock:
                if let hit = watcher.watchHit { return .watch(hit.kind, address: hit.address, thread: stopped) }
                return .trap(thread: stopped)
            case .instructionLimit:
                if interrupted() { return .interrupted(thread: stopped) }
            }
        }
    }

    public func detach() {
        points = StopPoints()
    }
}
