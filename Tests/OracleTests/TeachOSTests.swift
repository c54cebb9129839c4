import Foundation
import MagritteCore
import MagritteMachine
import MagritteTestSupport
import Testing

/// teachos (`Guests/os/teachos`, `Docs/guest-os.md`) on Magritte's Malta, in each idle mode:
///
/// - the console output, without the `timing:` lines, is QEMU's and `Guests/os/expected.txt`;
/// - the kernel's own counters (`kstats`, read from guest memory at the end) equal what
///   Magritte's event interface (`CPUObserver`) saw from outside;
/// - idling with `wait` runs clearly fewer guest instructions than spinning.
///
/// Needs `.build/guests/os/teachos.elf` (`Scripts/build-guests`); the QEMU comparison is skipped,
/// with a message, when `qemu-system-mipsel` is not installed.
@Suite struct TeachOSTests {
    static let root = Repository.root
    static let elf = root.appendingPathComponent(".build/guests/os/teachos.elf").path
    static let expectedFile = root.appendingPathComponent("Guests/os/expected.txt").path
    static let idleModes = ["spin", "wait", "hypercall"]
    /// teachos runs about 17 million instructions (idle=spin); a hang stops at this many.
    static let budget: UInt64 = 60_000_000

    static var qemuAvailable: Bool { Tools.qemu != nil }

    // MARK: Running it

    /// One boot of teachos on Magritte, watched by a `KernelEventCounter` (which only counts:
    /// the run is the same as without it), with what the tests need from the board at the end.
    struct Run: Sendable {
        var idle: String
        /// The console output, carriage returns removed, split into lines.
        var lines: [String]
        var outcome: RunOutcome
        /// Instructions the guest executed (`CPU.retiredInstructions`: no WAIT idle cycles, no
        /// instructions that faulted).
        var instructions: UInt64
        /// Cycles spent waiting in WAIT (Count advances during them as during instructions).
        var idleCycles: UInt64
        /// The kernel's counters, read from guest memory at the end (nil: no `kstats` symbol).
        var kstats: KStats?
        /// What the event interface saw.
        var seen: KernelEventCounter.Counts
        /// `CPU.exceptionCounts`, by ExcCode.
        var exceptionCounts: [UInt64]

        /// The lines that must be the same on every run (those that do not begin with `timing:`).
        var deterministicLines: [String] { lines.filter { !$0.hasPrefix("timing:") } }
    }

    static func runOnMagritte(idle: String) throws -> Run {
        var bytes: [UInt8] = []
        var config = MaltaConfiguration(ramSize: 128 << 20)  // QEMU's -m 128 (Scripts/qemu-run)
        config.commandLine = "idle=\(idle)"
        let board = Malta(configuration: config) { bytes.append($0) }
        let image = try board.load(path: elf)
        board.boot()
        let counter = KernelEventCounter()
        board.cpu.observer = counter
        let outcome = board.run(maxInstructions: budget)
        board.cpu.observer = nil
        let text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\r", with: "")
        return Run(idle: idle, lines: lines(text), outcome: outcome,
                   instructions: board.cpu.retiredInstructions, idleCycles: board.cpu.idleCycles,
                   kstats: KStats(cpu: board.cpu, image: image), seen: counter.counts,
                   exceptionCounts: board.cpu.exceptionCounts)
    }

    /// Each idle mode boots once per test run (a debug build of Magritte needs a few seconds for
    /// teachos's 17 million instructions); the tests share the result.
    actor Runs {
        static let shared = Runs()
        private var tasks: [String: Task<Run, any Error>] = [:]

        func run(idle: String) async throws -> Run {
            if let task = tasks[idle] { return try await task.value }
            let task = Task.detached { try TeachOSTests.runOnMagritte(idle: idle) }
            tasks[idle] = task
            return try await task.value
        }
    }

    static func run(idle: String) async throws -> Run {
        try #require(FileManager.default.fileExists(atPath: elf), "run Scripts/build-guests first")
        let run = try await Runs.shared.run(idle: idle)
        try #require(run.outcome == .poweredOff, "idle=\(idle): \(run.outcome) after \(run.instructions) instructions")
        return run
    }

    static func runOnQEMU(idle: String) throws -> [String] {
        lines(try runProcess(root.appendingPathComponent("Scripts/qemu-run").path, [elf, "-append", "idle=\(idle)"], timeout: 120).out)
    }

    static func lines(_ text: String) -> [String] {
        var l = text.components(separatedBy: "\n")
        if l.last == "" { l.removeLast() }
        return l
    }

    /// Line-by-line differences, for a readable failure message (nil when equal).
    static func diff(_ got: [String], _ want: [String], gotName: String, wantName: String) -> String? {
        guard got != want else { return nil }
        var report = ""
        var shown = 0
        for i in 0..<max(got.count, want.count) {
            let g = i < got.count ? got[i] : "<missing>", w = i < want.count ? want[i] : "<missing>"
            if g != w {
                report += "  line \(i + 1)\n    \(wantName): \(w)\n    \(gotName): \(g)\n"
                shown += 1
                if shown == 10 { report += "  ...\n"; break }
            }
        }
        return report
    }

    // MARK: The kernel's counters

    /// `struct kstats` (layout version 1, `Docs/guest-os.md`), read from guest memory.
    struct KStats: Sendable {
        static let magic: UInt32 = 0x3154_534B  // "KST1"
        static let fields = [
            "magic", "version", "size", "syscalls", "tlb_refills", "tlb_invalid", "tlb_modified",
            "timer_interrupts", "context_switches", "exceptions", "interrupts", "idle_entries",
            "idle_ticks", "demand_zero", "cow_copies", "killed", "hypercalls", "ticks", "processes",
            "exited",
        ]
        var values: [String: UInt64] = [:]
        subscript(_ name: String) -> UInt64 { values[name] ?? .max }

        /// Reads the fields at the ELF symbol `kstats` (kseg0); nil without the symbol.
        init?(cpu: CPU, image: ELFImage) {
            guard let symbol = image.symbols.first(where: { $0.name == "kstats" }) else { return nil }
            for (i, name) in Self.fields.enumerated() {
                if let word = cpu.readVirtual(symbol.address + UInt32(4 * i), size: 4) { values[name] = UInt64(word) }
            }
        }

        var headerIsValid: Bool { self["magic"] == UInt64(Self.magic) && self["version"] == 1 && self["size"] == 80 }
    }

    /// Counts, from outside, the events teachos counts in `kstats`. Only exception, mode change
    /// and TLB write events: no per-instruction observation, so the run stays at full speed.
    final class KernelEventCounter: CPUObserver {
        struct Counts: Sendable {
            /// Sys exceptions.
            var syscalls: UInt64 = 0
            /// TLB exceptions that went to the refill vector (EBase + 0x000): isRefill, EXL = 0.
            var refills: UInt64 = 0
            /// Refills taken with EXL = 1, which go to EBase + 0x180 (teachos never causes one).
            var refillsWithEXL: UInt64 = 0
            /// TLBL/TLBS exceptions through EBase + 0x180: TLB invalid.
            var tlbInvalid: UInt64 = 0
            /// Mod exceptions.
            var tlbModified: UInt64 = 0
            /// Every exception through EBase + 0x180 (everything but refills).
            var generalExceptions: UInt64 = 0
            /// Int exceptions, and those with Cause.IP7 (the CP0 timer) pending.
            var interrupts: UInt64 = 0
            var timerInterrupts: UInt64 = 0
            /// Timer interrupts that interrupted the kernel (teachos enables interrupts in
            /// kernel mode only in its idle loop), and the idle periods: runs of interrupts
            /// taken in the kernel between two returns to user mode.
            var idleTicks: UInt64 = 0
            var idlePeriods: UInt64 = 0
            /// TLB writes, by instruction (read at the PC of the write).
            var tlbwr: UInt64 = 0
            var tlbwrOutsideRefillHandler: UInt64 = 0
            var tlbwi: UInt64 = 0
            /// Returns to user mode (a kernel → user mode change caused by ERET), and those whose
            /// ASID (EntryHi & 0xFF) differs from the previous one's, the first included: what
            /// teachos counts as context switches.
            var userReturns: UInt64 = 0
            var contextSwitches: UInt64 = 0
            /// The ASIDs seen on returns to user mode.
            var asids: Set<UInt32> = []
            /// Events that contradict the CPU's own rules (should stay empty).
            var oddities: [String] = []
        }

        private(set) var counts = Counts()
        private var lastUserASID: UInt32?
        private var idle = false

        static let tlbwrWord: UInt32 = 0x4200_0006
        static let tlbwiWord: UInt32 = 0x4200_0002

        func cpu(_ cpu: CPU, didTakeException trap: Trap) -> ObserverAction {
            // Called after CP0 was updated and the PC set to the vector: the vector offset says
            // whether a refill was taken with EXL = 0 (offset 0x000) or not (0x180).
            let base = cpu.cp0.ebase & 0xFFFF_F000
            let offset = cpu.pc &- base
            if offset == 0x000 {
                if !trap.isRefill || (trap.code != .tlbLoad && trap.code != .tlbStore) {
                    counts.oddities.append("\(trap.code) at 0x\(String(trap.pc, radix: 16)) went to the refill vector")
                }
                counts.refills += 1
                return .proceed
            }
            if offset != 0x180 { counts.oddities.append("\(trap.code) went to vector offset 0x\(String(offset, radix: 16))") }
            counts.generalExceptions += 1
            switch trap.code {
            case .interrupt:
                counts.interrupts += 1
                let timer = cpu.cause & (1 << 15) != 0
                if timer { counts.timerInterrupts += 1 }
                if trap.pc >= 0x8000_0000 {  // the interrupted instruction is the kernel's: idle
                    if timer { counts.idleTicks += 1 }
                    if !idle { counts.idlePeriods += 1 }
                    idle = true
                }
            case .syscall:
                counts.syscalls += 1
            case .tlbLoad, .tlbStore:
                counts.tlbInvalid += 1
                if trap.isRefill { counts.refillsWithEXL += 1 }
            case .tlbModified:
                counts.tlbModified += 1
            default:
                break
            }
            return .proceed
        }

        func cpu(_ cpu: CPU, didChangeMode change: ModeChange) -> ObserverAction {
            guard change.from == .kernel, change.to == .user, change.cause == .eret else { return .proceed }
            idle = false
            counts.userReturns += 1
            let asid = cpu.cp0.entryHi & 0xFF
            counts.asids.insert(asid)
            if asid != lastUserASID {
                counts.contextSwitches += 1
                lastUserASID = asid
            }
            return .proceed
        }

        func cpu(_ cpu: CPU, didWriteTLB index: Int, entry: TLBEntry, pc: UInt32) -> ObserverAction {
            switch cpu.readVirtual(pc, size: 4) {
            case Self.tlbwrWord:
                counts.tlbwr += 1
                if pc &- (cpu.cp0.ebase & 0xFFFF_F000) >= 0x80 { counts.tlbwrOutsideRefillHandler += 1 }
            case Self.tlbwiWord:
                counts.tlbwi += 1
            case let word:
                counts.oddities.append("TLB write by 0x\(String(word ?? 0, radix: 16)) at 0x\(String(pc, radix: 16))")
            }
            return .proceed
        }
    }

    // MARK: Tests

    @Test func teachosIsBuilt() {
        #expect(FileManager.default.fileExists(atPath: Self.elf), "run Scripts/build-guests first")
    }

    /// The same output on Magritte, on QEMU and in `Guests/os/expected.txt`, `timing:` lines aside.
    @Test(arguments: idleModes)
    func sameOutputAsQEMU(idle: String) async throws {
        let ours = try await Self.run(idle: idle)
        #expect(ours.lines.last == "teachos: powering off")
        // The effective idle mode (a timing: line): bare Magritte has no VMM to answer the probe.
        let effective = idle == "hypercall" ? "timing: idle: requested hypercall, unavailable (no VMM): spinning"
                                            : "timing: idle: requested \(idle), effective \(idle)"
        #expect(ours.lines.contains(effective), "idle=\(idle): no line \"\(effective)\"")
        let got = ours.deterministicLines

        let expected = Self.lines(try String(contentsOfFile: Self.expectedFile, encoding: .utf8))
        if let d = Self.diff(got, expected, gotName: "magritte", wantName: "expected") {
            Issue.record(Comment(rawValue: "idle=\(idle): Magritte's output differs from Guests/os/expected.txt\n" + d))
        }

        guard Self.qemuAvailable else {
            print("teachos idle=\(idle): qemu-system-mipsel not found: compared with QEMU's recorded output, Guests/os/expected.txt, only")
            return
        }
        let qemu = try Self.runOnQEMU(idle: idle)
        #expect(qemu.last == "teachos: powering off", "idle=\(idle): QEMU's run did not end: \(qemu.last ?? "no output")")
        if let d = Self.diff(got, qemu.filter { !$0.hasPrefix("timing:") }, gotName: "magritte", wantName: "qemu") {
            Issue.record(Comment(rawValue: "idle=\(idle): Magritte's output differs from QEMU's\n" + d))
        }
    }

    /// What the event interface saw equals what the kernel counted.
    @Test(arguments: idleModes)
    func countersCheckedFromOutside(idle: String) async throws {
        let run = try await Self.run(idle: idle)
        let k = try #require(run.kstats, "no symbol kstats in teachos.elf")
        try #require(k.headerIsValid, "kstats header: magic \(k["magic"]), version \(k["version"]), size \(k["size"])")
        let seen = run.seen

        #expect(seen.oddities.isEmpty, "\(seen.oddities.prefix(5))")
        #expect(seen.refillsWithEXL == 0, "refills with EXL = 1 (the kernel touched a mapped address)")

        // The counters the issue names.
        #expect(seen.syscalls == k["syscalls"], "idle=\(idle): system calls")
        #expect(seen.refills == k["tlb_refills"], "idle=\(idle): TLB refills")
        #expect(seen.tlbwr == k["tlb_refills"], "idle=\(idle): tlbwr writes (one per refill)")
        #expect(seen.tlbwrOutsideRefillHandler == 0, "idle=\(idle): tlbwr outside the refill handler")
        #expect(seen.tlbInvalid == k["tlb_invalid"], "idle=\(idle): TLB invalid")
        #expect(seen.tlbModified == k["tlb_modified"], "idle=\(idle): TLB modified")
        #expect(seen.timerInterrupts == k["timer_interrupts"], "idle=\(idle): timer interrupts")
        #expect(seen.contextSwitches == k["context_switches"], "idle=\(idle): context switches")
        // The rest of kstats that can be seen from outside.
        #expect(seen.generalExceptions == k["exceptions"], "idle=\(idle): exceptions through EBase + 0x180")
        #expect(seen.interrupts == k["interrupts"], "idle=\(idle): interrupts")
        #expect(seen.timerInterrupts == k["ticks"], "idle=\(idle): ticks")
        #expect(seen.idleTicks == k["idle_ticks"], "idle=\(idle): timer interrupts in the idle loop")
        #expect(seen.idlePeriods == k["idle_entries"], "idle=\(idle): idle loop entries")
        #expect(UInt64(seen.asids.count) == k["processes"], "idle=\(idle): one ASID per process, \(seen.asids.sorted())")

        // The event interface agrees with the CPU's own exception statistics.
        let counts = run.exceptionCounts
        #expect(seen.syscalls == counts[Int(ExceptionCode.syscall.rawValue)])
        #expect(seen.interrupts == counts[Int(ExceptionCode.interrupt.rawValue)])
        #expect(seen.tlbModified == counts[Int(ExceptionCode.tlbModified.rawValue)])
        #expect(seen.refills + seen.tlbInvalid == counts[Int(ExceptionCode.tlbLoad.rawValue)] + counts[Int(ExceptionCode.tlbStore.rawValue)])

        // The programs did what they are there for (lower bounds, far below the real counts).
        #expect(k["syscalls"] > 2000 && k["tlb_refills"] > 1000 && k["tlb_invalid"] > 500 && k["tlb_modified"] > 0)
        #expect(k["timer_interrupts"] > 10 && k["context_switches"] > 13 && k["idle_ticks"] > 0)
        #expect(k["killed"] == 7 && k["exited"] == k["processes"])

        print("teachos idle=\(idle): \(run.instructions) instructions, \(run.idleCycles) cycles waiting; seen/kstats: "
              + "syscalls \(seen.syscalls)/\(k["syscalls"]), refills \(seen.refills)/\(k["tlb_refills"]), "
              + "tlbwr \(seen.tlbwr), tlbwi \(seen.tlbwi), tlb-invalid \(seen.tlbInvalid)/\(k["tlb_invalid"]), "
              + "tlb-modified \(seen.tlbModified)/\(k["tlb_modified"]), timer interrupts \(seen.timerInterrupts)/\(k["timer_interrupts"]), "
              + "context switches \(seen.contextSwitches)/\(k["context_switches"]) (of \(seen.userReturns) returns to user mode), "
              + "exceptions \(seen.generalExceptions)/\(k["exceptions"]), idle ticks \(seen.idleTicks)/\(k["idle_ticks"]), "
              + "idle entries \(seen.idlePeriods)/\(k["idle_entries"])")
    }

    /// The information gap: a `while (1) ;` idle loop burns instructions that `wait` does not.
    @Test func waitRunsFewerInstructionsThanSpin() async throws {
        let spin = try await Self.run(idle: "spin")
        let wait = try await Self.run(idle: "wait")
        let hypercall = try await Self.run(idle: "hypercall")  // no VMM: spins
        let spinIdle = try #require(spin.kstats)["idle_ticks"], waitIdle = try #require(wait.kstats)["idle_ticks"]
        print("teachos: idle=spin \(spin.instructions) instructions, idle=hypercall \(hypercall.instructions), "
              + "idle=wait \(wait.instructions) + \(wait.idleCycles) cycles waiting; idle ticks \(spinIdle) / \(waitIdle)")

        // Both idle for a while; only the spinning kernel executes instructions meanwhile.
        #expect(spinIdle > 0 && waitIdle > 0)
        #expect(spin.idleCycles == 0 && hypercall.idleCycles == 0)
        #expect(wait.idleCycles > 0)
        // Clearly fewer: the saving is at least half the time the wait run spent waiting
        // (spinning, that time would have been idle-loop instructions). The fallback of
        // idle=hypercall spins, so it saves nothing.
        for other in [spin, hypercall] {
            #expect(wait.instructions < other.instructions)
            #expect(other.instructions - min(other.instructions, wait.instructions) >= wait.idleCycles / 2,
                    "idle=\(other.idle) \(other.instructions), idle=wait \(wait.instructions), waited \(wait.idleCycles) cycles")
        }
    }
}
