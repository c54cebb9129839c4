import MagritteCore
import MagritteHypervisor
import MagritteMachine

/// The guests of a VMM go back through its `VMMTimeTravel` history (Docs/time-travel.md):
/// gdb's `reverse-stepi` (`bs`) takes the thread's guest back to its previous instruction
/// (other guests' instructions in between are undone too), `reverse-continue` (`bc`) goes back
/// to the last hit of the stub's breakpoints and watchpoints by any guest (by the thread's guest
/// only when gdb resumes one thread alone), whose thread gdb is then shown; the oldest checkpoint is gdb's start of history (`replaylog:begin`).
extension VMMTarget: GDBReversibleTarget {
    public var canGoBack: Bool { timeTravel != nil }

    public func stepBack(thread: Int) -> GDBStop {
        points.watchStop = nil
        guard let history = timeTravel, let g = guest(thread) else { return .trap(thread: currentThread) }
        return stop(history.stepBack(1, guest: g), thread: thread)
    }

    public func continueBack(thread: Int?, interrupted: () -> Bool) -> GDBStop {
        points.watchStop = nil
        guard let history = timeTravel else { return .trap(thread: currentThread) }
        // Resumed alone (gdb's `set scheduler-locking on`: `Hc N` before `bc`), only that
        // guest's hits count, as going forward only it runs.
        let alone = thread.flatMap { guest($0) }
        return stop(history.continueBack(until: points.reverseConditions, guest: alone), thread: thread ?? currentThread)
    }

    /// gdb's view of where time travel stopped: the thread of the guest it stopped in.
    func stop(_ stop: VMMTimeTravel.Stop, thread: Int) -> GDBStop {
        switch stop {
        case .startOfHistory:
            return .historyBegin(thread: thread)
        case .watchpoint(let address, let isWrite, let g):
            let point = points.watchpoints.first { $0.matches(access: address, size: 1, isWrite: isWrite) }
            return .watch(point?.kind ?? (isWrite ? .write : .read), address: point?.address ?? address, thread: g + 1)
        case .breakpoint(_, let g), .instruction(_, let g):
            return .trap(thread: g + 1)
        case .halted(.allPoweredOff):
            return .exited(code: 0)
        case .reached, .endOfHistory, .halted:
            return .trap(thread: thread)
        }
    }
}
