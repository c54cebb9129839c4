import CMagritteLua

/// A Swift class exposed to Lua as userdata: one metatable per type with methods, readable and
/// writable fields, `__tostring` and `__gc` (which releases the Swift object).
///
/// The userdata holds a retained `Unmanaged` reference. `__index` looks the key up in the
/// methods table first, then asks the field getter; `__newindex` calls the field setter. Unknown
/// keys are errors that name the type and the key, so a typo does not silently read nil.
public final class LuaClass<T: AnyObject> {
    public typealias Method = (T, LuaCall) throws -> Int32
    public typealias Getter = (T, LuaState) throws -> Void
    public typealias Setter = (T, LuaCall, Int32) throws -> Void

    public let name: String
    var methods: [String: Method] = [:]
    var getters: [String: Getter] = [:]
    var setters: [String: Setter] = [:]
    /// Fallback for keys that are neither methods nor named fields (e.g. numeric indexes).
    var dynamicGetter: ((T, LuaCall, Int32) throws -> Bool)?
    var dynamicSetter: ((T, LuaCall, Int32, Int32) throws -> Bool)?
    var describe: (T) -> String = { "\(type(of: $0))" }

    public init(_ name: String) { self.name = name }

    public func method(_ name: String, _ body: @escaping Method) { methods[name] = body }
    public func field(_ name: String, get: @escaping Getter, set: Setter? = nil) {
        getters[name] = get
        if let set { setters[name] = set }
    }
    public func dynamic(get: ((T, LuaCall, Int32) throws -> Bool)? = nil, set: ((T, LuaCall, Int32, Int32) throws -> Bool)? = nil) {
        dynamicGetter = get
        dynamicSetter = set
    }
    public func description(_ body: @escaping (T) -> String) { describe = body }

    /// All keys a completer may offer.
    public var keys: [String] { Array(methods.keys) + Array(getters.keys) }

    /// Creates the metatable in `lua` (once per state).
    func install(in lua: LuaState) {
        let L = lua.L
        guard luaL_newmetatable(L, name) != 0 else { mg_pop(L, 1); return }
        // methods table
        lua_createtable(L, 0, Int32(methods.count))
        for (key, body) in methods {
            lua.push(function: { [unowned self] call in
                var call = call
                call.context = .method(key)
                let obj = try self.check(call, 1, hint: "call it as obj:\(key)(...)")
                return try body(obj, call)
            })
            lua_setfield(L, -2, key)
        }
        lua_setfield(L, -2, "__methods")

        lua.push(function: { [unowned self] call in try self.index(call) })
        lua_setfield(L, -2, "__index")
        lua.push(function: { [unowned self] call in try self.newIndex(call) })
        lua_setfield(L, -2, "__newindex")
        lua.push(function: { [unowned self] call in
            let obj = try self.check(call, 1)
            call.state.push(self.describe(obj))
            return 1
        })
        lua_setfield(L, -2, "__tostring")
        lua_pushcclosure(L, { L in
            let ud = lua_touserdata(L!, 1)!
            let p = ud.load(as: UnsafeMutableRawPointer?.self)
            if let p {
                Unmanaged<AnyObject>.fromOpaque(p).release()
                ud.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
            }
            return 0
        }, 0)
        lua_setfield(L, -2, "__gc")
        lua.push(name)
        lua_setfield(L, -2, "__name")
        mg_pop(L, 1)
    }

    /// Pushes `object` as a new userdata of this class.
    public func push(_ object: T, in lua: LuaState) {
        install(in: lua)
        let ud = mg_newuserdata(lua.L, MemoryLayout<UnsafeMutableRawPointer>.size)!
        ud.storeBytes(of: Unmanaged<AnyObject>.passRetained(object).toOpaque(), as: UnsafeMutableRawPointer?.self)
        _ = mg_getmetatable_named(lua.L, name)
        lua_setmetatable(lua.L, -2)
    }

    /// The object at argument `i`, or an error naming the expected type (and `hint`).
    public func check(_ call: LuaCall, _ i: Int32, hint: String? = nil) throws -> T {
        if let obj = object(call.L, i) { return obj }
        let got = i > call.count ? "no value" : call.state.typeName(at: i)
        throw LuaError("\(call.argument(i)) (\(name) expected, got \(got)\(hint.map { "; \($0)" } ?? ""))")
    }

    func object(_ L: OpaquePointer, _ i: Int32) -> T? {
        guard let ud = luaL_testudata(L, i, name) else { return nil }
        guard let p = ud.load(as: UnsafeMutableRawPointer?.self) else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as? T
    }

    private func index(_ call: LuaCall) throws -> Int32 {
        var call = call
        call.context = .key(name)
        let obj = try check(call, 1)
        let L = call.L
        if lua_type(L, 2) == LUA_TSTRING, let key = call.state.string(at: 2) {
            _ = mg_getmetatable_named(L, name)
            lua_getfield(L, -1, "__methods")
            lua_getfield(L, -1, key)
            if !(mg_isnil(L, -1) != 0) { return 1 }
            mg_pop(L, 3)
            if let get = getters[key] {
                try get(obj, call.state)
                return 1
            }
        }
        if let dyn = dynamicGetter, try dyn(obj, call, 2) { return 1 }
        throw LuaError("\(name) has no field or method '\(call.state.describe(at: 2))'")
    }

    private func newIndex(_ call: LuaCall) throws -> Int32 {
        var call = call
        call.context = .key(name)
        let obj = try check(call, 1)
        call.context = .field(lua_type(call.L, 2) == LUA_TSTRING ? "\(name).\(call.state.describe(at: 2))" : "\(name)[\(call.state.describe(at: 2))]")
        if lua_type(call.L, 2) == LUA_TSTRING, let key = call.state.string(at: 2) {
            if let set = setters[key] {
                try set(obj, call, 3)
                return 0
            }
            if getters[key] != nil || methods[key] != nil { throw LuaError("\(name).\(key) is read-only") }
        }
        if let dyn = dynamicSetter, try dyn(obj, call, 2, 3) { return 0 }
        throw LuaError("\(name) has no field '\(call.state.describe(at: 2))' to set")
    }
}
