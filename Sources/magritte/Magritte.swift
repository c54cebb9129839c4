#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser

/// The `magritte` command line.
@main
struct Magritte: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "magritte",
        abstract: "A MIPS Malta emulator. Ceci n'est pas une machine.",
        usage: """
            magritte [-e CHUNK]... [-i] [-v] [SCRIPT.lua [ARGS...]]   (as lua)
            magritte <command> [options]
            """,
        discussion: """
            Without a command, starts the Lua console (magritte repl). As with lua: \
            `magritte SCRIPT.lua ARGS…` runs a script (`arg` and `...` hold its arguments), \
            `-e CHUNK` runs a chunk, `-i` enters the console after them, `-v` (--version) prints \
            the version, `-` runs standard input.
            """,
        subcommands: [Repl.self, Run.self, Test.self, Boot.self, VMMCommand.self, Linux.self, Disasm.self],
        defaultSubcommand: Repl.self)

    /// `lua`'s command line first (a script, -e, -i, -v), then the subcommands.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch LuaCommandLine.parse(arguments, commands: configuration.subcommands.map { $0._commandName }) {
        case .subcommand:
            main(nil)
        case .lua(let line):
            Magritte.exit(withError: ExitCode(line.run()))
        case .error(let message):
            complain(message)
            Magritte.exit(withError: ExitCode(1))
        }
    }
}

/// Writes a line to stderr, prefixed with the program name.
func complain(_ message: String) {
    var stderr = StandardError()
    print("magritte: \(message)", to: &stderr)
}
