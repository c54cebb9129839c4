import MagritteCore
import MagritteMachine

/// A bare machine goes back through its `TimeTravel` history (Docs/time-travel.md): gdb's
/// `reverse-stepi` (`bs`) is `stepBack(1)`, `reverse-continue` (`bc`) is `continueBack(until:)`
/// with the stub's breakpoints and watchpoints; the oldest checkpoint is gdb's start of history
/// (`replaylog:begin`).
extension MachineTarget: GDBReversibleTarget {
    public var canGoBack: Bool { timeTravel != nil }

    public func stepBack(thread: Int) -> GDBStop {
        guard let history = timeTravel else { return .trap(thread: 1) }
        return stop(history.stepBack(1))
    }

    public func continueBack(thread: Int?, interrupted: () -> Bool) -> GDBStop {
        guard let history = timeTravel else { return .trap(thread: 1) }
        return stop(history.continueBack(until: points.reverseConditions))
    }

    /// gdb's view of where time travel stopped.
    func stop(_ stop: TimeTravel.Stop) -> GDBStop {
        switch stop {
        case .startOfHistory:
            return .historyBegin(thread: 1)
        case .watchpoint(let address, let isWrite):
            let point = points.watchpoints.first {
                $0.matches(access: address, size: 1, isWrite: isWrite)
            }
            return .watch(point?.kind ?? (isWrite ? .write : .read), address: point?.address ?? address, thread: 1)
        case .halted(.poweredOff):
            return .exited(code: 0)
        case .reached, .breakpoint, .exception, .halted:
            return .trap(thread: 1)
        }
    }
}
