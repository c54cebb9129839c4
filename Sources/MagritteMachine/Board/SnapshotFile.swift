#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MagritteCore

/// The envelope of every snapshot file (`Docs/time-travel.md`): magic `MAGRSNAP`, format
/// version, kind of machine, payload length and the payload's FNV-1a 64 checksum, little-endian;
/// then the payload, whose layout the kind defines.
public enum SnapshotFile {
    public static let magic: [UInt8] = Array("MAGRSNAP".utf8)
    /// The format version this build writes and reads (the only place it is stated). Bumped with
    /// every change of any payload: 1, the first; 2 (session 7), a VMM guest's statistics with
    /// its polled and window device accesses, and the machine frames whose code a VMM's CPU has
    /// decoded. A file of another version is refused with an error naming both versions.
    public static let formatVersion: UInt32 = 2
    static let headerSize = 8 + 4 + 4 + 8 + 8

    /// The kinds of machine a file can hold.
    public enum Kind: UInt32, Sendable {
        case malta = 1
        case vmm = 2

        var name: String { self == .malta ? "a bare Malta" : "a VMM" }
    }

    /// The file's bytes for `payload` of `kind` (`version`: another only to test refusals).
    public static func wrap(_ payload: [UInt8], kind: Kind, version: UInt32 = formatVersion) -> [UInt8] {
        var h = SnapshotWriter()
        for b in magic { h.put(b) }
        h.put(version)
        h.put(kind.rawValue)
        h.put(UInt64(payload.count))
        h.put(fnv1a(payload))
        return h.bytes + payload
    }

    /// The payload of a file of `kind`; a foreign, wrong-version, other-kind, truncated or
    /// corrupt file is refused with an error saying which.
    public static func unwrap(_ bytes: [UInt8], kind: Kind) throws(SnapshotError) -> [UInt8] {
        guard bytes.count >= 8, Array(bytes[0..<8]) == magic else {
            throw SnapshotError("not a Magritte snapshot (the file does not begin with \"MAGRSNAP\")")
        }
        var h = SnapshotReader(bytes, position: 8)
        guard bytes.count >= headerSize else { throw SnapshotError("the snapshot is truncated (\(bytes.count) bytes, shorter than its header)") }
        let version = try h.u32()
        guard version == formatVersion else {
            let writer = version < formatVersion ? "an older" : "a newer"
            throw SnapshotError("the snapshot has format version \(version) (\(writer) Magritte wrote it); this Magritte reads version \(formatVersion)")
        }
        let found = try h.u32()
        guard found == kind.rawValue else {
            let other = Kind(rawValue: found).map { " (\($0.name))" } ?? ""
            throw SnapshotError("the snapshot is of another kind of machine (kind \(found)\(other)), not of \(kind.name)")
        }
        let length = try h.u64(), checksum = try h.u64()
        guard UInt64(h.remaining) == length else {
            throw SnapshotError(UInt64(h.remaining) < length
                ? "the snapshot is truncated (\(h.remaining) of \(length) payload bytes)"
                : "the snapshot is corrupt (\(UInt64(h.remaining) - length) bytes after its end)")
        }
        let payload = Array(bytes[headerSize...])
        guard fnv1a(payload) == checksum else { throw SnapshotError("the snapshot is corrupt (checksum mismatch)") }
        return payload
    }

    /// The bytes of the snapshot file at `path`.
    public static func read(_ path: String) throws(SnapshotError) -> [UInt8] {
        guard let bytes = readWholeFile(path, limit: 1 << 30) else {
            throw SnapshotError("cannot read the snapshot file '\(path)': \(String(cString: strerror(errno)))")
        }
        return bytes
    }

    /// Writes `bytes` to `path` through a temporary file renamed into place, so a failure
    /// never leaves half a file under the name.
    public static func write(_ bytes: [UInt8], toFile path: String) throws(SnapshotError) {
        let temporary = path + ".tmp-\(getpid())"
        guard let f = fopen(temporary, "wb") else {
            throw SnapshotError("cannot write the snapshot file '\(path)': \(String(cString: strerror(errno)))")
        }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        let closed = fclose(f) == 0
        guard written == bytes.count, closed, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw SnapshotError("cannot write the snapshot file '\(path)': \(reason)")
        }
    }
}

/// A machine's whole state at one instant, a bare board's (`MaltaSnapshot`) or a VMM's
/// (`VMMSnapshot`): what time travel keeps as checkpoints and a snapshot file holds.
public protocol MachineSnapshot: Sendable {
    /// `CPU.retiredInstructions` and `CPU.executedInstructions` (time travel's position) when
    /// it was taken.
    var instructionCount: UInt64 { get }
    var executed: UInt64 { get }
    /// RAM pages stored (those not all zero).
    var storedPages: Int { get }
    /// Bytes it holds in memory.
    var byteCount: Int { get }
    /// Bytes it holds in memory that `previous` (taken before it, nil: none) does not share.
    func byteCount(notSharedWith previous: Self?) -> Int
    /// The file's bytes (`SnapshotFile`'s header, then the payload of its kind).
    func encoded() -> [UInt8]
    /// Decodes and checks a file's bytes: a truncated, corrupt, foreign, wrong-version or
    /// other-kind file is refused with an error saying which.
    init(decoding bytes: [UInt8]) throws(SnapshotError)
}

extension MachineSnapshot {
    /// Reads and checks the snapshot file at `path` (see `init(decoding:)`).
    public init(contentsOfFile path: String) throws(SnapshotError) {
        try self.init(decoding: SnapshotFile.read(path))
    }

    /// Writes the snapshot to `path` through a temporary file renamed into place, so a
    /// failure never leaves half a file under the name.
    public func write(toFile path: String) throws(SnapshotError) {
        try SnapshotFile.write(encoded(), toFile: path)
    }
}

/// A machine whose whole state can be taken and put back: a bare board (`Malta`) or a `VMM`.
public protocol Snapshotting: AnyObject {
    associatedtype Snapshot: MachineSnapshot
    /// The whole state now; the RAM pages equal to `previous`'s are shared with it.
    func snapshot(sharingWith previous: Snapshot?) -> Snapshot
    /// Puts the machine in the state of `snapshot`; refuses (and changes nothing) one of
    /// another configuration.
    func restore(_ snapshot: Snapshot) throws(SnapshotError)
}

extension Snapshotting {
    /// Writes a snapshot to `path` (replacing the file atomically).
    @discardableResult
    public func snapshot(toFile path: String) throws(SnapshotError) -> Snapshot {
        let s = snapshot(sharingWith: nil)
        try s.write(toFile: path)
        return s
    }

    /// Reads the snapshot file at `path` and restores it (see `restore(_:)`).
    public func restore(fromFile path: String) throws(SnapshotError) {
        try restore(Snapshot(contentsOfFile: path))
    }
}
