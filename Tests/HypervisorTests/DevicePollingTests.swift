import Foundation
import MagritteCore
import Testing
@testable import MagritteHypervisor

/// Device polling (issue 12 item 2): after an emulated device access the VMM emulates the
/// guest's next instructions in the same exit while they poll. The guest must not see the
/// difference: the same console, the same instruction counts by mode, the same emulated
/// instructions, registers, virtual CP0 and TLB, the same machine time and device accesses, and
/// the same VMM events apart from the traps of the accesses emulated in an earlier exit — on
/// both engines.
@Suite struct DevicePollingTests {
    typealias Outcome = ExitComparison

    static var polling: FastPath { FastPath(knob: { $0.pollsDevices = $1 }, expectSame: expectSame) }

    static func expectSame(_ on: Outcome, _ off: Outcome, _ what: String) {
        on.expectSameGuestView(as: off, what)
        #expect(on.eventCount == off.eventCount, "\(what)")
        #expect(on.events == off.events, "\(what)")
        // Each device access emulated after another in the same exit is one exit fewer.
        let saved = on.statistics.polledDeviceAccesses
        #expect(off.statistics.polledInstructions == 0 && off.statistics.polledDeviceAccesses == 0, "\(what)")
        #expect(on.statistics.traps.reduce(0, +) + saved == off.statistics.traps.reduce(0, +), "\(what)")
        #expect(on.skippedTraps + Int(saved) == off.skippedTraps, "\(what)")
        #expect(on.statistics.exitsByKind[ExitKind.device.rawValue] + saved == off.statistics.exitsByKind[ExitKind.device.rawValue], "\(what)")
    }

    @Test(arguments: Engine.allCases)
    func theGuestSeesNoDifference(_ engine: Engine) throws {
        try Self.polling.expectNoDifference([("vmm/rtcpoll", ""), ("vmm/syscalls", ""), ("vmm/cp0fuzz", ""), ("vmm/memscan", ""), ("vmm/tlbstress", ""),
                                             ("os/teachos", "idle=wait"), ("os/teachos", "idle=wait pv=comm"), ("tests/uart_regs", ""),
                                             ("tests/timer_int", "")], engine: engine)
    }

    /// The RTC and PIT loops of rtcpoll (Linux's clock calibration, in small) take a fraction of
    /// their exits: one per quantum or so instead of one per access.
    @Test(arguments: Engine.allCases)
    func pollingLoopsTakeFewerExits(_ engine: Engine) throws {
        let (on, off) = try Self.polling.rtcpoll(engine: engine)
        let accesses = off.statistics.deviceAccesses
        #expect(on.statistics.polledDeviceAccesses * 100 >= accesses * 95)
        #expect(on.statistics.exitsByKind[ExitKind.device.rawValue] * 20 < off.statistics.exitsByKind[ExitKind.device.rawValue])
        #expect(on.statistics.polledInstructions > on.statistics.polledDeviceAccesses)
    }

    /// With the smallest physical TLB the loop's pages (its two functions' code, the port base in
    /// RAM) leave the TLB between exits: the VMM stops where the CPU would miss.
    @Test func aTinyPhysicalTLBStillSeesNoDifference() throws {
        let runs = try Self.polling.expectNoDifference([("vmm/rtcpoll", "")], engine: .interpreter, tlbEntries: VMM.physicalTLBSizes.lowerBound)
        #expect(runs.allSatisfy { $0.on.statistics.polledDeviceAccesses > 0 })
    }

    /// Stopped part-way (an instruction limit inside a polling loop), the guest is where it would
    /// be without polling: the run's budget counts the emulated instructions.
    @Test func anInstructionLimitFallsWhereItWould() throws {
        for limit: UInt64 in [150_000, 1_234_567] {
            let (on, off) = try Self.polling.pair("vmm/rtcpoll", engine: .interpreter, maxInstructions: limit)
            #expect(on.now == off.now, "limit \(limit)")
            #expect(on.registers == off.registers, "limit \(limit)")
            #expect(on.retired == off.retired, "limit \(limit)")
            #expect(on.statistics.polledDeviceAccesses > 0, "limit \(limit)")
        }
    }
}

/// The lecture's table says how many exits a flow's device accesses took when a polling loop
/// was emulated after one of them (the trace has no `trap` event before the accesses polled).
@Suite struct DevicePollingLectureTests {
    static func event(_ kind: VMMEvent.Kind, _ before: Mode, _ after: Mode, pc: UInt32, at n: UInt64) -> VMMEvent {
        VMMEvent(kind: kind, guest: "g", modeBefore: before, modeAfter: after, pc: pc, instructions: n)
    }

    static func systemCall(deviceTraps: [Bool]) -> [VMMEvent] {
        var t = [event(.trap(.syscall), .user, .user, pc: 0x0040_0034, at: 100),
                 event(.reflect(.syscall, vector: 0x8000_0180), .user, .kernel, pc: 0x0040_0034, at: 100)]
        for (i, trapped) in deviceTraps.enumerated() {
            if trapped { t.append(event(.trap(.tlbStore), .kernel, .kernel, pc: 0x8010_0200, at: 110 + UInt64(i))) }
            t.append(event(.device("write 0x180003f8 = 0x41"), .kernel, .kernel, pc: 0x8010_0200, at: 110 + UInt64(i)))
        }
        t.append(event(.trap(.coprocessorUnusable), .kernel, .kernel, pc: 0x8010_172C, at: 200))
        t.append(event(.emulate("eret"), .kernel, .kernel, pc: 0x8010_172C, at: 200))
        t.append(event(.realReturn(target: 0x0040_0038), .kernel, .user, pc: 0x8010_172C, at: 200))
        return t
    }

    @Test func theNoteCountsTheDeviceExits() throws {
        let polled = try #require(LectureTables.flow(.syscall, trace: Self.systemCall(deviceTraps: [true, false, false, true])))
        #expect(polled.note?.contains("4 device accesses emulated in 2 exits") == true, "\(polled.note ?? "no note")")
        let trapped = try #require(LectureTables.flow(.syscall, trace: Self.systemCall(deviceTraps: [true, true])))
        #expect(trapped.note?.contains("2 device accesses emulated") == true, "\(trapped.note ?? "no note")")
        #expect(trapped.note?.contains("exits") == false, "\(trapped.note ?? "no note")")
    }
}
