import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import MagritteCore
import MagritteMachine
import Testing
@testable import MagritteHypervisor

/// The lecture's tables and sequence diagrams come from real runs: the VMM's trace of teachos
/// and the same teachos on bare Malta.
@Suite struct LectureTests {
    nonisolated(unsafe) static let run: (VMM, Guest)? = {
        guard let vmm = try? VMM(), let g = try? vmm.addGuest(GuestConfiguration(name: "t"), imagePath: GuestsUnderVMMTests.guest("os/teachos"))
        else { return nil }
        _ = vmm.run(maxInstructions: 3_000_000)
        return (vmm, g)
    }()

    @Test func systemCallFlowUnderTheVMMAndOnBareHardware() throws {
        let (vmm, g) = try #require(Self.run)
        let flow = try #require(LectureTables.flow(.syscall, trace: vmm.trace.events))
        #expect(flow.steps.map(\.lane) == [.process, .vmm, .os, .vmm, .process])
        #expect(flow.guest == "t")
        #expect(flow.pc < 0x8000_0000)  // a user process made it
        // The syscall's trap event is in the trace at that pc, from user mode, and it was reflected.
        let trap = try #require(vmm.trace.events.first { $0.kind == .trap(.syscall) && $0.pc == flow.pc })
        #expect(trap.modeBefore == .user)
        #expect(flow.steps[1].text.contains("0x80000180"))
        #expect(flow.steps[4].text.contains(Hex.prefixedWord(flow.pc &+ 4) + " = syscall + 4"))

        let bare = try #require(LectureTables.bareFlow(.syscall, like: g, pc: flow.pc))
        #expect(bare.lanes == [.process, .hardware, .os])
        #expect(bare.steps.map(\.lane) == [.process, .process, .hardware, .os, .hardware, .process])
        #expect(bare.pc == flow.pc)
        #expect(bare.steps[4].text.contains(Hex.prefixedWord(flow.pc &+ 4)))
        let text = LectureTables.render(.syscall, trace: vmm.trace.events, guests: vmm.guests)
        #expect(text.contains("System call with a VMM") && text.contains("Standard system call"))
        #expect(text.contains("| Process") && text.contains("| VMM") && text.contains("| Hardware"))
    }

    @Test func tlbMissFlowInstallsVPNToMFN() throws {
        let (vmm, g) = try #require(Self.run)
        let flow = try #require(LectureTables.flow(.tlbMiss, trace: vmm.trace.events))
        #expect(flow.steps.map(\.lane) == [.process, .vmm, .os, .vmm, .os, .vmm, .process])
        #expect(flow.steps[1].text.contains("0x80000000"))  // the refill vector, not the general one
        #expect(flow.steps[6].text.hasSuffix("TLB hit"))
        // The VMM's step names the guest's PFN and the machine frame: MFN = PFN + the guest's base.
        let text = flow.steps[3].text
        let pfn = try #require(text.firstMatch(of: /-> PFN 0x([0-9a-f]+)/).map { UInt32($0.1, radix: 16)! })
        let mfn = try #require(text.firstMatch(of: /-> MFN 0x([0-9a-f]+)/).map { UInt32($0.1, radix: 16)! })
        #expect(mfn == pfn + g.memoryBase >> 12)
        let bare = try #require(LectureTables.bareFlow(.tlbMiss, like: g, pc: flow.pc))
        #expect(bare.steps.map(\.lane) == [.process, .os, .process])
        #expect(bare.steps[1].text.contains("PFN 0x\(String(pfn, radix: 16))"))
    }

    /// The bare twin of a VMM TLB miss is the same access: same instruction, same page installed,
    /// and so the same ending (issue 13, item 9: it used to load another address and miss again).
    @Test func bareTwinOfATLBMissIsTheSameAccess() throws {
        let (vmm, g) = try #require(Self.run)
        let flow = try #require(LectureTables.flow(.tlbMiss, trace: vmm.trace.events))
        let page = try #require(flow.page)
        let bare = try #require(LectureTables.bareFlow(.tlbMiss, like: g, pc: flow.pc, page: page))
        #expect(bare.pc == flow.pc && bare.page == page)
        #expect(bare.steps[1].text.contains("VPN2 \(Hex.prefixedWord(page))"), "\(bare.steps[1].text)")
        #expect(bare.steps[2].text.hasSuffix(flow.steps[6].text.hasSuffix("TLB hit") ? "TLB hit" : "it missed again"), "\(bare.steps[2].text)")
        let table = LectureTables.render(.tlbMiss, trace: vmm.trace.events, guests: vmm.guests)
        #expect(table.contains("VPN2 \(Hex.prefixedWord(page))"))
    }

    @Test func noFlowInATraceWithoutOne() throws {
        let vmm = try VMM()
        _ = try vmm.addGuest(GuestConfiguration(name: "h"), imagePath: GuestsUnderVMMTests.guest("tests/hello"))
        #expect(vmm.run(maxInstructions: 10_000_000) == .allPoweredOff)
        #expect(LectureTables.flow(.syscall, trace: vmm.trace.events) == nil)  // hello makes no system call from user mode
        #expect(LectureTables.render(.syscall, trace: vmm.trace.events, guests: vmm.guests).hasPrefix("No system call"))
        #expect(SequenceDiagram.svg(flows: [.syscall], trace: vmm.trace.events, guests: vmm.guests).contains("<svg"))
    }

    /// The SVG parses as XML, with a lifeline per lane and a box per step.
    @Test func sequenceDiagramIsWellFormedSVG() throws {
        let (vmm, _) = try #require(Self.run)
        let svg = SequenceDiagram.svg(flows: [.syscall, .tlbMiss], trace: vmm.trace.events, guests: vmm.guests)
        final class Counter: NSObject, XMLParserDelegate {
            var elements: [String: Int] = [:]
            var texts = ""
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                elements[name, default: 0] += 1
            }
            func parser(_ parser: XMLParser, foundCharacters string: String) { texts += string }
        }
        let parser = XMLParser(data: Data(svg.utf8))
        let counter = Counter()
        parser.delegate = counter
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        // Two rows (syscall, TLB miss), each the VMM flow beside the bare one: 5+6+7+3 steps,
        // 3+3+3+2 lane headers, one background.
        #expect(counter.elements["rect"] == 1 + (5 + 6 + 7 + 3) + (3 + 3 + 3 + 2))
        #expect(counter.elements["svg"] == 1)
        #expect(counter.texts.contains("Operating System") && counter.texts.contains("VMM→") == false)
    }

    @Test func wrapKeepsEveryWordAndTheWidth() {
        let text = "1. A fairly long sentence with a VeryLongWordThatDoesNotFitOnOneLineAtAll in it"
        let lines = LectureTables.wrap(text, width: 20, indent: 3)
        #expect(lines.allSatisfy { $0.count <= 20 })
        #expect(lines.joined().filter { $0 != " " } == text.filter { $0 != " " })
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix("   ") })
    }
}
