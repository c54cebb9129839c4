import CMagritteLua
import MagritteCore

/// The arguments of a Swift function called from Lua, read without raising Lua errors: a bad
/// argument throws a `LuaError` naming the function and the argument as `luaL_check*` would
/// word it ("bad argument #1 to 'read32' (integer expected, got string)"; for a method called
/// with `:`, self is not counted, as in Lua).
public struct LuaCall {
    public let L: OpaquePointer
    public let state: LuaState
    /// What the arguments belong to, for error messages.
    public var context: Context = .function(nil)

    public enum Context {
        /// A function (name if known); arguments are numbered from 1.
        case function(String?)
        /// A method: argument 1 is self, so argument i is reported as i - 1.
        case method(String)
        /// The value of an assignment `obj.key = value` (named "magritte.cpu.pc").
        case field(String)
        /// The key of an index `obj[key]` (named "magritte.gpr").
        case key(String)
    }

    public init(L: OpaquePointer, state: LuaState, context: Context = .function(nil)) {
        self.L = L
        self.state = state
        self.context = context
    }

    public var count: Int32 { lua_gettop(L) }

    public func isNoneOrNil(_ i: Int32) -> Bool { mg_isnoneornil(L, i) != 0 }

    /// "bad argument #2 to 'f'", "bad value for magritte.cpu.pc", ... for argument `i`.
    public func argument(_ i: Int32) -> String {
        switch context {
        case .function(let name): "bad argument #\(i)\(name.map { " to '\($0)'" } ?? "")"
        case .method(let name): i == 1 ? "calling '\(name)' on bad self" : "bad argument #\(i - 1) to '\(name)'"
        case .field(let name): "bad value for \(name)"
        case .key(let name): "bad key for \(name)"
        }
    }

    public func argError(_ i: Int32, _ expected: String) -> LuaError {
        let got = i > count ? "no value" : state.typeName(at: i)
        return LuaError("\(argument(i)) (\(expected) expected, got \(got))")
    }

    public func integer(_ i: Int32) throws -> Int64 {
        var ok: Int32 = 0
        let v = mg_tointeger(L, i, &ok)
        guard ok != 0 else {
            if lua_type(L, i) == LUA_TNUMBER { throw LuaError("\(argument(i)) (number has no integer representation)") }
            throw argError(i, "integer")
        }
        return v
    }

    public func optionalInteger(_ i: Int32) throws -> Int64? {
        isNoneOrNil(i) ? nil : try integer(i)
    }

    /// A 32-bit value: an integer in -2^31 ... 2^32-1 (negative numbers wrap as in C).
    public func word(_ i: Int32, _ what: String = "value") throws -> UInt32 {
        let v = try integer(i)
        guard v >= -(1 << 31) && v <= 0xFFFF_FFFF else {
            throw LuaError("\(argument(i)) (\(what) \(Hex.prefixed(v)) does not fit in 32 bits)")
        }
        return UInt32(truncatingIfNeeded: v)
    }

    public func optionalWord(_ i: Int32, _ what: String = "value") throws -> UInt32? {
        isNoneOrNil(i) ? nil : try word(i, what)
    }

    public func number(_ i: Int32) throws -> Double {
        var ok: Int32 = 0
        let v = mg_tonumber(L, i, &ok)
        guard ok != 0 else { throw argError(i, "number") }
        return v
    }

    public func string(_ i: Int32) throws -> String {
        guard lua_type(L, i) == LUA_TSTRING || lua_type(L, i) == LUA_TNUMBER, let s = state.string(at: i) else {
            throw argError(i, "string")
        }
        return s
    }

    public func optionalString(_ i: Int32) throws -> String? {
        isNoneOrNil(i) ? nil : try string(i)
    }

    public func boolean(_ i: Int32) -> Bool { lua_toboolean(L, i) != 0 }

    public func checkFunction(_ i: Int32) throws {
        guard mg_isfunction(L, i) != 0 else { throw argError(i, "function") }
    }

    public func checkTable(_ i: Int32) throws {
        guard mg_istable(L, i) != 0 else { throw argError(i, "table") }
    }

    /// Checks that argument `i` is an options table whose keys are all among `valid`: a
    /// misspelt key (`m:run{step = 10}`) is an error naming the valid ones, not an option
    /// silently ignored. `what` names the call in the message ("run", "magritte.machine").
    /// The walk is raw (`lua_next`), so a metatable on the table cannot raise through Swift.
    public func options(_ i: Int32, _ what: String, _ valid: [String]) throws {
        try checkTable(i)
        let t = lua_absindex(L, i)
        let base = lua_gettop(L)
        defer { lua_settop(L, base) }
        lua_pushnil(L)
        while lua_next(L, t) != 0 {
            let key = lua_type(L, -2) == LUA_TSTRING ? state.string(at: -2) : nil
            if let key, valid.contains(key) {
                mg_pop(L, 1)
                continue
            }
            // Not the key itself on the stack for `describe` (tostring may convert it in place).
            lua_pushvalue(L, -2)
            let shown = key.map { "'\($0)'" } ?? "[\(state.describe(at: -1))]"
            throw LuaError("\(what): unknown option \(shown) (valid options: \(valid.sorted().joined(separator: ", ")))")
        }
    }

    /// Pushes field `name` of the table at `i` without metamethods (rawget cannot raise).
    public func pushRawField(_ i: Int32, _ name: String) {
        let t = lua_absindex(L, i)
        state.push(name)
        lua_rawget(L, t)
    }

    /// A field of the table at `i` without metamethods (rawget cannot raise).
    public func field(_ i: Int32, _ name: String) -> LuaFieldValue {
        let t = lua_absindex(L, i)
        state.push(name)
        lua_rawget(L, t)
        defer { mg_pop(L, 1) }
        switch lua_type(L, -1) {
        case LUA_TNIL, LUA_TNONE: return .none
        case LUA_TNUMBER:
            var ok: Int32 = 0
            let v = mg_tointeger(L, -1, &ok)
            return ok != 0 ? .integer(v) : .number(mg_tonumber(L, -1, nil))
        case LUA_TSTRING: return .string(state.string(at: -1) ?? "")
        case LUA_TBOOLEAN: return .boolean(lua_toboolean(L, -1) != 0)
        default: return .other(state.typeName(at: -1))
        }
    }
}

/// A plain value read from a table field.
public enum LuaFieldValue: Equatable {
    case none
    case integer(Int64)
    case number(Double)
    case string(String)
    case boolean(Bool)
    case other(String)
}
