/// Translated code that emulates a guest kernel's plain `mfc0` and `mtc0` without calling out
/// (`Docs/vmm.md`, "What an exit costs").
///
/// A trap handler (the VMM) that emulates CP0 against a virtual CP0 (`CP0State`) hands the CPU
/// an `InlineCP0`: which (register, select) pairs are plain (a read is a load of one stored
/// field, a write a masked store into one field with no other effect: both derived here from the
/// CP0 rules, `CP0State.read`/`write` with the handler's shape), and a raw block the generated
/// code reads at run time: a gate, the running virtual CP0's storage and counters. A block
/// translated for a CPU with one emits, for such an `mfc0`/`mtc0` outside a delay slot: the gate
/// open and the virtual Status in kernel mode with no interrupt deliverable (EXL or ERL set, or
/// IE and KSU clear) → the load or store and a counter bump; else the ordinary call out (the
/// trap and the handler's direct path). The CPU folds the counters (its exception counts and
/// faulted slots, and the handler's own through `fold`) whenever Swift code runs again: when
/// the block returns and at the start of every call out, so nobody sees them unfolded.
public final class InlineCP0 {
    /// The block's layout (the generated code uses these offsets).
    /// A byte: nonzero while the handler keeps translated code from emulating (`setClosed`).
    static let closedOffset = 0
    /// A byte: nonzero while the CPU has an observer (it is told of every exception).
    static let observedOffset = 1
    /// The running virtual CP0 (`CP0State`), nil while the gate is closed.
    static let cp0Offset = 8
    /// `mfc0` and `mtc0` emulated since the last fold (UInt32 each, adjacent: one 64-bit test).
    static let readsOffset = 16
    static let writesOffset = 20
    static let size = 24

    /// The raw block (`size` bytes).
    let block: UnsafeMutableRawPointer
    /// Which accesses are plain, and where they go.
    public let layout: InlineCP0Layout
    /// Called with the `mfc0` and `mtc0` emulated since the last fold (not both zero), on the
    /// CPU's thread, before any other code of the handler runs: the handler counts them as its
    /// direct path would have.
    let fold: (_ reads: UInt32, _ writes: UInt32) -> Void
    /// The `mfc0` and `mtc0` translated code emulated through this gate (folded).
    public internal(set) var reads: UInt64 = 0
    public internal(set) var writes: UInt64 = 0
    /// Both.
    public var emulated: UInt64 { reads &+ writes }

    public init(layout: InlineCP0Layout, fold: @escaping (UInt32, UInt32) -> Void) {
        block = .allocate(byteCount: InlineCP0.size, alignment: 8)
        block.initializeMemory(as: UInt8.self, repeating: 0, count: InlineCP0.size)
        block.storeBytes(of: 1, toByteOffset: InlineCP0.closedOffset, as: UInt8.self)
        self.layout = layout
        self.fold = fold
    }

    deinit { block.deallocate() }

    /// Opens (false) or closes (true) the gate for the virtual CP0 at `cp0` (nil: closed).
    public func setClosed(_ closed: Bool, cp0: UnsafeMutablePointer<CP0State>?) {
        block.storeBytes(of: closed || cp0 == nil ? 1 : 0, toByteOffset: InlineCP0.closedOffset, as: UInt8.self)
        block.storeBytes(of: UnsafeMutableRawPointer(cp0), toByteOffset: InlineCP0.cp0Offset, as: UnsafeMutableRawPointer?.self)
    }

    /// Whether the gate is open now (for tests).
    public var isOpen: Bool { block.load(fromByteOffset: InlineCP0.closedOffset, as: UInt16.self) == 0 }

    /// A block that is always closed: what the generated code reads on a CPU without a gate.
    nonisolated(unsafe) static let closedBlock: UnsafeMutableRawPointer = {
        let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        p.storeBytes(of: 1, toByteOffset: closedOffset, as: UInt8.self)
        return p
    }()
}

/// Which `mfc0`/`mtc0` of a virtual CP0 of some shape translated code emulates inline
/// (`InlineCP0`): derived from the CP0 rules, `CP0State.read`/`write`, by probing them.
public struct InlineCP0Layout: Sendable {
    /// Per `reg | sel << 5`: the byte offset in `CP0State` of a plain read, or -1.
    let readOffsets: [Int32]
    /// Per `reg | sel << 5`: a plain write's field (byte offset), the bits of the old value it
    /// keeps and the bits of the written value it takes (the rest read 0); nil when not plain.
    let writeFields: [(offset: Int32, keep: UInt32, take: UInt32)?]
    /// Status's byte offset in `CP0State`.
    let statusOffset = Int32(MemoryLayout<CP0State>.offset(of: \CP0State.status)!)

    /// The plain accesses of a virtual CP0 of `shape`; `owned(reg, sel, isWrite)` says which
    /// accesses its owner answers itself (Random, Count, Cause, a hypercall…): never plain.
    public init(shape: CP0Shape, owned: (Int, Int, Bool) -> Bool) {
        var reads = [Int32](repeating: -1, count: 256)
        var writes = [(offset: Int32, keep: UInt32, take: UInt32)?](repeating: nil, count: 256)
        for reg in 0..<32 {
            for sel in 0..<8 {
                if !owned(reg, sel, false), let o = InlineCP0Layout.plainRead(reg, sel, shape: shape) { reads[reg | sel << 5] = Int32(o) }
                if !owned(reg, sel, true), let w = InlineCP0Layout.plainWrite(reg, sel, shape: shape) {
                    writes[reg | sel << 5] = (Int32(w.offset), w.keep, w.take)
                }
            }
        }
        readOffsets = reads
        writeFields = writes
    }

    /// Whether (`reg`, `sel`) is a plain read or write for translated code.
    public func isPlain(_ reg: Int, _ sel: Int, write: Bool) -> Bool {
        write ? writeFields[reg | sel << 5] != nil : readOffsets[reg | sel << 5] >= 0
    }

    // MARK: What is plain, from the CP0 rules

    /// Distinct test values (every bit both set and clear among them).
    private static let probes: [UInt32] = [0, 0xFFFF_FFFF, 0x5555_5555, 0xAAAA_AAAA, 0x1234_5678, 0xEDCB_A987, 0x0F0F_F0F0, 0x8000_0001]
    private static let fields = MemoryLayout<CP0State>.size / 4

    /// A state whose fields all hold different values derived from `seed`.
    private static func filled(_ seed: UInt32) -> CP0State {
        var s = CP0State()
        withUnsafeMutableBytes(of: &s) { raw in
            for i in 0..<fields { raw.storeBytes(of: seed &+ UInt32(i) &* 0x9E37_79B9, toByteOffset: 4 * i, as: UInt32.self) }
        }
        return s
    }

    private static func field(_ s: CP0State, _ offset: Int) -> UInt32 {
        withUnsafeBytes(of: s) { $0.load(fromByteOffset: offset, as: UInt32.self) }
    }

    private static func setField(_ s: inout CP0State, _ offset: Int, _ v: UInt32) {
        withUnsafeMutableBytes(of: &s) { $0.storeBytes(of: v, toByteOffset: offset, as: UInt32.self) }
    }

    /// The offset of the one field `CP0State.read(reg, sel)` returns as it is, whatever the
    /// state holds; nil when the read is fixed, computed or of no field.
    static func plainRead(_ reg: Int, _ sel: Int, shape: CP0Shape) -> Int? {
        let base = filled(0x3C00_0001)
        let v = base.read(reg, sel, shape: shape)
        guard let offset = (0..<fields).map({ 4 * $0 }).first(where: { field(base, $0) == v }) else { return nil }
        for seed in probes {
            var s = filled(seed ^ 0x0101_0101)
            for p in probes {
                setField(&s, offset, p)
                guard s.read(reg, sel, shape: shape) == p else { return nil }
            }
        }
        return offset
    }

    /// The field (byte offset) of the one `CP0State.write(reg, sel, v)` changes to
    /// `old & keep | v & take` with no effect for its owner and no other change, whatever the
    /// state and `v`; nil otherwise.
    static func plainWrite(_ reg: Int, _ sel: Int, shape: CP0Shape) -> (offset: Int, keep: UInt32, take: UInt32)? {
        var found: (offset: Int, keep: UInt32, take: UInt32)?
        for seed in probes {
            for v in probes {
                let before = filled(seed)
                var s = before
                guard case .none = s.write(reg, sel, v, shape: shape) else { return nil }
                let changed = (0..<fields).map { 4 * $0 }.filter { field(s, $0) != field(before, $0) }
                guard changed.count <= 1 else { return nil }
                if found == nil, let o = changed.first {
                    // What is kept of the old value (written 0 over all ones) and taken of the
                    // new one (all ones written over 0).
                    var zeros = before, ones = before
                    setField(&zeros, o, 0)
                    setField(&ones, o, 0xFFFF_FFFF)
                    guard case .none = zeros.write(reg, sel, 0xFFFF_FFFF, shape: shape), case .none = ones.write(reg, sel, 0, shape: shape) else {
                        return nil
                    }
                    let take = field(zeros, o), keep = field(ones, o)
                    guard take != 0, take & keep == 0 else { return nil }
                    found = (o, keep, take)
                }
                if let f = found {
                    guard field(s, f.offset) == field(before, f.offset) & f.keep | v & f.take,
                          changed.allSatisfy({ $0 == f.offset }) else { return nil }
                }
            }
        }
        return found
    }
}

extension CPU {
    /// The trap handler's gate for translated code (`InlineCP0`); set before the CPU runs
    /// translated code for it (blocks translated before do not emulate inline).
    public var inlineCP0: InlineCP0? {
        get { inlineCP0Gate }
        set {
            if let old = inlineCP0Gate { foldInlineCP0(old) }
            inlineCP0Gate = newValue
            newValue?.block.storeBytes(of: observer == nil ? 0 : 1, toByteOffset: InlineCP0.observedOffset, as: UInt8.self)
            if let jit {
                jit.state.storeBytes(of: newValue?.block ?? InlineCP0.closedBlock, toByteOffset: JITState.inlineCP0, as: UnsafeMutableRawPointer.self)
                jit.flush()  // blocks translated for another gate (or none)
            }
        }
    }

    /// Folds what translated code emulated since the last fold (`InlineCP0`).
    @inline(never)
    func foldInlineCP0(_ gate: InlineCP0) {
        let b = gate.block
        let reads = b.load(fromByteOffset: InlineCP0.readsOffset, as: UInt32.self)
        let writes = b.load(fromByteOffset: InlineCP0.writesOffset, as: UInt32.self)
        guard reads | writes != 0 else { return }
        b.storeBytes(of: 0, toByteOffset: InlineCP0.readsOffset, as: UInt64.self)
        let n = UInt64(reads) &+ UInt64(writes)
        exceptionCountStorage[Int(ExceptionCode.coprocessorUnusable.rawValue)] &+= n
        faultedInstructions &+= n
        gate.reads &+= UInt64(reads)
        gate.writes &+= UInt64(writes)
        gate.fold(reads, writes)
    }

    /// After translated code ran (the JIT state's gate block): folds its counters when it
    /// emulated anything.
    @inline(__always)
    func foldInlineCP0(state st: UnsafeMutableRawPointer) {
        let b = st.load(fromByteOffset: JITState.inlineCP0, as: UnsafeMutableRawPointer.self)
        if _slowPath(b.load(fromByteOffset: InlineCP0.readsOffset, as: UInt64.self) != 0), let gate = inlineCP0Gate { foldInlineCP0(gate) }
    }

    /// The observer changed: the gate's own byte follows it.
    func observerChangedForInlineCP0() {
        inlineCP0Gate?.block.storeBytes(of: observer == nil ? 0 : 1, toByteOffset: InlineCP0.observedOffset, as: UInt8.self)
    }
}
