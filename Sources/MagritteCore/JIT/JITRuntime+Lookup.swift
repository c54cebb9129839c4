/// The translator's lookup of blocks by virtual pc, for jumps whose target the block does not
/// know when it is translated (JR, JALR) or whose target lies in another page (`Docs/jit.md`,
/// "Lookup and invalidation").
///
/// A block may run at pc only while pc's page maps, in the current mode and address space, to
/// the frame the block was translated from. Within a page that holds (the block runs only while
/// the interpreter's fetch check maps the page, and nothing inside a block changes the
/// mapping); across pages the generated code checks it with the current mode's software TLB:
/// the read entry of the target's page must map it to the host page the block was translated
/// from. A read entry exists only for a page a load may read, and a fetch may read the same
/// pages as a load (no execute-inhibit on the 24Kc), so the check never lets through a jump the
/// interpreter's fetch would fault. A miss (no entry, another frame, a watched page, no room in
/// the batch) exits as before, and the loop finds or translates the block.

/// One slot of the lookup table (32 bytes; the generated code reads the fields at fixed offsets).
struct JITLookupEntry {
    /// Virtual pc of the block (0xFFFFFFFF = empty).
    var pc: UInt32 = 0xFFFF_FFFF
    var instructions: UInt32 = 0
    /// Host address of the page the block was translated from.
    var page: UInt = 0
    var code: UnsafeRawPointer? = nil
    var unused: UInt = 0
}

enum JITLookup {
    /// Slots in the table, indexed by (pc >> 2) % entries.
    static let entries = 1024
    static let pcOffset = MemoryLayout<JITLookupEntry>.offset(of: \JITLookupEntry.pc)!
    static let instructionsOffset = MemoryLayout<JITLookupEntry>.offset(of: \JITLookupEntry.instructions)!
    static let pageOffset = MemoryLayout<JITLookupEntry>.offset(of: \JITLookupEntry.page)!
    static let codeOffset = MemoryLayout<JITLookupEntry>.offset(of: \JITLookupEntry.code)!

    /// Emits, at a block's end, a jump to the block at the target (`target`, or state.target when
    /// nil) when the lookup table has it, its page maps to the same host page in the current
    /// software TLB, and all of it fits in the batch; otherwise it falls through to the code the
    /// caller emits next (the block's exit). `completed` is the block's instruction count. Uses
    /// rax, rcx and rdx only.
    static func emit(_ a: inout X86Assembler, target: UInt32?, completed: Int) {
        typealias A = X86Assembler
        precondition(MemoryLayout<JITLookupEntry>.stride == 32 && MemoryLayout<SoftTLBEntry>.stride == 16, "lookup layout")
        let state = { (offset: Int) in A.Mem(base: .rsi, disp: Int32(offset)) }
        if let target { a.mov(.rax, imm: target) } else { a.mov(.rax, state(JITState.target)) }
        // rcx = the read entry of the target's page in the current mode's software TLB.
        a.mov(.rcx, .rax)
        a.shift(.shr, .rcx, imm: 8)
        a.alu(.and, .rcx, imm: 0xFF0)
        a.alu64(.add, .rcx, state(JITState.softTLB))
        a.mov(.rdx, .rax)
        a.alu(.and, .rdx, imm: 0xFFFF_F000)
        a.alu(.cmp, .rdx, A.Mem(base: .rcx, disp: Int32(JITState.tagOffset)))
        var misses = [a.jcc(.ne)]
        // rcx = the host page the target's page maps to.
        a.mov64(.rcx, A.Mem(base: .rcx, disp: Int32(JITState.addendOffset)))
        a.emit(0x48, 0x01, 0xD1)  // add rcx, rdx
        // rdx = the table slot: ((target >> 2) % 1024) * 32.
        a.mov(.rdx, .rax)
        a.shift(.shl, .rdx, imm: 3)
        a.alu(.and, .rdx, imm: UInt32((entries - 1) * 32))
        a.alu64(.add, .rdx, state(JITState.lookup))
        a.alu(.cmp, .rax, A.Mem(base: .rdx, disp: Int32(pcOffset)))
        misses.append(a.jcc(.ne))
        a.alu64(.cmp, .rcx, A.Mem(base: .rdx, disp: Int32(pageOffset)))
        misses.append(a.jcc(.ne))
        // As a chain slot: only when all of the next block fits in what is left of the batch.
        a.mov(.rax, state(JITState.left))
        a.alu(.sub, .rax, imm: UInt32(completed))
        a.alu(.cmp, .rax, A.Mem(base: .rdx, disp: Int32(instructionsOffset)))
        misses.append(a.jcc(.b))
        a.mov(state(JITState.left), .rax)
        a.alu(.add, state(JITState.accumulated), imm: UInt32(completed))
        precondition(codeOffset == 16, "lookup layout")
        a.emit(0xFF, 0x62, 0x10)  // jmp qword [rdx + 16]
        for m in misses { a.bind(m) }
    }
}

extension JIT {
    /// Records the block at `pc` (translated from the host page `page`) for the lookup.
    @inline(__always)
    func remember(pc: UInt32, _ e: JITEntry, page: UnsafeMutableRawPointer) {
        let slot = lookup + Int((pc >> 2) & UInt32(JITLookup.entries - 1))
        if slot.pointee.pc != pc || slot.pointee.code != e.code {
            slot.pointee = JITLookupEntry(pc: pc, instructions: e.instructions, page: UInt(bitPattern: page), code: e.code)
        }
    }

    /// Empties the lookup table (a frame's blocks or the whole cache were dropped).
    func forgetLookups() {
        lookup.update(repeating: JITLookupEntry(), count: JITLookup.entries)
    }
}

extension CPU {
    /// Before the loop enters the block `e` at `pc` (in the current code page): records it for
    /// the generated code's lookup, and makes sure the current software TLB has the read entry of
    /// its page, which that lookup checks. The entry is the one a load from the page would make
    /// now (the fetch check that holds maps it the same way), so it changes no behaviour; a
    /// watched page gets none, as for a load.
    @inline(__always)
    func enableLookups(_ jit: JIT, pc: UInt32, _ e: JITEntry) {
        let tlb = currentSoftTLB + Int((pc >> 12) & 255)
        if tlb.pointee.tag != codeTag && (memoryWatches.isEmpty || !pageIsWatched(codeTag)) {
            tlb.pointee = SoftTLBEntry(tag: codeTag, addend: UInt(bitPattern: codeHost) &- UInt(codeTag))
        }
        jit.remember(pc: pc, e, page: UnsafeMutableRawPointer(codeHost))
    }
}

extension CPU {
    /// Makes pc's page the current code page when fetching from it cannot raise an exception
    /// (aligned, mapped, RAM), with the same effects as the interpreter's next fetch; otherwise
    /// leaves it to the interpreter, which raises the exception. False only when the host is out
    /// of memory for the page's decoded instructions (the run stops, as in the interpreter).
    @inline(never)
    func enterCodePageIfItCannotFault() -> Bool {
        guard pc & 3 == 0, case .physical(let pa) = translate(pc, .fetch), bus.ramPage(frame: pa >> 12) != nil else { return true }
        return enterCodePage(pc, delay: false) || !outOfHostMemory
    }
}
