// magritte-bench: the cost of observation (Docs/performance.md, "Cost of observation").
//
// Runs a CPU-bound guest on the bare board and through the Lua API with more and more
// observation, and prints guest instructions per second (MIPS) for each and the drop against
// the bare board:
//   (a) the board alone (MagritteMachine, no Lua)
//   (b) a Lua machine with no hooks (magritte.machine{image = ...}; m:run())
//   (c) the same with one mode-change breakpoint armed (m:break_on_mode("user", "kernel"); the
//       guest never leaves kernel mode, so it never fires)
//   (d) a Lua callback on every instruction (m:on("instruction", fn)), over the first --steps
//       instructions; beside it the same bounded run with the per-instruction loop but no Lua
//       (m:trace_instructions(1)), to separate the loop's cost from Lua's
// and the same three first configurations on teachos (many exceptions, mode changes and TLB
// writes: the events a Lua machine always sees), with a breakpoint that never fires
// (break_on_mode("supervisor", "kernel")) since user -> kernel happens at once there.
//
// Every configuration runs --runs times, interleaved with the others (so a busy host slows all
// of them alike), and the best time counts. MIPS divide guest instructions by the thread's CPU
// time (wall-clock time is printed beside it). Build and run (release build only):
//
//   Scripts/build-guests
//   swift build -c release --product magritte-bench
//   .build/release/magritte-bench [--runs N] [--steps N] [--guest PATH] [--os PATH]
//
// With --vmm it measures the VMM's cost instead (VMMBench.swift).

import MagritteLua
import MagritteMachine

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Options {
    var runs = 5
    var steps: UInt64 = 20_000_000
    var guest = ".build/guests/bench/crc32.elf"
    var os: String? = ".build/guests/os/teachos.elf"
    /// Only these tables (whole, steps, os); all when empty.
    var only: Set<String> = []
}

func fail(_ message: String) -> Never {
    let text = Array("magritte-bench: \(message)\n".utf8)
    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(2)
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    func value(_ name: String) -> String {
        guard let v = args.popFirst() else { fail("\(name) needs a value") }
        return v
    }
    while let a = args.popFirst() {
        switch a {
        case "--runs":
            guard let n = Int(value(a)), n > 0 else { fail("--runs needs a positive number") }
            o.runs = n
        case "--steps":
            guard let n = UInt64(value(a)), n > 0 else { fail("--steps needs a positive number") }
            o.steps = n
        case "--guest": o.guest = value(a)
        case "--os": o.os = value(a)
        case "--no-os": o.os = nil
        case "--only":
            let part = value(a)
            guard ["whole", "steps", "os"].contains(part) else { fail("--only takes whole, steps or os") }
            o.only.insert(part)
        case "-h", "--help":
            print("usage: magritte-bench [--runs N] [--steps N] [--guest ELF] [--os ELF | --no-os] [--only whole|steps|os]...")
            exit(0)
        default: fail("unknown argument \(a) (see --help)")
        }
    }
    for path in [o.guest] + (o.os.map { [$0] } ?? []) where access(path, R_OK) != 0 {
        fail("\(path) not found: build the guests first (Scripts/build-guests), from the repository root")
    }
    return o
}

/// Guest instructions and the host time they took: wall-clock time and the thread's CPU time
/// (the figures use CPU time, which a busy host disturbs less; both are printed).
struct Measurement {
    var instructions: UInt64
    var wall: Double
    var seconds: Double
    var mips: Double { Double(instructions) / seconds / 1e6 }
}

func measure(_ body: () throws -> UInt64) rethrows -> Measurement {
    func now(_ clock: clockid_t) -> Double {
        var t = timespec()
        clock_gettime(clock, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
    let wall0 = now(CLOCK_MONOTONIC), cpu0 = now(CLOCK_THREAD_CPUTIME_ID)
    let n = try body()
    let cpu1 = now(CLOCK_THREAD_CPUTIME_ID), wall1 = now(CLOCK_MONOTONIC)
    return Measurement(instructions: n, wall: wall1 - wall0, seconds: cpu1 - cpu0)
}

/// (a): the board alone, its console output discarded.
func plain(_ path: String, steps: UInt64?) -> Measurement {
    let board = Malta { _ in }
    do { try board.load(path: path) } catch { fail("cannot load \(path): \(error)") }
    board.boot()
    return measure {
        let outcome = board.run(maxInstructions: steps ?? .max)
        if steps == nil && outcome != .poweredOff { fail("\(path) did not power off (\(outcome))") }
        return board.cpu.retiredInstructions
    }
}

/// A Lua machine set up by `setup` (with `m` the machine); times `m:run(...)` only.
func lua(_ path: String, setup: String, steps: UInt64?) -> Measurement {
    let api = MagritteLua()
    api.writeOut = { _ in }
    do {
        try api.lua.run("m = magritte.machine{image = [[\(path)]]}\n" + setup, name: "=setup")
        let run = steps.map { "m:run(\($0))" } ?? "m:run()"
        var reason = ""
        let m = try measure { () throws(LuaError) -> UInt64 in
            let out = try api.lua.run("local reason = \(run) return reason, m.instructions", name: "=run")
            reason = out[0]
            return UInt64(out[1]) ?? 0
        }
        let expected = steps == nil ? "poweroff" : "steps"
        if reason != expected { fail("\(path): run ended with \(reason), not \(expected)") }
        return m
    } catch {
        fail("Lua: \(error)")
    }
}

struct Configuration {
    var label: String
    var run: () -> Measurement
    var best: Measurement? = nil
}

func runAll(_ configs: inout [Configuration], runs: Int) {
    for _ in 0..<runs {
        for i in configs.indices {
            let m = configs[i].run()
            if let b = configs[i].best, b.instructions != m.instructions {
                fail("\(configs[i].label): \(m.instructions) instructions, \(b.instructions) before (not deterministic)")
            }
            if configs[i].best == nil || m.seconds < configs[i].best!.seconds { configs[i].best = m }
        }
    }
}

func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
func lpad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
func fixed(_ v: Double, _ digits: Int) -> String {
    var m = 1.0
    for _ in 0..<digits { m *= 10 }
    let r = (abs(v) * m).rounded()
    let whole = Int(r / m), frac = Int(r.truncatingRemainder(dividingBy: m))
    let f = String(frac)
    return (v < 0 && r != 0 ? "-" : "") + "\(whole)" + (digits > 0 ? "." + String(repeating: "0", count: digits - f.count) + f : "")
}

func report(_ title: String, _ configs: [Configuration], baseline: Int?) {
    print("\n\(title)")
    print(pad("configuration", 58) + lpad("instructions", 13) + lpad("CPU s", 9) + lpad("wall s", 9) + lpad("MIPS", 9) + lpad("vs (a)", 9))
    for (i, c) in configs.enumerated() {
        guard let m = c.best else { continue }
        var drop = ""
        if let b = baseline, i != b, let base = configs[b].best, base.instructions == m.instructions {
            drop = fixed((m.mips / base.mips - 1) * 100, 1) + "%"
        }
        print(pad(c.label, 58) + lpad(String(m.instructions), 13) + lpad(fixed(m.seconds, 3), 9) + lpad(fixed(m.wall, 3), 9)
              + lpad(fixed(m.mips, 1), 9) + lpad(drop, 9))
    }
}

// The VMM's cost (VMMBench.swift) is a mode of its own.
if CommandLine.arguments.contains("--vmm") {
    runVMMBench(arguments: Array(CommandLine.arguments.dropFirst()))
    exit(0)
}
let options = parseOptions()
var load = [Double](repeating: 0, count: 3)
_ = getloadavg(&load, 3)
var uts = utsname()
uname(&uts)
let host = withUnsafeBytes(of: &uts.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
print("magritte-bench: best of \(options.runs) interleaved runs, MIPS from the thread's CPU time; \(host), load average \(fixed(load[0], 2))")
if load[0] > 1 { print("magritte-bench: the host is busy: compare only figures from the same run") }

func wanted(_ part: String) -> Bool { options.only.isEmpty || options.only.contains(part) }

let g = options.guest
if wanted("whole") {
var cpuBound = [
    Configuration(label: "(a) board alone", run: { plain(g, steps: nil) }),
    Configuration(label: "(b) Lua machine, no hooks", run: { lua(g, setup: "", steps: nil) }),
    Configuration(label: "(c) Lua machine, break_on_mode(\"user\", \"kernel\") armed", run: {
        lua(g, setup: "m:break_on_mode('user', 'kernel')", steps: nil)
    }),
]
runAll(&cpuBound, runs: options.runs)
report("\(g): whole run", cpuBound, baseline: 0)
}

let n = options.steps
if wanted("steps") {
var perInstruction = [
    Configuration(label: "(a) board alone", run: { plain(g, steps: n) }),
    Configuration(label: "    per-instruction loop, no Lua (trace_instructions(1))", run: {
        lua(g, setup: "m:trace_instructions(1)", steps: n)
    }),
    Configuration(label: "(d) Lua callback on every instruction", run: {
        lua(g, setup: "local n = 0; m:on('instruction', function(pc) n = n + 1 end)", steps: n)
    }),
]
runAll(&perInstruction, runs: max(1, options.runs / 2))
report("\(g): first \(n) instructions", perInstruction, baseline: 0)
}

if let os = options.os, wanted("os") {
    var events = [
        Configuration(label: "(a) board alone", run: { plain(os, steps: nil) }),
        Configuration(label: "(b) Lua machine, no hooks", run: { lua(os, setup: "", steps: nil) }),
        Configuration(label: "(c) Lua machine, break_on_mode(\"supervisor\", \"kernel\")", run: {
            lua(os, setup: "m:break_on_mode('supervisor', 'kernel')", steps: nil)
        }),
    ]
    runAll(&events, runs: options.runs)
    report("\(os): whole run (exceptions, mode changes, TLB writes)", events, baseline: 0)
}
