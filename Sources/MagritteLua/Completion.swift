import CMagritteLua
import MagritteCore

/// What a console's Tab key offers: globals and keywords, fields of tables, fields and methods of
/// Magritte objects (`m.cpu.` → `pc`, `hi`, `lo`, `mode`, …; `m:` → `run`, `step`, …).
extension MagritteLua {
    /// The completions of the expression that ends `text` (the line up to the cursor), as
    /// whole words that replace it: `completions(for: "x = m.cpu.p")` is `["m.cpu.pc"]`.
    /// Sorted, without duplicates; empty when nothing fits or `text` does not end in a name.
    ///
    /// The object before the last `.` or `:` is found by indexing from the globals under
    /// `lua_pcall`, with an instruction budget, so a failing or endless `__index` cannot hurt the
    /// session. Only names and dots are evaluated: nothing is called but `__index` metamethods.
    public func completions(for text: String) -> [String] {
        guard let word = Completion.trailingWord(of: text) else { return [] }
        let (path, separator, partial) = Completion.split(word)
        let names = completionNames(path: path, separator: separator)
        let stem = word.dropLast(partial.count)
        return names.filter { $0.hasPrefix(partial) }.sorted().map { stem + $0 }
    }

    /// The names offered after `path` and `separator` ("" for a bare name, "." or ":").
    func completionNames(path: [String], separator: String) -> [String] {
        lua_rawgeti(lua.L, mg_registryindex(), lua_Integer(LUA_RIDX_GLOBALS))
        defer { mg_pop(lua.L, 1) }
        return completionNames(from: lua_gettop(lua.L), path: path, separator: separator)
    }

    /// The names Tab offers after the value at `index` and `separator` ("." for fields and
    /// methods, ":" for methods): what `help(value)` lists.
    func completionNames(ofValueAt index: Int32, separator: String) -> [String] {
        completionNames(from: lua_absindex(lua.L, index), path: [], separator: separator)
    }

    private func completionNames(from root: Int32, path: [String], separator: String) -> [String] {
        let L = lua.L
        let base = lua_gettop(L)
        defer { lua_settop(L, base) }
        pushCompleter()
        lua_pushvalue(L, root)
        lua_createtable(L, Int32(path.count), 0)
        for (i, name) in path.enumerated() {
            lua.push(name)
            lua_rawseti(L, -2, lua_Integer(i + 1))
        }
        lua.push(separator)
        pushClassKeys()
        do {
            try lua.pcall(nargs: 4, nresults: 1)
        } catch {
            return []
        }
        var names: [String] = []
        let n = luaL_len(L, -1)
        if n > 0 {
            for i in 1...n {
                lua_rawgeti(L, -1, i)
                if let s = lua.string(at: -1) { names.append(s) }
                mg_pop(L, 1)
            }
        }
        return names
    }

    /// Pushes the completer function (compiled once per state, kept in the registry).
    private func pushCompleter() {
        pushRegistryFunction(Completion.registryKey, source: Completion.completer, name: "=(completion)")
    }

    /// Pushes the function that the Lua chunk `source` returns, compiled the first time and kept
    /// in the registry under `key`. The chunks are the module's own: one that does not compile
    /// is a bug in Magritte.
    func pushRegistryFunction(_ key: String, source: String, name: String) {
        let L = lua.L
        lua_getfield(L, mg_registryindex(), key)
        if mg_isfunction(L, -1) != 0 { return }
        mg_pop(L, 1)
        do {
            try lua.load(source, name: name)
            try lua.pcall(nargs: 0, nresults: 1)
        } catch {
            fatalError("\(name) does not compile: \(error)")
        }
        lua_pushvalue(L, -1)
        lua_setfield(L, mg_registryindex(), key)
    }

    /// Pushes `{[metatable name] = {field names}}` for every Magritte class of this state: the
    /// LuaClass fields and methods, plus names that only a class's dynamic getter knows
    /// (`m.cpu.a0`, `m.cpu.cp0.status`).
    private func pushClassKeys() {
        let L = lua.L
        lua_createtable(L, 0, 8)
        for child in Mirror(reflecting: self).children {
            guard let c = child.value as? any CompletableClass else { continue }
            let keys = c.keys + (Completion.dynamicKeys[c.name] ?? [])
            lua_createtable(L, Int32(keys.count), 0)
            for (i, k) in keys.enumerated() {
                lua.push(k)
                lua_rawseti(L, -2, lua_Integer(i + 1))
            }
            lua_setfield(L, -2, c.name)
        }
    }
}

/// A LuaClass seen without its type parameter, for completion.
protocol CompletableClass {
    var name: String { get }
    var keys: [String] { get }
}

extension LuaClass: CompletableClass {}

/// The parts of completion that need no Lua state.
public enum Completion {
    static let registryKey = "magritte.completer"

    /// Names the classes' dynamic getters accept, by metatable name.
    static let dynamicKeys: [String: [String]] = [
        "magritte.cpu": Names.gprs + ["s8"],
        "magritte.cp0": Array(CP0Register.names.keys),
        "magritte.guest_cp0": Array(CP0Register.names.keys),
    ]

    static let keywords = [
        "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
        "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
    ]

    /// The dotted name at the end of `text` (`m.cpu.p`, `m:`, `pri`), or nil when the text does
    /// not end in one (after a number, inside a string, after a space…).
    public static func trailingWord(of text: String) -> String? {
        if insideString(text) { return nil }
        let chars = Array(text.unicodeScalars)
        var start = chars.count
        while start > 0, isWordCharacter(chars[start - 1]) { start -= 1 }
        let word = String(String.UnicodeScalarView(chars[start...]))
        // Every name before the last separator must be a name: "1.", "a..b", "a:b.c" are not paths.
        for name in split(word).path {
            guard let first = name.unicodeScalars.first, !("0"..."9").contains(first), !name.contains(":") else { return nil }
        }
        if let first = word.unicodeScalars.first, ("0"..."9").contains(first) { return nil }
        return word
    }

    /// `m.cpu.p` → (["m", "cpu"], ".", "p"); `m:` → (["m"], ":", ""); `pri` → ([], "", "pri").
    static func split(_ word: String) -> (path: [String], separator: String, partial: String) {
        guard let i = word.lastIndex(where: { $0 == "." || $0 == ":" }) else { return ([], "", word) }
        let path = word[..<i].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        return (path, String(word[i]), String(word[word.index(after: i)...]))
    }

    static func isWordCharacter(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_" || c == "." || c == ":"
    }

    /// Whether `text` ends inside a short string literal ('…' or "…", with backslash escapes).
    public static func insideString(_ text: String) -> Bool {
        var quote: Unicode.Scalar?
        var escaped = false
        for c in text.unicodeScalars {
            if let q = quote {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            }
        }
        return quote != nil
    }

    /// The completer, in Lua: `(globals, path, separator, classKeys) -> {names}`. Indexing runs
    /// under pcall with a count hook that ends an endless `__index` after a million instructions.
    static let completer = #"""
        local next, type, rawget, pcall, error = next, type, rawget, pcall, error
        local getmetatable, sethook, gethook = debug.getmetatable, debug.sethook, debug.gethook
        local keywords = { \#(keywords.map { "\"\($0)\"" }.joined(separator: ", ")) }
        local function identifier(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil end
        local function callable(v)
            if type(v) == "function" then return true end
            local mt = getmetatable(v)
            return type(mt) == "table" and rawget(mt, "__call") ~= nil
        end
        return function(globals, path, separator, classKeys)
            local out, seen = {}, {}
            local function add(k)
                if identifier(k) and not seen[k] then seen[k] = true; out[#out + 1] = k end
            end
            local hook, mask, count = gethook()
            sethook(function() error("completion took too long") end, "", 1000000)
            local ok, object = pcall(function()
                local v = globals
                for i = 1, #path do v = v[path[i]] end
                return v
            end)
            sethook(hook, mask, count)
            if not ok then return out end
            if separator == "" then
                for _, k in ipairs(keywords) do add(k) end
            end
            local methodsOnly = separator == ":"
            local t, depth = object, 0
            while t ~= nil and depth < 16 do
                if type(t) == "table" then
                    for k, v in next, t do
                        if not methodsOnly or callable(v) then add(k) end
                    end
                end
                local mt = getmetatable(t)
                if type(mt) ~= "table" then break end
                if type(t) == "userdata" then
                    local methods = rawget(mt, "__methods")
                    if type(methods) == "table" then
                        for k in next, methods do add(k) end
                    end
                    local fields = classKeys[rawget(mt, "__name")] or rawget(mt, "__fields")
                    if not methodsOnly and type(fields) == "table" then
                        for _, k in ipairs(fields) do add(k) end
                    end
                end
                local index = rawget(mt, "__index")
                if type(index) ~= "table" then break end
                t, depth = index, depth + 1
            end
            return out
        end
        """#
}
