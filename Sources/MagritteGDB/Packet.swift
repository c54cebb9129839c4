/// The framing of the GDB remote serial protocol: `$payload#cs` packets, `+`/`-` acknowledgements
/// and the 0x03 interrupt byte (Docs/gdb.md).
///
/// `PacketReader` turns a byte stream, in whatever pieces it arrives, into events; `framePacket`
/// turns a reply payload into bytes on the wire. Neither knows what a packet means (Session.swift).
public enum PacketEvent: Equatable, Sendable {
    /// A whole packet whose checksum matched: its payload with `}` escapes left as they came
    /// (only `X` carries binary data, and only it undoes them).
    case packet([UInt8])
    /// A packet whose checksum did not match (or whose checksum was not hex): answer `-`.
    case corrupt
    /// The debugger pressed Ctrl-C (0x03 between packets).
    case interrupt
    case ack
    case nack
}

/// Splits an incoming byte stream into packet events. Payloads longer than `maxPayload` are
/// dropped as corrupt as soon as they pass the limit, so a debugger (or anything else on the
/// socket) that never sends `#` cannot make the host hold an unbounded buffer.
public struct PacketReader: Sendable {
    public static let defaultMaxPayload = 64 * 1024
    public let maxPayload: Int
    private enum State: Sendable { case idle, payload, checksum1, checksum2 }
    private var state = State.idle
    private var payload: [UInt8] = []
    private var sum: UInt8 = 0
    private var checksum: UInt8 = 0
    private var oversized = false

    public init(maxPayload: Int = PacketReader.defaultMaxPayload) {
        self.maxPayload = maxPayload
    }

    /// Feeds `bytes`; returns the events they complete, in order.
    public mutating func feed<S: Sequence>(_ bytes: S) -> [PacketEvent] where S.Element == UInt8 {
        var events: [PacketEvent] = []
        for byte in bytes {
            switch state {
            case .idle:
                switch byte {
                case UInt8(ascii: "$"):
                    state = .payload
                    payload.removeAll(keepingCapacity: true)
                    sum = 0
                    oversized = false
                case UInt8(ascii: "+"): events.append(.ack)
                case UInt8(ascii: "-"): events.append(.nack)
                case 0x03: events.append(.interrupt)
                default: break  // noise between packets is ignored, as gdbserver does
                }
            case .payload:
                if byte == UInt8(ascii: "#") {
                    state = .checksum1
                } else if byte == UInt8(ascii: "$") {
                    // A new packet starts before the old one ended: the old one is lost.
                    events.append(.corrupt)
                    payload.removeAll(keepingCapacity: true)
                    sum = 0
                    oversized = false
                } else {
                    sum &+= byte
                    if payload.count < maxPayload { payload.append(byte) } else { oversized = true }
                }
            case .checksum1:
                guard let d = hexDigit(byte) else { state = .idle; events.append(.corrupt); continue }
                checksum = d << 4
                state = .checksum2
            case .checksum2:
                state = .idle
                guard let d = hexDigit(byte) else { events.append(.corrupt); continue }
                checksum |= d
                events.append(checksum == sum && !oversized ? .packet(payload) : .corrupt)
            }
        }
        return events
    }
}

/// `$payload#cs` with `$`, `#`, `}` and `*` escaped (`}` then the byte xor 0x20), so that binary
/// payloads and run-length markers cannot be misread.
public func framePacket(_ payload: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [UInt8(ascii: "$")]
    out.reserveCapacity(payload.count + 4)
    var sum: UInt8 = 0
    for b in payload {
        if b == UInt8(ascii: "$") || b == UInt8(ascii: "#") || b == UInt8(ascii: "}") || b == UInt8(ascii: "*") {
            out.append(UInt8(ascii: "}"))
            out.append(b ^ 0x20)
            sum &+= UInt8(ascii: "}") &+ (b ^ 0x20)
        } else {
            out.append(b)
            sum &+= b
        }
    }
    out.append(UInt8(ascii: "#"))
    out.append(hexChars[Int(sum >> 4)])
    out.append(hexChars[Int(sum & 15)])
    return out
}

/// Undoes the `}` escapes of an `X` packet's binary data; nil when it ends in a lone `}`.
public func unescapeBinary(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var escaped = false
    for b in bytes {
        if escaped {
            out.append(b ^ 0x20)
            escaped = false
        } else if b == UInt8(ascii: "}") {
            escaped = true
        } else {
            out.append(b)
        }
    }
    return escaped ? nil : out
}

// MARK: Hex

let hexChars: [UInt8] = Array("0123456789abcdef".utf8)

@inline(__always)
func hexDigit(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}

/// Bytes as lowercase hex.
func hexEncode<S: Sequence>(_ bytes: S) -> [UInt8] where S.Element == UInt8 {
    var out: [UInt8] = []
    for b in bytes {
        out.append(hexChars[Int(b >> 4)])
        out.append(hexChars[Int(b & 15)])
    }
    return out
}

/// Hex pairs as bytes; nil when the length is odd or a digit is not hex.
func hexDecode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
    guard text.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(text.count / 2)
    var i = text.startIndex
    while i < text.endIndex {
        guard let hi = hexDigit(text[i]), let lo = hexDigit(text[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}

/// A hex number of at most `maxDigits` digits (no sign, no prefix); nil when empty, too long or
/// not hex.
func hexNumber(_ text: ArraySlice<UInt8>, maxDigits: Int = 8) -> UInt64? {
    guard !text.isEmpty, text.count <= maxDigits else { return nil }
    var v: UInt64 = 0
    for c in text {
        guard let d = hexDigit(c) else { return nil }
        v = v << 4 | UInt64(d)
    }
    return v
}

/// A 32-bit value as 8 hex digits in target (little-endian) byte order, as `g` and `p` send it.
func hexLittleEndian(_ v: UInt32) -> [UInt8] {
    hexEncode([UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8),
               UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 24)])
}

/// 8 hex digits in target byte order as a 32-bit value.
func littleEndianValue(_ text: ArraySlice<UInt8>) -> UInt32? {
    guard text.count == 8, let b = hexDecode(text) else { return nil }
    return UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
}

/// Big-endian hex of a number without leading zeros (thread ids, addresses in stop replies).
func hexString(_ v: UInt64) -> String { String(v, radix: 16) }
