import MagritteCore
import MagritteMachine
import Testing
@testable import MagritteHypervisor

/// Hypercalls with hostile arguments are answered, never a host crash.
@Suite struct HypercallTests {
    /// a0 = function, a1, a2; `mfc0 $v0, $22, 7`; then save v0 in s0 and power off.
    func call(_ function: UInt16, _ a1: UInt16, _ a2: UInt16, prelude: [UInt32] = []) throws -> (Guest, VMMRunOutcome) {
        let words: [UInt32] = prelude + [
            0x2404_0000 | UInt32(function), 0x2405_0000 | UInt32(a1), 0x2406_0000 | UInt32(a2),  // addiu a0..a2 (sign-extended)
            0x4002_B007,  // mfc0 $v0, $22, 7
            0x0040_8025,  // move s0, v0
            0x3C0A_BF00, 0x354A_0500, 0x240B_0042, 0xA14B_0000,  // SOFTRES = 0x42
            0x1000_FFFF, 0,
        ]
        let vmm = try VMM()
        let g = try vmm.addGuest(GuestConfiguration(name: "hc"), image: try miniELF(words))
        return (g, vmm.run(maxInstructions: 100_000))
    }

    @Test func probeAnswers() throws {
        let (g, outcome) = try call(0, 0, 0)
        #expect(outcome == .allPoweredOff)
        #expect(g.gprs[16] == 0x4D47_5254)
        #expect(g.statistics.hypercalls == 1)
    }

    @Test func batchedTLBWriteAtTheTopOfTheAddressSpace() throws {
        // The guest maps its page 0x100 at 0xFFFFE000-0xFFFFFFFF (a global TLB entry), then
        // passes a1 = 0xFFFFFFFC: the first record's first word is readable, the rest would be
        // past 0xFFFFFFFF (they wrap to useg, where nothing is mapped).
        let map: [UInt32] = [0x3C08_FFFF, 0x3508_E000, 0x4088_5000,  // EntryHi = 0xFFFFE000
                             0x2409_4007, 0x4089_1000, 0x4089_1800,  // EntryLo0/1 = PFN 0x100, D, V, G
                             0x4080_0000, 0x4080_2800, 0x4200_0002]  // Index = 0, PageMask = 0, tlbwi
        let (g, outcome) = try call(4, 0xFFFC, 3, prelude: map)
        #expect(outcome == .allPoweredOff)
        #expect(g.gprs[16] == 0)
        #expect(g.tlb[0].vpn2 == 0xFFFF_E000)
    }

    @Test func consoleWriteFromNowhere() throws {
        let (g, outcome) = try call(3, 0xFFF0, 0x7FFF)
        #expect(outcome == .allPoweredOff)
        #expect(g.gprs[16] == 0 && g.console.isEmpty)
    }

    @Test func unknownFunction() throws {
        let (g, outcome) = try call(0x7FFF, 0, 0)
        #expect(outcome == .allPoweredOff)
        #expect(g.gprs[16] == 0xFFFF_FFFF)
    }
}
