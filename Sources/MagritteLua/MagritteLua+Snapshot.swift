import CMagritteLua
import MagritteCore
import MagritteHypervisor
import MagritteMachine

/// A snapshot as Lua holds it: of a machine (`m:snapshot()`, a `MaltaSnapshot`) or of a VMM
/// (`vmm:snapshot()`, a `VMMSnapshot`).
final class LuaSnapshot {
    let value: any MachineSnapshot
    init(_ snapshot: any MachineSnapshot) { value = snapshot }
}

extension MagritteLua {
    // MARK: snapshots and time travel (Docs/lua-api.md, Docs/time-travel.md)

    func defineSnapshot() {
        defineVMMSnapshot()
        let s = snapshotClass
        s.description { s in
            "magritte.snapshot(\(s.value is VMMSnapshot ? "VMM, " : "")\(s.value.instructionCount) instructions, \(s.value.storedPages) pages)"
        }
        s.field("instructions", get: { s, lua in lua.push(s.value.instructionCount) })
        s.field("executed", get: { s, lua in lua.push(s.value.executed) })
        s.field("cycles", get: { s, lua in
            if let m = s.value as? MaltaSnapshot { lua.push(m.cycles) } else { lua.pushNil() }
        })
        s.field("pages", get: { s, lua in lua.push(s.value.storedPages) })
        s.field("bytes", get: { s, lua in lua.push(s.value.byteCount) })
        s.method("save") { s, call in
            let path = try call.string(2)
            try snapshotCall("save") { () throws(SnapshotError) in try s.value.write(toFile: path) }
            return 0
        }

        let c = machineClass
        c.method("snapshot") { [unowned self] m, call in
            var snap = m.board.snapshot()
            snap.console = m.console
            return try pushSnapshot(snap, call)
        }
        c.method("restore") { [unowned self] m, call in
            try notRunning(m, "restore")
            let snap = try restoreArgument(call, into: m.board, otherKind: "that is a VMM's snapshot (restore it with vmm:restore)")
            m.restored(console: snap.console)
            if let t = m.timeTravel {
                m.timeTravel = nil
                m.timeTravel = makeTimeTravel(m, interval: t.interval, memory: t.memoryBudget)
            }
            return 0
        }
        c.method("time_travel") { [unowned self] m, call in
            try notRunning(m, "time_travel")
            let (interval, memory) = try timeTravelOptions(call)
            m.timeTravel = nil
            m.timeTravel = makeTimeTravel(m, interval: interval, memory: memory)
            return 0
        }
        c.field("executed", get: { m, lua in lua.push(m.cpu.executedInstructions) })
        c.field("history", get: { m, lua in
            guard let t = m.timeTravel else { lua.pushNil(); return }
            m.pushTable(["start": .integer(Int64(t.startOfHistory)), "checkpoints": .integer(Int64(t.checkpoints.count)),
                         "bytes": .integer(Int64(t.memoryUsed)), "interval": .integer(Int64(t.interval))])
        })
        c.method("step_back") { [unowned self] m, call in
            let n = try steps(call.optionalInteger(2) ?? 1)
            return try travel(m, "step_back") { $0.stepBack(n) }
        }
        c.method("go_to") { [unowned self] m, call in
            let n = try steps(call.integer(2))
            return try travel(m, "go_to") { $0.goTo(instruction: n) }
        }
        c.method("run_back") { [unowned self] m, _ in
            let conditions = m.reverseConditions
            return try travel(m, "run_back") { $0.continueBack(until: conditions) }
        }
    }

    /// Pushes `snap` as a Lua snapshot, written to the file named by argument 2 if given.
    func pushSnapshot(_ snap: any MachineSnapshot, _ call: LuaCall) throws -> Int32 {
        if let path = try call.optionalString(2) {
            try snapshotCall("snapshot") { () throws(SnapshotError) in try snap.write(toFile: path) }
        }
        snapshotClass.push(LuaSnapshot(snap), in: lua)
        return 1
    }

    /// Restores argument 2 of `call` (a snapshot or a file name) into `machine` and returns
    /// it; a snapshot of the other kind of machine is refused with `otherKind`.
    func restoreArgument<M: Snapshotting>(_ call: LuaCall, into machine: M, otherKind: String) throws -> M.Snapshot {
        let snap: M.Snapshot
        if let held = snapshotClass.object(call.L, 2) {
            guard let s = held.value as? M.Snapshot else { throw LuaError("restore: \(otherKind)") }
            snap = s
        } else if lua_type(call.L, 2) == LUA_TSTRING {
            let path = try call.string(2)
            snap = try snapshotCall("restore") { () throws(SnapshotError) in try M.Snapshot(contentsOfFile: path) }
        } else {
            throw call.argError(2, "snapshot or file name")
        }
        try snapshotCall("restore") { () throws(SnapshotError) in try machine.restore(snap) }
        return snap
    }

    func makeTimeTravel(_ m: LuaMachine, interval: UInt64, memory: Int) -> TimeTravel {
        let t = TimeTravel(board: m.board, interval: interval, memoryBudget: memory)
        t.console = { [unowned(unsafe) m] in m.console }
        t.onRestore = { [unowned(unsafe) m] s in m.restored(console: s.console) }
        return t
    }

    /// Runs a time-travel operation and returns its reason and details to Lua.
    func travel(_ m: LuaMachine, _ what: String, _ body: (TimeTravel) -> TimeTravel.Stop) throws -> Int32 {
        try notRunning(m, what)
        try checkRunnable(m, what)
        guard let t = m.timeTravel else {
            throw LuaError("\(what): no history is recorded: call m:time_travel() before running")
        }
        let stop = body(t)
        m.observerStop = nil
        var info: [String: TraceValue] = ["executed": .integer(Int64(m.cpu.executedInstructions))]
        let reason: String
        switch stop {
        case .reached: reason = "reached"
        case .startOfHistory: reason = "start"
        case .breakpoint(let pc):
            reason = "breakpoint"
            info["pc"] = .integer(Int64(pc))
            m.observerStop = pc
        case .watchpoint(let address, let isWrite):
            reason = "watch"
            info["address"] = .integer(Int64(address))
            info["write"] = .boolean(isWrite)
        case .exception(let code):
            reason = "exception"
            info["cause"] = .string(code.description)
        case .halted(let outcome): reason = outcome == .poweredOff ? "poweroff" : "deadlock"
        }
        lua.push(reason)
        m.pushTable(info)
        return 2
    }
}

/// Runs a snapshot operation, turning its error into a Lua error that names the method.
func snapshotCall<T>(_ what: String, _ body: () throws(SnapshotError) -> T) throws -> T {
    do { return try body() } catch { throw LuaError("\(what): \(error.message)") }
}

extension LuaMachine {
    /// After a restore: the console as it was then; nothing pending of the run before.
    func restored(console text: [UInt8]) {
        console = text
        sinceRun.removeAll()
        undelivered.removeAll()
        observerStop = nil
    }

    /// The enabled breakpoints and watchpoints as time travel's conditions (their Lua
    /// conditions are not evaluated when going back).
    var reverseConditions: TimeTravel.Conditions {
        var c = TimeTravel.Conditions()
        for h in hooks.values where h.enabled && h.isBreakpoint {
            switch h.kind {
            case .pc(let pc): c.breakpoints.insert(pc)
            case .memory(let range, let reads, let writes): c.watchpoints.append(.init(range, reads: reads, writes: writes))
            case .exception(let code): c.exceptions.formUnion(code.map { [$0] } ?? Set(ExceptionCode.allCases))
            default: break
            }
        }
        return c
    }
}
