#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import MagritteCore

/// `magritte linux`: boots Debian's Malta kernel with the busybox initramfs that
/// `Scripts/fetch-linux` builds, and gives a shell on the terminal (see Docs/linux.md).
struct Linux: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Boot Debian's mipsel Malta Linux to a busybox shell on this terminal.",
        discussion: """
            Uses the kernel and initramfs that Scripts/fetch-linux caches in .cache/linux \
            (or --dir). As `magritte boot DIR/vmlinuz --initrd DIR/initrd.gz --append \
            "console=ttyS0"`, except that input typed or piped in before the kernel opens its \
            console is held until then instead of lost (`printf 'uname -a\\nexit\\n' | magritte \
            linux` runs both commands). Leave the shell with `exit` or Ctrl-D: the init powers \
            the board off. --check runs the deterministic report the Linux test compares with \
            QEMU instead of the shell.
            """)

    @Option(help: ArgumentHelp("Where vmlinuz and initrd.gz are.", valueName: "dir"))
    var dir: String?

    @Option(help: ArgumentHelp("RAM size (K, M or G suffix), at most 256M.", valueName: "size"),
            transform: parseRAMSize)
    var ram: Int = 128 << 20

    @Option(name: .customLong("append"), help: ArgumentHelp("More kernel command line after console=ttyS0.", valueName: "text"))
    var extra: String = ""

    @Flag(help: "Run the check report (magritte.check) and power off instead of starting a shell.")
    var check = false

    @Flag(help: "Print instruction count, host time, speed and exceptions on stderr at the end.")
    var stats = false

    @Option(help: ArgumentHelp("The CPU engine: jit (translated code, x86-64 Linux hosts) or interpreter.", valueName: "name"))
    var engine: Engine = .hostDefault

    @Flag(help: "Print a progress line (time, instructions, MIPS) on stderr every second.")
    var progress = false

    @OptionGroup var session: SessionLog

    func run() throws {
        let directory = dir ?? getenv("MAGRITTE_LINUX_DIR").map { String(cString: $0) } ?? ".cache/linux"
        let kernel = directory + "/vmlinuz", initrd = directory + "/initrd.gz"
        guard access(kernel, R_OK) == 0, access(initrd, R_OK) == 0 else {
            complain("no \(kernel) or \(initrd): run Scripts/fetch-linux first (or give --dir)")
            throw ExitCode(1)
        }
        var commandLine = "console=ttyS0"
        if check { commandLine += " magritte.check" }
        if !extra.isEmpty { commandLine += " " + extra }
        // The kernel decompresses itself for about 4 billion instructions before its first line.
        complain("booting \(kernel): it decompresses itself first, silently (seconds of nothing on the console)")
        try bootAndRun(kernel: kernel, initrd: initrd, ram: ram, commandLine: commandLine,
                       maxInstructions: nil, stats: stats, progress: progress, engine: engine, session: session,
                       holdInputUntilListened: true)
    }
}
