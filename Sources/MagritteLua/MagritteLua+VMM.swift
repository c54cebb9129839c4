import CMagritteLua
import MagritteCore
import MagritteHypervisor
import MagritteMachine

/// What a callback must not do to the VMM that runs it.
func notRunning(_ v: LuaVMM, _ what: String) throws {
    guard !v.running else {
        throw LuaError("\(what): not while the VMM runs (from a callback): stop the run first (return \"stop\" or call vmm:stop()), then \(what)")
    }
}

extension MagritteLua {
    static let vmmEvents = ["trap", "reflect", "emulate", "tlb_write", "hidden_fill", "return", "switch", "hypercall", "device", "idle", "wake",
                            "poweroff", "asid_rollover", "output"]

    /// magritte.vmm{ram = "256M", tlb = 64, slice = 200000, echo = false}
    func newVMM(_ call: LuaCall) throws -> Int32 {
        var ram = 256 << 20, tlb = 64
        var slice: UInt64?
        var echo = false
        var engine = Engine.hostDefault
        if !call.isNoneOrNil(1) {
            try call.options(1, "magritte.vmm", ["ram", "tlb", "slice", "echo", "engine"])
            switch call.field(1, "ram") {
            case .none: break
            case .integer(let n): ram = Int(clamping: n)
            case .string(let s):
                do { ram = try MaltaConfiguration.ramSize(parsing: s) } catch { throw LuaError("ram: \(error)") }
            default: throw LuaError("ram must be a size such as \"256M\" or a number of bytes")
            }
            switch call.field(1, "tlb") {
            case .none: break
            case .integer(let n) where VMM.physicalTLBSizes.contains(Int(n)): tlb = Int(n)
            default:
                let r = VMM.physicalTLBSizes
                throw LuaError("tlb must be a number of physical TLB entries from \(r.lowerBound) to \(r.upperBound)")
            }
            switch call.field(1, "slice") {
            case .none: break
            case .integer(let n) where n >= 1: slice = UInt64(n)
            default: throw LuaError("slice must be a number of instructions, at least 1")
            }
            switch call.field(1, "echo") {
            case .none: break
            case .boolean(let b): echo = b
            default: throw LuaError("echo must be a boolean")
            }
            switch call.field(1, "engine") {
            case .none: break
            case .string(let s) where Engine(rawValue: s) != nil: engine = Engine(rawValue: s)!
            default: throw LuaError("engine must be \"jit\" or \"interpreter\"")
            }
        }
        let vmm: VMM
        do { try VMM.checkRAMSize(ram) } catch { throw LuaError("ram: \(error.message) (got \(ram))") }
        do { vmm = try VMM(ramSize: ram, tlbEntries: tlb, engine: engine) } catch { throw LuaError("vmm: \(error.message)") }
        if let slice { vmm.slice = slice }
        let v = LuaVMM(vmm, api: self)
        v.echo = echo
        vmmClass.push(v, in: lua)
        return 1
    }

    /// The guest named by argument `i`: a guest of `v` (userdata) or its name.
    func guestArgument(_ v: LuaVMM, _ call: LuaCall, _ i: Int32) throws -> Guest {
        if let g = guestClass.object(call.L, i) {
            guard g.owner === v else { throw LuaError("\(call.argument(i)) (the guest belongs to another VMM)") }
            return g.guest
        }
        guard lua_type(call.L, i) == LUA_TSTRING, let name = call.state.string(at: i) else { throw call.argError(i, "guest or guest name") }
        guard let g = v.vmm.guests.first(where: { $0.name == name }) else {
            throw LuaError("no guest named '\(name)' (guests: \(v.vmm.guests.map(\.name).joined(separator: ", ")))")
        }
        return g
    }

    func vmmEvent(_ name: String) throws -> String? {
        if name == "any" { return nil }
        if name == "exit" { return "trap" }
        guard Self.vmmEvents.contains(name) else {
            throw LuaError("unknown VMM event '\(name)' (\(Self.vmmEvents.joined(separator: ", ")), exit or any)")
        }
        return name
    }

    /// `[steps | {steps =, until_output =}]` at argument 2 of run.
    func runArguments(_ call: LuaCall) throws -> (UInt64?, String?) {
        if lua_type(call.L, 2) == LUA_TNUMBER { return (try steps(call.integer(2)), nil) }
        guard !call.isNoneOrNil(2) else { return (nil, nil) }
        try call.options(2, "run", ["steps", "until_output"])
        var n: UInt64?, pattern: String?
        switch call.field(2, "steps") {
        case .none: break
        case .integer(let i): n = try steps(i)
        default: throw LuaError("run: steps must be an integer")
        }
        switch call.field(2, "until_output") {
        case .none: break
        case .string(let p): pattern = p
        default: throw LuaError("run: until_output must be a Lua pattern (a string)")
        }
        return (n, pattern)
    }

    func pushResult(_ v: LuaVMM, _ result: (String, [String: TraceValue])) -> Int32 {
        lua.push(result.0)
        v.pushTable(result.1)
        return 2
    }

    // MARK: vmm

    func defineVMM() {
        let c = vmmClass
        defineLecture(c)
        c.description { v in
            "magritte.vmm(\(v.vmm.guests.count) guests, \(v.vmm.bus.ramSize >> 20) MiB, \(v.vmm.cpu.retiredInstructions) instructions)"
        }
        c.field("guests", get: { v, lua in
            lua_createtable(lua.L, Int32(v.vmm.guests.count), 0)
            for (i, g) in v.vmm.guests.enumerated() {
                v.pushGuest(g)
                lua_rawseti(lua.L, -2, lua_Integer(i + 1))
            }
        })
        c.field("current", get: { v, lua in if let g = v.vmm.current { v.pushGuest(g) } else { lua.pushNil() } })
        c.field("instructions", get: { v, lua in lua.push(v.vmm.cpu.retiredInstructions) })
        c.field("cycles", get: { v, lua in lua.push(v.vmm.now) })
        c.field("ram", get: { v, lua in lua.push(v.vmm.bus.ramSize) })
        c.field("tlb_entries", get: { v, lua in lua.push(v.vmm.cpu.configuration.tlbEntries) })
        c.field("engine", get: { v, lua in lua.push(v.vmm.cpu.engine.rawValue) })
        c.field("stop_reason", get: { v, lua in if let r = v.stopReason { lua.push(r) } else { lua.pushNil() } })
        c.field("exit_sites", get: { v, lua in lua.push(v.vmm.collectsExitSites) }, set: { v, call, i in v.vmm.collectsExitSites = call.boolean(i) })
        c.field("clustering", get: { v, lua in lua.push(v.vmm.clustersExits) }, set: { v, call, i in v.vmm.clustersExits = call.boolean(i) })
        c.field("device_polling", get: { v, lua in lua.push(v.vmm.pollsDevices) }, set: { v, call, i in v.vmm.pollsDevices = call.boolean(i) })
        c.field("device_mapping", get: { v, lua in lua.push(v.vmm.mapsDevices) }, set: { v, call, i in v.vmm.mapsDevices = call.boolean(i) })
        c.field("recording", get: { v, lua in lua.push(v.vmm.trace.recording) }, set: { v, call, i in v.vmm.trace.recording = call.boolean(i) })
        c.field("large_pages", get: { v, lua in lua.push(v.vmm.usesLargePages) }, set: { v, call, i in v.vmm.usesLargePages = call.boolean(i) })
        c.field("echo", get: { v, lua in lua.push(v.echo) }, set: { v, call, i in v.echo = call.boolean(i) })
        c.field("slice", get: { v, lua in lua.push(v.vmm.slice) }, set: { v, call, i in
            let n = try call.integer(i)
            guard n >= 1 else { throw LuaError("slice must be at least 1 instruction (got \(n))") }
            v.vmm.slice = UInt64(n)
        })
        c.field("spin_policy", get: { v, lua in lua.push(v.vmm.spinPolicy == .account ? "account" : "deschedule") }, set: { v, call, i in
            switch try call.string(i) {
            case "account": v.vmm.spinPolicy = .account
            case "deschedule": v.vmm.spinPolicy = .deschedule
            case let s: throw LuaError("unknown spin policy '\(s)' (account or deschedule)")
            }
        })
        c.field("policy", get: { v, lua in
            if let ref = v.policyRef { lua_rawgeti(lua.L, mg_registryindex(), lua_Integer(ref)) } else { lua.pushNil() }
        }, set: { [unowned self] v, call, i in
            if !call.isNoneOrNil(i) { try call.checkFunction(i) }
            if let old = v.policyRef { luaL_unref(call.L, mg_registryindex(), old) }
            v.policyRef = call.isNoneOrNil(i) ? nil : ref(call, i)
            v.vmm.policy = v.policyRef == nil ? nil : { [unowned(unsafe) v] runnable, last in v.choose(runnable, last) }
        })

        c.method("add") { v, call in
            try call.options(2, "add", ["image", "name", "ram", "append", "args", "idle", "initrd"])
            try notRunning(v, "add")
            guard case .string(let image) = call.field(2, "image") else { throw LuaError("add: image must be the path of an ELF file") }
            var config = GuestConfiguration(name: "")
            switch call.field(2, "name") {
            case .none:
                var base = String(image.split(separator: "/").last ?? Substring(image))
                if base.hasSuffix(".elf") { base = String(base.dropLast(4)) }
                var name = base, n = 2
                while v.vmm.guests.contains(where: { $0.name == name }) { name = "\(base)-\(n)"; n += 1 }
                config.name = name
            case .string(let s) where !s.isEmpty: config.name = s
            default: throw LuaError("add: name must be a non-empty string")
            }
            switch call.field(2, "ram") {
            case .none: break
            case .integer(let n): config.ramSize = Int(clamping: n)
            case .string(let s):
                do { config.ramSize = try MaltaConfiguration.ramSize(parsing: s) } catch { throw LuaError("add: ram: \(error)") }
            default: throw LuaError("add: ram must be a size such as \"32M\" or a number of bytes")
            }
            var args: [String] = []
            for key in ["append", "args"] {
                switch call.field(2, key) {
                case .none: break
                case .string(let s): args.append(s)
                default: throw LuaError("add: \(key) must be a string (the kernel command line)")
                }
            }
            switch call.field(2, "idle") {
            case .none: break
            case .string(let s) where ["spin", "wait", "hypercall"].contains(s): args.append("idle=\(s)")
            default: throw LuaError("add: idle must be \"spin\", \"wait\" or \"hypercall\" (teachos' idle= boot argument)")
            }
            config.commandLine = args.filter { !$0.isEmpty }.joined(separator: " ")
            switch call.field(2, "initrd") {
            case .none: break
            case .string(let path):
                guard let bytes = readWholeFile(path) else { throw LuaError("add: cannot read the initrd '\(path)'") }
                config.initrd = bytes
            default: throw LuaError("add: initrd must be the path of an initial RAM disk (QEMU's -initrd)")
            }
            let g: Guest
            let elf: ELFImage
            do { elf = try ELFImage(contentsOfFile: image) } catch let error as ELFError {
                throw LuaError("add: \(image): \(error.message)" + missingGuestHint(image, error))
            }
            do { g = try v.vmm.addGuest(config, image: elf) } catch let e as VMMError { throw LuaError("add: \(e.message)") }
            v.pushGuest(g)
            return 1
        }
        c.method("guest") { [unowned self] v, call in
            let g = try guestArgument(v, call, 2)
            v.pushGuest(g)
            return 1
        }
        c.method("run") { [unowned self] v, call in
            let (n, pattern) = try runArguments(call)
            guard !v.vmm.guests.isEmpty else { throw LuaError("run: the VMM has no guests (add one with vmm:add{image = path})") }
            let result = try v.run("run") {
                v.outputPattern = pattern
                return v.timeTravel?.run(maxInstructions: n ?? .max) ?? v.vmm.run(maxInstructions: n ?? .max)
            }
            return pushResult(v, result)
        }
        c.method("stop") { v, _ in
            var info: [String: TraceValue] = ["pc": .integer(Int64(v.vmm.cpu.pc))]
            if let g = v.vmm.current { info["guest"] = .string(g.name) }
            v.stop(reason: "stopped", info: info)
            return 0
        }
        c.method("on") { [unowned self] v, call in
            let event = try vmmEvent(try call.string(2))
            try call.checkFunction(3)
            let guest = call.isNoneOrNil(4) ? nil : try guestArgument(v, call, 4)
            let desc = "on \(event ?? "any")" + (guest.map { " of \($0.name)" } ?? "")
            return pushHook(v, Hook(kind: .vmm(event: event, guest: guest?.name), function: ref(call, 3), isBreakpoint: false, description: desc))
        }
        c.method("break_on") { [unowned self] v, call in
            let event = try vmmEvent(try call.string(2))
            let guest = call.isNoneOrNil(3) ? nil : try guestArgument(v, call, 3)
            let cond = try optionalFunction(call, 4)
            let desc = "break on \(event ?? "any")" + (guest.map { " of \($0.name)" } ?? "")
            return pushHook(v, Hook(kind: .vmm(event: event, guest: guest?.name), function: cond, isBreakpoint: true, description: desc))
        }
        c.method("hooks") { [unowned self] v, _ in
            lua_createtable(lua.L, Int32(v.hooks.count), 0)
            for (i, id) in v.hooks.keys.sorted().enumerated() {
                handleClass.push(HookHandle(v, id), in: lua)
                lua_rawseti(lua.L, -2, lua_Integer(i + 1))
            }
            return 1
        }
        c.method("events") { [unowned self] v, call in
            var last = 20
            var kind: String?, guest: String?
            if !call.isNoneOrNil(2) {
                try call.options(2, "events", ["last", "kind", "guest"])
                switch call.field(2, "last") {
                case .none: break
                case .integer(let n) where n >= 0: last = Int(clamping: n)
                default: throw LuaError("events: last must be a number of events, 0 or more")
                }
                switch call.field(2, "kind") {
                case .none: break
                case .string(let s): kind = try vmmEvent(s)
                default: throw LuaError("events: kind must be an event name such as \"reflect\"")
                }
                call.pushRawField(2, "guest")
                if mg_isnil(call.L, -1) == 0 { guest = try guestArgument(v, call, lua_gettop(call.L)).name }
                mg_pop(call.L, 1)
            }
            let items = v.vmm.trace.events.filter { (kind == nil || $0.name == kind) && (guest == nil || $0.guest == guest) }.suffix(last)
            lua_createtable(lua.L, Int32(items.count), 0)
            for (i, e) in items.enumerated() {
                v.pushTable(v.eventTable(e))
                lua_rawseti(lua.L, -2, lua_Integer(i + 1))
            }
            return 1
        }
        c.method("timeline") { [unowned self] v, call in
            // Only an .svg path: a stray argument (a number, a word) must not make a file.
            let path = try call.optionalString(2)
            if let path, !path.hasSuffix(".svg") { throw LuaError("timeline: the path must end in .svg (got \"\(path)\")") }
            return try pushOrWrite(v.timeline.svg(), to: path, "timeline", count: v.timeline.slices.count)
        }
        c.method("tlb") { [unowned self] v, call in
            let n = v.vmm.cpu.configuration.tlbEntries
            return try pushTLB(v, count: n, call) { v.vmm.cpu.tlbEntry($0) }
        }
        defineGuest()
    }

    /// A picture's text: pushed, or written to `path` with `count` (what it drew) pushed.
    func pushOrWrite(_ text: String, to path: String?, _ what: String, count: Int) throws -> Int32 {
        guard let path else {
            lua.push(text)
            return 1
        }
        guard let file = fopen(path, "w") else { throw LuaError("\(what): cannot write \(path)") }
        let ok = fputs(text, file) >= 0
        guard fclose(file) == 0, ok else { throw LuaError("\(what): cannot write \(path)") }
        lua.push(count)
        return 1
    }

    /// `tlb([i])`: entry `i` or all of them, as `cpu:tlb` shows them.
    func pushTLB(_ owner: some HookOwner, count n: Int, _ call: LuaCall, _ entry: (Int) -> TLBEntry) throws -> Int32 {
        if let i = try call.optionalInteger(2) {
            guard (0..<Int64(n)).contains(i) else { throw LuaError("tlb: index must be 0..\(n - 1)") }
            pushTLB(entry(Int(i)), index: Int(i), owner)
            return 1
        }
        lua_createtable(lua.L, Int32(n), 0)
        for i in 0..<n {
            pushTLB(entry(i), index: i, owner)
            lua_rawseti(lua.L, -2, lua_Integer(i + 1))
        }
        return 1
    }

    func pushHook(_ v: LuaVMM, _ hook: Hook) -> Int32 {
        let id = v.add(hook)
        handleClass.push(HookHandle(v, id), in: lua)
        return 1
    }
}
