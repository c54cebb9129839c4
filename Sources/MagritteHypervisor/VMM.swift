import MagritteCore
import MagritteMachine

/// A clear error for a VMM that cannot be built as asked.
public struct VMMError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// How the VMM reacts to a guest spinning in its idle loop.
public enum SpinPolicy: Sendable, Equatable {
    /// Count it, but let the guest burn its slice (the lecture's information gap).
    case account
    /// Count it and end the guest's slice at once.
    case deschedule
}

/// How the VMM ended `run`.
public enum VMMRunOutcome: Equatable, Sendable {
    case allPoweredOff
    case instructionLimit
    /// Every guest that is still on waits for an interrupt that nothing can raise.
    case deadlock
    case stopped
    /// The host could not give memory the CPU needed to go on (`CPU.outOfHostMemory`); the
    /// guest is as it was before the instruction, and running again retries.
    case outOfHostMemory
}

/// The virtual machine monitor: several unmodified guests on one physical MIPS CPU by
/// trap-and-emulate (Docs/vmm.md).
///
/// The VMM owns the real kernel mode: it is the CPU's `TrapHandler`, so every exception comes
/// to Swift instead of a MIPS vector. Guest kernels run in supervisor mode and their processes in
/// user mode, with Segmentation Control making kseg0/kseg1 mapped and supervisor-accessible.
/// Each guest has a virtual CP0 and a virtual TLB; the physical TLB holds VPN → machine frame
/// with physical ASIDs kept apart per guest.
public final class VMM: TrapHandler {
    /// The physical machine: CPU with supervisor mode and segmentation control, and RAM.
    public let cpu: CPU
    public let bus: MaltaBus
    @exclusivity(unchecked) public internal(set) var guests: [Guest] = []
    @exclusivity(unchecked) public internal(set) var current: Guest? {
        didSet { if current !== oldValue { observeInstructionsOfCurrentGuest(); refreshInlineCP0() } }
    }
    /// The guests (indexes) whose instructions the CPU reports one by one while they run; the
    /// others run at full speed (VMM+Debugger.swift). Nil: `cpu.observesInstructions` is left alone.
    @exclusivity(unchecked) public var instructionObservedGuests: Set<Int>? {
        didSet { observeInstructionsOfCurrentGuest() }
    }
    /// Instructions a guest runs before the VMM's timer switches machines.
    @exclusivity(unchecked) public var slice: UInt64 = 200_000
    /// Picks the next guest; nil means round robin. Receives the runnable guests and the one
    /// that ran last.
    @exclusivity(unchecked) public var policy: (([Guest], Guest?) -> Guest?)?
    @exclusivity(unchecked) public var spinPolicy: SpinPolicy = .account
    /// Whether every exit is booked at its guest pc with the handler's host time
    /// (`Guest.exitSites`, `magritte vmm --stats`): a clock read and a dictionary update per exit.
    @exclusivity(unchecked) public var collectsExitSites = false { didSet { refreshInlineCP0() } }
    /// What the exit being handled did (set by the handlers; `GuestStatistics.exitsByKind`).
    @exclusivity(unchecked) var exitKind = ExitKind.other
    /// Privileged instructions emulated after the trapping one in the exit being handled.
    @exclusivity(unchecked) var exitClustered: UInt64 = 0
    /// Whether a privileged instruction right after an emulated one is emulated in the same
    /// exit (Docs/vmm.md, "Clustering"): the guest sees the same registers, counts and times.
    /// Off by default (it saves exits, not yet time: Docs/performance.md). Under time travel a
    /// re-execution clusters as the recorded run did, except where it observes instructions
    /// (a breakpoint search), where nothing clusters: the guest's state is the same either way.
    @exclusivity(unchecked) public var clustersExits = false { didSet { refreshInlineCP0() } }
    /// Whether the CPU hands a guest kernel's `mfc0`, `mtc0`, `di` and `ei` to the VMM's direct
    /// path (`emulatePrivileged`, Docs/vmm.md, "What an exit costs") where nobody looks; off
    /// only to compare it with the general path.
    @exclusivity(unchecked) var emulatesDirectly = true { didSet { refreshInlineCP0() } }
    /// The instructions the direct path took, by `Op.rawValue` (for tests).
    @exclusivity(unchecked) var directExits = Counts<ByOp>()
    /// Whether translated code emulates a guest kernel's plain `mfc0` and `mtc0` where the direct
    /// path would (VMM+InlineCP0.swift); off only to compare it with the direct path.
    @exclusivity(unchecked) public var inlinesCP0 = true { didSet { refreshInlineCP0() } }
    /// Whether the instructions after an emulated device access are emulated in the same exit
    /// while they poll (Docs/vmm.md, "Device polling"): the guest sees the same registers,
    /// counts and times.
    @exclusivity(unchecked) public var pollsDevices = true
    /// The machine cycle (`now`) at which the running quantum ends: a cluster stops there.
    @exclusivity(unchecked) var quantumEnd: UInt64 = 0
    /// Set when a cluster asked the CPU to stop (its run's budget did not count the cluster).
    @exclusivity(unchecked) var clusterEndedRun = false
    /// Whether `runSlice` skips the ends of quanta where nothing happens (`skipsQuantumEnds`);
    /// off for tests that compare a run with every quantum's end against one without, and for
    /// `magritte-bench --vmm` with MAGRITTE_EVERY_QUANTUM set (what a guest kernel with
    /// interrupts on pays).
    @exclusivity(unchecked) public var skipsIdleQuantumEnds = true
    /// Quanta run (`runSlice`), long ones included: for tests.
    @exclusivity(unchecked) var quantaRun: UInt64 = 0
    /// The machine cycle (`now`) at which the running quantum began.
    @exclusivity(unchecked) var quantumStart: UInt64 = 0
    /// Whether the running quantum is a long one that the guest's next exit ends (`runSlice`).
    @exclusivity(unchecked) var exitEndsQuantum = false { didSet { refreshInlineCP0() } }
    /// Set when an exit ended the CPU's run in a long quantum.
    @exclusivity(unchecked) var exitEndedRun = false
    /// Device-window accesses in the running long quantum before its first exit (their slots
    /// count as faulted, not retired): all of them, and those before the ordinary quantum
    /// (`windowCell`, its index from the quantum's start) the last one fell in (`longQuantumSample`).
    @exclusivity(unchecked) var windowFaults: UInt64 = 0
    @exclusivity(unchecked) var windowFaultsBeforeCell: UInt64 = 0
    @exclusivity(unchecked) var windowCell: UInt64 = 0
    /// The instructions device polling emulated, decoded (VMM+DevicePolling.swift).
    let pollCache = PollCache()
    /// The trapped words decoded (`DecodedWords`).
    let decodes = DecodedWords()
    /// The pages clustering reached last (`clusterRAM`), valid while the physical TLB is unchanged.
    @exclusivity(unchecked) var clusterPages = ClusterPages()
    /// The machine-physical window guest device pages are mapped to (VMM+DeviceWindow.swift).
    let deviceWindow = DeviceWindow()
    /// Every VMM event, bounded.
    public let trace: VMMTrace
    /// Called for each complete console line of a guest.
    @exclusivity(unchecked) public var onConsoleLine: ((Guest, String) -> Void)?
    /// Called after every slice (the place to flush output).
    @exclusivity(unchecked) public var onSliceEnd: (() -> Void)?
    /// Called after every slice of `run`, after `onSliceEnd`: where time travel takes its
    /// checkpoints (VMM+TimeTravel.swift); `run` may be restarted here with the same future.
    @exclusivity(unchecked) var onSliceBoundary: (() -> Void)?
    /// Counts the changes made to guests from outside (registers, memory, injections, pause,
    /// a restore): time travel checkpoints a state changed by hand before it runs on.
    @exclusivity(unchecked) public internal(set) var changesByHand: UInt64 = 0
    /// Emulated cycles per second of the guests' clocks (their boards' GuestClock): used to wait
    /// for console input in host time while every guest is idle.
    static let frequency: UInt64 = 100_000_000

    /// The machine's time base: executed cycles (those of instructions emulated in the exit of
    /// an earlier one included: clustering, device polling) plus the idle time the VMM skipped
    /// when every guest waited. Virtual Count registers derive from it (2 cycles per tick).
    public var now: UInt64 { cpu.currentCycles &+ skippedCycles }
    @exclusivity(unchecked) var skippedCycles: UInt64 = 0
    @exclusivity(unchecked) var nextRAM: UInt32 = VMM.firstGuestBase
    @exclusivity(unchecked) var stopRequested = false
    @exclusivity(unchecked) var sliceEnd = false
    /// The trace text of instruction words the guests trapped on.
    @exclusivity(unchecked) var disassembly: [UInt32: String] = [:]

    // Physical ASIDs: 1...255 handed out per (guest, guest ASID); 0 is never used.
    @exclusivity(unchecked) var nextASID: Int = 1
    /// The index of the guest each physical ASID belongs to (-1: none).
    @exclusivity(unchecked) var asidOwner = [Int](repeating: -1, count: 256)
    /// The physical TLB as the VMM wrote it (it is the only writer): scanned on every guest TLB
    /// write without calling into the CPU for each entry.
    @exclusivity(unchecked) var physicalTLB: [TLBEntry] = []
    // The VMM's replacement index in the physical TLB.
    @exclusivity(unchecked) var nextTLBSlot = 0
    /// Whether kseg0/kseg1 fills and hidden fills install the largest page pair the guest's RAM
    /// and the machine frames allow (Docs/vmm.md, "Memory"), instead of 4 KiB pairs (for tests and
    /// measurements: the guest sees no difference).
    @exclusivity(unchecked) public var usesLargePages = true
    /// The executed-instruction position of the last fill, and the fills in a row there (fills
    /// take no time of the guest's unless they make no progress: `resumeAfterFill`).
    @exclusivity(unchecked) var fillPosition: UInt64 = .max
    @exclusivity(unchecked) var fillsInARow = 0

    static let quantum: UInt64 = 4096
    static let ticksPerCycle: UInt64 = 2
    /// SegCtl for guests: kseg3, kseg2, kseg1 and kseg0 mapped for kernel and supervisor
    /// (MSK); useg mapped for everyone (MUSK).
    static let segCtl: (UInt32, UInt32, UInt32) = (0x0020_0020, 0x0020_0020, 0x0030_0030)
    /// SegCtl while a guest is in its own supervisor mode: kseg0, kseg1 and kseg3 become
    /// kernel-only (MK), so the physical supervisor mode faults there as the guest's would.
    static let supervisorSegCtl: (UInt32, UInt32, UInt32) = (0x0020_0010, 0x0010_0010, 0x0030_0030)
    @exclusivity(unchecked) var supervisorSegments = false
    /// Status as the VMM last wrote it to the CPU (`applyMode`; nil: not known, after a restore).
    /// Kept here: a read of the CPU's CP0 from this module pays a dynamic exclusivity check.
    @exclusivity(unchecked) var physicalStatus: UInt32?

    /// The physical TLB sizes the VMM accepts. The smallest is what one guest instruction may
    /// need mapped at once: a branch, its delay slot on the next page pair and the slot's data
    /// access on a third (the VMM replaces entries round robin, so a retried access finds the
    /// other two still there).
    public static let physicalTLBSizes = 3...64

    /// Throws unless `ramSize` is a size of machine RAM the VMM accepts.
    public static func checkRAMSize(_ ramSize: Int) throws(VMMError) {
        guard ramSize >= 2 << 20, ramSize <= MaltaBus.maxRAMSize, ramSize % 4096 == 0 else {
            throw VMMError("machine RAM must be a multiple of 4 KiB from 2 MiB to 256 MiB")
        }
    }

    /// Builds a VMM over a machine with `ramSize` bytes of RAM (guests' RAM comes from it) and a
    /// physical TLB of `tlbEntries` entries, running guest code with `engine`.
    public init(ramSize: Int = 256 << 20, tlbEntries: Int = 64, traceCapacity: Int = 200_000,
                engine: Engine = .hostDefault) throws(VMMError) {
        try VMM.checkRAMSize(ramSize)
        guard VMM.physicalTLBSizes.contains(tlbEntries) else {
            throw VMMError("the physical TLB has \(VMM.physicalTLBSizes.lowerBound) to \(VMM.physicalTLBSizes.upperBound) entries (a guest's instruction, its branch's delay slot and its data access may each need a page pair of their own)")
        }
        do {
            bus = try MaltaBus.make(ramSize: ramSize)
            try Malta.checkRoomForCPU(beside: bus)
        } catch { throw VMMError(error.message) }
        bus.map("device window", deviceWindow, at: DeviceWindow.base, size: UInt32(DeviceWindow.guests) * DeviceWindow.span)
        var config = CPUConfiguration(tlbEntries: tlbEntries, segmentationControl: true)
        config.instructionsPerCountTick = VMM.ticksPerCycle
        config.engine = engine
        cpu = CPU(bus: bus, configuration: config)
        physicalTLB = [TLBEntry](repeating: TLBEntry(), count: tlbEntries)
        trace = VMMTrace(capacity: traceCapacity)
        writeSegCtl(VMM.segCtl)
        cpu.setStatus(0)  // VMM context: kernel mode, interrupts off
        physicalStatus = 0
        cpu.trapHandler = self
        deviceWindow.vmm = Unmanaged.passUnretained(self)
        trace.onActivityChange = { [unowned self] in refreshInlineCP0() }
        attachInlineCP0()
    }

    /// The CPU holds its trap handler unowned (`CPU.trapHandler`) and the device window this VMM
    /// unretained: both are cleared, for a CPU or a bus kept after the VMM has gone. A guest kept
    /// after it keeps the time it had (its clock no longer reads this VMM's), and its board no
    /// longer calls this VMM (console lines, power off).
    deinit {
        cpu.trapHandler = nil
        deviceWindow.vmm = nil
        cpu.inlineCP0 = nil
        let t = now
        for g in guests {
            g.board.clock.drive(cycles: { t }, synchronize: {})
            g.onLine = nil
            g.board.fpga.onSoftReset = nil
            g.board.piix4.onPowerOff = nil
        }
    }

    // MARK: Guests

    /// Adds a guest running the ELF kernel at `path`. Throws when it does not fit in the
    /// machine's RAM or the image is not a valid kernel for it.
    @discardableResult
    public func addGuest(_ configuration: GuestConfiguration, imagePath path: String) throws(VMMError) -> Guest {
        let elf: ELFImage
        do { elf = try ELFImage(contentsOfFile: path) } catch {
            // "cannot read PATH: …" already names the file.
            throw VMMError(error.kind == .unreadable ? error.message : "\(path): \(error.message)")
        }
        return try addGuest(configuration, image: elf)
    }

    @discardableResult
    public func addGuest(_ configuration: GuestConfiguration, image: ELFImage) throws(VMMError) -> Guest {
        let size = configuration.ramSize
        guard size >= 1 << 20, size % 4096 == 0 else {
            throw VMMError("guest \(configuration.name): RAM must be a multiple of 4 KiB, at least 1 MiB")
        }
        guard !guests.contains(where: { $0.name == configuration.name }) else {
            throw VMMError("a guest named \(configuration.name) already exists")
        }
        let free = bus.ramSize - Int(nextRAM)
        guard size <= free else {
            throw VMMError("guest \(configuration.name) needs \(size >> 20) MiB of RAM but only \(free >> 20) MiB of the machine's \(bus.ramSize >> 20) MiB are free")
        }
        do { try image.validate(ramSize: size) } catch { throw VMMError("guest \(configuration.name): \(error.message)") }
        let guest: Guest
        do {
            guest = try Guest(configuration: configuration, index: guests.count, memoryBase: nextRAM, tlbEntries: Guest.tlbEntries)
        } catch { throw VMMError("guest \(configuration.name): \(error.message)") }
        nextRAM += UInt32(size)
        guest.image = image
        guest.onLine = { [unowned self] g, line in self.onConsoleLine?(g, line) }
        guest.board.fpga.onSoftReset = { [unowned self, unowned guest] in self.powerOff(guest) }
        guest.board.piix4.onPowerOff = { [unowned self, unowned guest] in self.powerOff(guest) }
        // `now` is exact at every instruction (`CPU.currentCycles` inside a batch, a call out of
        // translated code and an exit): a device that needs the exact time need not end the
        // CPU's batch, so a polling loop through the device window stays in translated code.
        // (Unretained: the RTC and the PIT read it at every access; `deinit` points the clocks
        // elsewhere before the VMM goes.)
        let vmm = Unmanaged.passUnretained(self)  // borrowed at each read: no retain and release
        guest.board.clock.drive(cycles: { vmm._withUnsafeGuaranteedRef { $0.now } }, synchronize: {})
        do {
            try guest.board.load(elf: image)
            if let initrd = configuration.initrd { try guest.board.load(initrd: initrd) }
        } catch { throw VMMError("guest \(configuration.name): \(error)") }
        guests.append(guest)
        boot(guest)
        return guest
    }

    /// Loads the guest's image (and initrd) into its memory and sets the boot state QEMU's
    /// -kernel leaves: the guest's own Malta board stages it, exactly as on bare Malta, and its
    /// RAM is copied into the guest's slice of the machine's.
    func boot(_ g: Guest) {
        g.board.boot()
        for frame in 0..<UInt32(g.ramSize >> 12) {
            guard let from = g.board.bus.ramPage(frame: frame), let to = bus.ramPage(frame: (g.memoryBase >> 12) + frame) else { continue }
            to.copyMemory(from: from, byteCount: 4096)
        }
        cpu.invalidateCode(physical: g.memoryBase, length: g.ramSize)
        let shadow = g.board.cpu
        g.cp0 = CP0State()
        g.cp0.status = StatusBits.bev
        g.gprs = (0..<32).map { shadow.gpr($0) }
        g.hi = 0
        g.lo = 0
        g.pc = shadow.pc
        g.npc = shadow.pc &+ 4
        g.inDelaySlot = false
        g.countEpoch = now
        g.countBase = 0
        g.timerPending = false
        rearmTimer(g)
        g.state = .runnable
    }

    func powerOff(_ g: Guest) {
        g.state = .poweredOff
        record(.powerOff, g, pc: current === g ? cpu.pc : g.pc)
        if current === g { cpu.requestStop() }
    }

    // MARK: Running

    /// Runs the guests until all have powered off, `maxInstructions` guest instructions have
    /// run, they all wait for nothing, or `stop()` is called.
    public func run(maxInstructions: UInt64 = .max) -> VMMRunOutcome {
        var budget = maxInstructions
        stopRequested = false
        hostMemoryFailed = false
        discardStaleStop()
        while true {
            if stopRequested { stopRequested = false; save(); return takeStop() }
            let alive = guests.filter { $0.state != .poweredOff && !$0.paused }
            if alive.isEmpty { save(); return guests.contains { $0.state != .poweredOff } ? .deadlock : .allPoweredOff }
            if budget == 0 { save(); return .instructionLimit }
            for g in alive where g.state == .waiting { updateTimer(g); if interruptPending(g) { wake(g) } }
            let runnable = alive.filter { $0.state == .runnable }
            if runnable.isEmpty {
                // Everyone waits: skip time to the earliest virtual timer event that can end a
                // wait (the timer's line unmasked in the guest's Status.IM7). With a console
                // connected, the wait happens in host time, so that typing can end it.
                let wakes = alive.filter { $0.cp0.status & StatusBits.im7 != 0 }.compactMap { nextTimerCycle($0) }
                if let g = alive.first(where: { $0.board.consoleInput != nil }), let input = g.board.consoleInput, paceIdleToHostClock {
                    let skip = (wakes.min() ?? now &+ VMM.frequency / 10) &- now
                    let nanoseconds = min(skip &* (1_000_000_000 / VMM.frequency), 100_000_000)
                    deliver(input.waitForInput(timeoutNanoseconds: nanoseconds), to: g)
                    skippedCycles &+= skip
                    continue
                }
                guard let t = wakes.min() else { save(); return .deadlock }
                if t > now { skippedCycles &+= t - now }
                continue
            }
            let next = policy?(runnable, current) ?? roundRobin(runnable)
            guard let guest = next, runnable.contains(where: { $0 === guest }) else { save(); return .deadlock }
            switchTo(guest)
            let used = runSlice(min(budget, slice))
            budget -= min(used, budget)
            serviceConsoles()
            onSliceEnd?()
            onSliceBoundary?()
        }
    }

    /// Whether an idle machine waits for console input in host time (`run` with a guest's
    /// `board.consoleInput` set, on a terminal) instead of skipping to the next timer event.
    @exclusivity(unchecked) public var paceIdleToHostClock = false

    /// Moves console input into the guests' UARTs (guests whose board has a `consoleInput`).
    func serviceConsoles() {
        for g in guests where g.state != .poweredOff {
            guard let input = g.board.consoleInput else { continue }
            deliver(input.poll(), to: g)
            g.board.uart.tick()
        }
    }

    /// Puts console input into `g`'s UART, logging it when a log records (`inputLog`).
    func deliver(_ bytes: [UInt8], to g: Guest) {
        guard !bytes.isEmpty else { return }
        inputLog?.record(bytes, guest: g.index, at: now)
        g.board.uart.receive(bytes)
    }

    /// Records the console input delivered to the guests, by machine time
    /// (`magritte vmm --record`, time travel; VMM+InputLog.swift).
    @exclusivity(unchecked) public var inputLog: VMMInputLog?

    /// Set with `stopRequested` when the CPU stopped for want of host memory.
    var hostMemoryFailed = false

    /// The outcome of a requested stop: `.outOfHostMemory` when that was its cause.
    func takeStop() -> VMMRunOutcome {
        defer { hostMemoryFailed = false }
        return hostMemoryFailed ? .outOfHostMemory : .stopped
    }

    /// Ends `run` at the next instruction boundary.
    public func stop() {
        stopRequested = true
        cpu.requestStop()
    }

    func roundRobin(_ runnable: [Guest]) -> Guest? {
        guard let cur = current, let i = runnable.firstIndex(where: { $0.index > cur.index }) else { return runnable.first }
        return runnable[i]
    }

    /// Runs the current guest for up to `budget` instructions; returns how many ran.
    func runSlice(_ budget: UInt64) -> UInt64 {
        guard let g = current else { return 0 }
        var used: UInt64 = 0
        sliceEnd = false
        while used < budget && g.state == .runnable && !sliceEnd && !stopRequested {
            updateTimer(g)
            deliverInterrupt(g)
            // Up to the timer event or the end of the budget: the quantum's end, unless that is
            // more than a quantum away (then the ends of quanta in between are skipped where
            // they would change nothing, up to the guest's first exit: `skipsQuantumEnds`).
            var reach = budget - used
            if let t = nextTimerCycle(g), t > now { reach = min(reach, t - now) }
            exitEndsQuantum = reach > VMM.quantum && skipsQuantumEnds(g)
            let long = exitEndsQuantum
            let q = long ? reach : min(reach, VMM.quantum)
            if long { (windowFaults, windowFaultsBeforeCell, windowCell) = (0, 0, 0) }
            quantaRun &+= 1
            // (Time as `now`, a call into the core: a read of the CPU's stored `cycles` from this
            // module pays a dynamic exclusivity check.)
            let before = cpu.retiredInstructions, slots = now
            quantumStart = now
            quantumEnd = quantumStart &+ q
            if g.commPage != nil { commPageOut(g) }
            // Instructions emulated in an exit after the trapping one (a cluster, a device poll)
            // used slots the CPU's budget does not know of: they end the CPU's run, and the quantum
            // goes on for what is left of it, so that it ends at the same machine time.
            // An exit in a long quantum ends the CPU's run too, and the quantum goes on to the end
            // of the quantum of `VMM.quantum` slots it is in, where it would have ended anyway.
            var outOfHostMemory = false
            repeat {
                clusterEndedRun = false
                // Only a run that stopped can have run out of host memory (the CPU's flag is read
                // only then: a read of its stored state from here pays an exclusivity check).
                outOfHostMemory = cpu.run(instructions: quantumEnd &- now) == .stopRequested && cpuOutOfHostMemory()
                if exitEndedRun {
                    exitEndedRun = false
                    clusterEndedRun = true
                }
                if _slowPath(deviceWindow.interrupted) { takeWindowInterruptOutOfLine(g) }
            } while clusterEndedRun && now < quantumEnd && g.state == .runnable && !sliceEnd && !stopRequested && !outOfHostMemory
            exitEndsQuantum = false
            if g.commPage != nil { commPageIn(g) }
            quantumEnd = 0
            if outOfHostMemory { hostMemoryFailed = true; stopRequested = true }
            let retired = cpu.retiredInstructions
            // Count slots, as the CPU's budget does: a guest caught in an exception loop (its
            // vector outside its RAM) retires nothing, yet must use up its slice.
            used += max(now &- slots, 1)
            accountMode(g)
            detectSpin(g, ran: long ? longQuantumSample(g, start: slots, retiredAtStart: before, retired: retired) : retired &- before)
        }
        return used
    }

    // Out of line from `runSlice`: inlined, their reads of the CPU's stored state (from this
    // module each pays a dynamic exclusivity check) were hoisted into every quantum.
    @inline(never) func cpuOutOfHostMemory() -> Bool { cpu.outOfHostMemory }
    @inline(never) func takeWindowInterruptOutOfLine(_ g: Guest) { takeWindowInterrupt(g) }

    /// Whether the ends of quanta between now and the guest's next exit (or timer event, or the
    /// end of its budget) may be skipped: nothing happens there. Interrupts do not: after the
    /// quantum's start delivered what was pending, only an exit (which delivers what it made
    /// pending itself), a device-window access (whose interrupt is taken after it, ending a long
    /// quantum as an exit does: `takeWindowInterrupt`) or the timer (which ends the quantum) can
    /// make one pending, so the ends in between deliver nothing. Clustering and device polling are bounded by the
    /// ordinary quantum an exit falls in (`exitBegins`). What remains is the comm page (read
    /// back at every quantum's end) and the idle-loop detector, which
    /// samples a guest kernel at every quantum's end: a guest kernel is sampled at every end
    /// as before, unless it cannot take an interrupt (Status.IE clear, or EXL or ERL set) and
    /// spinning is only counted, not descheduled (a kernel spinning there waits for nothing;
    /// it is counted from the ends of long quanta instead).
    func skipsQuantumEnds(_ g: Guest) -> Bool {
        guard skipsIdleQuantumEnds, g.commPage == nil else { return false }
        guard g.inKernelMode else { return true }
        let s = g.cp0.status
        return spinPolicy == .account && (s & StatusBits.ie == 0 || s & (StatusBits.exl | StatusBits.erl) != 0)
    }

    /// What the idle-loop detector is given at the end of a long quantum that began at machine
    /// time `start`: what it would have been given at the end of the last ordinary quantum (of
    /// `VMM.quantum` slots from `start`) the long one covered. That quantum's retired
    /// instructions, not the long one's: up to the guest's first exit, a slot is a retired
    /// instruction or a device-window access (`windowFaults`), so the count at the ordinary
    /// quantum's start follows from the slots. And no previous sample when it covered more than
    /// one: the sample at the start of the last would have been taken in user mode (none) or in a
    /// kernel that cannot take an interrupt (which matches only where such a kernel spins:
    /// `skipsQuantumEnds`), so the detector sees the same as with every end.
    func longQuantumSample(_ g: Guest, start: UInt64, retiredAtStart: UInt64, retired: UInt64) -> UInt64 {
        let slots = now &- start
        guard slots > VMM.quantum else { return retired &- retiredAtStart }
        let cell = (slots &- 1) / VMM.quantum
        let faults = cell == windowCell ? windowFaultsBeforeCell : windowFaults
        g.lastSample = nil
        let atCell = retiredAtStart &+ cell &* VMM.quantum &- faults
        return retired >= atCell ? min(retired &- atCell, retired &- retiredAtStart) : 0
    }

    /// Called by a device-window access (its slot is faulted, not retired): counted while the
    /// long quantum has seen no exit, for `longQuantumSample`.
    @inline(__always)
    func noteWindowFault() {
        guard exitEndsQuantum else { return }
        // `now` counts the access's own slot.
        let cell = (now &- 1 &- quantumStart) / VMM.quantum
        if cell != windowCell { (windowCell, windowFaultsBeforeCell) = (cell, windowFaults) }
        windowFaults &+= 1
    }

    /// Called at the start of every exit: an exit in a long quantum ends it at the end of the
    /// ordinary quantum it falls in (`quantumEnd`, which what the exit emulates is bounded by, as
    /// in an ordinary quantum), and ends the CPU's run (`runSlice` goes on to `quantumEnd`).
    @inline(__always)
    func exitBegins() {
        guard exitEndsQuantum else { return }
        endLongQuantum()
        exitEndedRun = true
        cpu.requestStop()
    }

    /// Ends the long quantum at the end of the ordinary quantum its last counted slot lies in
    /// (an exit's trapping instruction, a device-window access that made an interrupt
    /// deliverable: `takeWindowInterrupt`).
    @inline(__always)
    func endLongQuantum() {
        exitEndsQuantum = false
        let quanta = (now &- quantumStart &+ VMM.quantum &- 1) / VMM.quantum
        quantumEnd = min(quantumEnd, quantumStart &+ quanta &* VMM.quantum)
    }

    // MARK: Machine switch

    /// Saves the running guest's entire machine state and restores `g`'s.
    func switchTo(_ g: Guest) {
        if current === g { return }
        let from = current
        save()
        current = g
        for i in 1..<32 { cpu.setGPR(i, g.gprs[i]) }
        cpu.hi = g.hi
        cpu.lo = g.lo
        cpu.setPosition(pc: g.pc, npc: g.npc, inDelaySlot: g.inDelaySlot)
        cpu.clearLinkedLoad()
        cpu.cp0.llAddr = g.cp0.llAddr &+ g.memoryBase >> 4
        dropGlobals(except: g)
        setPhysicalASID(g)
        applyMode(g)
        g.modeMark = cpu.retiredInstructions
        g.lastSample = nil
        g.statistics.switchesIn += 1
        recordSwitch(from: from, to: g)
    }

    func save() {
        guard let g = current else { return }
        accountMode(g)
        for i in 0..<32 { g.gprs[i] = cpu.gpr(i) }
        g.hi = cpu.hi
        g.lo = cpu.lo
        g.pc = cpu.pc
        g.npc = cpu.npc
        g.inDelaySlot = cpu.inDelaySlot
        g.cp0.llAddr = guestLLAddr(g)
    }

    /// LLAddr as the guest reads it: the machine address of the last LL, made guest-physical.
    func guestLLAddr(_ g: Guest) -> UInt32 {
        guard current === g else { return g.cp0.llAddr }
        let machine = cpu.cp0.llAddr, base = g.memoryBase >> 4
        return machine >= base ? machine &- base : 0
    }

    /// The physical Status for the guest's virtual mode: supervisor for its kernel, user for its
    /// processes; never kernel, never interrupts, CU0 clear so privileged instructions trap.
    func applyMode(_ g: Guest) {
        let mode = g.mode
        if (mode == .supervisor) != supervisorSegments {
            supervisorSegments = mode == .supervisor
            writeSegCtl(supervisorSegments ? VMM.supervisorSegCtl : VMM.segCtl)
        }
        // Most exits leave the physical mode as it was (an mtc0 to Status that changes IE or IM,
        // an exception taken in the guest's kernel): then the CPU has nothing to redo.
        let status = mode == .user ? StatusBits.ksuUser : StatusBits.ksuSupervisor
        if physicalStatus != status {
            physicalStatus = status
            cpu.setStatus(status)
        }
    }

    func writeSegCtl(_ s: (UInt32, UInt32, UInt32)) {
        cpu.writeCP0(CP0Register.segCtl0, s.0)
        cpu.writeCP0(CP0Register.segCtl1, s.1)
        cpu.writeCP0(CP0Register.segCtl2, s.2)
    }

    func accountMode(_ g: Guest) {
        let n = cpu.retiredInstructions
        let delta = n &- g.modeMark
        if g.inKernelMode { g.statistics.kernelInstructions &+= delta } else { g.statistics.userInstructions &+= delta }
        g.modeMark = n
    }

    // MARK: Virtual time

    func virtualCount(_ g: Guest) -> UInt32 {
        CountTimer.count(base: g.countBase, epoch: g.countEpoch, now: now, ratio: VMM.ticksPerCycle, stopped: g.cp0.cause & CauseBits.dc != 0)
    }

    /// The machine cycle at which the guest's Count next equals its Compare (nil: stopped).
    func nextTimerCycle(_ g: Guest) -> UInt64? {
        g.cp0.cause & CauseBits.dc != 0 ? nil : g.nextTimer
    }

    /// Recomputes when the guest's timer fires, after Count, Compare or Cause.DC changed.
    func rearmTimer(_ g: Guest) {
        g.nextTimer = CountTimer.nextMatch(base: g.countBase, epoch: g.countEpoch, now: now, ratio: VMM.ticksPerCycle, compare: g.cp0.compare)
    }

    /// Raises the virtual timer interrupt (Cause.TI, IP7) once Count has reached Compare.
    func updateTimer(_ g: Guest) {
        guard g.cp0.cause & CauseBits.dc == 0, now >= g.nextTimer else { return }
        g.timerPending = true
        rearmTimer(g)
    }

    // MARK: Physical TLB

    /// The physical ASID for the guest's current ASID (allocated on first use).
    func physicalASID(_ g: Guest, _ asid: UInt8) -> UInt8 {
        if let p = g.asidMap[asid] { return p }
        if nextASID > 255 {
            // All physical ASIDs are in use: start a new generation.
            for other in guests { other.asidMap.removeAll() }
            flushPhysicalTLB()
            nextASID = 1
            for i in asidOwner.indices { asidOwner[i] = -1 }
            record(.asidRollover, g, pc: cpu.pc)
        }
        let p = UInt8(nextASID)
        nextASID += 1
        g.asidMap[asid] = p
        asidOwner[Int(p)] = g.index
        return p
    }

    func setPhysicalASID(_ g: Guest) {
        let p = physicalASID(g, g.cp0.asid)
        cpu.writeCP0(CP0Register.entryHi, UInt32(p))
    }

    func setPhysical(_ i: Int, _ e: TLBEntry) {
        physicalTLB[i] = e
        cpu.setTLBEntry(i, e)
        clusterPages.generation &+= 1
    }

    /// The machine address the physical CPU translates `va` to now (the mirror of its TLB, for
    /// the current physical ASID), without a walk of the guest's virtual TLB. Nil: it would miss.
    func physicalTranslation(_ va: UInt32) -> UInt32? {
        physicalMapping(va)?.address
    }

    /// The same, with whether a store may go there (EntryLo.D). The first matching entry decides,
    /// as in the CPU (the VMM never keeps two entries that match one address: `installPhysical`).
    func physicalMapping(_ va: UInt32) -> (address: UInt32, dirty: Bool)? {
        let asid = cpu.cp0.asid
        for e in physicalTLB where e.matches(va, asid: asid) {
            guard case .mapped(let address, let dirty) = e.translate(va) else { return nil }
            return (address, dirty)
        }
        return nil
    }

    func flushPhysicalTLB() {
        for i in physicalTLB.indices { setPhysical(i, TLBEntry()) }
    }

    /// The page sizes the VMM installs besides 4 KiB, largest first: those of the 24Kc's PageMask
    /// from 16 KiB to 16 MiB.
    static let largePageSizes: [UInt32] = [16 << 20, 4 << 20, 1 << 20, 256 << 10, 64 << 10, 16 << 10]

    /// Installs a page pair VPN2 → (even, odd) machine frames, pages of `pageSize` bytes (4 KiB
    /// × 4^k), for the current physical ASID; `global` for every ASID of the running guest (its
    /// kseg0/kseg1, the same in each of its address spaces: `switchTo` drops such entries
    /// before another guest runs). An entry of the running guest that the pair overlaps and that
    /// could match in the same address space is replaced, so no address ever has two matches.
    ///
    /// `reusing`: slots just emptied (a guest's TLB write dropped the translations of the entry it
    /// replaced, `invalidatePhysical`); a 4 KiB pair takes the first of them in the 4 KiB part
    /// rather than evict another entry.
    func installPhysical(va: UInt32, even: UInt32?, odd: UInt32?, dirtyEven: Bool, dirtyOdd: Bool, pageSize: UInt32 = 4096,
                         global: Bool = false, reusing freed: UInt64 = 0) {
        let asid = UInt32(cpu.cp0.asid)
        let span = pageSize &* 2
        let g: UInt32 = global ? EntryLoBits.global : 0
        func lo(_ mfn: UInt32?, _ d: Bool) -> UInt32 {
            guard let mfn else { return 0 }
            return EntryLoBits.frame(mfn) | EntryLoBits.cacheable | (d ? EntryLoBits.dirty : 0) | EntryLoBits.valid | g
        }
        let entry = TLBEntry(entryHi: (va & ~(span &- 1)) | asid, pageMask: (pageSize &- 0x1000) << 1,
                             entryLo0: lo(even, dirtyEven), entryLo1: lo(odd, dirtyOdd))
        let owner = current?.index ?? -1
        var found: UInt64 = 0
        var overlapping = cpu.tlbEntries(overlapping: entry)  // the CPU's TLB is `physicalTLB`
        asidOwner.withUnsafeBufferPointer { owners in
            while overlapping != 0 {
                let i = overlapping.trailingZeroBitCount, e = physicalTLB[i]
                if e.global || global || UInt32(e.asid) == asid, owners[Int(e.asid)] == owner { found |= 1 << UInt64(i) }
                overlapping &= overlapping &- 1
            }
        }
        let slot: Int
        if found != 0 {
            slot = found.trailingZeroBitCount
        } else if pageSize == 0x1000, case let small = freed & smallPart, small != 0 {
            slot = small.trailingZeroBitCount
        } else {
            slot = victim(large: pageSize > 0x1000)
        }
        found &= found &- 1
        while found != 0 {
            setPhysical(found.trailingZeroBitCount, TLBEntry())
            found &= found &- 1
        }
        setPhysical(slot, entry)
    }

    /// Where a new physical entry goes. With 12 entries or more, the first quarter holds the
    /// large pages (kseg0/kseg1 fills, a guest's large pages) and the rest the 4 KiB pairs, so
    /// that a guest's 4 KiB TLB traffic (its refills, hidden fills) does not evict the few large
    /// pages that map its kernel (a large entry written or evicted also costs the CPU a pass over
    /// its software TLB); each part is replaced in turn by one counter, which the fills one
    /// instruction needs advance one by one, so that each part of at least three entries keeps
    /// the three pairs an instruction may need (`physicalTLBSizes`). Below 12 entries, one round
    /// robin over all. (A guest's `tlbwr`/`tlbwi` puts its pair in the slot its old entry's
    /// translation emptied when there is one: `installPhysical`'s `reusing`; that is no fill.)
    ///
    /// The last `windowSlots` entries belong to the device window (VMM+DeviceWindow.swift) and are
    /// never chosen here.
    func victim(large: Bool) -> Int {
        let (n, k) = parts
        defer { nextTLBSlot = (nextTLBSlot + 1) % n }
        guard k > 0 else { return nextTLBSlot }
        return large ? nextTLBSlot % k : k + nextTLBSlot % (n - k)
    }

    /// The entries `victim` replaces (`n`, before the device window's) and how many of them, at
    /// the start, hold the large pages (`k`).
    var parts: (n: Int, k: Int) {
        let n = physicalTLB.count - windowSlots
        return (n, n >= 12 ? n / 4 : 0)
    }

    /// The 4 KiB part of the physical TLB as a mask of slots.
    var smallPart: UInt64 {
        let (n, k) = parts
        return ((UInt64(1) << UInt64(n)) &- 1) & ~((UInt64(1) << UInt64(k)) &- 1)
    }

    /// Drops the global entries (kseg0/kseg1 fills) of guests other than `g`: they would match
    /// in `g`'s address spaces.
    func dropGlobals(except g: Guest) {
        for i in physicalTLB.indices where physicalTLB[i].global && asidOwner[Int(physicalTLB[i].asid)] != g.index {
            setPhysical(i, TLBEntry())
        }
    }

    /// Removes physical entries of guest `g` that overlap the virtual range of `e` or of `other`
    /// (found through the CPU's TLB index, `CPU.tlbEntries(overlapping:)`, not a scan: a guest's
    /// TLB write drops what the old and the new entry cover; the entries are found first, into a
    /// mask of at most 64, then cleared). Global entries stay: they map what the guest believes
    /// unmapped, which its TLB does not change. Returns the slots emptied.
    @discardableResult
    func invalidatePhysical(_ g: Guest, covering e: TLBEntry, and other: TLBEntry? = nil) -> UInt64 {
        var overlapping = cpu.tlbEntries(overlapping: e)
        if let other, other != e { overlapping |= cpu.tlbEntries(overlapping: other) }
        let owner = g.index
        var found: UInt64 = 0
        asidOwner.withUnsafeBufferPointer { owners in
            while overlapping != 0 {
                let i = overlapping.trailingZeroBitCount, p = physicalTLB[i]
                if !p.global, owners[Int(p.asid)] == owner { found |= 1 << UInt64(i) }
                overlapping &= overlapping &- 1
            }
        }
        let emptied = found
        while found != 0 {
            setPhysical(found.trailingZeroBitCount, TLBEntry())
            found &= found &- 1
        }
        return emptied
    }

    // MARK: Trace

    func record(_ kind: VMMEvent.Kind, _ g: Guest, pc: UInt32, modeBefore: Mode? = nil) {
        guard trace.isActive else { trace.total &+= 1; return }
        trace.append(VMMEvent(kind: kind, guest: g.name, modeBefore: modeBefore ?? g.mode, modeAfter: g.mode, pc: pc,
                              instructions: cpu.retiredInstructions))
    }

    func recordSwitch(from: Guest?, to: Guest) {
        guard trace.isActive else { trace.total &+= 1; return }
        trace.append(VMMEvent(kind: .machineSwitch(from: from?.name), guest: to.name, modeBefore: to.mode, modeAfter: to.mode,
                              pc: to.pc, instructions: cpu.retiredInstructions))
    }
}
