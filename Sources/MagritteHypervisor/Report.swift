import MagritteCore

extension Guest {
    /// Console output after the last complete line.
    public var pendingLine: String { String(decoding: partialLine, as: UTF8.self) }
}

extension VMM {
    /// How many exit sites `report` lists per guest (the most frequent).
    public static let reportedExitSites = 10

    /// The per-guest figures `magritte vmm --stats` prints: where each guest's time went and
    /// what the VMM did for it. `seconds` is the host time of the run (for the speed line).
    public func report(seconds: Double) -> [String] {
        var lines: [String] = []
        let total = guests.reduce(UInt64(0)) { $0 + $1.statistics.instructions }
        lines.append("machine: \(total) guest instructions in \(fixed(seconds, 3)) s (\(fixed(seconds > 0 ? Double(total) / seconds / 1e6 : 0, 1)) MIPS), \(guests.count) guests, slice \(slice)")
        for g in guests {
            let s = g.statistics
            let traps = s.traps.reduce(0, +)
            lines.append("\(g.name): \(g.state == .poweredOff ? "powered off" : "\(g.state)"), \(s.instructions) instructions (kernel \(s.kernelInstructions), user \(s.userInstructions)), switched in \(s.switchesIn) times")
            lines.append("  VMM entries: \(traps) (\(fixed(s.exitsPerThousand, 2)) per 1000 instructions): \(byCode(s.traps))")
            lines.append("  reflected to the guest: \(byCode(s.reflected))")
            let emulated = s.emulated.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            lines.append("  emulated: " + (emulated.isEmpty ? "none" : emulated.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
            lines.append("  TLB: \(s.hiddenTLBFills) hidden fills, \(s.reflectedTLBMisses) misses reflected, \(s.ksegFills) kseg0/kseg1 fills; \(s.deviceAccesses) device accesses, \(s.hypercalls) hypercalls")
            lines.append("  idle: \(s.spinInstructions) instructions spinning, \(s.waitCycles) cycles descheduled in wait, \(s.hypercallIdleCycles) in the idle hypercall")
            lines += exitReport(g, sites: VMM.reportedExitSites)
        }
        return lines
    }

    func byCode(_ counts: Counts<ByExceptionCode>) -> String {
        let parts = ExceptionCode.allCases.filter { counts[Int($0.rawValue)] > 0 }.map { "\($0.description) \(counts[Int($0.rawValue)])" }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }
}

/// `value` with `digits` decimals.
func fixed(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 1e17 else { return "\(value)" }
    let whole = UInt64(scaled), unit = UInt64(scale)
    var frac = String(whole % unit)
    while frac.count < digits { frac = "0" + frac }
    return (value < 0 ? "-" : "") + String(whole / unit) + (digits > 0 ? "." + frac : "")
}
