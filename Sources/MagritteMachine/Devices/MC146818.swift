import MagritteCore

/// The PIIX4's real-time clock, a Motorola MC146818 (ISA ports 0x70 index, 0x71 data), as QEMU's
/// `hw/rtc/mc146818rtc.c` presents it, but running on *guest* time (`GuestClock`) from a fixed
/// start date instead of the host's clock.
///
/// Linux on the Malta calibrates the CPU against it: it waits for two rising edges of
/// Register A's update-in-progress bit (UIP, high during the last 244 µs of every second) and
/// counts CP0 Count in between. A read of Register A close to a UIP edge (closer than the
/// clock can lag, `GuestClock.maxStaleCycles`) therefore synchronises the clock with the CPU
/// (`GuestClock.preciseCycles`), so the edge is seen within a few instructions; reads far from
/// an edge need not (and cost no batch break).
///
/// Registers: 0–9 time, alarm and date (BCD or binary, 12- or 24-hour, per Register B),
/// A (divider, rate, UIP), B (SET, PIE/AIE/UIE, DM, 24/12), C (IRQF, PF, AF, UF; cleared by a
/// read), D (VRT), then battery-backed RAM up to 0x7F, with the century at 0x32 as on the PIIX4.
/// Interrupt flags are evaluated when Register C is read and when the board calls `service()`
/// (between instruction batches); IRQ 8 follows IRQF.
public final class MC146818: Device {
    public enum Register {
        public static let seconds = 0, secondsAlarm = 1, minutes = 2, minutesAlarm = 3
        public static let hours = 4, hoursAlarm = 5, dayOfWeek = 6, dayOfMonth = 7
        public static let month = 8, year = 9, a = 10, b = 11, c = 12, d = 13
        public static let century = 0x32
    }
    static let uip: UInt8 = 0x80
    static let set: UInt8 = 0x80, pie: UInt8 = 0x40, aie: UInt8 = 0x20, uie: UInt8 = 0x10
    static let binary: UInt8 = 0x04, hours24: UInt8 = 0x02
    static let irqf: UInt8 = 0x80, pf: UInt8 = 0x40, af: UInt8 = 0x20, uf: UInt8 = 0x10
    static let nanosecondsPerSecond: Int64 = 1_000_000_000
    /// How long UIP stays high before each update (QEMU's UIP_HOLD_LENGTH: 8 periods of 32 kHz).
    public static let uipHold: Int64 = 8 * 1_000_000_000 / 32768

    let clock: GuestClock
    /// The date and time at guest time 0, in seconds since 1970-01-01 UTC.
    public let startTime: Int64
    // The stored state is @exclusivity(unchecked): Linux polls the RTC millions of times while it
    // calibrates its clock, and the dynamic checks showed in its profile (Docs/performance.md).
    /// Drives the interrupt line (ISA IRQ 8).
    @exclusivity(unchecked) public var onInterruptChange: ((Bool) -> Void)?
    @exclusivity(unchecked) public private(set) var interruptAsserted = false

    /// The 128 CMOS bytes (time registers hold what was last latched or written).
    @exclusivity(unchecked) public private(set) var cmos = [UInt8](repeating: 0, count: 128)
    @exclusivity(unchecked) public private(set) var index = 0
    /// RTC time = guest time + offset, in nanoseconds since 1970.
    @exclusivity(unchecked) private var offset: Int64 = 0
    /// Guest time (ns) up to which the interrupt flags have been evaluated.
    @exclusivity(unchecked) private var flagsEvaluatedAt: Int64 = 0

    public init(clock: GuestClock, startTime: Int64) {
        self.clock = clock
        self.startTime = startTime
        reset()
    }

    /// Power-on state: the clock at `startTime`, Register A = 0x26 (32 kHz, 1024 Hz rate),
    /// B = 0x02 (24-hour, BCD), C = 0, D = 0x80 — QEMU's values, measured.
    public func reset() {
        cmos = [UInt8](repeating: 0, count: 128)
        cmos[Register.a] = 0x26
        cmos[Register.b] = MC146818.hours24
        cmos[Register.d] = 0x80
        index = 0
        offset = startTime &* MC146818.nanosecondsPerSecond
        flagsEvaluatedAt = 0
        setInterrupt(false)
    }

    // MARK: Time

    private var guestNanoseconds: Int64 { Int64(clamping: clock.nanoseconds) }
    private var running: Bool {
        cmos[Register.b] & MC146818.set == 0 && cmos[Register.a] & 0x70 == 0x20
    }

    /// The RTC's time now, in nanoseconds since 1970.
    public var currentTime: Int64 { offset &+ guestNanoseconds }

    private func updateInProgress(at ns: Int64) -> Bool {
        guard running else { return false }
        let phase = ((ns % MC146818.nanosecondsPerSecond) + MC146818.nanosecondsPerSecond) % MC146818.nanosecondsPerSecond
        return phase >= MC146818.nanosecondsPerSecond - MC146818.uipHold
    }

    /// Time from `ns` to the next rise or fall of UIP.
    private func nanosecondsToUIPChange(at ns: Int64) -> Int64 {
        let second = MC146818.nanosecondsPerSecond
        let phase = ((ns % second) + second) % second
        let rise = second - MC146818.uipHold
        return phase < rise ? rise - phase : second - phase
    }

    private var binaryMode: Bool { cmos[Register.b] & MC146818.binary != 0 }
    private func encode(_ v: Int) -> UInt8 { binaryMode ? UInt8(v) : UInt8((v / 10) << 4 | v % 10) }
    private func decode(_ b: UInt8) -> Int { binaryMode ? Int(b) : Int(b >> 4) * 10 + Int(b & 0x0F) }

    /// Copies the running time into the time registers (QEMU's rtc_update_time).
    private func latchTime() {
        let seconds = floorDiv(currentTime, MC146818.nanosecondsPerSecond)
        let t = CivilTime(unixSeconds: seconds)
        cmos[Register.seconds] = encode(t.second)
        cmos[Register.minutes] = encode(t.minute)
        if cmos[Register.b] & MC146818.hours24 != 0 {
            cmos[Register.hours] = encode(t.hour)
        } else {
            let h12 = t.hour % 12 == 0 ? 12 : t.hour % 12
            cmos[Register.hours] = encode(h12) | (t.hour >= 12 ? 0x80 : 0)
        }
        cmos[Register.dayOfWeek] = encode(t.weekday + 1)
        cmos[Register.dayOfMonth] = encode(t.day)
        cmos[Register.month] = encode(t.month)
        cmos[Register.year] = encode(t.year % 100)
        cmos[Register.century] = encode(t.year / 100)
    }

    /// Sets the running time from the time registers; the new second starts now.
    private func loadTime() {
        var hour: Int
        if cmos[Register.b] & MC146818.hours24 != 0 {
            hour = decode(cmos[Register.hours] & 0x7F)
        } else {
            hour = decode(cmos[Register.hours] & 0x7F) % 12
            if cmos[Register.hours] & 0x80 != 0 { hour += 12 }
        }
        let t = CivilTime(year: decode(cmos[Register.century]) * 100 + decode(cmos[Register.year]),
                          month: decode(cmos[Register.month]), day: decode(cmos[Register.dayOfMonth]),
                          hour: hour, minute: decode(cmos[Register.minutes]), second: decode(cmos[Register.seconds]))
        let now = guestNanoseconds
        offset = t.unixSeconds &* MC146818.nanosecondsPerSecond &- now
        flagsEvaluatedAt = now
    }

    // MARK: Interrupt flags

    /// Raises the flags for what happened since the last evaluation and drives IRQ 8.
    public func service() {
        evaluateFlags()
    }

    private func evaluateFlags() {
        let now = guestNanoseconds
        let last = flagsEvaluatedAt
        guard now > last else { return }
        flagsEvaluatedAt = now
        var flags = cmos[Register.c]
        if running {
            let s0 = floorDiv(offset &+ last, MC146818.nanosecondsPerSecond)
            let s1 = floorDiv(offset &+ now, MC146818.nanosecondsPerSecond)
            if s1 > s0 {
                flags |= MC146818.uf
                if alarmMatches(from: s0 + 1, through: s1) { flags |= MC146818.af }
            }
        }
        let rate = Int(cmos[Register.a] & 0x0F)
        if rate != 0 && cmos[Register.a] & 0x70 == 0x20 {
            // 32768 Hz >> (rate - 1); rates 1 and 2 are 256 and 128 Hz.
            let hz: Int64 = rate <= 2 ? 256 >> Int64(rate - 1) : 32768 >> Int64(rate - 1)
            let period = MC146818.nanosecondsPerSecond / hz
            if now / period > last / period { flags |= MC146818.pf }
        }
        let b = cmos[Register.b]
        if (flags & MC146818.pf != 0 && b & MC146818.pie != 0) || (flags & MC146818.af != 0 && b & MC146818.aie != 0)
            || (flags & MC146818.uf != 0 && b & MC146818.uie != 0) {
            flags |= MC146818.irqf
        }
        cmos[Register.c] = flags
        setInterrupt(flags & MC146818.irqf != 0)
    }

    private func alarmMatches(from first: Int64, through last: Int64) -> Bool {
        let s = cmos[Register.secondsAlarm], m = cmos[Register.minutesAlarm], h = cmos[Register.hoursAlarm]
        if last - first >= 86_400 { return true }
        var second = first
        while second <= last {
            let t = CivilTime(unixSeconds: second)
            let hour24 = cmos[Register.b] & MC146818.hours24 != 0
            let hourValue = hour24 ? encode(t.hour) : encode(t.hour % 12 == 0 ? 12 : t.hour % 12) | (t.hour >= 12 ? 0x80 : 0)
            if (s & 0xC0 == 0xC0 || s == encode(t.second)) && (m & 0xC0 == 0xC0 || m == encode(t.minute))
                && (h & 0xC0 == 0xC0 || h == hourValue) {
                return true
            }
            second += 1
        }
        return false
    }

    private func setInterrupt(_ level: Bool) {
        guard level != interruptAsserted else { return }
        interruptAsserted = level
        onInterruptChange?(level)
    }

    // MARK: Device (offset 0: index, 1: data)

    public func read(offset port: UInt32, size: Int) -> UInt32? {
        guard port & 1 == 1 else { return 0xFF }  // the index port reads as the floating bus
        switch index {
        case Register.seconds, Register.minutes, Register.hours, Register.dayOfWeek, Register.dayOfMonth,
             Register.month, Register.year, Register.century:
            if running { latchTime() }
            return UInt32(cmos[index])
        case Register.a:
            var now = currentTime
            if running && nanosecondsToUIPChange(at: now) <= Int64(clamping: clock.maxStaleNanoseconds) {
                _ = clock.preciseCycles()
                now = currentTime
            }
            var value = cmos[Register.a] & 0x7F
            if updateInProgress(at: now) { value |= MC146818.uip }
            return UInt32(value)
        case Register.c:
            evaluateFlags()
            let value = cmos[Register.c]
            cmos[Register.c] = 0
            setInterrupt(false)
            return UInt32(value)
        default:
            return UInt32(cmos[index])
        }
    }

    public func write(offset port: UInt32, size: Int, value: UInt32) -> Bool {
        let v = UInt8(truncatingIfNeeded: value)
        if port & 1 == 0 {
            index = Int(v & 0x7F)
            return true
        }
        switch index {
        case Register.seconds, Register.minutes, Register.hours, Register.dayOfWeek, Register.dayOfMonth,
             Register.month, Register.year, Register.century:
            if running {
                latchTime()
                cmos[index] = v
                loadTime()
            } else {
                cmos[index] = v
            }
        case Register.a:
            evaluateFlags()
            let wasRunning = running
            cmos[Register.a] = (cmos[Register.a] & MC146818.uip) | (v & 0x7F)
            if wasRunning && !running { latchTime() } else if !wasRunning && running { loadTime() }
        case Register.b:
            evaluateFlags()
            let wasRunning = running
            if wasRunning { latchTime() }
            var b = v
            if b & MC146818.set != 0 { b &= ~MC146818.uie }
            cmos[Register.b] = b
            if !wasRunning && running { loadTime() }
            evaluateFlags()
        case Register.c, Register.d:
            break  // read-only
        default:
            cmos[index] = v
        }
        return true
    }
}

private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

/// A UTC date and time (proleptic Gregorian), converted to and from Unix seconds.
struct CivilTime: Equatable {
    var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int
    /// 0 = Sunday.
    var weekday: Int { Int(((floorDiv(unixSeconds, 86_400) + 4) % 7 + 7) % 7) }

    init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        self.year = year; self.month = month; self.day = day
        self.hour = hour; self.minute = minute; self.second = second
    }

    init(unixSeconds: Int64) {
        let days = floorDiv(unixSeconds, 86_400)
        let secs = Int(unixSeconds - days * 86_400)
        hour = secs / 3600
        minute = secs / 60 % 60
        second = secs % 60
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = Int(doy - (153 * mp + 2) / 5 + 1)
        month = Int(mp < 10 ? mp + 3 : mp - 9)
        year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
    }

    var unixSeconds: Int64 {
        // days_from_civil.
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86_400 + Int64(hour) * 3600 + Int64(minute) * 60 + Int64(second)
    }
}

extension MC146818 {
    /// Appends the CMOS bytes, the index, the clock offset and the interrupt state.
    public func saveState(to w: inout SnapshotWriter) {
        w.put(cmos)
        w.put(index)
        w.put(offset)
        w.put(flagsEvaluatedAt)
        w.put(interruptAsserted)
    }

    public func restoreState(from r: inout SnapshotReader) throws(SnapshotError) {
        let bytes = try r.byteArray(limit: 128)
        guard bytes.count == 128 else { throw SnapshotError("the snapshot is corrupt (RTC CMOS of \(bytes.count) bytes)") }
        let index = try r.int(in: 0...127), offset = try r.i64(), evaluated = try r.i64(), asserted = try r.bool()
        (cmos, self.index, self.offset, flagsEvaluatedAt, interruptAsserted) = (bytes, index, offset, evaluated, asserted)
    }
}
