import Foundation
import MagritteCore
import MagritteMachine
import Testing
@testable import MagritteHypervisor

/// Isolation and robustness (issue 5, item 12): a guest reaches its own frames and devices
/// only, and nothing it executes can crash the VMM, change another guest or run guest code in
/// the real kernel mode.
///
/// `Guests/vmm/memscan.c` reads all of its RAM and probes guest-physical addresses beyond it
/// (kseg1, 4 KiB TLB pages, a 16 MiB page pair) for a marker pair that the test writes over
/// every machine frame outside the guests, and that a first memscan (`fill`) writes over its
/// own RAM. `Guests/vmm/cp0fuzz.c` writes random values to every CP0 register, random TLB
/// entries and runs random instruction words in kernel, supervisor and user mode beside a
/// well-behaved guest. Between slices of the run the host checks that the physical CPU never
/// entered kernel mode and that every valid physical TLB entry maps into the machine RAM of the
/// guest that owns its ASID.
///
/// `MAGRITTE_VMM_FUZZ_SEEDS=N` runs seeds 1...N (default 20, a few seconds);
/// `MAGRITTE_VMM_FUZZ_FIRST=S` starts at seed S (a long campaign in parts).
@Suite struct IsolationTests {
    static let marker: UInt32 = 0x5EC2_E7A1
    static let memscan = GuestsUnderVMMTests.guest("vmm/memscan")
    static let cp0fuzz = GuestsUnderVMMTests.guest("vmm/cp0fuzz")

    /// Records every change of the physical CPU into kernel mode (there must be none once a
    /// guest runs: the VMM keeps guest kernels in supervisor mode).
    final class KernelModeWatch: CPUObserver {
        var entries: [ModeChange] = []
        func cpu(_ cpu: CPU, didChangeMode change: ModeChange) -> ObserverAction {
            if change.to == .kernel { entries.append(change) }
            return .proceed
        }
    }

    // MARK: Helpers

    /// Runs `path` alone on bare Malta with `ramSize` bytes of RAM; its console and a digest of
    /// its RAM at power-off.
    static func bare(_ path: String, ramSize: Int, append: String = "") throws -> (console: String, ram: UInt64) {
        var bytes: [UInt8] = []
        var config = MaltaConfiguration(ramSize: ramSize)
        config.commandLine = append
        let board = Malta(configuration: config) { bytes.append($0) }
        try board.load(path: path)
        board.boot()
        #expect(board.run(maxInstructions: 200_000_000) == .poweredOff, "\(path) on bare Malta")
        return (String(decoding: bytes, as: UTF8.self), digest(board.bus.ram, 0, ramSize))
    }

    /// FNV-1a over the words of machine RAM [from, from + count).
    static func digest(_ ram: UnsafeMutableRawPointer, _ from: Int, _ count: Int) -> UInt64 {
        let words = (ram + from).assumingMemoryBound(to: UInt32.self)
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<count / 4 { h = (h ^ UInt64(words[i])) &* 0x100_0000_01b3 }
        return h
    }

    /// Writes the marker pair (M, ~M) over machine RAM [from, to).
    static func fillMarker(_ bus: MaltaBus, from: Int, to: Int) {
        let words = (bus.ram + from).assumingMemoryBound(to: UInt32.self)
        for i in stride(from: 0, to: (to - from) / 4, by: 2) {
            words[i] = marker
            words[i + 1] = ~marker
        }
    }

    /// Whether machine RAM [from, to) still holds nothing but the marker pair.
    static func holdsMarker(_ bus: MaltaBus, from: Int, to: Int) -> Bool {
        let words = (bus.ram + from).assumingMemoryBound(to: UInt32.self)
        for i in stride(from: 0, to: (to - from) / 4, by: 2) where words[i] != marker || words[i + 1] != ~marker {
            return false
        }
        return true
    }

    /// What is wrong with the physical machine right now: the CPU in kernel mode or at
    /// exception level, CP0 usable, or a valid TLB entry that belongs to no guest, is global but
    /// not the running guest's, or maps outside the machine RAM of the guest that owns its ASID.
    static func hostViolations(_ vmm: VMM) -> [String] {
        var issues: [String] = []
        let cpu = vmm.cpu
        if cpu.mode == .kernel { issues.append("the physical CPU is in kernel mode at pc 0x\(Hex.word(cpu.pc))") }
        if cpu.cp0.status & (StatusBits.exl | StatusBits.erl | StatusBits.cu0) != 0 {
            issues.append("physical Status 0x\(Hex.word(cpu.cp0.status)) has EXL, ERL or CU0")
        }
        var owners: [UInt8: Guest] = [:]
        for g in vmm.guests {
            for p in g.asidMap.values {
                if let other = owners[p], other !== g { issues.append("physical ASID \(p) belongs to \(other.name) and \(g.name)") }
                owners[p] = g
            }
        }
        for i in 0..<cpu.configuration.tlbEntries {
            let e = cpu.tlbEntry(i)
            let size = UInt64((e.pageMask >> 1 | 0xFFF) &+ 1)
            for lo in [e.lo0, e.lo1] where lo & 2 != 0 {
                let frame = UInt64((lo >> 6) << 12)
                // A global entry (a kseg0/kseg1 fill) matches in every address space: only the
                // running guest may have them.
                guard let g = owners[e.asid], !e.global || g === vmm.current else {
                    issues.append("TLB \(i): valid entry 0x\(Hex.word(e.entryHi)) with no owning guest, or global of one not running (global \(e.global))")
                    continue
                }
                let base = UInt64(g.memoryBase)
                if frame < base || frame + size > base + UInt64(g.ramSize) {
                    issues.append("TLB \(i) of \(g.name): 0x\(Hex.word(e.vpn2)) -> machine 0x\(String(frame, radix: 16)), outside its RAM")
                }
            }
        }
        return issues
    }

    /// Runs until every guest is off, `done()` or `budget` instruction slots, checking the host
    /// between slices of `chunk` slots. Returns the last outcome and every violation seen.
    static func runChecked(_ vmm: VMM, watch: KernelModeWatch, budget: UInt64, chunk: UInt64 = 500_000,
                           until done: () -> Bool = { false }) -> (outcome: VMMRunOutcome, violations: [String]) {
        var used: UInt64 = 0, outcome = VMMRunOutcome.instructionLimit, violations: [String] = []
        while used < budget {
            let before = vmm.cpu.cycles
            outcome = vmm.run(maxInstructions: min(chunk, budget - used))
            used += max(1, vmm.cpu.cycles - before)
            violations += hostViolations(vmm)
            violations += watch.entries.map { "the physical CPU entered kernel mode: \($0)" }
            watch.entries.removeAll()
            if outcome != .instructionLimit || !violations.isEmpty || done() { break }
        }
        return (outcome, violations)
    }

    static func lines(_ s: String) -> [String] { s.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }

    // MARK: Memory isolation

    @Test func memscanSeesOnlyItsOwnRAM() throws {
        let vmm = try VMM(ramSize: 16 << 20)
        let watch = KernelModeWatch()
        vmm.cpu.observer = watch
        let ram = vmm.bus.ramSize
        // Every machine frame holds the marker until a guest's boot clears its own slice.
        Self.fillMarker(vmm.bus, from: 0, to: ram)
        let hex = String(Self.marker, radix: 16)

        // A first memscan fills its free RAM with the marker and must find it (the probe works).
        let filler = try vmm.addGuest(GuestConfiguration(name: "filler", ramSize: 2 << 20, commandLine: "marker=\(hex) fill"),
                                      imagePath: Self.memscan)
        let first = Self.runChecked(vmm, watch: watch, budget: 100_000_000)
        #expect(first.outcome == .allPoweredOff)
        #expect(first.violations.isEmpty, "\(first.violations.prefix(5))")
        #expect(filler.consoleText.contains("marker pairs in own RAM (outside the image): "))
        #expect(!filler.consoleText.contains("marker pairs in own RAM (outside the image): 0\n"), "\(filler.consoleText)")

        // Then teachos and a scanning memscan run side by side, the filler's RAM still full of
        // the marker, and so are the VMM's first MiB and the free RAM above the guests.
        let os = try vmm.addGuest(GuestConfiguration(name: "teachos", ramSize: 8 << 20, commandLine: "idle=wait"),
                                  imagePath: GuestsUnderVMMTests.guest("os/teachos"))
        let scanner = try vmm.addGuest(GuestConfiguration(name: "scanner", ramSize: 2 << 20, commandLine: "marker=\(hex)"),
                                       imagePath: Self.memscan)
        vmm.slice = 50_000
        let second = Self.runChecked(vmm, watch: watch, budget: 1_000_000_000)
        #expect(second.outcome == .allPoweredOff)
        #expect(second.violations.isEmpty, "\(second.violations.prefix(5))")

        let text = scanner.consoleText
        #expect(text.contains("marker pairs in own RAM (outside the image): 0\n"), "\(text)")
        for probe in ["through kseg1", "through 4 KiB TLB pages", "through a 16 MiB page pair"] {
            #expect(text.contains("beyond RAM \(probe): 0 marker pairs"), "\(text)")
        }
        let bareScan = try Self.bare(Self.memscan, ramSize: 2 << 20, append: "marker=\(hex)")
        #expect(Self.lines(text) == Self.lines(bareScan.console))
        func stable(_ s: String) -> [String] { Self.lines(s).filter { !$0.hasPrefix("timing:") } }
        let bareOS = try Self.bare(GuestsUnderVMMTests.guest("os/teachos"), ramSize: 8 << 20, append: "idle=wait")
        #expect(stable(os.consoleText) == stable(bareOS.console))

        // Nothing touched the frames outside the guests, nor the filler's RAM beyond its image.
        #expect(Self.holdsMarker(vmm.bus, from: 0, to: Int(filler.memoryBase)))
        #expect(Self.holdsMarker(vmm.bus, from: Int(scanner.memoryBase) + scanner.ramSize, to: ram))
        #expect(Self.holdsMarker(vmm.bus, from: Int(filler.memoryBase) + 0x20_0000 - 0x1_0000, to: Int(filler.memoryBase) + filler.ramSize))
    }

    // MARK: Fuzzing

    /// Regression (found by cp0fuzz, wild seeds): a guest whose exception vector lies outside
    /// its RAM faults on every fetch and retires nothing; the VMM counted only retired
    /// instructions against the slice, so `run` never returned. Faulting slots count now.
    @Test(.timeLimit(.minutes(1))) func exceptionLoopOutsideRAMStillEndsTheRun() throws {
        let vmm = try VMM(ramSize: 8 << 20)
        let g = try vmm.addGuest(GuestConfiguration(name: "lost", ramSize: 2 << 20), imagePath: GuestsUnderVMMTests.guest("tests/hello"))
        let good = try vmm.addGuest(GuestConfiguration(name: "hello", ramSize: 2 << 20), imagePath: GuestsUnderVMMTests.guest("tests/hello"))
        g.cp0.ebase = 0xA140_0000  // kseg1, guest-physical 20 MiB: no RAM there
        g.cp0.status = 0
        g.pc = 0xA140_0180
        g.npc = 0xA140_0184
        #expect(vmm.run(maxInstructions: 2_000_000) == .instructionLimit)
        #expect(g.statistics.reflected[Int(ExceptionCode.busErrorFetch.rawValue)] > 1000)
        #expect(good.state == .poweredOff, "the other guest still gets its slices")
        #expect(good.consoleText == (try Self.bare(GuestsUnderVMMTests.guest("tests/hello"), ramSize: 2 << 20).console))
    }

    static var seeds: ClosedRange<Int> {
        let env = ProcessInfo.processInfo.environment
        let count = env["MAGRITTE_VMM_FUZZ_SEEDS"].flatMap(Int.init) ?? 20
        let first = env["MAGRITTE_VMM_FUZZ_FIRST"].flatMap(Int.init) ?? 1
        return first...(first + max(1, count) - 1)
    }

    /// cp0fuzz with each seed beside memscan: the VMM survives, memscan prints and leaves in
    /// its RAM exactly what it does on bare Malta, the frames outside both guests keep the
    /// marker, and the host checks hold after every slice. Every fifth seed runs wild (no
    /// sanitising), which soon loses the fuzzer: the run is bounded by instructions.
    @Test func cp0FuzzCannotCrashTheVMMOrTouchAnotherGuest() throws {
        let reference = try Self.bare(Self.memscan, ramSize: 2 << 20)
        var summary: [String] = []
        for seed in Self.seeds {
            let vmm = try VMM(ramSize: 8 << 20)
            let watch = KernelModeWatch()
            vmm.cpu.observer = watch
            vmm.slice = 20_000
            Self.fillMarker(vmm.bus, from: 0, to: vmm.bus.ramSize)
            let wild = seed % 5 == 0 ? " wild" : ""
            let fuzz = try vmm.addGuest(GuestConfiguration(name: "fuzz", ramSize: 4 << 20, commandLine: "seed=\(seed) runs=300\(wild)"),
                                        imagePath: Self.cp0fuzz)
            let good = try vmm.addGuest(GuestConfiguration(name: "memscan", ramSize: 2 << 20), imagePath: Self.memscan)
            // memscan gets three slices in four, so that a fuzzer caught in an exception loop
            // (every slot a trap) costs little time; once memscan is off the fuzzer may finish.
            var turn = 0
            vmm.policy = { runnable, _ in
                turn += 1
                let others = runnable.filter { $0 !== fuzz }
                return turn % 4 == 0 || others.isEmpty ? runnable.first { $0 === fuzz } ?? others.first : others.first
            }
            var run = Self.runChecked(vmm, watch: watch, budget: 30_000_000, until: { good.state == .poweredOff })
            if run.violations.isEmpty && fuzz.state != .poweredOff {
                run = Self.runChecked(vmm, watch: watch, budget: 2_000_000)
            }
            #expect(run.violations.isEmpty, "seed \(seed): \(run.violations.prefix(5))")
            #expect(good.state == .poweredOff, "seed \(seed): memscan did not finish (\(run.outcome))")
            #expect(good.consoleText == reference.console, "seed \(seed): memscan's console differs from bare Malta's")
            #expect(Self.digest(vmm.bus.ram, Int(good.memoryBase), good.ramSize) == reference.ram,
                    "seed \(seed): memscan's RAM differs from bare Malta's")
            #expect(Self.holdsMarker(vmm.bus, from: 0, to: Int(fuzz.memoryBase)), "seed \(seed): the VMM's first MiB changed")
            #expect(Self.holdsMarker(vmm.bus, from: Int(good.memoryBase) + good.ramSize, to: vmm.bus.ramSize),
                    "seed \(seed): free machine RAM changed")
            let last = Self.lines(fuzz.consoleText).last { !$0.isEmpty } ?? "(nothing)"
            summary.append("seed \(seed)\(wild): \(run.outcome), fuzz \(fuzz.state), \(fuzz.statistics.instructions) instructions, "
                           + "\(fuzz.statistics.traps.reduce(0, +)) traps; \(last)")
            if !run.violations.isEmpty { break }
        }
        print("cp0fuzz under the VMM:\n  " + summary.joined(separator: "\n  "))
    }
}
