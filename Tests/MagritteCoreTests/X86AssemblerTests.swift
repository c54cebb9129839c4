import Foundation
import Testing
@testable import MagritteCore

/// The translator's x86-64 encoder, checked by an oracle nobody here wrote: the bytes it emits
/// are disassembled by the toolchain's `llvm-objdump` and must read back as the instruction meant.
@Suite("x86-64 encoder")
struct X86AssemblerTests {
    typealias A = X86Assembler

    /// Each case: what to emit, and llvm-objdump's Intel-syntax text for it.
    static let cases: [(String, @Sendable (inout A) -> Void)] = [
        ("mov eax, dword ptr [rdi + 0x7c]", { $0.mov(.rax, A.Mem(base: .rdi, disp: 124)) }),
        ("mov dword ptr [rdi + 0x80], eax", { $0.mov(A.Mem(base: .rdi, disp: 128), .rax) }),
        ("mov dword ptr [rsi + 0x10], 0x80100008", { $0.mov(A.Mem(base: .rsi, disp: 16), imm: 0x8010_0008) }),
        ("mov ecx, 0x1f", { $0.mov(.rcx, imm: 31) }),
        ("mov edx, eax", { $0.mov(.rdx, .rax) }),
        ("mov byte ptr [rsi + 0x14], 0x1", { $0.mov8(A.Mem(base: .rsi, disp: 20), imm: 1) }),
        ("mov byte ptr [rax], dl", { $0.mov8(A.Mem(base: .rax, disp: 0), .rdx) }),
        ("mov word ptr [rax], dx", { $0.mov16(A.Mem(base: .rax, disp: 0), .rdx) }),
        ("mov rdx, qword ptr [rcx + 0x1008]", { $0.mov64(.rdx, A.Mem(base: .rcx, disp: 0x1008)) }),
        ("movzx eax, byte ptr [rax]", { $0.movzx8(.rax, A.Mem(base: .rax, disp: 0)) }),
        ("movsx eax, word ptr [rax]", { $0.movsx16(.rax, A.Mem(base: .rax, disp: 0)) }),
        ("movsx eax, byte ptr [rdi + 0x8]", { $0.movsx8(.rax, A.Mem(base: .rdi, disp: 8)) }),
        ("movzx eax, word ptr [rax]", { $0.movzx16(.rax, A.Mem(base: .rax, disp: 0)) }),
        ("add eax, dword ptr [rdi + 0x4]", { $0.alu(.add, .rax, A.Mem(base: .rdi, disp: 4)) }),
        ("sub eax, dword ptr [rdi + 0x8]", { $0.alu(.sub, .rax, A.Mem(base: .rdi, disp: 8)) }),
        ("cmp edx, dword ptr [rcx + 0x1000]", { $0.alu(.cmp, .rdx, A.Mem(base: .rcx, disp: 0x1000)) }),
        ("and eax, 0xff00ff00", { $0.alu(.and, .rax, imm: 0xFF00_FF00) }),
        ("xor ecx, ecx", { $0.alu(.xor, .rcx, .rcx) }),
        ("or eax, ecx", { $0.alu(.or, .rax, .rcx) }),
        ("adc dword ptr [rsi], edx", { $0.alu(.adc, A.Mem(base: .rsi, disp: 0), .rdx) }),
        ("sbb dword ptr [rsi + 0x4], edx", { $0.alu(.sbb, A.Mem(base: .rsi, disp: 4), .rdx) }),
        ("cmp dword ptr [rdi + 0x24], 0x0", { $0.alu(.cmp, A.Mem(base: .rdi, disp: 36), imm8: 0) }),
        ("add rcx, qword ptr [rsi + 0x18]", { $0.alu64(.add, .rcx, A.Mem(base: .rsi, disp: 24)) }),
        ("test ecx, ecx", { $0.test(.rcx, .rcx) }),
        ("shr ecx, 0x8", { $0.shift(.shr, .rcx, imm: 8) }),
        ("ror eax, 0x3", { $0.shift(.ror, .rax, imm: 3) }),
        ("sar eax, cl", { $0.shiftByCL(.sar, .rax) }),
        ("not eax", { $0.unary(.not, .rax) }),
        ("imul dword ptr [rdi + 0xc]", { $0.unary(.imul, A.Mem(base: .rdi, disp: 12)) }),
        ("div ecx", { $0.unary(.div, .rcx) }),
        ("idiv ecx", { $0.unary(.idiv, .rcx) }),
        ("imul eax, dword ptr [rdi + 0xc]", { $0.imul(.rax, A.Mem(base: .rdi, disp: 12)) }),
        ("bsr eax, eax", { $0.bsr(.rax, .rax) }),
        ("cdq", { $0.cdq() }),
        ("setl cl", { $0.set(.l, .rcx) }),
        ("setb cl", { $0.set(.b, .rcx) }),
        ("cmove ecx, edx", { $0.cmov(.e, .rcx, .rdx) }),
        ("cmovne ecx, dword ptr [rdi + 0x10]", { $0.cmov(.ne, .rcx, A.Mem(base: .rdi, disp: 16)) }),
        ("add dword ptr [rsi + 0x24], 0x5", { $0.alu(.add, A.Mem(base: .rsi, disp: 36), imm: 5) }),
        ("mov qword ptr [rsi + 0x28], rax", { $0.mov64(A.Mem(base: .rsi, disp: 40), .rax) }),
        ("lea rax, [rip - 0x7]", { $0.leaRIP(.rax, target: $0.bytes.count) }),
        ("ret", { $0.ret() }),
        // The call out (JITTranslator.emitCallOuts).
        ("movabs rdx, 0x123456789abcdef0", { $0.mov64(.rdx, imm: 0x1234_5678_9ABC_DEF0) }),
        ("movabs r9, 0x1", { $0.mov64(.r9, imm: 1) }),
        ("mov rdi, rsi", { $0.mov64(.rdi, .rsi) }),
        ("mov r8, rdx", { $0.mov64(.r8, .rdx) }),
        ("push rax", { $0.push(.rax) }),
        ("push r11", { $0.push(.r11) }),
        ("pop rsi", { $0.pop(.rsi) }),
        ("pop r10", { $0.pop(.r10) }),
        ("call qword ptr [rdi + 0x68]", { $0.call(A.Mem(base: .rdi, disp: 0x68)) }),
        ("jmp rcx", { $0.jmp(.rcx) }),
        ("jmp r9", { $0.jmp(.r9) }),
        // r8–r15 (REX.R / REX.B), short immediates, and the bases that need SIB or a displacement.
        ("mov r8d, dword ptr [rdi + 0x10]", { $0.mov(.r8, A.Mem(base: .rdi, disp: 16)) }),
        ("mov dword ptr [rdi + 0x7c], r11d", { $0.mov(A.Mem(base: .rdi, disp: 124), .r11) }),
        ("mov r10d, eax", { $0.mov(.r10, .rax) }),
        ("mov eax, r9d", { $0.mov(.rax, .r9) }),
        ("mov r11d, 0x12345678", { $0.mov(.r11, imm: 0x1234_5678) }),
        ("add eax, r9d", { $0.alu(.add, .rax, .reg(.r9)) }),
        ("sub r8d, dword ptr [rdi + 0x4]", { $0.alu(.sub, .r8, A.Mem(base: .rdi, disp: 4)) }),
        ("cmp r10d, 0x0", { $0.alu(.cmp, .reg(.r10), imm: 0) }),
        ("add eax, 0x7f", { $0.alu(.add, .rax, imm: 127) }),
        ("add eax, 0x80", { $0.alu(.add, .rax, imm: 128) }),
        ("and ecx, -0x4", { $0.alu(.and, .rcx, imm: 0xFFFF_FFFC) }),
        ("sub eax, 0x3", { $0.alu(.sub, .reg(.rax), imm32: 3) }),
        ("movsx eax, r8b", { $0.movsx8(.rax, .reg(.r8)) }),
        ("movzx ecx, r11w", { $0.movzx16(.rcx, .reg(.r11)) }),
        ("movzx r9d, cl", { $0.movzx8(.r9, .reg(.rcx)) }),
        ("setl r9b", { $0.set(.l, .r9) }),
        ("cmovne ecx, r8d", { $0.cmov(.ne, .rcx, .reg(.r8)) }),
        ("imul r9d", { $0.unary(.imul, .reg(.r9)) }),
        ("imul eax, r10d", { $0.imul(.rax, .reg(.r10)) }),
        ("shl r8d, cl", { $0.shiftByCL(.shl, .reg(.r8)) }),
        ("sar r11d, 0x1f", { $0.shift(.sar, .reg(.r11), imm: 31) }),
        ("bsr eax, r9d", { $0.bsr(.rax, .reg(.r9)) }),
        ("test r8d, edx", { $0.test(.reg(.r8), .rdx) }),
        ("mov byte ptr [rax], r10b", { $0.mov8(A.Mem(base: .rax, disp: 0), .r10) }),
        ("mov word ptr [rsi + 0x14], 0x100", { $0.mov16(A.Mem(base: .rsi, disp: 20), imm: 0x100) }),
        ("mov eax, dword ptr [rsp + 0x8]", { $0.mov(.rax, A.Mem(base: .rsp, disp: 8)) }),
        ("mov eax, dword ptr [r12]", { $0.mov(.rax, A.Mem(base: .r12, disp: 0)) }),
        ("mov eax, dword ptr [r13]", { $0.mov(.rax, A.Mem(base: .r13, disp: 0)) }),
        ("mov eax, dword ptr [rbp + 0x1000]", { $0.mov(.rax, A.Mem(base: .rbp, disp: 4096)) }),
        ("mov r9, qword ptr [r14 - 0x8]", { $0.mov64(.r9, A.Mem(base: .r14, disp: -8)) }),
        ("cmp byte ptr [rsi + 0x30], 0x0", { $0.alu8(.cmp, A.Mem(base: .rsi, disp: 48), imm: 0) }),
        ("lea eax, [r8 + 0x10]", { $0.lea(.rax, A.Mem(base: .r8, disp: 16)) }),
        ("lea eax, [r11 - 0x8000]", { $0.lea(.rax, A.Mem(base: .r11, disp: -32768)) }),
        ("lea r8, [rip - 0x7]", { $0.leaRIP(.r8, target: $0.bytes.count) }),
    ]

    @Test("Encodings read back through llvm-objdump")
    func encodingsMatchObjdump() throws {
        let objdump = Toolchain.find("llvm-objdump")
        try #require(objdump != nil, "llvm-objdump (the oracle) is not installed")
        var a = A()
        for (_, emit) in Self.cases { emit(&a) }
        // A forward jump, bound to the ret that follows it.
        let f = a.jcc(.o)
        a.bind(f)
        a.ret()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("magritte-x86-\(UUID().uuidString).bin")
        try Data(a.bytes).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let text = try Self.disassemble(objdump!, file.path)
        let expected = Self.cases.map(\.0) + ["jo 0x\(String(a.bytes.count - 1, radix: 16))", "ret"]
        #expect(text == expected)
    }

    @Test("A translated guest block disassembles completely")
    func blockDisassembles() throws {
        let objdump = try #require(Toolchain.find("llvm-objdump"), "llvm-objdump (the oracle) is not installed")
        // lw; addu; sw; beq; the delay slot's mult; syscall (not translated: the block goes on
        // past the conditional branch and ends there).
        let words: [UInt32] = [0x8E08_0004, 0x0109_5021, 0xAE0A_0008, 0x1109_FFFC, 0x0109_0018, 0x0000_000C]
        var page = [UInt32](repeating: 0, count: 1024)
        for (i, w) in words.enumerated() { page[i] = w }
        let block = try #require(page.withUnsafeBufferPointer { JITTranslator.translate(pc: 0x8010_0000, words: $0.baseAddress!) })
        #expect(block.instructions == 5)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("magritte-block-\(UUID().uuidString).bin")
        try Data(block.code).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let text = try Self.disassemble(objdump, file.path)
        #expect(!text.contains { $0.contains("(bad)") || $0.contains("<unknown>") })
        #expect(text.filter { $0 == "ret" }.count >= 2)  // the end and the soft-TLB miss exits
    }

    @Test("MAGRITTE_JIT_DUMP's files hold the block's code; an unwritable directory changes nothing")
    func dumpedBlocks() throws {
        var page = [UInt32](repeating: 0x0000_000C, count: 1024)  // syscall: not translated
        page[1] = 0x2508_0001  // addiu $8, $8, 1
        page[2] = 0x8D09_0000  // lw $9, 0($8)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("magritte-dump-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let block = try #require(page.withUnsafeBufferPointer { JITTranslator.translate(pc: 0x8010_0004, words: $0.baseAddress!, dumpTo: dir.path) })
        #expect(block.instructions == 2)
        let file = try Data(contentsOf: dir.appendingPathComponent("80100004.bin"))
        #expect([UInt8](file) == block.code)
        let missing = dir.appendingPathComponent("no/such/dir").path
        let again = page.withUnsafeBufferPointer { JITTranslator.translate(pc: 0x8010_0004, words: $0.baseAddress!, dumpTo: missing) }
        #expect(again?.code == block.code)
        #expect(!FileManager.default.fileExists(atPath: missing))
    }

    /// llvm-objdump's Intel-syntax instructions of raw x86-64 bytes (wrapped into an ELF object
    /// by llvm-objcopy, as llvm-objdump reads no raw files), without addresses and bytes.
    static func disassemble(_ objdump: String, _ path: String) throws -> [String] {
        let objcopy = try #require(Toolchain.find("llvm-objcopy"), "llvm-objcopy is not installed")
        let object = path + ".o"
        defer { try? FileManager.default.removeItem(atPath: object) }
        try Toolchain.run(objcopy, ["-I", "binary", "-O", "elf64-x86-64", path, object])
        let p = Process()
        p.executableURL = URL(fileURLWithPath: objdump)
        p.arguments = ["-d", "-j", ".data", "--no-show-raw-insn", "-M", "intel", "--print-imm-hex", object]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = Pipe()
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        return lines.compactMap { line -> String? in
            let parts = line.split(separator: "\t", maxSplits: 1)
            let address = parts.first?.trimmingCharacters(in: .whitespaces) ?? ""
            guard parts.count == 2, address.hasSuffix(":"), UInt64(address.dropLast(), radix: 16) != nil else { return nil }
            var text = parts[1].replacingOccurrences(of: "\t", with: " ")
            for marker in [" <", " #"] {
                if let r = text.range(of: marker) { text = String(text[..<r.lowerBound]) }
            }
            return text.trimmingCharacters(in: .whitespaces)
        }
    }
}
