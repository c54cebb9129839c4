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
    /// while there are pc, instruction or memory hooks. Pc hooks are the CPU's `observedPCs`
    /// (every guest's, so guests run translated up to them; `willExecute` fires only the hooks of
    /// the guest running), instruction hooks make it observe every instruction of their guests
    /// (`VMM.instructionObservedGuests`: the other guests run translated).
    var pcHooks: [UInt32: [Hook]] = [:]
    var instructionHooks: [Hook] = []
    var memoryHooks: [Hook] = []
    var modeHooks: [Hook] = []
    /// Per guest index, the pc where a breakpoint of that guest last stopped the run, and the
    /// guest's retired count there: resuming there runs the instruction instead of stopping
    /// again (even after other guests ran). The count tells a later visit from the resumption,
    /// which the CPU may not report (it skips the observer once where it stopped).
    var resumeAt: [Int: (pc: UInt32, retired: UInt64)] = [:]
    /// Per guest index, the pc and the guest's retired count at the last instruction reported:
    /// the same again is the instruction retried after a fault the VMM handled unseen (a hidden
    /// TLB fill), which the guest does not see run twice, so neither do its hooks.
    var lastReported: [Int: (pc: UInt32, retired: UInt64)] = [:]
    /// Hooks removed while a run may be walking the lists (kept until it ends).
    var removedHooks: [Hook] = []
    /// The history `vmm:time_travel{}` records (MagritteLua+VMMSnapshot.swift); runs go through it.
    var timeTravel: VMMTimeTravel?

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
    /// With `echo`: what was written to the host of each guest's console (each line once,
    /// re-execution included).
    var echoed: [ObjectIdentifier: EchoTranscript] = [:]
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
        // The callbacks this object gave the VMM and its CPU reach it unretained: clear them, so
        // that nothing calls into it if the VMM outlives it. (The VMM and its RAM go with this
        // object: nothing else holds the VMM, and its CPU holds the VMM, its trap handler,
        // unowned; the VMM clears that itself when it goes.)
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
        if !pcHooks.isEmpty || !instructionHooks.isEmpty || !watches.isEmpty {
            if vmm.cpu.observer == nil { vmm.cpu.observer = GuestObserver(self) }
        } else if vmm.cpu.observer != nil {
            vmm.cpu.observer = nil
        }
        // Instruction hooks: only their guests' instructions are observed, the others run translated.
        vmm.instructionObservedGuests = instructionHooks.isEmpty ? nil : Set(instructionHooks.compactMap(\.guestIndex))
        if instructionHooks.isEmpty { vmm.cpu.observesInstructions = false }
        let pcs = Set(pcHooks.keys)
        if vmm.cpu.observedPCs != pcs { vmm.cpu.observedPCs = pcs }
        if vmm.cpu.memoryWatches != watches { vmm.cpu.memoryWatches = watches }
    }

    // MARK: Events of single guests (from GuestObserver and the trace)

    /// Before each instruction while guests have instruction hooks, else before those at the
    /// pcs of pc hooks: those of the guest loaded on the CPU fire; a stop ends the run before
    /// the instruction.
    func willExecute(at pc: UInt32) -> ObserverAction {
        guard inRun, let g = vmm.current else { return .proceed }
        let retired = vmm.retiredInstructions(of: g)
        if let l = lastReported[g.index], l.pc == pc, l.retired == retired { return .proceed }
        lastReported[g.index] = (pc, retired)

        if let r = resumeAt.removeValue(forKey: g.index), r.pc == pc, r.retired == retired { return .proceed }
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
            resumeAt[g.index] = (pc, retired)
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

    /// Whether `g`'s newest console line (it ends the console) is new to the host.
    private func isNewLine(_ g: Guest) -> Bool {
        let c = g.console
        var start = c.count - 1
        while start > 0 && c[start - 1] != 10 { start -= 1 }
        return echoed[ObjectIdentifier(g), default: EchoTranscript()].isNew(c, from: max(start, 0))
    }

    func consoleLine(_ g: Guest, _ line: String) {
        if echo && isNewLine(g) {
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
            "switches": .integer(Int64(s.switchesIn)), "clustered": .integer(Int64(s.clusteredInstructions)),
            "polled": .integer(Int64(s.polledInstructions)), "polled_device_accesses": .integer(Int64(s.polledDeviceAccesses)),
            "mapped_device_accesses": .integer(Int64(s.mappedDeviceAccesses)),
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
