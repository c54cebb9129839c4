/// The PIIX4's ISA I/O port space, which the Malta's GT-64120 maps at physical 0x18000000
/// (port `p` is physical 0x18000000 + p).
///
/// ISA devices are 8 bits wide: a 16- or 32-bit access is split into byte accesses to
/// consecutive ports, lowest port first, as QEMU does for them (a word read at the UART's 0x3F8
/// returns RBR, IER, IIR and LCR in its four bytes). A port no device decodes reads 0xFF and
/// ignores writes — the floating ISA bus, as QEMU's unassigned I/O reads.
public final class ISAPortSpace: Device {
    /// Number of ports (the 64 KiB x86-style I/O space).
    public static let portCount = 0x1_0000

    private struct Mapping {
        let name: String
        let first: UInt32
        let count: UInt32
        let device: any Device
    }
    private var mappings: [Mapping] = []
    // The lookup the accesses use: port -> index of its device (0xFF: none), and the devices
    // and first ports by index (no String or struct copies on the access path: Linux polls the
    // RTC millions of times while it calibrates the CPU clock).
    // (Written only by `map`: no exclusivity check per access.)
    @exclusivity(unchecked) private var portMap = [UInt8](repeating: 0xFF, count: ISAPortSpace.portCount)
    @exclusivity(unchecked) private var devices = DeviceTable()
    @exclusivity(unchecked) private var firsts: [UInt32] = []

    public init() {}

    /// Puts `device` at ports `first ..< first + count`; it sees byte accesses with the offset
    /// from `first`.
    public func map(_ name: String, _ device: any Device, port first: UInt16, count: UInt16) {
        let f = UInt32(first), c = UInt32(count)
        precondition(c > 0 && f + c <= UInt32(ISAPortSpace.portCount), "port range outside the I/O space")
        for m in mappings {
            precondition(f + c <= m.first || f >= m.first + m.count, "ports of \(name) overlap \(m.name)")
        }
        precondition(mappings.count < 0xFF, "too many ISA devices")
        let index = UInt8(mappings.count)
        mappings.append(Mapping(name: name, first: f, count: c, device: device))
        devices.append(device)
        firsts.append(f)
        for p in f..<(f + c) { portMap[Int(p)] = index }
    }

    /// The name of the device at `port`, if any (for debuggers).
    public func deviceName(at port: UInt16) -> String? {
        mappings.first { UInt32(port) &- $0.first < $0.count }?.name
    }

    @inline(__always)
    private func readByte(_ port: UInt32) -> UInt8 {
        let i = Int(portMap[Int(port & 0xFFFF)])
        guard i != 0xFF else { return 0xFF }
        return UInt8(truncatingIfNeeded: devices.table[i].read(offset: (port & 0xFFFF) - firsts[i], size: 1) ?? 0xFF)
    }

    @inline(__always)
    private func writeByte(_ port: UInt32, _ value: UInt8) {
        let i = Int(portMap[Int(port & 0xFFFF)])
        guard i != 0xFF else { return }
        _ = devices.table[i].write(offset: (port & 0xFFFF) - firsts[i], size: 1, value: UInt32(value))
    }

    public func read(offset: UInt32, size: Int) -> UInt32? {
        var value: UInt32 = 0
        for i in 0..<size {
            value |= UInt32(readByte(offset &+ UInt32(i))) << (8 * UInt32(i))
        }
        return value
    }

    public func write(offset: UInt32, size: Int, value: UInt32) -> Bool {
        for i in 0..<size {
            writeByte(offset &+ UInt32(i), UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))))
        }
        return true
    }
}
