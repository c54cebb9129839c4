import Foundation
import MagritteTestSupport

/// Assembles MIPS source with the toolchain's clang into a flat binary linked at 0x80100000
/// (for core tests). Returns nil when clang/ld.lld/llvm-objcopy cannot be found.
func assemble(_ source: String) throws -> [UInt32]? {
    guard let clang = Toolchain.find("clang"), let lld = Toolchain.find("ld.lld"), let objcopy = Toolchain.find("llvm-objcopy") else {
        return nil
    }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("magritte-asm-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let src = dir.appendingPathComponent("t.S"), obj = dir.appendingPathComponent("t.o")
    let elf = dir.appendingPathComponent("t.elf"), bin = dir.appendingPathComponent("t.bin")
    try (".set noreorder\n.set noat\n.text\n.globl _start\n_start:\n" + source + "\n").write(to: src, atomically: true, encoding: .utf8)
    try Toolchain.run(clang, ["--target=mipsel-unknown-none-elf", "-march=mips32r2", "-c", src.path, "-o", obj.path])
    try Toolchain.run(lld, ["-m", "elf32ltsmip", "-Ttext=0x80100000", "-e", "_start", obj.path, "-o", elf.path])
    try Toolchain.run(objcopy, ["-O", "binary", elf.path, bin.path])
    let data = try Data(contentsOf: bin)
    let bytes = [UInt8](data)
    var words: [UInt32] = []
    for i in stride(from: 0, to: bytes.count & ~3, by: 4) {
        let b0 = UInt32(bytes[i]), b1 = UInt32(bytes[i + 1]) << 8
        let b2 = UInt32(bytes[i + 2]) << 16, b3 = UInt32(bytes[i + 3]) << 24
        words.append(b0 | b1 | b2 | b3)
    }
    return words
}

enum Toolchain {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Finds a tool next to `swift` (the toolchain's own LLVM) or on PATH.
    static func find(_ name: String) -> String? { Tools.find(name) }

    static func run(_ tool: String, _ args: [String]) throws {
        let r = try runProcess(tool, args, timeout: 120)
        if !r.succeeded { throw Failure(description: "\(tool) failed: \(r.err)") }
    }
}
