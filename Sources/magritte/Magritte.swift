import ArgumentParser

/// The `magritte` command line.
@main
struct Magritte: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "magritte",
        abstract: "A MIPS Malta emulator. Ceci n'est pas une machine.",
        discussion: "Without a command, starts the Lua console (magritte repl).",
        subcommands: [Repl.self, Run.self, Test.self, Boot.self, VMMCommand.self, Linux.self, Disasm.self],
        defaultSubcommand: Repl.self)
}

/// Writes a line to stderr, prefixed with the program name.
func complain(_ message: String) {
    var stderr = StandardError()
    print("magritte: \(message)", to: &stderr)
}
