#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import MagritteCore
import MagritteGDB
import MagritteHypervisor
import MagritteMachine

/// `magritte vmm IMAGE…`: boots each image as an unmodified guest of the trap-and-emulate VMM,
/// side by side on one emulated MIPS CPU.
struct VMMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmm",
        abstract: "Boot several kernels side by side as guests of the trap-and-emulate VMM.",
        discussion: """
            Each IMAGE becomes a guest with its own RAM, virtual CP0, virtual TLB, UART and power \
            register; the guests share one emulated CPU, which the VMM switches between them. \
            Every console line of a guest is written to stdout as "NAME| text". Per-guest \
            options (--name, --append, --guest-ram) apply to the images in order. Exit status: \
            0 when every guest has powered off, 2 when the instruction limit is hit, 3 when the \
            guests still on all wait for an interrupt that nothing can raise, 1 on errors.

            Example: magritte vmm teachos.elf teachos.elf --append idle=spin --append idle=wait --stats
            """)

    @Argument(help: "The guest kernels: ELF32 little-endian MIPS executables.")
    var images: [String] = []

    @Option(name: .customLong("name"), help: ArgumentHelp("A guest's name (repeat for each image; default: the file name).", valueName: "name"))
    var names: [String] = []

    @Option(name: .customLong("append"), help: ArgumentHelp("A guest's kernel command line (repeat for each image).", valueName: "text"))
    var commandLines: [String] = []

    @Option(name: .customLong("guest-ram"), help: ArgumentHelp("A guest's RAM (repeat for each image; default 32M).", valueName: "size"),
            transform: parseRAMSize)
    var guestRAM: [Int] = []

    @Option(name: .customLong("initrd"), help: ArgumentHelp("A guest's initial RAM disk, as QEMU's -initrd (repeat for each image; \"\" for none).", valueName: "file"))
    var initrds: [String] = []

    @Option(help: ArgumentHelp("The machine's RAM, shared out among the guests (at most 256M).", valueName: "size"), transform: parseRAMSize)
    var ram: Int = 256 << 20

    @Option(help: ArgumentHelp("Instructions a guest runs before the VMM switches machines.", valueName: "n"))
    var slice: UInt64 = 200_000

    @Flag(help: "End a guest's slice as soon as the VMM sees it spinning in its idle loop.")
    var descheduleSpinners = false

    @Flag(help: "Take an exit for every guest device access instead of serving it through the device window (Docs/vmm.md): for comparisons.")
    var noDeviceWindow = false

    @Option(help: ArgumentHelp("Stop after this many guest instructions in all (exit status 2).", valueName: "n"))
    var maxInstructions: UInt64?

    @Option(help: ArgumentHelp("Print the lecture's table of a flow from this run: syscall or tlb-miss.", valueName: "flow"))
    var table: [LectureFlow] = []

    @Option(help: ArgumentHelp("Write the flows of --table as an SVG sequence diagram to this file.", valueName: "file"))
    var svg: String?

    @Option(help: ArgumentHelp("Write a timeline of the run as SVG to this file: per guest, when it ran, spun, waited and was switched to, with its exits per slice.", valueName: "file"))
    var timeline: String?

    @Option(help: ArgumentHelp("Connect the terminal to this guest's UART: its output goes to stdout as it comes (not line by line), stdin is its input.", valueName: "name"))
    var console: String?

    @Flag(help: "Print per-guest figures on stderr at the end: traps, emulated instructions, TLB fills, idle time, exits by kind and the top exit sites.")
    var stats = false

    @Option(help: ArgumentHelp("Wait for gdb on 127.0.0.1:PORT before the first instruction; each guest is a thread (Docs/gdb.md).", valueName: "port"))
    var gdb: UInt16?

    @Option(help: ArgumentHelp("The CPU engine: jit (translated code, x86-64 Linux hosts) or interpreter.", valueName: "name"))
    var engine: Engine = .hostDefault

    @Flag(help: "Print a progress line (time, guest instructions, MIPS, the guests' states) on stderr every second.")
    var progress = false

    /// `--record FILE` / `--replay FILE`: the --console guest's input, by machine time (VMMInputLog).
    @OptionGroup var session: SessionLog

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one guest image") }
        for name in names where name.isEmpty || name.contains(where: \.isNewline) || name.contains("|") {
            // Output lines are "NAME| text": a name must be one visible, unambiguous word.
            throw ValidationError("--name \(name.debugDescription): a guest's name must be non-empty, on one line and without '|'")
        }
        if names.count > images.count { throw ValidationError("\(names.count) names for \(images.count) images") }
        if commandLines.count > images.count { throw ValidationError("\(commandLines.count) command lines for \(images.count) images") }
        if guestRAM.count > images.count { throw ValidationError("\(guestRAM.count) RAM sizes for \(images.count) images") }
        if initrds.count > images.count { throw ValidationError("\(initrds.count) initrds for \(images.count) images") }
        if slice == 0 { throw ValidationError("the slice must be at least one instruction") }
        if svg != nil && table.isEmpty { throw ValidationError("--svg draws the flows of --table: give --table syscall or --table tlb-miss") }
    }

    func run() throws {
        let vmm: VMM
        do { vmm = try VMM(ramSize: ram, engine: engine) } catch {
            complain(error.message)
            throw ExitCode(1)
        }
        vmm.slice = slice
        vmm.spinPolicy = descheduleSpinners ? .deschedule : .account
        vmm.mapsDevices = !noDeviceWindow
        vmm.collectsExitSites = stats
        vmm.trace.recording = !table.isEmpty  // only the lecture's tables read the trace afterwards
        var taken = Set<String>()
        for (i, image) in images.enumerated() {
            let name = i < names.count ? names[i] : uniqueName(for: image, taken: taken)
            taken.insert(name)
            var config = GuestConfiguration(name: name)
            if i < commandLines.count { config.commandLine = commandLines[i] }
            if i < guestRAM.count { config.ramSize = guestRAM[i] }
            if i < initrds.count, !initrds[i].isEmpty {
                do { config.initrd = try readFile(initrds[i], limit: MaltaBus.maxRAMSize) } catch {
                    complain("cannot read the initrd '\(initrds[i])': \(error.reason)")
                    throw ExitCode(1)
                }
            }
            do { try vmm.addGuest(config, imagePath: image) } catch {
                complain(error.message)
                throw ExitCode(1)
            }
        }
        let width = vmm.guests.map(\.name.count).max() ?? 0
        let output = ConsoleOutput()
        var input: StdinConsole?
        let reporter = ProgressReporter(flag: progress)
        if let console {
            guard let g = vmm.guests.first(where: { $0.name == console }) else {
                complain("--console \(console): no guest of that name (guests: \(vmm.guests.map(\.name).joined(separator: ", ")))")
                throw ExitCode(1)
            }
            if session.replay == nil {
                let stdin = StdinConsole()
                stdin.onQuit = { [unowned vmm] in vmm.stop() }
                input = stdin
                g.board.consoleInput = stdin
                vmm.paceIdleToHostClock = isatty(0) != 0
            }
            g.onOutput = { output.put($0); reporter.noteOutput() }
            vmm.onSliceEnd = { output.flush() }
        }
        var replayEnd: UInt64?
        if let path = session.replay {
            do {
                let log = try VMMInputLog(contentsOfFile: path)
                try VMMReplayInput.replay(log, on: vmm, guests: vmm.guests.filter { $0.name == console })
                replayEnd = log.end
            } catch {
                complain(error.message)
                throw ExitCode(1)
            }
        } else if session.record != nil {
            vmm.inputLog = VMMInputLog(recording: vmm)
        }
        defer { input?.close() }
        let flushConsole = vmm.onSliceEnd
        vmm.onSliceEnd = { [unowned vmm] in
            flushConsole?()
            var instructions: UInt64 = 0
            for g in vmm.guests { instructions += g.statistics.instructions }
            reporter.tick(instructions: instructions) {
                vmm.guests.map { "\($0.name) \($0.state == .runnable ? "running" : $0.state == .waiting ? "waiting" : "off")" }
                    .joined(separator: ", ")
            }
        }
        vmm.onConsoleLine = { guest, line in
            if guest.name == console { return }  // printed raw, as it comes
            let pad = String(repeating: " ", count: width - guest.name.count)
            for byte in (guest.name + pad + "| " + line + "\n").utf8 { output.put(byte) }
            output.flush()
            reporter.noteOutput()
        }
        let slices = timeline.map { _ in Timeline(vmm) }
        // A checkpoint per 10 million instructions, as `magritte boot --gdb` (a Linux guest ran 14
        // times slower with one per million).
        if let gdb { try serveDebugger(VMMTarget(vmm: vmm, timeTravel: VMMTimeTravel(vmm: vmm, interval: 10_000_000)), port: gdb) }
        let start = monotonicSeconds()
        // A replay ends where the recorded session ended.
        let outcome = vmm.run(maxInstructions: min(maxInstructions ?? .max, replayEnd ?? .max))
        let elapsed = monotonicSeconds() - start
        if let path = session.record, let log = vmm.inputLog {
            log.end = vmm.cpu.executedInstructions
            do { try log.write(toFile: path) } catch {
                complain(error.message)
                throw ExitCode(1)
            }
        }
        for g in vmm.guests where !g.pendingLine.isEmpty && g.name != console {
            for byte in (g.name + "| " + g.pendingLine + "\n").utf8 { output.put(byte) }
        }
        output.flush()

        for flow in table {
            print(LectureTables.render(flow, trace: vmm.trace.events, guests: vmm.guests), terminator: "")
        }
        if let svg {
            let text = SequenceDiagram.svg(flows: table, trace: vmm.trace.events, guests: vmm.guests)
            guard writeFile(svg, text) else {
                complain("cannot write \(svg)")
                throw ExitCode(1)
            }
        }
        if let timeline, let slices, !writeFile(timeline, slices.svg()) {
            complain("cannot write \(timeline)")
            throw ExitCode(1)
        }
        if stats {
            var err = StandardError()
            print("engine: \(vmm.cpu.engine)", to: &err)
            printJITStatistics(vmm.cpu, to: &err)
            for line in vmm.report(seconds: elapsed) { print(line, to: &err) }
        }
        switch outcome {
        case .allPoweredOff, .stopped:
            return
        case .instructionLimit where replayEnd == vmm.cpu.executedInstructions:
            return  // where the recorded session ended
        case .instructionLimit:
            complain("instruction limit reached (\(maxInstructions ?? 0) instructions); still on: \(vmm.guests.filter { $0.state != .poweredOff }.map(\.name).joined(separator: ", "))")
            throw ExitCode(2)
        case .deadlock:
            complain("the guests still on wait for an interrupt that nothing can raise: \(vmm.guests.filter { $0.state != .poweredOff }.map(\.name).joined(separator: ", "))")
            throw ExitCode(3)
        case .outOfHostMemory:
            complain("\(CPU.outOfHostMemoryMessage) in guest \(vmm.current?.name ?? "?")")
            throw ExitCode(1)
        }
    }

    /// The file name without directory and extension; "teachos", "teachos-2", … when repeated.
    func uniqueName(for path: String, taken: Set<String>) -> String {
        var base = String(path.split(separator: "/").last ?? Substring(path))
        if base.hasSuffix(".elf") { base = String(base.dropLast(4)) }
        if !taken.contains(base) { return base }
        var n = 2
        while taken.contains("\(base)-\(n)") { n += 1 }
        return "\(base)-\(n)"
    }
}

extension LectureFlow: ExpressibleByArgument {}
