import Testing
@testable import MagritteCore

/// The code cache on its own (`Docs/jit.md`, "Lookup and invalidation"): host code installed and
/// patched through the second, writable mapping, and through the single mapping flipped writable
/// around each write that a host without `memfd_create` gets; a full cache is emptied whole and
/// keeps the lookup stub.
@Suite("The translator's code cache", .enabled(if: Engine.jitSupported))
struct JITCodeCacheTests {
    typealias Function = @convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> UInt32

    /// `mov eax, value; ret`
    static func returning(_ value: UInt32) -> [UInt8] {
        var a = X86Assembler()
        a.mov(.rax, imm: value)
        a.ret()
        return a.bytes
    }

    static func call(_ code: UnsafeRawPointer, _ jit: JIT) -> UInt32 {
        var regs = [UInt32](repeating: 0, count: 33)
        return regs.withUnsafeMutableBytes { unsafeBitCast(code, to: Function.self)($0.baseAddress!, jit.state) }
    }

    @Test("Code is installed, runs, and is patched in place", arguments: [true, false])
    func installAndPatch(doubleMapped: Bool) throws {
        let jit = try #require(JIT(capacity: 1 << 20, doubleMapped: doubleMapped))
        #expect((jit.writable != nil) == doubleMapped)
        let code = try #require(jit.install(Self.returning(41)))
        #expect(Self.call(code, jit) == 41)
        // The immediate of `mov eax, imm32` is at offset 1: rewrite it while the code is live.
        let done = jit.patch(UnsafeMutableRawPointer(mutating: code), bytes: 5) { w in
            w.storeBytes(of: UInt32(42), toByteOffset: 1, as: UInt32.self)
        }
        #expect(done)
        #expect(Self.call(code, jit) == 42)
    }

    @Test("A full cache is emptied whole and keeps its lookup stub", arguments: [true, false])
    func fullCacheFlushes(doubleMapped: Bool) throws {
        let jit = try #require(JIT(capacity: 8192, doubleMapped: doubleMapped))
        let stub = try #require(jit.state.load(fromByteOffset: JITState.lookupStub, as: UnsafeRawPointer?.self))
        let first = jit.firstBlock
        #expect(first > 0 && jit.used == first)
        var last: UnsafeRawPointer?
        for i in 0..<2000 {
            last = try #require(jit.install(Self.returning(UInt32(i))))
        }
        #expect(jit.statistics.flushes > 0)
        #expect(jit.used <= jit.capacity && jit.used > first)
        #expect(Self.call(try #require(last), jit) == 1999)
        #expect(jit.state.load(fromByteOffset: JITState.lookupStub, as: UnsafeRawPointer?.self) == stub)
        // Code larger than the whole cache is refused, not installed over the stub.
        #expect(jit.install([UInt8](repeating: 0xC3, count: 8192)) == nil)
    }
}
