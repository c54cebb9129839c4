import MagritteCore

/// Guest time: the CPU's cycle counter (`CPU.cycles`: one per executed instruction slot, plus
/// the cycles skipped idle in WAIT) read at a fixed emulated CPU frequency. Nothing of the
/// host's clock enters it, so every device that keeps time from it (the RTC, the PIT) is as
/// deterministic as the CPU.
///
/// With the default 100 MHz, one instruction is 10 ns and CP0 Count (one tick per two
/// instructions) runs at 50 MHz; Linux measures Count against the RTC and reports "CPU
/// frequency 100.00 MHz".
public final class GuestClock {
    /// Emulated CPU cycles (instruction slots) per second.
    public let frequency: UInt64
    /// Where cycles come from (the board points it at its CPU).
    var source: () -> UInt64 = { 0 }
    /// Called by devices before they read the clock for a register whose value depends on the
    /// exact time: the board makes the CPU end its batch there (`CPU.endBatch`) so that the next
    /// access sees the clock up to date (`cycles` only advances between batches).
    var synchronize: () -> Void = {}
    /// How far `cycles` can lag the instruction being executed: the longest batch the CPU runs
    /// (the board sets it from its batch size before every run). A device need not synchronise
    /// when nothing it shows can change within this many cycles of `cycles`.
    public var maxStaleCycles: UInt64 = 1_000_000

    /// Nanoseconds per cycle when that is a whole number (10 at 100 MHz), else 0.
    private let wholeNanosecondsPerCycle: UInt64

    public init(frequency: UInt64) {
        precondition(frequency > 0 && frequency <= 1_000_000_000, "CPU frequency must be 1 Hz...1 GHz")
        self.frequency = frequency
        wholeNanosecondsPerCycle = 1_000_000_000 % frequency == 0 ? 1_000_000_000 / frequency : 0
    }

    /// Drives the clock from another time base than the board's CPU (a hypervisor's guest
    /// board reads the machine's time): `cycles` is read at every clock access, `synchronize`
    /// called before an access that needs the exact time.
    public func drive(cycles: @escaping () -> UInt64, synchronize: @escaping () -> Void) {
        source = cycles
        self.synchronize = synchronize
    }

    /// Cycles since the board's reset.
    public var cycles: UInt64 { source() }

    /// Nanoseconds of guest time since the board's reset.
    public var nanoseconds: UInt64 { nanoseconds(atCycle: cycles) }

    /// Guest time at `cycle`, in nanoseconds (exact integer arithmetic, no overflow).
    public func nanoseconds(atCycle cycle: UInt64) -> UInt64 {
        // Devices ask on every access to a timed register: keep the common cases to one
        // multiplication (128-bit division is slow).
        if wholeNanosecondsPerCycle != 0 && cycle < UInt64.max / wholeNanosecondsPerCycle {
            return cycle &* wholeNanosecondsPerCycle
        }
        if cycle < 1 << 34 { return cycle &* 1_000_000_000 / frequency }
        let (high, low) = cycle.multipliedFullWidth(by: 1_000_000_000)
        guard high < frequency else { return .max }
        return frequency.dividingFullWidth((high, low)).quotient
    }

    /// Ticks of a `hz` clock (the PIT's 1.193182 MHz, say) elapsed at `cycle`.
    public func ticks(of hz: UInt64, atCycle cycle: UInt64) -> UInt64 {
        if hz != 0 && cycle < UInt64.max / hz { return cycle &* hz / frequency }
        let (high, low) = cycle.multipliedFullWidth(by: hz)
        guard high < frequency else { return .max }
        return frequency.dividingFullWidth((high, low)).quotient
    }

    /// `maxStaleCycles` in nanoseconds.
    var maxStaleNanoseconds: UInt64 { nanoseconds(atCycle: maxStaleCycles) }

    /// The current cycle, after asking the CPU to end its batch (see `synchronize`).
    func preciseCycles() -> UInt64 {
        synchronize()
        return cycles
    }
}
