import MagritteCore

/// Translated code that emulates a guest kernel's plain `mfc0` and `mtc0` without calling out
/// (`InlineCP0`, JIT/JITVirtualCP0.swift; Docs/vmm.md, "What an exit costs").
///
/// The VMM gives the CPU a gate: which virtual CP0 registers are plain (from the CP0 rules with
/// the guest's shape, less those `readVirtualCP0` answers itself), the running guest's virtual
/// CP0 (`Guest.cp0Storage`: the guest's own storage, no copy) and whether the direct path
/// (`emulatePrivileged`) would emulate such an instruction now: it is open exactly where that
/// path would not decline — nobody records or listens to events, exit sites are not collected,
/// nothing clusters, the guest has no comm page — and where its `exitBegins` would do nothing
/// (no long quantum waiting for its first exit). The rest (kernel mode, no interrupt the
/// direct path would deliver after it) the translated code checks on the virtual Status itself.
/// What it emulated, the CPU folds before any other code runs (`foldInlineCP0`): counted as
/// the direct path counts it.
extension VMM {
    /// The accesses `readVirtualCP0` answers itself (Random, Count, LLAddr, Cause's lines and
    /// timer) and the hypercall: never plain. (`writeVirtualCP0` acts only on the effects
    /// `CP0State.write` reports, which plain writes have none of.)
    static func ownsCP0Access(_ reg: Int, _ sel: Int, write: Bool) -> Bool {
        guard !write else { return false }
        let id = (reg, sel)
        return id == CP0Register.random.id || id == CP0Register.count.id || id == CP0Register.llAddr.id
            || id == CP0Register.cause.id || id == CP0Register.hypercall.id
    }

    /// The guests' plain CP0 accesses (the same shape for every guest).
    static let inlineLayout = InlineCP0Layout(shape: guestShape, owned: ownsCP0Access)

    /// Gives the CPU its gate (once, when the VMM is made).
    func attachInlineCP0() {
        cpu.inlineCP0 = InlineCP0(layout: VMM.inlineLayout) { [unowned(unsafe) self] reads, writes in
            foldInlineCP0(reads: reads, writes: writes)
        }
        refreshInlineCP0()
    }

    /// Opens or closes the gate for what the direct path's conditions depend on (called where
    /// any of them changes: the running guest, the trace's activity, the options, a comm page,
    /// a long quantum's start and first exit).
    func refreshInlineCP0() {
        guard let gate = cpu.inlineCP0 else { return }
        let g = current
        let open = inlinesCP0 && emulatesDirectly && !trace.isActive && !collectsExitSites && !clustersExits && !exitEndsQuantum
            && g?.commPage == nil
        gate.setClosed(!open, cp0: g?.cp0Storage)
    }

    /// Counts `reads` mfc0 and `writes` mtc0 that translated code emulated for the running
    /// guest as the direct path counts them (`emulatePrivileged`): a trap, an exit of kind
    /// `privileged`, the emulated instruction and the (unrecorded) `trap` event each.
    func foldInlineCP0(reads: UInt32, writes: UInt32) {
        guard let g = current else { return }
        let n = UInt64(reads) &+ UInt64(writes)
        g.statistics.traps[Int(ExceptionCode.coprocessorUnusable.rawValue)] &+= n
        g.statistics.emulatedByOp[Int(Op.mfc0.rawValue)] &+= UInt64(reads)
        g.statistics.emulatedByOp[Int(Op.mtc0.rawValue)] &+= UInt64(writes)
        g.statistics.exitsByKind[ExitKind.privileged.rawValue] &+= n
        trace.total &+= n
    }
}
