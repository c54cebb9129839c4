#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MagritteCore

/// The Malta's physical address space: RAM at physical 0 and device windows above it.
///
/// RAM is one page-aligned, zero-filled host mapping; `ramPage(frame:)` is a bounds check and
/// pointer arithmetic, which is all the CPU's fast path ever asks of the bus. Device windows are
/// looked up only on the slow path (`read`/`write`), in a short list.
///
/// What nothing answers does what QEMU's Malta does (measured, see `Docs/board.md`): in the low
/// 512 MiB (what kseg0/kseg1 reach) reads return 0 and writes are ignored; above it the access
/// is a bus error.
public final class MaltaBus: PhysicalBus {
    /// The largest RAM the low window holds (QEMU maps the first 256 MiB at physical 0).
    public static let maxRAMSize = 256 << 20
    /// The smallest RAM we accept: the boot parameters live at 0x2000 and programs from 1 MiB.
    public static let minRAMSize = 1 << 20
    /// The end of the window kseg0 and kseg1 reach (physical 0–0x1FFFFFFF).
    public static let lowWindowEnd: UInt64 = 0x2000_0000

    /// RAM size in bytes (a multiple of 4 KiB).
    public let ramSize: Int
    /// Host address of physical address 0. Valid for the life of the bus.
    public let ram: UnsafeMutableRawPointer
    @usableFromInline let ramFrames: UInt32

    /// The device windows, sorted by base address, never overlapping RAM or each other.
    public private(set) var regions: [DeviceRegion] = [] {
        didSet {
            bases = regions.map(\.base)
            sizes = regions.map(\.size)
            offsets = regions.map(\.deviceOffset)
            devices = DeviceTable(regions.map(\.device))
        }
    }
    // What accesses use: the windows as parallel arrays (no struct or String copies per access;
    // written only while the map is built, so no exclusivity check per access).
    @exclusivity(unchecked) private var bases: [UInt32] = []
    @exclusivity(unchecked) private var sizes: [UInt32] = []
    @exclusivity(unchecked) private var offsets: [UInt32] = []
    @exclusivity(unchecked) private var devices = DeviceTable()

    @inline(__always)
    private func regionIndex(_ address: UInt32) -> Int? {
        for i in bases.indices where address &- bases[i] < sizes[i] { return i }
        return nil
    }

    /// When true, unassigned addresses in the low window read 0 and ignore writes, as on QEMU's
    /// Malta. Set it to false to make every unassigned access a bus error (useful to catch a
    /// guest's wild pointers).
    public var unassignedLowWindowReadsZero = true

    /// Creates the bus with `ramSize` bytes of zeroed RAM (1 MiB ... 256 MiB, a multiple of 4 KiB).
    /// The host not having the memory is fatal here; `MaltaBus.make(ramSize:)` throws instead.
    public convenience init(ramSize: Int) {
        guard let ram = MaltaBus.mapRAM(ramSize) else { fatalError(MaltaBus.noRAM(ramSize).message) }
        self.init(ramSize: ramSize, ram: ram)
    }

    /// A bus with `ramSize` bytes of RAM, or an error when the host cannot give that much memory.
    public static func make(ramSize: Int) throws(ConfigurationError) -> MaltaBus {
        guard let ram = mapRAM(ramSize) else { throw noRAM(ramSize) }
        return MaltaBus(ramSize: ramSize, ram: ram)
    }

    static func noRAM(_ ramSize: Int) -> ConfigurationError {
        ConfigurationError("cannot allocate \(ramSize >> 20) MiB of guest RAM: the host is out of memory (or of address space under a ulimit)")
    }

    /// `ramSize` bytes of zeroed, page-aligned memory, or nil. An anonymous mapping is only
    /// backed when touched.
    static func mapRAM(_ ramSize: Int) -> UnsafeMutableRawPointer? {
        precondition(ramSize >= MaltaBus.minRAMSize && ramSize <= MaltaBus.maxRAMSize && ramSize % 4096 == 0,
                     "RAM size must be a multiple of 4 KiB between 1 MiB and 256 MiB")
        let p = mmap(nil, ramSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { return nil }
        return p
    }

    private init(ramSize: Int, ram: UnsafeMutableRawPointer) {
        self.ramSize = ramSize
        ramFrames = UInt32(ramSize >> 12)
        self.ram = ram
    }

    deinit { munmap(ram, ramSize) }

    // MARK: Building the map

    /// Maps `device` at physical `base` for `size` bytes; the device sees offsets starting at
    /// `deviceOffset`. The window must not overlap RAM or another window.
    public func map(_ name: String, _ device: any Device, at base: UInt32, size: UInt32, deviceOffset: UInt32 = 0) {
        precondition(size > 0 && UInt64(base) + UInt64(size) <= 1 << 32, "device window outside the address space")
        precondition(UInt64(base) >= UInt64(ramSize), "device window \(name) overlaps RAM")
        let new = DeviceRegion(name: name, base: base, size: size, device: device, deviceOffset: deviceOffset)
        for r in regions {
            precondition(new.last < r.base || new.base > r.last, "device window \(name) overlaps \(r.name)")
        }
        regions.append(new)
        regions.sort { $0.base < $1.base }
    }

    /// The device window containing `address`, if any.
    public func region(containing address: UInt32) -> DeviceRegion? {
        for r in regions where r.contains(address) { return r }
        return nil
    }

    // MARK: PhysicalBus

    @inlinable
    public func ramPage(frame: UInt32) -> UnsafeMutableRawPointer? {
        frame < ramFrames ? ram + Int(frame) << 12 : nil
    }

    public func read(_ address: UInt32, size: Int) -> UInt32? {
        if let i = regionIndex(address) {
            return devices.table[i].read(offset: address &- bases[i] &+ offsets[i], size: size)
        }
        return UInt64(address) < MaltaBus.lowWindowEnd && unassignedLowWindowReadsZero ? 0 : nil
    }

    public func write(_ address: UInt32, size: Int, value: UInt32) -> Bool {
        if let i = regionIndex(address) {
            let mask: UInt32 = size >= 4 ? 0xFFFF_FFFF : (1 << (8 * UInt32(size))) - 1
            return devices.table[i].write(offset: address &- bases[i] &+ offsets[i], size: size, value: value & mask)
        }
        return UInt64(address) < MaltaBus.lowWindowEnd && unassignedLowWindowReadsZero
    }

    // MARK: Host access to RAM (loaders, debuggers)

    /// Whether `[address, address + count)` lies inside RAM.
    public func ramContains(_ address: UInt32, count: Int) -> Bool {
        count >= 0 && UInt64(address) + UInt64(count) <= UInt64(ramSize)
    }

    /// Copies `bytes` into RAM at physical `address`. False (and nothing written) when the range
    /// is not entirely RAM. The caller tells the CPU (`CPU.invalidateCode`).
    @discardableResult
    public func copyToRAM(_ bytes: UnsafeRawBufferPointer, at address: UInt32) -> Bool {
        guard ramContains(address, count: bytes.count) else { return false }
        if let base = bytes.baseAddress, bytes.count > 0 {
            (ram + Int(address)).copyMemory(from: base, byteCount: bytes.count)
        }
        return true
    }

    /// Fills `count` bytes of RAM at physical `address` with zeros. False when not all RAM.
    @discardableResult
    public func zeroRAM(at address: UInt32, count: Int) -> Bool {
        guard ramContains(address, count: count) else { return false }
        (ram + Int(address)).initializeMemory(as: UInt8.self, repeating: 0, count: count)
        return true
    }

    /// A copy of `count` bytes of RAM at physical `address`, or nil when not all RAM.
    public func readRAM(at address: UInt32, count: Int) -> [UInt8]? {
        guard ramContains(address, count: count) else { return nil }
        return [UInt8](UnsafeRawBufferPointer(start: ram + Int(address), count: count))
    }
}
