import CMagritteLua

/// A Lua error as Swift sees it: the message (with a traceback when one was collected).
public struct LuaError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One Lua 5.4 state with the standard libraries.
///
/// Swift functions reach Lua through `push(function:)`: they receive a `LuaCall`, and any Swift
/// error they throw becomes a Lua error raised by the C trampoline after the Swift frame has
/// returned (so `lua_error`'s longjmp never crosses Swift code). Lua code is only ever run under
/// `lua_pcall`, so Lua errors reach Swift as `LuaError` values with a traceback.
public final class LuaState {
    /// The thread that Swift code works on: the main thread, or, while a Swift function runs,
    /// the thread (coroutine) that called it, so that what the function pushes lands on its
    /// caller's stack.
    public fileprivate(set) var L: OpaquePointer
    /// The main thread.
    public let main: OpaquePointer

    public init() {
        guard let L = luaL_newstate() else { fatalError("Lua could not allocate its state") }
        self.L = L
        main = L
        mg_setswift({ L, box in callSwiftFunction(L!, box!) }, { object in Unmanaged<AnyObject>.fromOpaque(object!).release() })
        luaL_openlibs(L)
        mg_textonly(L)
    }

    deinit { lua_close(main) }

    public var top: Int32 {
        get { lua_gettop(L) }
        set { lua_settop(L, newValue) }
    }

    // MARK: Running code

    /// Compiles `source` as a chunk named `name` (for error messages). On success the function
    /// is on the stack.
    public func load(_ source: String, name: String) throws(LuaError) {
        let status = source.withCString { p in mg_loadbuffer(L, p, strlen(p), name) }
        if status != LUA_OK {
            let message = string(at: -1) ?? "syntax error"
            mg_pop(L, 1)
            throw LuaError(message)
        }
    }

    /// Calls the function below `nargs` arguments on the stack under a traceback handler and
    /// leaves `nresults` (or all with LUA_MULTRET) results on the stack.
    public func pcall(nargs: Int32, nresults: Int32) throws(LuaError) {
        let base = lua_gettop(L) - nargs
        lua_pushcclosure(L, mg_traceback, 0)
        mg_insert(L, base)
        let status = mg_pcall(L, nargs, nresults, base)
        mg_remove(L, base)
        if status != LUA_OK {
            let message = string(at: -1) ?? "(error object is not a string)"
            mg_pop(L, 1)
            throw LuaError(message)
        }
    }

    /// Runs a chunk and returns its results as strings formatted like `print` would.
    @discardableResult
    public func run(_ source: String, name: String = "=(magritte)") throws(LuaError) -> [String] {
        let base = top
        try load(source, name: name)
        try pcall(nargs: 0, nresults: LUA_MULTRET)
        var out: [String] = []
        if top > base {
            for i in (base + 1)...top { out.append(describe(at: i)) }
        }
        top = base
        return out
    }

    /// Runs a file as `lua FILE` would, with `arg` set.
    public func runFile(_ path: String, arguments: [String] = []) throws(LuaError) {
        lua_createtable(L, Int32(arguments.count), 1)
        push(path)
        lua_rawseti(L, -2, 0)
        for (i, a) in arguments.enumerated() {
            push(a)
            lua_rawseti(L, -2, lua_Integer(i + 1))
        }
        if mg_psetglobal(L, "arg") != LUA_OK {
            let message = string(at: -1) ?? "cannot set arg"
            mg_pop(L, 1)
            throw LuaError(message)
        }
        let base = top
        if luaL_loadfilex(L, path, "t") != LUA_OK {
            let message = string(at: -1) ?? "cannot load \(path)"
            top = base
            throw LuaError(message)
        }
        for a in arguments { push(a) }
        try pcall(nargs: Int32(arguments.count), nresults: 0)
        top = base
    }

    // MARK: Values

    public func push(_ s: String) { _ = s.withCString { lua_pushstring(L, $0) } }
    public func push(_ i: Int) { lua_pushinteger(L, lua_Integer(i)) }
    public func push(_ i: UInt32) { lua_pushinteger(L, lua_Integer(i)) }
    public func push(_ i: UInt64) { lua_pushinteger(L, lua_Integer(bitPattern: i)) }
    public func push(_ d: Double) { lua_pushnumber(L, d) }
    public func push(_ b: Bool) { lua_pushboolean(L, b ? 1 : 0) }
    public func pushNil() { lua_pushnil(L) }

    public func string(at i: Int32) -> String? {
        guard lua_type(L, i) == LUA_TSTRING || lua_type(L, i) == LUA_TNUMBER else { return nil }
        var len = 0
        guard let p = lua_tolstring(L, i, &len) else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: len), as: UTF8.self)
    }

    /// `tostring(value)` of the value at `i`, as `print` shows it.
    /// Runs under `lua_pcall`, since a `__tostring` metamethod may raise an error.
    public func describe(at i: Int32) -> String {
        let index = lua_absindex(L, i)
        if mg_ptostring(L, index) != LUA_OK {
            let message = string(at: -1) ?? "?"
            mg_pop(L, 1)
            return "(error in __tostring: \(message))"
        }
        let s = string(at: -1) ?? "(\(typeName(at: index)))"
        mg_pop(L, 1)
        return s
    }

    public func typeName(at i: Int32) -> String { String(cString: lua_typename(L, lua_type(L, i))) }

    // MARK: Swift functions

    /// Pushes a Swift function callable from Lua; `name` appears in its argument errors.
    public func push(function: @escaping LuaFunction, name: String? = nil) {
        mg_pushswiftfunction(L, Unmanaged.passRetained(FunctionBox(function, state: self, name: name)).toOpaque())
    }

    /// Sets global `name` to a Swift function.
    public func register(_ name: String, _ function: @escaping LuaFunction) {
        push(function: function)
        // Protected: a script may have given _G a __newindex that raises.
        if mg_psetglobal(L, name) != LUA_OK { mg_pop(L, 1) }
    }
}

/// A Swift function for Lua: reads its arguments from the call and returns how many results it
/// pushed. Throwing raises a Lua error with the error's description.
public typealias LuaFunction = (LuaCall) throws -> Int32

final class FunctionBox {
    let function: LuaFunction
    /// The state the function was pushed into (it outlives the function's userdata).
    unowned(unsafe) let state: LuaState
    let name: String?
    init(_ f: @escaping LuaFunction, state: LuaState, name: String?) {
        function = f
        self.state = state
        self.name = name
    }
}

/// The C trampoline's call into Swift: `pointer` is the FunctionBox of the closure's checked
/// upvalue (only boxes carry the function tag the trampoline checks).
private func callSwiftFunction(_ L: OpaquePointer, _ pointer: UnsafeMutableRawPointer) -> Int32 {
    let box = Unmanaged<FunctionBox>.fromOpaque(pointer).takeUnretainedValue()
    let state = box.state
    let call = LuaCall(L: L, state: state, context: .function(box.name))
    // Work on the caller's thread (a coroutine's, perhaps) until the function returns.
    let outer = state.L
    state.L = L
    defer { state.L = outer }
    do {
        return try box.function(call)
    } catch {
        let message = (error as? LuaError)?.message ?? String(describing: error)
        _ = message.withCString { lua_pushstring(L, $0) }
        return -1
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
