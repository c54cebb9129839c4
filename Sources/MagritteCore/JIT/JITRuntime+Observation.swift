/// Observation at block granularity (`Docs/jit.md`, "Observation"): breakpoints (`observedPCs`)
/// end translated blocks before them and are reported by the interpreter, which runs the
/// instruction at each; everything else stays translated.
extension CPU {
    /// The observing interpreter loop for part of a batch the translator runs.
    func executeObserved(_ budget: UInt64, elapsed: UInt64) -> UInt64 { execute(budget, observing: true, elapsed: elapsed) }

    /// How many instructions from `pc` a block may take before the first observed pc in its page.
    func instructionsBeforeObservedPC(from pc: UInt32) -> Int {
        var limit = JITTranslator.maxInstructions
        for x in observedPCs where x >= pc && x & 0xFFFF_F000 == pc & 0xFFFF_F000 {
            limit = min(limit, Int((x &- pc) >> 2))
        }
        return limit
    }

    /// After `observedPCs` changed: the batch ends (the engine picks its loop again), and the
    /// blocks covering a pc that came or went are dropped (translated again with the new limits).
    func observedPCsChanged(from old: Set<UInt32>) {
        batchBreak = true
        guard let jit, old != observedPCs else { return }
        let changed = old.symmetricDifference(observedPCs)
        if changed.count > 64 {
            jit.flush()
        } else {
            for x in changed { jit.invalidateBlocks(covering: x) }
        }
    }
}
