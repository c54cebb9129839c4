/// What a bus device that serves an access by its instruction (the VMM's device window) asks the
/// CPU while the CPU waits for its answer.
extension CPU {
    /// The instruction whose data access the bus is answering now: its pc (`busAccessPC`), its
    /// word when the CPU fetches it without a translation (`codeWord(at:)`: the loop's page or
    /// one the translator's fetch TLB maps; nil otherwise), and whether nothing
    /// watches the CPU's accesses one by one (no observer, no memory watches). One call: a read
    /// of each of these stored properties from another module pays a dynamic exclusivity check
    /// (and the array's and the existential's reference counting).
    public func busAccessInstruction() -> (pc: UInt32, word: UInt32?, unobserved: Bool) {
        let pc = busAccessPC
        return (pc, codeWord(at: pc), observer == nil && memoryWatches.isEmpty)
    }
}
