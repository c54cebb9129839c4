#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import CMagritteLua
import CEditLine
import MagritteLua

/// `magritte` (or `magritte repl`): the Lua console.
struct Repl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repl",
        abstract: "The Lua console (the default command): explore and drive machines interactively.",
        discussion: """
            Behaves like `lua`: bare expressions and `=expr` print their values, a chunk may span \
            several lines, errors print with a traceback. Tab completes names, fields and methods; \
            Ctrl-C stops a running guest; Ctrl-D exits. History is kept in ~/.magritte_history. \
            When standard input is not a terminal, it is run as one chunk. See Docs/console.md.
            """)

    func run() throws {
        let console = Console()
        if isatty(0) == 0 {
            guard console.runStandardInput() else { throw ExitCode(1) }
            return
        }
        console.interact()
    }
}

/// One Lua state and the loop that reads, evaluates and prints, as lua.c's `doREPL`.
final class Console {
    let api = MagritteLua()
    var lua: LuaState { api.lua }
    var L: OpaquePointer { api.lua.L }
    /// The reading and running of chunks.
    lazy var session = ReplSession(api)

    init() { Interrupt.install() }

    // MARK: Interactive

    func interact(banner: Bool = true) {
        if banner { printBanner() }
        let editor = LineEditor(program: "magritte", historyPath: Console.historyPath) { [unowned self] before in
            complete(before)
        }
        while true {
            switch readChunk(editor) {
            case .end:
                write("\n")
                return
            case .interrupted:
                write("^C\n")
            case .chunk(let status):
                if status { execute(printResults: true) }
            }
        }
    }

    /// `~/.magritte_history`, or nil (no history file) when $HOME is unset or empty.
    static var historyPath: String? {
        guard let home = getenv("HOME").map({ String(cString: $0) }), !home.isEmpty else { return nil }
        return home + (home.hasSuffix("/") ? "" : "/") + ".magritte_history"
    }

    /// "Magritte 0.1 (Lua 5.4)": what -v prints.
    var versionLine: String {
        let version = (try? lua.run("return magritte.version, _VERSION", name: "=banner")) ?? []
        return "Magritte \(version.first ?? "?") (\(version.dropFirst().first ?? "Lua"))"
    }

    func printBanner() {
        write(versionLine + " — a MIPS Malta emulator\n")
        write("Try m = magritte.machine{image = \"…\"} and m:run(). Tab completes, Ctrl-C stops a guest, Ctrl-D exits.\n")
    }

    enum Chunk {
        /// A chunk was read: true with the compiled function on the stack, false after a syntax
        /// error (already reported).
        case chunk(Bool)
        case interrupted
        case end
    }

    /// Reads a line, then more lines while the chunk is incomplete (`ReplSession` decides); the
    /// whole chunk becomes one history entry.
    func readChunk(_ editor: LineEditor) -> Chunk {
        var first = true
        while true {
            switch editor.read(prompt: prompt(first: first)) {
            case .end:
                guard let (entry, message) = session.end() else { return .end }
                // As lua.c: Ctrl-D inside a chunk reports why it is incomplete; the session
                // goes on (a second Ctrl-D at the first prompt ends it).
                editor.remember(entry)
                write("\n")  // after libedit's ^D
                if let message { report(message) }
                return .chunk(false)
            case .interrupted:
                if let entry = session.interrupt() { editor.remember(entry) }
                return .interrupted
            case .line(let line):
                switch session.feed(line) {
                case .needMore:
                    first = false
                case .chunk(let entry):
                    editor.remember(entry)
                    return .chunk(true)
                case .syntaxError(let entry, let message):
                    editor.remember(entry)
                    report(message)
                    return .chunk(false)
                }
            }
        }
    }

    /// `_PROMPT` / `_PROMPT2` (any value, through tostring), else "> " / ">> ".
    func prompt(first: Bool) -> String {
        let name = first ? "_PROMPT" : "_PROMPT2"
        lua_getglobal(L, name)
        defer { mg_pop(L, 1) }
        if mg_isnil(L, -1) != 0 { return first ? "> " : ">> " }
        return lua.describe(at: -1)
    }

    // MARK: Running

    /// The global `arg`, as lua.c makes it: arg[0] the script, the script's arguments at 1…,
    /// the options before it at -1, -2…, the program last; without a script, arg[0] is the
    /// program and the options follow it.
    func setArguments(program: String, options: [String], script: String?, after: [String]) {
        let before = [program] + options
        let all = before + (script.map { [$0] } ?? []) + after
        lua_createtable(L, Int32(after.count), Int32(before.count + 1))
        let zero = script == nil ? 0 : before.count
        for (i, a) in all.enumerated() {
            lua.push(a)
            lua_rawseti(L, -2, lua_Integer(i - zero))
        }
        lua_setglobal(L, "arg")
    }

    /// Compiles `source` onto the stack; a syntax error is reported ("magritte: …").
    func load(_ source: String, name: String) -> Bool {
        do {
            try lua.load(source, name: name)
            return true
        } catch {
            report("magritte: " + error.message)
            return false
        }
    }

    /// Compiles the file at `path` (nil: standard input; a #! line is skipped) onto the stack;
    /// errors are reported.
    func loadFile(_ path: String?) -> Bool {
        guard luaL_loadfilex(L, path, nil) == LUA_OK else {
            report("magritte: " + (lua.string(at: -1) ?? "cannot load \(path ?? "stdin")"))
            mg_pop(L, 1)
            return false
        }
        return true
    }

    /// Calls the function on top of the stack with Ctrl-C armed; prints its results through the
    /// global `print` (`ReplSession.run`) or its error with a traceback. Returns whether it
    /// succeeded.
    @discardableResult
    func execute(printResults: Bool, arguments: [String] = []) -> Bool {
        fflush(mg_stdout())
        lua_sethook(L, nil, 0, 0)
        Interrupt.arm(api)
        defer {
            Interrupt.disarm()
            lua_sethook(L, nil, 0, 0)
            fflush(mg_stdout())
        }
        switch session.run(printResults: printResults, arguments: arguments) {
        case .ok:
            return true
        case .error(let message):
            // After Ctrl-C the terminal shows ^C: start the message on a line of its own.
            if Interrupt.happened && isatty(0) != 0 { write("\n") }
            report(message)
            return false
        case .printError(let message):
            report(message)
            return true
        }
    }

    /// Runs all of standard input as one chunk (as `lua -`), with `arguments` as `...`. Errors
    /// go to stderr.
    func runStandardInput(arguments: [String] = []) -> Bool {
        var source = readAll(0)
        if source.first == UInt8(ascii: "#") {  // a #! line, as luaL_loadfile skips it
            source = Array(source.drop(while: { $0 != 10 }))
        }
        let status = source.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { c in luaL_loadbufferx(L, c.baseAddress, c.count, "=stdin", nil) }
        }
        if status != LUA_OK {
            report("magritte: " + (lua.string(at: -1) ?? "cannot load stdin"))
            return false
        }
        return execute(printResults: false, errorPrefix: "magritte: ", arguments: arguments)
    }

    /// `execute` with errors reported as "magritte: message", as lua.c reports a script's.
    func execute(printResults: Bool, errorPrefix prefix: String, arguments: [String] = []) -> Bool {
        errorPrefix = prefix
        defer { errorPrefix = "" }
        return execute(printResults: printResults, arguments: arguments)
    }

    private var errorPrefix = ""

    // MARK: Output

    func write(_ text: String) {
        fputs(text, mg_stdout())
        fflush(mg_stdout())
    }

    func report(_ message: String) {
        fflush(mg_stdout())
        fputs(errorPrefix + message + "\n", mg_stderr())
        fflush(mg_stderr())
    }

    // MARK: Completion

    func complete(_ before: String) -> (wordLength: Int, candidates: [(word: String, shown: String)]) {
        if Completion.insideString(before) {
            let partial = String(before[before.index(after: before.lastIndex(where: { $0 == "\"" || $0 == "'" })!)...])
            let paths = FileCompletion.candidates(for: partial)
            return (partial.utf8.count, paths.map { ($0, FileCompletion.lastComponent(of: $0)) })
        }
        guard let word = Completion.trailingWord(of: before) else { return (0, []) }
        let words = api.completions(for: before)
        return (word.utf8.count, words.map { w in
            (w, String(w[(w.lastIndex(where: { $0 == "." || $0 == ":" }).map { w.index(after: $0) } ?? w.startIndex)...]))
        })
    }
}

/// File names for completion inside a string literal (`magritte.machine{image = "…`).
enum FileCompletion {
    /// Paths that extend `partial`; directories end in "/". Hidden entries only when asked for.
    static func candidates(for partial: String) -> [String] {
        let slash = partial.lastIndex(of: "/")
        let directory = slash.map { String(partial[...$0]) } ?? ""
        let prefix = slash.map { String(partial[partial.index(after: $0)...]) } ?? partial
        guard let dir = opendir(directory.isEmpty ? "." : directory) else { return [] }
        defer { closedir(dir) }
        var out: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            if name.hasPrefix(".") && !prefix.hasPrefix(".") { continue }
            guard name.hasPrefix(prefix) else { continue }
            var st = stat()
            let path = directory + name
            let isDirectory = stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
            out.append(path + (isDirectory ? "/" : ""))
        }
        return out.sorted()
    }

    static func lastComponent(of path: String) -> String {
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let i = trimmed.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: i)...])
    }
}

/// All bytes from `fd` until its end.
func readAll(_ fd: Int32) -> [UInt8] {
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out += buffer[0..<n]
    }
    return out
}
