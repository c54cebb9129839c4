/// A memory-mapped device: the bus forwards every access inside one of its regions with the
/// offset from the start of what the region maps.
///
/// Accesses are 1, 2 or 4 bytes, naturally aligned (the CPU raises address errors before an
/// unaligned access reaches the bus), little-endian, zero-extended. Devices are only reached on
/// the bus's slow path, so this protocol's existential calls cost nothing on the hot loop.
public protocol Device: AnyObject {
    /// Reads `size` bytes at `offset`. Nil means nothing answers: the CPU raises a bus error.
    func read(offset: UInt32, size: Int) -> UInt32?

    /// Writes the low `size` bytes of `value` at `offset`. False means nothing answers.
    func write(offset: UInt32, size: Int, value: UInt32) -> Bool
}

/// A device as the buses hold it for their accesses: `table` is borrowed per access
/// (`Unmanaged`), and its `let` device is called without a retain and a release, which a device
/// read from an array of `any Device` costs each time (Linux polls its RTC and UART millions of
/// times, and as the VMM's guest through two buses). `owners` keeps them alive.
struct DeviceTable {
    final class Entry {
        let device: any Device
        init(_ device: any Device) { self.device = device }
    }
    private var owners: [Entry] = []
    private(set) var table: [Unmanaged<Entry>] = []

    init(_ devices: [any Device] = []) {
        owners = devices.map(Entry.init)
        table = owners.map { Unmanaged.passUnretained($0) }
    }

    mutating func append(_ device: any Device) {
        owners.append(Entry(device))
        table.append(Unmanaged.passUnretained(owners[owners.count - 1]))
    }
}

extension Unmanaged where Instance == DeviceTable.Entry {
    @inline(__always)
    func read(offset: UInt32, size: Int) -> UInt32? {
        _withUnsafeGuaranteedRef { $0.device.read(offset: offset, size: size) }
    }

    @inline(__always)
    func write(offset: UInt32, size: Int, value: UInt32) -> Bool {
        _withUnsafeGuaranteedRef { $0.device.write(offset: offset, size: size, value: value) }
    }
}

/// A window of the physical address space answered by a device.
public struct DeviceRegion {
    /// A short name for listings and debuggers ("uart", "fpga").
    public let name: String
    /// First physical address of the window.
    public let base: UInt32
    /// Length of the window in bytes.
    public let size: UInt32
    public let device: any Device
    /// The device offset that `base` corresponds to, so one device can be mapped in pieces
    /// (as QEMU's memory-region aliases do for the Malta FPGA around its UART).
    public let deviceOffset: UInt32

    public init(name: String, base: UInt32, size: UInt32, device: any Device, deviceOffset: UInt32 = 0) {
        self.name = name
        self.base = base
        self.size = size
        self.device = device
        self.deviceOffset = deviceOffset
    }

    /// Whether `address` falls inside the window.
    @inlinable
    public func contains(_ address: UInt32) -> Bool { address &- base < size }

    /// The last address of the window (the window may end at 0xFFFFFFFF).
    public var last: UInt32 { base &+ (size &- 1) }
}

/// Read-only memory: reads return its bytes (zeros past their end), writes are ignored as QEMU
/// ignores them for the Malta boot ROM and flash. Reads only: the CPU cannot fetch instructions
/// from it (the core executes from RAM pages only).
public final class ReadOnlyMemory: Device {
    public private(set) var bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Replaces the contents (the board rewrites its boot ROM for each kernel).
    public func replace(with bytes: [UInt8]) { self.bytes = bytes }

    public func read(offset: UInt32, size: Int) -> UInt32? {
        var value: UInt32 = 0
        for i in 0..<size {
            let index = Int(offset) + i
            if index < bytes.count { value |= UInt32(bytes[index]) << (8 * UInt32(i)) }
        }
        return value
    }

    public func write(offset: UInt32, size: Int, value: UInt32) -> Bool { true }
}
