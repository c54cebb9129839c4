#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import MagritteLua

/// `magritte run SCRIPT.lua [args…]`: runs a Lua script as `lua SCRIPT.lua args…` would.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a Lua script (a scenario) with the magritte module loaded.",
        discussion: """
            The script sees its arguments as `...` and in the global `arg`, as with lua: \
            arg[0] is the script, arg[1]… the arguments, arg[-1] "run" and arg[-2] the program. \
            "-" reads the script from standard input. Ctrl-C interrupts the script (a running \
            guest stops). Exit status: 0, or 1 with the error and a traceback on stderr.
            """)

    @Argument(help: ArgumentHelp("The Lua script, or - for standard input.", valueName: "script"))
    var script: String

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Arguments for the script.", valueName: "args"))
    var arguments: [String] = []

    func run() throws {
        let console = Console()
        console.setArguments(program: CommandLine.arguments.first ?? "magritte", options: ["run"], script: script, after: arguments)
        guard script == "-" ? console.loadFile(nil) : console.loadFile(script) else { throw ExitCode(1) }
        guard console.execute(printResults: false, errorPrefix: "magritte: ", arguments: arguments) else {
            throw ExitCode(1)
        }
    }
}
