#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Progress lines on stderr for long runs (`--progress` of boot, vmm and linux): host time,
/// guest instructions, the speed since the last line, and what the caller adds (the guests'
/// states). With the flag, a line every second. Without it, on a terminal, the same lines once
/// the run has gone `quietSeconds` without a byte of console output and only until the first
/// one (a silent boot such as Linux's self-decompression is not mistaken for a hang).
final class ProgressReporter {
    let always: Bool
    let automatic: Bool
    static let interval = 1.0
    static let quietSeconds = 3.0
    private let start = monotonicSeconds()
    private var last: (time: Double, instructions: UInt64)
    private var sawOutput = false

    /// Whether stderr is a terminal: each line then starts with a carriage return (the guest's
    /// output may have left the cursor mid-line, and a raw terminal does not return it).
    let terminal: Bool

    init(flag: Bool, terminal: Bool = isatty(2) != 0) {
        always = flag
        automatic = !flag && terminal
        self.terminal = terminal
        last = (start, 0)
    }

    /// The guest wrote to its console.
    func noteOutput() { sawOutput = true }

    /// Called between batches; prints a line when one is due. `details` is only evaluated then.
    func tick(instructions: UInt64, details: () -> String = { "" }) {
        guard always || (automatic && !sawOutput) else { return }
        let now = monotonicSeconds()
        if !always && now - start < Self.quietSeconds { return }
        guard now - last.time >= Self.interval else { return }
        let mips = Double(instructions &- last.instructions) / (now - last.time) / 1e6
        last = (now, instructions)
        let extra = details()
        var line = "magritte: progress: \(format(now - start, digits: 1)) s, "
            + "\(format(Double(instructions) / 1e9, digits: 3)) G instructions, \(format(mips, digits: 1)) MIPS"
        if !extra.isEmpty { line += "; " + extra }
        var err = StandardError()
        print((terminal ? "\r" : "") + line, to: &err)
    }
}
