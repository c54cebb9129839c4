import MagritteCore
import MagritteMachine

/// How to build a guest.
public struct GuestConfiguration: Sendable {
    /// Shown in traces and as the prefix of its console lines.
    public var name: String
    /// The guest's RAM (guest-physical 0 ..< ramSize), a multiple of 4 KiB, at least 1 MiB.
    public var ramSize: Int
    /// The kernel command line (argv[1]), as QEMU's -append.
    public var commandLine: String
    /// An initial RAM disk, placed and announced as QEMU's -initrd does.
    public var initrd: [UInt8]?

    public init(name: String, ramSize: Int = 32 << 20, commandLine: String = "") {
        self.name = name
        self.ramSize = ramSize
        self.commandLine = commandLine
    }
}

/// Where a guest is in its life.
public enum GuestState: Equatable, Sendable {
    case runnable
    /// In WAIT or the idle hypercall: descheduled until a virtual interrupt is pending.
    case waiting
    case poweredOff
}

/// Per-guest figures: what the VMM did for it and where its time went.
public struct GuestStatistics: Sendable, Equatable {
    /// Physical exceptions that entered the VMM while this guest ran, by ExcCode.
    public var traps = Counts<ByExceptionCode>()
    /// Exceptions reflected to the guest's own handlers, by ExcCode.
    public var reflected = Counts<ByExceptionCode>()
    /// Privileged instructions emulated, by mnemonic.
    public var emulated: [String: UInt64] {
        var counts: [String: UInt64] = [:]
        for op in Op.allCases where emulatedByOp[Int(op.rawValue)] > 0 {
            counts[String(describing: op)] = emulatedByOp[Int(op.rawValue)]
        }
        return counts
    }
    /// The same, indexed by `Op.rawValue` (cheap to count on every exit).
    var emulatedByOp = Counts<ByOp>()
    /// TLB misses the VMM answered from the guest's virtual TLB without the guest knowing.
    public var hiddenTLBFills: UInt64 = 0
    /// Misses in the guest's unmapped kseg0/kseg1 that the VMM filled from the pmap.
    public var ksegFills: UInt64 = 0
    /// TLB misses reflected to the guest (refill, invalid, modified).
    public var reflectedTLBMisses: UInt64 = 0
    /// Device register accesses emulated.
    public var deviceAccesses: UInt64 = 0
    public var hypercalls: UInt64 = 0
    /// Instructions retired in guest-kernel and guest-user mode.
    public var kernelInstructions: UInt64 = 0
    public var userInstructions: UInt64 = 0
    /// Instructions the VMM saw spent in a detected idle loop (spinning).
    public var spinInstructions: UInt64 = 0
    /// Guest time (cycles) spent descheduled in WAIT or in the idle hypercall.
    public var waitCycles: UInt64 = 0
    public var hypercallIdleCycles: UInt64 = 0
    /// How often the guest was switched in.
    public var switchesIn: UInt64 = 0
    /// Exits by what the VMM did in them, indexed by `ExitKind.rawValue` (they add up to `traps`).
    public var exitsByKind = Counts<ByExitKind>()
    /// Host nanoseconds the VMM's trap handler spent per kind (while `VMM.collectsExitSites`).
    public var exitNanosecondsByKind = Counts<ByExitKind>()
    /// Privileged instructions emulated in the exit of the privileged instruction before them
    /// (clustering): counted in `emulated`, not in `traps`.
    public var clusteredInstructions: UInt64 = 0
    /// Instructions after a device access emulated in its exit while the guest polled (device
    /// polling): counted as if the CPU had run them (the device accesses among them in
    /// `deviceAccesses`, and as emulated, not retired, as when they trapped).
    public var polledInstructions: UInt64 = 0
    /// The device accesses among `polledInstructions`: each is one exit (and one trap) fewer.
    public var polledDeviceAccesses: UInt64 = 0
    /// The device accesses the guest's CPU made through the device window (VMM+DeviceWindow.swift):
    /// counted in `deviceAccesses` and as emulated instructions, without an exit.
    public var mappedDeviceAccesses: UInt64 = 0

    public var instructions: UInt64 { kernelInstructions + userInstructions }
    /// VMM entries (traps) per 1000 guest instructions.
    public var exitsPerThousand: Double {
        instructions == 0 ? 0 : Double(traps.reduce(0, +)) * 1000 / Double(instructions)
    }
}

/// One virtual machine: its memory (a slice of the machine's RAM), virtual CPU state, virtual
/// TLB, virtual devices and console.
public final class Guest {
    public let name: String
    public let index: Int
    public let configuration: GuestConfiguration
    /// Machine-physical address of guest-physical 0 (the pmap is PFN → MFN = PFN + base >> 12).
    public let memoryBase: UInt32
    public var ramSize: Int { configuration.ramSize }
    @exclusivity(unchecked) public internal(set) var image: ELFImage?
    @exclusivity(unchecked) public internal(set) var state: GuestState = .runnable
    /// A paused guest is not scheduled by `run` (VMM+Control.swift); `step` still runs it.
    @exclusivity(unchecked) public internal(set) var paused = false

    // The virtual CPU. GPRs live in the physical CPU while the guest runs.
    @exclusivity(unchecked) var gprs = [UInt32](repeating: 0, count: 32)
    @exclusivity(unchecked) var hi: UInt32 = 0
    @exclusivity(unchecked) var lo: UInt32 = 0
    @exclusivity(unchecked) var pc: UInt32 = 0
    @exclusivity(unchecked) var npc: UInt32 = 4
    @exclusivity(unchecked) var inDelaySlot = false
    /// The virtual CP0, in storage of its own that stays put for the guest's life: translated
    /// code reads and writes its plain registers there (`VMM+InlineCP0.swift`).
    public internal(set) var cp0: CP0State {
        @inline(__always) get { cp0Storage.pointee }
        @inline(__always) set { cp0Storage.pointee = newValue }
        @inline(__always) _modify { yield &cp0Storage.pointee }
    }
    let cp0Storage: UnsafeMutablePointer<CP0State> = {
        let p = UnsafeMutablePointer<CP0State>.allocate(capacity: 1)
        p.initialize(to: CP0State())
        return p
    }()
    /// The guest's TLB as it wrote it (VPN → guest-physical).
    @exclusivity(unchecked) public internal(set) var tlb: [TLBEntry]
    /// Entries of a guest's virtual TLB (a 24Kc's).
    static let tlbEntries = 16
    @exclusivity(unchecked) var countBase: UInt32 = 0
    @exclusivity(unchecked) var countEpoch: UInt64 = 0
    @exclusivity(unchecked) var timerPending = false
    /// Machine cycle at which the virtual Count next reaches Compare.
    @exclusivity(unchecked) var nextTimer: UInt64 = .max
    @exclusivity(unchecked) var hardwareIP: UInt32 = 0
    /// ASID → physical ASID while this guest's translations are in the physical TLB.
    @exclusivity(unchecked) var asidMap: [UInt8: UInt8] = [:]
    /// The guest's comm page (hypercall 5, VMM+CommPage.swift); nil until it maps one.
    @exclusivity(unchecked) public internal(set) var commPage: CommPage?

    /// The guest's own Malta board: its devices (UART, i8259 pair, i8254, RTC, GT-64120,
    /// PIIX4, FPGA, boot ROM), which the VMM emulates on the guest's behalf; its CPU never runs
    /// (its RAM only stages the boot image).
    public let board: Malta
    public var uart: UART16550 { board.uart }
    public var fpga: MaltaFPGA { board.fpga }
    /// The board's bus, which it holds as long as the guest lives: device accesses (every access
    /// through the device window) go there without reference counting.
    unowned(unsafe) let deviceBus: MaltaBus

    // Console, split into lines.
    @exclusivity(unchecked) public internal(set) var console: [UInt8] = []
    @exclusivity(unchecked) var partialLine: [UInt8] = []
    @exclusivity(unchecked) var onLine: ((Guest, String) -> Void)?

    @exclusivity(unchecked) public internal(set) var statistics = GuestStatistics()
    /// Where the idle-loop detector last saw the guest (pc and a hash of its registers).
    @exclusivity(unchecked) var lastSample: (pc: UInt32, hash: UInt64, ran: UInt64)?
    @exclusivity(unchecked) var spinStreak = 0
    /// Whether the code at a pc is a tight backward loop without stores (cached per pc).
    @exclusivity(unchecked) var idleLoops: [UInt32: Bool] = [:]
    @exclusivity(unchecked) var waitKind = WaitKind.wait
    @exclusivity(unchecked) var waitStart: UInt64 = 0
    @exclusivity(unchecked) var modeMark: UInt64 = 0
    /// Exit sites by `pc << 8 | ExitKind` (while `VMM.collectsExitSites`; `exitSites(limit:)`).
    @exclusivity(unchecked) var exitSiteTable: [UInt64: ExitSite] = [:]

    /// Throws when the host cannot give the guest's board (its staging RAM and CPU tables).
    init(configuration: GuestConfiguration, index: Int, memoryBase: UInt32, tlbEntries: Int) throws(ConfigurationError) {
        self.name = configuration.name
        self.index = index
        self.configuration = configuration
        self.memoryBase = memoryBase
        self.tlb = [TLBEntry](repeating: TLBEntry(), count: tlbEntries)
        var config = MaltaConfiguration(ramSize: configuration.ramSize)
        config.commandLine = configuration.commandLine
        board = try Malta.make(configuration: config)
        deviceBus = board.bus
        board.uart.output = { [unowned self] byte in self.received(byte) }
        // The i8259 pair's output is the Malta's CPU interrupt line 0 (Cause.IP2).
        board.pic.onOutputChange = { [unowned self] level in
            if level { self.hardwareIP |= CauseBits.ip2 } else { self.hardwareIP &= ~CauseBits.ip2 }
        }
    }

    deinit { cp0Storage.deallocate() }

    /// Called with every byte the guest writes to its console, as it comes (an interactive
    /// front end prints it raw; `onConsoleLine` only sees complete lines).
    @exclusivity(unchecked) public var onOutput: ((UInt8) -> Void)?

    func received(_ byte: UInt8) {
        console.append(byte)
        onOutput?(byte)
        if byte == 10 {
            let line = String(decoding: partialLine, as: UTF8.self)
            partialLine.removeAll()
            onLine?(self, line)
        } else if byte != 13 {
            partialLine.append(byte)
        }
    }

    /// The guest's console output so far.
    public var consoleText: String { String(decoding: console, as: UTF8.self) }

    /// Whether the guest's virtual CPU is in kernel mode (KSU=0, EXL or ERL).
    public var inKernelMode: Bool {
        cp0.mode == .kernel
    }

    /// The guest's virtual mode.
    public var mode: Mode { cp0.mode }

    /// Guest-physical → machine-physical, or nil outside the guest's RAM.
    @inline(__always)
    func machineAddress(_ gpa: UInt32) -> UInt32? {
        gpa < UInt32(ramSize) ? memoryBase + gpa : nil
    }

    /// A device access at guest-physical `gpa` (outside its RAM): the guest's Malta board
    /// answers as the bare board would. Nil: bus error.
    /// (The bus borrowed: no retain and release per access through the device window.)
    func deviceRead(_ gpa: UInt32, size: Int) -> UInt32? {
        Unmanaged.passUnretained(deviceBus)._withUnsafeGuaranteedRef { $0.read(gpa, size: size) }
    }

    func deviceWrite(_ gpa: UInt32, size: Int, value: UInt32) -> Bool {
        Unmanaged.passUnretained(deviceBus)._withUnsafeGuaranteedRef { $0.write(gpa, size: size, value: value) }
    }
}
