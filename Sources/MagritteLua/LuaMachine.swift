import CMagritteLua
import MagritteCore
import MagritteMachine

/// A machine as Lua sees it: the Malta board plus the console it printed, the hooks and
/// breakpoints scripts installed, the trace of recent events and why the last run stopped.
///
/// It is the CPU's observer while anything is hooked; every callback into Lua runs under
/// `lua_pcall`, and an error there stops the run and is raised again when `run` returns.
final class LuaMachine: CPUObserver {
    let board: Malta
    unowned let api: MagritteLua
    var lua: LuaState { api.lua }

    // Console
    var console: [UInt8] = []
    var sinceRun: [UInt8] = []
    var undelivered: [UInt8] = []
    var echo = false
    var outputPattern: String?

    // Hooks
    var hooks: [Int: Hook] = [:]
    var nextHookID = 1
    var pcHooks: [UInt32: [Int]] = [:]
    var instructionHooks = 0

    // Run state
    var stopInfo: [String: TraceValue]?
    var stopReason: String?
    var pendingError: LuaError?
    var interrupted = false
    var wasPoweredOff = false

    // Trace
    var trace = Ring<TraceRecord>(capacity: 1000)
    var instructionTrace: Ring<UInt32>?

    init(board: Malta, api: MagritteLua) {
        self.board = board
        self.api = api
    }

    var cpu: CPU { board.cpu }

    // MARK: Console

    func received(_ byte: UInt8) {
        console.append(byte)
        sinceRun.append(byte)
        if echo { api.writeOut(byte) }
        if hooks.values.contains(where: { $0.enabled && $0.kind == .output }) {
            undelivered.append(byte)
            if byte == 10 { deliverOutput() }
        }
        // Match after every byte (prompts have no newline) while the output is small; past
        // 64 KiB only at line ends, to keep the cost linear.
        if let pattern = outputPattern, byte == 10 || sinceRun.count < 65536 {
            if matches(pattern) {
                outputPattern = nil
                stop(reason: "output", info: ["pattern": .string(pattern)])
            }
        }
    }

    /// Whether the output of this run matches a Lua pattern (string.find under pcall).
    func matches(_ pattern: String) -> Bool {
        let L = lua.L
        let base = lua_gettop(L)
        defer { lua_settop(L, base) }
        lua_getglobal(L, "string")
        lua_getfield(L, -1, "find")
        sinceRun.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { c in _ = lua_pushlstring(L, c.baseAddress, c.count) }
        }
        lua.push(pattern)
        do {
            try lua.pcall(nargs: 2, nresults: 1)
        } catch {
            fail(LuaError("bad output pattern: \(error.message)"))
            return false
        }
        return mg_isnil(L, -1) == 0
    }

    func deliverOutput() {
        guard !undelivered.isEmpty else { return }
        let text = String(decoding: undelivered, as: UTF8.self)
        undelivered.removeAll()
        for (id, h) in hooks.sorted(by: { $0.key < $1.key }) where h.enabled && h.kind == .output {
            _ = callHook(id) { self.lua.push(text); return 1 }
        }
    }

    // MARK: Running

    /// Runs the board; returns the reason and details, or throws the error a callback raised.
    func run(steps: UInt64?, until pattern: String?) throws(LuaError) -> (String, [String: TraceValue]) {
        stopInfo = nil
        stopReason = nil
        interrupted = false
        sinceRun.removeAll()
        outputPattern = pattern
        if let pattern, matches(pattern) { return ("output", ["pattern": .string(pattern)]) }
        wasPoweredOff = board.poweredOff
        api.running = self
        let outcome = board.run(maxInstructions: steps ?? .max)
        api.running = nil
        outputPattern = nil
        deliverOutput()
        if board.poweredOff && !wasPoweredOff {
            trace.append(TraceRecord(kind: "poweroff", pc: cpu.pc, instructions: cpu.retiredInstructions, text: "power off"))
            for (id, h) in hooks.sorted(by: { $0.key < $1.key }) where h.enabled && h.kind == .poweroff {
                _ = callHook(id) { 0 }
            }
        }
        if let e = pendingError {
            pendingError = nil
            throw e
        }
        if interrupted { return ("interrupted", ["pc": .integer(Int64(cpu.pc))]) }
        if let reason = stopReason, outcome == .stopped || outcome == .poweredOff && reason == "output" {
            return (reason, stopInfo ?? [:])
        }
        switch outcome {
        case .poweredOff: return ("poweroff", [:])
        case .instructionLimit: return ("steps", [:])
        case .deadlock: return ("deadlock", ["pc": .integer(Int64(cpu.pc))])
        case .stopped: return (stopReason ?? "stopped", stopInfo ?? [:])
        }
    }

    func stop(reason: String, info: [String: TraceValue]) {
        if stopReason == nil {
            stopReason = reason
            stopInfo = info
        }
        cpu.requestStop()
    }

    func fail(_ error: LuaError) {
        if pendingError == nil { pendingError = error }
        cpu.requestStop()
    }

    // MARK: Hooks

    /// Calls the Lua function of hook `id` with the arguments `push` leaves on the stack.
    /// Returns the callback's first result as a string ("stop" stops the run), or nil.
    @discardableResult
    func callHook(_ id: Int, push: () -> Int32) -> String? {
        guard let h = hooks[id], let ref = h.function else { return nil }
        let L = lua.L
        let base = lua_gettop(L)
        defer { lua_settop(L, base) }
        lua_rawgeti(L, mg_registryindex(), lua_Integer(ref))
        let n = push()
        do {
            try lua.pcall(nargs: n, nresults: 1)
        } catch {
            fail(error)
            return nil
        }
        if lua_type(L, -1) == LUA_TSTRING { return lua.string(at: -1) }
        if lua_type(L, -1) == LUA_TBOOLEAN { return lua_toboolean(L, -1) != 0 ? "true" : "false" }
        return nil
    }

    /// A hook fired: call its function (if any) and stop the run when it is a breakpoint (and its
    /// condition holds) or its callback returned "stop".
    func fire(_ id: Int, reason: String, info: [String: TraceValue], event: (() -> Int32)? = nil) {
        guard let h = hooks[id], h.enabled else { return }
        hooks[id]!.hits += 1
        if h.isBreakpoint {
            if h.function != nil {
                let r = callHook(id) { event?() ?? 0 }
                guard r == "true" else { return }
            }
            var i = info
            i["hook"] = .integer(Int64(id))
            stop(reason: reason, info: i)
        } else if callHook(id, push: { event?() ?? 0 }) == "stop" {
            var i = info
            i["hook"] = .integer(Int64(id))
            stop(reason: "callback", info: i)
        }
    }

    func add(_ hook: Hook) -> Int {
        let id = nextHookID
        nextHookID += 1
        hooks[id] = hook
        hooksChanged()
        return id
    }

    func remove(_ id: Int) {
        guard let h = hooks.removeValue(forKey: id) else { return }
        if let ref = h.function { luaL_unref(lua.L, mg_registryindex(), ref) }
        hooksChanged()
    }

    /// Recomputes what the CPU must report: observer, per-instruction loop, memory watches.
    func hooksChanged() {
        pcHooks = [:]
        instructionHooks = 0
        var watches: [ClosedRange<UInt32>] = []
        for (id, h) in hooks where h.enabled {
            switch h.kind {
            case .pc(let pc): pcHooks[pc, default: []].append(id)
            case .instruction: instructionHooks += 1
            case .memory(let range, _, _): watches.append(range)
            default: break
            }
        }
        cpu.observer = self
        cpu.observesInstructions = !pcHooks.isEmpty || instructionHooks > 0 || instructionTrace != nil
        if cpu.memoryWatches != watches { cpu.memoryWatches = watches }
    }

    // MARK: CPUObserver

    func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction {
        instructionTrace?.append(pc)
        if instructionHooks > 0 {
            for (id, h) in hooks where h.enabled && h.kind == .instruction {
                fire(id, reason: "instruction", info: ["pc": .integer(Int64(pc))]) {
                    self.lua.push(pc)
                    return 1
                }
            }
        }
        if let ids = pcHooks[pc] {
            for id in ids {
                fire(id, reason: "breakpoint", info: ["pc": .integer(Int64(pc))]) {
                    self.lua.push(pc)
                    return 1
                }
            }
        }
        return stopReason != nil || pendingError != nil ? .stop : .proceed
    }

    func cpu(_ cpu: CPU, didTakeException trap: Trap) -> ObserverAction {
        let info = exceptionInfo(trap)
        trace.append(TraceRecord(kind: "exception", pc: trap.pc, instructions: cpu.retiredInstructions,
                                 text: "\(trap.code)\(trap.isRefill ? " (refill)" : "") at 0x\(hex(trap.pc))\(trap.inDelaySlot ? " in a delay slot" : "")\(trap.badVAddr.map { ", BadVAddr 0x\(hex($0))" } ?? "")"))
        for (id, h) in hooks.sorted(by: { $0.key < $1.key }) {
            guard case .exception(let code) = h.kind, code == nil || code == trap.code else { continue }
            fire(id, reason: "exception", info: info) { self.pushTable(info); return 1 }
        }
        return .proceed
    }

    func exceptionInfo(_ trap: Trap) -> [String: TraceValue] {
        var info: [String: TraceValue] = [
            "cause": .string(trap.code.description), "code": .integer(Int64(trap.code.rawValue)),
            "pc": .integer(Int64(trap.pc)), "epc": .integer(Int64(trap.restartPC)),
            "delay_slot": .boolean(trap.inDelaySlot), "refill": .boolean(trap.isRefill),
            "instructions": .integer(Int64(cpu.retiredInstructions)),
        ]
        if let b = trap.badVAddr { info["badvaddr"] = .integer(Int64(b)) }
        return info
    }

    func cpu(_ cpu: CPU, didChangeMode change: ModeChange) -> ObserverAction {
        let info: [String: TraceValue] = [
            "from": .string(change.from.description), "to": .string(change.to.description),
            "cause": .string(Names.cause(change.cause)), "pc": .integer(Int64(change.pc)),
            "instructions": .integer(Int64(cpu.retiredInstructions)),
        ]
        trace.append(TraceRecord(kind: "mode", pc: change.pc, instructions: cpu.retiredInstructions,
                                 text: "\(change.from) -> \(change.to) (\(Names.cause(change.cause)))"))
        for (id, h) in hooks.sorted(by: { $0.key < $1.key }) {
            guard case .mode(let from, let to) = h.kind else { continue }
            if let from, from != change.from { continue }
            if let to, to != change.to { continue }
            fire(id, reason: "mode_change", info: info) { self.pushTable(info); return 1 }
        }
        return .proceed
    }

    func cpu(_ cpu: CPU, didWriteTLB index: Int, entry: TLBEntry, pc: UInt32) -> ObserverAction {
        let info: [String: TraceValue] = [
            "index": .integer(Int64(index)), "entryhi": .integer(Int64(entry.entryHi)),
            "entrylo0": .integer(Int64(entry.entryLo0)), "entrylo1": .integer(Int64(entry.entryLo1)),
            "pagemask": .integer(Int64(entry.pageMask)), "pc": .integer(Int64(pc)),
            "instructions": .integer(Int64(cpu.retiredInstructions)),
        ]
        trace.append(TraceRecord(kind: "tlb_write", pc: pc, instructions: cpu.retiredInstructions,
                                 text: "TLB[\(index)] = EntryHi 0x\(hex(entry.entryHi)) Lo0 0x\(hex(entry.entryLo0)) Lo1 0x\(hex(entry.entryLo1))"))
        for (id, h) in hooks.sorted(by: { $0.key < $1.key }) where h.kind == .tlbWrite {
            fire(id, reason: "tlb_write", info: info) { self.pushTable(info); return 1 }
        }
        return .proceed
    }

    func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction {
        let info: [String: TraceValue] = [
            "address": .integer(Int64(access.virtual)), "physical": .integer(Int64(access.physical)),
            "size": .integer(Int64(access.size)), "value": .integer(Int64(access.value)),
            "write": .boolean(access.isWrite), "pc": .integer(Int64(access.pc)),
        ]
        for (id, h) in hooks.sorted(by: { $0.key < $1.key }) {
            guard case .memory(let range, let reads, let writes) = h.kind else { continue }
            guard access.isWrite ? writes : reads else { continue }
            guard access.virtual <= range.upperBound && access.virtual &+ UInt32(access.size - 1) >= range.lowerBound else { continue }
            fire(id, reason: "watch", info: info) { self.pushTable(info); return 1 }
        }
        return .proceed
    }

    // MARK: Helpers

    func pushTable(_ info: [String: TraceValue]) {
        let L = lua.L
        lua_createtable(L, 0, Int32(info.count))
        for (k, v) in info {
            v.push(lua)
            lua_setfield(L, -2, k)
        }
    }
}

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

/// What a hook listens for.
enum HookKind: Equatable {
    case pc(UInt32)
    case instruction
    case mode(from: Mode?, to: Mode?)
    case exception(ExceptionCode?)
    case tlbWrite
    case memory(ClosedRange<UInt32>, reads: Bool, writes: Bool)
    case output
    case poweroff
}

struct Hook {
    var kind: HookKind
    /// Registry reference of the Lua function (callback, or breakpoint condition).
    var function: Int32?
    var isBreakpoint: Bool
    var enabled = true
    var hits = 0
    var description: String
}

/// One event kept in the machine's bounded trace.
struct TraceRecord {
    var kind: String
    var pc: UInt32
    var instructions: UInt64
    var text: String
}

/// A fixed-capacity ring buffer (oldest entries are dropped).
struct Ring<T> {
    private(set) var items: [T] = []
    private var head = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    mutating func append(_ x: T) {
        if items.count < capacity {
            items.append(x)
        } else {
            items[head] = x
            head = (head + 1) % capacity
        }
    }

    /// Oldest first.
    var ordered: [T] { Array(items[head...] + items[..<head]) }
}

func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 8 - s.count)) + s
}
