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

    public init(frequency: UInt64) {
        precondition(frequency > 0 && frequency <= 1_000_000_000, "CPU frequency must be 1 Hz...1 GHz")
        self.frequency = frequency
    }

    /// Cycles since the board's reset.
    public var cycles: UInt64 { source() }

    /// Nanoseconds of guest time since the board's reset.
    public var nanoseconds: UInt64 { nanoseconds(atCycle: cycles) }

    /// Guest time at `cycle`, in nanoseconds (exact integer arithmetic, no overflow).
    public func nanoseconds(atCycle cycle: UInt64) -> UInt64 {
        let (high, low) = cycle.multipliedFullWidth(by: 1_000_000_000)
        guard high < frequency else { return .max }
        return frequency.dividingFullWidth((high, low)).quotient
    }

    /// Ticks of a `hz` clock (the PIT's 1.193182 MHz, say) elapsed at `cycle`.
    public func ticks(of hz: UInt64, atCycle cycle: UInt64) -> UInt64 {
        let (high, low) = cycle.multipliedFullWidth(by: hz)
        guard high < frequency else { return .max }
        return frequency.dividingFullWidth((high, low)).quotient
    }

    /// The current cycle, after asking the CPU to end its batch (see `synchronize`).
    func preciseCycles() -> UInt64 {
        synchronize()
        return cycles
    }
}
