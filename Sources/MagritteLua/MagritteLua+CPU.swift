import CMagritteLua
import MagritteCore
import MagritteMachine

extension MagritteLua {
    // MARK: cpu

    func defineCPU() {
        let c = cpuClass
        c.description { v in "magritte.cpu(pc 0x\(Hex.word(v.cpu.pc)), \(v.cpu.mode))" }
        c.field("pc", get: { v, lua in lua.push(v.cpu.pc) }, set: { v, call, i in
            let pc = try call.word(i, "pc")
            try notRunning(v.machine, "setting pc")
            v.cpu.jump(to: pc)
        })
        c.field("npc", get: { v, lua in lua.push(v.cpu.npc) })
        c.field("hi", get: { v, lua in lua.push(v.cpu.hi) }, set: { v, call, i in v.cpu.hi = try call.word(i) })
        c.field("lo", get: { v, lua in lua.push(v.cpu.lo) }, set: { v, call, i in v.cpu.lo = try call.word(i) })
        c.field("mode", get: { v, lua in lua.push(v.cpu.mode.description) })
        c.field("exl", get: { v, lua in lua.push(v.cpu.cp0.status & StatusBits.exl != 0) })
        c.field("erl", get: { v, lua in lua.push(v.cpu.cp0.status & StatusBits.erl != 0) })
        c.field("ie", get: { v, lua in lua.push(v.cpu.cp0.status & StatusBits.ie != 0) })
        c.field("delay_slot", get: { v, lua in lua.push(v.cpu.inDelaySlot) })
        c.field("instructions", get: { v, lua in lua.push(v.machine.retired) })
        c.field("count", get: { v, lua in lua.push(v.cpu.count) })
        c.field("tlb_entries", get: { v, lua in lua.push(v.cpu.configuration.tlbEntries) })
        c.field("gpr", get: { [unowned self] v, _ in gprClass.push(v, in: lua) })
        c.field("cp0", get: { [unowned self] v, _ in cp0Class.push(v, in: lua) })
        c.dynamic(get: { v, call, k in
            guard let name = call.state.string(at: k), let n = Names.gprNumbers[name] else { return false }
            call.state.push(v.cpu.gpr(n))
            return true
        }, set: { v, call, k, val in
            guard let name = call.state.string(at: k), let n = Names.gprNumbers[name] else { return false }
            v.cpu.setGPR(n, try call.word(val, name))
            return true
        })
        c.method("tlb") { [unowned self] v, call in
            try pushTLB(v.machine, count: v.cpu.configuration.tlbEntries, call) { v.cpu.tlbEntry($0) }
        }
        c.method("regs") { [unowned self] v, _ in
            let L = lua.L
            lua_createtable(L, 0, 36)
            for (i, name) in Names.gprs.enumerated() {
                lua.push(v.cpu.gpr(i))
                lua_setfield(L, -2, name)
            }
            for (name, value) in [("pc", v.cpu.pc), ("hi", v.cpu.hi), ("lo", v.cpu.lo)] {
                lua.push(value)
                lua_setfield(L, -2, name)
            }
            return 1
        }
        c.method("dump") { [unowned self] v, _ in
            let cpu = v.cpu
            lua.push(registerDump(gprs: (0..<32).map { cpu.gpr($0) }, pc: cpu.pc, hi: cpu.hi, lo: cpu.lo, mode: cpu.mode,
                                  status: cpu.cp0.status, cause: cpu.cause, epc: cpu.cp0.epc, badVAddr: cpu.cp0.badVAddr))
            return 1
        }

        // m.cpu.gpr[n]
        let g = gprClass
        g.description { _ in "magritte.gpr" }
        g.dynamic(get: { v, call, k in
            let n = try gprIndex(call, k)
            call.state.push(v.cpu.gpr(n))
            return true
        }, set: { v, call, k, val in
            let n = try gprIndex(call, k)
            v.cpu.setGPR(n, try call.word(val, "register value"))
            return true
        })

        // m.cpu.cp0.status, m.cpu.cp0[12], m.cpu.cp0:read(12, 1)
        let p = cp0Class
        p.description { _ in "magritte.cp0" }
        p.dynamic(get: { v, call, k in
            let (r, s) = try cp0Index(call, k)
            call.state.push(v.cpu.readCP0(r, s))
            return true
        }, set: { v, call, k, val in
            let (r, s) = try cp0Index(call, k)
            let value = try call.word(val, "CP0 value")
            try notRunning(v.machine, "writing CP0")
            try v.machine.outsideRun { v.cpu.writeCP0(r, s, value) }
            return true
        })
        p.method("read") { v, call in
            let r = try call.integer(2), s = try call.optionalInteger(3) ?? 0
            guard (0..<32).contains(r), (0..<8).contains(s) else { throw LuaError("cp0:read(register 0..31, select 0..7)") }
            call.state.push(v.cpu.readCP0(Int(r), Int(s)))
            return 1
        }
        p.method("write") { v, call in
            let r = try call.integer(2), s = try call.integer(3)
            guard (0..<32).contains(r), (0..<8).contains(s) else { throw LuaError("cp0:write(register 0..31, select 0..7, value)") }
            let value = try call.word(4, "CP0 value")
            try notRunning(v.machine, "writing CP0")
            try v.machine.outsideRun { v.cpu.writeCP0(Int(r), Int(s), value) }
            return 0
        }
    }

    func pushTLB(_ e: TLBEntry, index: Int, _ m: some HookOwner) {
        m.pushTable([
            "index": .integer(Int64(index)), "entryhi": .integer(Int64(e.entryHi)), "pagemask": .integer(Int64(e.pageMask)),
            "entrylo0": .integer(Int64(e.entryLo0)), "entrylo1": .integer(Int64(e.entryLo1)),
            "vpn2": .integer(Int64(e.vpn2)), "asid": .integer(Int64(e.asid)), "global": .boolean(e.global),
            "pfn0": .integer(Int64((e.lo0 >> 6) << 12)), "pfn1": .integer(Int64((e.lo1 >> 6) << 12)),
            "valid0": .boolean(e.lo0 & 2 != 0), "valid1": .boolean(e.lo1 & 2 != 0),
            "dirty0": .boolean(e.lo0 & 4 != 0), "dirty1": .boolean(e.lo1 & 4 != 0),
        ])
    }
}

func gprIndex(_ call: LuaCall, _ k: Int32) throws -> Int {
    if lua_type(call.L, k) == LUA_TNUMBER {
        let n = try call.integer(k)
        guard (0..<32).contains(n) else { throw LuaError("register number must be 0..31 (got \(n))") }
        return Int(n)
    }
    let name = call.state.describe(at: k)
    guard let n = Names.gprNumbers[name] else { throw LuaError("unknown register '\(name)'") }
    return n
}

func cp0Index(_ call: LuaCall, _ k: Int32) throws -> (Int, Int) {
    if lua_type(call.L, k) == LUA_TNUMBER {
        let n = try call.integer(k)
        guard (0..<32).contains(n) else { throw LuaError("CP0 register number must be 0..31 (got \(n))") }
        return (Int(n), 0)
    }
    let name = call.state.describe(at: k).lowercased()
    guard let rs = CP0Register.names[name] else {
        throw LuaError("unknown CP0 register '\(name)' (e.g. status, cause, epc, badvaddr, entryhi, count, compare, ebase)")
    }
    return rs
}

/// The registers as `cpu:dump()` and `g:dump()` print them.
func registerDump(gprs: [UInt32], pc: UInt32, hi: UInt32, lo: UInt32, mode: Mode, status: UInt32, cause: UInt32, epc: UInt32,
                  badVAddr: UInt32) -> String {
    var s = ""
    for row in 0..<8 {
        for col in 0..<4 {
            let i = row * 4 + col
            let name = Names.gprs[i] + String(repeating: " ", count: 4 - Names.gprs[i].count)
            s += "\(name) \(Hex.word(gprs[i]))  "
        }
        s += "\n"
    }
    s += "pc   \(Hex.word(pc))  hi   \(Hex.word(hi))  lo   \(Hex.word(lo))  mode \(mode)\n"
    s += "status \(Hex.word(status))  cause \(Hex.word(cause))  epc \(Hex.word(epc))  badvaddr \(Hex.word(badVAddr))"
    return s
}
