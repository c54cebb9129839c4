/// Observation and interception: how debuggers, scripts and the hypervisor see the CPU.
///
/// Everything here costs nothing while unused: exceptions, mode changes and TLB writes are
/// reported from slow paths that run anyway; memory watches keep the watched pages out of the
/// software TLB so only their accesses take the slow path, which asks the observer before each
/// access to a watched range and reports it after; per-instruction observation selects
/// a second specialisation of the interpreter loop (`observesInstructions`), so the ordinary
/// loop does not even test a flag per instruction.

/// Why the processor's mode changed.
public enum ModeChangeCause: Sendable, Equatable {
    case exception(ExceptionCode)
    case eret
    case statusWrite
    case host
}

/// A change of operating mode (kernel, supervisor, user).
public struct ModeChange: Sendable, Equatable {
    public var from: Mode
    public var to: Mode
    /// The instruction that caused it (the faulting one for an exception, the ERET or MTC0).
    public var pc: UInt32
    public var cause: ModeChangeCause
}

/// An exception as the CPU takes it.
public struct Trap: Sendable, Equatable {
    public var code: ExceptionCode
    /// The instruction that raised it (for an interrupt: the next one to execute).
    public var pc: UInt32
    public var inDelaySlot: Bool
    public var badVAddr: UInt32?
    /// A TLB refill (no matching entry), which uses the refill vector when EXL was 0.
    public var isRefill: Bool
    /// Cause.CE for a Coprocessor Unusable exception.
    public var coprocessor: UInt32
    /// `badVAddr` failed translation (a TLB exception, or an address error because the mode
    /// may not use its segment), rather than being misaligned: EntryHi and Context take it too.
    public var isTranslationFault: Bool

    public init(code: ExceptionCode, pc: UInt32, inDelaySlot: Bool, badVAddr: UInt32? = nil, isRefill: Bool = false, coprocessor: UInt32 = 0,
                isTranslationFault: Bool = false) {
        self.code = code
        self.pc = pc
        self.inDelaySlot = inDelaySlot
        self.badVAddr = badVAddr
        self.isRefill = isRefill
        self.coprocessor = coprocessor
        self.isTranslationFault = isTranslationFault
    }

    /// Where execution restarts after the handler: the branch when in a delay slot (EPC).
    public var restartPC: UInt32 { inDelaySlot ? pc &- 4 : pc }
}

/// A data access to a watched range.
public struct MemoryAccess: Sendable, Equatable {
    public var virtual: UInt32
    /// Where it goes in physical memory. Before the access (`willAccessMemory`): where the
    /// CPU's translation maps it now, or `MemoryAccess.notMapped` (a TLB fill, a fault or, under
    /// a hypervisor, a trap comes first).
    public var physical: UInt32
    public var size: Int
    /// The value loaded or stored.
    public var value: UInt32
    public var isWrite: Bool
    public var pc: UInt32

    /// `physical` of an access not mapped yet when the observer is asked before it.
    public static let notMapped: UInt32 = 0xFFFF_FFFF
}

/// What an observer wants after an event.
public enum ObserverAction: Sendable {
    case proceed
    /// End `run` at the next instruction boundary with `.stopRequested`.
    case stop
}

/// Receives the CPU's events. Every method has a default that does nothing.
public protocol CPUObserver: AnyObject {
    /// Before each instruction, only while `CPU.observesInstructions` is true. `.stop` stops
    /// *before* the instruction at `pc` executes (a breakpoint).
    func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction
    /// After CP0 was updated for an exception (or before the trap handler runs, if one is set).
    func cpu(_ cpu: CPU, didTakeException trap: Trap) -> ObserverAction
    func cpu(_ cpu: CPU, didChangeMode change: ModeChange) -> ObserverAction
    func cpu(_ cpu: CPU, didWriteTLB index: Int, entry: TLBEntry, pc: UInt32) -> ObserverAction
    /// Before a data access that touches one of `CPU.memoryWatches` (its page takes the slow
    /// path; the rest of the program runs at full speed, translated too). `value` is what a
    /// store writes (0 for loads and for SWL/SWR, whose merged word is not read yet). `.stop`
    /// stops *before* the instruction, as a `.stop` from `willExecuteAt` there would: it has not
    /// executed (registers, memory and counts as before it, its slot unused), pc is at it (in
    /// its branch's delay slot if it sits in one), and a run resumed there makes the access
    /// without asking again (it is reported after it happened, `didAccessMemory`). Not asked in
    /// the delay slot of a branch that links into the register it reads (`jalr` with rd = rs,
    /// `bltzal`/`bgezal` of $31: a restart there is UNPREDICTABLE), where the access is only
    /// reported after it. An access
    /// retried at the same instruction count (after a TLB fill, or the store half of a
    /// SWL/SWR/SC) is asked once.
    func cpu(_ cpu: CPU, willAccessMemory access: MemoryAccess) -> ObserverAction
    /// An access inside one of `CPU.memoryWatches`, after it happened.
    func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction
}

extension CPUObserver {
    public func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction { .proceed }
    public func cpu(_ cpu: CPU, didTakeException trap: Trap) -> ObserverAction { .proceed }
    public func cpu(_ cpu: CPU, didChangeMode change: ModeChange) -> ObserverAction { .proceed }
    public func cpu(_ cpu: CPU, didWriteTLB index: Int, entry: TLBEntry, pc: UInt32) -> ObserverAction { .proceed }
    public func cpu(_ cpu: CPU, willAccessMemory access: MemoryAccess) -> ObserverAction { .proceed }
    public func cpu(_ cpu: CPU, didAccessMemory access: MemoryAccess) -> ObserverAction { .proceed }
}

/// Takes over exception entry: the hypervisor's hook. When a trap handler is set, the CPU does
/// not touch CP0 or vector on an exception; it calls `handleTrap`, which must leave the CPU in
/// the state to continue from (typically with `setPosition` and `setStatus`). Before the call
/// the CPU is positioned at the restart point, where EPC would point: the faulting instruction,
/// or the branch before it when it sits in a delay slot (the branch runs again, as after a real
/// exception). A handler that changes nothing therefore retries the instruction.
public protocol TrapHandler: AnyObject {
    func handleTrap(_ trap: Trap, cpu: CPU)
    /// A direct path for the instruction `d` at `pc` (not in a delay slot) that would raise an
    /// exception: Coprocessor Unusable for a privileged `mfc0`, `mtc0`, `di`, `ei`, `eret` or
    /// `cache`, System Call or Breakpoint (`CPU.emulatePrivileged`): nil when the handler leaves
    /// it to `handleTrap` (nothing changed), true when it emulated it and the CPU goes on at
    /// `pc + 4`, false when it emulated it and moved the CPU (its pc in the CPU; the batch ends).
    func emulatePrivileged(_ d: DecodedInstruction, pc: UInt32, cpu: CPU) -> Bool?
}

extension TrapHandler {
    public func emulatePrivileged(_ d: DecodedInstruction, pc: UInt32, cpu: CPU) -> Bool? { nil }

    /// `handleTrap` and `emulatePrivileged` of the handler at `handler` (its address, not
    /// retained), through its dynamic type: what the CPU calls on every exit (calling the
    /// methods through the CPU's unowned reference retains and releases the handler each time).
    static func handleTrap(unretained handler: UnsafeMutableRawPointer, _ trap: Trap, cpu: CPU) {
        Unmanaged<Self>.fromOpaque(handler)._withUnsafeGuaranteedRef { $0.handleTrap(trap, cpu: cpu) }
    }

    static func emulatePrivileged(unretained handler: UnsafeMutableRawPointer, _ d: DecodedInstruction, pc: UInt32, cpu: CPU) -> Bool? {
        Unmanaged<Self>.fromOpaque(handler)._withUnsafeGuaranteedRef { $0.emulatePrivileged(d, pc: pc, cpu: cpu) }
    }
}

extension CPU {
    @inline(__always)
    func notify(_ action: ObserverAction) {
        if case .stop = action { requestStop() }
    }

    /// Raises exception `code` at the current instruction boundary as the hardware would (for
    /// debuggers and scripts): EPC is the next instruction (or its branch in a delay slot);
    /// TLB exceptions also set Context and EntryHi from `badVAddr`. No instruction slot is used.
    public func inject(_ code: ExceptionCode, badVAddr: UInt32? = nil, refill: Bool = false, coprocessor: UInt32 = 0) {
        waiting = false
        let tlb = code.isTLB
        enterException(code, pc: pc, inDelaySlot: inDelaySlot, badVAddr: badVAddr, refill: refill,
                       coprocessor: coprocessor, translationFault: tlb, usesSlot: false)
    }

    /// Restores the instruction position, including a pending branch (machine switch, debugger):
    /// `pc` is the next instruction, `npc` the one after it (the branch target when `pc` is a
    /// delay slot).
    public func setPosition(pc: UInt32, npc: UInt32, inDelaySlot: Bool) {
        self.pc = pc
        self.npc = npc
        self.inDelaySlot = inDelaySlot
        waiting = false
        observerStopPC = nil
        accessAsked = nil
    }

    /// A fingerprint of the 32 general registers: equal registers give equal fingerprints
    /// (a hypervisor's idle-loop detector compares two of them at every quantum's end). The
    /// register file is read as 16 64-bit words into four independent multiply lanes, a few
    /// nanoseconds where a hash of one register after the other took 40.
    public var registerFingerprint: UInt64 {
        let raw = UnsafeRawPointer(regs)
        let p: UInt64 = 0x100_0000_01b3
        var h0: UInt64 = 0xcbf2_9ce4_8422_2325, h1: UInt64 = 0x84_2222_325c, h2: UInt64 = 0x9e37_79b9_7f4a_7c15, h3: UInt64 = 0xc2b2_ae3d_27d4_eb4f
        for i in stride(from: 0, to: 128, by: 32) {
            h0 = (h0 ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* p
            h1 = (h1 ^ raw.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)) &* p
            h2 = (h2 ^ raw.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self)) &* p
            h3 = (h3 ^ raw.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self)) &* p
        }
        return (((h0 &* p) ^ h1) &* p ^ h2) &* p ^ h3
    }

    /// Clears the LL bit, as ERET does (for a hypervisor that emulates ERET).
    public func clearLinkedLoad() { llBit = false }

    /// Sets Status without the write mask (hypervisor, debugger) and applies the mode change.
    /// Setting the value it holds changes nothing (nor ends the batch: a hypervisor sets it after
    /// every emulated Status write, and the translated block goes on, `enterException`).
    public func setStatus(_ value: UInt32) {
        if value == cp0.status && StatusBits.mode(value) == mode && (value & StatusBits.erl != 0) == segmentsBuiltWithERL { return }
        cp0.status = value
        statusChanged(pc: pc, cause: .host)
    }

    /// Whether `va` lies in a watched range (slow path only).
    func isWatched(_ va: UInt32, size: UInt32) -> Bool {
        for r in memoryWatches where va <= r.upperBound && va &+ (size - 1) >= r.lowerBound { return true }
        return false
    }

    /// Whether any watched range touches the 4 KiB page of `va`.
    func pageIsWatched(_ va: UInt32) -> Bool {
        let base = va & 0xFFFF_F000
        return isWatched(base, size: 4096)
    }

    func reportAccess(_ va: UInt32, pa: UInt32, size: UInt32, value: UInt32, write: Bool, pc: UInt32) {
        guard let observer, isWatched(va, size: size) else { return }
        notify(observer.cpu(self, didAccessMemory: MemoryAccess(virtual: va, physical: pa, size: Int(size), value: value, isWrite: write, pc: pc)))
    }

    /// Asks the observer before the access of `size` bytes at `va` by the instruction at `pc`
    /// when it touches a watched range (the slow paths call this first, before any fault).
    /// Returns true when the observer stopped the CPU before the instruction: the caller
    /// returns as after an exception (the CPU is positioned at the instruction).
    @inline(never)
    func stopsBeforeAccess(_ va: UInt32, size: UInt32, value: UInt32, write: Bool, pc: UInt32, delay: Bool) -> Bool {
        guard let observer, isWatched(va, size: size) else { return false }
        let retired = retiredInstructions
        if let asked = accessAsked, asked.pc == pc, asked.retired == retired { return false }
        // Where a stop before the instruction leaves the CPU: at it, its branch's target next
        // when it is a delay slot (the branch evaluated again: the slot has not run). Where that
        // target cannot be found again (`DecodedInstruction.repeatedTarget`), no stop is offered:
        // the access is made and reported after it (`didAccessMemory`), as a resumed one is.
        guard let next = delay ? branchTarget(beforeDelaySlot: pc) : pc &+ 4 else { return false }
        accessAsked = (pc, retired)
        let access = MemoryAccess(virtual: va, physical: physicalAddress(of: va, forWrite: write) ?? MemoryAccess.notMapped,
                                  size: Int(size), value: value, isWrite: write, pc: pc)
        guard case .stop = observer.cpu(self, willAccessMemory: access) else { return false }
        self.pc = pc
        npc = next
        inDelaySlot = delay
        observerStopPC = pc  // resumed here, the observer is not asked before it again
        // The slot the loop counted for the instruction is given back: it did not execute.
        cycles &-= 1
        if inBatch { batchStart &-= 1 }
        requestStop()
        return true
    }

    /// Where the branch before the delay slot at `slot` goes, with the registers as they are;
    /// nil when that need not be where it went (`DecodedInstruction.repeatedTarget`) or the
    /// branch cannot be read.
    func branchTarget(beforeDelaySlot slot: UInt32) -> UInt32? {
        let bpc = slot &- 4
        guard let word = codeWord(at: bpc) ?? readVirtual(bpc, size: 4) else { return nil }
        let d = decode(word)
        return d.repeatedTarget(afterBranchAt: bpc, rs: regs[Int(d.rs)], rt: d.rt < 32 ? regs[Int(d.rt)] : 0)
    }
}
