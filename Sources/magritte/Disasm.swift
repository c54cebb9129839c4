import ArgumentParser
import MagritteCore
import MagritteMachine

/// `magritte disasm`: an `llvm-objdump -d`-style listing of an ELF file, or one word.
struct Disasm: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Disassemble the executable sections of an ELF file, or a single instruction word.",
        discussion: """
            With FILE, prints what `llvm-objdump -d FILE` prints: every executable section (or, \
            without section headers, every executable segment), headed by its symbols. With \
            --word, prints one instruction.
            """)

    @Argument(help: "An ELF32 little-endian MIPS executable.")
    var file: String?

    @Option(help: ArgumentHelp("Disassemble this instruction word (hex with 0x, or decimal).", valueName: "word"),
            transform: parseWord)
    var word: UInt32?

    @Option(help: ArgumentHelp("The word's address, for branch targets (default 0).", valueName: "address"),
            transform: parseWord)
    var pc: UInt32?

    func validate() throws {
        if file == nil && word == nil { throw ValidationError("give an ELF FILE or --word") }
        if file != nil && word != nil { throw ValidationError("give either an ELF FILE or --word, not both") }
        if pc != nil && word == nil { throw ValidationError("--pc goes with --word") }
    }

    func run() throws {
        if let word {
            print(Disassembler.text(word: word, pc: pc ?? 0))
            return
        }
        guard let file else { return }
        let image: ELFImage
        do {
            image = try ELFImage(contentsOfFile: file)
        } catch {
            complain(error.kind == .unreadable ? error.message : "\(file): \(error.message)")
            throw ExitCode(1)
        }
        do {
            print(try listing(of: image, file: file), terminator: "")
        } catch {
            complain("\(file): \(error.message)")
            throw ExitCode(1)
        }
    }
}

/// A code section that `magritte disasm` cannot list.
struct ListingError: Error {
    let message: String
}

/// The `llvm-objdump -d` output for `image`. A code section whose bytes run past the end of the
/// file is an error, as llvm-objdump reports it (not an empty listing).
func listing(of image: ELFImage, file: String) throws(ListingError) -> String {
    var blocks: [(name: String, start: UInt32, bytes: ArraySlice<UInt8>)] = []
    let code = image.sections.filter(\.isExecutableCode)
    if !code.isEmpty {
        for s in code {
            guard UInt64(s.offset) + UInt64(s.size) <= UInt64(image.bytes.count) else {
                throw ListingError(message: "section \(s.name): offset \(Hex.prefixed(s.offset)) + size \(Hex.prefixed(s.size)) runs past the end of the file (\(image.bytes.count) bytes)")
            }
            blocks.append((s.name, s.address, image.bytes[Int(s.offset)..<Int(s.offset) + Int(s.size)]))
        }
    } else {
        for s in image.segments where s.isExecutable {
            let o = Int(s.fileOffset)
            blocks.append(("LOAD\(s.index)", s.virtualAddress, image.bytes[o..<o + Int(s.fileSize)]))
        }
    }
    var out = ""
    for (i, block) in blocks.enumerated() {
        out += i == 0 ? Disassembler.header(file: file, section: block.name) : "\nDisassembly of section \(block.name):\n"
        var words: [UInt32] = []
        words.reserveCapacity(block.bytes.count / 4)
        var index = block.bytes.startIndex
        while index + 4 <= block.bytes.endIndex {
            words.append(UInt32(block.bytes[index]) | UInt32(block.bytes[index + 1]) << 8
                         | UInt32(block.bytes[index + 2]) << 16 | UInt32(block.bytes[index + 3]) << 24)
            index += 4
        }
        out += Disassembler.listing(words: words, start: block.start, symbols: image.symbolTable, section: block.name)
    }
    return out
}

/// Parses "0x1234abcd", "1234abcdh"-free hex with 0x, or decimal, into 32 bits.
func parseWord(_ text: String) throws -> UInt32 {
    let t = text.lowercased()
    let value: UInt32?
    if t.hasPrefix("0x") {
        value = UInt32(t.dropFirst(2).filter { $0 != "_" }, radix: 16)
    } else {
        value = UInt32(t.filter { $0 != "_" })
    }
    guard let value else { throw ValidationError("'\(text)' is not a 32-bit number (hex with 0x, or decimal)") }
    return value
}
