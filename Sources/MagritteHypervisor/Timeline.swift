import MagritteCore

/// Which guest had the machine when, during `VMM.run`: one record per slice (a guest's turn on
/// the CPU), with what the guest did in it, and an SVG picture of it (`magritte vmm --timeline`,
/// `vmm:timeline`): per guest a lane over machine time showing when it ran, spun (the VMM saw
/// an idle loop), waited (descheduled in WAIT or the idle hypercall) and where the machine was
/// switched to it, with its exits per slice. The information gap and the machine switch, as a
/// picture (Docs/vmm.md, "A timeline").
public final class Timeline {
    /// One slice: guest `guest` (its index) had the machine from cycle `start` to `end`.
    public struct Slice: Equatable, Sendable {
        public var guest: Int
        public var start: UInt64
        public var end: UInt64
        /// Guest instructions retired, instructions spent in a detected idle loop, and exits
        /// (physical exceptions into the VMM) during the slice.
        public var instructions: UInt64
        public var spinInstructions: UInt64
        public var exits: UInt64
        /// Whether the VMM switched the machine to this guest for the slice.
        public var switched: Bool
        /// Whether the guest was waiting (descheduled until an interrupt) when the slice ended.
        public var waitingAfter: Bool
    }

    /// The slices recorded, oldest first (at most `capacity`; later ones are not kept).
    public private(set) var slices: [Slice] = []
    public let capacity: Int
    /// Slices that ended after `capacity` was reached.
    public private(set) var dropped = 0

    unowned let vmm: VMM
    private var cycles: UInt64
    private var counts: [(instructions: UInt64, spin: UInt64, exits: UInt64, switches: UInt64)]

    /// Starts recording the slices of `vmm`'s runs (chained after its `onSliceEnd`).
    public init(_ vmm: VMM, capacity: Int = 100_000) {
        self.vmm = vmm
        self.capacity = max(1, capacity)
        cycles = vmm.cpu.cycles
        counts = vmm.guests.map(Self.counts)
        let previous = vmm.onSliceEnd
        vmm.onSliceEnd = { [unowned self] in
            previous?()
            self.sliceEnded()
        }
    }

    private static func counts(_ g: Guest) -> (instructions: UInt64, spin: UInt64, exits: UInt64, switches: UInt64) {
        let s = g.statistics
        return (s.instructions, s.spinInstructions, s.traps.reduce(0, &+), s.switchesIn)
    }

    /// At the end of each slice of `VMM.run`: the current guest ran since the CPU's cycle count
    /// last stood here (machine time skipped while everyone waited is not CPU time).
    func sliceEnded() {
        guard let g = vmm.current else { return }
        while counts.count < vmm.guests.count { counts.append((0, 0, 0, 0)) }  // added since: from nothing
        let now = vmm.now, used = vmm.cpu.cycles &- cycles
        cycles = vmm.cpu.cycles
        let c = Self.counts(g), before = counts[g.index]
        counts[g.index] = c
        guard slices.count < capacity else { dropped += 1; return }
        slices.append(Slice(guest: g.index, start: now &- min(used, now), end: now, instructions: c.instructions &- before.instructions,
                            spinInstructions: c.spin &- before.spin, exits: c.exits &- before.exits,
                            switched: c.switches != before.switches, waitingAfter: g.state == .waiting))
    }

    // MARK: The picture

    static let laneHeight = 28.0
    static let labelWidth = 90.0
    static let plotWidth = 1000.0
    static let margin = 20.0

    /// The timeline as SVG: a lane per guest; `rect.ran` slices (blue; the spun part orange,
    /// `rect.spun`), `rect.waited` intervals (grey), a `path.switch` mark where the machine was
    /// switched to the guest, the exits of each slice in it when there is room. Every slice
    /// carries `data-instructions`, `data-exits`, `data-start` and `data-end` for programs.
    public func svg() -> String {
        let guests = vmm.guests
        let t0 = slices.first?.start ?? 0
        let t1 = max(slices.last?.end ?? 1, t0 + 1)
        let scale = Self.plotWidth / Double(t1 - t0)
        func x(_ t: UInt64) -> Double { Self.labelWidth + Self.margin + Double(t - t0) * scale }
        let f = SequenceDiagram.f
        let width = Self.labelWidth + Self.plotWidth + 2 * Self.margin
        let height = Self.margin * 2 + Double(guests.count) * Self.laneHeight + 30
        var body = ""
        for g in guests {
            let top = Self.margin + Double(g.index) * Self.laneHeight
            let mid = top + Self.laneHeight / 2
            body += "<g class=\"lane\" data-guest=\"\(SequenceDiagram.escape(g.name))\">\n"
            body += "<text x=\"\(f(Self.margin))\" y=\"\(f(mid + 4))\">\(SequenceDiagram.escape(g.name))</text>\n"
            body += "<line x1=\"\(f(x(t0)))\" y1=\"\(f(mid))\" x2=\"\(f(x(t1)))\" y2=\"\(f(mid))\" stroke=\"#ddd\"/>\n"
            let mine = slices.filter { $0.guest == g.index }
            for (i, s) in mine.enumerated() {
                let x0 = x(s.start), w = max(x(s.end) - x0, 0.5)
                body += "<rect class=\"ran\" x=\"\(f(x0))\" y=\"\(f(top + 4))\" width=\"\(f(w))\" height=\"\(f(Self.laneHeight - 8))\" fill=\"#4a7ebb\""
                body += " data-start=\"\(s.start)\" data-end=\"\(s.end)\" data-instructions=\"\(s.instructions)\" data-exits=\"\(s.exits)\">"
                body += "<title>\(SequenceDiagram.escape(g.name)): \(s.instructions) instructions, \(s.exits) exits, cycles \(s.start)-\(s.end)</title></rect>\n"
                if s.spinInstructions > 0, s.instructions > 0 {
                    let sw = w * Double(min(s.spinInstructions, s.instructions)) / Double(s.instructions)
                    body += "<rect class=\"spun\" x=\"\(f(x0 + w - sw))\" y=\"\(f(top + 4))\" width=\"\(f(sw))\" height=\"\(f(Self.laneHeight - 8))\""
                    body += " fill=\"#e8a33d\" data-instructions=\"\(s.spinInstructions)\"/>\n"
                }
                if s.switched {
                    body += "<path class=\"switch\" d=\"M\(f(x0)) \(f(top)) l-4 -4 h8 z\" fill=\"#000\"/>\n"
                }
                if s.exits > 0, w > 8 * Double(String(s.exits).count) + 4 {
                    body += "<text class=\"exits\" x=\"\(f(x0 + w / 2))\" y=\"\(f(mid + 4))\" text-anchor=\"middle\" fill=\"#fff\">\(s.exits)</text>\n"
                }
                if s.waitingAfter {
                    let until = i + 1 < mine.count ? mine[i + 1].start : t1
                    if until > s.end {
                        body += "<rect class=\"waited\" x=\"\(f(x(s.end)))\" y=\"\(f(mid - 2))\" width=\"\(f(x(until) - x(s.end)))\" height=\"4\""
                        body += " fill=\"#999\" data-start=\"\(s.end)\" data-end=\"\(until)\"/>\n"
                    }
                }
            }
            body += "</g>\n"
        }
        let axis = Self.margin + Double(guests.count) * Self.laneHeight + 16
        body += "<text x=\"\(f(x(t0)))\" y=\"\(f(axis))\">cycle \(t0)</text>\n"
        body += "<text x=\"\(f(x(t1)))\" y=\"\(f(axis))\" text-anchor=\"end\">cycle \(t1)\(dropped > 0 ? " (\(dropped) later slices not kept)" : "")</text>\n"
        body += "<text x=\"\(f(width / 2))\" y=\"\(f(axis))\" text-anchor=\"middle\" fill=\"#555\">blue: ran (exits inside) · orange: spun · grey: waited · ▼: machine switched to it</text>\n"
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            \(body)</svg>

            """
    }
}
