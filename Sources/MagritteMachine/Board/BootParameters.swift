import MagritteCore

/// What QEMU's Malta `-kernel` boot leaves behind for the kernel, reproduced byte for byte:
/// the YAMON-style argument/environment block in RAM, the boot ROM with its small boot loader,
/// and the register values at the kernel's entry (`hw/mips/malta.c`: `load_kernel`,
/// `write_bootloader`; measured on QEMU 7.2, see `Docs/board.md`).
public enum BootParameters {
    /// Physical address of the block (QEMU's ENVP_PADDR).
    public static let physicalAddress: UInt32 = 0x2000
    /// Its kseg0 address, which the kernel receives in a1 (argv) and a2 (envp = argv + 8).
    public static let virtualAddress: UInt32 = 0x8000_2000
    /// Pointer slots in the table (ENVP_NB_ENTRIES).
    public static let entries = 16
    /// Bytes reserved for each string (ENVP_ENTRY_SIZE); longer strings are cut to 255 bytes.
    public static let entrySize = 256
    /// The block's physical extent: 16 pointers then 16 strings of 256 bytes.
    public static let physicalRange: Range<UInt32> = physicalAddress..<(physicalAddress + UInt32(entries * (4 + entrySize)))

    /// Initial stack pointer: 64 bytes below the block.
    public static let stackPointer: UInt32 = virtualAddress - 64
    /// Return address at entry: just after the boot loader's `jalr t9` and its delay slot.
    public static let returnAddress: UInt32 = 0xBFC0_0644
    /// k0 and k1 as the boot loader's last GT-64120 register write leaves them.
    public static let k0: UInt32 = 0x0000_005E
    public static let k1: UInt32 = 0xBBE0_0088
    /// The board ID QEMU patches into the boot ROM at 0x1FC00010 (Malta with a CoreLV card).
    public static let boardID: UInt32 = 0x0000_0420

    /// The argument/environment block: argv = [kernel name, command line], then the
    /// environment "memsize", "ememsize", "modetty0", "rngseed" as name/value string pairs, then
    /// a null pointer. Unused slots and string tails are zero.
    public static func block(kernelName: String, commandLine: String, ramSize: Int, rngSeed: [UInt8]) -> [UInt8] {
        let lowSize = min(ramSize, 256 << 20)
        let strings = [
            kernelName, commandLine,
            "memsize", String(lowSize),
            "ememsize", String(ramSize),
            "modetty0", "38400n8r",
            "rngseed", rngSeed.map { Hex.padded($0, width: 2) }.joined(),
        ]
        var block = [UInt8](repeating: 0, count: entries * (4 + entrySize))
        for (i, s) in strings.enumerated() {
            let offset = entries * 4 + i * entrySize
            let pointer = virtualAddress + UInt32(offset)
            for b in 0..<4 { block[i * 4 + b] = UInt8(truncatingIfNeeded: pointer >> (8 * UInt32(b))) }
            for (j, c) in s.utf8.prefix(entrySize - 1).enumerated() { block[offset + j] = c }
        }
        return block
    }

    /// The boot ROM QEMU writes for a kernel entered at `entry` with `ramSize` bytes of RAM
    /// (only the non-zero prefix; the rest of the 4 MiB reads 0). With `boardID`, the word at
    /// 0x10 holds the board ID as in the copy at 0x1FC00000; the flash at 0x1E000000 lacks it.
    public static func bootROM(entry: UInt32, ramSize: Int, boardID: Bool = true) -> [UInt8] {
        var words = [UInt32](repeating: 0, count: 0x894 / 4)
        func put(_ offset: Int, _ list: [UInt32]) {
            for (i, w) in list.enumerated() { words[offset / 4 + i] = w }
        }
        let run: UInt32 = 0x9FC0_0000
        put(0x000, [0x0800_0000 | ((run + 0x580) & 0x0FFF_FFFF) >> 2, 0])
        if boardID { put(0x010, [BootParameters.boardID]) }
        // YAMON service vectors.
        for (offset, target) in [(0x500, 0x580), (0x504, 0x83C), (0x520, 0x580), (0x52C, 0x800), (0x534, 0x808),
                                 (0x538, 0x800), (0x53C, 0x800), (0x540, 0x800), (0x544, 0x800), (0x548, 0x800),
                                 (0x54C, 0x800), (0x550, 0x800), (0x554, 0x800)] {
            put(offset, [run + UInt32(target)])
        }
        // li rt, imm = lui + ori.
        func li(_ rt: UInt32, _ imm: UInt32) -> [UInt32] {
            [0x3C00_0000 | rt << 16 | imm >> 16, 0x3400_0000 | rt << 21 | rt << 16 | (imm & 0xFFFF)]
        }
        let k0: UInt32 = 26, k1: UInt32 = 27
        func writeU32(_ address: UInt32, _ value: UInt32) -> [UInt32] {
            li(k0, value) + li(k1, address) + [0xAC00_0000 | k1 << 21 | k0 << 16]  // sw k0, 0(k1)
        }
        // The GT-64120 set-up YAMON does (values byte-swapped: the GT's registers are big-endian here).
        func gt(_ v: UInt32) -> UInt32 { v.byteSwapped }
        var code: [UInt32] = []
        code += writeU32(0xB400_0068, gt(0x1BE0_0000 << 3))
        code += writeU32(0xBBE0_0048, gt(0x1800_0000 << 3))
        code += writeU32(0xBBE0_0050, gt(0x0800_0000 << 3))
        code += writeU32(0xBBE0_0058, gt(0x1000_0000 << 3))
        code += writeU32(0xBBE0_0060, gt(0x07E0_0000 << 3))
        code += writeU32(0xBBE0_0080, gt(0x1820_0000 << 3))
        code += writeU32(0xBBE0_0088, gt(0x0BC0_0000 << 3))
        code += li(29, stackPointer) + li(4, 2) + li(5, virtualAddress) + li(6, virtualAddress + 8)
        code += li(7, UInt32(min(ramSize, 256 << 20))) + li(25, entry)
        code += [0x0320_F809, 0]  // jalr t9; nop
        put(0x580, code)
        put(0x800, [
            0x03E0_0009, 0x2402_0000,  // 800: jr ra; li v0,0
            0x03E0_6821, 0x0080_5821, 0x00A0_5021, 0x9144_0000, 0x254A_0001, 0x1080_0005, 0,  // 808: print
            0x0FF0_021C, 0, 0x1000_FFF9, 0, 0x01A0_0009, 0x0160_2021,
            0x03E0_6821, 0x0080_5821, 0x00A0_5021, 0x00C0_6021, 0x9144_0000, 0x0FF0_021C, 0,  // 83c: print_count
            0x254A_0001, 0x258C_FFFF, 0x1580_FFFA, 0, 0x01A0_0009, 0x0160_2021,
            0x3C08_B800, 0x3508_03F8, 0x9109_0005, 0, 0x3129_0040, 0x1120_FFFC, 0,  // 870: outch
            0x03E0_0009, 0xA104_0000,
        ])
        var bytes: [UInt8] = []
        bytes.reserveCapacity(words.count * 4)
        for w in words { for b in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: w >> (8 * UInt32(b)))) } }
        return bytes
    }
}
