// magritte-bench --vmm: the cost of the VMM (Docs/performance.md, "Under the VMM").
//
// Runs each workload natively on bare Malta and as the only guest of the VMM (in this process,
// the same ELF, the same RAM size), checks that both print the same console output, and prints
// guest MIPS for both (guest instructions over the thread's CPU time), the VMM's overhead in
// time per guest instruction, VMM exits (physical exceptions that entered the VMM) per 1000
// guest instructions, and where the exits went: by exception code, and the emulated privileged
// instructions among them. Each configuration runs --runs times, interleaved; the best counts.
//
//   .build/release/magritte-bench --vmm [--runs N] [--markdown] [--engine jit|interpreter] [WORKLOAD...]
//
// --engine picks the CPU engine of both configurations (default: the host's, the translator on
// x86-64 Linux).

import MagritteCore
import MagritteHypervisor
import MagritteMachine

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct VMMWorkload {
    var name: String
    var path: String
    var kind: String
    static let ramSize = 32 << 20

    static let all = [
        VMMWorkload(name: "crc32", path: ".build/guests/bench/crc32.elf", kind: "CPU-bound"),
        VMMWorkload(name: "matmul", path: ".build/guests/bench/matmul.elf", kind: "CPU-bound"),
        VMMWorkload(name: "sort", path: ".build/guests/bench/sort.elf", kind: "CPU-bound"),
        VMMWorkload(name: "interp", path: ".build/guests/bench/interp.elf", kind: "CPU-bound"),
        VMMWorkload(name: "syscalls", path: ".build/guests/vmm/syscalls.elf", kind: "system calls"),
        VMMWorkload(name: "tlbstress", path: ".build/guests/vmm/tlbstress.elf", kind: "TLB misses"),
    ]
}

/// The workload on bare Malta: its console and the measurement.
func nativeRun(_ w: VMMWorkload, engine: Engine) -> (Measurement, [UInt8]) {
    var out: [UInt8] = []
    var config = MaltaConfiguration(ramSize: VMMWorkload.ramSize)
    config.cpu.engine = engine
    let board = Malta(configuration: config) { out.append($0) }
    do { _ = try board.load(path: w.path) } catch { fail("cannot load \(w.path): \(error)") }
    board.boot()
    let m = measure {
        if board.run() != .poweredOff { fail("\(w.name) did not power off on bare Malta") }
        return board.cpu.retiredInstructions
    }
    return (m, out)
}

/// The workload as the only guest of a VMM.
func vmmRun(_ w: VMMWorkload, engine: Engine) -> (Measurement, [UInt8], GuestStatistics, inline: UInt64) {
    let vmm: VMM
    let guest: Guest
    do {
        vmm = try VMM(ramSize: VMMWorkload.ramSize + (1 << 20), engine: engine)
        guest = try vmm.addGuest(GuestConfiguration(name: w.name, ramSize: VMMWorkload.ramSize), imagePath: w.path)
    } catch { fail("\(w.name) under the VMM: \(error)") }
    vmm.trace.recording = false  // as magritte vmm runs without --table: no event is built
    vmm.clustersExits = getenv("MAGRITTE_CLUSTERING") != nil  // set it to measure with clustering
    // Set it to end every quantum of 4096 instructions, as for a guest kernel with interrupts on.
    vmm.skipsIdleQuantumEnds = getenv("MAGRITTE_EVERY_QUANTUM") == nil
    vmm.pollsDevices = getenv("MAGRITTE_NO_POLLING") == nil  // set it to measure without device polling
    vmm.mapsDevices = getenv("MAGRITTE_NO_DEVICE_WINDOW") == nil  // set it to measure without the device window
    vmm.usesLargePages = getenv("MAGRITTE_SMALL_PAGES") == nil  // set it to measure with 4 KiB fills
    vmm.inlinesCP0 = getenv("MAGRITTE_NO_INLINE_CP0") == nil  // set it to measure every mfc0/mtc0 as an exit
    let m = measure {
        let outcome = vmm.run()
        if outcome != .allPoweredOff { fail("\(w.name) under the VMM ended with \(outcome)") }
        return guest.statistics.instructions
    }
    // (The VMM takes its gate back when it goes: read it while the VMM lives.)
    let inline = withExtendedLifetime(vmm) { vmm.cpu.inlineCP0?.emulated ?? 0 }
    return (m, guest.console, guest.statistics, inline: inline)
}

/// "CpU 71% Sys 14% ... (mfc0 60%, ...) kseg fills 1% ...": the three most frequent exit
/// codes, the three most frequent emulated instructions, then what the VMM did for the memory
/// exits, each as a share of all exits; last, the exits (mfc0/mtc0) translated code emulated
/// without calling out (`inline`).
func exitBreakdown(_ s: GuestStatistics, inline: UInt64 = 0) -> String {
    let total = s.traps.reduce(0, +)
    guard total > 0 else { return "-" }
    func share(_ n: UInt64) -> String { fixed(Double(n) * 100 / Double(total), 0) + "%" }
    let codes = s.traps.enumerated().filter { $0.element * 100 >= total }.sorted { $0.element > $1.element }.prefix(3)
    var parts = codes.map { c in
        "\(ExceptionCode(rawValue: UInt8(c.offset)).map(String.init(describing:)) ?? "Exc\(c.offset)") \(share(c.element))"
    }
    let emulated = s.emulated.sorted { $0.value > $1.value }.prefix(3)
    if !emulated.isEmpty { parts.append("(" + emulated.map { "\($0.key) \(share($0.value))" }.joined(separator: ", ") + ")") }
    if s.ksegFills > 0 { parts.append("kseg fills \(share(s.ksegFills))") }
    if s.hiddenTLBFills > 0 { parts.append("hidden fills \(share(s.hiddenTLBFills))") }
    if s.reflectedTLBMisses > 0 { parts.append("reflected TLB \(share(s.reflectedTLBMisses))") }
    let device = s.exitsByKind[ExitKind.device.rawValue]  // accesses polled in another's exit are none
    if device > 0 { parts.append("device \(share(device))") }
    if inline > 0 { parts.append("in translated code \(share(inline))") }
    return parts.joined(separator: " ")
}

func runVMMBench(arguments: [String]) {
    var runs = 3, markdown = false, names: [String] = [], engine = Engine.hostDefault
    var args = arguments[...]
    while let a = args.popFirst() {
        switch a {
        case "--vmm": break
        case "--runs":
            guard let n = args.popFirst().flatMap({ Int($0) }), n > 0 else { fail("--runs needs a positive number") }
            runs = n
        case "--markdown": markdown = true
        case "--engine":
            guard let e = args.popFirst().flatMap({ Engine(rawValue: $0) }) else {
                fail("--engine takes \(Engine.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            engine = e
        case "-h", "--help":
            print("usage: magritte-bench --vmm [--runs N] [--markdown] [--engine jit|interpreter] [\(VMMWorkload.all.map(\.name).joined(separator: "|"))]...")
            exit(0)
        default:
            guard VMMWorkload.all.contains(where: { $0.name == a }) else { fail("unknown workload or argument \(a) (see --vmm --help)") }
            names.append(a)
        }
    }
    let workloads = names.isEmpty ? VMMWorkload.all : VMMWorkload.all.filter { names.contains($0.name) }
    for w in workloads where access(w.path, R_OK) != 0 {
        fail("\(w.path) not found: build the guests first (Scripts/build-guests), from the repository root")
    }
    var load = [Double](repeating: 0, count: 3)
    _ = getloadavg(&load, 3)
    print("magritte-bench --vmm: best of \(runs) interleaved runs, MIPS from the thread's CPU time, "
          + "\(VMMWorkload.ramSize >> 20) MiB guests, engine \(engine); load average \(fixed(load[0], 2))")

    struct Row {
        var w: VMMWorkload
        var native: Measurement? = nil
        var vmm: Measurement? = nil
        var stats: GuestStatistics? = nil
        var inline: UInt64 = 0
    }
    var rows = workloads.map { Row(w: $0) }
    for _ in 0..<runs {
        for i in rows.indices {
            let (n, nativeOut) = nativeRun(rows[i].w, engine: engine)
            var (v, vmmOut, stats, inline) = vmmRun(rows[i].w, engine: engine)
            if nativeOut != vmmOut { fail("\(rows[i].w.name): the console under the VMM differs from bare Malta's") }
            // The VMM's count leaves out the instructions it emulated (they trap instead of
            // retiring); both speeds divide the program's own count, the native one.
            v.instructions = n.instructions
            if rows[i].native == nil || n.seconds < rows[i].native!.seconds { rows[i].native = n }
            if rows[i].vmm == nil || v.seconds < rows[i].vmm!.seconds { rows[i].vmm = v }
            rows[i].stats = stats
            rows[i].inline = inline
        }
    }

    let header = ["workload", "kind", "guest instructions", "native MIPS", "VMM MIPS", "overhead", "exits/1000", "exits by kind"]
    var table: [[String]] = []
    for r in rows {
        guard let n = r.native, let v = r.vmm else { continue }
        let overhead = (n.mips / v.mips - 1) * 100
        table.append([r.w.name, r.w.kind, String(n.instructions), fixed(n.mips, 1), fixed(v.mips, 1),
                      fixed(overhead, 1) + "%", fixed(r.stats?.exitsPerThousand ?? 0, 3), r.stats.map { exitBreakdown($0, inline: r.inline) } ?? "-"])
    }
    if markdown {
        print("\n| " + header.joined(separator: " | ") + " |")
        print("|---|---|--:|--:|--:|--:|--:|---|")
        for row in table { print("| " + row.joined(separator: " | ") + " |") }
    } else {
        let widths = header.indices.map { i in ([header] + table).map { $0[i].count }.max() ?? 0 }
        for row in [header] + table {
            print(row.indices.map { i in i < 2 || i == row.count - 1 ? pad(row[i], widths[i]) : lpad(row[i], widths[i]) }
                .joined(separator: "  "))
        }
    }
}
