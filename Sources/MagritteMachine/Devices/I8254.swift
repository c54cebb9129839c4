import MagritteCore

/// The PIIX4's Intel 8254 programmable interval timer (ISA ports 0x40–0x43), counting at
/// 1.193182 MHz of guest time (`GuestClock`), register-compatible with QEMU's `hw/timer/i8254.c`:
/// control words (counter select, access mode LSB/MSB/both, latch, modes 0–5, read-back),
/// count loads and reads with the LSB/MSB flip-flop, latched counts and status.
///
/// What is left out: the OUT pins. Linux on the Malta registers the PIT as a clock event device
/// but prefers the CP0 timer (rating 300 against the PIT's lower one) and shuts the PIT down,
/// so IRQ 0 is never raised here (QEMU's PIT does raise it; nothing Linux prints depends on it).
/// The channel 2 gate (port 0x61) is not modelled either (QEMU's Malta has no port 0x61).
public final class I8254: Device {
    public static let frequency: UInt64 = 1_193_182

    struct Channel {
        var count: UInt32 = 0x1_0000  // the reload value (0 written means 0x10000)
        var loadCycle: UInt64 = 0
        var mode: UInt8 = 3
        var bcd = false
        var rwMode: UInt8 = 3  // 1 LSB, 2 MSB, 3 LSB then MSB
        var readState: UInt8 = 3  // 1 LSB, 2 MSB, 3 word (LSB next), 4 word (MSB next)
        var writeState: UInt8 = 3
        var writeLatch: UInt8 = 0
        var latchedCount: UInt16 = 0
        var countLatched: UInt8 = 0  // 0: none, else the rw state of the latch
        var latchedStatus: UInt8 = 0
        var statusLatched = false
        var nullCount = true
    }

    let clock: GuestClock
    var channels = [Channel](repeating: Channel(), count: 3)

    public init(clock: GuestClock) {
        self.clock = clock
        reset()
    }

    /// Power-on state (QEMU's pit_reset): every channel in mode 3 with a count of 0x10000,
    /// loaded at guest time 0.
    public func reset() {
        channels = [Channel](repeating: Channel(), count: 3)
    }

    private func elapsedTicks(_ c: Channel, at cycle: UInt64) -> UInt64 {
        clock.ticks(of: I8254.frequency, atCycle: cycle) &- clock.ticks(of: I8254.frequency, atCycle: c.loadCycle)
    }

    /// The counter value of channel `i` now.
    func currentCount(_ i: Int) -> UInt16 {
        let c = channels[i]
        let d = elapsedTicks(c, at: clock.preciseCycles())
        let n = UInt64(c.count)
        switch c.mode {
        case 0, 1, 4, 5:
            return UInt16(truncatingIfNeeded: n &- d)
        case 3:
            return UInt16(truncatingIfNeeded: n - (2 &* d) % n)
        default:
            return UInt16(truncatingIfNeeded: n - d % n)
        }
    }

    private func load(_ i: Int, _ value: UInt32) {
        channels[i].count = value == 0 ? 0x1_0000 : value
        channels[i].loadCycle = clock.cycles
        channels[i].nullCount = false
    }

    private func latchCount(_ i: Int) {
        guard channels[i].countLatched == 0 else { return }
        channels[i].latchedCount = currentCount(i)
        channels[i].countLatched = channels[i].rwMode
    }

    public func read(offset: UInt32, size: Int) -> UInt32? {
        let i = Int(offset & 3)
        guard i < 3 else { return 0 }  // the control port reads 0 on QEMU
        var c = channels[i]
        defer { channels[i] = c }
        if c.statusLatched {
            c.statusLatched = false
            return UInt32(c.latchedStatus)
        }
        if c.countLatched != 0 {
            switch c.countLatched {
            case 1:
                c.countLatched = 0
                return UInt32(c.latchedCount & 0xFF)
            case 2:
                c.countLatched = 0
                return UInt32(c.latchedCount >> 8)
            default:
                c.countLatched = 2  // LSB now, MSB next
                return UInt32(c.latchedCount & 0xFF)
            }
        }
        channels[i] = c
        let count = currentCount(i)
        switch c.readState {
        case 1: return UInt32(count & 0xFF)
        case 2: return UInt32(count >> 8)
        case 3:
            c.readState = 4
            return UInt32(count & 0xFF)
        default:
            c.readState = 3
            return UInt32(count >> 8)
        }
    }

    public func write(offset: UInt32, size: Int, value: UInt32) -> Bool {
        let v = UInt8(truncatingIfNeeded: value)
        let port = Int(offset & 3)
        if port == 3 {
            let select = Int(v >> 6)
            if select == 3 {
                // Read-back: bit 5 clear latches counts, bit 4 clear latches status.
                for i in 0..<3 where v & (2 << UInt8(i)) != 0 {
                    if v & 0x20 == 0 { latchCount(i) }
                    if v & 0x10 == 0 && !channels[i].statusLatched {
                        let c = channels[i]
                        channels[i].latchedStatus = (c.nullCount ? 0x40 : 0) | c.rwMode << 4 | c.mode << 1 | (c.bcd ? 1 : 0)
                        channels[i].statusLatched = true
                    }
                }
                return true
            }
            let access = (v >> 4) & 3
            if access == 0 {
                latchCount(select)
            } else {
                channels[select].rwMode = access
                channels[select].readState = access
                channels[select].writeState = access
                var mode = (v >> 1) & 7
                if mode > 5 { mode -= 4 }  // 6 and 7 are 2 and 3
                channels[select].mode = mode
                channels[select].bcd = v & 1 != 0
                channels[select].nullCount = true
            }
            return true
        }
        switch channels[port].writeState {
        case 1:
            load(port, UInt32(v))
        case 2:
            load(port, UInt32(v) << 8)
        case 3:
            channels[port].writeLatch = v
            channels[port].writeState = 4
        default:
            load(port, UInt32(channels[port].writeLatch) | UInt32(v) << 8)
            channels[port].writeState = 3
        }
        return true
    }
}

extension I8254 {
    /// Appends the three channels (reload value, load time, modes, latches).
    public func saveState(to w: inout SnapshotWriter) {
        for c in channels {
            w.put(c.count)
            w.put(c.loadCycle)
            for v in [c.mode, c.rwMode, c.readState, c.writeState, c.writeLatch, c.countLatched, c.latchedStatus] { w.put(v) }
            w.put(c.latchedCount)
            w.put(c.bcd)
            w.put(c.statusLatched)
            w.put(c.nullCount)
        }
    }

    public func restoreState(from r: inout SnapshotReader) throws(SnapshotError) {
        var new: [Channel] = []
        for _ in 0..<3 {
            var c = Channel()
            c.count = try r.u32()
            c.loadCycle = try r.u64()
            let b = try r.raw(7)
            (c.mode, c.rwMode, c.readState, c.writeState, c.writeLatch, c.countLatched, c.latchedStatus) = (b[0], b[1], b[2], b[3], b[4], b[5], b[6])
            c.latchedCount = try r.u16()
            c.bcd = try r.bool()
            c.statusLatched = try r.bool()
            c.nullCount = try r.bool()
            guard (1...0x1_0000).contains(c.count) else { throw SnapshotError("the snapshot is corrupt (a PIT count of \(c.count))") }
            new.append(c)
        }
        channels = new
    }
}
