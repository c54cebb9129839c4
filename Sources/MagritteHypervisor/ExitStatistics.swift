import MagritteCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the VMM did in one exit (one physical exception that entered it), whatever the
/// exception code: `GuestStatistics.exitsByKind`, `ExitSite.kind`.
public enum ExitKind: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// A privileged instruction emulated against the virtual CP0 (`mfc0`, `mtc0`, `eret`, `tlbwr`,
    /// `wait`, `rdhwr`, …), with the privileged instructions after it emulated in the same exit.
    case privileged
    /// A load or store to a device register, emulated against the guest's board.
    case device
    /// A miss in the guest's kseg0/kseg1 filled from the pmap.
    case ksegFill
    /// A miss answered from the guest's virtual TLB, the guest never knowing.
    case hiddenFill
    /// An exception handed to the guest's own handler (system call, its TLB refill, …).
    case reflected
    case hypercall
    /// Anything else (a physical interrupt, an exception with no guest loaded).
    case other

    public var description: String {
        switch self {
        case .privileged: "privileged"
        case .device: "device"
        case .ksegFill: "kseg_fill"
        case .hiddenFill: "hidden_fill"
        case .reflected: "reflected"
        case .hypercall: "hypercall"
        case .other: "other"
        }
    }
}

/// A guest pc where the VMM was entered, and what it did there (collected while
/// `VMM.collectsExitSites` is on).
public struct ExitSite: Sendable, Equatable {
    public var pc: UInt32
    public var kind: ExitKind
    /// Exits at this pc of this kind.
    public var count: UInt64 = 0
    /// Host nanoseconds the VMM's trap handler spent on them (from the handler's entry to its
    /// return: not the CPU's own way out of and back into guest code).
    public var nanoseconds: UInt64 = 0
    /// Instructions after the trapping one that the same exits emulated: the privileged ones and
    /// the plain ones between them (clustering) after a privileged instruction, those of a
    /// polling loop after a device access.
    public var clustered: UInt64 = 0
    /// The instruction word at `pc` when the site was first seen (nil: not readable then).
    public var word: UInt32?

    /// The instruction at `pc`, disassembled ("?" when it could not be read).
    public var instruction: String {
        word.map { Disassembler.text(word: $0, pc: pc).replacingTabs } ?? "?"
    }
}

extension Guest {
    /// The exit sites collected while `VMM.collectsExitSites` was on, the most frequent first
    /// (ties by pc), at most `limit`.
    public func exitSites(limit: Int = .max) -> [ExitSite] {
        Array(exitSiteTable.values.sorted { $0.count != $1.count ? $0.count > $1.count : ($0.pc, $0.kind.rawValue) < ($1.pc, $1.kind.rawValue) }
            .prefix(max(0, limit)))
    }
}

extension VMM {
    /// Books the exit just handled (`exitKind`) at its site; `start` is when the handler began.
    func noteExitSite(_ g: Guest, pc: UInt32, start: UInt64) {
        let elapsed = VMM.monotonicNanoseconds() &- start
        g.statistics.exitNanosecondsByKind[exitKind.rawValue] &+= elapsed
        let key = UInt64(pc) << 8 | UInt64(exitKind.rawValue)
        if g.exitSiteTable[key] == nil {
            g.exitSiteTable[key] = ExitSite(pc: pc, kind: exitKind, word: fetch(g, pc))
        }
        g.exitSiteTable[key]!.count &+= 1
        g.exitSiteTable[key]!.nanoseconds &+= elapsed
        g.exitSiteTable[key]!.clustered &+= exitClustered
    }

    static func monotonicNanoseconds() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }

    /// The `--stats` lines about exits: by kind (with the handler's time per exit when sites were
    /// collected) and the `sites` most frequent sites.
    func exitReport(_ g: Guest, sites: Int) -> [String] {
        let s = g.statistics
        let total = s.exitsByKind.reduce(0, +)
        guard total > 0 else { return [] }
        func share(_ n: UInt64) -> String { fixed(Double(n) * 100 / Double(total), 1) + "%" }
        let timed = s.exitNanosecondsByKind.reduce(0, +) > 0
        let kinds = ExitKind.allCases.filter { s.exitsByKind[$0.rawValue] > 0 }.map { k -> String in
            let n = s.exitsByKind[k.rawValue]
            let ns = timed ? ", \(s.exitNanosecondsByKind[k.rawValue] / n) ns" : ""
            return "\(k) \(n) (\(share(n))\(ns))"
        }
        var lines = ["  exits by kind: " + kinds.joined(separator: ", ")]
        if s.clusteredInstructions > 0 {
            lines.append("  clustered: \(s.clusteredInstructions) privileged instructions emulated in the exit of the one before")
        }
        if s.polledInstructions > 0 {
            lines.append("  device polling: \(s.polledInstructions) instructions emulated in the exit of a device access before them, \(s.polledDeviceAccesses) of them device accesses (as many exits fewer)")
        }
        if s.mappedDeviceAccesses > 0 {
            lines.append("  device window: \(s.mappedDeviceAccesses) of the \(s.deviceAccesses) device accesses served without an exit")
        }
        if timed {
            lines.append("  VMM handler time: \(s.exitNanosecondsByKind.reduce(0, +) / total) ns per exit")
        }
        let top = g.exitSites(limit: sites)
        if !top.isEmpty {
            lines.append("  top exit sites (of \(g.exitSiteTable.count)):")
            let width = top.map(\.instruction.count).max() ?? 0
            for site in top {
                let text = site.instruction + String(repeating: " ", count: width - site.instruction.count)
                let cluster = site.clustered == 0 ? "" : site.kind == .device ? ", +\(site.clustered) polled" : ", +\(site.clustered) clustered"
                lines.append("    \(Hex.prefixedWord(site.pc))  \(text)  \(site.kind) \(site.count) (\(share(site.count))), \(site.nanoseconds / max(site.count, 1)) ns\(cluster)")
            }
        }
        return lines
    }
}

/// Counts indexed by a small number (an ExcCode, an `Op`, an `ExitKind`), held inline in
/// `GuestStatistics`: counting one on an exit is an add in place, without an array's uniqueness
/// check (and copying the statistics copies the counts). A collection of `Slots.count` counts.
public struct Counts<Slots: CountSlots>: RandomAccessCollection, MutableCollection, Equatable, Sendable, CustomStringConvertible {
    var slots = Slots()

    public init() {}

    /// The counts of `values` (as many as this holds).
    init(_ values: [UInt64]) {
        precondition(values.count == Slots.count, "\(Slots.count) counts expected")
        for (i, v) in values.enumerated() { self[i] = v }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { Slots.count }

    public subscript(i: Int) -> UInt64 {
        @inline(__always) get {
            precondition(UInt(bitPattern: i) < UInt(Slots.count), "index out of range")
            return withUnsafeBytes(of: slots) { $0.load(fromByteOffset: i &* 8, as: UInt64.self) }
        }
        @inline(__always) set {
            precondition(UInt(bitPattern: i) < UInt(Slots.count), "index out of range")
            withUnsafeMutableBytes(of: &slots) { $0.storeBytes(of: newValue, toByteOffset: i &* 8, as: UInt64.self) }
        }
        // In place (a get and a set would copy the whole table to read one count).
        @inline(__always) _modify {
            precondition(UInt(bitPattern: i) < UInt(Slots.count), "index out of range")
            var v = withUnsafeMutableBytes(of: &slots) { $0.load(fromByteOffset: i &* 8, as: UInt64.self) }
            yield &v
            withUnsafeMutableBytes(of: &slots) { $0.storeBytes(of: v, toByteOffset: i &* 8, as: UInt64.self) }
        }
    }

    public static func == (a: Self, b: Self) -> Bool { a.elementsEqual(b) }
    public var description: String { Array(self).description }
}

/// The inline storage of `Counts`: a tuple of at least `count` UInt64s.
public protocol CountSlots: Sendable {
    init()
    static var count: Int { get }
}

typealias EightCounts = (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
let noCounts: EightCounts = (0, 0, 0, 0, 0, 0, 0, 0)

/// One count per ExcCode (32).
public struct ByExceptionCode: CountSlots {
    var t = (noCounts, noCounts, noCounts, noCounts)
    public init() {}
    public static var count: Int { 32 }
}

/// One count per `Op.rawValue` (256).
public struct ByOp: CountSlots {
    var t = ((noCounts, noCounts, noCounts, noCounts, noCounts, noCounts, noCounts, noCounts),
             (noCounts, noCounts, noCounts, noCounts, noCounts, noCounts, noCounts, noCounts),
             (noCounts, noCounts, noCounts, noCounts, noCounts, noCounts, noCounts, noCounts),
             (noCounts, noCounts, noCounts, noCounts, noCounts, noCounts, noCounts, noCounts))
    public init() {}
    public static var count: Int { 256 }
}

/// One count per `ExitKind`.
public struct ByExitKind: CountSlots {
    var t = noCounts
    public init() {}
    public static var count: Int { ExitKind.other.rawValue + 1 }  // the last kind
}
