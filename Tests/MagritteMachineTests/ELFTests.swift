import Foundation
import Testing
import MagritteCore
@testable import MagritteMachine

/// The ELF loader: one test per error kind (each file broken by hand), a positive test on a
/// clang-built program, and random mutations that must never crash.
@Suite struct ELFTests {
    /// Parses `bytes` and validates them for a 128 MiB board; returns the error kind.
    func kind(_ bytes: [UInt8], ramSize: Int = 128 << 20) -> ELFError.Kind? {
        do {
            let image = try ELFImage(bytes: bytes)
            try image.validate(ramSize: ramSize)
            return nil
        } catch {
            #expect(!error.message.isEmpty)
            return error.kind
        }
    }

    @Test func handBuiltFileLoads() throws {
        let image = try ELFImage(bytes: ELFBuilder().build(), name: "hand.elf")
        #expect(image.entry == 0x8010_0000)
        #expect(image.segments.count == 1)
        #expect(image.segments[0].physicalAddress == 0x0010_0000)
        #expect(image.sections.isEmpty && image.symbols.isEmpty)
        try image.validate(ramSize: 128 << 20)
    }

    @Test func tooSmall() {
        #expect(kind([]) == .truncated)
        #expect(kind([0x7F, 0x45]) == .truncated)
        #expect(kind(Array(ELFBuilder().build().prefix(40))) == .truncated)
    }

    @Test func badMagic() {
        var b = ELFBuilder().build()
        b[1] = UInt8(ascii: "X")
        #expect(kind(b) == .badMagic)
        #expect(kind(Array("#!/bin/sh\necho hello\n".utf8)) == .badMagic)
    }

    @Test func elf64IsWrongClass() throws {
        var e = ELFBuilder()
        e.elfClass = 2
        #expect(kind(e.build()) == .wrongClass)
        let error = try #require(throws: ELFError.self) { try ELFImage(bytes: e.build()) }
        #expect(error.message.contains("ELF64"))
    }

    @Test func bigEndianIsWrongEndianness() {
        var e = ELFBuilder()
        e.encoding = 2
        #expect(kind(e.build()) == .wrongEndianness)
    }

    @Test func otherMachine() {
        var e = ELFBuilder()
        e.machine = 62
        #expect(kind(e.build()) == .wrongMachine)
    }

    @Test func relocatableObjectIsNotExecutable() throws {
        var e = ELFBuilder()
        e.type = 1
        #expect(kind(e.build()) == .notExecutable)
        e.type = 3
        let error = try #require(throws: ELFError.self) { try ELFImage(bytes: e.build()) }
        #expect(error.kind == .notExecutable)
        #expect(error.message.contains("shared object"))
    }

    @Test func programHeadersOutOfBounds() {
        var b = ELFBuilder().build()
        b.put32(28, UInt32(b.count - 16))  // e_phoff near the end
        #expect(kind(b) == .programHeadersOutOfBounds)
        var c = ELFBuilder().build()
        c[44] = 0xFF; c[45] = 0xFF  // e_phnum = 65535
        #expect(kind(c) == .programHeadersOutOfBounds)
        var d = ELFBuilder().build()
        d[42] = 16  // e_phentsize
        #expect(kind(d) == .programHeadersOutOfBounds)
    }

    @Test func noLoadableSegments() {
        var e = ELFBuilder()
        e.segments[0].type = 4  // PT_NOTE
        #expect(kind(e.build()) == .noLoadableSegments)
    }

    @Test func segmentFileRangeOutsideFile() {
        var b = ELFBuilder().build()
        b.put32(ELFBuilder.programHeader(0) + 4, 0xFFFF_FF00)  // p_offset
        #expect(kind(b) == .segmentOutsideFile)
        var c = ELFBuilder().build()
        c.put32(ELFBuilder.programHeader(0) + 16, 0x1000)  // p_filesz past the end
        c.put32(ELFBuilder.programHeader(0) + 20, 0x1000)
        #expect(kind(c) == .segmentOutsideFile)
    }

    @Test func segmentOutsideRAM() {
        var e = ELFBuilder()
        e.segments[0].paddr = 0x8800_0000  // physical 0x08000000: just past 128 MiB
        e.segments[0].vaddr = 0x8800_0000
        e.entry = 0x8800_0000
        #expect(kind(e.build()) == .segmentOutsideRAM)
        #expect(kind(e.build(), ramSize: 256 << 20) == nil)
        var f = ELFBuilder()
        f.segments[0].memsz = 0x0800_0000  // runs past the end of 128 MiB from 1 MiB
        #expect(kind(f.build()) == .segmentOutsideRAM)
    }

    @Test func overlappingSegments() {
        var e = ELFBuilder()
        var second = e.segments[0]
        second.vaddr = 0x8010_0010
        second.paddr = 0x8010_0010
        e.segments.append(second)
        #expect(kind(e.build()) == .overlappingSegments)
        // The same physical memory through kseg0 and kseg1 overlaps too.
        var f = ELFBuilder()
        var alias = f.segments[0]
        alias.vaddr = 0xA010_0000
        alias.paddr = 0xA010_0000
        f.segments.append(alias)
        #expect(kind(f.build()) == .overlappingSegments)
    }

    @Test func absurdSizes() {
        var e = ELFBuilder()
        e.segments[0].memsz = 4  // smaller than the file size
        #expect(kind(e.build()) == .badSegmentSize)
        var f = ELFBuilder()
        f.segments[0].memsz = 0x2000_0000  // 512 MiB
        #expect(kind(f.build()) == .badSegmentSize)
        var g = ELFBuilder()
        g.segments[0].memsz = 0x0900_0000  // 144 MiB: fits no 128 MiB board
        #expect(kind(g.build()) == .badSegmentSize)
        var h = ELFBuilder()
        h.segments[0].vaddr = 0xFFFF_FFF0  // wraps around
        h.entry = 0xFFFF_FFF0
        #expect(kind(h.build()) == .badSegmentSize)
    }

    @Test func entryOutsideSegments() {
        var e = ELFBuilder()
        e.entry = 0x8020_0000
        #expect(kind(e.build()) == .entryOutsideSegments)
    }

    @Test func segmentOverBootParameters() {
        var e = ELFBuilder()
        e.segments[0].vaddr = 0x8000_1000
        e.segments[0].paddr = 0x8000_1000
        e.segments[0].memsz = 0x2000
        e.entry = 0x8000_1000
        #expect(kind(e.build()) == .overlapsBootParameters)
    }

    @Test func unreadableFile() throws {
        let error = try #require(throws: ELFError.self) { try ELFImage(contentsOfFile: "/nonexistent/kernel.elf") }
        #expect(error.kind == .unreadable)
        #expect(error.message.contains("No such file"))
        let dir = try #require(throws: ELFError.self) { try ELFImage(contentsOfFile: "/tmp") }
        #expect(dir.kind == .unreadable)
    }

    @Test func bssIsZeroedOnLoad() throws {
        var e = ELFBuilder()
        e.segments[0].memsz = 0x100
        let malta = Malta()
        // Dirty the bss area first: loading must clear it.
        [UInt8](repeating: 0xAA, count: 0x100).withUnsafeBytes { _ = malta.bus.copyToRAM($0, at: 0x10_0000) }
        try malta.load(elf: ELFImage(bytes: e.build()))
        let ram = try #require(malta.bus.readRAM(at: 0x10_0000, count: 0x100))
        #expect(ram[0..<4] == [0x00, 0xBF, 0x08, 0x3C])
        #expect(ram[20...].allSatisfy { $0 == 0 })
    }

    @Test(.enabled(if: Toolchain.hasClang, "needs clang and ld.lld"))
    func clangBuiltProgram() throws {
        let path = try Guest.build("symbols", [
            "crt0.S": Guest.runtime,
            "main.c": Guest.consoleHeader + """
                int counter = 7;
                static int table[64];
                int main(void) { table[3] = counter; puts_("symbols\\n"); return table[3]; }
                """,
        ])
        let image = try ELFImage(contentsOfFile: path)
        #expect(image.name == path)
        #expect(image.entry == 0x8010_0000)
        let names = Set(image.symbols.map(\.name))
        #expect(names.isSuperset(of: ["_start", "main", "counter", "power_off"]))
        #expect(image.symbols.first { $0.name == "main" }?.kind == .function)
        #expect(image.symbols.first { $0.name == "counter" }?.kind == .object)
        #expect(image.symbols == image.symbols.sorted { $0.address < $1.address || ($0.address == $1.address && $0.name <= $1.name) })
        #expect(image.symbolize(0x8010_0004) == "_start+0x4")
        #expect(image.sections.contains { $0.name == ".text" && $0.isExecutableCode })
        // lld also emits a read-only segment for the headers at 0x00010000 (physical 0x10000).
        #expect(image.segments.contains { $0.isExecutable && $0.virtualAddress == 0x8010_0000 })
        let bss = try #require(image.segments.first { $0.memorySize > $0.fileSize })
        #expect(bss.isWritable)

        let out = OutputBuffer()
        let malta = Malta(output: out.append)
        try malta.load(elf: image)
        malta.boot()
        #expect(malta.run(maxInstructions: 1_000_000) == .poweredOff)
        #expect(out.text == "symbols\n")
    }

    /// 2000 random mutations of a valid file: each loads or throws; none crashes.
    @Test func mutationsNeverCrash() throws {
        var bases: [[UInt8]] = [ELFBuilder().build()]
        if Toolchain.hasClang, let path = try? Guest.build("fuzz", ["crt0.S": Guest.runtime,
                                                                    "main.c": "int main(void) { return 0; }"]) {
            bases.append(try ELFImage(contentsOfFile: path).bytes)
        }
        var rng = SplitMix64(state: 0x4D41_4752_4954_5445)
        let malta = Malta(configuration: MaltaConfiguration(ramSize: 4 << 20))
        var loaded = 0, rejected = 0
        for i in 0..<2000 {
            var bytes = bases[i % bases.count]
            let edits = Int.random(in: 1...8, using: &rng)
            for _ in 0..<edits {
                switch Int.random(in: 0..<10, using: &rng) {
                case 0:
                    bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng)))
                case 1...6:
                    // Headers are where the interesting fields are.
                    guard !bytes.isEmpty else { break }
                    let o = Int.random(in: 0..<min(bytes.count, 0x200), using: &rng)
                    bytes[o] = UInt8.random(in: 0...255, using: &rng)
                case 7:
                    guard bytes.count >= 4 else { break }
                    let o = Int.random(in: 0...(bytes.count - 4), using: &rng) & ~3
                    let special: [UInt32] = [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFF0, UInt32(bytes.count)]
                    bytes.put32(o, special[Int.random(in: 0..<special.count, using: &rng)])
                default:
                    guard !bytes.isEmpty else { break }
                    let o = Int.random(in: 0..<bytes.count, using: &rng)
                    bytes[o] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
                }
            }
            do {
                let image = try ELFImage(bytes: bytes)
                try malta.load(elf: image)
                _ = image.symbolize(image.entry)
                _ = image.bytes(atVirtual: image.entry, count: 4)
                loaded += 1
            } catch {
                #expect(!error.message.isEmpty)
                rejected += 1
            }
        }
        #expect(loaded + rejected == 2000)
        #expect(loaded > 0 && rejected > 0)
    }
}
