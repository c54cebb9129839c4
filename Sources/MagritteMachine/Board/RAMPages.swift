#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MagritteCore

/// The RAM of a bus as a snapshot holds it: the 4 KiB pages that are not all zero, by frame
/// number. Shared by bare-machine snapshots (`MaltaSnapshot`) and VMM snapshots.
public struct RAMPages: Sendable {
    /// Frame numbers of the pages stored, ascending.
    public let frames: [UInt32]
    /// Their bytes, 4096 each, in the order of `frames`.
    let bytes: [UInt8]

    /// Bytes held in memory.
    public var byteCount: Int { bytes.count + frames.count * 4 }

    init(frames: [UInt32], bytes: [UInt8]) {
        self.frames = frames
        self.bytes = bytes
    }

    /// The pages of `bus`'s RAM that are not all zero, copied.
    public init(of bus: MaltaBus) {
        // A page of the anonymous RAM mapping that is not resident has never been written (or
        // was dropped by a restore): it reads zero, no need to look.
        let count = bus.ramSize >> 12
        var resident = [UInt8](repeating: 1, count: count)
        if mincore(bus.ram, bus.ramSize, &resident) != 0 { resident = [UInt8](repeating: 1, count: count) }
        var frames: [UInt32] = []
        for frame in 0..<UInt32(count) where resident[Int(frame)] & 1 != 0 {
            if memcmp(bus.ramPage(frame: frame)!, RAMPages.zeroPage, 4096) != 0 { frames.append(frame) }
        }
        let bytes = [UInt8](unsafeUninitializedCapacity: frames.count * 4096) { buffer, initialized in
            for (i, frame) in frames.enumerated() {
                (buffer.baseAddress! + i * 4096).update(from: bus.ramPage(frame: frame)!.assumingMemoryBound(to: UInt8.self), count: 4096)
            }
            initialized = frames.count * 4096
        }
        self.init(frames: frames, bytes: bytes)
    }

    /// Makes `bus`'s RAM hold exactly these pages (every other page zero). The pages must lie
    /// inside its RAM (checked when they were captured or decoded for a bus of that size).
    public func restore(into bus: MaltaBus) {
        // Drop every page (an anonymous private mapping reads zero after MADV_DONTNEED), then
        // copy the stored ones.
        if madvise(bus.ram, bus.ramSize, MADV_DONTNEED) != 0 {
            bus.ram.initializeMemory(as: UInt8.self, repeating: 0, count: bus.ramSize)
        }
        bytes.withUnsafeBytes { raw in
            for (i, frame) in frames.enumerated() {
                bus.ramPage(frame: frame)!.copyMemory(from: raw.baseAddress! + i * 4096, byteCount: 4096)
            }
        }
    }

    /// Appends the page count, then each page: its frame number and either 4096 raw bytes
    /// (encoding 0) or its run-length code (encoding 1), whichever is shorter.
    public func encode(to p: inout SnapshotWriter) {
        p.put(UInt32(frames.count))
        bytes.withUnsafeBufferPointer { all in
            for (i, frame) in frames.enumerated() {
                let page = UnsafeBufferPointer(rebasing: all[i * 4096..<(i + 1) * 4096])
                p.put(frame)
                let rle = RunLength.encode(page)
                if rle.count < 4096 {
                    p.put(UInt8(1))
                    p.put(rle)
                } else {
                    p.put(UInt8(0))
                    p.append(UnsafeRawBufferPointer(page))
                }
            }
        }
    }

    /// Reads what `encode` wrote for a RAM of `ramSize` bytes; pages out of order or outside
    /// it, or a malformed encoding, are refused.
    public init(decoding r: inout SnapshotReader, ramSize: Int) throws(SnapshotError) {
        let count = Int(try r.u32())
        guard count <= ramSize >> 12 else { throw SnapshotError("the snapshot is corrupt (\(count) RAM pages in \(ramSize >> 12))") }
        var frames: [UInt32] = []
        var pages: [UInt8] = []
        pages.reserveCapacity(count * 4096)
        for _ in 0..<count {
            let frame = try r.u32()
            guard Int(frame) < ramSize >> 12, frame >= frames.last.map({ $0 + 1 }) ?? 0 else {
                throw SnapshotError("the snapshot is corrupt (RAM page \(frame) out of order or outside RAM)")
            }
            switch try r.u8() {
            case 0: pages += try r.raw(4096)
            case 1: pages += try RunLength.decode(r.byteArray(limit: 8192), count: 4096)
            default: throw SnapshotError("the snapshot is corrupt (unknown page encoding)")
            }
            frames.append(frame)
        }
        self.init(frames: frames, bytes: pages)
    }

    nonisolated(unsafe) static let zeroPage: UnsafeMutableRawPointer = calloc(1, 4096)!
}
