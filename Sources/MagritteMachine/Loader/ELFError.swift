/// Why an ELF file cannot be run on the Malta. `kind` is for programs, `message` for people: it
/// names the offending header, segment or address.
public struct ELFError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// The file could not be read from disk.
        case unreadable
        /// Shorter than the 52-byte ELF32 header.
        case truncated
        /// Does not start with 0x7F 'E' 'L' 'F'.
        case badMagic
        /// Not ELFCLASS32 (e.g. an ELF64 file).
        case wrongClass
        /// Not little-endian (ELFDATA2LSB).
        case wrongEndianness
        /// e_machine is not EM_MIPS (8).
        case wrongMachine
        /// e_type is not ET_EXEC (a relocatable object, a shared object, a core file).
        case notExecutable
        /// The program header table lies outside the file or has a wrong entry size.
        case programHeadersOutOfBounds
        /// No PT_LOAD segment.
        case noLoadableSegments
        /// A segment's file bytes (p_offset, p_filesz) lie outside the file.
        case segmentOutsideFile
        /// p_memsz < p_filesz, larger than RAM, or wrapping around the address space.
        case badSegmentSize
        /// A segment's physical range is not entirely RAM.
        case segmentOutsideRAM
        /// Two segments share physical memory.
        case overlappingSegments
        /// A segment covers the boot parameter block the board writes at physical 0x2000
        /// (QEMU refuses such files too: "Some ROM regions are overlapping").
        case overlapsBootParameters
        /// e_entry is not inside any loaded segment.
        case entryOutsideSegments
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

extension ELFError {
}
