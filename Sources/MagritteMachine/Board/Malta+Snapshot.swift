#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MagritteCore

/// The whole state of a `Malta` at one instant: CPU (registers, CP0, TLB, counters, pending
/// timer and interrupt lines, WAIT and LL state), every device (UARTs with their FIFOs and
/// queued input, i8259 pair, i8254, RTC, GT-64120, PIIX4, FPGA), the boot ROM's entry and the
/// RAM pages that are not all zero. See `Docs/time-travel.md`.
///
/// A value is valid by construction: `Malta.snapshot()` makes one, and decoding a file checks
/// it entirely (format, checksum, and the state restored into a scratch board) before it
/// returns, so `Malta.restore` can only refuse a snapshot of another configuration — and does
/// so before it changes anything.
public struct MaltaSnapshot: MachineSnapshot {
    /// What a snapshot can be restored into: these must equal the board's.
    public struct Configuration: Sendable, Equatable {
        public var ramSize: Int
        public var cpu: CPUConfiguration
        public var cpuFrequency: UInt64
        public var rtcStartTime: Int64
    }

    public let configuration: Configuration
    /// `CPU.retiredInstructions` when the snapshot was taken.
    public let instructionCount: UInt64
    /// `CPU.cycles` when the snapshot was taken.
    public let cycles: UInt64
    /// `CPU.executedInstructions` when the snapshot was taken (time travel's position).
    public let executed: UInt64
    /// The CPU's and the devices' state (`saveState` of each, in a fixed order).
    let state: [UInt8]
    /// The RAM pages stored (those not all zero).
    public let ram: RAMPages
    /// What the guest had written to its console when the snapshot was taken, if the owner of
    /// the console output keeps it (the board does not: Lua machines and guests of a VMM do).
    /// Stored in the file; `Malta.restore` leaves it to the owner to put back.
    public var console: [UInt8] = []

    /// RAM pages stored (those not all zero).
    public var storedPages: Int { ram.frames.count }
    /// Bytes the snapshot holds in memory.
    public var byteCount: Int { state.count + ram.byteCount }
    /// Bytes it holds besides the RAM pages.
    public var stateByteCount: Int { state.count }

    public func byteCount(notSharedWith previous: MaltaSnapshot?) -> Int {
        state.count + ram.bytes(notSharedWith: previous?.ram)
    }

    /// The file format's identification and version (`Docs/time-travel.md`, `SnapshotFile`).
    public static var magic: [UInt8] { SnapshotFile.magic }
    public static var formatVersion: UInt32 { SnapshotFile.formatVersion }
    static var headerSize: Int { SnapshotFile.headerSize }
}

extension Malta: Snapshotting {
    /// The whole state now (see `MaltaSnapshot`). Call between runs. The RAM pages equal to
    /// `previous`'s (a snapshot of this board) are shared with it, not copied.
    public func snapshot(sharingWith previous: MaltaSnapshot? = nil) -> MaltaSnapshot {
        var w = SnapshotWriter()
        saveDeviceState(to: &w)
        return MaltaSnapshot(configuration: .init(configuration), instructionCount: cpu.retiredInstructions,
                             cycles: cpu.cycles, executed: cpu.executedInstructions, state: w.bytes, ram: RAMPages(of: bus, sharingWith: previous?.ram))
    }

    /// Puts the board in the state of `snapshot`: the next `run` continues exactly as the run
    /// that took it did. Refuses (and changes nothing) a snapshot of another configuration.
    /// Host-side settings stay: the console output and input, the observer, watches, pacing.
    public func restore(_ snapshot: MaltaSnapshot) throws(SnapshotError) {
        let mine = MaltaSnapshot.Configuration(configuration)
        guard snapshot.configuration == mine else {
            throw SnapshotError("the snapshot is of another machine configuration (\(snapshot.configuration.summary); this machine: \(mine.summary))")
        }
        var r = SnapshotReader(snapshot.state)
        do {
            try restoreDeviceState(from: &r)
        } catch {
            // Unreachable for a snapshot value (checked when it was made or decoded).
            preconditionFailure("a checked snapshot failed to restore: \(error)")
        }
        snapshot.ram.restore(into: bus)
        cpu.invalidateCaches()
        resetPacing()
    }

    /// The CPU, then every device, in the snapshot format's order.
    public func saveDeviceState(to w: inout SnapshotWriter) {
        w.put(romEntry)
        cpu.saveState(to: &w)
        uart.saveState(to: &w)
        cbusUART.saveState(to: &w)
        fpga.saveState(to: &w)
        pic.saveState(to: &w)
        rtc.saveState(to: &w)
        pit.saveState(to: &w)
        systemController.saveState(to: &w)
        piix4.saveState(to: &w)
    }

    public func restoreDeviceState(from r: inout SnapshotReader) throws(SnapshotError) {
        let entry = try r.u32()
        try cpu.restoreState(from: &r)
        try uart.restoreState(from: &r)
        try cbusUART.restoreState(from: &r)
        try fpga.restoreState(from: &r)
        try pic.restoreState(from: &r)
        try rtc.restoreState(from: &r)
        try pit.restoreState(from: &r)
        try systemController.restoreState(from: &r)
        try piix4.restoreState(from: &r)
        guard r.atEnd else { throw SnapshotError("the snapshot is corrupt (\(r.remaining) bytes of machine state left over)") }
        if entry != romEntry { writeROMs(entry: entry) }
    }

}

extension MaltaSnapshot.Configuration {
    init(_ c: MaltaConfiguration) {
        self.init(ramSize: c.ramSize, cpu: c.cpu, cpuFrequency: c.cpuFrequency, rtcStartTime: c.rtcStartTime)
    }

    var summary: String {
        "\(ramSize >> 20) MiB RAM, \(cpu.tlbEntries) TLB entries, PRId \(Hex.prefixed(cpu.processorID)), "
            + "\(cpuFrequency) Hz, RTC start \(rtcStartTime)"
    }

    var malta: MaltaConfiguration {
        var c = MaltaConfiguration(ramSize: ramSize)
        c.cpu = cpu
        c.cpuFrequency = cpuFrequency
        c.rtcStartTime = rtcStartTime
        return c
    }
}

// MARK: The file format

extension MaltaSnapshot {
    /// The file's bytes: a header (magic, version, kind, payload length, FNV-1a checksum of the
    /// payload) and the payload (configuration, counters, machine state, RAM pages each stored
    /// raw or run-length encoded, whichever is shorter).
    public func encoded() -> [UInt8] {
        var p = SnapshotWriter()
        p.put(configuration.ramSize)
        p.put(UInt32(configuration.cpu.tlbEntries))
        p.put(configuration.cpu.segmentationControl)
        p.put(configuration.cpu.instructionsPerCountTick)
        p.put(configuration.cpu.processorID)
        p.put(configuration.cpuFrequency)
        p.put(configuration.rtcStartTime)
        p.put(instructionCount)
        p.put(cycles)
        p.put(executed)
        p.put(state)
        p.put(console)
        ram.encode(to: &p)
        return SnapshotFile.wrap(p.bytes, kind: .malta)
    }

    /// Decodes and checks a snapshot file's bytes. A truncated, corrupt, foreign or
    /// wrong-version file is refused with an error saying which.
    public init(decoding bytes: [UInt8]) throws(SnapshotError) {
        let payload = try SnapshotFile.unwrap(bytes, kind: .malta)
        var r = SnapshotReader(payload)
        let ramSize = try r.int(in: MaltaBus.minRAMSize...MaltaBus.maxRAMSize)
        var cpu = CPUConfiguration()
        cpu.tlbEntries = Int(try r.u32())
        cpu.segmentationControl = try r.bool()
        cpu.instructionsPerCountTick = try r.u64()
        cpu.processorID = try r.u32()
        let frequency = try r.u64(), rtc = try r.i64()
        guard ramSize % 4096 == 0, (1...64).contains(cpu.tlbEntries), cpu.instructionsPerCountTick >= 1,
              (1...1_000_000_000).contains(frequency) else {
            throw SnapshotError("the snapshot is corrupt (an impossible machine configuration)")
        }
        let config = Configuration(ramSize: ramSize, cpu: cpu, cpuFrequency: frequency, rtcStartTime: rtc)
        let instructions = try r.u64(), cycles = try r.u64(), executed = try r.u64()
        let state = try r.byteArray(limit: 1 << 30)
        let console = try r.byteArray(limit: 1 << 30)
        let ram = try RAMPages(decoding: &r, ramSize: ramSize)
        guard r.atEnd else { throw SnapshotError("the snapshot is corrupt (\(r.remaining) bytes after the RAM pages)") }
        guard instructions <= executed, executed <= cycles else { throw SnapshotError("the snapshot is corrupt (inconsistent counters)") }
        // The state must restore: try it on a scratch board of the snapshot's configuration.
        var s = SnapshotReader(state)
        try Malta(configuration: config.malta).restoreDeviceState(from: &s)
        self.init(configuration: config, instructionCount: instructions, cycles: cycles, executed: executed, state: state,
                  ram: ram, console: console)
    }
}

/// 64-bit FNV-1a over `bytes`.
func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    bytes.withUnsafeBufferPointer { for b in $0 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 } }
    return h
}

/// A byte-oriented run-length code for RAM pages: a control byte c < 128 is followed by c + 1
/// literal bytes; c ≥ 128 by one byte repeated c − 125 times (3 to 130).
enum RunLength {
    static func encode(_ input: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        var literalStart = 0
        func flushLiterals(upTo end: Int) {
            var s = literalStart
            while s < end {
                let n = min(128, end - s)
                out.append(UInt8(n - 1))
                out.append(contentsOf: input[s..<s + n])
                s += n
            }
        }
        while i < input.count {
            var run = 1
            while i + run < input.count && run < 130 && input[i + run] == input[i] { run += 1 }
            if run >= 3 {
                flushLiterals(upTo: i)
                out.append(UInt8(run + 125))
                out.append(input[i])
                i += run
                literalStart = i
            } else {
                i += run
            }
        }
        flushLiterals(upTo: input.count)
        return out
    }

    static func decode(_ input: [UInt8], count: Int) throws(SnapshotError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var i = 0
        while i < input.count {
            let c = Int(input[i])
            i += 1
            if c < 128 {
                guard i + c + 1 <= input.count else { throw SnapshotError("the snapshot is corrupt (a RAM page's encoding is cut short)") }
                out += input[i..<i + c + 1]
                i += c + 1
            } else {
                guard i < input.count else { throw SnapshotError("the snapshot is corrupt (a RAM page's encoding is cut short)") }
                out += repeatElement(input[i], count: c - 125)
                i += 1
            }
            guard out.count <= count else { throw SnapshotError("the snapshot is corrupt (a RAM page longer than 4 KiB)") }
        }
        guard out.count == count else { throw SnapshotError("the snapshot is corrupt (a RAM page shorter than 4 KiB)") }
        return out
    }
}
