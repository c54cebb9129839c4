import MagritteCore
import Testing
@testable import MagritteHypervisor

/// The VMM finds the physical entries a guest's TLB write or a fill replaces through the CPU's
/// TLB index (`CPU.tlbEntries(overlapping:)`) instead of a scan of the whole physical TLB. Random
/// guest TLB writes (page masks, global entries, invalid halves, entries outside RAM), ASID
/// changes, hidden and kseg fills and guest switches on a VMM of two guests, bounded by a count;
/// at every step: the index answers what the scan answers, the VMM's mirror is the CPU's TLB, no
/// address has two matching physical entries in one address space, and every physical
/// translation of a guest is what its own TLB (or its kseg0/kseg1) says.
@Suite struct PhysicalTLBIndexTests {
    /// xorshift64*: the same steps on every host.
    struct Steps {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 0x2545_F491_4F6C_DD1D
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func word() -> UInt32 { UInt32(truncatingIfNeeded: next() >> 29) }
    }

    static let pageMasks: [UInt32] = [0, 0, 0, 0x6000, 0x1_E000, 0x7F_E000, 0x1FF_E000]

    /// The scan the index replaces.
    static func scan(_ vmm: VMM, _ e: TLBEntry) -> UInt64 {
        var found: UInt64 = 0
        for (i, p) in vmm.physicalTLB.enumerated() where p.overlaps(e) { found |= 1 << UInt64(i) }
        return found
    }

    static func check(_ vmm: VMM, _ guests: [Guest], _ probes: [TLBEntry], _ step: String) {
        let tlb = vmm.physicalTLB
        #expect(tlb == (0..<tlb.count).map { vmm.cpu.tlbEntry($0) }, "\(step): the mirror is not the CPU's TLB")
        for e in probes + tlb {
            #expect(vmm.cpu.tlbEntries(overlapping: e) == scan(vmm, e), "\(step): overlapping \(e)")
        }
        // No two entries that can match one address of one address space.
        for i in tlb.indices {
            for j in tlb.indices where j > i && tlb[i].overlaps(tlb[j]) && (tlb[i].lo0 | tlb[i].lo1 | tlb[j].lo0 | tlb[j].lo1) & 2 != 0 {
                let a = tlb[i], b = tlb[j]
                let sameOwner = vmm.asidOwner[Int(a.asid)] == vmm.asidOwner[Int(b.asid)]
                #expect(!(sameOwner && (a.global || b.global || a.asid == b.asid)), "\(step): entries \(i) and \(j) both match")
            }
        }
        // Each valid page of each entry: its guest's own translation, where the guest's TLB is
        // unambiguous (one matching entry: two are UNPREDICTABLE on a MIPS).
        for e in tlb {
            let owner = vmm.asidOwner[Int(e.asid)]
            guard owner >= 0, let g = guests.first(where: { $0.index == owner }) else {
                #expect((e.lo0 | e.lo1) & 2 == 0, "\(step): a valid entry \(e) of no guest")
                continue
            }
            let asids = e.global ? [g.cp0.asid] : g.asidMap.filter { $0.value == e.asid }.map(\.key)
            #expect(asids.count == 1, "\(step): physical ASID \(e.asid) stands for \(asids.count) of the guest's ASIDs")
            guard let asid = asids.first else { continue }
            let size = e.pageSize
            for (half, lo) in [(UInt32(0), e.lo0), (size, e.lo1)] where lo & 2 != 0 {
                let base = (e.vpn2 & ~(size &* 2 &- 1)) | half
                for va in [base, base | (size - 4096)] {
                    let machine = ((lo >> 6) << 12) & ~(size &- 1) | (va & (size &- 1))
                    if let gpa = g.cp0.unmappedPhysical(va) {
                        #expect(e.global && g.machineAddress(gpa) == machine, "\(step): \(Hex.prefixed(va)) of \(g.name)")
                        continue
                    }
                    let matching = g.tlb.filter { $0.matches(va, asid: asid) }
                    guard matching.count <= 1 else { continue }
                    guard let m = matching.first, case .mapped(let gpa, let dirty) = m.translate(va) else {
                        Issue.record("\(step): \(Hex.prefixed(va)) of \(g.name) is mapped physically (\(e)), not by the guest")
                        continue
                    }
                    #expect(g.machineAddress(gpa) == machine, "\(step): \(Hex.prefixed(va)) of \(g.name): physically \(e), by the guest \(m)")
                    #expect(dirty || lo & 4 == 0, "\(step): \(Hex.prefixed(va)) of \(g.name) is writable physically only")
                }
            }
        }
    }

    @Test(arguments: [(1, 64), (2, 16), (3, 3), (4, 64)])
    func theIndexIsTheScanAtEveryStep(seed: UInt64, tlbEntries: Int) throws {
        let vmm = try VMM(ramSize: 96 << 20, tlbEntries: tlbEntries)
        let image = GuestsUnderVMMTests.guest("os/teachos")
        let guests = try ["a", "b"].map { try vmm.addGuest(GuestConfiguration(name: $0), imagePath: image) }
        var s = Steps(state: seed &* 0x9E37_79B9 | 1)
        // A few pair addresses, so that writes overlap and repeat.
        let vpns = (0..<6).map { _ in s.word() & 0x7FFF_E000 } + [0x0040_0000, 0xC000_0000]
        vmm.switchTo(guests[0])
        var kinds = [Int](repeating: 0, count: 5)
        for n in 0..<1500 {
            let g = vmm.current!
            let kind = s.below(10) < 5 ? 0 : s.below(4) + 1
            kinds[kind] += 1
            var probes: [TLBEntry] = []
            switch kind {
            case 0:  // a guest TLB write, as tlbwi/tlbwr emulates it
                let mask = Self.pageMasks[s.below(Self.pageMasks.count)]
                let global: UInt32 = s.below(6) == 0 ? 1 : 0
                func lo() -> UInt32 {
                    let frame = s.below(8) == 0 ? s.word() & 0x03FF_FFC0 : (s.word() % UInt32(g.ramSize >> 12)) << 6
                    return frame | (s.word() & 6) | global
                }
                // As mtc0 writes them (a new ASID in EntryHi is the guest's new address space).
                vmm.writeVirtualCP0(g, 10, 0, vpns[s.below(vpns.count)] ^ (s.below(3) == 0 ? s.word() & 0x7FF_E000 : 0) | UInt32(s.below(4)))
                vmm.writeVirtualCP0(g, 5, 0, mask)
                vmm.writeVirtualCP0(g, 2, 0, lo())
                vmm.writeVirtualCP0(g, 3, 0, lo())
                let i = s.below(g.tlb.count)
                probes = [g.tlb[i], g.cp0.entryToWrite]
                _ = vmm.tlbWrite(g, i, pc: 0x8000_0000)
            case 1:  // the guest changes its ASID
                vmm.writeVirtualCP0(g, 10, 0, (g.cp0.entryHi & ~0xFF) | UInt32(s.below(4)))
            case 2:  // a hidden fill of an address the guest's TLB maps
                let e = g.tlb[s.below(g.tlb.count)]
                let va = e.vpn2 &+ (s.word() & (e.pageSize &* 2 &- 1))
                if g.cp0.unmappedPhysical(va) == nil, case .mapped(let gpa, _) = TLBEntry.lookup(g.tlb, va, asid: g.cp0.asid),
                   g.machineAddress(gpa) != nil {
                    vmm.installMapped(g, va: va)
                }
            case 3:  // a kseg fill
                let gpa = s.word() % UInt32(g.ramSize)
                vmm.installUnmapped(g, va: (s.below(2) == 0 ? 0x8000_0000 : 0xA000_0000) | gpa, gpa: gpa)
            default:  // the other guest runs
                vmm.switchTo(guests[(g.index + 1) % 2])
            }
            Self.check(vmm, guests, probes, "seed \(seed) step \(n) (kind \(kind))")
        }
        #expect(kinds.allSatisfy { $0 > 100 }, "\(kinds)")
        #expect(vmm.physicalTLB.contains { $0.lo0 & 2 != 0 && !$0.global }, "no mapped entry at the end")
    }
}
