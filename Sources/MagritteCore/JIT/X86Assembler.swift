/// A small x86-64 encoder: exactly the instructions the translator emits, nothing more.
///
/// Operands are 32-bit unless the name says `64`. Memory operands are `[base + disp]` with a
/// base among rax, rcx, rdx, rbx, rsi, rdi (never rsp/rbp/r12/r13, which need SIB or special
/// forms); no REX prefix other than REX.W is ever needed, so only the first eight registers exist.
struct X86Assembler {
    enum Reg: UInt8 { case rax = 0, rcx, rdx, rbx, rsp, rbp, rsi, rdi }

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

    /// A forward jump whose rel32 is patched by `bind`.
    struct Fixup { let at: Int }

    var bytes: [UInt8] = []

    mutating func emit(_ b: UInt8...) { bytes.append(contentsOf: b) }

    mutating func emit32(_ v: UInt32) {
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }

    private mutating func modrm(_ reg: UInt8, _ m: Mem) {
        precondition(m.base != .rsp && m.base != .rbp, "base register needs SIB or disp form")
        let r = (reg & 7) << 3 | m.base.rawValue
        if m.disp == 0 {
            emit(r)
        } else if m.disp >= -128 && m.disp <= 127 {
            emit(0x40 | r, UInt8(bitPattern: Int8(m.disp)))
        } else {
            emit(0x80 | r)
            emit32(UInt32(bitPattern: m.disp))
        }
    }

    private mutating func modrm(_ reg: UInt8, _ rm: Reg) { emit(0xC0 | (reg & 7) << 3 | rm.rawValue) }

    // MARK: Moves

    mutating func mov(_ dst: Reg, _ src: Mem) { emit(0x8B); modrm(dst.rawValue, src) }
    mutating func mov(_ dst: Mem, _ src: Reg) { emit(0x89); modrm(src.rawValue, dst) }
    mutating func mov(_ dst: Reg, _ src: Reg) { emit(0x89); modrm(src.rawValue, dst) }
    mutating func mov(_ dst: Reg, imm: UInt32) { emit(0xB8 + dst.rawValue); emit32(imm) }
    mutating func mov(_ dst: Mem, imm: UInt32) { emit(0xC7); modrm(0, dst); emit32(imm) }
    mutating func mov8(_ dst: Mem, imm: UInt8) { emit(0xC6); modrm(0, dst); emit(imm) }
    /// mov byte [m], r8 (al, cl, dl, bl only).
    mutating func mov8(_ dst: Mem, _ src: Reg) {
        precondition(src.rawValue < 4, "byte register without REX")
        emit(0x88); modrm(src.rawValue, dst)
    }
    mutating func mov16(_ dst: Mem, _ src: Reg) { emit(0x66, 0x89); modrm(src.rawValue, dst) }
    mutating func mov64(_ dst: Reg, _ src: Mem) { emit(0x48, 0x8B); modrm(dst.rawValue, src) }
    mutating func mov64(_ dst: Mem, _ src: Reg) { emit(0x48, 0x89); modrm(src.rawValue, dst) }
    mutating func movzx8(_ dst: Reg, _ src: Mem) { emit(0x0F, 0xB6); modrm(dst.rawValue, src) }
    mutating func movzx16(_ dst: Reg, _ src: Mem) { emit(0x0F, 0xB7); modrm(dst.rawValue, src) }
    mutating func movsx8(_ dst: Reg, _ src: Mem) { emit(0x0F, 0xBE); modrm(dst.rawValue, src) }
    mutating func movsx16(_ dst: Reg, _ src: Mem) { emit(0x0F, 0xBF); modrm(dst.rawValue, src) }

    // MARK: Arithmetic

    mutating func alu(_ op: ALU, _ dst: Reg, _ src: Mem) { emit(op.rawValue << 3 | 3); modrm(dst.rawValue, src) }
    mutating func alu(_ op: ALU, _ dst: Mem, _ src: Reg) { emit(op.rawValue << 3 | 1); modrm(src.rawValue, dst) }
    mutating func alu(_ op: ALU, _ dst: Reg, _ src: Reg) { emit(op.rawValue << 3 | 1); modrm(src.rawValue, dst) }
    mutating func alu(_ op: ALU, _ dst: Reg, imm: UInt32) { emit(0x81); modrm(op.rawValue, dst); emit32(imm) }
    mutating func alu(_ op: ALU, _ dst: Mem, imm: UInt32) { emit(0x81); modrm(op.rawValue, dst); emit32(imm) }
    mutating func alu(_ op: ALU, _ dst: Mem, imm8: Int8) { emit(0x83); modrm(op.rawValue, dst); emit(UInt8(bitPattern: imm8)) }
    mutating func alu64(_ op: ALU, _ dst: Reg, _ src: Mem) { emit(0x48, op.rawValue << 3 | 3); modrm(dst.rawValue, src) }
    mutating func test(_ a: Reg, _ b: Reg) { emit(0x85); modrm(b.rawValue, a) }
    mutating func shift(_ op: Shift, _ dst: Reg, imm: UInt8) { emit(0xC1); modrm(op.rawValue, dst); emit(imm) }
    mutating func shiftByCL(_ op: Shift, _ dst: Reg) { emit(0xD3); modrm(op.rawValue, dst) }
    mutating func unary(_ op: Unary, _ r: Reg) { emit(0xF7); modrm(op.rawValue, r) }
    mutating func unary(_ op: Unary, _ m: Mem) { emit(0xF7); modrm(op.rawValue, m) }
    mutating func imul(_ dst: Reg, _ src: Mem) { emit(0x0F, 0xAF); modrm(dst.rawValue, src) }
    mutating func bsr(_ dst: Reg, _ src: Reg) { emit(0x0F, 0xBD); modrm(dst.rawValue, src) }
    mutating func cdq() { emit(0x99) }
    /// setcc r8 (al, cl, dl, bl only).
    mutating func set(_ c: Cond, _ dst: Reg) {
        precondition(dst.rawValue < 4, "byte register without REX")
        emit(0x0F, 0x90 | c.rawValue); modrm(0, dst)
    }
    mutating func cmov(_ c: Cond, _ dst: Reg, _ src: Reg) { emit(0x0F, 0x40 | c.rawValue); modrm(dst.rawValue, src) }
    mutating func cmov(_ c: Cond, _ dst: Reg, _ src: Mem) { emit(0x0F, 0x40 | c.rawValue); modrm(dst.rawValue, src) }

    /// lea r64, [rip + (target - end of this instruction)]: the host address of offset `target`.
    mutating func leaRIP(_ dst: Reg, target: Int) {
        emit(0x48, 0x8D, (dst.rawValue & 7) << 3 | 5)
        emit32(UInt32(bitPattern: Int32(target - (bytes.count + 4))))
    }

    // MARK: Control

    mutating func ret() { emit(0xC3) }

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
