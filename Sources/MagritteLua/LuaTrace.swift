import CMagritteLua
import MagritteCore

/// A value in an event table.
enum TraceValue: Equatable {
    case integer(Int64)
    case string(String)
    case boolean(Bool)

    func push(_ lua: LuaState) {
        switch self {
        case .integer(let i): lua_pushinteger(lua.L, lua_Integer(i))
        case .string(let s): lua.push(s)
        case .boolean(let b): lua.push(b)
        }
    }
}

/// One event kept in the machine's bounded trace, as it happened (its text is made on demand).
struct TraceRecord {
    enum Event {
        case exception(Trap)
        case mode(ModeChange)
        case tlbWrite(index: Int, entry: TLBEntry, pc: UInt32)
        case poweroff(pc: UInt32)
    }

    var event: Event
    var instructions: UInt64

    var kind: String {
        switch event {
        case .exception: "exception"
        case .mode: "mode_change"
        case .tlbWrite: "tlb_write"
        case .poweroff: "poweroff"
        }
    }

    var pc: UInt32 {
        switch event {
        case .exception(let t): t.pc
        case .mode(let c): c.pc
        case .tlbWrite(_, _, let pc), .poweroff(let pc): pc
        }
    }

    var text: String {
        switch event {
        case .exception(let trap):
            "\(trap.code)\(trap.isRefill ? " (refill)" : "") at 0x\(Hex.word(trap.pc))"
                + (trap.inDelaySlot ? " in a delay slot" : "") + (trap.badVAddr.map { ", BadVAddr 0x\(Hex.word($0))" } ?? "")
        case .mode(let change):
            "\(change.from) -> \(change.to) (\(Names.cause(change.cause)))"
        case .tlbWrite(let index, let entry, _):
            "TLB[\(index)] = EntryHi 0x\(Hex.word(entry.entryHi)) Lo0 0x\(Hex.word(entry.entryLo0)) Lo1 0x\(Hex.word(entry.entryLo1))"
        case .poweroff:
            "power off"
        }
    }
}
