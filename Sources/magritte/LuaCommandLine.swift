#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CMagritteLua
import MagritteLua

/// `magritte` used as `lua`: `[-e CHUNK]… [-i] [-v] [SCRIPT [ARGS…]]`, as lua.c's options.
struct LuaCommandLine: Equatable {
    var chunks: [String] = []
    var interactive = false
    var version = false
    /// The script ("-" for standard input), or nil.
    var script: String?
    /// The arguments before the script (options) and after it.
    var options: [String] = []
    var scriptArguments: [String] = []

    enum Parsed: Equatable {
        /// Not lua's command line: a subcommand (or help) for ArgumentParser.
        case subcommand
        case lua(LuaCommandLine)
        case error(String)
    }

    /// What `arguments` (without the program name) ask for. Lua's form when the first argument
    /// is -e, -i, -v, --version, - or --, or a word that is not one of `commands` and names an
    /// existing file, a path or a `.lua` file; any other word is an unknown command.
    static func parse(_ arguments: [String], commands: [String]) -> Parsed {
        guard let first = arguments.first else { return .subcommand }
        let luaOptions: Set<String> = ["-e", "-i", "-v", "--version", "-", "--"]
        if !luaOptions.contains(first) {
            if commands.contains(first) || helpOptions.contains(first) { return .subcommand }
            if first.hasPrefix("-") {
                return .error("unrecognized option '\(first)' (options: -e CHUNK, -i, -v, --version, -h; see magritte --help)")
            }
            if !(first.hasSuffix(".lua") || first.contains("/") || isFile(first)) {
                return .error("unknown command '\(first)' (commands: \(commands.joined(separator: ", ")); "
                              + "a Lua script runs as magritte SCRIPT.lua; see magritte --help)")
            }
        }
        var line = LuaCommandLine()
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a == "--" { i += 1; break }
            if a == "-" || !a.hasPrefix("-") { break }
            switch a {
            case "-e":
                guard i + 1 < arguments.count else { return .error("'-e' needs an argument (a Lua chunk)") }
                line.chunks.append(arguments[i + 1])
                i += 2
                continue
            case "-i":
                line.interactive = true
                line.version = true
            case "-v", "--version":
                line.version = true
            default:
                return .error("unrecognized option '\(a)' (the options before a script are -e CHUNK, -i, -v, - and --)")
            }
            i += 1
        }
        line.options = Array(arguments[..<min(i, arguments.count)])
        if i < arguments.count {
            line.script = arguments[i]
            line.scriptArguments = Array(arguments[(i + 1)...])
        }
        return .lua(line)
    }

    /// ArgumentParser's own options at the top level.
    static let helpOptions: Set<String> = ["-h", "--help", "help", "--generate-completion-script", "--experimental-dump-help"]

    static func isFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// Runs it as lua.c does: the version, the -e chunks, the script, then the console (with -i,
    /// or when nothing else was asked and stdin is a terminal). Returns the exit status.
    func run() -> Int32 {
        let console = Console()
        let program = CommandLine.arguments.first ?? "magritte"
        console.setArguments(program: program, options: options, script: script, after: scriptArguments)
        if version { console.write(console.versionLine + "\n") }
        for chunk in chunks {
            guard console.load(chunk, name: "=(command line)"),
                  console.execute(printResults: false, errorPrefix: "magritte: ") else { return 1 }
        }
        if let script {
            if script == "-" {
                guard console.runStandardInput(arguments: scriptArguments) else { return 1 }
            } else {
                guard console.loadFile(script),
                      console.execute(printResults: false, errorPrefix: "magritte: ", arguments: scriptArguments) else { return 1 }
            }
        }
        if interactive || (script == nil && chunks.isEmpty && !version) {
            if isatty(0) != 0 {
                console.interact(banner: !version)
            } else if !console.runStandardInput() {
                return 1
            }
        }
        return 0
    }
}
