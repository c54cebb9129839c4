/// MIPS32r2 disassembly, text-identical to `llvm-objdump -d` (LLVM 21).
///
/// Which words are instructions is decided by `decode(_:)` in `Instruction.swift`; what to print
/// comes from the instruction table (`InstructionTable.swift`): the disassembler prints
/// `decode(word).op.info.mnemonic` and the operands its `format` names, taking the fields from the
/// raw word, after llvm's aliases. What llvm prints for each form (aliases such as `move`,
/// `b`, `jr` for `jalr $zero`, hexadecimal immediates, branch targets as absolute addresses with a
/// `<symbol+0xoffset>` annotation, the `.set push` wrapper around `rdhwr`) was established against
/// the oracle and is checked for every implemented form by `DisassemblerTests`; the rules and the
/// deliberate differences are in `Docs/disassembler.md`.
public enum Disassembler {
    /// What llvm-objdump prints for a word it cannot decode; we print it for every `.reserved` word.
    public static let unknown = "<unknown>"

    /// GPR names as llvm prints them (`$zero`, `$1` … `$27`, `$gp`, `$sp`, `$fp`, `$ra`).
    public static let registerNames: [String] = (0..<32).map { n in
        switch n {
        case 0: "$zero"
        case 28: "$gp"
        case 29: "$sp"
        case 30: "$fp"
        case 31: "$ra"
        default: "$\(n)"
        }
    }

    /// The instruction text exactly as llvm-objdump prints it after the address and bytes columns
    /// (mnemonic, a tab, operands separated by ", ").
    ///
    /// - Parameters:
    ///   - pc: the address of the instruction; branch targets are printed as absolute addresses.
    ///   - symbol: names a branch or jump target for the ` <…>` annotation llvm-objdump appends,
    ///     e.g. `_start+0x30`; `nil` (or a `nil` result) prints the bare address.
    /// - Returns: one line, except for `rdhwr`, which llvm wraps in `.set push`/`.set mips32r2`/
    ///   `.set pop` lines joined by `"\n\t"`.
    public static func text(word: UInt32, pc: UInt32, symbol: ((UInt32) -> String?)? = nil) -> String {
        guard let symbol else { return format(word, pc: pc) { _ in nil } }
        return format(word, pc: pc) { symbol(UInt32(truncatingIfNeeded: $0)) }
    }

    /// A whole section listing in the layout of `llvm-objdump -d`.
    ///
    /// The result starts with the blank line and header of the first symbol
    /// (`"\n80100000 <_start>:\n"`) and ends with a newline; prepend `header(file:section:)` for
    /// the complete output of `llvm-objdump -d FILE` on a file with one executable section.
    /// `symbols` are the section's symbols (ELF `st_shndx` naming it). As llvm does: only symbols
    /// inside the section head a block; when several share an address the name that sorts last
    /// (bytewise) is shown; a section start without a symbol is headed by the section name;
    /// branch targets at or after `start` are annotated with the nearest symbol at or below them,
    /// even past the section's end; runs of two or more zero words inside a block become
    /// `"\t\t..."` unless `skipZeroes` is false (llvm's `-z`).
    public static func listing(
        words: [UInt32], start: UInt32, symbols: [(name: String, address: UInt32)],
        section: String = ".text", showRawBytes: Bool = true, skipZeroes: Bool = true
    ) -> String {
        let end = UInt64(start) + 4 * UInt64(words.count)
        var best: [UInt32: String] = [:]
        for s in symbols where s.address >= start {
            if let other = best[s.address], !other.utf8.lexicographicallyPrecedes(s.name.utf8) { continue }
            best[s.address] = s.name
        }
        if best[start] == nil { best[start] = section }
        // Every symbol at or after `start` names targets, even past the end (llvm looks targets
        // up among the symbols of the section they fall in); only those inside head blocks.
        let named = best.sorted { $0.key < $1.key }.map { (address: UInt64($0.key), name: $0.value) }
        let heads = named.filter { $0.address < end }

        func annotate(_ target: UInt64) -> String? {
            guard target >= UInt64(start) else { return nil }
            var lo = 0, hi = named.count  // the last symbol at or below target
            while hi - lo > 1 {
                let mid = (lo + hi) / 2
                if named[mid].address <= target { lo = mid } else { hi = mid }
            }
            let offset = target - named[lo].address
            return offset == 0 ? named[lo].name : named[lo].name + "+" + Hex.prefixed(offset)
        }

        var out = ""
        for (h, head) in heads.enumerated() {
            out += "\n" + Hex.padded(head.address, width: 8) + " <" + head.name + ">:\n"
            let first = Int((head.address - UInt64(start)) / 4)
            let limit = h + 1 < heads.count ? Int((heads[h + 1].address - UInt64(start)) / 4) : words.count
            var i = first
            while i < limit {
                if skipZeroes && words[i] == 0 && i + 1 < limit && words[i + 1] == 0 {
                    while i < limit && words[i] == 0 { i += 1 }
                    out += "\t\t...\n"
                    continue
                }
                let word = words[i], pc = UInt32(truncatingIfNeeded: UInt64(start) + 4 * UInt64(i))
                out += pad(String(pc, radix: 16), 8, " ") + ":"
                if showRawBytes {
                    for shift in stride(from: 0, to: 32, by: 8) {
                        out += " " + Hex.padded((word >> UInt32(shift)) & 0xFF, width: 2)
                    }
                    out += "  \t"
                } else {
                    out += "      \t"
                }
                out += format(word, pc: pc, annotate: annotate) + "\n"
                i += 1
            }
        }
        return out
    }

    /// The lines llvm-objdump prints before the first section listing.
    public static func header(file: String, section: String = ".text") -> String {
        "\n\(file):\tfile format elf32-mips\n\nDisassembly of section \(section):\n"
    }
}

// MARK: - Formatting

extension Disassembler {
    /// Formats one word; `annotate` names a branch target computed, as llvm does, in 64 bits.
    static func format(_ w: UInt32, pc: UInt32, annotate: (UInt64) -> String?) -> String {
        let rs = Int(w >> 21 & 31), rt = Int(w >> 16 & 31), rd = Int(w >> 11 & 31)
        let sa = w >> 6 & 31
        let simm = Int64(Int16(truncatingIfNeeded: w))
        let uimm = Int64(w & 0xFFFF)
        let r = registerNames

        func ins(_ mnemonic: String, _ operands: String...) -> String {
            operands.isEmpty ? mnemonic : mnemonic + "\t" + operands.joined(separator: ", ")
        }
        /// PC-relative: llvm prints `pc + 4 + offset` truncated to 32 bits and annotates the
        /// untruncated 64-bit sum.
        func target() -> String {
            let t = UInt64(pc) &+ UInt64(bitPattern: (simm << 2) + 4)
            return Hex.prefixed(t & 0xFFFF_FFFF) + (annotate(t).map { " <" + $0 + ">" } ?? "")
        }
        func memory() -> String { Hex.prefixed(simm) + "(" + r[rs] + ")" }

        let op = decode(w).op
        let m = op.info.mnemonic
        // llvm's aliases first; everything else prints its table entry's plain form.
        switch op {
        case .undecoded, .reserved: return unknown
        case .addu where rt == 0, .or where rt == 0: return ins("move", r[rd], r[rs])
        case .nor where rt == 0: return ins("not", r[rd], r[rs])
        case .sub where rs == 0: return ins("neg", r[rd], r[rt])
        case .subu where rs == 0: return ins("negu", r[rd], r[rt])
        case .beq where rs == 0 && rt == 0: return ins("b", target())
        case .beq where rt == 0: return ins("beqz", r[rs], target())
        case .bne where rt == 0: return ins("bnez", r[rs], target())
        case .beql where rt == 0: return ins("beqzl", r[rs], target())
        case .bnel where rt == 0: return ins("bnezl", r[rs], target())
        case .bgezal where rs == 0: return ins("bal", target())
        case .bltzal where rs == 0 && w & 0xFFFF == 0xFFFF:
            // llvm's `nal` alias is `bltzal $zero` with offset -1 (a target of pc itself); it has
            // no operand, so only objdump's annotation follows, after a space.
            return "nal" + (annotate(UInt64(pc)).map { " <" + $0 + ">" } ?? "")
        case .jalr where rd == 0: return ins("jr", r[rs])
        default: break
        }

        switch op.info.format {
        case .none: return m
        case .coprocessor: return coprocessor(w, target: target)
        case .rdRtSa: return ins(m, r[rd], r[rt], Hex.prefixed(sa))
        case .rdRtRs: return ins(m, r[rd], r[rt], r[rs])
        case .rdRsRt: return ins(m, r[rd], r[rs], r[rt])
        case .rdRt: return ins(m, r[rd], r[rt])
        case .rd: return ins(m, r[rd])
        case .rs: return ins(m, r[rs])
        case .rsRt: return ins(m, r[rs], r[rt])
        case .zeroRsRt: return ins(m, r[0], r[rs], r[rt])
        // llvm's decoder binds one operand to both the rt and rd fields and so ORs them; they must
        // be equal anyway (MIPS32 leaves rt != rd UNPREDICTABLE).
        case .clz: return ins(m, r[rt | rd], r[rs])
        case .ext: return ins(m, r[rt], r[rs], Hex.prefixed(sa), Hex.prefixed(UInt32(rd) + 1))
        case .ins: return ins(m, r[rt], r[rs], Hex.prefixed(sa), Hex.prefixed(Int64(rd) - Int64(sa) + 1))
        case .rtRsSimm: return ins(m, r[rt], r[rs], Hex.prefixed(simm))
        case .rtRsUimm: return ins(m, r[rt], r[rs], Hex.prefixed(uimm))
        case .rtUimm: return ins(m, r[rt], Hex.prefixed(uimm))
        case .rsRtBranch: return ins(m, r[rs], r[rt], target())
        case .rsBranch: return ins(m, r[rs], target())
        case .jump:
            // llvm prints the 28-bit field as is but annotates the address in pc's 256 MB region.
            let field = UInt64(w & 0x03FF_FFFF) << 2
            let note = annotate(UInt64(pc & 0xF000_0000) + field).map { " <" + $0 + ">" } ?? ""
            return ins(m, Hex.prefixed(field) + note)
        case .jalr: return rd == 31 ? ins(m, r[rs]) : ins(m, r[rd], r[rs])
        case .rtMemory: return ins(m, r[rt], memory())
        case .hintMemory: return ins(m, Hex.prefixed(UInt32(rt)), memory())
        case .memory: return ins(m, memory())
        case .stype: return sa == 0 ? m : m + " " + Hex.prefixed(sa)  // sic: a space, not a tab
        case .rsRtCode:
            let code = w >> 6 & 0x3FF
            return code == 0 ? ins(m, r[rs], r[rt]) : ins(m, r[rs], r[rt], Hex.prefixed(code))
        case .rsSimm: return ins(m, r[rs], Hex.prefixed(simm))
        case .code20, .code19:
            let code = w >> 6 & (op.info.format == .code19 ? 0x7FFFF : 0xFFFFF)
            return code == 0 ? m : ins(m, Hex.prefixed(code))
        case .breakCode:
            let code1 = w >> 16 & 0x3FF, code2 = w >> 6 & 0x3FF
            if code2 != 0 { return ins(m, Hex.prefixed(code1), Hex.prefixed(code2)) }
            return code1 == 0 ? m : ins(m, Hex.prefixed(code1))
        case .rdhwr:
            // Hardware registers print as numbers; llvm wraps rdhwr in `.set` directives so that
            // its output assembles for MIPS32r1 too.
            let sel = w >> 6 & 7
            let text = sel == 0 ? ins(m, r[rt], "$\(rd)") : ins(m, r[rt], "$\(rd)", Hex.prefixed(sel))
            return ".set\tpush\n\t.set\tmips32r2\n\t" + text + "\n\t.set\tpop"
        case .cp0: return ins(m, r[rt], "$\(rd)", Hex.prefixed(w & 7))
        case .optionalRt: return rt == 0 ? m : ins(m, r[rt])
        }
    }

    /// The coprocessor 1/2 forms whose text is a move, load, store or branch (what a soft-float
    /// kernel still contains, e.g. Linux's FPU context switch); FPU arithmetic prints `<unknown>`.
    static func coprocessor(_ w: UInt32, target: () -> String) -> String {
        let rs = Int(w >> 21 & 31), rt = Int(w >> 16 & 31), rd = Int(w >> 11 & 31)
        let r = registerNames
        let memory = Hex.prefixed(Int64(Int16(truncatingIfNeeded: w))) + "(" + r[rs] + ")"
        switch w >> 26 {
        case 0 where w & 0x0002_07C0 == 0:  // MOVF/MOVT
            let cc = rt >> 2
            return (rt & 1 == 0 ? "movf\t" : "movt\t") + r[rd] + ", " + r[rs] + ", $fcc\(cc)"
        case 17 where rs == 8:  // BC1F, BC1T, BC1FL, BC1TL
            let mnemonic = ["bc1f", "bc1t", "bc1fl", "bc1tl"][rt & 3]
            let cc = rt >> 2
            return mnemonic + "\t" + (cc == 0 ? "" : "$fcc\(cc), ") + target()
        case 17 where w & 0x7FF == 0:
            switch rs {
            case 0: return "mfc1\t" + r[rt] + ", $f\(rd)"
            case 2: return "cfc1\t" + r[rt] + ", $\(rd)"
            case 3 where rd & 1 == 0: return "mfhc1\t" + r[rt] + ", $f\(rd)"  // an even 64-bit pair (FR=0)
            case 4: return "mtc1\t" + r[rt] + ", $f\(rd)"
            case 6: return "ctc1\t" + r[rt] + ", $\(rd)"
            case 7 where rd & 1 == 0: return "mthc1\t" + r[rt] + ", $f\(rd)"
            default: return unknown
            }
        case 18 where (rs == 0 || rs == 4) && w & 0x7F8 == 0:
            return (rs == 0 ? "mfc2\t" : "mtc2\t") + r[rt] + ", $\(rd), " + Hex.prefixed(w & 7)
        case 49: return "lwc1\t$f\(rt), " + memory
        case 53: return "ldc1\t$f\(rt), " + memory
        case 57: return "swc1\t$f\(rt), " + memory
        case 61: return "sdc1\t$f\(rt), " + memory
        case 50: return "lwc2\t$\(rt), " + memory
        case 54: return "ldc2\t$\(rt), " + memory
        case 58: return "swc2\t$\(rt), " + memory
        case 62: return "sdc2\t$\(rt), " + memory
        default: return unknown
        }
    }

    /// llvm's `formatImm` with hexadecimal immediates: `0x1f`, `-0x10`.

    static func pad(_ s: String, _ width: Int, _ fill: Character) -> String {
        s.count >= width ? s : String(repeating: fill, count: width - s.count) + s
    }
}
