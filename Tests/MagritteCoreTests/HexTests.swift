import Foundation
import Testing
import MagritteCore

/// The one hex helper against Foundation's `String(format:)` (C's printf), on edge values and a
/// bounded number of random ones.
@Suite struct HexTests {
    @Test func matchesPrintf() {
        var rng = SystemRandomNumberGenerator()
        let edges: [UInt32] = [0, 1, 0xF, 0x10, 0xFF, 0x100, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]
        for v in edges + (0..<2000).map({ _ in UInt32.random(in: 0...UInt32.max, using: &rng) >> UInt32.random(in: 0...31, using: &rng) }) {
            #expect(Hex.word(v) == String(format: "%08x", v))
            #expect(Hex.padded(v, width: 8) == String(format: "%08x", v))
            #expect(Hex.padded(v, width: 2) == String(format: "%02x", v))
            #expect(Hex.prefixed(v) == String(format: "0x%x", v))
            #expect(Hex.prefixedWord(v) == String(format: "0x%08x", v))
            let s = Int64(Int32(bitPattern: v))
            #expect(Hex.prefixed(s) == (s < 0 ? String(format: "-0x%llx", s.magnitude) : String(format: "0x%llx", s)))
        }
    }

    @Test func edgesOfWideAndNegativeValues() {
        #expect(Hex.prefixed(Int64.min) == "-0x8000000000000000")
        #expect(Hex.prefixed(UInt64.max) == "0xffffffffffffffff")
        #expect(Hex.padded(-5, width: 4) == "-0005")
        #expect(Hex.padded(UInt8(0xab), width: 0) == "ab")
    }
}
