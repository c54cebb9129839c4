#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MagritteCore

/// How to build a Malta.
public struct MaltaConfiguration: Sendable {
    /// RAM at physical 0, in bytes: a multiple of 4 KiB from 1 MiB to 256 MiB.
    public var ramSize: Int = 128 << 20
    /// The CPU model (a 24Kc by default).
    public var cpu = CPUConfiguration()
    /// The kernel command line, passed as argv[1] (QEMU's `-append`).
    public var commandLine = ""
    /// The 32 bytes passed as the "rngseed" environment variable. QEMU draws them from the host;
    /// here they are fixed so that runs are deterministic.
    public var rngSeed = [UInt8](repeating: 0, count: 32)
    /// The emulated CPU clock: instruction slots per second of guest time. Guest time is
    /// `CPU.cycles` at this rate (CP0 Count runs at half of it); the RTC and the PIT keep time
    /// by it. 100 MHz by default: Linux reports "CPU frequency 100.00 MHz".
    public var cpuFrequency: UInt64 = 100_000_000
    /// What the RTC reads at guest time 0, in seconds since 1970-01-01 UTC. Fixed (QEMU uses the
    /// host's clock) so that runs are deterministic: 2000-01-01 00:00:00 by default.
    public var rtcStartTime: Int64 = 946_684_800

    public init(ramSize: Int = 128 << 20) {
        self.ramSize = ramSize
    }
}

/// Where the guest's console input comes from (the host's stdin in the command line).
public protocol ConsoleInput: AnyObject {
    /// The bytes available now, without blocking (empty when there are none).
    func poll() -> [UInt8]
    /// Blocks until bytes are available and returns them; nil when no input will ever come
    /// (end of file, or a source that cannot wait).
    func waitForInput() -> [UInt8]?
    /// Waits at most `nanoseconds` for bytes (host time) and returns what arrived (empty if
    /// none). Used by idle pacing (`Malta.paceIdleToHostClock`).
    func waitForInput(timeoutNanoseconds nanoseconds: UInt64) -> [UInt8]
}

extension ConsoleInput {
    /// The default: sleeps for the time unless bytes are already there.
    public func waitForInput(timeoutNanoseconds nanoseconds: UInt64) -> [UInt8] {
        let bytes = poll()
        if !bytes.isEmpty { return bytes }
        var ts = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        nanosleep(&ts, nil)
        return poll()
    }
}

/// Why `Malta.run` returned.
public enum RunOutcome: Equatable, Sendable {
    /// The guest wrote the reset magic to SOFTRES (QEMU with `-no-reboot` exits there), or
    /// powered the board off through the PIIX4 (Linux's `poweroff`).
    case poweredOff
    /// The instruction budget given to `run` is used up.
    case instructionLimit
    /// The CPU waits (WAIT) for an interrupt that nothing can raise: no timer, and no console
    /// input to come.
    case deadlock
    /// The host called `cpu.requestStop()`.
    case stopped
    /// The host could not give memory the CPU needed to go on (`CPU.outOfHostMemory`); the
    /// machine is as it was before the instruction, and running again retries.
    case outOfHostMemory
}

/// The MIPS Malta board: 24Kc CPU, RAM, the GT-64120 system controller, the PIIX4's i8259
/// pair, RTC and PIT, the ISA 16550 UART (COM1), the FPGA registers with SOFTRES and the CBUS
/// UART, and the boot ROM, wired as QEMU's `-M malta` (see `Docs/board.md`). Loads an ELF
/// kernel (and an initrd) and starts it as QEMU's `-kernel` boot loader does.
public final class Malta {
    public let configuration: MaltaConfiguration
    public let bus: MaltaBus
    public let cpu: CPU
    /// The PIIX4's ISA I/O port space at physical 0x18000000.
    public let isa: ISAPortSpace
    /// The console: the Super I/O's 16550 at ISA port 0x3F8 (physical 0x180003F8).
    public let uart: UART16550
    /// The FPGA's CBUS UART at physical 0x1F000900 (registers 8 bytes apart). Its output goes
    /// nowhere unless a sink is set, as with QEMU's default `-nographic`.
    public let cbusUART: UART16550
    public let fpga: MaltaFPGA
    /// Guest time (the CPU's cycles at `MaltaConfiguration.cpuFrequency`).
    public let clock: GuestClock
    /// The PIIX4's cascaded i8259 interrupt controllers (ISA ports 0x20, 0xA0, ELCR 0x4D0).
    public let pic: I8259Pair
    /// The PIIX4's MC146818 real-time clock (ISA ports 0x70–0x71, IRQ 8).
    public let rtc: MC146818
    /// The PIIX4's i8254 interval timer (ISA ports 0x40–0x43).
    public let pit: I8254
    /// The GT-64120 system controller's registers at physical 0x1BE00000.
    public let systemController: GT64120
    /// The PIIX4's PCI functions (ISA bridge, power management with the soft-off register).
    public let piix4: PIIX4
    /// The boot ROM at physical 0x1FC00000 (4 MiB) and its flash original at 0x1E000000.
    public let bootROM: ReadOnlyMemory
    public let flash: ReadOnlyMemory
    /// The entry address the boot ROM jumps to (what `writeROMs` last wrote).
    private(set) var romEntry: UInt32 = 0
    /// The loaded kernel, if any.
    public private(set) var image: ELFImage?
    /// The initial RAM disk `boot()` places in RAM and announces on the command line.
    public private(set) var initrd: [UInt8]?
    /// Where `boot()` put the initrd (physical address), as QEMU would.
    public private(set) var initrdAddress: UInt32?

    /// The ISA interrupt controller's (the master i8259's) output reaches CPU hardware
    /// interrupt 0 (Cause.IP2).
    public static let isaInterruptLine = 0
    /// ISA interrupt numbers at the i8259 pair.
    public enum IRQ {
        public static let pit = 0
        public static let com1 = 4
        public static let rtc = 8
    }
    /// The CBUS UART drives CPU hardware interrupt 2 (Cause.IP4).
    public static let cbusInterruptLine = 2

    /// Physical addresses of the board's windows.
    public enum Address {
        public static let isaIO: UInt32 = 0x1800_0000
        public static let systemController: UInt32 = 0x1BE0_0000
        public static let uart: UInt32 = 0x1800_03F8
        public static let flash: UInt32 = 0x1E00_0000
        public static let fpga: UInt32 = 0x1F00_0000
        public static let cbusUART: UInt32 = 0x1F00_0900
        public static let bootROM: UInt32 = 0x1FC0_0000
        public static let softReset: UInt32 = 0x1F00_0500
    }

    /// Instructions per batch in `run`; between batches devices are serviced and input polled.
    public var batchSize: UInt64 = 1_000_000
    /// Console input, polled between batches (nil: no input).
    public var consoleInput: (any ConsoleInput)?
    /// Interactive pacing: guest time that passes idle (in WAIT, skipped to the next timer
    /// interrupt) may not run ahead of the host's clock; the board waits for console input for
    /// the difference instead. An idle Linux (250 timer ticks a second) then costs the host
    /// almost nothing and its clock keeps to the wall clock. Off by default, so that runs are
    /// deterministic and as fast as they can be; the command line turns it on for a terminal.
    /// While on, `run` executes batches of at most `pacedBatchSize` instructions.
    public var paceIdleToHostClock = false
    public var pacedBatchSize: UInt64 = 100_000
    /// The host's monotonic clock in nanoseconds (replaceable for tests).
    public var hostNanoseconds: () -> UInt64 = Malta.monotonicNanoseconds
    /// Host time and guest time at which pacing started (the first paced `run` after `boot`).
    private var pacingAnchor: (host: UInt64, guest: UInt64)?
    /// Called between batches and before blocking for input: the place to flush output.
    public var onBatchEnd: (() -> Void)?
    /// Called in `run` after the devices were serviced (time travel takes its checkpoints there).
    var onServiced: (() -> Void)?
    /// When set, every console input delivered to the UART is appended to it with the position
    /// (`CPU.executedInstructions`) at which it was: `ReplayInput` delivers it there again.
    public var inputLog: InputLog?
    /// Console input that arrived while waiting (idle or pacing), delivered at the next service.
    private var inbox: [UInt8] = []

    /// Whether the guest has written the reset magic to SOFTRES, or powered the board off
    /// through the PIIX4, since `boot()`.
    public var poweredOff: Bool { fpga.poweredOff || piix4.poweredOff }

    /// Builds the board. `output` receives every byte the guest writes to the console UART.
    /// A host without the memory for the guest's RAM is fatal here; `Malta.make` throws instead.
    public convenience init(configuration: MaltaConfiguration = MaltaConfiguration(), output: ((UInt8) -> Void)? = nil) {
        self.init(configuration: configuration, bus: MaltaBus(ramSize: configuration.ramSize), output: output)
    }

    /// Builds the board, or throws (leaving nothing allocated) when the host cannot give the
    /// guest's RAM: what front ends use, so that running out of memory is an error message.
    public static func make(configuration: MaltaConfiguration = MaltaConfiguration(), output: ((UInt8) -> Void)? = nil) throws(ConfigurationError) -> Malta {
        let bus = try MaltaBus.make(ramSize: configuration.ramSize)
        try checkRoomForCPU(beside: bus)
        return Malta(configuration: configuration, bus: bus, output: output)
    }

    /// Throws unless the host can still give a CPU's tables: the table of decoded pages (8 MiB)
    /// and the devices are allocated by code that cannot fail softly, so a front end checks
    /// first (for `bus`, whose RAM is already mapped).
    public static func checkRoomForCPU(beside bus: MaltaBus) throws(ConfigurationError) {
        let needed = CPU.physicalFrames * MemoryLayout<UnsafeMutableRawPointer?>.stride + (16 << 20)
        // (mmap, not malloc: the compiler may drop a malloc that is freed unused.)
        let probe = mmap(nil, needed, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let probe, probe != MAP_FAILED else {
            throw ConfigurationError("cannot allocate the CPU's tables (\(needed >> 20) MiB) beside \(bus.ramSize >> 20) MiB of guest RAM: the host is out of memory (or of address space under a ulimit)")
        }
        munmap(probe, needed)
    }

    private init(configuration: MaltaConfiguration, bus: MaltaBus, output: ((UInt8) -> Void)?) {
        self.configuration = configuration
        self.bus = bus
        isa = ISAPortSpace()
        uart = UART16550()
        uart.output = output
        cbusUART = UART16550(registerShift: 3)
        fpga = MaltaFPGA()
        bootROM = ReadOnlyMemory(bytes: [])
        flash = ReadOnlyMemory(bytes: [])
        clock = GuestClock(frequency: configuration.cpuFrequency)
        pic = I8259Pair()
        rtc = MC146818(clock: clock, startTime: configuration.rtcStartTime)
        pit = I8254(clock: clock)
        systemController = GT64120(pic: pic)
        piix4 = PIIX4(clock: clock)
        systemController.attach(piix4.isaBridge, device: PIIX4.device, function: 0)
        systemController.attach(piix4.powerManagement, device: PIIX4.device, function: 3)

        isa.map("pic-master", pic.master, port: 0x20, count: 2)
        isa.map("pit", pit, port: 0x40, count: 4)
        isa.map("rtc", rtc, port: 0x70, count: 2)
        isa.map("pic-slave", pic.slave, port: 0xA0, count: 2)
        isa.map("uart", uart, port: 0x3F8, count: 8)
        isa.map("elcr", pic.elcr, port: 0x4D0, count: 2)
        isa.map("piix4-pm", piix4.pmRegisters, port: UInt16(PIIX4.pmBase), count: 0x40)
        bus.map("isa-io", isa, at: Address.isaIO, size: UInt32(ISAPortSpace.portCount))
        bus.map("gt64120", systemController, at: Address.systemController, size: 0x1000)
        bus.map("flash", flash, at: Address.flash, size: 0x40_0000)
        // The FPGA's 1 MiB window, with the CBUS UART in the hole at +0x900 (as QEMU's aliases).
        bus.map("fpga", fpga, at: Address.fpga, size: 0x900)
        bus.map("cbus-uart", cbusUART, at: Address.cbusUART, size: 8 << 3)
        bus.map("fpga", fpga, at: Address.fpga + 0xA00, size: 0x10_0000 - 0xA00, deviceOffset: 0xA00)
        bus.map("boot-rom", bootROM, at: Address.bootROM, size: 0x40_0000)

        cpu = CPU(bus: bus, configuration: configuration.cpu)
        let cpu = self.cpu
        // Weak: the CPU owns the bus and so the devices; a device kept alive by someone else
        // must not keep (or crash on) a CPU that is gone. Slow path only.
        fpga.onSoftReset = { [weak cpu] in cpu?.requestStop() }
        piix4.onPowerOff = { [weak cpu] in cpu?.requestStop() }
        clock.source = { [weak cpu] in cpu?.cycles ?? 0 }
        clock.synchronize = { [weak cpu] in cpu?.endBatch() }
        pic.onOutputChange = { [weak cpu] level in
            cpu?.setInterruptLine(Malta.isaInterruptLine, asserted: level)
        }
        let pic = self.pic
        uart.onInterruptChange = { [unowned pic] level in pic.setIRQ(Malta.IRQ.com1, level) }
        rtc.onInterruptChange = { [unowned pic] level in pic.setIRQ(Malta.IRQ.rtc, level) }
        cbusUART.onInterruptChange = { [weak cpu] level in
            cpu?.setInterruptLine(Malta.cbusInterruptLine, asserted: level)
        }
        writeROMs(entry: 0)
    }

    // MARK: Loading and booting

    /// Validates `elf` against this board's RAM and copies its segments into RAM (zeroing the
    /// part of each segment beyond its file bytes). `boot()` then starts it.
    public func load(elf: ELFImage) throws(ELFError) {
        try elf.validate(ramSize: bus.ramSize)
        image = elf
        copySegments(of: elf)
    }

    /// Reads, validates and loads the ELF file at `path`.
    @discardableResult
    public func load(path: String) throws(ELFError) -> ELFImage {
        let elf = try ELFImage(contentsOfFile: path)
        try load(elf: elf)
        return elf
    }

    /// Sets the initial RAM disk (QEMU's `-initrd`) that `boot()` places below the top of low
    /// RAM. Throws when it cannot fit above the kernel, as QEMU refuses it.
    public func load(initrd bytes: [UInt8]) throws(ConfigurationError) {
        guard !bytes.isEmpty else { initrd = nil; return }
        guard let address = Malta.initrdAddress(size: bytes.count, ramSize: bus.ramSize, kernelEnd: kernelEnd) else {
            throw ConfigurationError("memory too small for the initial ram disk (\(bytes.count) bytes)")
        }
        initrd = bytes
        initrdAddress = address
    }

    /// Reads the initrd file at `path` (see `load(initrd:)`).
    public func loadInitrd(path: String) throws(ConfigurationError) {
        let bytes: [UInt8]
        do { bytes = try readFile(path, limit: MaltaBus.maxRAMSize) } catch {
            throw ConfigurationError("cannot read the initrd '\(path)': \(error.reason)")
        }
        try load(initrd: bytes)
    }

    /// The end of the loaded kernel in physical memory (QEMU's kernel_high).
    private var kernelEnd: UInt32 {
        guard let image else { return 0 }
        return image.segments.map { $0.physicalAddress &+ $0.memorySize }.max() ?? 0
    }

    /// Where QEMU's Malta puts an initrd of `size` bytes (`load_kernel` in `hw/mips/malta.c`):
    /// the top of low RAM less the initrd and 128 KiB for the kernel's boot-time allocations,
    /// rounded up to 64 KiB; nil when that is not above the kernel.
    public static func initrdAddress(size: Int, ramSize: Int, kernelEnd: UInt32) -> UInt32? {
        let low = min(ramSize, MaltaBus.maxRAMSize)
        let page = 64 << 10
        let top = low - (size + (128 << 10))
        guard top > 0 else { return nil }
        let offset = (top + page - 1) / page * page
        guard UInt64(kernelEnd) < UInt64(offset), offset + size <= ramSize else { return nil }
        return UInt32(offset)
    }

    /// The command line the kernel receives: QEMU's `-append` text, prefixed with the initrd's
    /// place ("rd_start=0xffffffff87ed0000 rd_size=1135271 ", the kseg0 address printed as a
    /// sign-extended 64-bit number) when there is one.
    public var kernelCommandLine: String {
        guard let initrd, let address = initrdAddress else { return configuration.commandLine }
        let kseg0 = String(UInt64(address) | 0xFFFF_FFFF_8000_0000, radix: 16)
        return "rd_start=0x\(kseg0) rd_size=\(initrd.count) \(configuration.commandLine)"
    }

    private func copySegments(of elf: ELFImage) {
        for s in elf.segments {
            elf.bytes.withUnsafeBytes { raw in
                let file = UnsafeRawBufferPointer(rebasing: raw[Int(s.fileOffset)..<Int(s.fileOffset) + Int(s.fileSize)])
                bus.copyToRAM(file, at: s.physicalAddress)
            }
            bus.zeroRAM(at: s.physicalAddress + s.fileSize, count: Int(s.memorySize - s.fileSize))
            cpu.invalidateCode(physical: s.physicalAddress, length: Int(s.memorySize))
        }
    }

    /// Resets the board and puts the CPU exactly where QEMU's `-kernel` boot loader leaves it
    /// at the kernel's entry: Status = BEV (ERL clear), EBase 0x80000000, a0 = 2 (argc),
    /// a1 = 0x80002000 (argv), a2 = 0x80002008 (envp), a3 = RAM size, sp = 0x80001FC0,
    /// t9 = pc = entry, ra = 0xBFC00644, k0/k1 as the loader's last store leaves them, the
    /// argument block at physical 0x2000 and the boot ROM. The kernel's segments are copied
    /// again (QEMU restores its ROM blobs on reset); the rest of RAM is left as it is.
    ///
    /// - Parameter entry: where to start; defaults to the loaded image's entry point.
    public func boot(entry: UInt32? = nil) {
        guard let start = entry ?? image?.entry else {
            preconditionFailure("boot() needs a loaded image or an entry address")
        }
        cpu.reset()
        uart.reset()
        cbusUART.reset()
        fpga.reset()
        pic.reset()
        rtc.reset()
        pit.reset()
        systemController.reset()
        piix4.reset()
        writeROMs(entry: start)
        if let image { copySegments(of: image) }
        if let initrd, let address = initrdAddress {
            initrd.withUnsafeBytes { _ = bus.copyToRAM($0, at: address) }
            cpu.invalidateCode(physical: address, length: initrd.count)
        }
        let block = BootParameters.block(
            kernelName: image?.name ?? "", commandLine: kernelCommandLine,
            ramSize: bus.ramSize, rngSeed: configuration.rngSeed)
        block.withUnsafeBytes { _ = bus.copyToRAM($0, at: BootParameters.physicalAddress) }
        cpu.invalidateCode(physical: BootParameters.physicalAddress, length: block.count)

        pacingAnchor = nil
        cpu.writeCP0(12, 0, StatusBits.bev)  // clears ERL, as QEMU's main_cpu_reset with -kernel
        cpu.setGPR(4, 2)
        cpu.setGPR(5, BootParameters.virtualAddress)
        cpu.setGPR(6, BootParameters.virtualAddress + 8)
        cpu.setGPR(7, UInt32(min(bus.ramSize, MaltaBus.maxRAMSize)))
        cpu.setGPR(26, BootParameters.k0)
        cpu.setGPR(27, BootParameters.k1)
        cpu.setGPR(29, BootParameters.stackPointer)
        cpu.setGPR(25, start)
        cpu.setGPR(31, BootParameters.returnAddress)
        cpu.jump(to: start)
    }

    func writeROMs(entry: UInt32) {
        romEntry = entry
        bootROM.replace(with: BootParameters.bootROM(entry: entry, ramSize: bus.ramSize, boardID: true))
        flash.replace(with: BootParameters.bootROM(entry: entry, ramSize: bus.ramSize, boardID: false))
    }

    // MARK: Running

    /// Runs the guest until it powers off, `maxInstructions` instruction slots have run, it
    /// waits for an interrupt nothing can raise, or the host stops it.
    ///
    /// Runs in batches of `batchSize`; between batches the console input is polled into the
    /// UART, device clocks tick and `onBatchEnd` is called. When the CPU waits with no timer
    /// armed, the board polls the console, then blocks on `consoleInput.waitForInput()`; with
    /// no input source, or at its end, the outcome is `.deadlock`.
    public func run(maxInstructions: UInt64 = .max) -> RunOutcome {
        var remaining = maxInstructions
        var idleServiced = false
        if paceIdleToHostClock && pacingAnchor == nil { pacingAnchor = (hostNanoseconds(), clock.nanoseconds) }
        clock.maxStaleCycles = max(batchSize, pacedBatchSize)
        while true {
            if poweredOff { return .poweredOff }
            if remaining == 0 { return .instructionLimit }
            // Batches end at multiples of the batch size in executed instruction slots, and
            // devices are serviced only there (and when the CPU idles): guest time alone fixes
            // where, so a run split into several calls (stepping, breakpoints, time travel's
            // re-execution) behaves exactly as one call.
            let quantum = max(1, paceIdleToHostClock ? pacedBatchSize : batchSize)
            let before = cpu.cycles &- cpu.idleCycles
            let idleBefore = cpu.idleCycles
            let reason = cpu.run(instructions: min(remaining, quantum - before % quantum))
            let after = cpu.cycles &- cpu.idleCycles
            let used = after &- before
            remaining -= min(used, remaining)
            if used > 0 { idleServiced = false }
            if after / quantum != before / quantum || reason == .waitingForInterrupt {
                serviceDevices()
                onServiced?()
            } else {
                onBatchEnd?()
            }
            if paceIdleToHostClock && cpu.idleCycles != idleBefore && !poweredOff { pace() }
            switch reason {
            case .budgetExhausted:
                continue
            case .stopRequested:
                if cpu.outOfHostMemory { return .outOfHostMemory }
                return poweredOff ? .poweredOff : .stopped
            case .waitingForInterrupt:
                // The CPU is idle with no timer: guest time stands still, so any device
                // timeout that is due fires now; if that wakes nothing, wait for the console.
                if !idleServiced {
                    uart.expireReceiveTimeout()
                    cbusUART.expireReceiveTimeout()
                    idleServiced = true
                    continue
                }
                guard let input = consoleInput else { return .deadlock }
                onBatchEnd?()
                guard let bytes = input.waitForInput() else { return .deadlock }
                // Delivered by a service here and now (a point fixed by guest time, which the
                // input log records).
                inbox += bytes
                serviceDevices()
                idleServiced = false
            }
        }
    }

    /// Forgets the pacing anchor (guest time moved: a snapshot was restored).
    func resetPacing() { pacingAnchor = nil }

    /// Waits (for console input) while guest time is ahead of the host's since pacing began.
    private func pace() {
        let guest = clock.nanoseconds
        let host = hostNanoseconds()
        guard let anchor = pacingAnchor else {
            pacingAnchor = (host, guest)
            return
        }
        // Guest time since the anchor may run ahead of host time only while the guest is busy.
        let guestElapsed = guest &- anchor.guest, hostElapsed = host &- anchor.host
        if guestElapsed < hostElapsed {
            // Busy stretches leave guest time behind; never let the debt grow beyond a second.
            if hostElapsed - guestElapsed > 1_000_000_000 { pacingAnchor = (host, guest) }
            return
        }
        let ahead = guestElapsed - hostElapsed
        guard ahead > 1_000_000 else { return }
        onBatchEnd?()
        let bytes = consoleInput?.waitForInput(timeoutNanoseconds: ahead) ?? {
            var ts = timespec(tv_sec: Int(ahead / 1_000_000_000), tv_nsec: Int(ahead % 1_000_000_000))
            nanosleep(&ts, nil)
            return []
        }()
        if !bytes.isEmpty {
            // Delivered at the next service (a point fixed by guest time, which the input log
            // records). The guest idled past the host's clock, so the lead is forgiven: pacing
            // starts again from here. Otherwise the answer to a keystroke would wait until the
            // host's clock caught up with the guest's, seconds after a boot that ran the guest
            // faster than real time (issue 13, item 1).
            inbox += bytes
            pacingAnchor = (hostNanoseconds(), clock.nanoseconds)
        }
    }

    /// CLOCK_MONOTONIC in nanoseconds.
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Polls the console input into the UART and advances device clocks.
    /// Console input is delivered only here, where `inputLog` records it.
    public func serviceDevices() {
        var bytes = inbox
        inbox = []
        if let input = consoleInput { bytes += input.poll() }
        if !bytes.isEmpty {
            uart.receive(bytes)
            // Typed bytes are handed over at once: the UART's character timeout is due now
            // rather than one batch later (in guest time the bytes may have come long ago).
            uart.expireReceiveTimeout()
            inputLog?.record(bytes, at: cpu.executedInstructions)
        }
        uart.tick()
        cbusUART.tick()
        rtc.service()
        onBatchEnd?()
    }

}

/// A configuration value that cannot be used, with a message saying why.
public struct ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension MaltaConfiguration {
    /// Parses a RAM size such as "64M", "128M", "256m", "1024K" or "16777216" (bytes; K, M and G
    /// are binary multiples) and checks it fits the board: a multiple of 4 KiB from 1 MiB to
    /// 256 MiB.
    public static func ramSize(parsing text: String) throws(ConfigurationError) -> Int {
        var digits = Substring(text.trimmingSpaces)
        var multiplier = 1
        if let last = digits.last, !last.isNumber {
            switch last.uppercased() {
            case "K": multiplier = 1 << 10
            case "M": multiplier = 1 << 20
            case "G": multiplier = 1 << 30
            default: throw ConfigurationError("'\(text)' is not a size: use a number with K, M or G, e.g. 128M")
            }
            digits = digits.dropLast()
            if digits.last?.uppercased() == "I" || digits.last?.uppercased() == "B" {
                throw ConfigurationError("'\(text)' is not a size: use a number with K, M or G, e.g. 128M")
            }
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(digits) else {
            throw ConfigurationError("'\(text)' is not a size: use a number with K, M or G, e.g. 128M")
        }
        let (size, overflow) = n.multipliedReportingOverflow(by: multiplier)
        guard !overflow, size <= MaltaBus.maxRAMSize else {
            throw ConfigurationError("RAM size \(text) is too large: the Malta's low memory window holds at most 256M")
        }
        guard size >= MaltaBus.minRAMSize else {
            throw ConfigurationError("RAM size \(text) is too small: at least 1M is needed")
        }
        guard size % 4096 == 0 else {
            throw ConfigurationError("RAM size \(text) is not a multiple of 4K (the page size)")
        }
        return size
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

/// The whole regular file at `path` (at most `limit` bytes), or nil: `readFile` without the reason.
public func readWholeFile(_ path: String, limit: Int = MaltaBus.maxRAMSize) -> [UInt8]? {
    try? readFile(path, limit: limit)
}
