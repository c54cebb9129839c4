/// What a bus device that serves an access by its instruction (the VMM's device window) asks the
/// CPU while the CPU waits for its answer.
extension CPU {
    /// The instruction whose data access the bus is answering now: its pc (`busAccessPC`), its
    /// word when the CPU fetches it without a translation (`codeWord(at:)`, or the page
    /// translated code runs in: `translatedCodeWord`; nil otherwise), and whether nothing
    /// watches the CPU's accesses one by one (no observer, no memory watches). One call: a read
    /// of each of these stored properties from another module pays a dynamic exclusivity check
    /// (and the array's and the existential's reference counting).
    public func busAccessInstruction() -> (pc: UInt32, word: UInt32?, unobserved: Bool) {
        let pc = busAccessPC
        return (pc, codeWord(at: pc) ?? translatedCodeWord(at: pc), observer == nil && memoryWatches.isEmpty)
    }

    /// The word at `pc` when the page is one translated code runs from now: blocks chain into
    /// pages the loop did not enter (`codeTag` is then another page), and the JIT's fetch TLB
    /// holds each such page as the CPU fetches from it now (TLB writes drop the pages they
    /// cover). Nil when it does not hold `pc`'s page in the current mode.
    @inline(__always)
    func translatedCodeWord(at pc: UInt32) -> UInt32? {
        guard let jit else { return nil }
        let e = jit.fetchTLB[Int(mode.rawValue) &* JIT.fetchPages &+ (Int(pc >> 12) & (JIT.fetchPages - 1))]
        guard e.tag == pc & 0xFFFF_F003 else { return nil }
        return UnsafePointer<UInt32>(bitPattern: e.addend &+ UInt(pc))?.pointee
    }
}
