import CMagritteLua
import MagritteCore
import MagritteHypervisor
import MagritteMachine

/// A guest of a Lua VMM (`vmm:add{…}`); it keeps its VMM alive.
final class LuaGuest {
    let owner: LuaVMM
    let guest: Guest
    init(_ owner: LuaVMM, _ guest: Guest) {
        self.owner = owner
        self.guest = guest
    }
    var vmm: VMM { owner.vmm }
}

extension MemoryView {
    /// `g.mem` (guest-virtual, through the guest's own translation) or `g.phys` (guest-physical).
    convenience init(_ g: LuaGuest, physical: Bool) {
        let name = g.guest.name
        if physical {
            self.init(space: "guest physical", owner: name, unreadable: "not the guest's RAM", unwritable: "not the guest's RAM",
                      read: { a, n in g.vmm.readGuestMemory(g.guest, physical: a, size: n) },
                      write: { a, n, v in g.vmm.writeGuestMemory(g.guest, physical: a, size: n, value: v) })
        } else {
            self.init(space: "guest virtual", owner: name, unreadable: "not mapped by the guest, or not its RAM",
                      unwritable: "not mapped writable by the guest, or not its RAM",
                      read: { a, n in g.vmm.readGuestMemory(g.guest, virtual: a, size: n) },
                      write: { a, n, v in g.vmm.writeGuestMemory(g.guest, virtual: a, size: n, value: v) })
        }
    }
}

extension MagritteLua {
    // MARK: guest

    func defineGuest() {
        let c = guestClass
        c.description { g in
            let s = g.guest
            return "magritte.guest(\(s.name), \(s.ramSize >> 20) MiB, pc 0x\(Hex.word(g.vmm.registers(of: s).pc)), \(s.mode), \(state(s)))"
        }
        c.field("name", get: { g, lua in lua.push(g.guest.name) })
        c.field("index", get: { g, lua in lua.push(g.guest.index + 1) })
        c.field("image", get: { g, lua in if let i = g.guest.image { lua.push(i.name) } else { lua.pushNil() } })
        c.field("append", get: { g, lua in lua.push(g.guest.configuration.commandLine) })
        c.field("ram", get: { g, lua in lua.push(g.guest.ramSize) })
        c.field("memory_base", get: { g, lua in lua.push(g.guest.memoryBase) })
        c.field("state", get: { g, lua in lua.push(state(g.guest)) })
        c.field("powered_off", get: { g, lua in lua.push(g.guest.state == .poweredOff) })
        c.field("paused", get: { g, lua in lua.push(g.guest.paused) }, set: { g, call, i in
            if call.boolean(i) { g.vmm.pause(g.guest) } else { g.vmm.resume(g.guest) }
        })
        c.field("mode", get: { g, lua in lua.push(g.guest.mode.description) })
        c.field("pc", get: { g, lua in lua.push(g.vmm.registers(of: g.guest).pc) })
        c.field("instructions", get: { g, lua in lua.push(g.guest.statistics.instructions) })
        c.field("console", get: { g, lua in lua.push(g.guest.consoleText) })
        c.field("vmm", get: { [unowned self] g, _ in vmmClass.push(g.owner, in: lua) })
        c.field("cp0", get: { [unowned self] g, _ in guestCP0Class.push(g, in: lua) })
        c.field("stats", get: { g, lua in
            let s = g.guest.statistics
            g.owner.pushTable(g.owner.statistics(g.guest))
            lua.push(s.exitsPerThousand)
            lua_setfield(lua.L, -2, "exits_per_thousand")
            for (key, counts) in [("traps", s.traps), ("reflected", s.reflected)] {
                lua_createtable(lua.L, 0, 8)
                for code in ExceptionCode.allCases where counts[Int(code.rawValue)] > 0 {
                    lua.push(counts[Int(code.rawValue)])
                    lua_setfield(lua.L, -2, code.description)
                }
                lua_setfield(lua.L, -2, key)
            }
            lua_createtable(lua.L, 0, Int32(s.emulated.count))
            for (name, n) in s.emulated {
                lua.push(n)
                lua_setfield(lua.L, -2, name)
            }
            lua_setfield(lua.L, -2, "emulated")
            lua_createtable(lua.L, 0, Int32(ExitKind.allCases.count))
            for kind in ExitKind.allCases where s.exitsByKind[kind.rawValue] > 0 {
                lua.push(s.exitsByKind[kind.rawValue])
                lua_setfield(lua.L, -2, kind.description)
            }
            lua_setfield(lua.L, -2, "exits_by_kind")
        })
        c.method("exit_sites") { g, call in
            let limit = call.isNoneOrNil(2) ? Int64.max : try call.integer(2)
            guard limit >= 0 else { throw LuaError("exit_sites: the number of sites must be at least 0 (got \(limit))") }
            let sites = g.guest.exitSites(limit: Int(clamping: limit))
            let lua = call.state
            lua_createtable(lua.L, Int32(sites.count), 0)
            for (i, site) in sites.enumerated() {
                g.owner.pushTable(["pc": .integer(Int64(site.pc)), "kind": .string(site.kind.description), "count": .integer(Int64(site.count)),
                                   "ns": .integer(Int64(site.nanoseconds)), "clustered": .integer(Int64(site.clustered)),
                                   "instruction": .string(site.instruction)])
                lua_rawseti(lua.L, -2, lua_Integer(i + 1))
            }
            return 1
        }

        c.method("pause") { g, _ in g.vmm.pause(g.guest); return 0 }
        c.method("resume") { g, _ in g.vmm.resume(g.guest); return 0 }
        c.method("step") { [unowned self] g, call in
            let n = try steps(call.optionalInteger(2) ?? 1)
            let result = try g.owner.run("step", guest: g.guest) {
                g.owner.timeTravel?.step(g.guest, instructions: n) ?? g.vmm.step(g.guest, instructions: n)
            }
            return pushResult(g.owner, result)
        }
        c.method("lines") { [unowned self] g, _ in
            let lines = g.guest.consoleText.split(separator: "\n", omittingEmptySubsequences: false)
            let complete = g.guest.consoleText.hasSuffix("\n") ? lines.dropLast() : lines[...]
            lua_createtable(lua.L, Int32(complete.count), 0)
            for (i, line) in complete.enumerated() {
                lua.push(String(line.hasSuffix("\r") ? line.dropLast() : line))
                lua_rawseti(lua.L, -2, lua_Integer(i + 1))
            }
            return 1
        }
        c.method("inject") { [unowned self] g, call in
            let name = try call.string(2)
            try notRunning(g.owner, "inject")
            let code = try exceptionCode(name == "tlb_refill" ? "TLBL" : name)
            let address = try call.optionalWord(3, "address")
            let refill: Bool? = name == "tlb_refill" ? true : (call.isNoneOrNil(4) ? nil : call.boolean(4))
            try g.owner.outsideRun {
                do { try g.vmm.inject(code, into: g.guest, badVAddr: address, refill: refill) } catch let e as VMMError {
                    throw LuaError("inject: \(e.message)\(address == nil && e.message.hasSuffix("address") ? " as the second argument" : "")")
                }
            }
            return 0
        }
        c.method("interrupt") { g, call in
            let line = try call.integer(2)
            guard (0...5).contains(line) else { throw LuaError("interrupt: hardware line must be 0..5 (Cause.IP2..IP7)") }
            let on = call.isNoneOrNil(3) ? true : call.boolean(3)
            try? g.vmm.setInterruptLine(g.guest, Int(line), asserted: on)
            return 0
        }
        c.method("timer") { g, _ in g.vmm.fireTimer(g.guest); return 0 }
        c.method("regs") { [unowned self] g, _ in
            let r = g.vmm.registers(of: g.guest)
            lua_createtable(lua.L, 0, 36)
            for (i, name) in Names.gprs.enumerated() {
                lua.push(r.gprs[i])
                lua_setfield(lua.L, -2, name)
            }
            for (name, value) in [("pc", r.pc), ("hi", r.hi), ("lo", r.lo)] {
                lua.push(value)
                lua_setfield(lua.L, -2, name)
            }
            return 1
        }
        c.method("tlb") { [unowned self] g, call in
            try pushTLB(g.owner, count: g.guest.tlb.count, call) { g.guest.tlb[$0] }
        }
        // Memory, registers and code as a machine's (`g.mem`, `g.phys`: Docs/lua-api.md "Memory").
        c.field("mem", get: { [unowned self] g, _ in memoryClass.push(MemoryView(g, physical: false), in: lua) })
        c.field("phys", get: { [unowned self] g, _ in memoryClass.push(MemoryView(g, physical: true), in: lua) })
        c.method("read32") { g, call in
            call.state.push(try read(MemoryView(g, physical: false), try call.word(2, "address"), 4))
            return 1
        }
        c.method("disasm") { [unowned self] g, call in
            let pc = g.vmm.registers(of: g.guest).pc
            let (start, count) = try disasmArguments(call, pc: pc)
            lua.push(disassemble(image: g.guest.image, pc: pc, from: start, count: count) { g.vmm.readGuestMemory(g.guest, virtual: $0, size: 4) })
            return 1
        }
        c.method("dump") { [unowned self] g, _ in
            let r = g.vmm.registers(of: g.guest)
            let cp0 = { g.vmm.virtualCP0(g.guest, $0, 0) }
            lua.push(registerDump(gprs: r.gprs, pc: r.pc, hi: r.hi, lo: r.lo, mode: g.guest.mode, status: cp0(12), cause: cp0(13),
                                  epc: cp0(14), badVAddr: cp0(8)))
            return 1
        }
        // Breakpoints, watches and events of this guest alone, as a machine's (the same
        // arguments; handles in vmm:hooks()).
        func guestHook(_ g: LuaGuest, _ h: Hook) -> Int32 {
            h.guestIndex = g.guest.index
            h.description += " in \(g.guest.name)"
            return pushHook(g.owner, h)
        }
        c.method("break_at") { [unowned self] g, call in guestHook(g, try breakAtHook(call)) }
        c.method("break_on_mode") { [unowned self] g, call in guestHook(g, try breakOnModeHook(call)) }
        c.method("watch") { [unowned self] g, call in guestHook(g, try watchHook(call)) }
        c.method("on") { [unowned self] g, call in guestHook(g, try eventHook(call, events: ["mode_change", "instruction", "memory"])) }
        c.method("symbol") { g, call in
            let name = try call.string(2)
            if let s = g.guest.image?.symbols.first(where: { $0.name == name }) { call.state.push(s.address) } else { call.state.pushNil() }
            return 1
        }
        c.method("where") { [unowned self] g, call in
            let a = try call.word(2, "address")
            if let s = symbolize(g.guest.image, a) { lua.push(s) } else { lua.pushNil() }
            return 1
        }

        // g.cp0.status, g.cp0[12], g.cp0:read(12, 1): the virtual CP0, read-only
        let p = guestCP0Class
        p.description { g in "magritte.guest_cp0(\(g.guest.name))" }
        p.dynamic(get: { g, call, k in
            let (r, s) = try cp0Index(call, k)
            call.state.push(g.vmm.virtualCP0(g.guest, r, s))
            return true
        }, set: { _, _, _, _ in
            throw LuaError("a guest's CP0 is read-only (the guest writes it with mtc0; use g:inject, g:interrupt or g:timer)")
        })
        p.method("read") { g, call in
            let r = try call.integer(2), s = try call.optionalInteger(3) ?? 0
            guard (0..<32).contains(r), (0..<8).contains(s) else { throw LuaError("cp0:read(register 0..31, select 0..7)") }
            call.state.push(g.vmm.virtualCP0(g.guest, Int(r), Int(s)))
            return 1
        }
    }
}

private func state(_ g: Guest) -> String {
    switch g.state {
    case .runnable: "runnable"
    case .waiting: "waiting"
    case .poweredOff: "powered_off"
    }
}
