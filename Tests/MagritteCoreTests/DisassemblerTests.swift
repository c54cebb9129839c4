import Foundation
import Testing

@testable import MagritteCore

/// Differential test of `Disassembler` against the toolchain's `llvm-objdump` (LLVM 21).
///
/// A corpus of every opcode/funct/rt/rs form with a few field patterns, plus 100,000 words from a
/// fixed-seed generator, is written as one ELF; `llvm-objdump -d -z` runs once on it, and every
/// word that `decode` implements must print identically. See `Docs/disassembler.md`.
@Suite struct DisassemblerTests {
    static let base: UInt32 = 0x8010_0000

    /// Words we implement that llvm 21 cannot decode, each with the reason it is right to differ.
    static let llvmCannotDecode: [(reason: String, applies: @Sendable (UInt32, Op) -> Bool)] = [
        ("rdhwr of a register other than $29: llvm's DecodeHWRegsRegisterClass accepts only 29; "
            + "MIPS32r2 defines $0-$3 (CPUNum, SYNCI_Step, CC, CCRes)",
         { w, op in op == .rdhwr && (w >> 11 & 31) != 29 }),
        ("rdpgpr/wrpgpr: llvm 21 has them only in microMIPS",
         { _, op in op == .rdpgpr || op == .wrpgpr }),
        ("wait with a non-zero implementation-defined code (bits 24..6): llvm decodes only code 0",
         { w, op in op == .wait && (w >> 6 & 0x7FFFF) != 0 }),
    ]

    @Test(.enabled(if: Oracle.objdump != nil, Oracle.missing))
    func everyImplementedFormMatchesLLVM() throws {
        let words = Corpus.words()
        let oracle = try Oracle.disassemble(words: words, base: Self.base)
        let symbol: (UInt32) -> String? = { t in
            t < Self.base ? nil : t == Self.base ? "_start" : "_start+0x" + String(t - Self.base, radix: 16)
        }

        var identical = 0, copIdentical = 0, copUnknown = 0, bothUnknown = 0
        var skipped = [Int](repeating: 0, count: Self.llvmCannotDecode.count)
        var llvmOnly: [String: Int] = [:]
        var failures: [String] = []
        for (i, word) in words.enumerated() {
            let pc = Self.base &+ UInt32(i * 4)
            let op = decode(word).op
            let ours = Disassembler.text(word: word, pc: pc, symbol: symbol)
            guard let theirs = oracle[i] else {
                failures.append("\(hex8(word)): llvm-objdump printed no line")
                continue
            }
            switch op {
            case .reserved:
                #expect(ours == Disassembler.unknown)
                if theirs == Disassembler.unknown { bothUnknown += 1 } else { llvmOnly[mnemonic(theirs), default: 0] += 1 }
            case .cop where ours == Disassembler.unknown:
                if theirs != Disassembler.unknown { copUnknown += 1 }
            default:
                if ours == theirs {
                    if op == .cop { copIdentical += 1 } else { identical += 1 }
                } else if theirs == Disassembler.unknown,
                    let k = Self.llvmCannotDecode.firstIndex(where: { $0.applies(word, op) })
                {
                    skipped[k] += 1
                } else {
                    failures.append("\(hex8(word)) (\(op)): ours \(ours.debugDescription), llvm \(theirs.debugDescription)")
                }
            }
        }

        let top = llvmOnly.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print(
            "DisassemblerTests: \(words.count) words vs llvm-objdump; implemented: \(identical) identical, "
                + "\(skipped.reduce(0, +)) skipped as llvm cannot decode (\(skipped.map(String.init).joined(separator: "/"))), "
                + "\(failures.count) different; coprocessor: \(copIdentical) identical, \(copUnknown) printed <unknown> "
                + "where llvm decodes; reserved: \(bothUnknown) <unknown> in both, "
                + "\(llvmOnly.values.reduce(0, +)) decoded by llvm only [\(top)]")
        for failure in failures.prefix(40) { Issue.record(Comment(rawValue: failure)) }
        #expect(failures.isEmpty, "\(failures.count) implemented words differ from llvm-objdump")
        #expect(identical > 50_000)
    }

    @Test(.enabled(if: Oracle.objdump != nil, Oracle.missing), arguments: [
        (showRawBytes: true, skipZeroes: true), (showRawBytes: true, skipZeroes: false),
        (showRawBytes: false, skipZeroes: true),
    ])
    func listingMatchesLLVM(options: (showRawBytes: Bool, skipZeroes: Bool)) throws {
        let b = Self.base
        // Symbols start after a gap (the section heads the first block), two share an address (the
        // name sorting last wins); zero runs of one, two and three words, one ending the section,
        // two single zeros on either side of a block boundary; targets below the section, past its
        // end and at a symbol; rdhwr's extra lines; `nal`.
        let words: [UInt32] = [
            0x1000_0003, 0x7C03_E83B, 0x1000_FFFD, 0x0C04_0000, 0, 0x0000_0000, 0x0000_0000, 0x1000_7FFF,
            0x1000_8000, 0, 0, 0x0800_0000, 0x1000_FFF3, 0x0000_0000, 0x0000_0000, 0x3C1C_8010,
            0x03E0_0008, 0, 0xFFFF_FFFF, 0x0410_FFFF, 0x4200_0018, 0, 0,
        ]
        let symbols: [(name: String, address: UInt32)] = [
            ("main", b + 0x08), ("_start", b + 0x08), ("Zeta", b + 0x28), ("alpha", b + 0x28),
            ("loop", b + 0x3C), ("outside", b - 4), ("past", b + 0x1000),
        ]
        let path = try Oracle.writeELF(words: words, base: b, symbols: symbols)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var arguments = ["-d"]
        if !options.showRawBytes { arguments.append("--no-show-raw-insn") }
        if !options.skipZeroes { arguments.append("-z") }
        let expected = try Oracle.run(arguments + [path])
        let ours = Disassembler.header(file: path) + Disassembler.listing(
            words: words, start: b, symbols: symbols, showRawBytes: options.showRawBytes, skipZeroes: options.skipZeroes)
        #expect(firstDifference(ours, expected) == nil)
    }

    @Test func aliasesAndOperandForms() {
        let cases: [(UInt32, String)] = [
            (0x0000_0000, "nop"), (0x0000_0040, "ssnop"), (0x0000_00C0, "ehb"),
            (0x0022_1025, "or\t$2, $1, $2"), (0x0020_1025, "move\t$2, $1"), (0x0002_1023, "negu\t$2, $2"),
            (0x0040_1027, "not\t$2, $2"), (0x1000_0003, "b\t0x80100010"), (0x0411_0003, "bal\t0x80100010"),
            (0x0040_0009, "jr\t$2"), (0x0040_F809, "jalr\t$2"), (0x0040_1009, "jalr\t$2, $2"),
            (0x0000_004F, "sync 0x1"), (0x0001_004D, "break\t0x1, 0x1"), (0x0043_001A, "div\t$zero, $2, $3"),
            (0x4002_6001, "mfc0\t$2, $12, 0x1"), (0x4162_6000, "di\t$2"), (0x8C43_FFFC, "lw\t$3, -0x4($2)"),
            (0x7C43_1804, "ins\t$3, $2, 0x0, 0x4"), (0x0800_000F, "j\t0x3c"),
            (0x7C03_E83B, ".set\tpush\n\t.set\tmips32r2\n\trdhwr\t$3, $29\n\t.set\tpop"),
            (0xFFFF_FFFF, "<unknown>"),
        ]
        for (word, text) in cases {
            #expect(Disassembler.text(word: word, pc: Self.base) == text, "\(String(word, radix: 16))")
        }
        #expect(Disassembler.text(word: 0x1000_FFFF, pc: Self.base) { _ in "_start" } == "b\t0x80100000 <_start>")
        // Mnemonics are looked up by raw value.
        #expect(Op.allCases.enumerated().allSatisfy { $0.offset == Int($0.element.rawValue) })
    }

    /// The first line where two listings differ, as "line N: ours …, llvm …".
    private func firstDifference(_ ours: String, _ theirs: String) -> String? {
        let a = ours.split(separator: "\n", omittingEmptySubsequences: false)
        let b = theirs.split(separator: "\n", omittingEmptySubsequences: false)
        guard let n = (0..<max(a.count, b.count)).first(where: { $0 >= a.count || $0 >= b.count || a[$0] != b[$0] }) else {
            return nil
        }
        func line(_ l: [Substring]) -> String { n < l.count ? String(l[n]).debugDescription : "(end)" }
        return "line \(n + 1): ours \(line(a)), llvm \(line(b))"
    }
    private func hex8(_ w: UInt32) -> String { Disassembler.pad(String(w, radix: 16), 8, "0") }
    private func mnemonic(_ text: Substring) -> String {
        String(text.prefix { $0 != "\t" && $0 != " " })
    }
    private func mnemonic(_ text: String) -> String { mnemonic(text[...]) }
}

extension DisassemblerTests {
    // MARK: - Corpus

    /// SplitMix64 (Steele, Lea, Flood 2014): a tiny deterministic generator for a reproducible corpus.
    struct SplitMix64 {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func word() -> UInt32 { UInt32(truncatingIfNeeded: next() >> 32) }
    }

    enum Corpus {
        /// Every table entry of the encoding with structured and random fills of its free bits, then
        /// 100,000 random words; duplicates removed, order kept.
        static func words() -> [UInt32] {
            var rng = SplitMix64(state: 0x4D41_4752_4954_5445)  // "MAGRITTE"
            var seen = Set<UInt32>(), out: [UInt32] = []
            func add(_ w: UInt32) { if seen.insert(w).inserted { out.append(w) } }

            // Field patterns: register triples over {0, 2, 31} and a few shift amounts; immediates at
            // the sign and alias boundaries; then random fills.
            var patterns: [UInt32] = []
            for rs: UInt32 in [0, 2, 31] {
                for rt: UInt32 in [0, 2, 31] {
                    for rd: UInt32 in [0, 2, 31] {
                        for sa: UInt32 in [0, 1, 3, 16, 31] { patterns.append(rs << 21 | rt << 16 | rd << 11 | sa << 6) }
                    }
                    for imm: UInt32 in [0x0001, 0x0004, 0x0018, 0x0020, 0x7FFF, 0x8000, 0xFFFC, 0xFFFF] {
                        patterns.append(rs << 21 | rt << 16 | imm)
                    }
                }
            }
            patterns += [0x0000_0000, 0x03FF_FFFF, 0x0084_2108, 0x0063_18C6]
            func table(_ mask: UInt32, _ value: UInt32, random: Int = 24, structured: Bool = true) {
                if structured { for p in patterns { add(value | p & ~mask) } }
                for _ in 0..<random { add(value | rng.word() & ~mask) }
            }

            for op: UInt32 in 0..<64 { table(0xFC00_0000, op << 26) }
            for op: UInt32 in [0, 28, 31] {  // SPECIAL, SPECIAL2, SPECIAL3 by funct
                for funct: UInt32 in 0..<64 { table(0xFC00_003F, op << 26 | funct) }
            }
            for rt: UInt32 in 0..<32 { table(0xFC1F_0000, 1 << 26 | rt << 16) }  // REGIMM
            for op: UInt32 in 16...19 {  // COP0..COP1X by rs, and the CO function field
                for rs: UInt32 in 0..<32 {
                    table(0xFFE0_0000, op << 26 | rs << 21)
                    if rs >= 16 { for funct: UInt32 in 0..<64 { table(0xFFE0_003F, op << 26 | rs << 21 | funct, random: 6, structured: false) } }
                }
            }
            for funct: UInt32 in 0..<64 { table(0xFFE0_003F, 16 << 26 | 16 << 21 | funct) }  // CO, exactly
            for sa: UInt32 in 0..<32 {
                table(0xFC00_07FF, 31 << 26 | sa << 6 | 32)  // BSHFL
                add(sa << 6)  // sll $zero, $zero, sa: nop, ssnop, ehb, pause
                add(sa << 6 | 15)  // sync stype
            }
            for msb: UInt32 in 0..<32 {  // EXT/INS: every position and size
                for lsb: UInt32 in 0..<32 { add(0x7C43_0000 | msb << 11 | lsb << 6); add(0x7C43_0004 | msb << 11 | lsb << 6) }
            }
            for rd: UInt32 in 0..<32 {
                for sel: UInt32 in 0..<8 {
                    add(0x7C03_003B | rd << 11 | sel << 6)  // rdhwr
                    add(0x4003_0000 | rd << 11 | sel)  // mfc0
                    add(0x4083_0000 | rd << 11 | sel)  // mtc0
                }
            }
            for _ in 0..<100_000 { add(rng.word()) }
            return out
        }
    }

    // MARK: - The oracle

    enum Oracle {
        static let missing: Comment =
            "llvm-objdump of LLVM 21 or later not found: set MAGRITTE_OBJDUMP or put the Swift toolchain's swift on PATH"

        /// The toolchain's llvm-objdump: `$MAGRITTE_OBJDUMP`, else the one next to the real `swift`
        /// on PATH. Older versions (e.g. /usr/bin's LLVM 14) print differently and are not used.
        static let objdump: String? = {
            let fm = FileManager.default
            var candidates: [String] = []
            let env = ProcessInfo.processInfo.environment
            if let path = env["MAGRITTE_OBJDUMP"] { candidates.append(path) }
            for dir in (env["PATH"] ?? "").split(separator: ":") {
                let swift = URL(fileURLWithPath: String(dir)).appendingPathComponent("swift")
                guard fm.isExecutableFile(atPath: swift.path) else { continue }
                candidates.append(swift.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("llvm-objdump").path)
            }
            return candidates.first { path in
                guard fm.isExecutableFile(atPath: path), let version = try? run(["--version"], tool: path),
                    let range = version.range(of: #"LLVM version (\d+)"#, options: .regularExpression)
                else { return false }
                return Int(version[range].split(separator: " ").last ?? "") ?? 0 >= 21
            }
        }()

        /// Runs llvm-objdump (or `tool`) and returns its standard output.
        static func run(_ arguments: [String], tool: String? = nil) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool ?? objdump!)
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }

        /// Disassembles `words` placed at `base` and returns llvm's text per word (nil if no line).
        static func disassemble(words: [UInt32], base: UInt32) throws -> [String?] {
            let path = try writeELF(words: words, base: base, symbols: [("_start", base)])
            defer { try? FileManager.default.removeItem(atPath: path) }
            let output = Array(try run(["-d", "-z", "--triple=mipsel", "--mcpu=mips32r2", path]).utf8)

            // "80100000: 00 00 00 00  \tnop"; rdhwr continues on lines that start with a tab.
            var texts = [String?](repeating: nil, count: words.count)
            var current: Int? = nil
            var lineStart = 0
            while lineStart < output.count {
                var lineEnd = lineStart
                while lineEnd < output.count && output[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                let line = output[lineStart..<lineEnd]
                lineStart = lineEnd + 1
                if line.count > 24 && line[line.startIndex + 8] == UInt8(ascii: ":") && line[line.startIndex + 23] == UInt8(ascii: "\t"),
                    let address = UInt32(String(decoding: line.prefix(8), as: UTF8.self).trimmingCharacters(in: .whitespaces), radix: 16)
                {
                    let index = Int((address &- base) / 4)
                    let bytes = line[(line.startIndex + 10)..<(line.startIndex + 21)].split(separator: UInt8(ascii: " "))
                    let word = bytes.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32(String(decoding: $1, as: UTF8.self), radix: 16)! }
                    guard index < words.count, words[index] == word else { current = nil; continue }
                    texts[index] = String(decoding: line.dropFirst(24), as: UTF8.self)
                    current = index
                } else if let i = current, line.first == UInt8(ascii: "\t") {
                    texts[i]! += "\n" + String(decoding: line, as: UTF8.self)
                } else {
                    current = nil
                }
            }
            return texts
        }

        /// Writes a minimal little-endian MIPS32r2 ELF executable: one PT_LOAD, a `.text` section at
        /// `base` and global symbols. Returns its path in the temporary directory.
        static func writeELF(words: [UInt32], base: UInt32, symbols: [(name: String, address: UInt32)]) throws -> String {
            var strtab: [UInt8] = [0], symtab = [UInt8](repeating: 0, count: 16)
            func le32(_ v: UInt32, _ out: inout [UInt8]) { for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
            func le16(_ v: UInt16, _ out: inout [UInt8]) { out.append(UInt8(v & 0xFF)); out.append(UInt8(v >> 8)) }
            for symbol in symbols {
                le32(UInt32(strtab.count), &symtab)
                strtab += Array(symbol.name.utf8) + [0]
                le32(symbol.address, &symtab)
                le32(0, &symtab)
                symtab += [0x10, 0]  // STB_GLOBAL, STT_NOTYPE; default visibility
                le16(1, &symtab)  // .text
            }
            let shstrtab = Array("\0.text\0.symtab\0.strtab\0.shstrtab\0".utf8)
            var text: [UInt8] = []
            for w in words { le32(w, &text) }

            let textOffset = 0x1000
            let symtabOffset = (textOffset + text.count + 3) & ~3
            let strtabOffset = symtabOffset + symtab.count
            let shstrtabOffset = strtabOffset + strtab.count
            let sectionsOffset = (shstrtabOffset + shstrtab.count + 3) & ~3

            var elf: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 1, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
            le16(2, &elf)  // ET_EXEC
            le16(8, &elf)  // EM_MIPS
            le32(1, &elf)
            le32(base, &elf)  // entry
            le32(52, &elf)  // program headers
            le32(UInt32(sectionsOffset), &elf)
            le32(0x7000_1000, &elf)  // EF_MIPS_ARCH_32R2 | EF_MIPS_ABI_O32
            for v: UInt16 in [52, 32, 1, 40, 5, 4] { le16(v, &elf) }
            for v in [1, UInt32(textOffset), base, base, UInt32(text.count), UInt32(text.count), 5, 0x1000] { le32(v, &elf) }  // PT_LOAD, R+X
            elf += [UInt8](repeating: 0, count: textOffset - elf.count) + text
            elf += [UInt8](repeating: 0, count: symtabOffset - elf.count) + symtab + strtab + shstrtab
            elf += [UInt8](repeating: 0, count: sectionsOffset - elf.count)
            let sections: [[UInt32]] = [
                [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                [1, 1, 6, base, UInt32(textOffset), UInt32(text.count), 0, 0, 4, 0],  // .text PROGBITS AX
                [7, 2, 0, 0, UInt32(symtabOffset), UInt32(symtab.count), 3, 1, 4, 16],  // .symtab
                [15, 3, 0, 0, UInt32(strtabOffset), UInt32(strtab.count), 0, 0, 1, 0],  // .strtab
                [23, 3, 0, 0, UInt32(shstrtabOffset), UInt32(shstrtab.count), 0, 0, 1, 0],  // .shstrtab
            ]
            for section in sections { for v in section { le32(v, &elf) } }

            let path = FileManager.default.temporaryDirectory.appendingPathComponent("magritte-disasm-\(UUID().uuidString).elf").path
            try Data(elf).write(to: URL(fileURLWithPath: path))
            return path
        }
    }
}
