import CMagritteLua
import MagritteCore
import MagritteHypervisor
import MagritteMachine

/// A VMM as Lua sees it (`magritte.vmm{…}`, Docs/lua-api.md "Virtual machines"): the
/// hypervisor plus the hooks scripts installed on its events, the scheduling policy a script
/// may replace, and why the last run stopped.
///
/// Callbacks (event hooks, breakpoint conditions, the policy) run under `lua_pcall` from inside
/// `VMM.run`; an error there stops the run and is raised again when `run` returns. Without hooks
/// the trace listener is not even set, so a VMM that nobody watches runs at full speed.
final class LuaVMM: HookOwner {
    let vmm: VMM
    unowned(unsafe) let api: MagritteLua
    /// The Lua state (unowned: it owns this VMM through its userdata).
    unowned(unsafe) let lua: LuaState

    var hooks: [Int: Hook] = [:]
    var nextHookID = 1
    /// Enabled hooks in id order: on VMM events, and on console lines.
    var eventHooks: [Hook] = []
    var outputHooks: [Hook] = []
    /// Enabled hooks on single guests, as a machine has them (`g:break_at`, `g:watch`,
    /// `g:on("instruction" | "memory" | "mode_change")`); the CPU reports to `GuestObserver`
    /// while there are pc, instruction or memory hooks.
    var pcHooks: [UInt32: [Hook]] = [:]
    var instructionHooks: [Hook] = []
    var memoryHooks: [Hook] = []
    var modeHooks: [Hook] = []
    /// Per guest index, the pc where a breakpoint of that guest last stopped the run: resuming
    /// there runs the instruction instead of stopping again (even after other guests ran).
    var resumeAt: [Int: UInt32] = [:]
    /// Per guest index, the pc and the guest's retired count at the last instruction reported:
    /// the same again is the instruction retried after a fault the VMM handled unseen (a hidden
    /// TLB fill), which the guest does not see run twice, so neither do its hooks.
    var lastReported: [Int: (pc: UInt32, retired: UInt64)] = [:]
    /// Hooks removed while a run may be walking the lists (kept until it ends).
    var removedHooks: [Hook] = []

    // Run state
    var messageHandler: Int32 = 0
    /// Whether `run` or `step` is on the stack.
    var running = false
    /// Whether callbacks may run now (inside a run, or inside `outsideRun`).
    var inRun = false
    var stopReason: String?
    var stopInfo: [String: TraceValue]?
    var pendingError: LuaError?
    var interrupted = false
    var outputPattern: String?
    var echo = false
    /// Registry reference of the Lua scheduling policy.
    var policyRef: Int32?
    /// Registry reference of a table with weak values: guest index → its userdata, so that a
    /// guest is always the same Lua value (`runnable[1] == a` in a policy).
    var guestCache: Int32 = LUA_NOREF
    /// The slices of this VMM's runs, for `vmm:timeline`.
    var timeline: Timeline!

    init(_ vmm: VMM, api: MagritteLua) {
        self.vmm = vmm
        self.api = api
        lua = api.lua
        let L = lua.L
        lua_createtable(L, 0, 4)
        lua_createtable(L, 0, 1)
        lua.push("v")
        lua_setfield(L, -2, "__mode")
        lua_setmetatable(L, -2)
        guestCache = luaL_ref(L, mg_registryindex())
        vmm.onConsoleLine = { [unowned(unsafe) self] g, line in self.consoleLine(g, line) }
        timeline = Timeline(vmm)
    }

    deinit {
        // The CPU holds its trap handler, the VMM, strongly: break that cycle so the VMM and its
        // RAM go with this object.
        vmm.cpu.trapHandler = nil
        vmm.cpu.observer = nil
        vmm.trace.listener = nil
        vmm.policy = nil
        vmm.onConsoleLine = nil
        vmm.onSliceEnd = nil
        // Lua collects userdata before it closes the state, so the registry is still there.
        for h in hooks.values { if let ref = h.function { luaL_unref(L, mg_registryindex(), ref) } }
        if let policyRef { luaL_unref(L, mg_registryindex(), policyRef) }
        luaL_unref(L, mg_registryindex(), guestCache)
    }

    // MARK: Running

    /// Runs `body` (`VMM.run` or `VMM.step`) with callbacks enabled; returns the reason and
    /// details, or throws the error a callback raised.
    func run(_ what: String, guest: Guest? = nil, _ body: () -> VMMRunOutcome) throws -> (String, [String: TraceValue]) {
        guard !running else {
            throw LuaError("\(what): the VMM is already running (a callback cannot run or step it: return \"stop\" or call vmm:stop())")
        }
        stopReason = nil
        stopInfo = nil
        pendingError = nil
        interrupted = false
        let outer = api.runningVMM
        api.runningVMM = self
        running = true
        inRun = true
        let base = lua_gettop(L)
        lua_pushcclosure(L, mg_traceback, 0)
        messageHandler = lua_gettop(L)
        let outcome = body()
        messageHandler = 0
        lua_settop(L, base)
        inRun = false
        running = false
        outputPattern = nil
        api.runningVMM = outer
        removedHooks.removeAll()
        if let e = pendingError {
            pendingError = nil
            throw e
        }
        if interrupted { return ("interrupted", [:]) }
        if let reason = stopReason, outcome == .stopped { return (reason, stopInfo ?? [:]) }
        switch outcome {
        case .allPoweredOff: return ("poweroff", [:])
        case .instructionLimit: return ("steps", [:])
        case .stopped: return ("stopped", [:])
        case .outOfHostMemory: throw LuaError("\(CPU.outOfHostMemoryMessage) in guest \(vmm.current?.name ?? "?")")
        case .deadlock:
            let on = vmm.guests.filter { $0.state != .poweredOff }
            if guest == nil, !on.isEmpty, on.allSatisfy(\.paused) { return ("paused", [:]) }
            return ("deadlock", [:])
        }
    }

    /// Runs `body`, which may record VMM events outside a run (an injected exception): the
    /// callbacks run, there is nothing to stop, and a callback's error is raised here.
    func outsideRun(_ body: () throws -> Void) throws {
        pendingError = nil
        inRun = true
        let result = Result { try body() }
        inRun = false
        stopReason = nil
        stopInfo = nil
        removedHooks.removeAll()
        if let e = pendingError {
            pendingError = nil
            throw e
        }
        try result.get()
    }

    func stop(reason: String, info: [String: TraceValue]) {
        guard running else { return }
        if stopReason == nil {
            stopReason = reason
            stopInfo = info
        }
        vmm.stop()
    }

    func fail(_ error: LuaError) {
        if pendingError == nil { pendingError = error }
        if running { vmm.stop() }
    }

    // MARK: Hooks

    func hooksChanged() {
        eventHooks = []
        outputHooks = []
        pcHooks = [:]
        instructionHooks = []
        memoryHooks = []
        modeHooks = []
        var watches: [ClosedRange<UInt32>] = []
        for (_, h) in hooks.sorted(by: { $0.key < $1.key }) where h.enabled {
            switch h.kind {
            case .vmm(let event, _): if event == "output" { outputHooks.append(h) } else { eventHooks.append(h) }
            case .pc(let pc): pcHooks[pc, default: []].append(h)
            case .instruction: instructionHooks.append(h)
            case .memory(let range, _, _):
                memoryHooks.append(h)
                watches.append(range)
            case .mode: modeHooks.append(h)
            default: break
            }
        }
        vmm.trace.listener = eventHooks.isEmpty && modeHooks.isEmpty ? nil : { [unowned(unsafe) self] e in self.event(e) }
        let observes = !pcHooks.isEmpty || !instructionHooks.isEmpty
        if observes || !watches.isEmpty {
            if vmm.cpu.observer == nil { vmm.cpu.observer = GuestObserver(self) }
        } else if vmm.cpu.observer != nil {
            vmm.cpu.observer = nil
        }
        vmm.cpu.observesInstructions = observes
        if vmm.cpu.memoryWatches != watches { vmm.cpu.memoryWatches = watches }
    }

    // MARK: Events of single guests (from GuestObserver and the trace)

    /// Before each instruction while guests have pc or instruction hooks: those of the guest
    /// loaded on the CPU fire; a stop ends the run before the instruction.
    func willExecute(at pc: UInt32) -> ObserverAction {
        guard inRun, let g = vmm.current else { return .proceed }
        let retired = vmm.retiredInstructions(of: g)
        if let l = lastReported[g.index], l.pc == pc, l.retired == retired { return .proceed }
        lastReported[g.index] = (pc, retired)

        if let p = resumeAt.removeValue(forKey: g.index), p == pc { return .proceed }
        let info: () -> [String: TraceValue] = { ["pc": .integer(Int64(pc)), "guest": .string(g.name)] }
        for h in instructionHooks where h.guestIndex == g.index {
            fire(h, reason: "instruction", info: info()) { lua_pushinteger(L, lua_Integer(pc)); return 1 }
        }
        if let hs = pcHooks[pc] {
            for h in hs where h.guestIndex == g.index {
                fire(h, reason: "breakpoint", info: info()) { lua_pushinteger(L, lua_Integer(pc)); return 1 }
            }
        }
        guard stopReason == nil && pendingError == nil else {
            resumeAt[g.index] = pc
            return .stop
        }
        return .proceed
    }

    func didAccessMemory(_ access: MemoryAccess) {
        guard inRun, let g = vmm.current else { return }
        var info: [String: TraceValue]?
        for h in memoryHooks where h.guestIndex == g.index {
            guard case .memory(let range, let reads, let writes) = h.kind, access.isWrite ? writes : reads,
                  access.virtual <= range.upperBound && access.virtual &+ UInt32(access.size - 1) >= range.lowerBound else { continue }
            let i = info ?? [
                "address": .integer(Int64(access.virtual)), "size": .integer(Int64(access.size)), "value": .integer(Int64(access.value)),
                "write": .boolean(access.isWrite), "pc": .integer(Int64(access.pc)), "guest": .string(g.name),
                "physical": .integer(Int64(access.physical &- g.memoryBase)),
            ]
            info = i
            fire(h, reason: "watch", info: i) { self.pushTable(i); return 1 }
        }
    }

    /// A guest's virtual mode changed (seen in the VMM's trace): its mode hooks fire.
    func modeChanged(_ e: VMMEvent) {
        guard let g = vmm.guests.first(where: { $0.name == e.guest }) else { return }
        var info: [String: TraceValue]?
        for h in modeHooks where h.guestIndex == g.index {
            guard case .mode(let from, let to) = h.kind, from == nil || from == e.modeBefore, to == nil || to == e.modeAfter else { continue }
            let cause: String
            switch e.kind {
            case .reflect(let c, _): cause = c.description
            case .realReturn: cause = "eret"
            case .emulate(let text): cause = String(text.prefix { $0 != " " })
            default: cause = e.name
            }
            let i = info ?? [
                "from": .string(e.modeBefore.description), "to": .string(e.modeAfter.description), "cause": .string(cause),
                "pc": .integer(Int64(e.pc)), "instructions": .integer(Int64(e.instructions)), "guest": .string(g.name),
            ]
            info = i
            fire(h, reason: "mode_change", info: i) { self.pushTable(i); return 1 }
        }
    }

    func event(_ e: VMMEvent) {
        guard inRun else { return }
        if !modeHooks.isEmpty && e.modeBefore != e.modeAfter { modeChanged(e) }
        var info: [String: TraceValue]?  // made for the first hook that wants this event
        let name = e.name
        for h in eventHooks {
            guard case .vmm(let event, let guest) = h.kind else { continue }
            if let event, event != name { continue }
            if let guest, guest != e.guest { continue }
            let i = info ?? eventTable(e)
            info = i
            fire(h, reason: name, info: i) { self.pushTable(i); return 1 }
        }
    }

    func consoleLine(_ g: Guest, _ line: String) {
        if echo {
            for b in "\(g.name)| \(line)\n".utf8 { api.writeOut(b) }
        }
        guard inRun else { return }
        if !outputHooks.isEmpty {
            let info: [String: TraceValue] = ["kind": .string("output"), "guest": .string(g.name), "text": .string(line)]
            for h in outputHooks {
                if case .vmm(_, let guest?) = h.kind, guest != g.name { continue }
                fire(h, reason: "output", info: info) { self.pushTable(info); return 1 }
            }
        }
        if let pattern = outputPattern, find(pattern, pushSubject: { lua.push(line) }) {
            outputPattern = nil
            stop(reason: "output", info: ["pattern": .string(pattern), "guest": .string(g.name), "text": .string(line)])
        }
    }

    // MARK: The scheduling policy

    /// Asks the Lua policy for the next guest; nil (the policy said nil, or failed) lets the VMM
    /// go round robin. A failure stops the run, which ends before the guest runs.
    func choose(_ runnable: [Guest], _ last: Guest?) -> Guest? {
        guard let ref = policyRef, pendingError == nil, stopReason == nil else { return nil }
        let base = lua_gettop(L)
        defer { lua_settop(L, base) }
        let handler = callbackHandler()
        lua_rawgeti(L, mg_registryindex(), lua_Integer(ref))
        lua_createtable(L, Int32(runnable.count), 0)
        for (i, g) in runnable.enumerated() {
            pushGuest(g)
            lua_rawseti(L, -2, lua_Integer(i + 1))
        }
        if let last { pushGuest(last) } else { lua.pushNil() }
        if mg_pcall(L, 2, 1, handler) != LUA_OK {
            fail(LuaError("policy: " + (lua.string(at: -1) ?? "(error object is not a string)")))
            return nil
        }
        if mg_isnil(L, -1) != 0 { return nil }
        if let chosen = api.guestClass.object(L, -1)?.guest, runnable.contains(where: { $0 === chosen }) { return chosen }
        fail(LuaError("policy: must return one of the runnable guests it was given, or nil (got \(lua.describe(at: -1)))"))
        return nil
    }

    // MARK: Lua values

    /// Pushes the guest's userdata (the same one while Lua holds it).
    func pushGuest(_ g: Guest) {
        lua_rawgeti(L, mg_registryindex(), lua_Integer(guestCache))
        lua_rawgeti(L, -1, lua_Integer(g.index + 1))
        if mg_isnil(L, -1) != 0 {
            mg_pop(L, 1)
            api.guestClass.push(LuaGuest(self, g), in: lua)
            lua_pushvalue(L, -1)
            lua_rawseti(L, -3, lua_Integer(g.index + 1))
        }
        mg_remove(L, -2)
    }

    func eventTable(_ e: VMMEvent) -> [String: TraceValue] {
        var t: [String: TraceValue] = [
            "kind": .string(e.name), "guest": .string(e.guest), "mode_before": .string(e.modeBefore.description),
            "mode_after": .string(e.modeAfter.description), "pc": .integer(Int64(e.pc)),
            "instructions": .integer(Int64(e.instructions)), "text": .string(e.text),
        ]
        switch e.kind {
        case .trap(let c):
            t["cause"] = .string(c.description)
            t["code"] = .integer(Int64(c.rawValue))
        case .reflect(let c, let vector):
            t["cause"] = .string(c.description)
            t["code"] = .integer(Int64(c.rawValue))
            t["vector"] = .integer(Int64(vector))
        case .emulate(let text):
            t["instruction"] = .string(text)
            t["mnemonic"] = .string(String(text.prefix { $0 != " " }))
        case .hiddenFill(let va, let ma, let kseg):
            t["address"] = .integer(Int64(va))
            t["machine"] = .integer(Int64(ma))
            t["kseg"] = .boolean(kseg)
        case .realReturn(let target): t["target"] = .integer(Int64(target))
        case .machineSwitch(let from): if let from { t["from"] = .string(from) }
        case .hypercall(let f): t["number"] = .integer(Int64(f))
        case .device(let s): t["access"] = .string(s)
        case .tlbWrite(let index, let entry, let even, let odd):
            t["index"] = .integer(Int64(index))
            t["entryhi"] = .integer(Int64(entry.entryHi))
            t["entrylo0"] = .integer(Int64(entry.entryLo0))
            t["entrylo1"] = .integer(Int64(entry.entryLo1))
            t["pagemask"] = .integer(Int64(entry.pageMask))
            if let even { t["machine0"] = .integer(Int64(even)) }
            if let odd { t["machine1"] = .integer(Int64(odd)) }
        case .idle(let how): t["how"] = .string(how)
        case .wake, .powerOff, .asidRollover: break
        }
        return t
    }

    func statistics(_ g: Guest) -> [String: TraceValue] {
        let s = g.statistics
        return [
            "exits": .integer(Int64(s.traps.reduce(0, +))), "hidden_fills": .integer(Int64(s.hiddenTLBFills)),
            "kseg_fills": .integer(Int64(s.ksegFills)), "reflected_tlb_misses": .integer(Int64(s.reflectedTLBMisses)),
            "device_accesses": .integer(Int64(s.deviceAccesses)), "hypercalls": .integer(Int64(s.hypercalls)),
            "kernel_instructions": .integer(Int64(s.kernelInstructions)), "user_instructions": .integer(Int64(s.userInstructions)),
            "instructions": .integer(Int64(s.instructions)), "spin_instructions": .integer(Int64(s.spinInstructions)),
            "wait_cycles": .integer(Int64(s.waitCycles)), "hypercall_idle_cycles": .integer(Int64(s.hypercallIdleCycles)),
            "switches": .integer(Int64(s.switchesIn)),
        ]
    }
}

/// The VMM's CPU observer while guests have breakpoints, instruction hooks or watches (the CPU
/// holds its observer strongly; the VMM object clears it when it goes).
final class GuestObserver: CPUObserver {
    unowned(unsafe) let owner: LuaVMM
    init(_ owner: LuaVMM) { self.owner = owner }

    func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction { owner.willExecute(at: pc) }
    func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction {
        owner.didAccessMemory(access)
        return .proceed
    }
}

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
                return v.vmm.run(maxInstructions: n ?? .max)
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

    // MARK: guest

    func defineGuest() {
        let c = guestClass
        c.description { g in
            let s = g.guest
            return "magritte.guest(\(s.name), \(s.ramSize >> 20) MiB, pc 0x\(hex(g.vmm.registers(of: s).pc)), \(s.mode), \(state(s)))"
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
        })

        c.method("pause") { g, _ in g.vmm.pause(g.guest); return 0 }
        c.method("resume") { g, _ in g.vmm.resume(g.guest); return 0 }
        c.method("step") { [unowned self] g, call in
            let n = try steps(call.optionalInteger(2) ?? 1)
            let result = try g.owner.run("step", guest: g.guest) { g.vmm.step(g.guest, instructions: n) }
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
