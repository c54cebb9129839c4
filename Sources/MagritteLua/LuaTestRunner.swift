#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CMagritteLua

/// Runs Lua test scripts, as `magritte test` does, and reports them as TAP version 13.
///
/// A test file registers tests with `test(name, function() … end)` (and `skip(name, reason)`)
/// and checks with the `assert_*` functions (see Docs/console.md). Each file gets its own
/// `MagritteLua` state; its tests run one by one in the order they were registered, each under
/// `xpcall`, so a failing test does not stop the file. All files are loaded first, so the plan
/// (`1..N`) comes before the results; a file that fails to load counts as one failed test.
/// A file that registers no tests is one test, passed when the file ran without error (so plain
/// scripts that `assert` can be run too). `print` in a test file, and the console of a machine
/// with `echo = true`, become TAP comments.
public final class LuaTestRunner {
    public enum Outcome: Equatable, Sendable {
        case passed
        case failed(message: String, traceback: String)
        case skipped(reason: String)
    }

    public struct Result: Equatable, Sendable {
        public var file: String
        public var name: String
        public var outcome: Outcome
    }

    /// Receives each line of TAP, without its newline.
    public var output: (String) -> Void
    /// Called with each file's state before its code runs (a console keeps it to interrupt it).
    public var willRun: (MagritteLua) -> Void = { _ in }
    /// Asked after every test: true ends the run with "Bail out!".
    public var shouldStop: () -> Bool = { false }

    public private(set) var results: [Result] = []
    public var passed: Int { results.count(where: { if case .passed = $0.outcome { true } else { false } }) }
    public var failed: Int { results.count(where: { if case .failed = $0.outcome { true } else { false } }) }
    public var skipped: Int { results.count(where: { if case .skipped = $0.outcome { true } else { false } }) }

    public init(output: @escaping (String) -> Void) { self.output = output }

    /// Runs `files` and prints TAP and the summary line; returns whether nothing failed.
    @discardableResult
    public func run(files: [String]) -> Bool {
        output("TAP version 13")
        var loaded: [(file: String, suite: Suite?)] = []
        for file in files {
            let suite = Suite(file: file, runner: self)
            willRun(suite.api)
            if let error = suite.load() {
                loaded.append((file, nil))
                pendingLoadErrors[file] = error
            } else {
                loaded.append((file, suite))
            }
        }
        let total = loaded.reduce(0) { $0 + max($1.suite?.count ?? 1, 1) }
        output("1..\(total)")
        var number = 0
        run: for index in loaded.indices {
            let (file, suite) = loaded[index]
            loaded[index].suite = nil  // the state (and its machines) goes when its tests are done
            guard let suite else {
                number += 1
                let e = pendingLoadErrors[file]!
                report(number, Result(file: file, name: "(loading the file)", outcome: .failed(message: e.message, traceback: e.traceback)))
                if shouldStop() { bailOut(); break run }
                continue
            }
            willRun(suite.api)
            if suite.count == 0 {
                // A plain script (asserts, no test() calls) is one test: it ran without error.
                number += 1
                report(number, Result(file: file, name: "(the whole file)", outcome: .passed))
                continue
            }
            for i in 0..<suite.count {
                number += 1
                report(number, suite.run(i + 1))
                if shouldStop() { bailOut(); break run }
            }
        }
        var summary = "\(passed) passed, \(failed) failed"
        if skipped > 0 { summary += ", \(skipped) skipped" }
        output(summary)
        return failed == 0 && number == total
    }

    private var pendingLoadErrors: [String: (message: String, traceback: String)] = [:]

    private func bailOut() { output("Bail out! interrupted") }

    private func report(_ n: Int, _ r: Result) {
        results.append(r)
        let description = "\(r.file): \(r.name)".replacing("#", with: "\\#")
        switch r.outcome {
        case .passed:
            output("ok \(n) - \(description)")
        case .skipped(let reason):
            output("ok \(n) - \(description) # SKIP \(reason)")
        case .failed(let message, let traceback):
            output("not ok \(n) - \(description)")
            output("  ---")
            output("  message: |-")
            for line in message.split(separator: "\n", omittingEmptySubsequences: false) { output("    " + line) }
            if !traceback.isEmpty {
                output("  traceback: |-")
                for line in traceback.split(separator: "\n", omittingEmptySubsequences: false) {
                    output("    " + line.replacing("\t", with: "  "))
                }
            }
            output("  ...")
        }
    }

    /// Test files under `paths`: a file is taken as it is; a directory gives every `*_test.lua`
    /// and `test_*.lua` inside it, recursively (skipping hidden directories), sorted.
    public static func discover(_ paths: [String]) throws(LuaError) -> [String] {
        var files: [String] = []
        for path in paths {
            var st = stat()
            guard stat(path, &st) == 0 else { throw LuaError("\(path): no such file or directory") }
            if st.st_mode & S_IFMT == S_IFDIR {
                var found: [String] = []
                walk(path, into: &found)
                files += found.sorted()
            } else {
                files.append(path)
            }
        }
        return files
    }

    /// Whether `name` is a test file's name: `*_test.lua` or `test_*.lua`.
    public static func isTestFile(_ name: String) -> Bool {
        name.hasSuffix("_test.lua") || (name.hasPrefix("test_") && name.hasSuffix(".lua"))
    }

    private static func walk(_ directory: String, into files: inout [String]) {
        guard let dir = opendir(directory) else { return }
        defer { closedir(dir) }
        let prefix = directory.hasSuffix("/") ? directory : directory + "/"
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasPrefix(".") { continue }
            let path = prefix + name
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            if st.st_mode & S_IFMT == S_IFDIR {
                walk(path, into: &files)
            } else if isTestFile(name) {
                files.append(path)
            }
        }
    }
}

/// One test file in its own state.
private final class Suite {
    let file: String
    let api: MagritteLua
    unowned let runner: LuaTestRunner
    /// Console bytes of machines with `echo = true`, emitted as comments line by line.
    var console: [UInt8] = []

    init(file: String, runner: LuaTestRunner) {
        self.file = file
        self.runner = runner
        api = MagritteLua()
        api.writeOut = { [unowned self] byte in
            if byte == 10 { flushConsole() } else { console.append(byte) }
        }
        installLibrary()
    }

    var L: OpaquePointer { api.lua.L }

    func comment(_ text: String) {
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            runner.output(line.isEmpty ? "#" : "# " + line)
        }
    }

    func flushConsole() {
        guard !console.isEmpty else { return }
        comment(String(decoding: console, as: UTF8.self))
        console.removeAll()
    }

    /// Runs the library chunk with a comment writer; keeps the table it returns in the registry.
    private func installLibrary() {
        let lua = api.lua
        do {
            try lua.load(TestLibrary.source, name: "=(magritte test)")
            lua.push(function: { [unowned self] call in
                comment(try call.string(1))
                return 0
            })
            try lua.pcall(nargs: 1, nresults: 1)
        } catch {
            fatalError("the test library does not load: \(error)")
        }
        lua_setfield(L, mg_registryindex(), TestLibrary.registryKey)
    }

    /// Runs the file's top level (which registers the tests); returns the error, if any.
    func load() -> (message: String, traceback: String)? {
        defer { flushConsole() }
        pushLibrary("load")
        api.lua.push(file)
        return call(nargs: 1)
    }

    var count: Int {
        pushLibrary("count")
        defer { lua_settop(L, 0) }
        guard mg_pcall(L, 0, 1, 0) == LUA_OK else { return 0 }
        return Int(mg_tointeger(L, -1, nil))
    }

    func run(_ i: Int) -> LuaTestRunner.Result {
        defer { flushConsole() }
        pushLibrary("name")
        api.lua.push(i)
        let name = mg_pcall(L, 1, 1, 0) == LUA_OK ? (api.lua.string(at: -1) ?? "?") : "?"
        lua_settop(L, 0)
        pushLibrary("skip_reason")
        api.lua.push(i)
        if mg_pcall(L, 1, 1, 0) == LUA_OK, let reason = api.lua.string(at: -1) {
            lua_settop(L, 0)
            return .init(file: file, name: name, outcome: .skipped(reason: reason))
        }
        lua_settop(L, 0)
        pushLibrary("run")
        api.lua.push(i)
        if let (message, traceback) = call(nargs: 1) {
            return .init(file: file, name: name, outcome: .failed(message: message, traceback: traceback))
        }
        return .init(file: file, name: name, outcome: .passed)
    }

    private func pushLibrary(_ function: String) {
        lua_settop(L, 0)
        lua_getfield(L, mg_registryindex(), TestLibrary.registryKey)
        lua_getfield(L, -1, function)
        mg_remove(L, -2)
    }

    /// Calls a library function that returns nothing on success and (message, traceback) on
    /// failure. The library catches the test's errors itself; an error that escapes it (such as
    /// "interrupted!" raised between two Lua instructions of the library) is reported too.
    private func call(nargs: Int32) -> (message: String, traceback: String)? {
        defer { lua_settop(L, 0) }
        do {
            try api.lua.pcall(nargs: nargs, nresults: 2)
        } catch {
            return split(error.message)
        }
        guard let message = api.lua.string(at: -2) else { return nil }
        return (message, api.lua.string(at: -1) ?? "")
    }

    private func split(_ message: String) -> (String, String) {
        guard let r = message.firstRange(of: "\nstack traceback:") else { return (message, "") }
        return (String(message[..<r.lowerBound]), String(message[message.index(after: r.lowerBound)...]))
    }
}

/// The Lua side of `magritte test`: `test`, `skip` and the `assert_*` functions as globals, and
/// the functions the runner calls (kept in the registry, out of the scripts' sight).
enum TestLibrary {
    static let registryKey = "magritte.test"

    static let source = #"""
        local comment = ...
        local tests = {}
        local format, concat, select, tostring, type = string.format, table.concat, select, tostring, type
        local traceback, xpcall, error, pcall, next, loadfile = debug.traceback, xpcall, error, pcall, next, loadfile

        function print(...)
            local parts = {}
            for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
            comment(concat(parts, "\t"))
        end

        -- os.exit would end the whole run without its TAP summary: in a test file it fails the
        -- test (or the file's loading) that calls it, and the run goes on.
        os.exit = function(code)
            error(format("os.exit(%s) in a test file: magritte test does not let one file end the run (fail with error() or assert_*)", tostring(code)), 2)
        end

        --- test(name, function() ... end): registers a test; tests run in order after the file.
        function test(name, body)
            if type(name) ~= "string" then error("test: the first argument must be the test's name (a string)", 2) end
            if type(body) ~= "function" then error("test: the second argument must be the test's function", 2) end
            tests[#tests + 1] = {name = name, body = body}
        end

        --- skip(name, reason): a test reported as skipped.
        function skip(name, reason)
            if type(name) ~= "string" then error("skip: the first argument must be the test's name (a string)", 2) end
            tests[#tests + 1] = {name = name, skip = reason and tostring(reason) or "skipped"}
        end

        -- How values appear in failure messages: strings quoted, large integers also in hex,
        -- tables one level deep with sorted keys.
        local show
        local function key(k)
            if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
            return "[" .. show(k, 0) .. "]"
        end
        function show(v, depth)
            depth = depth or 2
            local t = type(v)
            if t == "string" then return (format("%q", v):gsub("\\\n", "\\n")) end
            if math.type(v) == "integer" and (v >= 256 or v < 0) then return format("%d (0x%x)", v, v) end
            if t ~= "table" then return tostring(v) end
            if depth <= 0 then return "{…}" end
            local keys, n = {}, #v
            for k in next, v do
                if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
            end
            table.sort(keys, function(a, b)
                if type(a) == type(b) and (type(a) == "number" or type(a) == "string") then return a < b end
                return type(a) < type(b)
            end)
            local parts = {}
            for i = 1, math.min(n, 16) do parts[#parts + 1] = show(v[i], depth - 1) end
            if n > 16 then parts[#parts + 1] = "…" end
            for i = 1, math.min(#keys, 16) do parts[#parts + 1] = key(keys[i]) .. " = " .. show(v[keys[i]], depth - 1) end
            if #keys > 16 then parts[#parts + 1] = "…" end
            return "{" .. concat(parts, ", ") .. "}"
        end

        local function equal(a, b, seen)
            if a == b then return true end
            if type(a) ~= "table" or type(b) ~= "table" then return false end
            seen = seen or {}
            if seen[a] == b then return true end
            seen[a] = b
            for k, v in next, a do
                if not equal(v, b[k], seen) then return false end
            end
            for k in next, b do
                if a[k] == nil then return false end
            end
            return true
        end

        local function fail(what, msg, lines)
            local head = what .. " failed" .. (msg and (": " .. tostring(msg)) or "")
            error(head .. "\n" .. concat(lines, "\n"), 3)
        end

        --- assert_eq(actual, expected [, msg]): equal values (tables compared by contents).
        function assert_eq(actual, expected, msg)
            if not equal(actual, expected) then
                fail("assert_eq", msg, {"  expected: " .. show(expected), "  actual:   " .. show(actual)})
            end
            return actual
        end

        --- assert_ne(actual, unexpected [, msg]): different values.
        function assert_ne(actual, unexpected, msg)
            if equal(actual, unexpected) then
                fail("assert_ne", msg, {"  expected anything but: " .. show(unexpected), "  actual: " .. show(actual)})
            end
            return actual
        end

        --- assert_true(value [, msg]): neither false nor nil.
        function assert_true(value, msg)
            if not value then fail("assert_true", msg, {"  expected a true value", "  actual: " .. show(value)}) end
            return value
        end

        --- assert_false(value [, msg]): false or nil.
        function assert_false(value, msg)
            if value then fail("assert_false", msg, {"  expected false or nil", "  actual: " .. show(value)}) end
            return value
        end

        --- assert_nil(value [, msg]).
        function assert_nil(value, msg)
            if value ~= nil then fail("assert_nil", msg, {"  expected: nil", "  actual:   " .. show(value)}) end
        end

        --- assert_match(s, pattern [, msg]): s is a string and string.find(s, pattern) succeeds.
        function assert_match(s, pattern, msg)
            if type(s) ~= "string" or not s:find(pattern) then
                fail("assert_match", msg, {"  pattern: " .. show(pattern), "  actual:  " .. show(s)})
            end
            return s
        end

        --- assert_error(f [, pattern [, msg]]): calling f raises an error (whose message matches
        --- pattern, a Lua pattern, or contains it as plain text); returns the error.
        function assert_error(f, pattern, msg)
            if type(f) ~= "function" then error("assert_error: the first argument must be a function", 2) end
            local results = table.pack(pcall(f))
            if results[1] then
                local got = {}
                for i = 2, results.n do got[#got + 1] = show(results[i]) end
                fail("assert_error", msg, {"  expected an error" .. (pattern and (" matching " .. show(pattern)) or ""),
                    "  but the function returned" .. (#got > 0 and (" " .. concat(got, ", ")) or " normally")})
            end
            local e = results[2]
            -- The pattern is a Lua pattern, or else plain text the message contains (messages are
            -- full of parentheses, dots and dashes).
            local function matches(s)
                local ok, found = pcall(string.find, s, pattern)
                return (ok and found) or s:find(pattern, 1, true)
            end
            if pattern ~= nil and not matches(tostring(e)) then
                fail("assert_error", msg, {"  pattern: " .. show(pattern), "  error:   " .. show(tostring(e))})
            end
            return e
        end

        -- The runner's side. Errors keep their traceback up to the test's own function.
        local function handler(e)
            local message = type(e) == "string" and e or nil
            if message == nil then
                local ok, s = pcall(tostring, e)
                message = ok and type(s) == "string" and s or ("(error object is a " .. type(e) .. " value)")
            end
            -- The traceback from the failing line to the test's function: without the frames
            -- of error() and of this library, and without the runner's own below xpcall.
            local lines = {}
            for line in traceback("", 2):gmatch("[^\n]+") do
                if line:find("^%s*%[C%]: in function 'xpcall'") then break end
                if not line:find("^%s*%(magritte test%)") and not (#lines == 1 and line:find("^%s*%[C%]: in function 'error'")) then
                    lines[#lines + 1] = line
                end
            end
            return {message = message, traceback = #lines > 1 and concat(lines, "\n") or ""}
        end

        local library = {}
        function library.load(path)
            local chunk, err = loadfile(path, "t")
            if not chunk then return err, "" end
            local ok, e = xpcall(chunk, handler)
            if not ok then return e.message, e.traceback end
        end
        function library.count() return #tests end
        function library.name(i) return tests[i].name end
        function library.skip_reason(i) return tests[i].skip end
        function library.run(i)
            local ok, e = xpcall(tests[i].body, handler)
            if not ok then return e.message, e.traceback end
        end
        return library
        """#
}
