#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MagritteCore

/// A parsed, validated ELF32 little-endian MIPS executable: its loadable segments, entry point,
/// sections and symbols.
///
/// Parsing checks everything that does not depend on the board (header, program headers,
/// segment bounds and overlaps, entry point); `validate(ramSize:)` adds the checks against a
/// RAM size. Segments load at their physical address translated as QEMU's Malta `-kernel`
/// does (`load_elf` with `cpu_mips_kseg0_to_phys`): `p_paddr & 0x1FFFFFFF`. The section header
/// table and symbols are optional extras: a missing or damaged one yields no sections or
/// symbols rather than an error (QEMU does not read them either).
public struct ELFImage: Sendable {
    /// One PT_LOAD program header.
    public struct Segment: Sendable, Equatable {
        /// Index in the program header table.
        public let index: Int
        public let virtualAddress: UInt32
        /// p_paddr as written in the file.
        public let fileAddress: UInt32
        /// Where the segment goes in physical memory: p_paddr & 0x1FFFFFFF.
        public let physicalAddress: UInt32
        public let fileOffset: UInt32
        public let fileSize: UInt32
        public let memorySize: UInt32
        /// p_flags: PF_X = 1, PF_W = 2, PF_R = 4.
        public let flags: UInt32

        public var isExecutable: Bool { flags & 1 != 0 }
        public var isWritable: Bool { flags & 2 != 0 }
        /// Whether virtual address `va` lies inside the segment's memory image.
        public func contains(virtual va: UInt32) -> Bool { va &- virtualAddress < memorySize }
    }

    /// One section header (from the optional section header table).
    public struct Section: Sendable, Equatable {
        public let name: String
        public let type: UInt32
        public let flags: UInt32
        public let address: UInt32
        public let offset: UInt32
        public let size: UInt32

        /// SHF_ALLOC | SHF_EXECINSTR with file contents: what `llvm-objdump -d` disassembles.
        public var isExecutableCode: Bool { type == 1 && flags & 0x2 != 0 && flags & 0x4 != 0 }
    }

    /// A defined symbol from .symtab.
    public struct Symbol: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            case function, object, other
        }
        public let name: String
        public let address: UInt32
        public let size: UInt32
        public let kind: Kind
    }

    /// Where the file came from (its path, or what the caller called it); the boot stub passes
    /// it to the guest as argv[0], as QEMU does with the `-kernel` argument.
    public let name: String
    /// The whole file.
    public let bytes: [UInt8]
    /// e_entry, a virtual address.
    public let entry: UInt32
    /// PT_LOAD segments with a non-empty memory image, in program header order.
    public let segments: [Segment]
    /// Section headers, or empty when the file has none (or a damaged table).
    public let sections: [Section]
    /// Defined function, object and untyped symbols, sorted by address then name.
    public let symbols: [Symbol]

    /// The symbols as the disassembler takes them.
    public var symbolTable: [(name: String, address: UInt32)] { symbols.map { ($0.name, $0.address) } }

    // MARK: Parsing

    static let headerSize = 52
    static let programHeaderSize = 32
    static let sectionHeaderSize = 40
    /// Program headers we accept before calling the table absurd.
    static let maxProgramHeaders = 4096
    /// Files larger than this are refused before reading (the largest RAM is 256 MiB).
    public static let maxFileSize = 1 << 30

    /// Parses and validates `bytes` as an ELF32 little-endian MIPS executable.
    public init(bytes: [UInt8], name: String = "") throws(ELFError) {
        self.name = name
        self.bytes = bytes
        let r = Reader(bytes: bytes)
        let n = bytes.count
        if n < 4 { throw ELFError(.truncated, "file too small for an ELF header (\(n) bytes)") }
        if bytes[0] != 0x7F || bytes[1] != 0x45 || bytes[2] != 0x4C || bytes[3] != 0x46 {
            throw ELFError(.badMagic, "not an ELF file (bad magic number)")
        }
        if n < 6 { throw ELFError(.truncated, "truncated ELF header (\(n) of \(ELFImage.headerSize) bytes)") }
        switch bytes[4] {
        case 1: break
        case 2: throw ELFError(.wrongClass, "ELF64 file: a 32-bit (ELFCLASS32) MIPS executable is needed")
        default: throw ELFError(.wrongClass, "unknown ELF class \(bytes[4]): a 32-bit (ELFCLASS32) executable is needed")
        }
        switch bytes[5] {
        case 1: break
        case 2: throw ELFError(.wrongEndianness, "big-endian ELF file: the Malta here is little-endian (mipsel)")
        default: throw ELFError(.wrongEndianness, "unknown ELF data encoding \(bytes[5]): a little-endian file is needed")
        }
        if n < ELFImage.headerSize {
            throw ELFError(.truncated, "truncated ELF header (\(n) of \(ELFImage.headerSize) bytes)")
        }
        let type = r.u16(16)
        let machine = r.u16(18)
        if machine != 8 {
            throw ELFError(.wrongMachine, "ELF machine \(machine) (\(ELFImage.machineName(machine))) is not MIPS (8)")
        }
        if type != 2 {
            let what: String
            switch type {
            case 1: what = "a relocatable object file (link it first)"
            case 3: what = "a shared object or position-independent executable"
            case 4: what = "a core file"
            default: what = "ELF type \(type)"
            }
            throw ELFError(.notExecutable, "not an executable: \(what)")
        }
        let phoff = Int(r.u32(28))
        let shoff = Int(r.u32(32))
        let phentsize = Int(r.u16(42))
        let phnum = Int(r.u16(44))
        let shentsize = Int(r.u16(46))
        let shnum = Int(r.u16(48))
        let shstrndx = Int(r.u16(50))

        // Program headers.
        if phnum == 0 { throw ELFError(.noLoadableSegments, "no program headers: nothing to load") }
        if phentsize != ELFImage.programHeaderSize {
            throw ELFError(.programHeadersOutOfBounds, "program header entry size \(phentsize), expected \(ELFImage.programHeaderSize)")
        }
        if phnum > ELFImage.maxProgramHeaders || phoff + phnum * phentsize > n {
            throw ELFError(.programHeadersOutOfBounds,
                           "program header table (offset \(phoff), \(phnum) entries) extends past the end of the file (\(n) bytes)")
        }
        var segments: [Segment] = []
        for i in 0..<phnum {
            let o = phoff + i * phentsize
            guard r.u32(o) == 1 else { continue }  // PT_LOAD
            let s = Segment(
                index: i, virtualAddress: r.u32(o + 8), fileAddress: r.u32(o + 12),
                physicalAddress: r.u32(o + 12) & 0x1FFF_FFFF, fileOffset: r.u32(o + 4),
                fileSize: r.u32(o + 16), memorySize: r.u32(o + 20), flags: r.u32(o + 24))
            let where_ = "segment \(i) (vaddr \(Hex.prefixed(s.virtualAddress)))"
            if s.memorySize < s.fileSize {
                throw ELFError(.badSegmentSize, "\(where_): memory size \(s.memorySize) is smaller than its file size \(s.fileSize)")
            }
            if Int(s.memorySize) > MaltaBus.maxRAMSize {
                throw ELFError(.badSegmentSize, "\(where_): memory size \(s.memorySize) bytes is larger than any Malta RAM (256 MiB)")
            }
            if UInt64(s.virtualAddress) + UInt64(s.memorySize) > 1 << 32 {
                throw ELFError(.badSegmentSize, "\(where_): \(s.memorySize) bytes wrap around the end of the address space")
            }
            if UInt64(s.fileOffset) + UInt64(s.fileSize) > UInt64(n) {
                throw ELFError(.segmentOutsideFile,
                               "\(where_): file bytes \(s.fileOffset)..<\(UInt64(s.fileOffset) + UInt64(s.fileSize)) lie outside the file (\(n) bytes)")
            }
            if s.memorySize > 0 { segments.append(s) }
        }
        if segments.isEmpty { throw ELFError(.noLoadableSegments, "no loadable (PT_LOAD) segment with contents") }
        let byPhysical = segments.sorted { $0.physicalAddress < $1.physicalAddress }
        for (a, b) in zip(byPhysical, byPhysical.dropFirst())
        where UInt64(a.physicalAddress) + UInt64(a.memorySize) > UInt64(b.physicalAddress) {
            throw ELFError(.overlappingSegments,
                           "segments \(a.index) and \(b.index) overlap in physical memory at \(Hex.prefixed(b.physicalAddress))")
        }
        let entry = r.u32(24)
        guard segments.contains(where: { $0.contains(virtual: entry) }) else {
            throw ELFError(.entryOutsideSegments, "entry point \(Hex.prefixed(entry)) is not inside any loaded segment")
        }
        self.entry = entry
        self.segments = segments

        // Sections and symbols: best effort.
        let sections = ELFImage.parseSections(r, shoff: shoff, shentsize: shentsize, shnum: shnum, shstrndx: shstrndx)
        self.sections = sections.map(\.section)
        symbols = ELFImage.parseSymbols(r, sections: sections)
    }

    /// Reads and parses the file at `path`.
    public init(contentsOfFile path: String) throws(ELFError) {
        let bytes: [UInt8]
        do {
            bytes = try readFile(path)
        } catch {
            throw ELFError(.unreadable, "cannot read \(path): \(error.reason)")
        }
        try self.init(bytes: bytes, name: path)
    }

    /// Checks that every segment fits in `ramSize` bytes of RAM at physical 0 and stays clear of
    /// the boot parameter block at physical 0x2000.
    public func validate(ramSize: Int) throws(ELFError) {
        for s in segments {
            let where_ = "segment \(s.index) (vaddr \(Hex.prefixed(s.virtualAddress)), physical \(Hex.prefixed(s.physicalAddress)))"
            if Int(s.memorySize) > ramSize {
                throw ELFError(.badSegmentSize, "\(where_): \(s.memorySize) bytes do not fit in \(ramSize >> 20) MiB of RAM")
            }
            let end = UInt64(s.physicalAddress) + UInt64(s.memorySize)
            if end > UInt64(ramSize) {
                throw ELFError(.segmentOutsideRAM,
                               "\(where_): physical \(Hex.prefixed(s.physicalAddress))..<\(Hex.prefixed(end)) is outside RAM (\(ramSize >> 20) MiB at 0)")
            }
            let boot = BootParameters.physicalRange
            if UInt64(s.physicalAddress) < UInt64(boot.upperBound) && end > UInt64(boot.lowerBound) {
                throw ELFError(.overlapsBootParameters,
                               "\(where_) overlaps the boot parameters at physical \(Hex.prefixed(boot.lowerBound))..<\(Hex.prefixed(boot.upperBound))")
            }
        }
    }

    // MARK: Lookups

    /// The file bytes that initialise the memory at virtual address `va`, `count` bytes long, if
    /// they all come from one segment's file image.
    public func bytes(atVirtual va: UInt32, count: Int) -> ArraySlice<UInt8>? {
        for s in segments where s.contains(virtual: va) {
            let start = UInt64(va - s.virtualAddress)
            guard start + UInt64(count) <= UInt64(s.fileSize) else { return nil }
            let o = Int(s.fileOffset) + Int(start)
            return bytes[o..<o + count]
        }
        return nil
    }

    /// The name of the symbol at or before `address`, as "name" or "name+0xoffset".
    public func symbolize(_ address: UInt32) -> String? {
        var lo = 0, hi = symbols.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if symbols[mid].address <= address { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        var i = lo - 1
        // Among symbols at the same address, prefer the one that sorts last (as llvm-objdump).
        while i + 1 < symbols.count && symbols[i + 1].address == symbols[i].address { i += 1 }
        let s = symbols[i]
        let offset = address - s.address
        return offset == 0 ? s.name : s.name + "+" + Hex.prefixed(offset)
    }

    static func machineName(_ m: UInt16) -> String {
        switch m {
        case 0: "none"
        case 3: "x86"
        case 20: "PowerPC"
        case 40: "ARM"
        case 62: "x86-64"
        case 183: "AArch64"
        case 243: "RISC-V"
        case 10: "MIPS RS3000 little-endian"
        default: "unknown"
        }
    }

    // MARK: Sections and symbols

    private struct RawSection {
        let section: Section
        let link: Int
        let entrySize: Int
    }

    private static func parseSections(_ r: Reader, shoff: Int, shentsize: Int, shnum: Int, shstrndx: Int) -> [RawSection] {
        guard shoff > 0, shnum > 0, shnum < 65280, shentsize == sectionHeaderSize,
              shoff + shnum * shentsize <= r.count else { return [] }
        var raw: [(nameOffset: Int, type: UInt32, flags: UInt32, address: UInt32, offset: UInt32, size: UInt32, link: Int, entrySize: Int)] = []
        for i in 0..<shnum {
            let o = shoff + i * shentsize
            raw.append((Int(r.u32(o)), r.u32(o + 4), r.u32(o + 8), r.u32(o + 12), r.u32(o + 16), r.u32(o + 20),
                        Int(r.u32(o + 24)), Int(r.u32(o + 36))))
        }
        var names: (offset: Int, size: Int)? = nil
        if shstrndx < raw.count, raw[shstrndx].type == 3 {
            let s = raw[shstrndx]
            if Int(s.offset) + Int(s.size) <= r.count { names = (Int(s.offset), Int(s.size)) }
        }
        return raw.map { s in
            var name = ""
            if let names, s.nameOffset < names.size { name = r.string(names.offset + s.nameOffset, end: names.offset + names.size) }
            return RawSection(section: Section(name: name, type: s.type, flags: s.flags, address: s.address, offset: s.offset, size: s.size),
                              link: s.link, entrySize: s.entrySize)
        }
    }

    private static func parseSymbols(_ r: Reader, sections: [RawSection]) -> [Symbol] {
        guard let table = sections.first(where: { $0.section.type == 2 }),  // SHT_SYMTAB
              table.entrySize == 16, table.link < sections.count else { return [] }
        let strings = sections[table.link].section
        let start = Int(table.section.offset), size = Int(table.section.size)
        guard strings.type == 3, Int(strings.offset) + Int(strings.size) <= r.count,
              start + size <= r.count else { return [] }
        var symbols: [Symbol] = []
        let count = size / 16
        for i in 1..<max(count, 1) {
            let o = start + i * 16
            let info = r.u8(o + 12)
            let sectionIndex = r.u16(o + 14)
            let kind: Symbol.Kind
            switch info & 0xF {
            case 0: kind = .other
            case 1: kind = .object
            case 2: kind = .function
            default: continue  // sections, files, TLS, ...
            }
            guard sectionIndex != 0 else { continue }  // undefined
            let nameOffset = Int(r.u32(o))
            guard nameOffset < Int(strings.size) else { continue }
            let name = r.string(Int(strings.offset) + nameOffset, end: Int(strings.offset) + Int(strings.size))
            if name.isEmpty || name.hasPrefix("$") || name.hasPrefix(".L") { continue }
            symbols.append(Symbol(name: name, address: r.u32(o + 4), size: r.u32(o + 8), kind: kind))
        }
        symbols.sort { $0.address != $1.address ? $0.address < $1.address : $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        return symbols
    }
}

/// Little-endian field access with every read bounds-checked (out of range reads 0: callers
/// check ranges first; this is the last line of defence against hostile files).
private struct Reader {
    let bytes: [UInt8]
    var count: Int { bytes.count }

    func u8(_ o: Int) -> UInt8 { o >= 0 && o < bytes.count ? bytes[o] : 0 }
    func u16(_ o: Int) -> UInt16 { UInt16(u8(o)) | UInt16(u8(o + 1)) << 8 }
    func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) | UInt32(u16(o + 2)) << 16 }

    /// The NUL-terminated string at `o`, stopping at `end`.
    func string(_ o: Int, end: Int) -> String {
        guard o >= 0, o < end, end <= bytes.count else { return "" }
        var e = o
        while e < end && bytes[e] != 0 { e += 1 }
        return String(decoding: bytes[o..<e], as: UTF8.self)
    }
}

public struct FileError: Error, Sendable {
    public let reason: String
}

/// Reads a whole regular file of at most `limit` bytes with POSIX calls (the machine layer does
/// not need Foundation). The file type and size are checked before anything is read: a
/// directory, a device (`/dev/zero`) or a FIFO is refused at once (the open does not wait for
/// a FIFO's writer), and so is a file larger than `limit`.
public func readFile(_ path: String, limit: Int = ELFImage.maxFileSize) throws(FileError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_NONBLOCK)
    if fd < 0 { throw FileError(reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    var info = stat()
    if fstat(fd, &info) != 0 { throw FileError(reason: String(cString: strerror(errno))) }
    switch info.st_mode & S_IFMT {
    case S_IFREG: break
    case S_IFDIR: throw FileError(reason: "is a directory")
    case S_IFIFO: throw FileError(reason: "is a FIFO, not a regular file")
    case S_IFCHR, S_IFBLK: throw FileError(reason: "is a device, not a regular file")
    case S_IFSOCK: throw FileError(reason: "is a socket, not a regular file")
    default: throw FileError(reason: "is not a regular file")
    }
    if Int(info.st_size) > limit { throw FileError(reason: "file too large (\(info.st_size) bytes, at most \(limit))") }
    var result: [UInt8] = []
    result.reserveCapacity(Int(info.st_size))
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if got < 0 {
            if errno == EINTR { continue }
            throw FileError(reason: String(cString: strerror(errno)))
        }
        if got == 0 { break }
        result.append(contentsOf: chunk[0..<got])
        if result.count > limit { throw FileError(reason: "file too large (more than \(limit) bytes)") }
    }
    return result
}
