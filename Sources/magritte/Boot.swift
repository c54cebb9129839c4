#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import MagritteCore
import MagritteGDB
import MagritteMachine

/// `magritte boot FILE.elf`: runs a kernel on the Malta with the console on stdin/stdout.
struct Boot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Boot an ELF kernel on the Malta board, as qemu-system-mipsel -M malta -kernel does.",
        discussion: """
            The console UART (16550 at ISA port 0x3F8) is connected to stdin and stdout. Exit \
            status: 0 when the guest powers off (SOFTRES) or Ctrl-A x ends it, 2 when the \
            instruction limit is hit, 3 when the guest waits for input that can never come, 1 on \
            errors. On a terminal, Ctrl-C goes to the guest (as on QEMU's -nographic console); \
            Ctrl-A x ends the emulator, Ctrl-A Ctrl-A sends Ctrl-A, Ctrl-A h lists these.
            """)

    @Argument(help: "The kernel: an ELF32 little-endian MIPS executable.")
    var file: String

    @Option(help: ArgumentHelp("RAM size (K, M or G suffix), at most 256M.", valueName: "size"),
            transform: parseRAMSize)
    var ram: Int = 128 << 20

    @Option(help: ArgumentHelp("Stop after this many instructions (exit status 2).", valueName: "n"))
    var maxInstructions: UInt64?

    @Option(name: .customLong("append"), help: ArgumentHelp("Kernel command line (argv[1]), as QEMU's -append.", valueName: "text"))
    var commandLine: String = ""

    @Option(help: ArgumentHelp("Initial RAM disk, placed in RAM and announced on the command line (rd_start=, rd_size=) as QEMU's -initrd does.", valueName: "file"))
    var initrd: String?

    @Flag(help: "Print instruction count, host time, speed and exceptions on stderr at the end.")
    var stats = false

    @Option(help: ArgumentHelp("Wait for gdb on 127.0.0.1:PORT before the first instruction (0: any free port; Docs/gdb.md).", valueName: "port"))
    var gdb: UInt16?

    @Option(help: ArgumentHelp("The CPU engine: jit (translated code, x86-64 Linux hosts) or interpreter.", valueName: "name"))
    var engine: Engine = .hostDefault

    @Flag(help: "Print a progress line (time, instructions, MIPS) on stderr every second; on a terminal, lines appear anyway after 3 s without console output.")
    var progress = false

    @OptionGroup var session: SessionLog

    func run() throws {
        try bootAndRun(kernel: file, initrd: initrd, ram: ram, commandLine: commandLine,
                       maxInstructions: maxInstructions, stats: stats, progress: progress, engine: engine, gdb: gdb, session: session)
    }
}

/// `--record FILE` / `--replay FILE`: the console input of a session, logged by instruction on a
/// bare machine (`magritte boot`, `magritte linux`) and by machine time under the VMM
/// (`magritte vmm`, the --console guest's input) (Docs/time-travel.md).
struct SessionLog: ParsableArguments {
    @Option(help: ArgumentHelp("Write the console input to this file, each delivery at its position (the instruction count; under the VMM, the machine time); replay it with --replay.", valueName: "file"))
    var record: String?

    @Option(help: ArgumentHelp("Feed the console input recorded with --record instead of reading stdin: the session runs again exactly.", valueName: "file"))
    var replay: String?

    func validate() throws {
        if record != nil && replay != nil { throw ValidationError("--record and --replay cannot be used together") }
    }
}

/// Boots `kernel` (and `initrd`) on a Malta with the console on stdin/stdout and exits as
/// `magritte boot` documents.
func bootAndRun(kernel file: String, initrd: String?, ram: Int, commandLine: String,
                maxInstructions: UInt64?, stats: Bool, progress: Bool, engine: Engine, gdb: UInt16? = nil,
                session: SessionLog = SessionLog(), holdInputUntilListened: Bool = false) throws {
    var config = MaltaConfiguration(ramSize: ram)
    config.cpu.engine = engine
    config.commandLine = commandLine
    let output = ConsoleOutput()
    let reporter = ProgressReporter(flag: progress)
    let malta: Malta
    do { malta = try Malta.make(configuration: config, output: { output.put($0); reporter.noteOutput() }) } catch {
        complain(error.message)
        throw ExitCode(1)
    }
    do {
        try malta.load(path: file)
    } catch {
        if error.kind == .unreadable {
            complain(error.message)
        } else {
            complain("\(file): \(error.message)")
        }
        throw ExitCode(1)
    }
    if let initrd {
        do {
            try malta.loadInitrd(path: initrd)
        } catch {
            complain(error.message)
            throw ExitCode(1)
        }
    }
    malta.boot()
    let input = StdinConsole()
    input.onQuit = { [unowned malta] in malta.cpu.requestStop() }
    malta.consoleInput = input
    if holdInputUntilListened {
        // Until the guest's driver enables the UART's receive interrupt (Linux: the console
        // port is opened), input is held, not lost in the driver's probe and FIFO resets.
        malta.consoleInput = HeldConsoleInput(input) { [unowned malta] in malta.uart.ier & UART16550.IER.receivedData != 0 }
    }
    // On a terminal, an idle guest waits for the host's clock instead of racing ahead of it.
    malta.paceIdleToHostClock = isatty(0) != 0
    malta.onBatchEnd = { [unowned malta] in
        output.flush()
        reporter.tick(instructions: malta.cpu.retiredInstructions)
    }
    if let path = session.replay {
        do { malta.consoleInput = ReplayInput(try InputLog(contentsOfFile: path), board: malta) } catch {
            complain(error.message)
            throw ExitCode(1)
        }
    } else if session.record != nil {
        malta.inputLog = InputLog(recording: malta)
    }
    // Under gdb the machine records its history, so that reverse-stepi and reverse-continue work.
    // A checkpoint copies every page in use: one per 10 million instructions keeps a booting
    // Linux (tens of MB each) at +50 % instead of 15 times slower with one per million, and a
    // reverse-stepi re-executes at most that (tens of ms).
    if let gdb {
        let history = TimeTravel(board: malta, interval: 10_000_000)
        output.keepTranscript()
        history.console = { output.transcript ?? [] }
        history.onRestore = { output.rewind(to: $0.console ?? []) }
        try serveDebugger(MachineTarget(machine: malta, timeTravel: history), port: gdb)
    }

    let start = monotonicSeconds()
    let outcome = malta.run(maxInstructions: maxInstructions ?? .max)
    let elapsed = monotonicSeconds() - start
    output.flush()
    input.close()
    if let path = session.record, let log = malta.inputLog {
        do { try log.write(toFile: path) } catch {
            complain(error.message)
            throw ExitCode(1)
        }
    }

    if stats { printStats(malta.cpu, seconds: elapsed) }
    if input.quitRequested {
        complain("ended by Ctrl-A x")
        return
    }
    let pc = Hex.prefixed(malta.cpu.pc)
    switch outcome {
    case .poweredOff:
        return
    case .instructionLimit:
        complain("instruction limit reached (\(maxInstructions ?? 0) instructions) at pc \(pc)")
        throw ExitCode(2)
    case .deadlock:
        complain("the guest waits for an interrupt that nothing can raise (no timer, no more input) at pc \(pc)")
        throw ExitCode(3)
    case .stopped:
        complain("stopped at pc \(pc)")
        throw ExitCode(130)
    case .outOfHostMemory:
        complain("\(CPU.outOfHostMemoryMessage) at pc \(pc)")
        throw ExitCode(1)
    }
}

/// The translator's counters for `--stats` (nothing under the interpreter).
func printJITStatistics(_ cpu: CPU, to err: inout StandardError) {
    guard cpu.engine == .jit else { return }
    let j = cpu.jitStatistics
    print("jit: \(j.blocks) blocks of \(j.guestInstructions) instructions, \(j.bytes) bytes, \(j.links) links, \(j.instructionsRun) instructions run translated (\(j.entries) blocks entered from the loop), \(j.flushes) flushes, \(j.invalidations) invalidations (\(j.retranslations) blocks translated again), translation \(format(Double(j.translationNanoseconds) / 1e9, digits: 4)) s", to: &err)
    if j.trapsGoneOn > 0 { print("jit: \(j.trapsGoneOn) handled traps went on in their block", to: &err) }
    if j.batchEndsInPlace + j.exceptionsGoneOn + j.lookupRefills > 0 {
        print("jit: \(j.batchEndsInPlace) batch ends in place, \(j.exceptionsGoneOn) exceptions and erets went on through the lookup, \(j.lookupRefills) lookup misses refilled", to: &err)
    }
    let top = j.returns.prefix(8).map { "\($0.reason) \($0.count)" }
    print("jit returns to the loop: \(top.joined(separator: ", "))", to: &err)
}

/// The `--stats` report on stderr.
func printStats(_ cpu: CPU, seconds: Double) {
    var err = StandardError()
    let n = cpu.retiredInstructions
    print("instructions: \(n)", to: &err)
    print("host time: \(format(seconds, digits: 3)) s", to: &err)
    print("MIPS: \(format(seconds > 0 ? Double(n) / seconds / 1e6 : 0, digits: 1))", to: &err)
    print("engine: \(cpu.engine)", to: &err)
    printJITStatistics(cpu, to: &err)
    let taken = ExceptionCode.allCases.filter { cpu.exceptionCounts[Int($0.rawValue)] > 0 }
    if taken.isEmpty {
        print("exceptions: none", to: &err)
    } else {
        print("exceptions:", to: &err)
        for code in taken {
            print("  \(code.description): \(cpu.exceptionCounts[Int(code.rawValue)])", to: &err)
        }
    }
}

/// The --ram transform: MaltaConfiguration's parser, its message as the validation error.
func parseRAMSize(_ text: String) throws -> Int {
    do {
        return try MaltaConfiguration.ramSize(parsing: text)
    } catch {
        throw ValidationError(error.message)
    }
}

/// `value` with `digits` decimals (no Foundation needed).
func format(_ value: Double, digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (value * scale).rounded()
    guard scaled.isFinite, abs(scaled) < 1e17 else { return "\(value)" }
    let whole = Int64(scaled)
    let sign = whole < 0 ? "-" : ""
    let magnitude = whole.magnitude
    let integer = magnitude / UInt64(scale)
    guard digits > 0 else { return sign + String(integer) }
    var fraction = String(magnitude % UInt64(scale))
    while fraction.count < digits { fraction = "0" + fraction }
    return sign + String(integer) + "." + fraction
}
