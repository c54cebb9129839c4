import Foundation
import MagritteCore
import MagritteHypervisor
import MagritteMachine
import Testing
@testable import MagritteGDB

/// The VMM's guests as threads, in process.
@Suite struct VMMTargetTests {
    static func twoHellos() throws -> VMM {
        let vmm = try VMM(ramSize: 128 << 20)
        _ = try vmm.addGuest(GuestConfiguration(name: "a"), imagePath: GDBProcessTests.hello)
        _ = try vmm.addGuest(GuestConfiguration(name: "b"), imagePath: GDBProcessTests.hello)
        return vmm
    }

    /// `continue` under gdb runs the guests exactly as a run without gdb: same consoles, same
    /// machine switches, same machine time.
    @Test func continueKeepsTheSchedule() throws {
        let plain = try Self.twoHellos()
        // The debugger's watcher observes the CPU, so the VMM neither clusters nor polls devices
        // under it (the guests see no difference; only the exit statistics would).
        plain.clustersExits = false
        plain.pollsDevices = false
        #expect(plain.run() == .allPoweredOff)
        let debugged = try Self.twoHellos()
        let session = GDBSession(target: VMMTarget(vmm: debugged))
        var polls = 0
        #expect(session.handle(Array("c".utf8), interrupted: { polls += 1; return false }).map { String(decoding: $0, as: UTF8.self) } == "W00")
        #expect(polls > 0)  // the socket was looked at between slices
        for (p, d) in zip(plain.guests, debugged.guests) {
            #expect(p.consoleText == d.consoleText && !p.consoleText.isEmpty)
            #expect(p.statistics == d.statistics)
        }
        #expect(plain.now == debugged.now)
        #expect(plain.cpu.retiredInstructions == debugged.cpu.retiredInstructions)
        #expect(debugged.cpu.observer == nil && debugged.onSliceEnd == nil)
    }

    @Test func ctrlCStopsAtASliceEnd() throws {
        let vmm = try Self.twoHellos()
        vmm.slice = 1000  // hello needs more than one slice
        let session = GDBSession(target: VMMTarget(vmm: vmm))
        #expect(session.handle(Array("c".utf8), interrupted: { true }).map { String(decoding: $0, as: UTF8.self) } == "T02thread:1;")
        #expect(vmm.guests[0].statistics.switchesIn == 1 && vmm.guests[1].statistics.switchesIn == 0)
        #expect(vmm.guests.allSatisfy { $0.state != .poweredOff })
    }

    @Test func registersAndMemoryOfEachGuest() throws {
        let vmm = try Self.twoHellos()
        let t = VMMTarget(vmm: vmm)
        #expect(t.threads == [1, 2])
        #expect(t.threadDescription(2) == "b (runnable)")
        #expect(t.threadDescription(3) == nil)
        #expect(t.writeRegister(8, 0x1234, thread: 2) && t.readRegister(8, thread: 2) == 0x1234)
        #expect(t.readRegister(8, thread: 1) != 0x1234)
        #expect(t.writeRegister(GDBRegister.hi, 7, thread: 1) && t.readRegister(GDBRegister.hi, thread: 1) == 7)
        #expect(!t.writeRegister(GDBRegister.status, 0, thread: 1))  // the virtual CP0: only mtc0
        #expect(t.readRegister(GDBRegister.status, thread: 1) == vmm.virtualCP0(vmm.guests[0], 12, 0))
        // Each guest's kseg0 is its own RAM.
        #expect(t.writeByte(0x8000_1000, 0xAA, thread: 1) && t.writeByte(0x8000_1000, 0xBB, thread: 2))
        #expect(t.readByte(0x8000_1000, thread: 1) == 0xAA && t.readByte(0x8000_1000, thread: 2) == 0xBB)
        #expect(t.readByte(0x8000_0000 + 32 << 20, thread: 1) == nil)  // past its 32 MiB
        #expect(t.readByte(0x1000, thread: 1) == nil)  // useg, no TLB entry
        #expect(t.writeRegister(GDBRegister.pc, 0x8010_0010, thread: 2) && t.readRegister(GDBRegister.pc, thread: 2) == 0x8010_0010)
    }
}
