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
