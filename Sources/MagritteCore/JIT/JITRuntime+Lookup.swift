/// The translator's lookup of blocks by virtual pc, for jumps whose target the block does not
/// know when it is translated (JR, JALR) or whose target lies in another page (`Docs/jit.md`,
/// "Lookup and invalidation").
///
/// A block may run at pc only while pc's page maps, in the current mode and address space, to
/// the frame the block was translated from. Within a page that holds (the block runs only while
/// the interpreter's fetch check maps the page, and nothing inside a block changes the
/// mapping); across pages the generated code checks it with the current mode's fetch TLB
/// (`JIT.fetchTLB`): virtual code pages the fetch check mapped, with their host pages, recorded
/// when the loop enters a block and dropped exactly when the software TLB drops its entries
/// (`flushSoftTLB`, `invalidateSoftTLB(covering:)`: TLB writes, ASID, SegCtl and ERL changes),
/// so an entry is always what the fetch check would find now. A miss (no entry, another frame,
/// no room in the batch) exits as before, and the loop finds or translates the block.

/// One slot of the lookup table (32 bytes; the generated code reads the fields at fixed offsets).
struct JITLookupEntry {
    /// Virtual pc of the block (0xFFFFFFFF = empty).
    var pc: UInt32 = 0xFFFF_FFFF
    var instructions: UInt32 = 0
    /// Host address of the page the block was translated from.
    var page: UInt = 0
    var code: UnsafeRawPointer? = nil
    /// The physical frame of that page (a write to the frame forgets its blocks' slots).
    var frame: UInt = 0
}

enum JITLookup {
    /// Slots in the table, indexed by (pc >> 2) % entries.
    static let entries = 4096
    static let pcOffset = MemoryLayout<JITLookupEntry>.offset(of: \JITLookupEntry.pc)!
    static let instructionsOffset = MemoryLayout<JITLookupEntry>.offset(of: \JITLookupEntry.instructions)!
    static let pageOffset = MemoryLayout<JITLookupEntry>.offset(of: \JITLookupEntry.page)!
    static let codeOffset = MemoryLayout<JITLookupEntry>.offset(of: \JITLookupEntry.code)!

    /// Emits a block's end towards `target` (or state.target when nil), `completed`
    /// instructions into the block: a jump to the shared stub (`stub()`), which continues in
    /// the target's block when it can and otherwise exits to the loop with pc = the target
    /// (npc = pc + 4, not a delay slot). 15 bytes at most; uses rax.
    static func emit(_ a: inout X86Assembler, target: UInt32?, completed: Int) {
        typealias A = X86Assembler
        if let target { a.mov(.rax, imm: target) } else { a.mov(.rax, A.Mem(base: .rsi, disp: Int32(JITState.target))) }
        a.mov(A.Mem(base: .rsi, disp: Int32(JITState.completed)), imm: UInt32(completed))
        a.emit(0xFF, 0x66); a.emit(UInt8(JITState.lookupStub))  // jmp qword [rsi + lookupStub]
    }

    /// The lookup stub, at the start of the code cache: eax = the target, state.completed = the
    /// instructions the jumping block completed. Jumps to the target's block when the table has
    /// it, the target's page maps to the same host page in the current mode's fetch TLB, and all
    /// of the block fits in the batch (as a chain slot checks); otherwise returns as a block's
    /// exit does. Uses rax, rcx and rdx.
    static func stub() -> [UInt8] {
        typealias A = X86Assembler
        precondition(MemoryLayout<JITLookupEntry>.stride == 32 && MemoryLayout<SoftTLBEntry>.stride == 16 && codeOffset == 16,
                     "lookup layout")
        var a = A()
        let state = { (offset: Int) in A.Mem(base: .rsi, disp: Int32(offset)) }
        // rcx = the entry of the target's page in the current mode's fetch TLB.
        a.mov(.rcx, .rax)
        a.shift(.shr, .rcx, imm: 8)
        a.alu(.and, .rcx, imm: UInt32(JIT.fetchPages - 1) << 4)
        a.alu64(.add, .rcx, state(JITState.fetchTLB))
        a.mov(.rdx, .rax)
        a.alu(.and, .rdx, imm: 0xFFFF_F000)
        a.alu(.cmp, .rdx, A.Mem(base: .rcx, disp: Int32(JITState.tagOffset)))
        var refills = [a.jcc(.ne)]
        var misses: [A.Fixup] = []
        // rcx = the host page the target's page maps to.
        a.mov64(.rcx, A.Mem(base: .rcx, disp: Int32(JITState.addendOffset)))
        a.emit(0x48, 0x01); a.emit(0xD1)  // add rcx, rdx
        // rdx = the table slot: ((target >> 2) % 1024) * 32.
        a.mov(.rdx, .rax)
        a.shift(.shl, .rdx, imm: 3)
        a.alu(.and, .rdx, imm: UInt32((entries - 1) * 32))
        a.alu64(.add, .rdx, state(JITState.lookup))
        a.alu(.cmp, .rax, A.Mem(base: .rdx, disp: Int32(pcOffset)))
        refills.append(a.jcc(.ne))
        a.alu64(.cmp, .rcx, A.Mem(base: .rdx, disp: Int32(pageOffset)))
        refills.append(a.jcc(.ne))
        // As a chain slot: only when all of the next block fits in what is left of the batch.
        a.mov(.rcx, state(JITState.left))
        a.alu(.sub, .rcx, state(JITState.completed))
        a.alu(.cmp, .rcx, A.Mem(base: .rdx, disp: Int32(instructionsOffset)))
        misses.append(a.jcc(.b))
        a.mov(state(JITState.left), .rcx)
        a.mov(.rcx, state(JITState.completed))
        a.alu(.add, state(JITState.accumulated), .rcx)
        a.emit(0xFF, 0x62); a.emit(UInt8(codeOffset))  // jmp qword [rdx + code]
        // The fetch TLB or the table missed: `JIT.refillLookup` fills both as the loop would on
        // entering the block, when the target's page maps now to a frame with a block there;
        // then again (the checks then pass up to the room's).
        for r in refills { a.bind(r) }
        a.push(.rax)  // entered with rsp = 8 mod 16 (a block's return address): three pushes align it
        a.push(.rdi)
        a.push(.rsi)
        a.mov64(.rdi, .rsi)
        a.mov(.rsi, .rax)
        a.call(A.Mem(base: .rdi, disp: Int32(JITState.refillLookup)))
        a.mov(.rcx, .rax)
        a.pop(.rsi)
        a.pop(.rdi)
        a.pop(.rax)
        a.test(.rcx, .rcx)
        misses.append(a.jcc(.e))
        a.bind(a.jmp(), to: 0)
        // The exit: pc = target, npc = target + 4, returning completed + accumulated.
        for m in misses { a.bind(m) }
        a.mov(state(JITState.pc), .rax)
        a.alu(.add, .rax, imm: 4)
        a.mov(state(JITState.npc), .rax)
        a.mov8(state(JITState.delay), imm: 0)
        a.mov8(state(JITState.interpreterNext), imm: 0)
        a.mov(.rax, state(JITState.completed))
        a.alu(.add, .rax, state(JITState.accumulated))
        a.ret()
        return a.bytes
    }
}

extension JIT {
    /// Records the block at `pc` (translated from the host page `page`) for the lookup.
    @inline(__always)
    func remember(pc: UInt32, _ e: JITEntry, page: UnsafeMutableRawPointer, frame: UInt32) {
        let slot = lookup + Int((pc >> 2) & UInt32(JITLookup.entries - 1))
        if slot.pointee.pc != pc || slot.pointee.code != e.code {
            slot.pointee = JITLookupEntry(pc: pc, instructions: e.instructions, page: UInt(bitPattern: page), code: e.code,
                                          frame: UInt(frame))
        }
    }

    /// Empties the lookup table (the whole cache was dropped).
    func forgetLookups() {
        lookup.update(repeating: JITLookupEntry(), count: JITLookup.entries)
    }

    /// Forgets the slots of the blocks translated from `frame` (its blocks were dropped); the
    /// others stay (emptying the whole table on each of Linux's 1,018 invalidations cost
    /// thousands of lookup misses each).
    func forgetLookups(frame: Int) {
        for i in 0..<JITLookup.entries where lookup[i].frame == UInt(frame) && lookup[i].code != nil {
            lookup[i] = JITLookupEntry()
        }
    }

    typealias Refill = @convention(c) (UnsafeMutableRawPointer, UInt32) -> UInt32

    /// `(state, target pc) -> 1 when the target's page is now in the current mode's fetch TLB
    /// and its block in the table` (the lookup stub's miss; `CPU.refillLookup`).
    static let refillLookup: Refill = { state, pc in
        Unmanaged<CPU>.fromOpaque(state.load(fromByteOffset: JITState.cpu, as: UnsafeRawPointer.self))
            ._withUnsafeGuaranteedRef { $0.refillLookup(state, pc: pc) }
    }

    /// Empties the fetch TLB (the software TLB was flushed: TLB, ASID, segment changes).
    func forgetFetchPages() {
        fetchTLB.update(repeating: SoftTLBEntry(), count: 3 * JIT.fetchPages)
    }
}

extension CPU {
    /// Before the loop enters the block `e` at `pc` (in the current code page): records it for
    /// the generated code's lookup, with the page in the current mode's fetch TLB, which that
    /// lookup checks (the fetch check that holds maps the page so now), and points the state at
    /// that fetch TLB.
    @inline(__always)
    func enableLookups(_ jit: JIT, pc: UInt32, _ e: JITEntry) {
        let modeTLB = jit.fetchTLB + Int(mode.rawValue) &* JIT.fetchPages
        modeTLB[Int(pc >> 12) & (JIT.fetchPages - 1)] = SoftTLBEntry(tag: codeTag, addend: UInt(bitPattern: codeHost) &- UInt(codeTag))
        jit.state.storeBytes(of: modeTLB, toByteOffset: JITState.fetchTLB, as: UnsafeMutablePointer<SoftTLBEntry>.self)
        jit.remember(pc: pc, e, page: UnsafeMutableRawPointer(codeHost), frame: codeFrame)
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

extension CPU {
    /// The lookup stub missed for `pc` (its page not in the fetch TLB, or its slot in the table
    /// holding another block): when pc's page maps now, in the current mode and address space, to
    /// a frame whose table has a block translated at pc, records the page in the current mode's
    /// fetch TLB and the block in the lookup table — what the loop does when it enters that block
    /// after the interpreter's fetch check mapped the page — and returns 1; the stub then goes
    /// on to the block instead of returning to the loop. `translate` has no side effects, and the
    /// frame already holds decoded code (blocks come only from such frames).
    @inline(never)
    func refillLookup(_ st: UnsafeMutableRawPointer, pc: UInt32) -> UInt32 {
        guard let jit, pc & 3 == 0 else { return 0 }
        let modeTLB = jit.fetchTLB + Int(mode.rawValue) &* JIT.fetchPages
        guard st.load(fromByteOffset: JITState.fetchTLB, as: UnsafeMutablePointer<SoftTLBEntry>.self) == modeTLB,
              case .physical(let pa) = translate(pc, .fetch), Int(pa >> 12) < CPU.physicalFrames,
              jit.translatedFrames[Int(pa >> 12)] != 0, let table = jit.frameBlocks[Int(pa >> 12)] else { return 0 }
        let e = table[Int((pc >> 2) & 1023)]
        guard e.pc == pc, e.code != nil, let host = bus.ramPage(frame: pa >> 12) else { return 0 }
        let page = pc & 0xFFFF_F000
        modeTLB[Int(pc >> 12) & (JIT.fetchPages - 1)] = SoftTLBEntry(tag: page, addend: UInt(bitPattern: host) &- UInt(page))
        jit.remember(pc: pc, e, page: host, frame: pa >> 12)
        jit.statistics.lookupRefills &+= 1
        return 1
    }
}
