/// The instruction set, decoded once: every MIPS32r2 integer instruction the 24Kc implements.
///
/// `decode(_:)` turns a word into a `DecodedInstruction` whose `op` drives the interpreter's
/// dispatch (`CPU+Execute.swift`); everything else known about an op (mnemonic, operands,
/// encodings, memory access, branch rule, privilege, block ends) is in its instruction-table
/// entry, `op.info` (`InstructionTable.swift`), which `InstructionTableTests` checks `decode`
/// against. Anything `decode` does not recognise becomes `.reserved`, which executes as a
/// Reserved Instruction exception.
public enum Op: UInt8, Sendable, CaseIterable {
    /// Not yet decoded (a fresh slot in the decoded-page cache). Never returned by `decode`.
    case undecoded = 0
    case reserved
    // ALU, register
    case sll, srl, sra, sllv, srlv, srav, rotr, rotrv
    case add, addu, sub, subu, and, or, xor, nor, slt, sltu
    case movz, movn
    case mfhi, mthi, mflo, mtlo
    case mult, multu, div, divu, madd, maddu, msub, msubu, mul
    case clz, clo
    case ext, ins, wsbh, seb, seh
    case nop, ssnop, ehb, pause
    // ALU, immediate
    case addi, addiu, slti, sltiu, andi, ori, xori, lui
    // Branches and jumps
    case beq, bne, blez, bgtz, bltz, bgez, bltzal, bgezal
    case beql, bnel, blezl, bgtzl, bltzl, bgezl, bltzall, bgezall
    case j, jal, jr, jalr, jrhb, jalrhb
    // Loads and stores
    case lb, lbu, lh, lhu, lw, lwl, lwr, ll
    case sb, sh, sw, swl, swr, sc
    case cache, pref, sync, synci
    // Traps and system
    case tge, tgeu, tlt, tltu, teq, tne
    case tgei, tgeiu, tlti, tltiu, teqi, tnei
    case syscall, `break`, sdbbp
    case rdhwr
    // Coprocessor 0
    case mfc0, mtc0, di, ei, rdpgpr, wrpgpr
    case tlbr, tlbwi, tlbwr, tlbp, eret, deret, wait
    /// Any instruction of coprocessor 1, 2 or 3 (no FPU, no CP2): Coprocessor Unusable.
    /// `rt` holds the coprocessor number.
    case cop
}

/// One decoded instruction, 8 bytes, as cached per page.
///
/// Register fields are GPR numbers. `rd` is always the *destination* (whatever field encodes
/// it), with register 0 replaced by the sink slot 32 so that writes never need a check and
/// `$zero` stays zero. For instructions without a destination it is 32.
public struct DecodedInstruction: Sendable, Equatable {
    public var op: Op
    public var rd: UInt8
    public var rs: UInt8
    public var rt: UInt8
    /// Sign- or zero-extended immediate, shift amount, branch offset in bytes (relative to the
    /// delay slot), jump index << 2, EXT/INS mask, CP0 register | select << 5, or code field.
    public var imm: UInt32

    @inline(__always)
    public init(op: Op, rd: UInt8 = 32, rs: UInt8 = 0, rt: UInt8 = 0, imm: UInt32 = 0) {
        self.op = op
        self.rd = rd
        self.rs = rs
        self.rt = rt
        self.imm = imm
    }

    public static let undecoded = DecodedInstruction(op: .undecoded)
}

/// The sink slot for writes to `$zero`.
@usableFromInline let sinkRegister: UInt8 = 32

@inline(__always) private func dest(_ r: UInt32) -> UInt8 { r == 0 ? sinkRegister : UInt8(r) }
@inline(__always) private func sext16(_ w: UInt32) -> UInt32 { UInt32(bitPattern: Int32(Int16(truncatingIfNeeded: w))) }

/// Decodes one instruction word.
public func decode(_ w: UInt32) -> DecodedInstruction {
    let opcode = w >> 26
    let rs = (w >> 21) & 31
    let rt = (w >> 16) & 31
    let rd = (w >> 11) & 31
    let sa = (w >> 6) & 31
    let funct = w & 63
    let r8 = UInt8(rs), t8 = UInt8(rt)
    func R(_ op: Op) -> DecodedInstruction { DecodedInstruction(op: op, rd: dest(rd), rs: r8, rt: t8, imm: sa) }
    func I(_ op: Op, signed: Bool = true) -> DecodedInstruction {
        DecodedInstruction(op: op, rd: dest(rt), rs: r8, rt: t8, imm: signed ? sext16(w) : w & 0xFFFF)
    }
    func B(_ op: Op, link: Bool = false) -> DecodedInstruction {
        DecodedInstruction(op: op, rd: link ? 31 : sinkRegister, rs: r8, rt: t8, imm: sext16(w) << 2)
    }
    func S(_ op: Op) -> DecodedInstruction { DecodedInstruction(op: op, rd: sinkRegister, rs: r8, rt: t8, imm: sext16(w)) }
    let reserved = DecodedInstruction(op: .reserved)

    switch opcode {
    case 0:  // SPECIAL
        switch funct {
        case 0:
            if rs != 0 { return reserved }
            if w == 0 { return DecodedInstruction(op: .nop) }
            if rt == 0 && rd == 0 {
                switch sa {
                case 1: return DecodedInstruction(op: .ssnop)
                case 3: return DecodedInstruction(op: .ehb)
                case 5: return DecodedInstruction(op: .pause)
                default: break
                }
            }
            return R(.sll)
        case 1: return DecodedInstruction(op: .cop, rt: 1)  // MOVF/MOVT need the FPU
        case 2:
            switch rs {
            case 0: return R(.srl)
            case 1: return R(.rotr)
            default: return reserved
            }
        case 3: return rs == 0 ? R(.sra) : reserved
        case 4: return sa == 0 ? R(.sllv) : reserved
        case 6:
            switch sa {
            case 0: return R(.srlv)
            case 1: return R(.rotrv)
            default: return reserved
            }
        case 7: return sa == 0 ? R(.srav) : reserved
        case 8:
            guard rt == 0 && rd == 0 && (sa & 0xF) == 0 else { return reserved }
            return DecodedInstruction(op: sa & 0x10 != 0 ? .jrhb : .jr, rs: r8)
        case 9:
            guard rt == 0 && (sa & 0xF) == 0 else { return reserved }
            return DecodedInstruction(op: sa & 0x10 != 0 ? .jalrhb : .jalr, rd: dest(rd), rs: r8)
        case 10: return sa == 0 ? R(.movz) : reserved
        case 11: return sa == 0 ? R(.movn) : reserved
        case 12: return DecodedInstruction(op: .syscall, imm: (w >> 6) & 0xFFFFF)
        case 13: return DecodedInstruction(op: .break, imm: (w >> 6) & 0xFFFFF)
        case 15: return DecodedInstruction(op: .sync, imm: sa)  // bits 25..11 ignored, as by QEMU and llvm
        case 16: return rs == 0 && rt == 0 && sa == 0 ? R(.mfhi) : reserved
        case 17: return rt == 0 && rd == 0 && sa == 0 ? R(.mthi) : reserved
        case 18: return rs == 0 && rt == 0 && sa == 0 ? R(.mflo) : reserved
        case 19: return rt == 0 && rd == 0 && sa == 0 ? R(.mtlo) : reserved
        case 24, 25, 26, 27:
            guard rd == 0 && sa == 0 else { return reserved }
            return R([Op.mult, .multu, .div, .divu][Int(funct - 24)])
        case 32...39:
            guard sa == 0 else { return reserved }
            return R([Op.add, .addu, .sub, .subu, .and, .or, .xor, .nor][Int(funct - 32)])
        case 42: return sa == 0 ? R(.slt) : reserved
        case 43: return sa == 0 ? R(.sltu) : reserved
        case 48, 49, 50, 51, 52, 54:
            let ops: [UInt32: Op] = [48: .tge, 49: .tgeu, 50: .tlt, 51: .tltu, 52: .teq, 54: .tne]
            return DecodedInstruction(op: ops[funct]!, rs: r8, rt: t8, imm: (w >> 6) & 0x3FF)
        default: return reserved
        }
    case 1:  // REGIMM
        switch rt {
        case 0: return B(.bltz)
        case 1: return B(.bgez)
        case 2: return B(.bltzl)
        case 3: return B(.bgezl)
        case 8: return S(.tgei)
        case 9: return S(.tgeiu)
        case 10: return S(.tlti)
        case 11: return S(.tltiu)
        case 12: return S(.teqi)
        case 14: return S(.tnei)
        case 16: return B(.bltzal, link: true)
        case 17: return B(.bgezal, link: true)
        case 18: return B(.bltzall, link: true)
        case 19: return B(.bgezall, link: true)
        case 31: return S(.synci)
        default: return reserved
        }
    case 2: return DecodedInstruction(op: .j, imm: (w & 0x03FF_FFFF) << 2)
    case 3: return DecodedInstruction(op: .jal, rd: 31, imm: (w & 0x03FF_FFFF) << 2)
    case 4: return B(.beq)
    case 5: return B(.bne)
    case 6: return rt == 0 ? B(.blez) : reserved
    case 7: return rt == 0 ? B(.bgtz) : reserved
    case 8: return I(.addi)
    case 9: return I(.addiu)
    case 10: return I(.slti)
    case 11: return I(.sltiu)
    case 12: return I(.andi, signed: false)
    case 13: return I(.ori, signed: false)
    case 14: return I(.xori, signed: false)
    case 15: return rs == 0 ? DecodedInstruction(op: .lui, rd: dest(rt), imm: w << 16) : reserved
    case 16:  // COP0
        let sel = w & 7
        switch rs {
        case 0: return (w >> 3) & 0xFF == 0 ? DecodedInstruction(op: .mfc0, rd: dest(rt), rt: t8, imm: rd | sel << 5) : reserved
        case 4: return (w >> 3) & 0xFF == 0 ? DecodedInstruction(op: .mtc0, rt: t8, imm: rd | sel << 5) : reserved
        case 10: return w & 0x7FF == 0 ? DecodedInstruction(op: .rdpgpr, rd: dest(rd), rt: t8) : reserved
        case 14: return w & 0x7FF == 0 ? DecodedInstruction(op: .wrpgpr, rd: dest(rd), rt: t8) : reserved
        case 11:
            guard rd == 12 && (w & 0x7DF) == 0 else { return reserved }
            return DecodedInstruction(op: w & 0x20 != 0 ? .ei : .di, rd: dest(rt), rt: t8)
        case 16...31:
            switch funct {
            case 1: return w & 0x01FF_FFC0 == 0 ? DecodedInstruction(op: .tlbr) : reserved
            case 2: return w & 0x01FF_FFC0 == 0 ? DecodedInstruction(op: .tlbwi) : reserved
            case 6: return w & 0x01FF_FFC0 == 0 ? DecodedInstruction(op: .tlbwr) : reserved
            case 8: return w & 0x01FF_FFC0 == 0 ? DecodedInstruction(op: .tlbp) : reserved
            case 24: return w & 0x01FF_FFC0 == 0 ? DecodedInstruction(op: .eret) : reserved
            case 31: return w & 0x01FF_FFC0 == 0 ? DecodedInstruction(op: .deret) : reserved
            case 32: return DecodedInstruction(op: .wait, imm: (w >> 6) & 0x7FFFF)
            default: return reserved
            }
        default: return reserved
        }
    case 17, 49, 53, 57, 61: return DecodedInstruction(op: .cop, rt: 1)  // COP1, LWC1, LDC1, SWC1, SDC1
    case 18, 50, 54, 58, 62: return DecodedInstruction(op: .cop, rt: 2)  // COP2, LWC2, LDC2, SWC2, SDC2
    case 19: return DecodedInstruction(op: .cop, rt: 1)  // COP1X
    case 20: return B(.beql)
    case 21: return B(.bnel)
    case 22: return rt == 0 ? B(.blezl) : reserved
    case 23: return rt == 0 ? B(.bgtzl) : reserved
    case 28:  // SPECIAL2
        switch funct {
        case 0: return rd == 0 && sa == 0 ? R(.madd) : reserved
        case 1: return rd == 0 && sa == 0 ? R(.maddu) : reserved
        case 2: return sa == 0 ? R(.mul) : reserved
        case 4: return rd == 0 && sa == 0 ? R(.msub) : reserved
        case 5: return rd == 0 && sa == 0 ? R(.msubu) : reserved
        case 32: return sa == 0 ? R(.clz) : reserved
        case 33: return sa == 0 ? R(.clo) : reserved
        case 63: return DecodedInstruction(op: .sdbbp, imm: (w >> 6) & 0xFFFFF)
        default: return reserved
        }
    case 31:  // SPECIAL3
        switch funct {
        case 0:  // EXT rt, rs, pos, size: size = msbd + 1
            let pos = sa, size = rd + 1
            guard pos + size <= 32 else { return reserved }
            let mask: UInt32 = size == 32 ? 0xFFFF_FFFF : (1 << size) - 1
            return DecodedInstruction(op: .ext, rd: dest(rt), rs: r8, rt: UInt8(pos), imm: mask)
        case 4:  // INS rt, rs, pos, size: msb = pos + size - 1
            let pos = sa, msb = rd
            guard msb >= pos else { return reserved }
            let size = msb - pos + 1
            let mask: UInt32 = size == 32 ? 0xFFFF_FFFF : (1 << size) - 1
            return DecodedInstruction(op: .ins, rd: dest(rt), rs: r8, rt: UInt8(pos), imm: mask)
        case 32:
            guard rs == 0 else { return reserved }
            switch sa {
            case 2: return R(.wsbh)
            case 16: return R(.seb)
            case 24: return R(.seh)
            default: return reserved
            }
        case 59:  // sel (bits 8..6, a MIPS32r6 field) is ignored, as by QEMU; llvm prints it
            return rs == 0 && sa & 0x18 == 0 ? DecodedInstruction(op: .rdhwr, rd: dest(rt), rs: UInt8(rd), rt: t8) : reserved
        default: return reserved
        }
    case 32: return I(.lb)
    case 33: return I(.lh)
    case 34: return I(.lwl)
    case 35: return I(.lw)
    case 36: return I(.lbu)
    case 37: return I(.lhu)
    case 38: return I(.lwr)
    case 40: return S(.sb)
    case 41: return S(.sh)
    case 42: return S(.swl)
    case 43: return S(.sw)
    case 46: return S(.swr)
    case 47: return S(.cache)
    case 48: return I(.ll)
    case 51: return S(.pref)
    case 56: return I(.sc)
    default: return reserved
    }
}
