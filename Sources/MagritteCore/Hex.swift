/// Hexadecimal text of numbers, lower case: the one place the project formats hex (traces,
/// lectures, the disassembler, error messages).
public enum Hex {
    /// `v` in hex, zero-padded to at least `width` digits: `padded(0x1f, width: 8)` is "0000001f".
    /// A negative value keeps its sign in front of the digits.
    @inlinable
    public static func padded<T: BinaryInteger>(_ v: T, width: Int) -> String {
        let digits = String(v.magnitude, radix: 16)
        let zeros = String(repeating: "0", count: max(0, width - digits.count))
        return (v < 0 ? "-" : "") + zeros + digits
    }

    /// Eight digits of a word: `word(0x1f)` is "0000001f". Formatted by hand, without an
    /// intermediate string: the VMM's trace calls it on hot paths.
    @inlinable
    public static func word(_ v: UInt32) -> String {
        String(unsafeUninitializedCapacity: 8) { buffer in
            let digits: StaticString = "0123456789abcdef"
            for i in 0..<8 {
                buffer[i] = digits.utf8Start[Int((v >> (28 - 4 * UInt32(i))) & 0xF)]
            }
            return 8
        }
    }

    /// "0x" and the digits, as few as needed: `prefixed(31)` is "0x1f", `prefixed(-31)` "-0x1f".
    @inlinable
    public static func prefixed<T: BinaryInteger>(_ v: T) -> String {
        (v < 0 ? "-0x" : "0x") + String(v.magnitude, radix: 16)
    }

    /// "0x" and the eight digits of a word: `prefixedWord(0x1f)` is "0x0000001f".
    @inlinable
    public static func prefixedWord(_ v: UInt32) -> String { "0x" + word(v) }
}
