import MagritteCore

/// The Malta board's FPGA registers at physical 0x1F000000 (1 MiB window), as QEMU models them
/// (`hw/mips/malta.c`, `malta_fpga_read`/`malta_fpga_write`).
///
/// What matters to guests: SOFTRES (+0x500), where writing 0x42 resets the board — under QEMU's
/// `-no-reboot`, and here, that ends the run (`poweredOff`, `onSoftReset`). The LED bar and the
/// eight-character ASCII display are recorded so a front end can show them. Registers are
/// decoded at their exact offsets whatever the access size (the value is truncated to the
/// size); anything else reads 0 and ignores writes. The CBUS UART at +0x900 is a separate
/// device the board maps into this window's hole.
public final class MaltaFPGA: Device {
    public enum Register {
        public static let switches: UInt32 = 0x200
        public static let status: UInt32 = 0x208
        public static let jumpers: UInt32 = 0x210
        public static let ledBar: UInt32 = 0x408
        public static let asciiWord: UInt32 = 0x410
        /// ASCIIPOS0; position n is at asciiPos0 + 8n (n = 0...7).
        public static let asciiPos0: UInt32 = 0x418
        public static let softReset: UInt32 = 0x500
        public static let breakReset: UInt32 = 0x508
        public static let gpout: UInt32 = 0xA00
        public static let gpinp: UInt32 = 0xA08
        public static let i2cInput: UInt32 = 0xB00
        public static let i2cOutputEnable: UInt32 = 0xB08
        public static let i2cOutput: UInt32 = 0xB10
        public static let i2cSelect: UInt32 = 0xB18
    }
    /// The value written to SOFTRES that resets the board.
    public static let softResetMagic: UInt32 = 0x42

    /// The LED bar (8 LEDs, bit n = LED n).
    public private(set) var leds: UInt8 = 0
    /// The eight characters of the ASCII display.
    public private(set) var display: [UInt8] = Array(repeating: 0x20, count: 8)
    public private(set) var breakReset: UInt8 = 0x0A
    public private(set) var gpout: UInt8 = 0
    private var i2cOutputEnable: UInt8 = 0
    private var i2cOutput: UInt8 = 3
    private var i2cSelect: UInt8 = 1
    /// Whether the guest has written the reset magic to SOFTRES since the last `reset()`.
    public private(set) var poweredOff = false

    /// Called when the guest writes 0x42 to SOFTRES (the board stops the CPU here).
    public var onSoftReset: (() -> Void)?
    /// Called after the LED bar or the ASCII display changed.
    public var onDisplayChange: (() -> Void)?

    public init() {}

    /// The ASCII display as text (non-printable characters shown as spaces).
    public var displayText: String {
        String(decoding: display.map { (0x20...0x7E).contains($0) ? $0 : 0x20 }, as: UTF8.self)
    }

    /// The LED bar as QEMU draws it: '#' for a lit LED, LED 0 first.
    public var ledText: String {
        String((0..<8).map { leds & (1 << $0) != 0 ? "#" : " " })
    }

    /// The power-on register values (QEMU's `malta_fpga_reset`).
    public func reset() {
        leds = 0
        breakReset = 0x0A
        gpout = 0
        i2cOutputEnable = 0
        i2cOutput = 3
        i2cSelect = 1
        display = Array(repeating: 0x20, count: 8)
        poweredOff = false
    }

    public func read(offset: UInt32, size: Int) -> UInt32? {
        let value: UInt32
        switch offset & 0xF_FFFF {
        case Register.status: value = 0x10  // little-endian board
        case Register.ledBar: value = UInt32(leds)
        case Register.breakReset: value = UInt32(breakReset)
        case Register.gpout: value = UInt32(gpout)
        case Register.gpinp: value = i2cSelect != 0 ? UInt32(i2cOutput) : 0
        case Register.i2cInput: value = 0x2  // SCL high; no SPD EEPROM answers on SDA
        case Register.i2cOutputEnable: value = UInt32(i2cOutputEnable)
        case Register.i2cOutput: value = UInt32(i2cOutput)
        case Register.i2cSelect: value = UInt32(i2cSelect)
        default: value = 0  // SWITCH, JMPRS, SOFTRES and unknown registers
        }
        return size >= 4 ? value : value & ((1 << (8 * UInt32(size))) - 1)
    }

    public func write(offset: UInt32, size: Int, value: UInt32) -> Bool {
        let register = offset & 0xF_FFFF
        switch register {
        case Register.ledBar:
            leds = UInt8(truncatingIfNeeded: value)
            onDisplayChange?()
        case Register.asciiWord:
            let hex = Array(String(value, radix: 16, uppercase: true).utf8)
            display = Array(repeating: UInt8(ascii: "0"), count: 8 - hex.count) + hex
            onDisplayChange?()
        case Register.asciiPos0...(Register.asciiPos0 + 7 * 8) where (register - Register.asciiPos0) % 8 == 0:
            display[Int((register - Register.asciiPos0) / 8)] = UInt8(truncatingIfNeeded: value)
            onDisplayChange?()
        case Register.softReset:
            if value == MaltaFPGA.softResetMagic {
                poweredOff = true
                onSoftReset?()
            }
        case Register.breakReset: breakReset = UInt8(truncatingIfNeeded: value)
        case Register.gpout: gpout = UInt8(truncatingIfNeeded: value)
        case Register.i2cOutputEnable: i2cOutputEnable = UInt8(truncatingIfNeeded: value) & 3
        case Register.i2cOutput: i2cOutput = UInt8(truncatingIfNeeded: value)
        case Register.i2cSelect: i2cSelect = UInt8(truncatingIfNeeded: value) & 1
        default: break
        }
        return true
    }
}

extension MaltaFPGA {
    /// Appends the LEDs, the ASCII display, the I2C and GPIO registers and the SOFTRES state.
    public func saveState(to w: inout SnapshotWriter) {
        for v in [leds, breakReset, gpout, i2cOutputEnable, i2cOutput, i2cSelect] { w.put(v) }
        w.put(display)
        w.put(poweredOff)
    }

    public func restoreState(from r: inout SnapshotReader) throws(SnapshotError) {
        let b = try r.raw(6), text = try r.byteArray(limit: 8), off = try r.bool()
        guard text.count == 8 else { throw SnapshotError("the snapshot is corrupt (an ASCII display of \(text.count) characters)") }
        (leds, breakReset, gpout, i2cOutputEnable, i2cOutput, i2cSelect) = (b[0], b[1], b[2], b[3], b[4], b[5])
        display = text
        poweredOff = off
    }
}
