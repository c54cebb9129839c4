#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which engine executes guest code.
public enum Engine: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The interpreter (every host).
    case interpreter
    /// Blocks of guest code translated to x86-64 (x86-64 Linux hosts; elsewhere the interpreter runs).
    case jit

    /// Whether this host can run translated code.
    public static var jitSupported: Bool {
        #if arch(x86_64) && os(Linux)
        true
        #else
        false
        #endif
    }

    /// The default: the translator where it exists.
    public static var hostDefault: Engine { jitSupported ? .jit : .interpreter }

    public var description: String { rawValue }
}

/// The translator's counters.
public struct JITStatistics: Sendable, Equatable {
    /// Blocks translated (since the CPU was made).
    public var blocks: UInt64 = 0
    /// Host code bytes written.
    public var bytes: UInt64 = 0
    /// Times the code cache was emptied because it was full (or by a reset).
    public var flushes: UInt64 = 0
    /// Frames whose blocks were dropped because the guest or the host wrote to them.
    public var invalidations: UInt64 = 0
    /// Blocks translated from frames whose blocks had been dropped before (code loaded or
    /// rewritten there, or the same code translated again).
    public var retranslations: UInt64 = 0
    /// Guest instructions in all blocks translated.
    public var guestInstructions: UInt64 = 0
    /// Direct jumps patched from a block's end to the next block.
    public var links: UInt64 = 0
    /// Guest instructions run in translated blocks (the rest ran in the interpreter).
    public var instructionsRun: UInt64 = 0
    /// Blocks entered from the run loop (the others were entered from blocks: chain slots and
    /// the lookup).
    public var entries: UInt64 = 0
    /// Host CPU time (of the thread running the CPU) spent translating, in nanoseconds: one
    /// translation in 16 is timed and counts for 16.
    public var translationNanoseconds: UInt64 = 0
    /// Traps a trap handler (the VMM) emulated inside a block, after which the block went on
    /// in place instead of returning to the run loop (`Docs/jit.md`, "Handled traps").
    public var trapsGoneOn: UInt64 = 0
    /// Batch ends a call out did in place (`Docs/jit.md`, "Batch ends in place"): its instruction
    /// ended the batch (an ERET, DI/EI, an MTC0 to Status, a device's `endBatch`, an exception),
    /// but the run loop would only have started the next batch at the same bound, so the call
    /// out moved `cycles` as a batch's end does and the block went on.
    public var batchEndsInPlace: UInt64 = 0
    /// Call outs whose instruction moved pc (an exception taken or reflected, an ERET) after
    /// which the block went on to the new pc through the lookup instead of returning.
    public var exceptionsGoneOn: UInt64 = 0
    /// Misses of the lookup (the fetch TLB or the table) that the lookup stub refilled
    /// (`CPU.refillLookup`) and went on instead of returning.
    public var lookupRefills: UInt64 = 0
    /// Returns from translated code to the run loop (`entries`) by reason, most frequent first.
    public var returns: [JITReturnCount] = []
}

/// How often translated code returned to the run loop for one reason (`JITStatistics.returns`).
public struct JITReturnCount: Sendable, Equatable {
    /// "before OP" (the interpreter ran an instruction the block does not hold, a trap taken or
    /// an overflow), "OP: called out, exception|batch end|code remapped or written"
    /// (the block called the interpreter's code for OP and ended after it), "batch end",
    /// "chain slot not linked yet", "lookup miss" (a jump the lookup did not find), "no room in
    /// the batch for the next block".
    public var reason: String
    public var count: UInt64
}

/// Why control came back to the run loop: an `Op`'s raw value (the block left before that
/// instruction), or one of these.
enum JITReturnReason {
    static let batchEnd = 256
    static let unlinked = 257
    static let lookupMiss = 258
    /// A chain slot or the lookup had the next block, but the batch had no room for all of it.
    static let noRoom = 259
    /// The lookup had the block, but the current mode's fetch TLB did not map its page (yet).
    static let fetchMiss = 260
    /// A call out (`JIT.callOut`) ended the block after its instruction (+ op): an exception,
    /// the batch's end, the fetch check dropped or code written.
    static let callOutException = 512
    static let callOutBatchEnd = 768
    static let callOutRemapped = 1024
    static let count = 1280

    static func name(_ r: Int) -> String {
        switch r {
        case batchEnd: return "batch end"
        case unlinked: return "chain slot not linked yet"
        case lookupMiss: return "lookup miss"
        case noRoom: return "no room in the batch for the next block"
        case fetchMiss: return "lookup: page not in the fetch TLB"
        case ..<256: return "before \(mnemonic(r))"
        default:
            let kind = [callOutException: "called out, exception", callOutBatchEnd: "called out, batch end",
                        callOutRemapped: "called out, code remapped or written"][r & ~255] ?? "?"
            return "\(mnemonic(r & 255)): \(kind)"
        }
    }

    private static func mnemonic(_ raw: Int) -> String { Op(rawValue: UInt8(raw)).map { $0.info.mnemonic } ?? "?" }
}

/// The block the generated code works on (besides the GPR array): offsets are fixed here.
enum JITState {
    static let hi = 0
    static let lo = 4
    static let pc = 8
    static let npc = 12
    static let target = 16
    static let delay = 20
    static let interpreterNext = 21
    static let softTLB = 24
    /// Instructions the batch still allows (chained blocks check and lower it).
    static let left = 32
    /// Instructions completed by the chained blocks before the current one.
    static let accumulated = 36
    /// The chain slot whose successor was not linked yet (0: none), for the caller to link.
    static let link = 40
    /// The lookup table of blocks by virtual pc (`JITLookup`).
    static let lookup = 48
    /// Instructions the block that jumps to the lookup stub completed.
    static let completed = 56
    /// The lookup stub's address.
    static let lookupStub = 64
    /// The current mode's fetch TLB (`JIT.fetchTLB`).
    static let fetchTLB = 72
    /// LL/SC: the CPU's LLbit (a byte; SC clears it), the LL's virtual address and the word it loaded.
    static let llBit = 80
    static let llVirtual = 84
    static let llValue = 88
    static let size = 144
    static let tagOffset = MemoryLayout<SoftTLBEntry>.offset(of: \SoftTLBEntry.tag)!
    static let addendOffset = MemoryLayout<SoftTLBEntry>.offset(of: \SoftTLBEntry.addend)!
}

/// A block's slot in its frame's table (one slot per guest word of the frame).
struct JITEntry {
    /// Guest virtual pc the block was translated for (0xFFFFFFFF = empty): the code writes
    /// virtual pcs, so a frame mapped at two addresses keeps one of them at a time.
    var pc: UInt32 = 0xFFFF_FFFF
    /// Guest instructions in the block (0: the first instruction is not translated).
    var instructions: UInt32 = 0
    var code: UnsafeRawPointer? = nil
}

/// The code cache and the per-frame block tables of one CPU.
final class JIT {
    typealias BlockFunction = @convention(c) (UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> UInt32

    static let pageSize = 4096
    /// Entries per mode of the fetch TLB (`fetchTLB`), indexed by virtual page number.
    static let fetchPages = 1024
    /// The default bound of the code cache.
    static let defaultCapacity = CPUConfiguration().codeCacheBytes
    let capacity: Int
    /// The code cache as the host executes it (read+execute).
    let code: UnsafeMutableRawPointer
    /// The same memory mapped a second time, read+write, where code is written (W^X: no page is
    /// ever writable and executable in one mapping, and no `mprotect` per block). Nil when the
    /// host has no anonymous shared memory: then `code` is flipped writable per write.
    let writable: UnsafeMutableRawPointer?
    var used = 0
    /// Where blocks start: the lookup stub comes first and stays across flushes.
    var firstBlock = 0
    /// Per physical frame: its blocks by word offset (1024 slots), made when the frame gets its
    /// first block; emptied when the frame is written.
    let frameBlocks: UnsafeMutablePointer<UnsafeMutablePointer<JITEntry>?>
    /// After a batch ended inside a block (the rest of the batch was shorter than the block, and
    /// the interpreter ran it), the next batch starts in the middle of that block: up to this many
    /// of its instructions that lie inside a block of their page are interpreted, not translated
    /// as new blocks, until a block starts. Without it, a VMM whose quanta end every 4096 slots
    /// translates a block from almost every instruction of the hot kernel pages (Linux as a
    /// guest: 73,856 blocks of 978,385 instructions against 54,237 of 589,831 bare).
    static let catchUpSteps = 64
    /// Instructions left to interpret after such a cut (0: translate as usual).
    var catchUp = 0
    /// The block that last answered `covered` (its frame's table and its slot; nil: none yet):
    /// the catch-up asks about the instructions of one block one after the other, which it then
    /// answers with one slot read instead of a scan back over up to 63.
    var coverTable: UnsafeMutablePointer<JITEntry>?
    var coverSlot = 0
    /// The longest catch-up run (`CPU.catchUpRun`); 1 (for tests) steps one instruction at a time.
    var catchUpRunLimit = JIT.catchUpSteps
    /// The frames that have a table (to empty them all on a flush, and free them).
    var framesWithTables: [Int] = []
    /// Per physical frame: whether its table holds anything since it was last emptied.
    let translatedFrames: UnsafeMutablePointer<UInt8>
    /// Per physical frame: whether its blocks were ever dropped (`retranslations`).
    let invalidatedFrames: UnsafeMutablePointer<UInt8>
    /// Blocks by virtual pc for the generated code's lookup (`JITLookup`).
    let lookup: UnsafeMutablePointer<JITLookupEntry>
    /// Per mode, 256 code pages the fetch check mapped (virtual page → host page, as software-TLB
    /// entries), for the lookup's check; dropped with the software TLB's entries.
    let fetchTLB: UnsafeMutablePointer<SoftTLBEntry>
    let state: UnsafeMutableRawPointer
    var statistics = JITStatistics()
    /// Returns to the run loop by `JITReturnReason`.
    let returnCounts: UnsafeMutablePointer<UInt64>
    /// Translations attempted (`translateBlock`, whose time is sampled).
    var translations: UInt64 = 0
    /// The batch `executeTranslated` runs: the timer's cycle and whether breakpoints were set
    /// when it started, which a batch end in place (`CPU.endsBatchInPlace`) requires unchanged.
    var batchTimer: UInt64 = 0
    var batchObserving = false
    /// Slots a call out moved `cycles` by (batch ends in place), for `executeTranslated`.
    var movedCycles: UInt64 = 0

    /// Nil when the host refuses the code memory. `doubleMapped: false` (for tests) takes the
    /// single mapping a host without `memfd_create` gets.
    init?(capacity: Int = JIT.defaultCapacity, doubleMapped: Bool = true) {
        self.capacity = (max(capacity, JIT.pageSize) + JIT.pageSize - 1) & ~(JIT.pageSize - 1)
        let views: (code: UnsafeMutableRawPointer, writable: UnsafeMutableRawPointer?)
        if doubleMapped, let shared = JIT.doubleMapping(self.capacity) {
            views = shared
        } else {
            guard let m = mmap(nil, self.capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
                  m != MAP_FAILED else { return nil }
            views = (m, nil)
        }
        let blocks = calloc(CPU.physicalFrames, MemoryLayout<UnsafeMutablePointer<JITEntry>?>.stride)
        let translated = calloc(CPU.physicalFrames, 1)
        let invalidated = calloc(CPU.physicalFrames, 1)
        let table = malloc(JITLookup.entries * MemoryLayout<JITLookupEntry>.stride)
        let fetch = malloc(3 * JIT.fetchPages * MemoryLayout<SoftTLBEntry>.stride)
        guard let blocks, let translated, let invalidated, let table, let fetch else {
            free(blocks)
            free(translated)
            free(invalidated)
            free(table)
            free(fetch)
            JIT.unmap(views, self.capacity)
            return nil
        }
        code = views.code
        writable = views.writable
        frameBlocks = blocks.bindMemory(to: UnsafeMutablePointer<JITEntry>?.self, capacity: CPU.physicalFrames)
        translatedFrames = translated.bindMemory(to: UInt8.self, capacity: CPU.physicalFrames)
        invalidatedFrames = invalidated.bindMemory(to: UInt8.self, capacity: CPU.physicalFrames)
        lookup = table.bindMemory(to: JITLookupEntry.self, capacity: JITLookup.entries)
        lookup.initialize(repeating: JITLookupEntry(), count: JITLookup.entries)
        fetchTLB = fetch.bindMemory(to: SoftTLBEntry.self, capacity: 3 * JIT.fetchPages)
        fetchTLB.initialize(repeating: SoftTLBEntry(), count: 3 * JIT.fetchPages)
        returnCounts = .allocate(capacity: JITReturnReason.count)
        returnCounts.initialize(repeating: 0, count: JITReturnReason.count)
        state = .allocate(byteCount: JITState.size, alignment: 16)
        state.initializeMemory(as: UInt8.self, repeating: 0, count: JITState.size)
        state.storeBytes(of: UnsafeMutableRawPointer(lookup), toByteOffset: JITState.lookup, as: UnsafeMutableRawPointer.self)
        guard let stub = install(JITLookup.stub()) else { return nil }
        state.storeBytes(of: stub, toByteOffset: JITState.lookupStub, as: UnsafeRawPointer.self)
        firstBlock = used
    }

    deinit {
        JIT.unmap((code, writable), capacity)
        for f in framesWithTables { free(frameBlocks[f]) }  // malloc'd in makeTable
        free(frameBlocks)
        free(translatedFrames)
        free(invalidatedFrames)
        free(lookup)
        free(fetchTLB)
        returnCounts.deallocate()
        state.deallocate()
    }

    /// The code cache mapped twice from one anonymous memory file: read+execute and read+write.
    private static func doubleMapping(_ capacity: Int) -> (code: UnsafeMutableRawPointer, writable: UnsafeMutableRawPointer?)? {
        #if os(Linux)
        typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32
        // memfd_create (glibc 2.27) is not in Swift's Glibc module: find it at run time.
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "memfd_create") else { return nil }
        let fd = unsafeBitCast(sym, to: MemfdCreate.self)("magritte-jit", 1 /* MFD_CLOEXEC */)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard ftruncate(fd, off_t(capacity)) == 0,
              let x = mmap(nil, capacity, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0), x != MAP_FAILED else { return nil }
        guard let w = mmap(nil, capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), w != MAP_FAILED else {
            munmap(x, capacity)
            return nil
        }
        return (x, w)
        #else
        return nil
        #endif
    }

    private static func unmap(_ views: (code: UnsafeMutableRawPointer, writable: UnsafeMutableRawPointer?), _ capacity: Int) {
        munmap(views.code, capacity)
        if let w = views.writable { munmap(w, capacity) }
    }

    /// Forgets every block and starts the code cache again.
    func flush() {
        for f in framesWithTables where translatedFrames[f] != 0 {
            frameBlocks[f]!.update(repeating: JITEntry(), count: 1024)
            translatedFrames[f] = 0
        }
        used = firstBlock
        forgetLookups()
        forgetFetchPages()
        statistics.flushes += 1
    }

    /// Drops the blocks of every frame that has one covering virtual pc `x` or a "not
    /// translated" entry at `x` (a breakpoint came or went there).
    func invalidateBlocks(covering x: UInt32) {
        let index = Int((x >> 2) & 1023)
        for f in framesWithTables where translatedFrames[f] != 0 {
            let table = frameBlocks[f]!
            for s in max(0, index - JITTranslator.maxInstructions + 1)...index {
                let e = table[s]
                if e.pc <= x && x < e.pc &+ 4 &* max(e.instructions, 1) {
                    invalidate(frame: f)
                    break
                }
            }
        }
    }

    /// Drops the blocks translated from physical frame `frame`.
    @inline(__always)
    func invalidate(frame: Int) {
        if translatedFrames[frame] != 0 {
            translatedFrames[frame] = 0
            frameBlocks[frame]?.update(repeating: JITEntry(), count: 1024)
            forgetLookups(frame: frame)
            invalidatedFrames[frame] = 1
            statistics.invalidations += 1
            state.storeBytes(of: UInt32(truncatingIfNeeded: statistics.invalidations), toByteOffset: JITState.invalidations,
                             as: UInt32.self)
        }
    }

    /// The block table of `frame`, made on first use.
    @inline(never)
    /// Nil when the host is out of memory (the page then runs in the interpreter).
    func makeTable(frame: Int) -> UnsafeMutablePointer<JITEntry>? {
        guard let raw = malloc(1024 * MemoryLayout<JITEntry>.stride) else { return nil }
        let t = raw.bindMemory(to: JITEntry.self, capacity: 1024)
        t.initialize(repeating: JITEntry(), count: 1024)
        frameBlocks[frame] = t
        framesWithTables.append(frame)
        return t
    }

    /// Runs `body` on the writable address of the `bytes` code bytes at `at`: the second
    /// mapping, or (without one) `at` itself made writable, not executable, meanwhile (W^X).
    func patch(_ at: UnsafeMutableRawPointer, bytes: Int, _ body: (UnsafeMutableRawPointer) -> Void) -> Bool {
        if let writable {
            body(writable + (at - code))
            return true
        }
        let first = (at - code) & ~(JIT.pageSize - 1)
        let last = ((at - code) + bytes + JIT.pageSize - 1) & ~(JIT.pageSize - 1)
        guard mprotect(code + first, last - first, PROT_READ | PROT_WRITE) == 0 else { return false }
        body(at)
        return mprotect(code + first, last - first, PROT_READ | PROT_EXEC) == 0
    }

    /// Points the chain slot at `slot` to the block at `target` of `instructions` instructions.
    func link(slot: UInt, to target: UnsafeRawPointer, instructions: UInt32) {
        guard let p = UnsafeMutableRawPointer(bitPattern: slot), p >= code, p + JITTranslator.slotSize <= code + used,
              p.loadUnaligned(fromByteOffset: JITTranslator.slotNeedOffset, as: UInt32.self) == JITTranslator.unlinked else { return }
        let rel = Int32(UnsafeRawPointer(p + JITTranslator.slotSize) .distance(to: target))
        _ = patch(p, bytes: JITTranslator.slotSize) { w in
            w.storeBytes(of: instructions, toByteOffset: JITTranslator.slotNeedOffset, as: UInt32.self)
            w.storeBytes(of: rel, toByteOffset: JITTranslator.slotJumpOffset, as: Int32.self)
        }
        statistics.links += 1
    }

    /// Copies `bytes` into the code cache (W^X: the pages written are writable, not executable,
    /// while they are written). Nil when it does not fit even in an empty cache.
    func install(_ bytes: [UInt8]) -> UnsafeRawPointer? {
        let size = (bytes.count + 15) & ~15
        if used + size > capacity {
            guard size <= capacity - firstBlock else { return nil }
            flush()
        }
        let at = code + used
        guard patch(at, bytes: size, { w in
            bytes.withUnsafeBytes { w.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        }) else { return nil }
        used += size
        statistics.bytes += UInt64(bytes.count)
        return UnsafeRawPointer(at)
    }
}

extension CPU {
    /// The engine this CPU runs: the configured one, or the interpreter where the host has no
    /// translator.
    public var engine: Engine {
        configuration.engine == .jit && Engine.jitSupported ? .jit : .interpreter
    }

    /// The translator's counters (all zero under the interpreter).
    public var jitStatistics: JITStatistics {
        guard let jit else { return JITStatistics() }
        var s = jit.statistics
        s.returns = (0..<JITReturnReason.count).filter { jit.returnCounts[$0] != 0 }
            .map { JITReturnCount(reason: JITReturnReason.name($0), count: jit.returnCounts[$0]) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.reason < $1.reason }
        return s
    }

    /// Host code of the block at `pc` in the current address space, translated now if needed,
    /// for debugging (`llvm-objdump -D -b binary -m i386:x86-64`). Nil when the first
    /// instruction is not translated or the page is not RAM.
    public func hostCode(at pc: UInt32) -> [UInt8]? {
        guard let pa = physicalAddress(of: pc), pc & 3 == 0, let page = bus.ramPage(frame: pa >> 12) else { return nil }
        return JITTranslator.translate(pc: pc, words: UnsafePointer(page.assumingMemoryBound(to: UInt32.self)), inline: inlineCP0Gate?.layout)?.code
    }

    /// Drops translated blocks of `frame` (a store or a host write changed it).
    @inline(__always)
    func invalidateTranslations(frame: Int) {
        jit?.invalidate(frame: frame)
    }

    /// Runs up to `budget` instruction slots with translated blocks where it can and the
    /// interpreter elsewhere; returns how many were used. A block runs only when all of its
    /// instructions fit in the budget, so the batch (and the timer) ends exactly where the
    /// interpreter's would.
    func executeTranslated(_ budget: UInt64) -> UInt64 {
        guard let jit = jit ?? makeJIT() else { return executeFast(budget) }
        var remaining = budget
        batchBreak = false
        let st = jit.state
        // A chain slot the last block left unlinked, and the flush count of the cache it is in.
        var pendingLink: UInt = 0
        var pendingFlushes: UInt64 = 0
        // Breakpoints: blocks end before them, and the interpreter steps report them.
        let observing = !observedPCs.isEmpty
        jit.batchTimer = nextTimerCycle
        jit.batchObserving = observing
        // Slots of this batch already in `cycles`: call outs that ended the batch in place
        // (`endsBatchInPlace`) moved it, as the run loop's next batch would have started there.
        var accounted: UInt64 = 0
        while remaining > 0 {
            var step: UInt64 = 1
            // Instructions of a catch-up run (`catchUpRun`) in `step` (0: none).
            var caughtUp: UInt64 = 0
            // Only the lookup right after the block that left it may link it.
            let link = pendingLink
            pendingLink = 0
            // A block may have jumped to another page (the lookup): fetch from it as the
            // interpreter would, unless that faults (the interpreter then raises it).
            if !inDelaySlot && (pc & 0xFFFF_F003) != codeTag && !enterCodePageIfItCannotFault() { break }
            if !inDelaySlot && (pc & 0xFFFF_F003) == codeTag,
               let table = jit.frameBlocks[Int(codeFrame)] ?? jit.makeTable(frame: Int(codeFrame)) {
                let frame = Int(codeFrame)
                let slot = Int((pc >> 2) & 1023)
                var e = table[slot]
                if _slowPath(e.pc != pc) {
                    if jit.catchUp > 0, case let run = catchUpRun(jit, table, limit: min(jit.catchUp, jit.catchUpRunLimit, Int(min(remaining, 64)))), run > 0 {
                        // Right after a batch cut a block short: the interpreter runs on to a
                        // known block start instead of translating one more block from here.
                        jit.catchUp &-= run
                        caughtUp = UInt64(run)
                        step = caughtUp
                        e = JITEntry()
                    } else {
                        e = translateBlock(jit, frame: frame)
                        table[slot] = e
                        jit.catchUp = 0
                    }
                }
                if link != 0, let code = e.code, pendingFlushes == jit.statistics.flushes {
                    // The last block ended in this page at this pc: jump here directly next time.
                    jit.link(slot: link, to: code, instructions: e.instructions)
                }
                if let code = e.code {
                    if UInt64(e.instructions) <= remaining {
                        jit.catchUp = 0
                        enableLookups(jit, pc: pc, e)
                        if observerStopPC == pc { observerStopPC = nil }  // pc runs: the skip is used
                        st.storeBytes(of: hi, toByteOffset: JITState.hi, as: UInt32.self)
                        st.storeBytes(of: lo, toByteOffset: JITState.lo, as: UInt32.self)
                        st.storeBytes(of: currentSoftTLB, toByteOffset: JITState.softTLB, as: UnsafeMutablePointer<SoftTLBEntry>.self)
                        st.storeBytes(of: UInt32(truncatingIfNeeded: min(remaining, 0xFFFF_FFF0)), toByteOffset: JITState.left, as: UInt32.self)
                        st.storeBytes(of: 0, toByteOffset: JITState.accumulated, as: UInt32.self)
                        st.storeBytes(of: 0, toByteOffset: JITState.link, as: UInt.self)
                        st.storeBytes(of: llBit ? 1 : 0, toByteOffset: JITState.llBit, as: UInt8.self)
                        st.storeBytes(of: llVirtual, toByteOffset: JITState.llVirtual, as: UInt32.self)
                        st.storeBytes(of: llValue, toByteOffset: JITState.llValue, as: UInt32.self)
                        st.storeBytes(of: cycles &+ (budget &- remaining &- accounted), toByteOffset: JITState.batchBase, as: UInt64.self)
                        let f = unsafeBitCast(code, to: JIT.BlockFunction.self)
                        let done = UInt64(f(UnsafeMutableRawPointer(regs), st))
                        foldInlineCP0(state: st)
                        hi = st.load(fromByteOffset: JITState.hi, as: UInt32.self)
                        lo = st.load(fromByteOffset: JITState.lo, as: UInt32.self)
                        pc = st.load(fromByteOffset: JITState.pc, as: UInt32.self)
                        npc = st.load(fromByteOffset: JITState.npc, as: UInt32.self)
                        inDelaySlot = st.load(fromByteOffset: JITState.delay, as: UInt8.self) != 0
                        llBit = st.load(fromByteOffset: JITState.llBit, as: UInt8.self) != 0
                        remaining &-= done
                        if _slowPath(jit.movedCycles != 0) {
                            accounted &+= jit.movedCycles
                            jit.movedCycles = 0
                        }
                        jit.statistics.instructionsRun &+= done
                        jit.statistics.entries &+= 1
                        pendingLink = st.load(fromByteOffset: JITState.link, as: UInt.self)
                        pendingFlushes = jit.statistics.flushes
                        let calledOut = Int(st.load(fromByteOffset: JITState.callOutReason, as: UInt32.self))
                        if calledOut != 0 {
                            jit.returnCounts[calledOut] &+= 1
                            st.storeBytes(of: 0, toByteOffset: JITState.callOutReason, as: UInt32.self)
                        }
                        // A call out ended the batch (a device, an exception, a CP0 write, a stop).
                        if batchBreak || stopRequested { break }
                        if st.load(fromByteOffset: JITState.interpreterNext, as: UInt8.self) == 0 || remaining == 0 {
                            if calledOut == 0 { noteBlockEnd(jit, remaining: remaining, link: pendingLink) }
                            continue
                        }
                        noteExitBefore(jit)
                    } else {
                        step = remaining  // the rest of the batch is shorter than the block
                        jit.catchUp = JIT.catchUpSteps  // the next batch starts inside this block
                        (jit.coverTable, jit.coverSlot) = (table, slot)  // (likely) covering it
                    }
                }
            }
            let elapsed = budget &- remaining &- accounted
            let ran = observing ? executeObserved(step, elapsed: elapsed) : executeFast(step, elapsed: elapsed)
            remaining &-= ran
            // A catch-up run that ended the batch early: one step at a time had stopped there too.
            if _slowPath(ran < caughtUp) { jit.catchUp &+= Int(caughtUp &- ran) }
            if batchBreak || stopRequested { break }
        }
        // As in the interpreter, `cycles` (which devices read) moves only at the end of a batch.
        cycles &+= budget &- remaining &- accounted
        return budget &- remaining
    }

    /// Counts a return at a block's end (pc is where it goes on): the batch ended, a chain slot
    /// not linked yet, the lookup did not find the block, or found it with no room in the batch.
    @inline(never)
    func noteBlockEnd(_ jit: JIT, remaining: UInt64, link: UInt) {
        var reason = JITReturnReason.lookupMiss
        if remaining == 0 {
            reason = JITReturnReason.batchEnd
        } else if link != 0, let slot = UnsafeRawPointer(bitPattern: link) {
            let need = slot.loadUnaligned(fromByteOffset: JITTranslator.slotNeedOffset, as: UInt32.self)
            reason = need == JITTranslator.unlinked ? JITReturnReason.unlinked : JITReturnReason.noRoom
        } else {
            let e = jit.lookup[Int((pc >> 2) & UInt32(JITLookup.entries - 1))]
            if e.pc == pc { reason = UInt64(e.instructions) > remaining ? JITReturnReason.noRoom : JITReturnReason.fetchMiss }
        }
        jit.returnCounts[reason] &+= 1
    }

    /// Counts a return before the instruction at pc (the interpreter runs it next: an op no
    /// block holds, an overflow, a trap taken).
    @inline(never)
    func noteExitBefore(_ jit: JIT) {
        let word: UInt32
        if pc & 0xFFFF_F000 == codeTag {
            word = codeHost[Int((pc >> 2) & 1023)]
        } else {
            guard let w = readVirtual(pc, size: 4) else { return }
            word = w
        }
        jit.returnCounts[Int(decode(word).op.rawValue)] &+= 1
    }

    @inline(never)
    func makeJIT() -> JIT? {
        jit = JIT(capacity: configuration.codeCacheBytes)
        jit?.attach(to: self)
        return jit
    }

    @inline(never)
    func translateBlock(_ jit: JIT, frame: Int) -> JITEntry {
        // Translation time is the thread's CPU time (not wall-clock time, which a busy host
        // inflates), sampled: one translation in `timedEvery` is timed and counts for all of
        // them (the thread's CPU clock is a system call, 1.5 µs on the development VM: timing
        // each of Linux's 54,000 blocks twice cost 3 % of its boot).
        let timed = jit.translations % HostClock.timedEvery == 0
        jit.translations &+= 1
        let t0 = timed ? HostClock.threadNanoseconds : 0
        var e = JITEntry(pc: pc, instructions: 0, code: nil)
        let limit = observedPCs.isEmpty ? JITTranslator.maxInstructions : instructionsBeforeObservedPC(from: pc)
        if limit > 0, let block = JITTranslator.translate(pc: pc, words: UnsafePointer(codeHost), limit: limit, inline: inlineCP0Gate?.layout),
           let code = jit.install(block.code) {
            e.instructions = UInt32(block.instructions)
            e.code = code
            jit.statistics.blocks += 1
            if jit.invalidatedFrames[frame] != 0 { jit.statistics.retranslations += 1 }
            jit.statistics.guestInstructions += UInt64(block.instructions)
        }
        // After `install` (which may flush): even "not translated" depends on the frame's
        // contents, so a write to the frame must forget the entry.
        jit.translatedFrames[frame] = 1
        if timed { jit.statistics.translationNanoseconds &+= (HostClock.threadNanoseconds &- t0) &* HostClock.timedEvery }
        return e
    }
}

enum HostClock {
    /// One translation in this many is timed (`CPU.translateBlock`).
    static let timedEvery: UInt64 = 16

    /// The CPU time of the calling thread (translation time does not grow with the host's load,
    /// as wall-clock time does on a busy host).
    static var threadNanoseconds: UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

extension JIT {
    /// Whether `pc` lies inside (not at the start of) a translated block of its page in `table`
    /// (a frame's 1024 slots): one that starts at most 63 instructions before it.
    func covered(_ table: UnsafeMutablePointer<JITEntry>, pc: UInt32) -> Bool {
        coveringSlot(table, pc: pc) != nil
    }

    /// The slot of a block that makes `covered` true (nil: none). The block that answered last
    /// is asked first; any block that covers `pc` gives the same answer as the scan back.
    func coveringSlot(_ table: UnsafeMutablePointer<JITEntry>, pc: UInt32) -> Int? {
        let slot = Int((pc >> 2) & 1023)
        if table == coverTable && JIT.block(table, at: coverSlot, covers: pc) { return coverSlot }
        var s = slot - 1
        while s >= 0 && slot - s < JIT.catchUpSteps {
            if JIT.block(table, at: s, covers: pc) {
                (coverTable, coverSlot) = (table, s)
                return s
            }
            s -= 1
        }
        return nil
    }

    /// Whether the block in slot `s` of `table` starts 1 to 63 instructions before `pc` (at its
    /// virtual address) and reaches it.
    @inline(__always)
    static func block(_ table: UnsafeMutablePointer<JITEntry>, at s: Int, covers pc: UInt32) -> Bool {
        let back = Int((pc >> 2) & 1023) &- s
        guard back > 0 && back < JIT.catchUpSteps else { return false }
        let e = table[s]
        return e.code != nil && e.pc == pc &- UInt32(back) &* 4 && e.instructions > UInt32(back)
    }
}

extension CPU {
    /// How many instructions from pc on the catch-up interprets in one go, at most `limit`:
    /// 0 when pc is not `covered`; else those before the first that the covering block no
    /// longer reaches (or lies 64 or more after its start) or that has an entry of its own in
    /// `table` (the run loop looks at it), and up to a branch or jump, itself included (its
    /// delay slot and where it goes the run loop looks at one by one). The run loop would have
    /// stepped through exactly these one at a time, each `covered` and none a block's start,
    /// each going on to the next unless it ends the batch (`executeTranslated`).
    func catchUpRun(_ jit: JIT, _ table: UnsafeMutablePointer<JITEntry>, limit: Int) -> Int {
        guard limit > 0, let s = jit.coveringSlot(table, pc: pc) else { return 0 }
        let start = Int((pc >> 2) & 1023)
        let end = min(s + Int(table[s].instructions), s + JIT.catchUpSteps, start + limit)
        var i = start
        while i < end {
            if i > start && table[i].pc == pc &+ UInt32(i - start) &* 4 { break }
            i += 1
            if CPU.mayBranch(codeHost[i - 1]) { break }
        }
        return i - start
    }

    /// Whether the instruction word `w` may be a branch or jump: opcodes 1 to 7 (REGIMM, J, JAL,
    /// BEQ, BNE, BLEZ, BGTZ) and 20 to 23 (the likely ones), JR and JALR. A superset (REGIMM's
    /// traps too): stopping a catch-up run early only leaves more to the run loop.
    @inline(__always)
    static func mayBranch(_ w: UInt32) -> Bool {
        let op = w >> 26
        return (op &- 1) < 7 || (op &- 20) < 4 || (op == 0 && w & 0x3E == 8)
    }
}
