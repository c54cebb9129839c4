import Foundation
import MagritteCore
import MagritteMachine
import Testing
@testable import MagritteHypervisor

/// A device of a guest's board that never answers: every access to it is a bus error.
final class SilentDevice: Device {
    func read(offset: UInt32, size: Int) -> UInt32? { nil }
    func write(offset: UInt32, size: Int, value: UInt32) -> Bool { false }
}

/// The device window (issue 12; VMM+DeviceWindow.swift): a guest's device pages mapped to the
/// machine's device window, its accesses there served by the VMM without an exit. The guest must
/// not see the difference: the same console, instruction counts by mode, emulated instructions,
/// device accesses, reflected exceptions, machine time, retired and executed counts, registers,
/// virtual CP0 and TLB and RAM — on both engines — while its device exits all but vanish.
@Suite struct DeviceWindowTests {
    typealias Outcome = ExitComparison

    /// Guest-physical address of `SilentDevice` on the guest's board (kseg1 0xBD000000: devwin).
    static let silentAddress: UInt32 = 0x1D00_0000

    static var window: FastPath {
        FastPath(knob: { $0.mapsDevices = $1 }, listens: false, guest: { $0.board.bus.map("silent", SilentDevice(), at: silentAddress, size: 0x1000) },
                 expectSame: expectSame)
    }

    static func expectSame(_ on: Outcome, _ off: Outcome, _ what: String) {
        on.expectSameGuestView(as: off, what)
        #expect(on.ram == off.ram, "\(what)")
        #expect(off.statistics.mappedDeviceAccesses == 0, "\(what)")
        // Each access served through the window is one device exit fewer (polled accesses aside).
        let mapped = on.statistics.mappedDeviceAccesses
        let exits = { (o: Outcome) in o.statistics.exitsByKind[ExitKind.device.rawValue] + o.statistics.polledDeviceAccesses }
        #expect(exits(on) + mapped == exits(off), "\(what)")
    }

    static let guests = [("vmm/rtcpoll", ""), ("vmm/devwin", ""), ("vmm/syscalls", ""), ("vmm/cp0fuzz", ""), ("vmm/memscan", ""),
                         ("vmm/tlbstress", ""), ("os/teachos", "idle=wait"), ("os/teachos", "idle=wait pv=comm"), ("tests/uart_regs", ""),
                         ("tests/timer_int", "")]

    @Test(arguments: Engine.allCases)
    func theGuestSeesNoDifference(_ engine: Engine) throws {
        try Self.window.expectNoDifference(Self.guests, engine: engine)
    }

    /// rtcpoll's RTC, PIT and UART loops (Linux's clock calibration, in small) run on the CPU:
    /// all but a few of their device accesses take no exit.
    @Test(arguments: Engine.allCases)
    func pollingLoopsTakeAlmostNoExits(_ engine: Engine) throws {
        let (on, off) = try Self.window.rtcpoll(engine: engine)
        let accesses = on.statistics.deviceAccesses
        #expect(on.statistics.mappedDeviceAccesses * 1000 >= accesses * 999, "\(on.statistics.mappedDeviceAccesses) of \(accesses)")
        #expect(on.statistics.exitsByKind[ExitKind.device.rawValue] < 20)
        #expect(off.statistics.exitsByKind[ExitKind.device.rawValue] > 100)  // with device polling: one per quantum or so
    }

    /// devwin's accesses that the window does not serve (LL, SC, LWL/LWR/SWL/SWR, a fetch, a bus
    /// error where nothing answers) behave as when every device access trapped, and the UART's
    /// interrupt comes right after the store that raised it.
    @Test(arguments: Engine.allCases)
    func theErrorPathsAreTheTrapPaths(_ engine: Engine) throws {
        let (on, off) = try Self.window.pair("vmm/devwin", engine: engine)
        Self.expectSame(on, off, "devwin on the \(engine)")
        let lines = on.console.replacingOccurrences(of: "\r", with: "").components(separatedBy: "\n")
        func line(_ prefix: String) -> String { lines.first { $0.hasPrefix(prefix) } ?? "<no \(prefix)>" }
        #expect(line("lw   bd000000").contains("DBE"), "\(on.console)")
        #expect(line("sw   bd000008").contains("DBE"), "\(on.console)")
        #expect(line("sc   00400000").contains("DBE"), "\(on.console)")  // an SC that reaches a device
        #expect(line("sc   bfc00020 rt=00005555").contains("none") || line("sc   bfc00020 rt=00000000").contains("none"), "\(on.console)")
        #expect(line("jr rom+0x40").contains("IBE"), "\(on.console)")
        #expect(line("sb ier=thre").contains("Int") && line("sb ier=thre").contains("epc=mark+4"), "\(on.console)")
        #expect(on.console.contains("devwin: PIT hash"))
        #expect(on.statistics.mappedDeviceAccesses > 4000)
        // The bus errors, the fetch and the SC were reflected as without the window.
        #expect(on.statistics.reflected[Int(ExceptionCode.busErrorData.rawValue)] >= 5)
        #expect(on.statistics.reflected[Int(ExceptionCode.busErrorFetch.rawValue)] == 1)
    }

    /// Several guests at once under short slices (a switch falls inside their polling loops),
    /// each polling its own board at the same virtual addresses: each sees only its own devices
    /// (its console holds only its own lines) and exactly what it sees with every access trapped.
    @Test(arguments: Engine.allCases)
    func guestsPollTheirOwnBoards(_ engine: Engine) throws {
        func run(_ mapping: Bool) throws -> (VMM, [Guest]) {
            let vmm = try VMM(engine: engine)
            vmm.trace.recording = false
            vmm.mapsDevices = mapping
            vmm.slice = 3_001
            var guests: [Guest] = []
            for (i, image) in ["vmm/rtcpoll", "vmm/devwin", "vmm/rtcpoll"].enumerated() {
                let g = try vmm.addGuest(GuestConfiguration(name: "g\(i)", ramSize: 16 << 20), imagePath: GuestsUnderVMMTests.guest(image))
                g.board.bus.map("silent", SilentDevice(), at: Self.silentAddress, size: 0x1000)
                guests.append(g)
            }
            #expect(vmm.run(maxInstructions: 2_000_000_000) == .allPoweredOff)
            return (vmm, guests)
        }
        let (onVMM, on) = try run(true)
        let (offVMM, off) = try run(false)
        #expect(onVMM.now == offVMM.now)
        #expect(onVMM.cpu.retiredInstructions == offVMM.cpu.retiredInstructions)
        for (a, b) in zip(on, off) {
            #expect(a.consoleText == b.consoleText, "\(a.name)")
            #expect(a.statistics.kernelInstructions == b.statistics.kernelInstructions, "\(a.name)")
            #expect(a.statistics.deviceAccesses == b.statistics.deviceAccesses, "\(a.name)")
            #expect(a.statistics.switchesIn == b.statistics.switchesIn && a.statistics.switchesIn > 10, "\(a.name)")
            #expect(onVMM.registers(of: a).gprs == offVMM.registers(of: b).gprs, "\(a.name)")
            #expect(a.cp0 == b.cp0, "\(a.name)")
            #expect(a.statistics.mappedDeviceAccesses > 1000, "\(a.name)")
        }
        #expect(on[0].consoleText.contains("rtcpoll: PIT count changed") && !on[0].consoleText.contains("devwin"))
        #expect(on[1].consoleText.contains("devwin: PIT hash") && !on[1].consoleText.contains("rtcpoll"))
    }

    /// What turns the window off (the switch, a trace that is listened to) leaves every access to
    /// the trap path, also for pages mapped before: the next access drops the window's entries.
    @Test func theTraceAndTheSwitchKeepTheTrapPath() throws {
        let vmm = try VMM(engine: .interpreter)
        vmm.trace.recording = false
        let g = try vmm.addGuest(GuestConfiguration(name: "g"), imagePath: GuestsUnderVMMTests.guest("vmm/rtcpoll"))
        _ = vmm.run(maxInstructions: 300_000)
        let mapped = g.statistics.mappedDeviceAccesses
        #expect(mapped > 1000)
        func windowEntries() -> Int {
            vmm.physicalTLB.filter { e in [e.lo0, e.lo1].contains { $0 & EntryLoBits.valid != 0 && DeviceWindow.contains(EntryLoBits.address($0)) } }.count
        }
        #expect(windowEntries() > 0)
        var deviceEvents = 0
        vmm.trace.listener = { e in if case .device = e.kind { deviceEvents += 1 } }
        let before = g.statistics.deviceAccesses
        _ = vmm.run(maxInstructions: 300_000)
        #expect(g.statistics.mappedDeviceAccesses == mapped)
        #expect(deviceEvents == Int(g.statistics.deviceAccesses - before) && deviceEvents > 1000)
        #expect(windowEntries() == 0)
        vmm.trace.listener = nil
        _ = vmm.run(maxInstructions: 300_000)
        #expect(g.statistics.mappedDeviceAccesses > mapped)
        vmm.mapsDevices = false
        #expect(windowEntries() == 0)
        let again = g.statistics.mappedDeviceAccesses
        _ = vmm.run(maxInstructions: 300_000)
        #expect(g.statistics.mappedDeviceAccesses == again)
    }

    /// A snapshot taken with pages mapped to the window restores into a VMM whose future is the
    /// same (the window's machine addresses depend on the guest and the page only).
    @Test func aSnapshotKeepsTheWindowRight() throws {
        func make() throws -> (VMM, Guest) {
            let vmm = try VMM(engine: .interpreter)
            vmm.trace.recording = false
            return (vmm, try vmm.addGuest(GuestConfiguration(name: "g"), imagePath: GuestsUnderVMMTests.guest("vmm/rtcpoll")))
        }
        let (a, ga) = try make()
        _ = a.run(maxInstructions: 400_000)
        let snapshot = a.snapshot()
        _ = a.run()
        let (b, gb) = try make()
        try b.restore(snapshot)
        _ = b.run()
        #expect(ga.consoleText == gb.consoleText)
        #expect(a.now == b.now)
        #expect(ga.statistics.mappedDeviceAccesses == gb.statistics.mappedDeviceAccesses)
        #expect(ga.statistics.deviceAccesses == gb.statistics.deviceAccesses)
    }

    /// The host's reads and writes of window addresses (`CPU.readPhysical`, `readVirtual`,
    /// `writePhysical` of the VMM's CPU) reach no device: they find nothing and change nothing
    /// (device state, statistics, time, the window's mappings), and the guest's run goes on as
    /// one's that nobody looked at. The guests' own memory accessors (Lua's `g:read`, gdb's
    /// memory reads, the disassembler) reach only their RAM, never a device.
    @Test func hostAccessesToTheWindowChangeNothing() throws {
        func make() throws -> (VMM, Guest) {
            let vmm = try VMM(engine: .interpreter)
            vmm.trace.recording = false
            let g = try vmm.addGuest(GuestConfiguration(name: "g"), imagePath: GuestsUnderVMMTests.guest("vmm/rtcpoll"))
            _ = vmm.run(maxInstructions: 300_000)
            return (vmm, g)
        }
        let (vmm, g) = try make()
        let (twin, h) = try make()
        let windowed = vmm.physicalTLB.filter { e in [e.lo0, e.lo1].contains { $0 & EntryLoBits.valid != 0 && DeviceWindow.contains(EntryLoBits.address($0)) } }
        let entry = try #require(windowed.first)
        let even = entry.lo0 & EntryLoBits.valid != 0
        let va = entry.vpn2 | (even ? 0 : 0x1000), ma = EntryLoBits.address(even ? entry.lo0 : entry.lo1)
        #expect(vmm.physicalTranslation(va) == ma)
        func devices(_ g: Guest) -> [UInt8] {
            var w = SnapshotWriter()
            g.board.saveDeviceState(to: &w)
            return w.bytes
        }
        let before = (devices(g), g.statistics, vmm.cpu.executedInstructions, vmm.cpu.currentCycles, vmm.physicalTLB, g.consoleText)
        #expect(before.0 == devices(h))
        // Every byte and word of the mapped device page (the RTC's data port, the UART's
        // receive buffer and interrupt identification, the PICs' and PIT's ports, if there).
        let gpa = DeviceWindow.guestBase + (ma - DeviceWindow.base) % DeviceWindow.span
        var answered: [String] = []
        for offset in stride(from: UInt32(0), to: 0x1000, by: 1) {
            if vmm.cpu.readPhysical(ma + offset, size: 1) != nil { answered.append("readPhysical +\(offset)") }
            if vmm.cpu.readVirtual(va + offset, size: 1) != nil { answered.append("readVirtual +\(offset)") }
            if offset % 4 == 0, vmm.cpu.readPhysical(ma + offset, size: 4) != nil { answered.append("readPhysical word +\(offset)") }
            if vmm.cpu.writePhysical(ma + offset, size: 1, value: 0x41) { answered.append("writePhysical +\(offset)") }
            if offset % 4 == 0, vmm.readGuestMemory(g, physical: gpa + offset, size: 4) != nil { answered.append("guest physical +\(offset)") }
            if offset % 4 == 0, vmm.readGuestMemory(g, virtual: 0xA000_0000 | (gpa + offset), size: 4) != nil { answered.append("guest kseg1 +\(offset)") }
        }
        #expect(answered.isEmpty, "\(answered.count) host accesses answered, first \(answered.prefix(4))")
        #expect(devices(g) == before.0)
        #expect(g.statistics == before.1)
        #expect(vmm.cpu.executedInstructions == before.2 && vmm.cpu.currentCycles == before.3)
        #expect(vmm.physicalTLB == before.4)
        #expect(g.consoleText == before.5)
        #expect(vmm.deviceWindow.deferred == nil)
        _ = vmm.run()
        _ = twin.run()
        #expect(g.consoleText == h.consoleText && g.consoleText.contains("rtcpoll: PIT count changed"))
        #expect(vmm.now == twin.now)
        for s in [\GuestStatistics.deviceAccesses, \.mappedDeviceAccesses, \.kernelInstructions, \.userInstructions] {
            #expect(g.statistics[keyPath: s] == h.statistics[keyPath: s])
        }
        #expect(g.statistics.exitsByKind == h.statistics.exitsByKind)
    }

    /// The window's place in the machine's physical address space: above the largest RAM and
    /// the low 512 MiB, one part per guest, a guest's device range at the same offsets.
    @Test func theWindowsAddresses() {
        #expect(UInt64(DeviceWindow.base) >= UInt64(MaltaBus.maxRAMSize) && UInt64(DeviceWindow.base) >= MaltaBus.lowWindowEnd)
        #expect(DeviceWindow.guests == 14)
        #expect(DeviceWindow.machineAddress(guest: 0, 0x1800_03F8) == 0x2800_03F8)
        #expect(DeviceWindow.machineAddress(guest: 13, 0x1FC0_0000) == 0xFFC0_0000)
        #expect(DeviceWindow.machineAddress(guest: 14, 0x1FC0_0000) == nil)
        #expect(DeviceWindow.machineAddress(guest: 0, 0x0FFF_F000) == nil)
        #expect(DeviceWindow.machineAddress(guest: 0, 0x2000_0000) == nil)
        // EntryLo holds the window's frames.
        let lo = EntryLoBits.frame(0xFFC0_0000) | EntryLoBits.valid
        #expect(EntryLoBits.address(lo) == 0xFFC0_0000)
    }

    /// The window's test of an instruction word (by its major opcode, without a decode) agrees
    /// with the instruction table.
    @Test func thePlainAccessTestIsTheInstructionTables() {
        for op: UInt32 in 0..<64 {
            let w = op << 26 | 5 << 21 | 7 << 16 | 0x1234
            let memory = decode(w).op.info.memory
            #expect(DeviceWindow.isPlainAccess(w) == (memory?.kind == .plain), "opcode \(op)")
            if let memory { #expect(DeviceWindow.isStore(w) == memory.isStore, "opcode \(op)") }
        }
    }

    /// Debian's Linux, its first three billion instruction slots as the only guest (its first lines printed), with the window on
    /// and off: the same console, count, pc and registers.
    @Test(.enabled(if: LinuxUnderVMMTests.packagesAvailable, "the Debian kernel and initramfs are not in .cache/linux (Scripts/fetch-linux)"))
    func linuxSeesNoDifference() throws {
        let initrd = try #require(readWholeFile(LinuxUnderVMMTests.initrd))
        func run(_ mapping: Bool) throws -> (VMM, Guest) {
            let vmm = try VMM(engine: .hostDefault)
            vmm.trace.recording = false
            vmm.mapsDevices = mapping
            var config = GuestConfiguration(name: "linux", ramSize: 128 << 20, commandLine: LinuxUnderVMMTests.commandLine)
            config.initrd = initrd
            let g = try vmm.addGuest(config, imagePath: LinuxUnderVMMTests.kernel)
            _ = vmm.run(maxInstructions: 3_000_000_000)
            return (vmm, g)
        }
        let (a, on) = try run(true)
        let (b, off) = try run(false)
        #expect(on.consoleText == off.consoleText)
        #expect(on.consoleText.contains("Linux version"))
        #expect(a.now == b.now && a.cpu.retiredInstructions == b.cpu.retiredInstructions)
        #expect(a.registers(of: on).pc == b.registers(of: off).pc)
        #expect(a.registers(of: on).gprs == b.registers(of: off).gprs)
        #expect(on.cp0 == off.cp0)
        #expect(on.statistics.deviceAccesses == off.statistics.deviceAccesses)
        #expect(on.statistics.mappedDeviceAccesses * 10 > on.statistics.deviceAccesses * 9)
    }
}
