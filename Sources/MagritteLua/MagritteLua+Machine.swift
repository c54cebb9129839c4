import CMagritteLua
import MagritteCore
import MagritteMachine

extension MagritteLua {
    // MARK: machine

    func defineMachine() {
        let c = machineClass
        c.description { m in
            let name = m.board.image?.name ?? "no image"
            return "magritte.machine(\(name), \(m.board.bus.ramSize >> 20) MiB, pc 0x\(Hex.word(m.cpu.pc)), \(m.cpu.mode))"
        }
        c.field("cpu", get: { [unowned self] m, _ in cpuClass.push(CPUView(m), in: lua) })
        c.field("mem", get: { [unowned self] m, _ in memoryClass.push(MemoryView(m, physical: false), in: lua) })
        c.field("phys", get: { [unowned self] m, _ in memoryClass.push(MemoryView(m, physical: true), in: lua) })
        c.field("console", get: { m, lua in lua.push(String(decoding: m.console, as: UTF8.self)) })
        c.field("instructions", get: { m, lua in lua.push(m.retired) })
        c.field("cycles", get: { m, lua in lua.push(m.cpu.cycles) })
        c.field("powered_off", get: { m, lua in lua.push(m.board.poweredOff) })
        c.field("image", get: { m, lua in
            if let i = m.board.image { lua.push(i.name) } else { lua.pushNil() }
        })
        c.field("entry", get: { m, lua in
            if let i = m.board.image { lua.push(i.entry) } else { lua.pushNil() }
        })
        c.field("echo", get: { m, lua in lua.push(m.echo) }, set: { m, call, i in m.echo = call.boolean(i) })
        c.field("engine", get: { m, lua in lua.push(m.cpu.engine.rawValue) })
        c.field("stop_reason", get: { m, lua in
            if let r = m.stopReason { lua.push(r) } else { lua.pushNil() }
        })
        c.field("exceptions", get: { m, lua in
            let L = lua.L
            lua_createtable(L, 0, 16)
            for code in ExceptionCode.allCases {
                let n = m.cpu.exceptionCounts[Int(code.rawValue)]
                guard n > 0 else { continue }
                lua.push(n)
                lua_setfield(L, -2, code.description)
            }
        })

        c.method("load") { [unowned self] m, call in
            let path = try call.string(2)
            try load(m, path)
            lua.push(m.board.image!.entry)
            return 1
        }
        c.method("reset") { m, _ in
            guard m.board.image != nil else { throw LuaError("reset: no image loaded (use m:load(path))") }
            try notRunning(m, "reset")
            m.board.boot()
            m.console.removeAll()
            m.echoed.removeAll()  // a new run: its output is shown again
            return 0
        }
        c.method("run") { [unowned self] m, call in
            var steps: UInt64?
            var pattern: String?
            if lua_type(call.L, 2) == LUA_TNUMBER {
                steps = try self.steps(call.integer(2))
            } else if !call.isNoneOrNil(2) {
                try call.options(2, "run", ["steps", "until_output"])
                switch call.field(2, "steps") {
                case .none: break
                case .integer(let n): steps = try self.steps(n)
                default: throw LuaError("run: steps must be an integer")
                }
                switch call.field(2, "until_output") {
                case .none: break
                case .string(let p): pattern = p
                default: throw LuaError("run: until_output must be a Lua pattern (a string)")
                }
            }
            try checkRunnable(m, "run")
            let (reason, info) = try m.run(steps: steps, until: pattern)
            lua.push(reason)
            m.pushTable(info)
            return 2
        }
        c.method("step") { [unowned self] m, call in
            let n = try call.optionalInteger(2) ?? 1
            try checkRunnable(m, "step")
            let (reason, info) = try m.run(steps: try self.steps(n), until: nil)
            lua.push(reason)
            m.pushTable(info)
            return 2
        }
        c.method("stop") { m, _ in
            m.stop(reason: "stopped", info: ["pc": .integer(Int64(m.cpu.pc))])
            return 0
        }

        // Events and breakpoints
        c.method("on") { [unowned self] m, call in
            pushHook(m, try eventHook(call, events: Self.machineEvents))
        }
        c.method("break_at") { [unowned self] m, call in pushHook(m, try breakAtHook(call)) }
        c.method("break_on_mode") { [unowned self] m, call in pushHook(m, try breakOnModeHook(call)) }
        c.method("break_on_exception") { [unowned self] m, call in
            let code = try call.optionalString(2).map { try exceptionCode($0) }
            let cond = try optionalFunction(call, 3)
            return pushHook(m, Hook(kind: .exception(code), function: cond, isBreakpoint: true,
                                    description: "break on exception \(code.map { "\($0)" } ?? "any")"))
        }
        c.method("break_on_tlb_write") { [unowned self] m, call in
            let cond = try optionalFunction(call, 2)
            return pushHook(m, Hook(kind: .tlbWrite, function: cond, isBreakpoint: true, description: "break on TLB write"))
        }
        c.method("watch") { [unowned self] m, call in pushHook(m, try watchHook(call)) }
        c.method("hooks") { [unowned self] m, _ in
            let L = lua.L
            lua_createtable(L, Int32(m.hooks.count), 0)
            for (i, id) in m.hooks.keys.sorted().enumerated() {
                handleClass.push(HookHandle(m, id), in: lua)
                lua_rawseti(L, -2, lua_Integer(i + 1))
            }
            return 1
        }

        // Injection
        c.method("interrupt") { m, call in
            let line = try call.integer(2)
            guard (0...5).contains(line) else { throw LuaError("interrupt: hardware line must be 0..5 (Cause.IP2..IP7)") }
            let on = call.isNoneOrNil(3) ? true : call.boolean(3)
            m.cpu.setInterruptLine(Int(line), asserted: on)
            m.timeTravel?.stateChanged()
            return 0
        }
        c.method("raise") { [unowned self] m, call in
            let name = try call.string(2)
            try notRunning(m, "raise")
            let code = try exceptionCode(name == "tlb_refill" ? "TLBL" : name)
            let address = try call.optionalWord(3, "address")
            if [.tlbLoad, .tlbStore, .tlbModified, .addressErrorLoad, .addressErrorStore].contains(code) && address == nil {
                throw LuaError("raise: \(code) needs the faulting address as the second argument")
            }
            try m.outsideRun {
                m.cpu.inject(code, badVAddr: address, refill: name == "tlb_refill" || (call.count >= 4 && call.boolean(4)),
                             coprocessor: code == .coprocessorUnusable ? 1 : 0)
            }
            m.timeTravel?.stateChanged()
            return 0
        }
        c.method("type") { m, call in
            let text = try call.string(2)
            m.board.uart.receive(Array(text.utf8))
            m.timeTravel?.stateChanged()
            return 0
        }

        // Trace and inspection
        c.method("trace") { [unowned self] m, call in
            let n = try call.optionalInteger(2).map { try count($0, "trace", "the number of events", upTo: m.trace.capacity) } ?? 20
            let items = m.trace.ordered.suffix(n)
            let L = lua.L
            lua_createtable(L, Int32(items.count), 0)
            for (i, r) in items.enumerated() {
                m.pushTable(["kind": .string(r.kind), "pc": .integer(Int64(r.pc)),
                             "instructions": .integer(Int64(r.instructions)), "text": .string(r.text)])
                lua_rawseti(L, -2, lua_Integer(i + 1))
            }
            return 1
        }
        c.method("trace_instructions") { [unowned self] m, call in
            if lua_type(call.L, 2) == LUA_TNUMBER {
                let n = try count(call.integer(2), "trace_instructions", "the number of instructions", upTo: 1 << 20)
                m.instructionTrace.free()
                m.instructionTrace = FixedRing(capacity: max(n, 1))
                m.tracingInstructions = n > 0
                m.hooksChanged()
                return 0
            }
            let pcs = m.tracingInstructions ? m.instructionTrace.ordered : []
            let L = lua.L
            lua_createtable(L, Int32(pcs.count), 0)
            for (i, pc) in pcs.enumerated() {
                lua.push(pc)
                lua_rawseti(L, -2, lua_Integer(i + 1))
            }
            return 1
        }
        c.method("disasm") { [unowned self] m, call in
            let (start, count) = try disasmArguments(call, pc: m.cpu.pc)
            lua.push(disassemble(m, from: start, count: count))
            return 1
        }
        c.method("symbol") { [unowned self] m, call in
            let name = try call.string(2)
            guard let s = m.board.image?.symbols.first(where: { $0.name == name }) else { lua.pushNil(); return 1 }
            lua.push(s.address)
            return 1
        }
        c.method("where") { [unowned self] m, call in
            let a = try call.word(2, "address")
            if let s = symbolize(m, a) { lua.push(s) } else { lua.pushNil() }
            return 1
        }
    }

    static let machineEvents = ["mode_change", "exception", "tlb_write", "output", "poweroff", "instruction", "memory"]

    /// The hook of `on(event, fn, ...)` for one of `events` (a machine's, or a guest's few).
    func eventHook(_ call: LuaCall, events: [String]) throws -> Hook {
        let event = try call.string(2)
        try call.checkFunction(3)
        guard events.contains(event) || event == "mode" && events.contains("mode_change") else {
            throw LuaError("unknown event '\(event)' (\(events.joined(separator: ", ")))")
        }
        let kind: HookKind
        var desc = "on \(event)"
        switch event {
        case "mode_change", "mode":
            let (from, to) = try modeFilter(call, 4)
            kind = .mode(from: from, to: to)
        case "exception":
            let code = try call.optionalString(4).map { try exceptionCode($0) }
            if let code { desc += " \(code)" }
            kind = .exception(code)
        case "tlb_write": kind = .tlbWrite
        case "output": kind = .output
        case "poweroff": kind = .poweroff
        case "instruction": kind = .instruction
        default:
            guard !call.isNoneOrNil(4) else { throw LuaError("on('memory', fn, {address = a, size = n, access = 'rw'}) needs a range") }
            kind = try memoryKind(call, tableAt: 4)
        }
        return Hook(kind: kind, function: ref(call, 3), isBreakpoint: false, description: desc)
    }

    /// `break_at(pc [, condition])`
    func breakAtHook(_ call: LuaCall) throws -> Hook {
        let pc = try call.word(2, "address")
        let cond = try optionalFunction(call, 3)
        return Hook(kind: .pc(pc), function: cond, isBreakpoint: true, description: "break at 0x\(Hex.word(pc))")
    }

    /// `break_on_mode([from [, to [, condition]]])`
    func breakOnModeHook(_ call: LuaCall) throws -> Hook {
        let (from, to) = try modeFilter(call, 2)
        let cond = try optionalFunction(call, 4)
        let desc = "break on mode change \(from.map { "\($0)" } ?? "any") -> \(to.map { "\($0)" } ?? "any")"
        return Hook(kind: .mode(from: from, to: to), function: cond, isBreakpoint: true, description: desc)
    }

    /// `watch(address [, size = 4 [, access = "rw" [, condition]]])`
    func watchHook(_ call: LuaCall) throws -> Hook {
        let address = try call.word(2, "address")
        let size = try call.optionalInteger(3) ?? 4
        guard size >= 1 && size <= 0x1_0000_0000 - Int64(address) else { throw LuaError("watch: size must be at least 1 and stay below 4 GiB") }
        let access = try call.optionalString(4) ?? "rw"
        guard ["r", "w", "rw", "wr"].contains(access) else { throw LuaError("watch: access must be \"r\", \"w\" or \"rw\"") }
        let cond = try optionalFunction(call, 5)
        let range = address...(address &+ UInt32(size - 1))
        return Hook(kind: .memory(range, reads: access.contains("r"), writes: access.contains("w")), function: cond,
                    isBreakpoint: true, description: "watch \(access) 0x\(Hex.word(address)) +\(size)")
    }

    /// A machine can run once it has an image, or once a script has moved pc off the reset
    /// vector (code it wrote itself).
    func checkRunnable(_ m: LuaMachine, _ what: String) throws {
        guard m.board.image != nil || m.cpu.pc != 0xBFC0_0000 else {
            throw LuaError("\(what): no image loaded (use m:load(path) or magritte.machine{image = path})")
        }
    }

    /// A count argument that must lie in 0...`limit` (a negative or huge one is a mistake, not
    /// a request to clamp).
    func count(_ n: Int64, _ what: String, _ noun: String, upTo limit: Int) throws -> Int {
        guard n >= 0 && n <= limit else { throw LuaError("\(what): \(noun) must be 0..\(limit) (got \(n))") }
        return Int(n)
    }

    func steps(_ n: Int64) throws -> UInt64 {
        guard n >= 0 else { throw LuaError("the number of steps must not be negative") }
        return UInt64(n)
    }

    func exceptionCode(_ name: String) throws -> ExceptionCode {
        guard let c = Names.exception(name) else {
            throw LuaError("unknown exception '\(name)' (one of \(Names.exceptionList))")
        }
        return c
    }

    func modeFilter(_ call: LuaCall, _ i: Int32) throws -> (Mode?, Mode?) {
        func mode(_ j: Int32) throws -> Mode? {
            guard let s = try call.optionalString(j), s != "any" else { return nil }
            guard let m = Names.mode(s) else { throw LuaError("unknown mode '\(s)' (kernel, supervisor, user or any)") }
            return m
        }
        return (try mode(i), try mode(i + 1))
    }

    func memoryKind(_ call: LuaCall, tableAt i: Int32) throws -> HookKind {
        try call.options(i, "on('memory')", ["address", "size", "access"])
        guard case .integer(let a) = call.field(i, "address"), a >= 0, a <= 0xFFFF_FFFF else {
            throw LuaError("memory range needs address = <32-bit address>")
        }
        var size: Int64 = 4
        if case .integer(let s) = call.field(i, "size") { size = s }
        guard size >= 1 && size <= 0x1_0000_0000 - a else { throw LuaError("memory range size must be at least 1 and stay below 4 GiB") }
        var access = "rw"
        if case .string(let s) = call.field(i, "access") { access = s }
        guard ["r", "w", "rw", "wr"].contains(access) else { throw LuaError("access must be \"r\", \"w\" or \"rw\"") }
        let lo = UInt32(a)
        return .memory(lo...(lo &+ UInt32(size - 1)), reads: access.contains("r"), writes: access.contains("w"))
    }

    func ref(_ call: LuaCall, _ i: Int32) -> Int32 {
        lua_pushvalue(call.L, i)
        return luaL_ref(call.L, mg_registryindex())
    }

    func optionalFunction(_ call: LuaCall, _ i: Int32) throws -> Int32? {
        if call.isNoneOrNil(i) { return nil }
        try call.checkFunction(i)
        return ref(call, i)
    }

    func pushHook(_ m: LuaMachine, _ hook: Hook) -> Int32 {
        let id = m.add(hook)
        handleClass.push(HookHandle(m, id), in: lua)
        return 1
    }

    func symbolize(_ m: LuaMachine, _ address: UInt32) -> String? { symbolize(m.board.image, address) }

    /// `"name"` or `"name+0x10"` for an address of `image` (functions first), or nil.
    func symbolize(_ image: ELFImage?, _ address: UInt32) -> String? {
        guard let image else { return nil }
        var best: ELFImage.Symbol?
        for s in image.symbols where s.address <= address && !s.name.isEmpty {
            if best == nil || s.address > best!.address || s.address == best!.address && rank(s) > rank(best!) { best = s }
        }
        guard let b = best, address - b.address < 0x10000 else { return nil }
        return address == b.address ? b.name : "\(b.name)+\(Hex.prefixed(address - b.address))"
    }

    /// Which of several symbols at one address names it: a function, else an object, else
    /// anything (linker-script constants such as KSEG0).
    func rank(_ s: ELFImage.Symbol) -> Int {
        switch s.kind {
        case .function: 2
        case .object: 1
        case .other: 0
        }
    }

    /// `disasm([address = pc [, count = 8]])`'s arguments.
    func disasmArguments(_ call: LuaCall, pc: UInt32) throws -> (UInt32, Int) {
        let start = try call.optionalWord(2, "address") ?? pc
        let count = try call.optionalInteger(3) ?? 8
        guard (1...100_000).contains(count) else { throw LuaError("disasm: count must be 1..100000") }
        return (start, Int(count))
    }

    func disassemble(_ m: LuaMachine, from start: UInt32, count: Int) -> String {
        disassemble(image: m.board.image, pc: m.cpu.pc, from: start, count: count) { a in
            // Through the current translation; kseg0/kseg1 code also from user mode (a
            // disassembly of the kernel is wanted whatever mode the CPU is in).
            let unmapped = a >= 0x8000_0000 && a < 0xC000_0000
            return m.cpu.readVirtual(a, size: 4) ?? (unmapped ? m.cpu.readPhysical(a & 0x1FFF_FFFF, size: 4) : nil)
        }
    }

    /// `count` instructions from `start` as `read` finds them, with the symbols of `image` and
    /// "=>" at `pc` (a machine's `m:disasm` and a guest's `g:disasm`).
    func disassemble(image: ELFImage?, pc: UInt32, from start: UInt32, count: Int, read: (UInt32) -> UInt32?) -> String {
        var out = ""
        var names: [UInt32: String] = [:]
        var ranks: [UInt32: Int] = [:]
        for s in image?.symbols ?? [] where !s.name.isEmpty && rank(s) >= ranks[s.address, default: -1] {
            names[s.address] = s.name
            ranks[s.address] = rank(s)
        }
        for i in 0..<count {
            let a = start &+ UInt32(4 * i)
            if let n = names[a] { out += "\(Hex.word(a)) <\(n)>:\n" }
            let marker = a == pc ? "=>" : "  "
            guard let w = read(a) else {
                out += "\(marker) \(Hex.word(a)):  (not mapped)\n"
                continue
            }
            let text = Disassembler.text(word: w, pc: a) { t in self.symbolize(image, t) }
            out += "\(marker) \(Hex.word(a)):  \(Hex.word(w))  \(text)\n"
        }
        return out
    }
}

/// What changes where the CPU is (pc, an exception, CP0, a new image) cannot happen in the middle
/// of its instruction loop, from a callback.
func notRunning(_ m: LuaMachine, _ what: String) throws {
    guard !m.running else {
        throw LuaError("\(what): not while the machine runs (from a callback): stop the run first (return \"stop\" or call m:stop()), then \(what)")
    }
}
