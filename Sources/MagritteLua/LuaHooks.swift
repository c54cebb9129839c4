import CMagritteLua
import MagritteCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What owns hooks and calls their Lua functions during its runs: a machine (`LuaMachine`) or a
/// VMM (`LuaVMM`). Handles reach the hooks through it; the calling, counting and stopping are
/// the same for both.
protocol HookOwner: AnyObject {
    var lua: LuaState { get }
    var hooks: [Int: Hook] { get set }
    var nextHookID: Int { get set }
    /// Whether callbacks may run now (the hook lists may be walked).
    var inRun: Bool { get }
    /// Hooks removed while the lists could be walked, kept until they cannot.
    var removedHooks: [Hook] { get set }
    /// While a run is on the stack: the absolute stack index of its traceback handler (0: none).
    var messageHandler: Int32 { get }
    /// Recomputes what to listen for after hooks were added, removed, enabled or disabled.
    func hooksChanged()
    /// Ends the current run with `reason` (nothing outside a run).
    func stop(reason: String, info: [String: TraceValue])
    /// A callback failed: keep the error for the caller of `run`, stop the run.
    func fail(_ error: LuaError)
}

/// What a Lua callback returned.
enum CallResult {
    /// An error (kept by `fail`), or nothing, nil or false.
    case falsy
    case truthy
    /// The string "stop".
    case stop
}

extension HookOwner {
    /// The Lua thread to call back on: the one that called the method running now.
    var L: OpaquePointer { lua.L }

    /// The stack index of the traceback handler for a callback's `lua_pcall`: the run's, or one
    /// pushed now (outside a run).
    @inline(__always)
    func callbackHandler() -> Int32 {
        if messageHandler != 0 { return messageHandler }
        lua_pushcclosure(L, mg_traceback, 0)
        return lua_gettop(L)
    }

    /// Whether the string `pushSubject` pushes matches a Lua pattern (string.find under pcall;
    /// a bad pattern fails the run).
    func find(_ pattern: String, pushSubject: () -> Void) -> Bool {
        let base = lua_gettop(L)
        defer { lua_settop(L, base) }
        let handler = callbackHandler()
        pushSubject()
        lua.push(pattern)
        // string.find is looked up inside the protected call (a script may have replaced it).
        if mg_pfind(L, handler) != LUA_OK {
            fail(LuaError("bad output pattern: \(lua.string(at: -1) ?? "(error object is not a string)")"))
            return false
        }
        return mg_isnil(L, -1) == 0
    }

    /// Installs `hook` and returns its id.
    func add(_ hook: Hook) -> Int {
        let id = nextHookID
        nextHookID += 1
        hook.id = id
        hooks[id] = hook
        hooksChanged()
        return id
    }

    /// Uninstalls hook `id` (one removed while the lists may be walked is kept until they are not).
    func remove(_ id: Int) {
        guard let h = hooks.removeValue(forKey: id) else { return }
        h.enabled = false  // a list being walked right now skips it
        if let ref = h.function { luaL_unref(L, mg_registryindex(), ref) }
        h.function = nil
        if inRun { removedHooks.append(h) }
        hooksChanged()
    }

    /// Calls the Lua function of `hook` with the arguments `push` leaves on the stack, under
    /// `lua_pcall` with a traceback handler.
    @inline(__always)
    func call(_ hook: Hook, push: () -> Int32) -> CallResult {
        guard let ref = hook.function else { return .falsy }
        let base = lua_gettop(L)
        defer { lua_settop(L, base) }
        let handler = callbackHandler()
        lua_rawgeti(L, mg_registryindex(), lua_Integer(ref))
        let n = push()
        if mg_pcall(L, n, 1, handler) != LUA_OK {
            fail(LuaError(lua.string(at: -1) ?? "(error object is not a string)"))
            return .falsy
        }
        if lua_type(L, -1) == LUA_TSTRING {
            var len = 0
            if let p = lua_tolstring(L, -1, &len), len == 4, memcmp(p, "stop", 4) == 0 { return .stop }
            return .truthy
        }
        return lua_toboolean(L, -1) != 0 ? .truthy : .falsy
    }

    /// A hook's event happened: count it, call its function (if any), and stop the run when it
    /// is a breakpoint whose condition holds (no condition, or any value but nil and false) or a
    /// callback that returned "stop". `info` describes the event for `run`'s second result.
    @inline(__always)
    func fire(_ hook: Hook, reason: String, info: @autoclosure () -> [String: TraceValue], push: () -> Int32) {
        guard hook.enabled else { return }
        hook.hits &+= 1
        if hook.isBreakpoint {
            if hook.function != nil, call(hook, push: push) == .falsy { return }
            var i = info()
            i["hook"] = .integer(Int64(hook.id))
            stop(reason: reason, info: i)
        } else if call(hook, push: push) == .stop {
            var i = info()
            i["hook"] = .integer(Int64(hook.id))
            stop(reason: "callback", info: i)
        }
    }

    func pushTable(_ info: [String: TraceValue]) {
        lua_createtable(L, 0, Int32(info.count))
        for (k, v) in info {
            v.push(lua)
            lua_setfield(L, -2, k)
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
    /// A VMM event (`vmm:on`): its kind name ("reflect", ...; nil: any) and guest (nil: any).
    case vmm(event: String?, guest: String?)
}

/// A hook or breakpoint: what `m:on(...)` and the `break_*` methods install.
final class Hook {
    var id = 0
    let kind: HookKind
    /// Registry reference of the Lua function (callback, or breakpoint condition).
    var function: Int32?
    let isBreakpoint: Bool
    var enabled = true
    var hits = 0
    var description: String
    /// For a hook on one guest of a VMM (`g:break_at`, `g:on`, ...): that guest's index.
    var guestIndex: Int?

    init(kind: HookKind, function: Int32?, isBreakpoint: Bool, description: String) {
        self.kind = kind
        self.function = function
        self.isBreakpoint = isBreakpoint
        self.description = description
    }
}
