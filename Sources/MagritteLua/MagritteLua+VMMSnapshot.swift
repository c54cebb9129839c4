import CMagritteLua
import MagritteCore
import MagritteHypervisor
import MagritteMachine

extension MagritteLua {
    // MARK: VMM snapshots and time travel (Docs/lua-api.md, Docs/time-travel.md)

    func defineVMMSnapshot() {
        let c = vmmClass
        c.method("snapshot") { [unowned self] v, call in
            let path = try call.optionalString(2)
            try notRunning(v, "snapshot")
            let snap = v.vmm.snapshot()
            if let path { try snapshotCall("snapshot") { () throws(SnapshotError) in try snap.write(toFile: path) } }
            snapshotClass.push(LuaSnapshot(snap), in: lua)
            return 1
        }
        c.method("restore") { [unowned self] v, call in
            try notRunning(v, "restore")
            let snap: VMMSnapshot
            if let held = snapshotClass.object(call.L, 2) {
                guard case .vmm(let s) = held.value else { throw LuaError("restore: that is a machine's snapshot (restore it with m:restore)") }
                snap = s
            } else if lua_type(call.L, 2) == LUA_TSTRING {
                let path = try call.string(2)
                snap = try snapshotCall("restore") { () throws(SnapshotError) in try VMMSnapshot(contentsOfFile: path) }
            } else {
                throw call.argError(2, "snapshot or file name")
            }
            try snapshotCall("restore") { () throws(SnapshotError) in try v.vmm.restore(snap) }
            v.restored()
            return 0
        }
        c.field("executed", get: { v, lua in lua.push(v.vmm.cpu.executedInstructions) })
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
