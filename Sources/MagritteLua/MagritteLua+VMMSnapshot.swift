import CMagritteLua
import MagritteCore
import MagritteHypervisor
import MagritteMachine

extension MagritteLua {
    // MARK: VMM snapshots and time travel (Docs/lua-api.md, Docs/time-travel.md)

    func defineVMMSnapshot() {
        let c = vmmClass
        c.method("snapshot") { [unowned self] v, call in
            _ = try call.optionalString(2)
            try notRunning(v, "snapshot")
            return try pushSnapshot(v.vmm.snapshot(), call)
        }
        c.method("restore") { [unowned self] v, call in
            try notRunning(v, "restore")
            _ = try restoreArgument(call, into: v.vmm, otherKind: "that is a machine's snapshot (restore it with m:restore)")
            v.restored()
            // The recorded history is another timeline's: it starts again here.
            if let t = v.timeTravel {
                v.timeTravel = nil
                v.timeTravel = VMMTimeTravel(vmm: v.vmm, interval: t.interval, memoryBudget: t.memoryBudget)
            }
            return 0
        }
        c.field("executed", get: { v, lua in lua.push(v.vmm.cpu.executedInstructions) })
        c.method("time_travel") { [unowned self] v, call in
            try notRunning(v, "time_travel")
            let (interval, memory) = try timeTravelOptions(call)
            v.timeTravel = nil
            v.timeTravel = VMMTimeTravel(vmm: v.vmm, interval: interval, memoryBudget: memory)
            return 0
        }
        c.field("history", get: { v, lua in
            guard let t = v.timeTravel else { lua.pushNil(); return }
            v.pushTable(["start": .integer(Int64(t.startOfHistory)), "end": .integer(Int64(t.endOfHistory)),
                         "checkpoints": .integer(Int64(t.checkpoints.count)), "bytes": .integer(Int64(t.memoryUsed)),
                         "interval": .integer(Int64(t.interval))])
        })
        c.method("step_back") { [unowned self] v, call in
            let n = try steps(call.optionalInteger(2) ?? 1)
            return try travel(v, "step_back") { $0.stepBack(n) }
        }
        c.method("go_to") { [unowned self] v, call in
            let n = try steps(call.integer(2))
            return try travel(v, "go_to") { $0.goTo(instruction: n) }
        }
        c.method("run_back") { [unowned self] v, _ in
            var each: [Int: TimeTravel.Conditions] = [:]
            for g in v.vmm.guests { each[g.index] = v.reverseConditions(guest: g.index) }
            return try travel(v, "run_back") { $0.continueBack(untilEach: each) }
        }

        let g = guestClass
        g.method("step_back") { [unowned self] g, call in
            let n = try steps(call.optionalInteger(2) ?? 1)
            return try travel(g.owner, "step_back") { $0.stepBack(Int(clamping: n), guest: g.guest) }
        }
        g.method("run_back") { [unowned self] g, _ in
            let conditions = g.owner.reverseConditions(guest: g.guest.index)
            return try travel(g.owner, "run_back") { $0.continueBack(until: conditions, guest: g.guest) }
        }
    }

    /// `{interval = n, memory = bytes}` of `time_travel`.
    func timeTravelOptions(_ call: LuaCall) throws -> (UInt64, Int) {
        var interval: UInt64 = 1_000_000
        var memory = 512 << 20
        if !call.isNoneOrNil(2) {
            try call.checkTable(2)
            switch call.field(2, "interval") {
            case .none: break
            case .integer(let n) where n > 0: interval = UInt64(n)
            default: throw LuaError("time_travel: interval must be a positive number of instructions")
            }
            switch call.field(2, "memory") {
            case .none: break
            case .integer(let n) where n > 0: memory = Int(n)
            default: throw LuaError("time_travel: memory must be a positive number of bytes")
            }
        }
        return (interval, memory)
    }

    /// Runs a trip through the VMM's history (the Lua policy may be called while it
    /// re-executes; hooks are not) and returns its reason and details to Lua.
    func travel(_ v: LuaVMM, _ what: String, _ body: @escaping (VMMTimeTravel) -> VMMTimeTravel.Stop) throws -> Int32 {
        try notRunning(v, what)
        guard let t = v.timeTravel else {
            throw LuaError("\(what): no history is recorded: call vmm:time_travel() before running")
        }
        var stop = VMMTimeTravel.Stop.reached
        _ = try v.run(what) {
            stop = body(t)
            return .instructionLimit
        }
        v.restored()
        var info: [String: TraceValue] = ["executed": .integer(Int64(v.vmm.cpu.executedInstructions))]
        if let g = v.vmm.current { info["guest"] = .string(g.name) }
        let reason: String
        func guest(_ i: Int) { info["guest"] = .string(v.vmm.guests[i].name) }
        switch stop {
        case .reached: reason = "reached"
        case .startOfHistory: reason = "start"
        case .endOfHistory: reason = "end"
        case .breakpoint(let pc, let i):
            reason = "breakpoint"
            info["pc"] = .integer(Int64(pc))
            guest(i)
            v.resumeAt[i] = (pc, v.vmm.retiredInstructions(of: v.vmm.guests[i]))
        case .instruction(let pc, let i):
            reason = "reached"
            info["pc"] = .integer(Int64(pc))
            guest(i)
        case .watchpoint(let address, let isWrite, let i):
            reason = "watch"
            info["address"] = .integer(Int64(address))
            info["write"] = .boolean(isWrite)
            guest(i)
        case .halted(let outcome): reason = outcome == .allPoweredOff ? "poweroff" : "deadlock"
        }
        lua.push(reason)
        v.pushTable(info)
        return 2
    }
}

extension LuaVMM {
    /// The enabled breakpoints and watchpoints of guest `guest` as time travel's conditions; their Lua conditions are not evaluated going back.
    func reverseConditions(guest: Int) -> TimeTravel.Conditions {
        var c = TimeTravel.Conditions()
        for h in hooks.values where h.enabled && h.isBreakpoint && h.guestIndex == guest {
            switch h.kind {
            case .pc(let pc): c.breakpoints.insert(pc)
            case .memory(let range, let reads, let writes): c.watchpoints.append(.init(range, reads: reads, writes: writes))
            default: break
            }
        }
        return c
    }
}

extension LuaVMM {
    /// After a restore (or a trip through time): nothing pending of the run before.
    func restored() {
        stopReason = nil
        stopInfo = nil
        resumeAt.removeAll()
        lastReported.removeAll()
    }
}
