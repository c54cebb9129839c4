import CMagritteLua

/// The console's reading and running of chunks, as lua.c's `doREPL`, without a terminal: the
/// console feeds it the lines it reads and prints what it answers (Docs/console.md).
///
/// A first line is tried as `return <line>;` so that a bare expression prints its values;
/// `=expr` is `return expr`. Otherwise lines are gathered until they compile: Lua's
/// "unexpected <eof>" means the chunk is incomplete. The whole chunk, as typed, is one history
/// entry.
public final class ReplSession {
    public let api: MagritteLua
    var lua: LuaState { api.lua }
    var L: OpaquePointer { api.lua.L }

    /// The chunk so far as it is compiled (`=` rewritten), or nil between chunks.
    private var source: String?
    /// The chunk so far as typed: its history entry.
    private var entry = ""

    public init(_ api: MagritteLua) { self.api = api }

    /// What a line fed to the session made of the chunk.
    public enum Answer: Equatable {
        /// The chunk is incomplete: read another line (prompted with `_PROMPT2`).
        case needMore
        /// The chunk compiled: its function is on the Lua stack, ready for `run`.
        case chunk(entry: String)
        /// The chunk does not compile (it is dropped); `message` is Lua's.
        case syntaxError(entry: String, message: String)
    }

    /// Whether a chunk has begun and needs more lines.
    public var isReadingChunk: Bool { source != nil }

    /// Adds a line to the chunk (the first line of a new one when none is pending).
    public func feed(_ line: String) -> Answer {
        if let pending = source {
            source = pending + "\n" + line
            entry += "\n" + line
        } else {
            entry = line
            let text = line.hasPrefix("=") ? "return " + line.dropFirst() : line
            if (try? lua.load("return " + text + ";", name: "=stdin")) != nil { return .chunk(entry: line) }
            source = text
        }
        do {
            try lua.load(source!, name: "=stdin")
            source = nil
            return .chunk(entry: entry)
        } catch {
            if error.message.hasSuffix("<eof>") { return .needMore }
            source = nil
            return .syntaxError(entry: entry, message: error.message)
        }
    }

    /// The input ended inside a chunk (Ctrl-D): drops it and answers its history entry and
    /// Lua's message of why it is incomplete (nil if it compiles after all); nil when no chunk
    /// had begun.
    public func end() -> (entry: String, message: String?)? {
        guard let pending = source else { return nil }
        source = nil
        do {
            try lua.load(pending, name: "=stdin")
            mg_pop(L, 1)
            return (entry, nil)
        } catch {
            return (entry, error.message)
        }
    }

    /// Ctrl-C inside a chunk: drops it and answers its history entry (nil: no chunk had begun).
    public func interrupt() -> String? {
        guard source != nil else { return nil }
        source = nil
        return entry
    }

    /// How running a chunk went.
    public enum Outcome: Equatable {
        case ok
        /// The chunk raised an error: its message with a traceback.
        case error(String)
        /// The global `print` failed on the chunk's results.
        case printError(String)
    }

    /// Calls the function on top of the stack with `arguments` as `...` and leaves the stack as
    /// it was below the function. With `printResults`, its results go to the global `print`
    /// (tab-separated, as lua.c), tables shown readably (`magritte.show`), not as "table: 0x…".
    public func run(printResults: Bool, arguments: [String] = []) -> Outcome {
        let base = lua_gettop(L) - 1
        defer { lua_settop(L, base) }
        for a in arguments { lua.push(a) }
        do {
            try lua.pcall(nargs: Int32(arguments.count), nresults: LUA_MULTRET)
        } catch {
            return .error(error.message)
        }
        let n = lua_gettop(L) - base
        guard printResults && n > 0 else { return .ok }
        for i in (base + 1)...(base + n) where lua_type(L, i) == LUA_TTABLE {
            lua.push(api.show(at: i))
            mg_replace(L, i)
        }
        lua_getglobal(L, "print")
        mg_insert(L, base + 1)
        guard mg_pcall(L, n, 0, 0) == LUA_OK else {
            return .printError("error calling 'print' (\(lua.string(at: -1) ?? "?"))")
        }
        return .ok
    }
}
