/// Why a snapshot (in memory or in a file) cannot be restored. Restoring checks everything
/// before it changes anything, so a machine that refused a snapshot is as it was.
public struct SnapshotError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static let truncated = SnapshotError("the snapshot is truncated")
}

/// Appends the little-endian encoding of machine state to a byte array: the one format the
/// CPU and every device use for `saveState(to:)` (`Docs/time-travel.md`).
public struct SnapshotWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func put(_ v: UInt8) { bytes.append(v) }
    public mutating func put(_ v: Bool) { bytes.append(v ? 1 : 0) }
    public mutating func put(_ v: UInt16) { putLittleEndian(UInt64(v), 2) }
    public mutating func put(_ v: UInt32) { putLittleEndian(UInt64(v), 4) }
    public mutating func put(_ v: UInt64) { putLittleEndian(v, 8) }
    public mutating func put(_ v: Int64) { put(UInt64(bitPattern: v)) }
    public mutating func put(_ v: Int) { put(Int64(v)) }

    /// A length-prefixed byte string.
    public mutating func put(_ v: [UInt8]) {
        put(UInt32(v.count))
        bytes.append(contentsOf: v)
    }

    public mutating func put(_ v: [UInt32]) {
        put(UInt32(v.count))
        for x in v { put(x) }
    }

    public mutating func put(_ v: [UInt64]) {
        put(UInt32(v.count))
        for x in v { put(x) }
    }

    /// Raw bytes with no length (the reader must know it).
    public mutating func append(_ raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw) }

    private mutating func putLittleEndian(_ v: UInt64, _ n: Int) {
        for i in 0..<n { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
}

/// Reads what a `SnapshotWriter` wrote; every read checks the bounds and throws
/// `SnapshotError` (never traps) on a short or malformed input.
public struct SnapshotReader {
    public let bytes: [UInt8]
    public private(set) var position: Int

    public init(_ bytes: [UInt8], position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    public var remaining: Int { bytes.count - position }
    public var atEnd: Bool { position == bytes.count }

    public mutating func u8() throws(SnapshotError) -> UInt8 {
        guard position < bytes.count else { throw .truncated }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func bool() throws(SnapshotError) -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        default: throw SnapshotError("the snapshot is corrupt (a flag is neither 0 nor 1)")
        }
    }

    public mutating func u16() throws(SnapshotError) -> UInt16 { UInt16(try littleEndian(2)) }
    public mutating func u32() throws(SnapshotError) -> UInt32 { UInt32(try littleEndian(4)) }
    public mutating func u64() throws(SnapshotError) -> UInt64 { try littleEndian(8) }
    public mutating func i64() throws(SnapshotError) -> Int64 { Int64(bitPattern: try littleEndian(8)) }

    /// An Int within `range` (a count or an index the caller then uses).
    public mutating func int(in range: ClosedRange<Int>) throws(SnapshotError) -> Int {
        let v = try i64()
        guard v >= Int64(range.lowerBound), v <= Int64(range.upperBound) else {
            throw SnapshotError("the snapshot is corrupt (a value \(v) is outside \(range))")
        }
        return Int(v)
    }

    /// A length-prefixed byte string of at most `limit` bytes.
    public mutating func byteArray(limit: Int) throws(SnapshotError) -> [UInt8] {
        let n = Int(try u32())
        guard n <= limit else { throw SnapshotError("the snapshot is corrupt (a block of \(n) bytes, at most \(limit) expected)") }
        return try raw(n)
    }

    /// A length-prefixed array of exactly `count` words (nil: any count up to `limit`).
    public mutating func words(count: Int? = nil, limit: Int = 1 << 20) throws(SnapshotError) -> [UInt32] {
        try array(count: count, limit: limit) { (r: inout SnapshotReader) throws(SnapshotError) in try r.u32() }
    }

    public mutating func doubleWords(count: Int? = nil, limit: Int = 1 << 20) throws(SnapshotError) -> [UInt64] {
        try array(count: count, limit: limit) { (r: inout SnapshotReader) throws(SnapshotError) in try r.u64() }
    }

    private mutating func array<T>(count: Int?, limit: Int, _ element: (inout SnapshotReader) throws(SnapshotError) -> T) throws(SnapshotError) -> [T] {
        let n = Int(try u32())
        if let count, n != count {
            throw SnapshotError("the snapshot is corrupt (\(n) entries where \(count) are expected)")
        }
        guard n <= limit else { throw SnapshotError("the snapshot is corrupt (\(n) entries, at most \(limit) expected)") }
        var out: [T] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try element(&self)) }
        return out
    }

    /// The next `n` bytes.
    public mutating func raw(_ n: Int) throws(SnapshotError) -> [UInt8] {
        guard n >= 0, n <= remaining else { throw .truncated }
        defer { position += n }
        return Array(bytes[position..<position + n])
    }

    private mutating func littleEndian(_ n: Int) throws(SnapshotError) -> UInt64 {
        guard n <= remaining else { throw .truncated }
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += n
        return v
    }
}

/// What a CPU and a VMM's guest both save after their general registers, in this order: HI,
/// LO, the pc, the next pc, the delay-slot flag and CP0 (`CPU.saveState`, `Guest.saveState`).
public struct ProgramState: Sendable {
    public var hi, lo, pc, npc: UInt32
    public var inDelaySlot: Bool
    public var cp0: CP0State

    public init(hi: UInt32, lo: UInt32, pc: UInt32, npc: UInt32, inDelaySlot: Bool, cp0: CP0State) {
        (self.hi, self.lo, self.pc, self.npc, self.inDelaySlot, self.cp0) = (hi, lo, pc, npc, inDelaySlot, cp0)
    }

    public func save(to w: inout SnapshotWriter) {
        for v in [hi, lo, pc, npc] { w.put(v) }
        w.put(inDelaySlot)
        cp0.saveState(to: &w)
    }

    public init(from r: inout SnapshotReader) throws(SnapshotError) {
        (hi, lo, pc, npc, inDelaySlot) = (try r.u32(), try r.u32(), try r.u32(), try r.u32(), try r.bool())
        cp0 = try CP0State(from: &r)
    }
}
