import Foundation
import MagritteCore
import MagritteTestSupport
import Testing
@testable import MagritteHypervisor

/// Exits by kind and by guest pc (issue 12 item 1): every exit is booked once, at the pc that
/// trapped, and the instruction shown there is the one llvm-objdump finds in the guest's ELF.
@Suite struct ExitStatisticsTests {
    /// The syscalls workload under the VMM with exit sites collected.
    func syscallsRun(sites: Bool) throws -> (VMM, Guest) {
        let vmm = try VMM()
        vmm.collectsExitSites = sites
        let g = try vmm.addGuest(GuestConfiguration(name: "syscalls"), imagePath: GuestsUnderVMMTests.guest("vmm/syscalls"))
        #expect(vmm.run(maxInstructions: 200_000_000) == .allPoweredOff)
        return (vmm, g)
    }

    /// pc → mnemonic of every instruction llvm-objdump disassembles in `path`.
    func objdumpMnemonics(_ path: String) throws -> [UInt32: String] {
        let objdump = try #require(Tools.find("llvm-objdump"), "llvm-objdump (the oracle) is not installed")
        let result = try runProcess(objdump, ["-d", "--no-show-raw-insn", path], timeout: 120)
        var map: [UInt32: String] = [:]
        for line in String(decoding: result.stdout, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: "\t", omittingEmptySubsequences: true)
            let address = parts.first?.trimmingCharacters(in: .whitespaces) ?? ""
            guard parts.count >= 2, address.hasSuffix(":"), let pc = UInt32(address.dropLast(), radix: 16) else { continue }
            map[pc] = String(parts[1].prefix { $0 != " " })
        }
        return map
    }

    @Test func everyExitIsBookedOnceByKindAndSite() throws {
        let (_, g) = try syscallsRun(sites: true)
        let s = g.statistics
        let exits = s.traps.reduce(0, +)
        #expect(exits > 400_000)
        #expect(s.exitsByKind.reduce(0, +) == exits)
        let sites = g.exitSites()
        #expect(sites.map(\.count).reduce(0, +) == exits)
        // Privileged exits and the instructions clustered into them are the emulated ones.
        #expect(s.exitsByKind[ExitKind.privileged.rawValue] + s.clusteredInstructions == s.emulated.values.reduce(0, +))
        #expect(s.exitsByKind[ExitKind.reflected.rawValue] == s.traps[Int(ExceptionCode.syscall.rawValue)])
        // The one syscall in the user loop is a site of its own, reflected once per call.
        let sys = sites.filter { $0.instruction.hasPrefix("syscall") && $0.kind == .reflected }
        #expect(sys.count >= 1)
        #expect(sys.first?.count == 200_000)
        // Sorted by count, each with the handler's time.
        #expect(zip(sites, sites.dropFirst()).allSatisfy { $0.count >= $1.count })
        #expect(sites.allSatisfy { $0.nanoseconds > 0 })
        #expect(s.exitNanosecondsByKind.reduce(0, +) == sites.map(\.nanoseconds).reduce(0, +))
    }

    @Test func theTopSitesAreTheInstructionsLLVMObjdumpFindsThere() throws {
        let (vmm, g) = try syscallsRun(sites: true)
        let oracle = try objdumpMnemonics(GuestsUnderVMMTests.guest("vmm/syscalls"))
        let top = g.exitSites(limit: VMM.reportedExitSites)
        #expect(top.count == VMM.reportedExitSites)
        for site in top {
            let ours = String(site.instruction.prefix { $0 != " " })
            // The user loop runs at a useg alias of its kseg0 code: the ELF has it at kseg0.
            let gpa = try #require(vmm.guestPhysical(g, site.pc))
            #expect(oracle[0x8000_0000 | gpa] == ours, "site \(Hex.prefixedWord(site.pc)): \(site.instruction)")
        }
        // The handler's privileged instructions are among them: EPC, Status, Cause and BadVAddr
        // read, Status and EPC written, and the eret.
        let mnemonics = Set(top.filter { $0.kind == .privileged }.map { String($0.instruction.prefix { $0 != " " }) })
        #expect(mnemonics == ["mfc0", "mtc0", "eret"])
    }

    @Test func withoutSitesTheKindsAreStillCounted() throws {
        let (vmm, g) = try syscallsRun(sites: false)
        #expect(g.exitSites().isEmpty)
        #expect(g.statistics.exitsByKind.reduce(0, +) == g.statistics.traps.reduce(0, +))
        #expect(g.statistics.exitNanosecondsByKind.allSatisfy { $0 == 0 })
        let report = vmm.report(seconds: 1).joined(separator: "\n")
        #expect(report.contains("exits by kind: privileged"))
        #expect(!report.contains("top exit sites"))
    }

    @Test func theReportListsTheTopSites() throws {
        let (vmm, g) = try syscallsRun(sites: true)
        let report = vmm.report(seconds: 1)
        let header = try #require(report.firstIndex { $0.hasPrefix("  top exit sites") })
        let listed = report[(header + 1)...].prefix { $0.hasPrefix("    0x") }
        #expect(listed.count == VMM.reportedExitSites)
        let first = g.exitSites(limit: 1)[0]
        #expect(listed.first?.contains(Hex.prefixedWord(first.pc)) == true)
        #expect(listed.first?.contains(first.instruction) == true)
        #expect(report.contains { $0.hasPrefix("  VMM handler time: ") && $0.hasSuffix(" ns per exit") })
    }
}
