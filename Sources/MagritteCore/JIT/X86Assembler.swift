/// A small x86-64 encoder: exactly the instructions the translator emits, nothing more.
///
/// Operands are 32-bit unless the name says `64`. A register-or-memory operand (`Operand`) is a
/// register (any of the sixteen; REX prefixes are added where a register is r8–r15) or
/// `[base + disp]` with any base. Byte registers are al, cl, dl, bl and r8b–r15b (never spl, bpl,
/// sil, dil, whose encodings need a REX prefix the others do not).
struct X86Assembler {
    enum Reg: UInt8 {
        case rax = 0, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15
        /// The three bits in ModRM/SIB/opcode.
        var low: UInt8 { rawValue & 7 }
        /// Needs REX.R/REX.B.
        var high: UInt8 { rawValue >> 3 }
    }

    /// Condition codes (the low nibble of Jcc/SETcc/CMOVcc).
    enum Cond: UInt8 {
        case o = 0, no, b, ae, e, ne, be, a, s, ns, p, np, l, ge, le, g
        var inverted: Cond { Cond(rawValue: rawValue ^ 1)! }
    }

    /// Group-1 ALU operations (the /digit of 0x81, and opcode base for the r/m forms).
    enum ALU: UInt8 { case add = 0, or, adc, sbb, and, sub, xor, cmp }

    /// Shift and rotate operations (the /digit of 0xC1 / 0xD3).
    enum Shift: UInt8 { case rol = 0, ror = 1, shl = 4, shr = 5, sar = 7 }

    /// Group-3 unary operations (the /digit of 0xF7).
    enum Unary: UInt8 { case not = 2, neg = 3, mul = 4, imul = 5, div = 6, idiv = 7 }

    struct Mem {
        var base: Reg
        var disp: Int32
    }

    /// A ModRM r/m operand: a register or memory.
    enum Operand: Equatable {
        case reg(Reg)
        case mem(Mem)

        static func == (a: Operand, b: Operand) -> Bool {
            switch (a, b) {
            case (.reg(let x), .reg(let y)): return x == y
            case (.mem(let x), .mem(let y)): return x.base == y.base && x.disp == y.disp
            default: return false
            }
        }

        var register: Reg? { if case .reg(let r) = self { return r } else { return nil } }
    }

    /// A forward jump whose rel32 is patched by `bind`.
    struct Fixup { let at: Int }

    var bytes: [UInt8] = []

    mutating func emit(_ b: UInt8) { bytes.append(b) }
    mutating func emit(_ b: UInt8, _ c: UInt8) { bytes.append(b); bytes.append(c) }

    mutating func emit32(_ v: UInt32) {
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }

    /// One instruction: [0x66] [REX] [0x0F] opcode ModRM [SIB] [disp]. `reg` is the ModRM reg
    /// field (a register number or a /digit).
    private mutating func op(_ opcode: UInt8, escape: Bool = false, reg: UInt8, _ rm: Operand,
                             wide: Bool = false, operand16: Bool = false) {
        if operand16 { emit(0x66) }
        let b: UInt8
        switch rm {
        case .reg(let r): b = r.high
        case .mem(let m): b = m.base.high
        }
        let rex = (wide ? 8 : 0) | (reg >> 3) << 2 | b
        if rex != 0 { emit(0x40 | rex) }
        if escape { emit(0x0F) }
        emit(opcode)
        switch rm {
        case .reg(let r):
            emit(0xC0 | (reg & 7) << 3 | r.low)
        case .mem(let m):
            let r = (reg & 7) << 3 | m.base.low
            let sib = m.base.low == 4  // rsp/r12 need a SIB byte
            if m.disp == 0 && m.base.low != 5 {  // rbp/r13 have no disp-less form
                emit(r)
                if sib { emit(0x24) }
            } else if m.disp >= -128 && m.disp <= 127 {
                emit(0x40 | r)
                if sib { emit(0x24) }
                emit(UInt8(bitPattern: Int8(m.disp)))
            } else {
                emit(0x80 | r)
                if sib { emit(0x24) }
                emit32(UInt32(bitPattern: m.disp))
            }
        }
    }

    private static func byteRegister(_ r: Reg) -> Bool { r.rawValue < 4 || r.rawValue >= 8 }

    // MARK: Moves

    mutating func mov(_ dst: Reg, _ src: Operand) { op(0x8B, reg: dst.rawValue, src) }
    mutating func mov(_ dst: Operand, _ src: Reg) { op(0x89, reg: src.rawValue, dst) }
    mutating func mov(_ dst: Reg, _ src: Mem) { mov(dst, .mem(src)) }
    mutating func mov(_ dst: Mem, _ src: Reg) { mov(.mem(dst), src) }
    mutating func mov(_ dst: Reg, _ src: Reg) { mov(.reg(dst), src) }
    /// mov r32, imm32 (xor r32, r32 for zero is left to the caller: it changes the flags).
    mutating func mov(_ dst: Reg, imm: UInt32) {
        if dst.high != 0 { emit(0x41) }
        emit(0xB8 + dst.low); emit32(imm)
    }
    mutating func mov(_ dst: Operand, imm: UInt32) {
        if case .reg(let r) = dst { mov(r, imm: imm) } else { op(0xC7, reg: 0, dst); emit32(imm) }
    }
    mutating func mov(_ dst: Mem, imm: UInt32) { mov(.mem(dst), imm: imm) }
    mutating func mov8(_ dst: Mem, imm: UInt8) { op(0xC6, reg: 0, .mem(dst)); emit(imm) }
    /// mov byte [m], r8 (al, cl, dl, bl, r8b–r15b).
    mutating func mov8(_ dst: Mem, _ src: Reg) {
        precondition(X86Assembler.byteRegister(src), "byte register without REX")
        op(0x88, reg: src.rawValue, .mem(dst))
    }
    mutating func mov16(_ dst: Mem, imm: UInt16) {
        op(0xC7, reg: 0, .mem(dst), operand16: true)
        emit(UInt8(truncatingIfNeeded: imm), UInt8(truncatingIfNeeded: imm >> 8))
    }
    mutating func mov16(_ dst: Mem, _ src: Reg) { op(0x89, reg: src.rawValue, .mem(dst), operand16: true) }
    mutating func mov64(_ dst: Reg, _ src: Mem) { op(0x8B, reg: dst.rawValue, .mem(src), wide: true) }
    mutating func mov64(_ dst: Mem, _ src: Reg) { op(0x89, reg: src.rawValue, .mem(dst), wide: true) }
    mutating func movzx8(_ dst: Reg, _ src: Operand) {
        if case .reg(let r) = src { precondition(X86Assembler.byteRegister(r), "byte register without REX") }
        op(0xB6, escape: true, reg: dst.rawValue, src)
    }
    mutating func movzx16(_ dst: Reg, _ src: Operand) { op(0xB7, escape: true, reg: dst.rawValue, src) }
    mutating func movsx8(_ dst: Reg, _ src: Operand) {
        if case .reg(let r) = src { precondition(X86Assembler.byteRegister(r), "byte register without REX") }
        op(0xBE, escape: true, reg: dst.rawValue, src)
    }
    mutating func movsx16(_ dst: Reg, _ src: Operand) { op(0xBF, escape: true, reg: dst.rawValue, src) }
    mutating func movzx8(_ dst: Reg, _ src: Mem) { movzx8(dst, .mem(src)) }
    mutating func movzx16(_ dst: Reg, _ src: Mem) { movzx16(dst, .mem(src)) }
    mutating func movsx8(_ dst: Reg, _ src: Mem) { movsx8(dst, .mem(src)) }
    mutating func movsx16(_ dst: Reg, _ src: Mem) { movsx16(dst, .mem(src)) }

    // MARK: Arithmetic

    mutating func alu(_ o: ALU, _ dst: Reg, _ src: Operand) { op(o.rawValue << 3 | 3, reg: dst.rawValue, src) }
    mutating func alu(_ o: ALU, _ dst: Operand, _ src: Reg) { op(o.rawValue << 3 | 1, reg: src.rawValue, dst) }
    mutating func alu(_ o: ALU, _ dst: Reg, _ src: Mem) { alu(o, dst, .mem(src)) }
    mutating func alu(_ o: ALU, _ dst: Mem, _ src: Reg) { alu(o, .mem(dst), src) }
    mutating func alu(_ o: ALU, _ dst: Reg, _ src: Reg) { alu(o, .reg(dst), src) }
    /// The group-1 immediate form, with a sign-extended 8-bit immediate where it fits.
    mutating func alu(_ o: ALU, _ dst: Operand, imm: UInt32) {
        let s = Int32(bitPattern: imm)
        if s >= -128 && s <= 127 {
            op(0x83, reg: o.rawValue, dst); emit(UInt8(bitPattern: Int8(s)))
        } else {
            op(0x81, reg: o.rawValue, dst); emit32(imm)
        }
    }
    /// The group-1 immediate form with a full 32-bit immediate (a field patched later).
    mutating func alu(_ o: ALU, _ dst: Operand, imm32: UInt32) { op(0x81, reg: o.rawValue, dst); emit32(imm32) }
    mutating func alu(_ o: ALU, _ dst: Reg, imm: UInt32) { alu(o, .reg(dst), imm: imm) }
    mutating func alu(_ o: ALU, _ dst: Mem, imm: UInt32) { alu(o, .mem(dst), imm: imm) }
    mutating func alu(_ o: ALU, _ dst: Mem, imm8: Int8) { alu(o, .mem(dst), imm: UInt32(bitPattern: Int32(imm8))) }
    /// The group-1 byte form with an 8-bit immediate (cmp byte [m], imm8).
    mutating func alu8(_ o: ALU, _ dst: Mem, imm: UInt8) { op(0x80, reg: o.rawValue, .mem(dst)); emit(imm) }
    mutating func alu64(_ o: ALU, _ dst: Reg, _ src: Mem) { op(o.rawValue << 3 | 3, reg: dst.rawValue, .mem(src), wide: true) }
    mutating func test(_ a: Operand, _ b: Reg) { op(0x85, reg: b.rawValue, a) }
    mutating func test(_ a: Reg, _ b: Reg) { test(.reg(a), b) }
    mutating func shift(_ o: Shift, _ dst: Operand, imm: UInt8) { op(0xC1, reg: o.rawValue, dst); emit(imm) }
    mutating func shift(_ o: Shift, _ dst: Reg, imm: UInt8) { shift(o, .reg(dst), imm: imm) }
    mutating func shiftByCL(_ o: Shift, _ dst: Operand) { op(0xD3, reg: o.rawValue, dst) }
    mutating func shiftByCL(_ o: Shift, _ dst: Reg) { shiftByCL(o, .reg(dst)) }
    mutating func unary(_ o: Unary, _ r: Operand) { op(0xF7, reg: o.rawValue, r) }
    mutating func unary(_ o: Unary, _ r: Reg) { unary(o, .reg(r)) }
    mutating func unary(_ o: Unary, _ m: Mem) { unary(o, .mem(m)) }
    mutating func imul(_ dst: Reg, _ src: Operand) { op(0xAF, escape: true, reg: dst.rawValue, src) }
    mutating func imul(_ dst: Reg, _ src: Mem) { imul(dst, .mem(src)) }
    mutating func bsr(_ dst: Reg, _ src: Operand) { op(0xBD, escape: true, reg: dst.rawValue, src) }
    mutating func bsr(_ dst: Reg, _ src: Reg) { bsr(dst, .reg(src)) }
    mutating func cdq() { emit(0x99) }
    /// setcc r8 (al, cl, dl, bl, r8b–r15b).
    mutating func set(_ c: Cond, _ dst: Reg) {
        precondition(X86Assembler.byteRegister(dst), "byte register without REX")
        op(0x90 | c.rawValue, escape: true, reg: 0, .reg(dst))
    }
    mutating func cmov(_ c: Cond, _ dst: Reg, _ src: Operand) { op(0x40 | c.rawValue, escape: true, reg: dst.rawValue, src) }
    mutating func cmov(_ c: Cond, _ dst: Reg, _ src: Reg) { cmov(c, dst, .reg(src)) }
    mutating func cmov(_ c: Cond, _ dst: Reg, _ src: Mem) { cmov(c, dst, .mem(src)) }

    /// lea r32, [base + disp] (32-bit: the address wraps as the guest's does).
    mutating func lea(_ dst: Reg, _ m: Mem) { op(0x8D, reg: dst.rawValue, .mem(m)) }

    /// lea r64, [rip + (target - end of this instruction)]: the host address of offset `target`.
    mutating func leaRIP(_ dst: Reg, target: Int) {
        emit(0x48 | dst.high << 2, 0x8D)
        emit(dst.low << 3 | 5)
        emit32(UInt32(bitPattern: Int32(target - (bytes.count + 4))))
    }

    /// mov r64, imm64.
    mutating func mov64(_ dst: Reg, imm: UInt64) {
        emit(0x48 | dst.high, 0xB8 + dst.low)
        for i in 0..<8 { emit(UInt8(truncatingIfNeeded: imm >> (8 * UInt64(i)))) }
    }
    mutating func mov64(_ dst: Reg, _ src: Reg) { op(0x89, reg: src.rawValue, .reg(dst), wide: true) }

    // MARK: Control

    mutating func ret() { emit(0xC3) }

    mutating func push(_ r: Reg) {
        if r.high != 0 { emit(0x41) }
        emit(0x50 + r.low)
    }
    mutating func pop(_ r: Reg) {
        if r.high != 0 { emit(0x41) }
        emit(0x58 + r.low)
    }

    /// jmp r64.
    mutating func jmp(_ r: Reg) { op(0xFF, reg: 4, .reg(r)) }

    /// call qword [base + disp].
    mutating func call(_ m: Mem) { op(0xFF, reg: 2, .mem(m)) }

    /// jcc rel32 to a label bound later.
    mutating func jcc(_ c: Cond) -> Fixup {
        emit(0x0F, 0x80 | c.rawValue); emit32(0)
        return Fixup(at: bytes.count)
    }

    /// jmp rel32 to a label bound later.
    mutating func jmp() -> Fixup {
        emit(0xE9); emit32(0)
        return Fixup(at: bytes.count)
    }

    /// Points the jump `f` at the current position.
    mutating func bind(_ f: Fixup) { bind(f, to: bytes.count) }

    mutating func bind(_ f: Fixup, to target: Int) {
        let rel = UInt32(bitPattern: Int32(target - f.at))
        for i in 0..<4 { bytes[f.at - 4 + i] = UInt8(truncatingIfNeeded: rel >> (8 * UInt32(i))) }
    }
}
