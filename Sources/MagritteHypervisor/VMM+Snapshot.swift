import MagritteCore
import MagritteMachine

/// The whole state of a `VMM` at one instant, between runs: the physical machine (CPU with its
/// TLB and counters, the machine RAM that is not zero), the VMM's scheduler and physical-TLB
/// bookkeeping, every guest (virtual CPU, CP0 and TLB, virtual timer, interrupt lines, pmap
/// bookkeeping, its Malta devices, console, statistics, idle-loop detector) and the event trace.
/// See `Docs/time-travel.md`.
///
/// Restoring it into the VMM it came from (or one built the same way) and running gives the
/// same future as the VMM that took it. A value is valid by construction: `VMM.snapshot()`
/// makes one, and decoding a file checks it entirely (format, checksum, and the state restored
/// into a scratch VMM of the same configuration) before it returns; `VMM.restore` refuses a
/// snapshot of another configuration before it changes anything.
///
/// Serialized per type, one function each: `VMM.saveState`, `Guest.saveState`,
/// `GuestStatistics.saveState`, `VMMEvent.saveState` (and the CPU's, CP0's, TLB entries' and
/// the Malta devices' own).
public struct VMMSnapshot: MachineSnapshot {
    /// What a snapshot can be restored into: these must equal the VMM's.
    public struct Configuration: Sendable, Equatable {
        public struct GuestShape: Sendable, Equatable {
            public var name: String
            public var ramSize: Int
            public var memoryBase: UInt32
        }

        /// Machine RAM and physical TLB entries.
        public var ramSize: Int
        public var tlbEntries: Int
        public var guests: [GuestShape]

        var summary: String {
            "\(ramSize >> 20) MiB machine RAM, \(tlbEntries) TLB entries, \(guests.count) guest\(guests.count == 1 ? "" : "s") ("
                + guests.map { "\($0.name) \($0.ramSize >> 20) MiB" }.joined(separator: ", ") + ")"
        }
    }

    public let configuration: Configuration
    /// The physical CPU's `retiredInstructions` and `executedInstructions` (time travel's
    /// position) when it was taken.
    public let instructionCount: UInt64
    public let executed: UInt64
    /// Each guest's retired instructions when it was taken.
    public let guestInstructions: [UInt64]
    /// The VMM's, the CPU's and the guests' state (`VMM.saveState`).
    let state: [UInt8]
    public let ram: RAMPages
    /// The trace: the stored events, oldest first, and the total ever recorded.
    var events: [VMMEvent] { trace.events }
    let trace: EventHistory
    let eventTotal: UInt64
    /// The trace's `epoch` when it was taken (nil: decoded from a file).
    var traceEpoch: UInt64?

    public var storedPages: Int { ram.frames.count }
    /// Bytes the snapshot holds in memory (the events' text not counted).
    public var byteCount: Int { byteCount(notSharedWith: nil) }

    public func byteCount(notSharedWith previous: VMMSnapshot?) -> Int {
        state.count + ram.bytes(notSharedWith: previous?.ram) + trace.bytes(notSharedWith: previous?.trace)
    }
}

extension VMM: Snapshotting {
    /// The configuration a snapshot must match to be restored here.
    public var snapshotConfiguration: VMMSnapshot.Configuration {
        .init(ramSize: bus.ramSize, tlbEntries: cpu.configuration.tlbEntries,
              guests: guests.map { .init(name: $0.name, ramSize: $0.ramSize, memoryBase: $0.memoryBase) })
    }

    /// The whole state now (see `VMMSnapshot`). Call between runs. The RAM pages equal to
    /// `previous`'s (a snapshot of this VMM) are shared with it, not copied.
    public func snapshot(sharingWith previous: VMMSnapshot? = nil) -> VMMSnapshot {
        var w = SnapshotWriter()
        saveState(to: &w)
        // Since `previous` (same epoch) the trace holds what it held then and the events
        // recorded since (fewer if it is full): share the ones it held.
        let added = previous.map { min(Int(clamping: trace.total &- $0.eventTotal), trace.count) } ?? 0
        let history = if let previous, previous.traceEpoch == trace.epoch, trace.recording, trace.total >= previous.eventTotal,
                         trace.count - added <= previous.trace.count {
            EventHistory(previous.trace, keeping: trace.count - added, adding: trace.newest(added))
        } else {
            EventHistory(trace.events)
        }
        return VMMSnapshot(configuration: snapshotConfiguration, instructionCount: cpu.retiredInstructions,
                           executed: cpu.executedInstructions, guestInstructions: guests.map { retiredInstructions(of: $0) },
                           state: w.bytes, ram: RAMPages(of: bus, sharingWith: previous?.ram), trace: history, eventTotal: trace.total,
                           traceEpoch: trace.epoch)
    }

    /// Puts the VMM in the state of `snapshot`: the next `run` continues exactly as it did after
    /// the snapshot was taken. Refuses (and changes nothing) a snapshot of another configuration.
    /// Host-side settings stay: hooks, the trace's listener, console routes, the policy
    /// function, pacing, each guest's `board.consoleInput`.
    public func restore(_ snapshot: VMMSnapshot) throws(SnapshotError) {
        let mine = snapshotConfiguration
        guard snapshot.configuration == mine else {
            throw SnapshotError("the snapshot is of another VMM configuration (\(snapshot.configuration.summary); this VMM: \(mine.summary))")
        }
        snapshot.ram.restore(into: bus)
        var r = SnapshotReader(snapshot.state)
        do {
            try restoreState(from: &r)
        } catch {
            // Unreachable for a snapshot value (checked when it was made or decoded).
            preconditionFailure("a checked VMM snapshot failed to restore: \(error)")
        }
        trace.restore(events: snapshot.events, total: snapshot.eventTotal)
        changesByHand &+= 1
    }

    // MARK: State, one function per type

    /// The VMM's own state (scheduler, physical ASIDs and TLB bookkeeping, skipped time, the
    /// machine frames whose code the CPU has decoded), then the physical CPU's, then each guest's.
    func saveState(to w: inout SnapshotWriter) {
        save()  // the current guest's registers, from the CPU into its Guest
        w.put(current?.index ?? -1)
        w.put(slice)
        w.put(spinPolicy == .deschedule)
        w.put(skippedCycles)
        w.put(nextASID)
        w.put(asidOwner.map { UInt32(bitPattern: Int32($0)) })
        w.put(physicalTLB.count)
        for e in physicalTLB { e.saveState(to: &w) }
        w.put(nextTLBSlot)
        w.put(supervisorSegments)
        w.put(cpu.codeFrames(below: ramFrames))
        cpu.saveState(to: &w)
        for g in guests { g.saveState(to: &w) }
    }

    /// Reads what `saveState` wrote. Throws on a malformed state (then this VMM may be half
    /// changed: decoding a file checks it on a scratch VMM first, `checking`: which leaves the
    /// CPU's frames of decoded code alone).
    func restoreState(from r: inout SnapshotReader, checking: Bool = false) throws(SnapshotError) {
        let currentIndex = try r.int(in: -1...(guests.count - 1))
        let slice = try r.u64()
        let deschedule = try r.bool()
        let skipped = try r.u64()
        let nextASID = try r.int(in: 1...256)
        let owners = try r.words(count: 256)
        let entries = try r.int(in: VMM.physicalTLBSizes.lowerBound...VMM.physicalTLBSizes.upperBound)
        var tlb: [TLBEntry] = []
        for _ in 0..<entries { tlb.append(try TLBEntry(from: &r)) }
        let nextSlot = try r.int(in: 0...(cpu.configuration.tlbEntries - 1))
        let supervisor = try r.bool()
        let codeFrames = try r.words(limit: ramFrames)
        guard tlb.count == cpu.configuration.tlbEntries, slice > 0, codeFrames.last.map({ Int($0) < ramFrames }) ?? true,
              zip(codeFrames, codeFrames.dropFirst()).allSatisfy({ $0 < $1 }),
              owners.allSatisfy({ Int32(bitPattern: $0) >= -1 && Int32(bitPattern: $0) < Int32(guests.count) }) else {
            throw SnapshotError("the snapshot is corrupt (impossible VMM state)")
        }
        try cpu.restoreState(from: &r)
        for g in guests { try g.restoreState(from: &r) }
        guard r.atEnd else { throw SnapshotError("the snapshot is corrupt (\(r.remaining) bytes of VMM state left over)") }
        // The frames whose code the CPU had decoded: the VMM's exits store to guest RAM only
        // outside them, so the run goes on with the same counts as after the snapshot.
        if !checking { cpu.holdCode(inFrames: codeFrames, below: ramFrames) }
        current = currentIndex < 0 ? nil : guests[currentIndex]
        self.slice = slice
        spinPolicy = deschedule ? .deschedule : .account
        skippedCycles = skipped
        self.nextASID = nextASID
        asidOwner = owners.map { Int(Int32(bitPattern: $0)) }
        physicalTLB = tlb
        clusterPages = ClusterPages()  // the physical TLB changed
        physicalStatus = nil  // the CPU's Status is the snapshot's
        nextTLBSlot = nextSlot
        fillsInARow = 0
        supervisorSegments = supervisor
        stopRequested = false
        sliceEnd = false
        hostMemoryFailed = false
        // The current guest's registers are the CPU's (restored above); LLAddr was saved
        // guest-physical (`save`), the CPU's machine-physical one is restored with the CPU.
    }
}

extension Guest {
    /// The virtual CPU (registers, CP0, TLB, timer, interrupt lines, physical ASIDs), the
    /// schedule state, the console, the statistics, the idle-loop detector and the guest's
    /// Malta devices.
    func saveState(to w: inout SnapshotWriter) {
        w.put(gprs)
        ProgramState(hi: hi, lo: lo, pc: pc, npc: npc, inDelaySlot: inDelaySlot, cp0: cp0).save(to: &w)
        w.put(UInt32(tlb.count))
        for e in tlb { e.saveState(to: &w) }
        w.put(countBase)
        w.put(countEpoch)
        w.put(timerPending)
        w.put(nextTimer)
        w.put(hardwareIP)
        let asids = asidMap.sorted { $0.key < $1.key }
        w.put(asids.flatMap { [$0.key, $0.value] })
        w.put(UInt8(state == .runnable ? 0 : state == .waiting ? 1 : 2))
        w.put(paused)
        w.put(console)
        w.put(partialLine)
        statistics.saveState(to: &w)
        w.put(lastSample != nil)
        if let s = lastSample {
            w.put(s.pc)
            w.put(s.hash)
            w.put(s.ran)
        }
        w.put(spinStreak)
        let loops = idleLoops.sorted { $0.key < $1.key }
        w.put(loops.map(\.key))
        w.put(loops.map { UInt8($0.value ? 1 : 0) })
        w.put(waitKind == .hypercall)
        w.put(waitStart)
        w.put(modeMark)
        w.put(commPage != nil)
        w.put(commPage?.address ?? 0)
        var devices = SnapshotWriter()
        board.saveDeviceState(to: &devices)
        w.put(devices.bytes)
    }

    func restoreState(from r: inout SnapshotReader) throws(SnapshotError) {
        let gprs = try r.words(count: 32)
        let program = try ProgramState(from: &r)
        let count = Int(try r.u32())
        guard count == tlb.count else { throw SnapshotError("the snapshot is corrupt (a guest TLB of \(count) entries)") }
        var tlb: [TLBEntry] = []
        for _ in 0..<count { tlb.append(try TLBEntry(from: &r)) }
        let countBase = try r.u32(), countEpoch = try r.u64(), timerPending = try r.bool(), nextTimer = try r.u64()
        let ip = try r.u32()
        let asids = try r.byteArray(limit: 512)
        let stateCode = try r.u8(), paused = try r.bool()
        let console = try r.byteArray(limit: 1 << 30), partial = try r.byteArray(limit: 1 << 30)
        let statistics = try GuestStatistics(from: &r)
        var sample: (pc: UInt32, hash: UInt64, ran: UInt64)?
        if try r.bool() { sample = (try r.u32(), try r.u64(), try r.u64()) }
        let streak = try r.int(in: 0...Int.max)
        let loopPCs = try r.words(limit: 1 << 24)
        let loopValues = try r.byteArray(limit: 1 << 24)
        let hypercallWait = try r.bool(), waitStart = try r.u64(), modeMark = try r.u64()
        let hasCommPage = try r.bool(), commPageAddress = try r.u32()
        let devices = try r.byteArray(limit: 1 << 24)
        guard asids.count % 2 == 0, stateCode <= 2, loopPCs.count == loopValues.count, ip & ~0xFC00 == 0,
              !hasCommPage || (commPageAddress & 0xFFF == 0 && machineAddress(commPageAddress) != nil) else {
            throw SnapshotError("the snapshot is corrupt (impossible state of guest \(name))")
        }
        var d = SnapshotReader(devices)
        try board.restoreDeviceState(from: &d)
        self.gprs = gprs
        (hi, lo, pc, npc, inDelaySlot, cp0) = (program.hi, program.lo, program.pc, program.npc, program.inDelaySlot, program.cp0)
        self.tlb = tlb
        (self.countBase, self.countEpoch, self.timerPending, self.nextTimer) = (countBase, countEpoch, timerPending, nextTimer)
        hardwareIP = ip
        asidMap = Dictionary(uniqueKeysWithValues: stride(from: 0, to: asids.count, by: 2).map { (asids[$0], asids[$0 + 1]) })
        state = stateCode == 0 ? .runnable : stateCode == 1 ? .waiting : .poweredOff
        self.paused = paused
        self.console = console
        partialLine = partial
        self.statistics = statistics
        lastSample = sample
        spinStreak = streak
        idleLoops = Dictionary(uniqueKeysWithValues: zip(loopPCs, loopValues.map { $0 != 0 }))
        waitKind = hypercallWait ? .hypercall : .wait
        self.waitStart = waitStart
        self.modeMark = modeMark
        commPage = hasCommPage ? CommPage(address: commPageAddress) : nil
    }
}

extension GuestStatistics {
    func saveState(to w: inout SnapshotWriter) {
        w.put(Array(traps))
        w.put(Array(reflected))
        w.put(Array(emulatedByOp))
        for v in [hiddenTLBFills, ksegFills, reflectedTLBMisses, deviceAccesses, hypercalls, kernelInstructions,
                  userInstructions, spinInstructions, waitCycles, hypercallIdleCycles, switchesIn] { w.put(v) }
        w.put(Array(exitsByKind))
        w.put(Array(exitNanosecondsByKind))
        w.put(clusteredInstructions)
        w.put(polledInstructions)
        w.put(polledDeviceAccesses)
        w.put(mappedDeviceAccesses)
    }

    init(from r: inout SnapshotReader) throws(SnapshotError) {
        self.init()
        traps = try Counts(r.doubleWords(count: 32))
        reflected = try Counts(r.doubleWords(count: 32))
        emulatedByOp = try Counts(r.doubleWords(count: 256))
        var v = [UInt64]()
        for _ in 0..<11 { v.append(try r.u64()) }
        (hiddenTLBFills, ksegFills, reflectedTLBMisses, deviceAccesses, hypercalls, kernelInstructions) = (v[0], v[1], v[2], v[3], v[4], v[5])
        (userInstructions, spinInstructions, waitCycles, hypercallIdleCycles, switchesIn) = (v[6], v[7], v[8], v[9], v[10])
        exitsByKind = try Counts(r.doubleWords(count: ExitKind.allCases.count))
        exitNanosecondsByKind = try Counts(r.doubleWords(count: ExitKind.allCases.count))
        clusteredInstructions = try r.u64()
        polledInstructions = try r.u64()
        polledDeviceAccesses = try r.u64()
        mappedDeviceAccesses = try r.u64()
    }
}

extension VMMEvent {
    func saveState(to w: inout SnapshotWriter) {
        func text(_ s: String) { w.put(Array(s.utf8)) }
        switch kind {
        case .trap(let c): w.put(UInt8(0)); w.put(c.rawValue)
        case .reflect(let c, let v): w.put(UInt8(1)); w.put(c.rawValue); w.put(v)
        case .emulate(let s): w.put(UInt8(2)); text(s)
        case .tlbWrite(let i, let e, let even, let odd):
            w.put(UInt8(3)); w.put(i); e.saveState(to: &w)
            for m in [even, odd] {
                w.put(m != nil)
                w.put(m ?? 0)
            }
        case .hiddenFill(let va, let ma, let kseg): w.put(UInt8(4)); w.put(va); w.put(ma); w.put(kseg)
        case .realReturn(let t): w.put(UInt8(5)); w.put(t)
        case .machineSwitch(let from): w.put(UInt8(6)); w.put(from != nil); text(from ?? "")
        case .hypercall(let f): w.put(UInt8(7)); w.put(f)
        case .device(let s): w.put(UInt8(8)); text(s)
        case .idle(let s): w.put(UInt8(9)); text(s)
        case .wake: w.put(UInt8(10))
        case .powerOff: w.put(UInt8(11))
        case .asidRollover: w.put(UInt8(12))
        }
        text(guest)
        w.put(modeBefore.rawValue)
        w.put(modeAfter.rawValue)
        w.put(pc)
        w.put(instructions)
    }

    init(from r: inout SnapshotReader) throws(SnapshotError) {
        func text() throws(SnapshotError) -> String { String(decoding: try r.byteArray(limit: 1 << 16), as: UTF8.self) }
        func code() throws(SnapshotError) -> ExceptionCode {
            guard let c = ExceptionCode(rawValue: try r.u8()) else { throw SnapshotError("the snapshot is corrupt (an unknown exception code in the trace)") }
            return c
        }
        func mode() throws(SnapshotError) -> Mode {
            guard let m = Mode(rawValue: try r.u8()) else { throw SnapshotError("the snapshot is corrupt (an unknown mode in the trace)") }
            return m
        }
        let kind: Kind
        switch try r.u8() {
        case 0: kind = .trap(try code())
        case 1: kind = .reflect(try code(), vector: try r.u32())
        case 2: kind = .emulate(try text())
        case 3:
            let i = try r.int(in: 0...63), e = try TLBEntry(from: &r)
            var machine: [UInt32?] = []
            for _ in 0..<2 {
                let present = try r.bool(), m = try r.u32()
                machine.append(present ? m : nil)
            }
            kind = .tlbWrite(index: i, entry: e, evenMachine: machine[0], oddMachine: machine[1])
        case 4: kind = .hiddenFill(virtual: try r.u32(), machine: try r.u32(), kseg: try r.bool())
        case 5: kind = .realReturn(target: try r.u32())
        case 6:
            let present = try r.bool(), from = try text()
            kind = .machineSwitch(from: present ? from : nil)
        case 7: kind = .hypercall(function: try r.u32())
        case 8: kind = .device(try text())
        case 9: kind = .idle(try text())
        case 10: kind = .wake
        case 11: kind = .powerOff
        case 12: kind = .asidRollover
        default: throw SnapshotError("the snapshot is corrupt (an unknown kind of event in the trace)")
        }
        self.init(kind: kind, guest: try text(), modeBefore: try mode(), modeAfter: try mode(), pc: try r.u32(), instructions: try r.u64())
    }
}

// MARK: The file format

extension VMMSnapshot {
    /// The file's bytes: `SnapshotFile`'s header (kind 2, a VMM), then the configuration, the
    /// counters, the state, the trace and the machine RAM's pages.
    public func encoded() -> [UInt8] {
        var p = SnapshotWriter()
        p.put(configuration.ramSize)
        p.put(UInt32(configuration.tlbEntries))
        p.put(UInt32(configuration.guests.count))
        for g in configuration.guests {
            p.put(Array(g.name.utf8))
            p.put(g.ramSize)
            p.put(g.memoryBase)
        }
        p.put(instructionCount)
        p.put(executed)
        p.put(guestInstructions)
        p.put(state)
        p.put(eventTotal)
        p.put(UInt32(events.count))
        for e in events { e.saveState(to: &p) }
        ram.encode(to: &p)
        return SnapshotFile.wrap(p.bytes, kind: .vmm)
    }

    /// Decodes and checks a VMM snapshot file's bytes. A truncated, corrupt, foreign,
    /// wrong-version or bare-machine file is refused with an error saying which.
    public init(decoding bytes: [UInt8]) throws(SnapshotError) {
        var r = SnapshotReader(try SnapshotFile.unwrap(bytes, kind: .vmm))
        let ramSize = try r.int(in: MaltaBus.minRAMSize...MaltaBus.maxRAMSize)
        let tlbEntries = Int(try r.u32())
        let guestCount = Int(try r.u32())
        guard (try? VMM.checkRAMSize(ramSize)) != nil, VMM.physicalTLBSizes.contains(tlbEntries), guestCount <= 64 else {
            throw SnapshotError("the snapshot is corrupt (an impossible VMM configuration)")
        }
        var shapes: [Configuration.GuestShape] = []
        var base = VMM.firstGuestBase
        for _ in 0..<guestCount {
            let name = String(decoding: try r.byteArray(limit: 1 << 12), as: UTF8.self)
            let size = try r.int(in: 1 << 20...ramSize), memoryBase = try r.u32()
            guard size % 4096 == 0, memoryBase == base, Int(base) + size <= ramSize else {
                throw SnapshotError("the snapshot is corrupt (guest \(name)'s memory does not fit the machine)")
            }
            base += UInt32(size)
            shapes.append(.init(name: name, ramSize: size, memoryBase: memoryBase))
        }
        let configuration = Configuration(ramSize: ramSize, tlbEntries: tlbEntries, guests: shapes)
        let instructions = try r.u64(), executed = try r.u64()
        let guestInstructions = try r.doubleWords(count: guestCount)
        let state = try r.byteArray(limit: 1 << 30)
        let total = try r.u64()
        let eventCount = Int(try r.u32())
        guard eventCount <= r.remaining else { throw SnapshotError.truncatedFile }
        var events: [VMMEvent] = []
        for _ in 0..<eventCount { events.append(try VMMEvent(from: &r)) }
        let ram = try RAMPages(decoding: &r, ramSize: ramSize)
        guard r.atEnd else { throw SnapshotError("the snapshot is corrupt (\(r.remaining) bytes after the RAM pages)") }
        guard instructions <= executed, UInt64(events.count) <= total else { throw SnapshotError("the snapshot is corrupt (inconsistent counters)") }
        // The state must restore: try it on a scratch VMM of the snapshot's configuration.
        let scratch: VMM
        do { scratch = try VMM(ramSize: ramSize, tlbEntries: tlbEntries, traceCapacity: 1, engine: .interpreter) } catch {
            throw SnapshotError("cannot check the snapshot: \(error.message)")
        }
        for g in shapes {
            do { try scratch.addShell(GuestConfiguration(name: g.name, ramSize: g.ramSize)) } catch {
                throw SnapshotError("cannot check the snapshot: \(error.message)")
            }
        }
        var s = SnapshotReader(state)
        try scratch.restoreState(from: &s, checking: true)
        self.init(configuration: configuration, instructionCount: instructions, executed: executed, guestInstructions: guestInstructions,
                  state: state, ram: ram, trace: EventHistory(events), eventTotal: total)
    }
}

extension SnapshotError {
    static let truncatedFile = SnapshotError("the snapshot is truncated")
}

extension VMM {
    /// Machine RAM's frames (the CPU decodes code only there).
    var ramFrames: Int { bus.ramSize >> 12 }

    /// Machine-physical address of the first guest's RAM (`addGuest` places guests one after
    /// the other from here).
    static let firstGuestBase: UInt32 = 0x0010_0000

    /// Adds a guest with no image, not booted: only for a scratch VMM that checks a snapshot.
    func addShell(_ configuration: GuestConfiguration) throws(VMMError) {
        let guest: Guest
        do {
            guest = try Guest(configuration: configuration, index: guests.count, memoryBase: nextRAM, tlbEntries: Guest.tlbEntries)
        } catch { throw VMMError("guest \(configuration.name): \(error.message)") }
        nextRAM += UInt32(configuration.ramSize)
        guests.append(guest)
    }
}

/// The trace's events as a snapshot holds them, oldest first: in chunks that snapshots taken
/// one after another share (each adds a chunk of the events recorded since the one before).
struct EventHistory: Sendable {
    private var chunks: [[VMMEvent]]
    /// Events of the first chunk dropped (the trace is bounded).
    private var skip = 0
    private(set) var count: Int

    init(_ events: [VMMEvent]) {
        chunks = events.isEmpty ? [] : [events]
        count = events.count
    }

    /// The newest `keep` events of `previous`, then `added`.
    init(_ previous: EventHistory, keeping keep: Int, adding added: [VMMEvent]) {
        self = previous
        var drop = count - keep
        while let first = chunks.first, first.count - skip <= drop {
            drop -= first.count - skip
            chunks.removeFirst()
            skip = 0
        }
        skip += drop
        if !added.isEmpty { chunks.append(added) }
        count = keep + added.count
    }

    var events: [VMMEvent] { Array(newest(count)) }

    /// The newest `n` events, oldest first.
    func newest(_ n: Int) -> some Sequence<VMMEvent> { chunks.joined().dropFirst(skip + count - n) }

    /// Bytes of the chunks `other` does not share (approximately: an event's text not counted).
    func bytes(notSharedWith other: EventHistory?) -> Int {
        let shared = other.map { o in Set(o.chunks.map { $0.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } }) } ?? []
        return chunks.filter { c in !shared.contains(c.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }) }
            .reduce(0) { $0 + $1.count * MemoryLayout<VMMEvent>.stride }
    }
}
