#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CMagritteLua
import MagritteHypervisor

/// `vmm:flow`, `vmm:table` and `vmm:svg`: the lecture's tables and sequence diagrams from the
/// VMM's trace (Docs/lua-api.md, "The lecture's tables").
extension MagritteLua {
    func lectureFlow(_ call: LuaCall, _ i: Int32, _ what: String) throws -> LectureFlow {
        let name = try call.string(i)
        guard let flow = LectureFlow(rawValue: name) else {
            throw LuaError("\(what): unknown flow '\(name)' (\(LectureFlow.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or ")))")
        }
        return flow
    }

    /// The options table {guest =, bare =} at `i` (absent: any guest, with the bare flow).
    func lectureOptions(_ v: LuaVMM, _ call: LuaCall, _ i: Int32, _ what: String) throws -> (guest: Guest?, bare: Bool) {
        guard !call.isNoneOrNil(i) else { return (nil, true) }
        try call.options(i, what, ["guest", "bare"])
        var bare = true
        switch call.field(i, "bare") {
        case .none: break
        case .boolean(let b): bare = b
        default: throw LuaError("\(what): bare must be true or false")
        }
        var guest: Guest?
        call.pushRawField(i, "guest")
        defer { mg_pop(call.L, 1) }
        if mg_isnil(call.L, -1) == 0 { guest = try guestArgument(v, call, lua_gettop(call.L)) }
        return (guest, bare)
    }

    /// The VMM flow and, when asked, the bare one beside it.
    func flows(_ v: LuaVMM, _ flow: LectureFlow, guest: Guest?, bare: Bool) -> [Flow] {
        guard let f = LectureTables.flow(flow, trace: v.vmm.trace.events, guest: guest?.name) else { return [] }
        guard bare, let g = v.vmm.guests.first(where: { $0.name == f.guest }),
              let b = LectureTables.bareFlow(flow, like: g, pc: f.pc) else { return [f] }
        return [f, b]
    }

    func pushFlow(_ f: Flow) {
        let L = lua.L
        lua_createtable(L, 0, 6)
        lua.push(f.title); lua_setfield(L, -2, "title")
        lua.push(f.guest); lua_setfield(L, -2, "guest")
        lua_pushinteger(L, lua_Integer(f.pc)); lua_setfield(L, -2, "pc")
        if let note = f.note { lua.push(note); lua_setfield(L, -2, "note") }
        lua_createtable(L, Int32(f.lanes.count), 0)
        for (i, lane) in f.lanes.enumerated() {
            lua.push(lane.rawValue)
            lua_rawseti(L, -2, lua_Integer(i + 1))
        }
        lua_setfield(L, -2, "lanes")
        lua_createtable(L, Int32(f.steps.count), 0)
        for (i, step) in f.steps.enumerated() {
            lua_createtable(L, 0, 2)
            lua.push(step.lane.rawValue); lua_setfield(L, -2, "lane")
            lua.push(step.text); lua_setfield(L, -2, "text")
            lua_rawseti(L, -2, lua_Integer(i + 1))
        }
        lua_setfield(L, -2, "steps")
    }

    func defineLecture(_ c: LuaClass<LuaVMM>) {
        c.method("flow") { [unowned self] v, call in
            let flow = try lectureFlow(call, 2, "flow")
            let options = try lectureOptions(v, call, 3, "flow")
            let found = flows(v, flow, guest: options.guest, bare: options.bare)
            guard let first = found.first else { lua.pushNil(); return 1 }
            pushFlow(first)
            if found.count > 1 {
                pushFlow(found[1])
                lua_setfield(lua.L, -2, "bare")
            }
            return 1
        }
        c.method("table") { [unowned self] v, call in
            let flow = try lectureFlow(call, 2, "table")
            let options = try lectureOptions(v, call, 3, "table")
            let found = flows(v, flow, guest: options.guest, bare: options.bare)
            if found.isEmpty { lua.pushNil(); return 1 }
            lua.push(found.map { LectureTables.render($0) }.joined(separator: "\n"))
            return 1
        }
        c.method("svg") { [unowned self] v, call in
            var wanted: [LectureFlow] = []
            if mg_istable(call.L, 2) != 0 {
                let n = Int32(luaL_len(call.L, 2))
                guard n > 0 else { throw LuaError("svg: give the flows to draw, e.g. {\"syscall\", \"tlb-miss\"}") }
                for k in 1...n {
                    lua_rawgeti(call.L, 2, lua_Integer(k))
                    defer { mg_pop(call.L, 1) }
                    wanted.append(try lectureFlow(call, lua_gettop(call.L), "svg"))
                }
            } else {
                wanted = [try lectureFlow(call, 2, "svg")]
            }
            let options = try lectureOptions(v, call, 4, "svg")
            let rows = wanted.map { flows(v, $0, guest: options.guest, bare: options.bare) }.filter { !$0.isEmpty }
            return try pushOrWrite(SequenceDiagram.svg(rows: rows), to: try call.optionalString(3), "svg", count: rows.count)
        }
    }
}
