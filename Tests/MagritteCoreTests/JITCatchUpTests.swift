import Testing
@testable import MagritteCore

/// The catch-up after a batch cut a block short (`Docs/jit.md`, "A batch that ends inside a
/// block"): `JIT.covered` answers from the block that answered last before it scans, and must
/// answer exactly as the scan back over the table does; a catch-up run stops at every branch.
@Suite("The translator's catch-up", .enabled(if: Engine.jitSupported))
struct JITCatchUpTests {
    /// The scan `covered` replaced, as it was: a block that starts 1 to 63 instructions before
    /// `pc` at its virtual address and reaches it.
    static func scanned(_ table: UnsafeMutablePointer<JITEntry>, pc: UInt32) -> Bool {
        let slot = Int((pc >> 2) & 1023)
        var s = slot - 1, back: UInt32 = 1
        while s >= 0 && back < UInt32(JIT.catchUpSteps) {
            let e = table[s]
            if e.code != nil && e.pc == pc &- back &* 4 && e.instructions > back { return true }
            s -= 1
            back &+= 1
        }
        return false
    }

    /// Random tables (blocks of 1 to 64 instructions at two virtual pages of one frame, blocks
    /// replaced by shorter ones, "not translated" entries, emptied tables) and queries that walk
    /// on from a pc as the catch-up does or jump anywhere, in two tables: `covered` agrees with
    /// the scan at every step.
    @Test func coveredAgreesWithTheScanAtEveryStep() throws {
        let jit = try #require(JIT(capacity: 1 << 16))
        let tables = try (0..<2).map { try #require(jit.makeTable(frame: $0)) }
        let code = UnsafeRawPointer(jit.code)
        var rng = DisassemblerTests.SplitMix64(state: 12)
        let pages: [UInt32] = [0x8010_0000, 0x0040_0000]
        var checked = 0, coveredCount = 0
        for _ in 0..<4000 {
            let table = tables[Int(rng.next() % 2)]
            switch rng.next() % 10 {
            case 0..<4:  // a block (or a "not translated" entry) at a random slot
                let slot = Int(rng.next() % 1024)
                let page = pages[Int(rng.next() % 2)]
                let n = UInt32(1 + rng.next() % 64)
                let translated = rng.next() % 8 != 0
                table[slot] = JITEntry(pc: page | UInt32(slot) << 2, instructions: translated ? min(n, UInt32(1024 - slot)) : 0,
                                       code: translated ? code : nil)
            case 4:  // the block that answered last made shorter (retranslated) or emptied
                if let t = jit.coverTable {
                    var e = t[jit.coverSlot]
                    e.instructions = rng.next() % 2 == 0 ? e.instructions / 2 : 0
                    if e.instructions == 0 { e.code = nil }
                    t[jit.coverSlot] = e
                }
            case 5:
                if rng.next() % 8 == 0 { table.update(repeating: JITEntry(), count: 1024) }
            default:  // walk on from a random pc, as the catch-up does
                var pc = pages[Int(rng.next() % 2)] | UInt32(rng.next() % 1024) << 2
                for _ in 0..<Int(rng.next() % 70) {
                    let want = Self.scanned(table, pc: pc)
                    #expect(jit.covered(table, pc: pc) == want, "pc \(Hex.prefixedWord(pc))")
                    checked += 1
                    if want { coveredCount += 1 }
                    pc &+= 4
                    if pc & 0xFFF == 0 { break }
                }
            }
        }
        #expect(checked > 50_000)
        #expect(coveredCount > checked / 10, "the queries find covered instructions too")
    }

    /// `CPU.mayBranch` holds for every branch and jump: their encodings, and every word of a
    /// random sample that decodes to one (a catch-up run that went past a branch would not look
    /// at where it goes).
    @Test func mayBranchHoldsForEveryBranch() {
        var branches = 0
        for op in Op.allCases where op.info.branch.kind != .none {
            for p in op.info.patterns {
                #expect(CPU.mayBranch(p.match), "\(op) \(Hex.prefixedWord(p.match))")
                #expect(CPU.mayBranch(p.match | ~p.mask), "\(op) \(Hex.prefixedWord(p.match | ~p.mask))")
                branches += 1
            }
        }
        var rng = DisassemblerTests.SplitMix64(state: 3)
        for _ in 0..<200_000 {
            let w = UInt32(truncatingIfNeeded: rng.next())
            if decode(w).op.info.branch.kind != .none {
                #expect(CPU.mayBranch(w), "\(Hex.prefixedWord(w))")
                branches += 1
            }
        }
        #expect(branches > 10_000)
        // Plain instructions do not stop a run: addiu, lw, sw, nop, addu.
        for w: UInt32 in [0x2484_0004, 0x8C82_0000, 0xAC82_0000, 0, 0x0085_1021] { #expect(!CPU.mayBranch(w)) }
    }
}
