import Foundation
import MagritteMachine
import MagritteTestSupport
import Testing

/// Every program in Guests/tests runs on Magritte's Malta and on QEMU's; the console output must
/// be identical, except for the few lines listed in `manualOverQEMU`, where QEMU departs from
/// the MIPS32 manual and Magritte follows the manual. Without QEMU the comparison is with QEMU's
/// recorded output (`Guests/tests/expected/`, which must equal QEMU's when QEMU is there).
@Suite struct GuestProgramTests {
    static let root = Repository.root
    static let guests = root.appendingPathComponent(".build/guests/tests")
    /// QEMU's output of each program, recorded by Scripts/update-expected: the oracle when QEMU is absent.
    static let recorded = root.appendingPathComponent("Guests/tests/expected")

    static var programs: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: guests.path)) ?? []
        return names.filter { $0.hasSuffix(".elf") }.map { String($0.dropLast(4)) }.sorted()
    }

    /// A line QEMU prints (found by a substring) that Magritte prints differently, on purpose:
    /// Magritte's line must match the regular expression `magritte` instead.
    struct Deviation {
        let qemu: String
        let magritte: String
        let why: String
    }

    static func cpu(_ prefix: String, ce: Int) -> Deviation {
        Deviation(qemu: prefix, magritte: "^" + NSRegularExpression.escapedPattern(for: prefix) + ".*: CpU bd=0 epc=mark\\+0 vec=180 ce=\(ce)$",
                  why: "a COP2 instruction with Status.CU2=0 raises Coprocessor Unusable (CE=2); QEMU raises RI")
    }

    static func ri(_ prefix: String, _ why: String) -> Deviation {
        Deviation(qemu: prefix, magritte: "^" + NSRegularExpression.escapedPattern(for: prefix) + ".*: RI bd=0 epc=mark\\+0 vec=180 ce=\\d$", why: why)
    }

    static let noDSP = "DSP ASE instructions are reserved on a CPU without the DSP ASE (Config3.DSPP=0); QEMU 7.2 executes them as NOPs"

    /// Guests/tests/qemu_quirks.c collects the cases where QEMU departs from the MIPS32 manual
    /// (or from a 24Kc); Magritte follows the manual there. Every other program must match QEMU
    /// exactly.
    static let manualOverQEMU: [String: [Deviation]] = [
        "qemu_quirks": [
            Deviation(qemu: "bne $t0,$t0; break:", magritte: "^bne \\$t0,\\$t0; break: Bp bd=1 epc=mark\\+0$", why: notTaken),
            Deviation(qemu: "bltz $0; break:", magritte: "^bltz \\$0; break: Bp bd=1 epc=mark\\+0$", why: notTaken),
            Deviation(qemu: "bgtz $0; break:", magritte: "^bgtz \\$0; break: Bp bd=1 epc=mark\\+0$", why: notTaken),
            Deviation(qemu: "bne $0,$0; break:", magritte: "^bne \\$0,\\$0; break: Bp bd=1 epc=mark\\+0$", why: notTaken),
            ri("00000005 SPECIAL funct 0x05, rd=0", "SPECIAL funct 5 is reserved in MIPS32r2 (LSA exists only in R6/MSA); QEMU 7.2 executes it as a NOP"),
            ri("00004005 SPECIAL funct 0x05, rd=t0", "as above"),
            ri("78000000 opcode 0x1e (MDMX)", "opcode 0x1E (MDMX) is reserved on a CPU without MDMX (Config1.MD=0)"),
            ri("7c000010 SPECIAL3 ADDU.QB (DSP) rd=0", noDSP),
            ri("7c000038 SPECIAL3 EXTR.W (DSP) rt=0", noDSP),
            ri("7c000060 BSHFL sa 0x01 rd=0", "BSHFL with sa=1 is not an instruction of MIPS32r2 (only WSBH, SEB, SEH)"),
            ri("41000000 COP0 rs 0x08 (MFTR) rt=0", "MFTR/MTTR belong to the MT ASE, absent on a 24Kc"),
            ri("41080000 COP0 rs 0x08 (MFTR) rt=t0", "as above"),
            ri("41880000 COP0 rs 0x0c (MTTR)", "as above"),
            cpu("48024000 mfc2 v0, $8", ce: 2), cpu("48824000 mtc2 v0, $8", ce: 2), cpu("48420000 cfc2 v0, $0", ce: 2),
            cpu("4a000000 COP2 co-op", ce: 2), cpu("49000001 bc2f +4", ce: 2),
            ri("42000003 COP0 funct 0x03 (TLBINV)", "TLBINV needs Config4.IE (MIPS32r5+ TLB invalidate); a 24Kc has none"),
            Deviation(qemu: "kernel rdhwr $29:", magritte: "^kernel rdhwr \\$29: 5a5a5a5a exc: RI bd=0 epc=mark[-+]\\d+$", why: noULR),
            Deviation(qemu: "user rdhwr $29 with CU0=1:", magritte: "^user rdhwr \\$29 with CU0=1: 5a5a5a5a exc: RI bd=0 epc=mark\\+\\d+$", why: noULR),
            Deviation(qemu: "ll; sc misaligned (no AdES)", magritte: "^ll; sc misaligned \\(no AdES\\) +ll=00000000 sc=1515870810 mem=00001000 00002000 exc: AdES bd=0 epc=mark\\+4 badva=8[0-9a-f]{6}[13579bdf]$",
                      why: "SC to a misaligned address raises AdES (the manual); QEMU fails the SC without a check"),
            Deviation(qemu: "LLAddr after ll; syscall; eret:", magritte: "^LLAddr after ll; syscall; eret: (?!00000000)[0-9a-f]{8} ",
                      why: "ERET clears the LL bit but does not change LLAddr; QEMU zeroes it"),
        ],
        "cp0_reset": [
            Deviation(qemu: "Config1   ($16 sel 1) = 9e190c8e", magritte: "^Config1   \\(\\$16 sel 1\\) = 9e190c8a$", why: noMIPS16),
            Deviation(qemu: "Config1: MMUSize-1=15", magritte: "^Config1: .* CA=0 EP=1 FP=0$", why: noMIPS16),
        ],
        "cp0_masks": [
            Deviation(qemu: "Config1   ($16.1) write ffffffff", magritte: "^Config1   \\(\\$16\\.1\\) write ffffffff read 9e190c8a$", why: noMIPS16),
            Deviation(qemu: "Config1   ($16.1) write 00000000", magritte: "^Config1   \\(\\$16\\.1\\) write 00000000 read 9e190c8a$", why: noMIPS16),
            Deviation(qemu: "Config1   ($16.1) write 5a5aa5a5", magritte: "^Config1   \\(\\$16\\.1\\) write 5a5aa5a5 read 9e190c8a$", why: noMIPS16),
        ],
    ]

    static let notTaken = "the slot after a branch that is never taken is still a delay slot (BD=1, EPC = the branch); QEMU compiles such branches as NOPs"
    static let noULR = "hardware register 29 (UserLocal) exists only with Config3.ULRI; a 24Kc raises RI (QEMU models it anyway)"
    static let noMIPS16 = "Config1.CA (MIPS16e) is clear: Magritte has no MIPS16e; QEMU's 24Kc claims it"

    static var qemuAvailable: Bool { Tools.qemu != nil }

    @Test func corpusIsBuilt() {
        #expect(Self.programs.count >= 40, "run Scripts/build-guests first (found \(Self.programs.count) programs)")
    }

    @Test(arguments: programs)
    func sameOutputAsQEMU(_ name: String) throws {
        let elf = Self.guests.appendingPathComponent(name + ".elf").path
        let ours = try runOnMagritte(elf)
        #expect(ours.outcome == .poweredOff, "\(name): \(ours.outcome) after \(ours.instructions) instructions")
        // The oracle: QEMU's output now, or the one recorded from it (Scripts/update-expected).
        let recordedFile = Self.recorded.appendingPathComponent(name + ".txt")
        let recorded = (try? String(contentsOf: recordedFile, encoding: .utf8)).map(lines)
        let expected: [String]
        if Self.qemuAvailable {
            expected = try runOnQEMU(elf)
            #expect(!expected.isEmpty, "\(name): QEMU printed nothing")
            // The recorded output must not drift from what QEMU prints.
            #expect(recorded == expected,
                    "\(name): Guests/tests/expected/\(name).txt differs from QEMU's output: run Scripts/update-expected \(name)")
        } else {
            expected = try #require(recorded, "\(name): qemu-system-mipsel not found and no recorded output in Guests/tests/expected/\(name).txt")
            print("\(name): qemu-system-mipsel not found: compared with QEMU's recorded output, Guests/tests/expected/\(name).txt")
        }
        var patterns: [Int: (NSRegularExpression, Deviation)] = [:]
        for d in Self.manualOverQEMU[name] ?? [] {
            guard let i = expected.firstIndex(where: { $0.contains(d.qemu) }) else {
                Issue.record("\(name): the deviation \"\(d.qemu)\" no longer appears in QEMU's output")
                continue
            }
            patterns[i] = (try NSRegularExpression(pattern: d.magritte), d)
        }
        let got = ours.lines
        var report = ""
        for i in 0..<max(got.count, expected.count) {
            let g = i < got.count ? got[i] : "<missing>", e = i < expected.count ? expected[i] : "<missing>"
            if let (re, d) = patterns[i] {
                if re.firstMatch(in: g, range: NSRange(g.startIndex..., in: g)) == nil {
                    report += "  line \(i + 1) (manual over QEMU: \(d.why))\n    qemu:     \(e)\n    expected: /\(d.magritte)/\n    magritte: \(g)\n"
                }
            } else if g != e {
                report += "  line \(i + 1)\n    qemu:     \(e)\n    magritte: \(g)\n"
            }
        }
        if !report.isEmpty { Issue.record(Comment(rawValue: "\(name): output differs from QEMU's\n" + report)) }
    }

    struct Run {
        var lines: [String]
        var outcome: RunOutcome
        var instructions: UInt64
    }

    func runOnMagritte(_ elf: String) throws -> Run {
        var bytes: [UInt8] = []
        var config = MaltaConfiguration()
        config.ramSize = 128 << 20
        let board = Malta(configuration: config) { bytes.append($0) }
        try board.load(path: elf)
        board.boot()
        let outcome = board.run(maxInstructions: 200_000_000)
        let text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\r", with: "")
        return Run(lines: lines(text), outcome: outcome, instructions: board.cpu.retiredInstructions)
    }

    func runOnQEMU(_ elf: String) throws -> [String] {
        lines(try runProcess(Self.root.appendingPathComponent("Scripts/qemu-run").path, [elf], timeout: 120).out)
    }

    func lines(_ text: String) -> [String] {
        var l = text.components(separatedBy: "\n")
        if l.last == "" { l.removeLast() }
        return l
    }
}
