import MagritteCore

/// The PCI functions of the Malta's Intel PIIX4 south bridge that Linux needs beyond its ISA
/// devices (the i8259s, the PIT and the RTC are separate devices on the ISA bus):
///
/// - **00:0A.0, the PCI-to-ISA bridge** (8086:7110): a configuration space with QEMU's reset
///   values; Linux's Malta fix-up reads the PCI interrupt routing (PIRQRC) and sets the top of
///   memory, SERIRQ and special cycles — the registers hold what is written and change nothing.
/// - **00:0A.3, power management** (8086:7113): Linux's Malta fix-up puts the PM I/O base
///   (PMBA, 0x40) at 0x1000 and enables it (PMREGMISC, 0x80); `piix4-poweroff` then powers the
///   board off by setting SUS_EN in PMCNTRL (PM base + 4) with sleep type 0, which QEMU treats
///   as soft-off (`acpi_pm1_cnt_write`). Here that sets `poweredOff` and calls `onPowerOff`.
///   The PM registers answer at ports 0x1000–0x103F only while PMBA is 0x1000 and enabled
///   (another base reads as the floating bus); PMTMR (base + 8) counts at 3.579545 MHz of guest
///   time. The SMBus (and its SPD EEPROM) is not modelled.
///
/// The IDE (0A.1) and USB (0A.2) functions are absent.
public final class PIIX4 {
    public static let device = 10
    public static let pmBase: UInt32 = 0x1000
    public static let pmTimerFrequency: UInt64 = 3_579_545

    public let isaBridge = PCIConfigSpace(
        values: [0x00: 0x7110_8086, 0x04: 0x0200_0000, 0x08: 0x0601_0000, 0x0C: 0x0080_0000,
                 0x2C: 0x1100_1AF4, 0x4C: 0x0003_004D, 0x60: 0x0B0B_0A0A, 0x68: 0x0000_0200,
                 0x70: 0x0000_0080, 0x74: 0x0C0C_0000, 0x78: 0x0000_0002, 0xA0: 0x0000_0008,
                 0xA8: 0x0000_000F],
        writable: [0x04: 0x0000_000F, 0x0C: 0x0000_FF00, 0x40: ~0, 0x44: ~0, 0x48: ~0, 0x4C: ~0,
                   0x60: ~0, 0x64: ~0, 0x68: ~0, 0x6C: ~0, 0x70: ~0, 0x74: ~0, 0x78: ~0,
                   0x7C: ~0, 0x80: ~0, 0x88: ~0, 0x8C: ~0, 0x90: ~0, 0xA0: ~0, 0xA4: ~0,
                   0xA8: ~0, 0xAC: ~0, 0xB0: ~0, 0xB4: ~0, 0xCC: ~0])
    public let powerManagement = PCIConfigSpace(
        values: [0x00: 0x7113_8086, 0x04: 0x0280_0000, 0x08: 0x0680_0003, 0x2C: 0x1100_1AF4,
                 0x3C: 0x0000_0100, 0x40: 0x0000_0001, 0x58: 0x0200_0000, 0x5C: 0x9000_0000,
                 0x60: 0x6000_0000, 0x64: 0x9800_0000, 0x90: 0x0000_1101, 0xD0: 0x0009_0000],
        writable: [0x04: 0x0000_0001, 0x3C: 0x0000_00FF, 0x40: 0x0000_FFC0, 0x80: 0x0000_0001,
                   0x90: 0x0000_FFF0, 0xD0: ~0, 0xD4: ~0])
    /// The PM I/O registers (mapped by the board at ISA ports 0x1000–0x103F).
    public private(set) lazy var pmRegisters = PMRegisters(piix4: self)

    let clock: GuestClock
    /// Whether the guest has powered the board off (PMCNTRL SUS_EN, sleep type 0).
    public private(set) var poweredOff = false
    /// Called when the guest powers the board off.
    public var onPowerOff: (() -> Void)?

    var pmEnable: UInt16 = 0
    var pmControl: UInt16 = 0

    public init(clock: GuestClock) {
        self.clock = clock
    }

    public func reset() {
        isaBridge.reset()
        powerManagement.reset()
        pmEnable = 0
        pmControl = 0
        poweredOff = false
    }

    /// Whether the PM registers answer at `PIIX4.pmBase`.
    var pmDecoded: Bool {
        powerManagement.read(0x80 >> 2) & 1 != 0 && powerManagement.read(0x40 >> 2) & 0xFFC0 == PIIX4.pmBase
    }

    /// PMBA's I/O registers: PMSTS (0), PMEN (2), PMCNTRL (4), PMTMR (8); the rest reads 0.
    public final class PMRegisters: Device {
        unowned let piix4: PIIX4
        init(piix4: PIIX4) { self.piix4 = piix4 }

        public func read(offset: UInt32, size: Int) -> UInt32? {
            guard piix4.pmDecoded else { return 0xFF }
            switch offset {
            case 2: return UInt32(piix4.pmEnable & 0xFF)
            case 3: return UInt32(piix4.pmEnable >> 8)
            case 4: return UInt32(piix4.pmControl & 0xFF)
            case 5: return UInt32(piix4.pmControl >> 8)
            case 8...11:
                let ticks = piix4.clock.ticks(of: PIIX4.pmTimerFrequency, atCycle: piix4.clock.preciseCycles())
                return UInt32(truncatingIfNeeded: (ticks & 0xFF_FFFF) >> (8 * UInt64(offset - 8))) & 0xFF
            default: return 0  // PMSTS and the general-purpose registers: nothing pending
            }
        }

        public func write(offset: UInt32, size: Int, value: UInt32) -> Bool {
            guard piix4.pmDecoded else { return true }
            let v = UInt16(value & 0xFF)
            switch offset {
            case 2: piix4.pmEnable = piix4.pmEnable & 0xFF00 | v
            case 3: piix4.pmEnable = piix4.pmEnable & 0x00FF | v << 8
            case 4: piix4.pmControl = piix4.pmControl & 0xFF00 | v
            case 5:
                let control = piix4.pmControl & 0x00FF | v << 8
                // SUS_EN (bit 13) is a command; sleep type 0 (bits 12:10) is soft-off.
                piix4.pmControl = control & ~0x2000
                if control & 0x2000 != 0 && (control >> 10) & 7 == 0 {
                    piix4.poweredOff = true
                    piix4.onPowerOff?()
                }
            default: break
            }
            return true
        }
    }
}

extension PIIX4 {
    /// Appends both PCI functions' configuration spaces and the PM registers.
    public func saveState(to w: inout SnapshotWriter) {
        isaBridge.saveState(to: &w)
        powerManagement.saveState(to: &w)
        w.put(pmEnable)
        w.put(pmControl)
        w.put(poweredOff)
    }

    public func restoreState(from r: inout SnapshotReader) throws(SnapshotError) {
        try isaBridge.restoreState(from: &r)
        try powerManagement.restoreState(from: &r)
        pmEnable = try r.u16()
        pmControl = try r.u16()
        poweredOff = try r.bool()
    }
}
