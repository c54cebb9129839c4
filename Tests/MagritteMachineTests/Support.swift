import Foundation
import MagritteCore
import MagritteTestSupport
@testable import MagritteMachine

/// Host tools the tests use when present (clang and ld.lld ship with Swift; QEMU is optional).
enum Toolchain {
    static func find(_ name: String) -> String? { Tools.find(name) }

    static let clang = find("clang")
    static let lld = find("ld.lld")
    static let qemu = find("qemu-system-mipsel")
    static var hasClang: Bool { clang != nil && lld != nil }
    static var hasQEMU: Bool { qemu != nil && hasClang }

    /// Runs `tool`; returns its stdout, whether it exited with status 0, and its stderr.
    static func run(_ tool: String, _ arguments: [String], timeout: Double = 60) -> (out: Data, ok: Bool, error: String) {
        do {
            let r = try runProcess(tool, arguments, timeout: timeout)
            return (r.stdout, r.succeeded, r.err)
        } catch {
            return (Data(), false, "\(error)")
        }
    }
}

struct GuestBuildError: Error, CustomStringConvertible {
    let description: String
}

/// Builds bare-metal guests with the toolchain the design brief names: clang for
/// mipsel-unknown-none-elf and ld.lld, linked at 0x80100000 with entry `_start`.
enum Guest {
    static let cflags = ["--target=mipsel-unknown-none-elf", "-march=mips32r2", "-ffreestanding", "-nostdlib",
                         "-fno-pic", "-mno-abicalls", "-G0", "-O1", "-fno-builtin"]

    /// Compiles `sources` (file name → text; .c or .S) and links them in file-name order (so
    /// "crt0.S" comes first and `_start` sits at 0x80100000); returns the ELF path.
    ///
    /// Builds are cached under `$TMPDIR/magritte-machine-tests/` by a hash of the sources and
    /// flags, so reruns are fast and the temporary directory does not fill up; a finished ELF is
    /// moved into place atomically, so concurrent test runs cannot see a half-written file.
    static func build(_ name: String, _ sources: [String: String]) throws -> String {
        guard let clang = Toolchain.clang, let lld = Toolchain.lld else { throw GuestBuildError(description: "no clang") }
        let sorted = sources.sorted(by: { $0.key < $1.key })
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a
        for byte in (cflags + sorted.flatMap { [$0.key, $0.value] }).joined(separator: "\u{0}").utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
        }
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("magritte-machine-tests")
        let elf = cache.appendingPathComponent("\(name)-\(String(hash, radix: 16)).elf").path
        if FileManager.default.fileExists(atPath: elf) { return elf }

        let dir = cache.appendingPathComponent("build-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var objects: [String] = []
        for (file, text) in sorted {
            let src = dir.appendingPathComponent(file).path
            try text.write(toFile: src, atomically: true, encoding: .utf8)
            let obj = src + ".o"
            let r = Toolchain.run(clang, cflags + ["-c", src, "-o", obj])
            guard r.ok else { throw GuestBuildError(description: "clang failed on \(file): \(r.error)") }
            objects.append(obj)
        }
        let built = dir.appendingPathComponent(name + ".elf").path
        let r = Toolchain.run(lld, ["-m", "elf32ltsmip", "-Ttext=0x80100000", "-e", "_start", "-o", built] + objects)
        guard r.ok else { throw GuestBuildError(description: "ld.lld failed: \(r.error)") }
        guard rename(built, elf) == 0 else { throw GuestBuildError(description: "cannot move \(built) to \(elf)") }
        return elf
    }

    /// Runs `elf` on QEMU's Malta and returns the console output (CR removed).
    static func runOnQEMU(_ elf: String, memory: String = "128") -> String? {
        guard let qemu = Toolchain.qemu else { return nil }
        let r = Toolchain.run(qemu, ["-M", "malta", "-cpu", "24Kc", "-m", memory, "-nographic", "-no-reboot",
                                     "-kernel", elf], timeout: 30)
        return String(decoding: r.out, as: UTF8.self).replacingOccurrences(of: "\r", with: "")
    }

    /// A small C runtime: `_start` sets a stack and calls main, then powers off; console
    /// output by polling LSR.THRE.
    static let runtime = #"""
        .set noreorder
        .text
        .globl _start
    _start:
        lui   $sp, %hi(stack_top)
        addiu $sp, $sp, %lo(stack_top)
        jal   main
        nop
        .globl power_off
    power_off:
        lui   $t0, 0xBF00
        li    $t1, 0x42
        sw    $t1, 0x500($t0)
    1:  b 1b
        nop
        .bss
        .align 4
        .space 8192
    stack_top:
    """#

    static let consoleHeader = #"""
        #define UART ((volatile unsigned char *)0xB80003F8)
        static void putch(char c) { while (!(UART[5] & 0x20)) {} UART[0] = c; }
        static void puts_(const char *s) { while (*s) putch(*s++); }
        """#
}

/// Collects console output.
final class OutputBuffer {
    var bytes: [UInt8] = []
    var text: String { String(decoding: bytes, as: UTF8.self) }
    func append(_ b: UInt8) { bytes.append(b) }
}

/// A console input that hands out scripted chunks, then reports the end of input.
final class ScriptedInput: ConsoleInput {
    var chunks: [[UInt8]]
    var polls: [[UInt8]]
    private(set) var waits = 0

    init(polls: [String] = [], waits: [String] = []) {
        self.polls = polls.map { Array($0.utf8) }
        chunks = waits.map { Array($0.utf8) }
    }

    func poll() -> [UInt8] { polls.isEmpty ? [] : polls.removeFirst() }

    func waitForInput() -> [UInt8]? {
        waits += 1
        return chunks.isEmpty ? nil : chunks.removeFirst()
    }
}

/// Builds a minimal ELF32 little-endian MIPS executable by hand, so that each field can be
/// broken on purpose.
struct ELFBuilder {
    struct Segment {
        var type: UInt32 = 1
        var vaddr: UInt32
        var paddr: UInt32
        var data: [UInt8]
        var memsz: UInt32? = nil
        var flags: UInt32 = 5
    }

    var entry: UInt32 = 0x8010_0000
    var elfClass: UInt8 = 1
    var encoding: UInt8 = 1
    var type: UInt16 = 2
    var machine: UInt16 = 8
    var segments: [Segment]

    init(code: [UInt32] = ELFBuilder.powerOffProgram) {
        segments = [Segment(vaddr: 0x8010_0000, paddr: 0x8010_0000, data: code.flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } })]
    }

    /// Stores 0x42 to SOFTRES and spins: lui t0,0xbf00; li t1,0x42; sw t1,0x500(t0); b .; nop
    static let powerOffProgram: [UInt32] = [0x3C08_BF00, 0x2409_0042, 0xAD09_0500, 0x1000_FFFF, 0]

    /// Offset of program header `i` in the built file.
    static func programHeader(_ i: Int) -> Int { 52 + 32 * i }

    func build() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 52)
        func put16(_ o: Int, _ v: UInt16) { out[o] = UInt8(v & 0xFF); out[o + 1] = UInt8(v >> 8) }
        func put32(_ o: Int, _ v: UInt32) { for i in 0..<4 { out[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
        out[0] = 0x7F; out[1] = 0x45; out[2] = 0x4C; out[3] = 0x46
        out[4] = elfClass; out[5] = encoding; out[6] = 1
        put16(16, type); put16(18, machine); put32(20, 1); put32(24, entry)
        put32(28, 52); put32(32, 0); put32(36, 0x7000_1000)
        put16(40, 52); put16(42, 32); put16(44, UInt16(segments.count)); put16(46, 40); put16(48, 0); put16(50, 0)
        out += [UInt8](repeating: 0, count: 32 * segments.count)
        var offset = out.count
        var headers: [(Int, Int)] = []
        for s in segments {
            headers.append((offset, s.data.count))
            offset += s.data.count
        }
        for (i, s) in segments.enumerated() {
            let o = ELFBuilder.programHeader(i)
            put32(o, s.type); put32(o + 4, UInt32(headers[i].0)); put32(o + 8, s.vaddr); put32(o + 12, s.paddr)
            put32(o + 16, UInt32(s.data.count)); put32(o + 20, s.memsz ?? UInt32(s.data.count)); put32(o + 24, s.flags)
            put32(o + 28, 4)
        }
        for s in segments { out += s.data }
        return out
    }
}

extension Array where Element == UInt8 {
    mutating func put32(_ o: Int, _ v: UInt32) {
        for i in 0..<4 { self[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }
}

/// A deterministic random number generator (SplitMix64) for reproducible fuzzing.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
