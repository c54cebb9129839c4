import CMagritteLua

/// A Swift class exposed to Lua as userdata: one metatable per type with methods, readable and
/// writable fields, `__tostring` and `__gc` (which releases the Swift object).
///
/// The userdata is an `mg_box`: a tag and a retained `Unmanaged` reference. `__index` looks the
/// key up in the methods table first, then asks the field getter; `__newindex` calls the field
/// setter. Unknown keys are errors that name the type and the key, so a typo does not silently
/// read nil.
///
/// Scripts can reach everything through the `debug` library (the registry, metatables,
/// upvalues), so nothing here trusts Lua-side state: an object is taken from a userdata only if
/// it carries the object tag and the metatable now registered for the class, and is then cast
/// to `T` (`object`); metatables are read and written raw, and one a script replaced in the
/// registry is made again; `__gc` (in C) releases once and nils the reference.
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

    /// Pushes the class's metatable, creating it in `lua` the first time (and again if a script
    /// put something else under its name in the registry).
    func pushMetatable(in lua: LuaState) {
        let L = lua.L
        if mg_rawgetregistry(L, name) == LUA_TTABLE {
            lua_pushstring(L, "__name")
            lua_rawget(L, -2)
            lua.push(name)
            let ours = lua_rawequal(L, -1, -2) != 0  // interned strings: a pointer compare
            mg_pop(L, 2)
            if ours { return }
        }
        mg_pop(L, 1)
        lua_createtable(L, 0, 8)
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
        mg_pushgc(L, mg_objecttag())
        lua_setfield(L, -2, "__gc")
        lua.push(name)
        lua_setfield(L, -2, "__name")
        lua_pushvalue(L, -1)
        mg_rawsetregistry(L, name)
    }

    /// Pushes `object` as a new userdata of this class.
    public func push(_ object: T, in lua: LuaState) {
        mg_pushbox(lua.L, mg_objecttag(), Unmanaged<AnyObject>.passRetained(object).toOpaque())
        pushMetatable(in: lua)
        lua_setmetatable(lua.L, -2)
    }

    /// The object at argument `i`, or an error naming the expected type (and `hint`).
    public func check(_ call: LuaCall, _ i: Int32, hint: String? = nil) throws -> T {
        if let obj = object(call.L, i) { return obj }
        var got = i > call.count ? "no value" : call.state.typeName(at: i)
        if let box = mg_tobox(call.L, i, mg_objecttag()) {
            got = box.pointee.object == nil ? "a Magritte value released by its __gc"
                : mg_hasmetatable(call.L, i, name) == 0 ? "a Magritte value of another class, or one whose metatable was replaced" : got
        }
        throw LuaError("\(call.argument(i)) (\(name) expected, got \(got)\(hint.map { "; \($0)" } ?? ""))")
    }

    /// The object of the userdata at `i` if it is a live one of this class (never raises).
    func object(_ L: OpaquePointer, _ i: Int32) -> T? {
        guard let box = mg_tobox(L, i, mg_objecttag()), let p = box.pointee.object, mg_hasmetatable(L, i, name) != 0 else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as? T
    }

    private func index(_ call: LuaCall) throws -> Int32 {
        var call = call
        call.context = .key(name)
        let obj = try check(call, 1)
        let L = call.L
        if lua_type(L, 2) == LUA_TSTRING, let key = call.state.string(at: 2) {
            // Raw: a script may have given these tables metatables of its own.
            _ = mg_rawgetregistry(L, name)
            lua_pushstring(L, "__methods")
            lua_rawget(L, -2)
            if lua_type(L, -1) == LUA_TTABLE {
                call.state.push(key)
                lua_rawget(L, -2)
                if !(mg_isnil(L, -1) != 0) { return 1 }
                mg_pop(L, 1)
            }
            mg_pop(L, 2)
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
