#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MagritteCore

/// One 4 KiB page of RAM as a snapshot holds it: written once when it is made, then only read.
/// Snapshots taken one after another share the pages that did not change between them.
final class RAMPage: @unchecked Sendable {
    let bytes: UnsafeMutableRawPointer

    init(copying source: UnsafeRawPointer) {
        bytes = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 64)
        bytes.copyMemory(from: source, byteCount: 4096)
    }

    deinit { bytes.deallocate() }
}

/// The RAM of a bus as a snapshot holds it: the 4 KiB pages that are not all zero, by frame
/// number. Shared by bare-machine snapshots (`MaltaSnapshot`) and VMM snapshots. A snapshot
/// taken after another (`init(of:sharingWith:)`, as time travel's checkpoints are) shares
/// with it every page whose bytes did not change; `bytes(notSharedWith:)` is what it adds.
public struct RAMPages: Sendable {
    /// Frame numbers of the pages stored, ascending.
    public let frames: [UInt32]
    /// Their bytes, in the order of `frames`.
    let pages: [RAMPage]

    /// Bytes held in memory, counting the pages shared with other snapshots.
    public var byteCount: Int { frames.count * (4096 + 4) }

    init(frames: [UInt32], pages: [RAMPage]) {
        self.frames = frames
        self.pages = pages
    }

    /// The pages of `bus`'s RAM that are not all zero, copied, except those equal to the same
    /// frame's page in `previous` (a snapshot of the same bus): those are shared with it.
    public init(of bus: MaltaBus, sharingWith previous: RAMPages? = nil) {
        // A page of the anonymous RAM mapping that is not resident has never been written (or
        // was dropped by a restore): it reads zero, no need to look.
        let count = bus.ramSize >> 12
        var resident = [UInt8](repeating: 1, count: count)
        if mincore(bus.ram, bus.ramSize, &resident) != 0 { resident = [UInt8](repeating: 1, count: count) }
        var frames: [UInt32] = []
        var pages: [RAMPage] = []
        let old = previous ?? RAMPages(frames: [], pages: [])
        var next = 0  // the first of `old`'s frames not below the frame looked at
        for frame in 0..<UInt32(count) where resident[Int(frame)] & 1 != 0 {
            let page = bus.ramPage(frame: frame)!
            while next < old.frames.count && old.frames[next] < frame { next += 1 }
            if next < old.frames.count && old.frames[next] == frame && memcmp(page, old.pages[next].bytes, 4096) == 0 {
                frames.append(frame)
                pages.append(old.pages[next])
            } else if memcmp(page, RAMPages.zeroPage, 4096) != 0 {
                frames.append(frame)
                pages.append(RAMPage(copying: page))
            }
        }
        self.init(frames: frames, pages: pages)
    }

    /// Bytes these pages hold that `other` does not share (all of them when `other` is nil).
    public func bytes(notSharedWith other: RAMPages?) -> Int {
        guard let other else { return byteCount }
        var shared = 0
        var next = 0
        for (i, frame) in frames.enumerated() {
            while next < other.frames.count && other.frames[next] < frame { next += 1 }
            if next < other.frames.count && other.frames[next] == frame && other.pages[next] === pages[i] { shared += 1 }
        }
        return (frames.count - shared) * 4096 + frames.count * 4
    }

    /// How many of these pages are shared with `other` (the same frame, the same stored bytes).
    public func sharedPages(with other: RAMPages) -> Int {
        (byteCount - bytes(notSharedWith: other)) / 4096
    }

    /// Makes `bus`'s RAM hold exactly these pages (every other page zero). The pages must lie
    /// inside its RAM (checked when they were captured or decoded for a bus of that size).
    public func restore(into bus: MaltaBus) {
        // Drop every page (an anonymous private mapping reads zero after MADV_DONTNEED), then
        // copy the stored ones.
        if madvise(bus.ram, bus.ramSize, MADV_DONTNEED) != 0 {
            bus.ram.initializeMemory(as: UInt8.self, repeating: 0, count: bus.ramSize)
        }
        for (frame, page) in zip(frames, pages) {
            bus.ramPage(frame: frame)!.copyMemory(from: page.bytes, byteCount: 4096)
        }
    }

    /// Appends the page count, then each page: its frame number and either 4096 raw bytes
    /// (encoding 0) or its run-length code (encoding 1), whichever is shorter.
    public func encode(to p: inout SnapshotWriter) {
        p.put(UInt32(frames.count))
        for (frame, stored) in zip(frames, pages) {
            let page = UnsafeBufferPointer(start: stored.bytes.assumingMemoryBound(to: UInt8.self), count: 4096)
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

    /// Reads what `encode` wrote for a RAM of `ramSize` bytes; pages out of order or outside
    /// it, or a malformed encoding, are refused.
    public init(decoding r: inout SnapshotReader, ramSize: Int) throws(SnapshotError) {
        let count = Int(try r.u32())
        guard count <= ramSize >> 12 else { throw SnapshotError("the snapshot is corrupt (\(count) RAM pages in \(ramSize >> 12))") }
        var frames: [UInt32] = []
        var pages: [RAMPage] = []
        for _ in 0..<count {
            let frame = try r.u32()
            guard Int(frame) < ramSize >> 12, frame >= frames.last.map({ $0 + 1 }) ?? 0 else {
                throw SnapshotError("the snapshot is corrupt (RAM page \(frame) out of order or outside RAM)")
            }
            let bytes: [UInt8]
            switch try r.u8() {
            case 0: bytes = try r.raw(4096)
            case 1: bytes = try RunLength.decode(r.byteArray(limit: 8192), count: 4096)
            default: throw SnapshotError("the snapshot is corrupt (unknown page encoding)")
            }
            frames.append(frame)
            pages.append(bytes.withUnsafeBytes { RAMPage(copying: $0.baseAddress!) })
        }
        self.init(frames: frames, pages: pages)
    }

    nonisolated(unsafe) static let zeroPage: UnsafeMutableRawPointer = calloc(1, 4096)!
}
