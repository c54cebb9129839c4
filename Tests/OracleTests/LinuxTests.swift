import Foundation
import MagritteCore
import MagritteMachine
import MagritteTestSupport
import Testing

/// Debian bookworm's mipsel Malta kernel (`linux-image-6.1.0-*-4kc-malta`) with the busybox
/// initramfs of `Scripts/fetch-linux`, booted with `console=ttyS0 magritte.check`: its `/init`
/// (`Tests/linux/init`) prints a deterministic report and powers off. On Magritte it must boot
/// to "Run /init", power off cleanly (PIIX4 soft-off), and print the same report as
/// `qemu-system-mipsel -M malta -cpu 24Kc -m 128` with the same kernel, initramfs and command
/// line, line by line, except the deviations listed below.
///
/// Skipped, with a message, when the packages are not in `.cache/linux` (CI runs
/// `Scripts/fetch-linux` first). Without QEMU the report is compared with QEMU's recorded one
/// (`Tests/linux/expected-report.txt`, `Scripts/update-linux-expected`), which must have been
/// recorded with the same packages.
@Suite(.serialized) struct LinuxTests {
    static let root = Repository.root
    static let directory = root.appendingPathComponent(".cache/linux")
    static let kernel = directory.appendingPathComponent("vmlinuz").path
    static let initrd = directory.appendingPathComponent("initrd.gz").path
    static let commandLine = "console=ttyS0 magritte.check"
    /// The boot and report take about 4.2 billion instructions; a hang stops at this many.
    static let budget: UInt64 = 12_000_000_000

    static var packagesAvailable: Bool {
        FileManager.default.isReadableFile(atPath: kernel) && FileManager.default.isReadableFile(atPath: initrd)
    }
    static var qemuAvailable: Bool { Tools.qemu != nil }
    static let skipMessage = "the Debian kernel and initramfs are not in .cache/linux: Scripts/fetch-linux could not get them (it needs apt-get with the mipsel architecture)"

    /// The packages in .cache/linux, as `Scripts/update-linux-expected` names them.
    static var packages: String? {
        (try? String(contentsOf: directory.appendingPathComponent("VERSION"), encoding: .utf8))
            .map { $0.split(separator: "\n").joined(separator: ";") }
    }

    /// QEMU's report as recorded by `Scripts/update-linux-expected`, and the packages it was
    /// recorded with.
    static func recordedReport() -> (packages: String?, lines: [String]) {
        let file = root.appendingPathComponent("Tests/linux/expected-report.txt")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return (nil, []) }
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        guard let first = lines.first, first.hasPrefix("# packages: ") else { return (nil, []) }
        return (String(first.dropFirst("# packages: ".count)), Array(lines.dropFirst()))
    }

    /// Report lines where Magritte's CPU is not QEMU's, each with the line Magritte must print
    /// instead and why (see Docs/linux.md and Docs/qemu-differences.md).
    struct Deviation {
        let prefix: String
        let magritte: String
        let why: String
    }
    static let deviations = [
        Deviation(prefix: "ASEs implemented", magritte: "ASEs implemented\t:",
                  why: "Config1.CA = 0: Magritte has no MIPS16e (QEMU's 24Kc sets CA and prints mips16)"),
        Deviation(prefix: "hardware watchpoint", magritte: "hardware watchpoint\t: yes, count: 2, address/irw mask: [0x0ff8, 0x0000]",
                  why: "Magritte's watch registers: WatchHi0.M announces a second pair, which reads 0 (QEMU's 24Kc shows 8 pairs)"),
    ]

    /// The lines between the report's markers, carriage returns removed.
    static func report(_ output: String) -> [String] {
        let lines = output.replacingOccurrences(of: "\r", with: "").components(separatedBy: "\n")
        guard let begin = lines.firstIndex(of: "=== magritte check begin"),
              let end = lines.firstIndex(of: "=== magritte check end"), begin < end else { return [] }
        return Array(lines[begin...end])
    }

    /// Starts QEMU on the same kernel, initramfs and command line; its output once it exits.
    static func startQEMU() throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["timeout", "600", "qemu-system-mipsel", "-M", "malta", "-cpu", "24Kc", "-m", "128",
                       "-kernel", kernel, "-initrd", initrd, "-append", commandLine,
                       "-nographic", "-no-reboot", "-monitor", "none"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return (p, out)
    }

    @Test(.enabled(if: packagesAvailable, Comment(rawValue: skipMessage)))
    func bootsToInitAndMatchesQEMU() throws {
        let qemu = Self.qemuAvailable ? try Self.startQEMU() : nil

        var bytes: [UInt8] = []
        var config = MaltaConfiguration(ramSize: 128 << 20)
        config.commandLine = Self.commandLine
        let board = Malta(configuration: config) { bytes.append($0) }
        try board.load(path: Self.kernel)
        try board.loadInitrd(path: Self.initrd)
        // QEMU's placement: the top of 128 MiB less the initrd and 128 KiB, rounded up to 64 KiB.
        let size = board.initrd?.count ?? 0
        let address = ((128 << 20) - size - (128 << 10) + 0xFFFF) & ~0xFFFF
        #expect(board.kernelCommandLine == "rd_start=0xffffffff\(String(0x8000_0000 | address, radix: 16)) rd_size=\(size) \(Self.commandLine)")
        board.boot()
        let outcome = board.run(maxInstructions: Self.budget)
        let output = String(decoding: bytes, as: UTF8.self)
        #expect(outcome == .poweredOff, "Linux did not power off: \(outcome), pc \(String(board.cpu.pc, radix: 16))\n\(output.suffix(3000))")
        #expect(output.contains("CPU frequency 100.00 MHz"))
        #expect(output.contains("Run /init as init process"))
        #expect(output.contains("reboot: Power down"))
        let mine = Self.report(output)
        #expect(mine.count > 40, "no complete report from /init:\n\(output.suffix(3000))")

        // The oracle: QEMU's report now, or the one recorded from it for these packages.
        let recorded = Self.recordedReport()
        let theirs: [String]
        if let (process, pipe) = qemu {
            let qemuOutput = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            theirs = Self.report(qemuOutput)
            try #require(theirs.count > 40, "no complete report from QEMU:\n\(qemuOutput.suffix(3000))")
            if recorded.packages == Self.packages {
                #expect(recorded.lines == theirs, "Tests/linux/expected-report.txt differs from QEMU's report: run Scripts/update-linux-expected")
            } else {
                print("LinuxTests: Tests/linux/expected-report.txt was recorded with other packages (\(recorded.packages ?? "none")): run Scripts/update-linux-expected")
            }
        } else {
            try #require(recorded.packages == Self.packages,
                         "qemu-system-mipsel not found, and Tests/linux/expected-report.txt was recorded with other packages (\(recorded.packages ?? "none")) than .cache/linux's (\(Self.packages ?? "none")): install QEMU or run Scripts/update-linux-expected where it is")
            print("LinuxTests: qemu-system-mipsel not found: compared with QEMU's recorded report, Tests/linux/expected-report.txt")
            theirs = recorded.lines
        }
        var problems = ""
        for i in 0..<max(mine.count, theirs.count) {
            let m = i < mine.count ? mine[i] : "<none>"
            let q = i < theirs.count ? theirs[i] : "<none>"
            if let d = Self.deviations.first(where: { q.hasPrefix($0.prefix) }) {
                if m != d.magritte {
                    problems += "line \(i + 1) (deviation: \(d.why))\n  expected: \(d.magritte)\n  magritte: \(m)\n"
                }
                continue
            }
            if m != q { problems += "line \(i + 1)\n  qemu:     \(q)\n  magritte: \(m)\n" }
        }
        #expect(problems.isEmpty, "Magritte's /init report differs from QEMU's:\n\(problems)")
    }
}
