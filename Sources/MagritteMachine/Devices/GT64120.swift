import MagritteCore

/// The Galileo GT-64120 system controller of the Malta's Core LV card, as far as Linux uses it
/// (`arch/mips/mti-malta`, `arch/mips/pci/ops-gt64xxx_pci0.c`): its 4 KiB register file at
/// physical 0x1BE00000, the PCI configuration mechanism (PCI_0 configuration address at 0xCF8,
/// data at 0xCFC), the interrupt cause register that reports master aborts, and the PCI
/// interrupt-acknowledge register (0xC34) through which Linux asks the PIIX4's i8259 for the
/// pending interrupt.
///
/// The registers start with the values QEMU's GT-64120 holds after QEMU's `-kernel` boot
/// loader has programmed it (measured on QEMU 7.2 by a guest that read them): internal space
/// decode (ISD) at 0x1BE00000, the PCI I/O window 0x18000000–0x181FFFFF, PCI memory windows
/// 0x10000000–0x17FFFFFF and 0x18200000–0x1BDFFFFF. Register values are little-endian (the
/// CPU interface's endianness bit is set, as on QEMU for a little-endian CPU); writes follow
/// QEMU's masks. The windows are fixed in this board: moving them by writing the decode
/// registers changes what the registers read, not where devices answer.
///
/// The PCI bus holds the GT-64120's own PCI function (00:00.0, 11AB:4620, a host bridge) with
/// QEMU's configuration header, and whatever functions the board attaches (`attach`: the
/// Malta attaches the PIIX4's ISA bridge and power management, 00:0A.0 and 00:0A.3); every
/// other slot answers nothing (0xFFFFFFFF, no master abort flagged, as on QEMU). The PIIX4's
/// IDE and USB functions, the PCnet NIC and the Cirrus VGA that QEMU adds are absent.
public final class GT64120: Device {
    public enum Register {
        public static let cpuInterface: UInt32 = 0x000
        public static let pci0IOLow: UInt32 = 0x048, pci0IOHigh: UInt32 = 0x050
        public static let pci0Mem0Low: UInt32 = 0x058, pci0Mem0High: UInt32 = 0x060
        public static let internalSpaceDecode: UInt32 = 0x068
        public static let pci0Mem1Low: UInt32 = 0x080, pci0Mem1High: UInt32 = 0x088
        public static let pci0IORemap: UInt32 = 0x0F0, pci0Mem0Remap: UInt32 = 0x0F8, pci0Mem1Remap: UInt32 = 0x100
        public static let pci0Sync: UInt32 = 0x0C0, pci1Sync: UInt32 = 0x0C8
        public static let pci0Command: UInt32 = 0xC00
        public static let interruptCause: UInt32 = 0xC18
        public static let interruptMask: UInt32 = 0xC1C
        public static let pci0InterruptMask: UInt32 = 0xC24
        public static let pci0SERRMask: UInt32 = 0xC28
        public static let pci0InterruptAcknowledge: UInt32 = 0xC34
        public static let pci0ConfigAddress: UInt32 = 0xCF8
        public static let pci0ConfigData: UInt32 = 0xCFC
    }

    /// The register values QEMU's GT-64120 shows at the kernel's entry (only the non-zero ones).
    static let initialRegisters: [UInt32: UInt32] = [
        0x000: 0x0000_1000, 0x010: 0x07, 0x018: 0x08, 0x020: 0x0F, 0x028: 0xE0, 0x030: 0x70,
        0x038: 0xF8, 0x040: 0x7F, 0x048: 0xC0, 0x050: 0x40, 0x058: 0x80, 0x060: 0x3F, 0x068: 0xDF,
        0x080: 0xC1, 0x088: 0x5E, 0x0F0: 0xC0, 0x0F8: 0x80, 0x100: 0xC1, 0x108: 0x100,
        0x110: 0x110, 0x118: 0x120, 0x404: 0x07, 0x408: 0x08, 0x40C: 0x0F, 0x448: 0x200,
        0x44C: 0x05, 0x450: 0x05, 0x454: 0x05, 0x458: 0x05, 0x45C: 0x386F_FFFF, 0x460: 0x386F_FFFF,
        0x464: 0x386F_FFFF, 0x468: 0x386F_FFFF, 0x46C: 0x146F_FFFF, 0x470: 0xFFFF_FFFF,
        0x478: 0x07, 0x47C: 0x02, 0x850: 0xFFFF_FFFF, 0x858: 0x00FF_FFFF, 0xC00: 0x0001_0001,
        0xC04: 0x070F, 0xC08: 0x00FF_F000, 0xC0C: 0x00FF_F000, 0xC10: 0x01FF_F000,
        0xC14: 0x00FF_F000, 0xC3C: 0x0F, 0xC84: 0x070F, 0xC88: 0x00FF_F000, 0xC8C: 0x00FF_F000,
        0xC94: 0x00FF_F000,
    ]

    /// The configuration header of the GT-64120's PCI function (00:00.0), as QEMU's reads.
    static let hostBridgeHeader: [UInt32] = [
        0x4620_11AB, 0x0280_0000, 0x0600_0010, 0x0000_0000,
        0x0000_0008, 0x0100_0008, 0x1C00_0000, 0x1F00_0000,
        0x1400_0000, 0x1400_0001, 0x0000_0000, 0x1100_1AF4,
        0x0000_0000, 0x0000_0000, 0x0000_0000, 0x0000_0100,
    ]

    /// The i8259 pair that answers the PCI interrupt-acknowledge cycle.
    let pic: I8259Pair
    public private(set) var registers = [UInt32](repeating: 0, count: 1024)
    /// The host bridge's configuration space.
    public let hostBridge = PCIConfigSpace(header: GT64120.hostBridgeHeader, writeMask: [1: 0x0000_0147, 3: 0x0000_FF00, 15: 0xFF])
    /// Functions on bus 0 by device << 3 | function.
    private var functions: [Int: PCIConfigSpace] = [:]

    public init(pic: I8259Pair) {
        self.pic = pic
        reset()
    }

    public func reset() {
        registers = [UInt32](repeating: 0, count: 1024)
        for (offset, value) in GT64120.initialRegisters { registers[Int(offset >> 2)] = value }
        hostBridge.reset()
        functions[0] = hostBridge
    }

    /// Puts a PCI function on bus 0 (the board resets it).
    public func attach(_ config: PCIConfigSpace, device: Int, function: Int) {
        functions[device << 3 | function] = config
    }

    // MARK: PCI configuration

    /// A configuration read on bus 0 (nil: no device answers).
    func configRead(device: Int, function: Int, register: Int) -> UInt32? {
        functions[device << 3 | function]?.read(register)
    }

    func configWrite(device: Int, function: Int, register: Int, value: UInt32) {
        functions[device << 3 | function]?.write(register, value)
    }

    private var configAddress: UInt32 { registers[Int(Register.pci0ConfigAddress >> 2)] }

    private func readConfigData() -> UInt32 {
        let a = configAddress
        guard a & 0x8000_0000 != 0 else { return 0xFFFF_FFFF }
        let bus = (a >> 16) & 0xFF
        guard bus == 0 else { return 0xFFFF_FFFF }
        return configRead(device: Int((a >> 11) & 31), function: Int((a >> 8) & 7), register: Int((a >> 2) & 63))
            ?? 0xFFFF_FFFF
    }

    private func writeConfigData(_ value: UInt32) {
        let a = configAddress
        guard a & 0x8000_0000 != 0, (a >> 16) & 0xFF == 0 else { return }
        configWrite(device: Int((a >> 11) & 31), function: Int((a >> 8) & 7), register: Int((a >> 2) & 63), value: value)
    }

    // MARK: Device

    private func readRegister(_ offset: UInt32) -> UInt32 {
        switch offset {
        case Register.pci0InterruptAcknowledge:
            return pic.acknowledge()
        case Register.pci0Sync, Register.pci1Sync:
            return 0xC000_FFEE
        case Register.pci0ConfigData:
            return readConfigData()
        default:
            return registers[Int(offset >> 2)]
        }
    }

    private func writeRegister(_ offset: UInt32, _ value: UInt32) {
        let i = Int(offset >> 2)
        switch offset {
        case Register.pci0IOLow, Register.pci0Mem0Low, Register.pci0Mem1Low, 0x090, 0x098, 0x0A0:
            registers[i] = value & 0x7FFF
            let remap: UInt32
            switch offset {
            case Register.pci0IOLow: remap = Register.pci0IORemap
            case Register.pci0Mem0Low: remap = Register.pci0Mem0Remap
            case Register.pci0Mem1Low: remap = Register.pci0Mem1Remap
            case 0x090: remap = 0x108
            case 0x098: remap = 0x110
            default: remap = 0x118
            }
            registers[Int(remap >> 2)] = value & 0x7FF
        case Register.pci0IOHigh, Register.pci0Mem0High, Register.pci0Mem1High, 0x0A8, 0x0B0, 0x0B8:
            registers[i] = value & 0x7F
        case Register.internalSpaceDecode:
            registers[i] = value & 0x7FFF
        case Register.pci0IORemap, Register.pci0Mem0Remap, Register.pci0Mem1Remap, 0x108, 0x110, 0x118:
            registers[i] = value & 0x7FF
        case 0x004, 0x070, 0x078, 0x0C0, 0x0C8, 0x470...0x484, 0x840...0x87C:
            break  // read-only (multi-GT, error report, sync barriers, ECC), or DMA/timers not modelled
        case Register.pci0Command, 0xC80:
            registers[i] = value & 0x0401_FC0F
        case Register.interruptCause:
            // Write 0 to clear a bit; bit 0 summarises the others.
            var cause = registers[i] & (value & 0xFFFF_FFFE)
            if cause & 0xFFFF_FFFE != 0 { cause |= 1 }
            registers[i] = cause
        case Register.interruptMask:
            registers[i] = value & 0x3C3F_FFFE
        case Register.pci0InterruptMask:
            registers[i] = value & 0x03FF_FFFE
        case Register.pci0SERRMask:
            registers[i] = value & 0x3F
        case Register.pci0ConfigAddress:
            registers[i] = value
        case Register.pci0ConfigData:
            writeConfigData(value)
        case Register.pci0InterruptAcknowledge:
            break
        default:
            registers[i] = value
        }
    }

    public func read(offset: UInt32, size: Int) -> UInt32? {
        let word = readRegister(offset & 0xFFC)
        if size == 4 { return word }
        let shift = (offset & 3) * 8
        let mask: UInt32 = size == 2 ? 0xFFFF : 0xFF
        return (word >> shift) & mask
    }

    public func write(offset: UInt32, size: Int, value: UInt32) -> Bool {
        let aligned = offset & 0xFFC
        if size == 4 {
            writeRegister(aligned, value)
        } else {
            // A narrow write merges into the current value (never an acknowledge cycle).
            let shift = (offset & 3) * 8
            let mask: UInt32 = (size == 2 ? 0xFFFF : 0xFF) << shift
            let current = aligned == Register.pci0ConfigData ? readConfigData() : registers[Int(aligned >> 2)]
            writeRegister(aligned, (current & ~mask) | ((value << shift) & mask))
        }
        return true
    }
}

/// The 256-byte configuration space of one PCI function: the reset contents, a write mask per
/// dword (bits not in it are read-only; dwords without a mask are read-only), and a hook called
/// after writes so a device can react (a base address register that moves its I/O window).
public final class PCIConfigSpace {
    let initial: [UInt32]
    let writeMask: [Int: UInt32]
    public private(set) var dwords = [UInt32](repeating: 0, count: 64)
    /// Called after a write to dword `register`.
    public var onWrite: ((Int) -> Void)?

    public init(header: [UInt32], writeMask: [Int: UInt32]) {
        var initial = [UInt32](repeating: 0, count: 64)
        for (i, v) in header.enumerated() where i < 64 { initial[i] = v }
        self.initial = initial
        self.writeMask = writeMask
        reset()
    }

    /// Contents and write masks keyed by byte offset (multiples of 4).
    public convenience init(values: [Int: UInt32], writable: [Int: UInt32]) {
        var header = [UInt32](repeating: 0, count: 64)
        for (offset, v) in values { header[offset >> 2] = v }
        var mask: [Int: UInt32] = [:]
        for (offset, m) in writable { mask[offset >> 2] = m }
        self.init(header: header, writeMask: mask)
    }

    public func reset() { dwords = initial }

    public func read(_ register: Int) -> UInt32 { dwords[register & 63] }

    public func write(_ register: Int, _ value: UInt32) {
        let r = register & 63
        guard let mask = writeMask[r] else { return }
        dwords[r] = (dwords[r] & ~mask) | (value & mask)
        onWrite?(r)
    }
}

extension GT64120 {
    /// Appends the register file and the host bridge's configuration space (the functions of
    /// other devices are saved with them).
    public func saveState(to w: inout SnapshotWriter) {
        w.put(registers)
        hostBridge.saveState(to: &w)
    }

    public func restoreState(from r: inout SnapshotReader) throws(SnapshotError) {
        let regs = try r.words(count: 1024)
        try hostBridge.restoreState(from: &r)
        registers = regs
    }
}

extension PCIConfigSpace {
    public func saveState(to w: inout SnapshotWriter) { w.put(dwords) }

    /// Replaces the 64 dwords (without calling `onWrite`).
    public func restoreState(from r: inout SnapshotReader) throws(SnapshotError) {
        dwords = try r.words(count: 64)
    }
}
