import CMagritteLua
import MagritteCore
import MagritteMachine

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A machine as Lua sees it: the Malta board plus the console it printed, the hooks and
/// breakpoints scripts installed, the trace of recent events and why the last run stopped.
///
/// It observes the CPU through `ObserverProxy` and the console through the UART's output
/// closure, neither of which retains it, so a machine that Lua has collected is freed. Every callback into Lua runs under `lua_pcall`; an error there stops
/// the run and is raised again when `run` returns.
///
/// Cost: an event nobody listens for only appends a compact record to the trace (its text is
/// made when `m:trace()` asks for it); hooks are kept in per-kind lists so an event finds its
/// listeners without walking a dictionary, and the per-instruction path allocates nothing.
final class LuaMachine: HookOwner {
    let board: Malta
    unowned(unsafe) let api: MagritteLua
    /// The Lua state (unowned: it owns this machine through its userdata).
    unowned(unsafe) let lua: LuaState
    let cpu: CPU

    // Console
    var console: [UInt8] = []
    var sinceRun: [UInt8] = []
    var undelivered: [UInt8] = []
    var echo = false
    /// With `echo`: what was written to the host (each byte once, re-execution included).
    var echoed = EchoTranscript()
    var outputPattern: String?
    /// Where the current (unfinished) line of `sinceRun` starts: `until_output` is tried on it.
    var lineStart = 0
    /// Checkpoints for going back (`m:time_travel()`), nil until asked for.
    var timeTravel: TimeTravel?

    // Hooks by id, and the enabled ones by kind (in id order).
    var hooks: [Int: Hook] = [:]
    var nextHookID = 1
    var pcHooks: [UInt32: [Hook]] = [:]
    var instructionHooks: [Hook] = []
    /// `instructionHooks` again, unretained, for the per-instruction path (no reference
    /// counting there).
    var instructionHookList = UnmanagedList<Hook>()
    var exceptionHooks: [Hook] = []
    var modeHooks: [Hook] = []
    var tlbHooks: [Hook] = []
    var memoryHooks: [Hook] = []
    var outputHooks: [Hook] = []
    var poweroffHooks: [Hook] = []

    // Run state
    var stopInfo: [String: TraceValue]?
    var stopReason: String?
    var pendingError: LuaError?
    var interrupted = false
    var wasPoweredOff = false
    /// Whether the CPU may report events now (inside `run`, or inside `outsideRun`).
    var inRun = false
    /// Whether `run` is on the stack (a callback must not run, load or reset the machine).
    var running = false
    /// The pc at which the CPU last stopped because `willExecute` said so, while the CPU may
    /// still skip the observer there once (see `run`).
    var observerStop: UInt32?
    /// Whether the board is inside its run loop, where a stop request is consumed. (The CPU
    /// keeps a request made between runs for the next one.)
    var executing = false
    /// Hooks removed and per-instruction lists replaced while the CPU could be walking them:
    /// kept until it cannot (`collect()`).
    var removedHooks: [Hook] = []
    var replacedLists: [UnmanagedList<Hook>] = []

    // Trace
    var trace = FixedRing<TraceRecord>(capacity: 1000)
    var instructionTrace = FixedRing<UInt32>(capacity: 1)
    var tracingInstructions = false
    /// While `run` is on the stack: the absolute stack index of the traceback handler it pushed
    /// for the callbacks' `lua_pcall` (0: push one per call).
    var messageHandler: Int32 = 0

    init(board: Malta, api: MagritteLua) {
        self.board = board
        self.api = api
        self.lua = api.lua
        self.cpu = board.cpu
        cpu.observer = ObserverProxy(self)
        // The machine owns the board, so the board must not retain it (nor weakly: a weak
        // reference would move every retain of the machine to the slow, side-table path).
        board.uart.output = { [unowned(unsafe) self] byte in self.received(byte) }
    }

    deinit {
        cpu.observer = nil
        board.uart.output = nil
        instructionHookList.free()
        instructionTrace.free()
        trace.free()
        // Lua collects machines before it closes the state, so the registry is still there.
        for h in hooks.values { if let ref = h.function { luaL_unref(L, mg_registryindex(), ref) } }
    }

    /// The retired-instruction counter, exact inside a run too: the CPU publishes its position
    /// in the batch (`currentCycles`) before every call out of its loop, the `ll` and `mtc0`
    /// paths included. (Guarded all the same: a faulted instruction is counted at once.)
    var retired: UInt64 {
        let executed = cpu.currentCycles &- cpu.idleCycles
        return executed >= cpu.faultedInstructions ? executed - cpu.faultedInstructions : 0
    }

    // MARK: Console

    func received(_ byte: UInt8) {
        console.append(byte)
        sinceRun.append(byte)
        if echo && echoed.isNew(console, from: console.count - 1) { api.writeOut(byte) }
        if !outputHooks.isEmpty {
            undelivered.append(byte)
            if byte == 10 { deliverOutput() }
        }
        // Tried on the current line (its newline included once it comes), after every byte
        // so that prompts without a newline match; a line past 4 KiB only at its end. Each
        // byte costs at most one match over one line, however long the output grows.
        if let pattern = outputPattern {
            if byte == 10 || sinceRun.count - lineStart <= Self.partialLineLimit, matches(pattern) {
                outputPattern = nil
                stop(reason: "output", info: ["pattern": .string(pattern)])
            }
            if byte == 10 { lineStart = sinceRun.count }
        }
    }

    /// The longest unfinished line `until_output` is tried on after every byte.
    static let partialLineLimit = 4096

    /// Whether the current line of this run's output matches a Lua pattern (string.find under
    /// pcall).
    func matches(_ pattern: String) -> Bool {
        find(pattern) {
            sinceRun.withUnsafeBufferPointer { b in
                b.withMemoryRebound(to: CChar.self) { c in
                    _ = lua_pushlstring(L, c.baseAddress.map { $0 + lineStart }, c.count - lineStart)
                }
            }
        }
    }

    /// Calls the output callbacks with the complete lines received (or the rest, at the end of
    /// a run).
    func deliverOutput() {
        guard !undelivered.isEmpty else { return }
        let text = String(decoding: undelivered, as: UTF8.self)
        undelivered.removeAll()
        for h in outputHooks {
            fire(h, reason: "output", info: ["text": .string(text)]) { self.lua.push(text); return 1 }
        }
    }

    // MARK: Running

    /// Runs the board; returns the reason and details, or throws the error a callback raised.
    func run(steps: UInt64?, until pattern: String?) throws(LuaError) -> (String, [String: TraceValue]) {
        guard !running else {
            throw LuaError("the machine is already running (a callback cannot run or step it: return \"stop\" or call m:stop())")
        }
        stopInfo = nil
        stopReason = nil
        pendingError = nil
        interrupted = false
        sinceRun.removeAll()
        lineStart = 0
        outputPattern = pattern
        if let pattern, matches(pattern) { return ("output", ["pattern": .string(pattern)]) }
        if let e = pendingError {
            pendingError = nil
            throw e
        }
        wasPoweredOff = board.poweredOff
        timeTravel?.discardFuture()  // the state may have been changed by hand since
        let outer = api.running
        api.running = self
        running = true
        inRun = true
        let base = lua_gettop(L)
        lua_pushcclosure(L, mg_traceback, 0)
        messageHandler = lua_gettop(L)
        executing = true
        var outcome: RunOutcome
        let budget = steps ?? .max
        if let p = observerStop, p == cpu.pc, !cpu.observesInstructions, budget > 0 {
            // The CPU skips the observer once at the pc where it last stopped for it, and
            // forgets that only when its observing loop gets there. Resuming there with the
            // ordinary loop would leave the skip pending, to swallow a later breakpoint or
            // stop at that pc: run the first instruction with the observing loop.
            observerStop = nil
            cpu.observesInstructions = true
            outcome = board.run(maxInstructions: 1)
            cpu.observesInstructions = observesInstructions
            if outcome == .instructionLimit && stopReason == nil && pendingError == nil && budget > 1 {
                outcome = board.run(maxInstructions: budget == .max ? .max : budget - 1)
            }
        } else {
            outcome = board.run(maxInstructions: budget)
        }
        executing = false
        cpu.observesInstructions = observesInstructions
        outputPattern = nil
        deliverOutput()
        if board.poweredOff && !wasPoweredOff {
            trace.append(TraceRecord(event: .poweroff(pc: cpu.pc), instructions: retired))
            for h in poweroffHooks { fire(h, reason: "poweroff", info: [:]) { 0 } }
        }
        messageHandler = 0
        lua_settop(L, base)
        inRun = false
        running = false
        api.running = outer
        collect()
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
        case .outOfHostMemory: throw LuaError("\(CPU.outOfHostMemoryMessage) at pc 0x\(String(cpu.pc, radix: 16))")
        }
    }

    /// Runs `body`, which may make the CPU report events outside a run (m:raise, a CP0 write):
    /// callbacks run, there is nothing to stop, and an error a callback raised is raised here
    /// (not at the next run).
    func outsideRun<T>(_ body: () throws -> T) throws -> T {
        guard !inRun else {
            // From a callback of this machine's run: its stack frame may not be the current one.
            let handler = messageHandler
            messageHandler = 0
            defer { messageHandler = handler }
            return try body()
        }
        pendingError = nil
        inRun = true
        let result = Result { try body() }
        inRun = false
        collect()
        stopReason = nil
        stopInfo = nil
        if let e = pendingError {
            pendingError = nil
            throw e
        }
        return try result.get()
    }

    /// Ends the current run at the next instruction boundary (nothing outside a run).
    func stop(reason: String, info: [String: TraceValue]) {
        guard inRun else { return }
        if stopReason == nil {
            stopReason = reason
            stopInfo = info
        }
        requestStop()
    }

    func fail(_ error: LuaError) {
        if pendingError == nil { pendingError = error }
        requestStop()
    }

    /// Asks the CPU to stop at the next instruction boundary. The CPU takes an interrupt
    /// between batches, and the batch that follows clears the request's batch break, so a stop
    /// asked for from that interrupt's callbacks would only be seen when the batch ends (up to a
    /// million instructions later, deep in the handler). Observing instructions makes the CPU
    /// ask `willExecute`, which stops before the first one; `run` restores the flag.
    func requestStop() {
        guard executing else { return }
        cpu.requestStop()
        cpu.observesInstructions = true
    }

    // MARK: Hooks

    /// Frees what callbacks removed or replaced during a run, once nothing walks it.
    func collect() {
        guard !inRun else { return }
        removedHooks.removeAll()
        for var list in replacedLists { list.free() }
        replacedLists.removeAll()
    }

    /// Recomputes what the CPU must report: per-kind lists, per-instruction loop, memory watches.
    func hooksChanged() {
        pcHooks = [:]
        instructionHooks = []
        defer {
            // The CPU may be walking the old list (a callback added or removed a hook).
            if inRun { replacedLists.append(instructionHookList) } else { instructionHookList.free() }
            instructionHookList = UnmanagedList(instructionHooks)
        }
        exceptionHooks = []
        modeHooks = []
        tlbHooks = []
        memoryHooks = []
        outputHooks = []
        poweroffHooks = []
        var watches: [ClosedRange<UInt32>] = []
        for (_, h) in hooks.sorted(by: { $0.key < $1.key }) where h.enabled {
            switch h.kind {
            case .pc(let pc): pcHooks[pc, default: []].append(h)
            case .instruction: instructionHooks.append(h)
            case .exception: exceptionHooks.append(h)
            case .mode: modeHooks.append(h)
            case .tlbWrite: tlbHooks.append(h)
            case .memory(let range, _, _):
                memoryHooks.append(h)
                watches.append(range)
            case .output: outputHooks.append(h)
            case .poweroff: poweroffHooks.append(h)
            case .vmm: break
            }
        }
        cpu.observesInstructions = observesInstructions
        let breakpoints = Set(pcHooks.keys)
        if cpu.observedPCs != breakpoints { cpu.observedPCs = breakpoints }
        if cpu.memoryWatches != watches { cpu.memoryWatches = watches }
    }

    /// Whether the CPU must report every instruction (an instruction hook, the instruction
    /// trace); pc hooks are the CPU's `observedPCs`.
    var observesInstructions: Bool { !instructionHooks.isEmpty || tracingInstructions }

    // MARK: Events (from ObserverProxy)

    @inline(__always)
    func willExecute(at pc: UInt32) -> ObserverAction {
        if tracingInstructions { instructionTrace.append(pc) }
        let list = instructionHookList
        for i in 0..<list.count {
            list[i]._withUnsafeGuaranteedRef { h in
                fire(h, reason: "instruction", info: ["pc": .integer(Int64(pc))]) {
                    lua_pushinteger(L, lua_Integer(pc))
                    return 1
                }
            }
        }
        if !pcHooks.isEmpty, let hs = pcHooks[pc] {
            for h in hs {
                fire(h, reason: "breakpoint", info: ["pc": .integer(Int64(pc))]) {
                    lua_pushinteger(L, lua_Integer(pc))
                    return 1
                }
            }
        }
        if pc == observerStop { observerStop = nil }  // the CPU asked: no skip pending
        if stopReason != nil || pendingError != nil {
            observerStop = pc
            return .stop
        }
        return .proceed
    }

    func didTakeException(_ trap: Trap) {
        trace.append(TraceRecord(event: .exception(trap), instructions: retired))
        guard inRun, !exceptionHooks.isEmpty else { return }
        var info: [String: TraceValue]?  // made for the first hook that wants this exception
        for h in exceptionHooks {
            guard case .exception(let code) = h.kind, code == nil || code == trap.code else { continue }
            let i = info ?? exceptionInfo(trap)
            info = i
            fire(h, reason: "exception", info: i) { self.pushTable(i); return 1 }
        }
    }

    func exceptionInfo(_ trap: Trap) -> [String: TraceValue] {
        var info: [String: TraceValue] = [
            "cause": .string(trap.code.description), "code": .integer(Int64(trap.code.rawValue)),
            "pc": .integer(Int64(trap.pc)), "epc": .integer(Int64(trap.restartPC)),
            "delay_slot": .boolean(trap.inDelaySlot), "refill": .boolean(trap.isRefill),
            "instructions": .integer(Int64(retired)),
        ]
        if let b = trap.badVAddr { info["badvaddr"] = .integer(Int64(b)) }
        return info
    }

    func didChangeMode(_ change: ModeChange) {
        trace.append(TraceRecord(event: .mode(change), instructions: retired))
        guard inRun, !modeHooks.isEmpty else { return }
        var info: [String: TraceValue]?  // made for the first hook that wants this change
        for h in modeHooks {
            guard case .mode(let from, let to) = h.kind else { continue }
            if let from, from != change.from { continue }
            if let to, to != change.to { continue }
            let i = info ?? [
                "from": .string(change.from.description), "to": .string(change.to.description),
                "cause": .string(Names.cause(change.cause)), "pc": .integer(Int64(change.pc)),
                "instructions": .integer(Int64(retired)),
            ]
            info = i
            fire(h, reason: "mode_change", info: i) { self.pushTable(i); return 1 }
        }
    }

    func didWriteTLB(_ index: Int, entry: TLBEntry, pc: UInt32) {
        trace.append(TraceRecord(event: .tlbWrite(index: index, entry: entry, pc: pc), instructions: retired))
        guard inRun, !tlbHooks.isEmpty else { return }
        let info: [String: TraceValue] = [
            "index": .integer(Int64(index)), "entryhi": .integer(Int64(entry.entryHi)),
            "entrylo0": .integer(Int64(entry.entryLo0)), "entrylo1": .integer(Int64(entry.entryLo1)),
            "pagemask": .integer(Int64(entry.pageMask)), "pc": .integer(Int64(pc)),
            "instructions": .integer(Int64(retired)),
        ]
        for h in tlbHooks {
            fire(h, reason: "tlb_write", info: info) { self.pushTable(info); return 1 }
        }
    }

    func didAccessMemory(_ access: MemoryAccess) {
        guard inRun else { return }
        var info: [String: TraceValue]?
        for h in memoryHooks {
            guard case .memory(let range, let reads, let writes) = h.kind else { continue }
            guard access.isWrite ? writes : reads else { continue }
            guard access.virtual <= range.upperBound && access.virtual &+ UInt32(access.size - 1) >= range.lowerBound else { continue }
            let i = info ?? [
                "address": .integer(Int64(access.virtual)), "physical": .integer(Int64(access.physical)),
                "size": .integer(Int64(access.size)), "value": .integer(Int64(access.value)),
                "write": .boolean(access.isWrite), "pc": .integer(Int64(access.pc)),
            ]
            info = i
            fire(h, reason: "watch", info: i) { self.pushTable(i); return 1 }
        }
    }
}

/// The CPU's observer for a machine. The CPU holds its observer strongly and the machine holds
/// the board, and so the CPU: this proxy breaks that cycle. The machine clears `cpu.observer`
/// when it goes away, so `machine` is never used after that.
final class ObserverProxy: CPUObserver {
    unowned(unsafe) let machine: LuaMachine
    let unmanaged: Unmanaged<LuaMachine>
    init(_ m: LuaMachine) {
        machine = m
        unmanaged = .passUnretained(m)
    }

    func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction {
        unmanaged._withUnsafeGuaranteedRef { $0.willExecute(at: pc) }
    }
    func cpu(_ cpu: CPU, didTakeException trap: Trap) -> ObserverAction {
        machine.didTakeException(trap)
        return .proceed
    }
    func cpu(_ cpu: CPU, didChangeMode change: ModeChange) -> ObserverAction {
        machine.didChangeMode(change)
        return .proceed
    }
    func cpu(_ cpu: CPU, didWriteTLB index: Int, entry: TLBEntry, pc: UInt32) -> ObserverAction {
        machine.didWriteTLB(index, entry: entry, pc: pc)
        return .proceed
    }
    func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction {
        machine.didAccessMemory(access)
        return .proceed
    }
}

/// A fixed-capacity ring (the oldest values are dropped) in memory of its own: no copy-on-write
/// checks where events and instructions are recorded. `free()` releases it.
struct FixedRing<T> {
    let buffer: UnsafeMutablePointer<T>
    let capacity: Int
    var count = 0
    var head = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        buffer = .allocate(capacity: self.capacity)
    }

    func free() {
        buffer.deinitialize(count: count)  // slots 0..<count are initialized
        buffer.deallocate()
    }

    @inline(__always)
    mutating func append(_ x: T) {
        if count < capacity { (buffer + head).initialize(to: x) } else { buffer[head] = x }
        head += 1
        if head == capacity { head = 0 }
        if count < capacity { count += 1 }
    }

    /// Oldest first.
    var ordered: [T] {
        (0..<count).map { buffer[(head - count + $0 + capacity) % capacity] }
    }
}

/// Unretained references to objects that something else keeps alive (here: `hooks`), for loops
/// that must not touch reference counts. `free()` releases the storage.
struct UnmanagedList<T: AnyObject> {
    private(set) var base: UnsafeMutablePointer<Unmanaged<T>>?
    private(set) var count = 0

    init() {}

    init(_ objects: [T]) {
        count = objects.count
        guard count > 0 else { return }
        base = .allocate(capacity: count)
        for (i, o) in objects.enumerated() { (base! + i).initialize(to: .passUnretained(o)) }
    }

    mutating func free() {
        base?.deallocate()
        base = nil
        count = 0
    }

    subscript(i: Int) -> Unmanaged<T> { base.unsafelyUnwrapped[i] }
}

