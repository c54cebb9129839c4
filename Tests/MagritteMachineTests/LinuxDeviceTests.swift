import Foundation
import Testing
@testable import MagritteMachine

/// The board pieces Linux needs (Docs/board.md): i8259 pair, RTC on guest time, PIT,
/// GT-64120 with PCI configuration, PIIX4 power-off, initrd placement.
@Suite struct LinuxDeviceTests {
    /// A clock whose cycles the test sets.
    final class Cycles {
        var now: UInt64 = 0
    }
    func clock(_ c: Cycles, frequency: UInt64 = 100_000_000) -> GuestClock {
        let clock = GuestClock(frequency: frequency)
        clock.source = { c.now }
        return clock
    }

    // MARK: i8259

    /// Linux's init_8259A: ICW1 0x11, vector bases 0 and 8, cascade on IRQ 2, 8086 mode.
    func linuxInitialised() -> I8259Pair {
        let pic = I8259Pair()
        for (port, v) in [(0, 0x11), (1, 0x00), (1, 0x04), (1, 0x01)] as [(UInt32, UInt32)] { _ = pic.master.write(offset: port, size: 1, value: v) }
        for (port, v) in [(0, 0x11), (1, 0x08), (1, 0x02), (1, 0x01)] as [(UInt32, UInt32)] { _ = pic.slave.write(offset: port, size: 1, value: v) }
        return pic
    }

    @Test func edgeIsLatchedUntilAcknowledgedAndEnded() {
        let pic = linuxInitialised()
        var line = false
        pic.onOutputChange = { line = $0 }
        pic.setIRQ(4, true)
        #expect(line)
        pic.setIRQ(4, false)
        #expect(line, "the edge stays latched in IRR")
        #expect(pic.acknowledge() == 4)
        #expect(!line)
        #expect(pic.master.isr == 0x10)
        pic.setIRQ(4, true)
        #expect(!line, "IRQ 4 in service blocks another IRQ 4")
        _ = pic.master.write(offset: 0, size: 1, value: 0x20)  // non-specific EOI
        #expect(line)
        #expect(pic.acknowledge() == 4)
        _ = pic.master.write(offset: 0, size: 1, value: 0x64)  // specific EOI for IRQ 4
        #expect(pic.master.isr == 0)
        #expect(pic.acknowledge() == 7, "nothing pending: the spurious IRQ 7")
    }

    @Test func slaveCascadesThroughIRQ2AndPriorityApplies() {
        let pic = linuxInitialised()
        var line = false
        pic.onOutputChange = { line = $0 }
        _ = pic.slave.write(offset: 1, size: 1, value: 0x01)  // mask IRQ 8
        pic.setIRQ(8, true)
        #expect(!line)
        _ = pic.slave.write(offset: 1, size: 1, value: 0x00)
        #expect(line)
        pic.setIRQ(4, true)
        // IRQ 2 (carrying the slave's IRQ 8) has priority over IRQ 4 …
        #expect(pic.acknowledge() == 8)
        // … and, in service, blocks it until the EOIs (Linux: slave first, then master).
        #expect(pic.acknowledge() == 7)
        _ = pic.slave.write(offset: 0, size: 1, value: 0x20)
        _ = pic.master.write(offset: 0, size: 1, value: 0x20)
        #expect(pic.acknowledge() == 4)
    }

    @Test func levelTriggeredThroughELCRAndPollCommand() {
        let pic = linuxInitialised()
        _ = pic.elcr.write(offset: 1, size: 1, value: 0x02)  // IRQ 9 level-triggered
        pic.setIRQ(9, true)
        _ = pic.slave.write(offset: 0, size: 1, value: 0x0C)  // OCW3: poll
        #expect(pic.slave.read(offset: 0, size: 1) == 0x81)
        _ = pic.slave.write(offset: 0, size: 1, value: 0x20)
        #expect(pic.slave.irr & 0x02 != 0, "a level input stays requested")
        _ = pic.slave.write(offset: 0, size: 1, value: 0x0B)  // OCW3: read ISR
        #expect(pic.slave.read(offset: 0, size: 1) == 0)
        _ = pic.slave.write(offset: 0, size: 1, value: 0x0A)  // OCW3: read IRR
        #expect(pic.slave.read(offset: 0, size: 1) == 0x02)
    }

    // MARK: RTC

    func readRTC(_ rtc: MC146818, _ index: UInt32) -> UInt32 {
        _ = rtc.write(offset: 0, size: 1, value: index)
        return rtc.read(offset: 1, size: 1)!
    }

    @Test func rtcStartsAtItsDateAndAdvancesWithGuestTime() {
        let c = Cycles()
        let rtc = MC146818(clock: clock(c), startTime: 946_684_800)  // 2000-01-01 00:00:00
        #expect([0, 2, 4, 6, 7, 8, 9, 0x32].map { readRTC(rtc, $0) } == [0x00, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20])
        #expect(readRTC(rtc, 10) == 0x26)
        #expect(readRTC(rtc, 11) == 0x02)
        #expect(readRTC(rtc, 13) == 0x80)
        c.now = 100_000_000 * 3661 + 50_000_000  // 1:01:01.5 later
        #expect([0, 2, 4].map { readRTC(rtc, $0) } == [0x01, 0x01, 0x01])
        _ = rtc.write(offset: 0, size: 1, value: 11)
        _ = rtc.write(offset: 1, size: 1, value: 0x06)  // binary, 24-hour
        #expect(readRTC(rtc, 0) == 1)
    }

    @Test func uipIsHighInTheLast244MicrosecondsOfEachSecond() {
        let c = Cycles()
        let rtc = MC146818(clock: clock(c), startTime: 0)
        c.now = 50_000_000  // 0.5 s
        #expect(readRTC(rtc, 10) & 0x80 == 0)
        c.now = 99_980_000  // 0.9998 s
        #expect(readRTC(rtc, 10) & 0x80 != 0)
        c.now = 100_000_000
        #expect(readRTC(rtc, 10) & 0x80 == 0)
        #expect(readRTC(rtc, 0) == 0x01)
    }

    @Test func rtcSetTimeAndUpdateInterrupt() {
        let c = Cycles()
        let rtc = MC146818(clock: clock(c), startTime: 0)
        var irq = false
        rtc.onInterruptChange = { irq = $0 }
        _ = rtc.write(offset: 0, size: 1, value: 11)
        _ = rtc.write(offset: 1, size: 1, value: 0x82)  // SET
        for (i, v) in [(0, 0x39), (2, 0x47), (4, 0x10), (7, 0x26), (8, 0x11), (9, 0x26), (0x32, 0x20)] as [(UInt32, UInt32)] {
            _ = rtc.write(offset: 0, size: 1, value: i)
            _ = rtc.write(offset: 1, size: 1, value: v)
        }
        _ = rtc.write(offset: 0, size: 1, value: 11)
        _ = rtc.write(offset: 1, size: 1, value: 0x12)  // run, update-ended interrupt on
        #expect(rtc.currentTime / 1_000_000_000 == 1_795_690_059)  // 2026-11-26T10:47:39, as QEMU printed it
        c.now += 100_000_000
        rtc.service()
        #expect(irq)
        #expect(readRTC(rtc, 12) == 0xD0)  // IRQF | UF, and PF (the periodic flag runs at the rate of A, 0x26, even with PIE off)
        #expect(!irq)
        #expect(readRTC(rtc, 6) == 0x05, "Thursday (1 = Sunday)")
    }

    @Test func civilTimeRoundTrips() {
        for (s, y, mo, d) in [(0, 1970, 1, 1), (951_782_400, 2000, 2, 29), (1_795_690_059, 2026, 11, 26), (-86_400, 1969, 12, 31)] as [(Int64, Int, Int, Int)] {
            let t = CivilTime(unixSeconds: s)
            #expect((t.year, t.month, t.day) == (y, mo, d))
            #expect(t.unixSeconds == s)
        }
    }

    // MARK: PIT

    @Test func pitCountsDownAtItsFrequency() {
        let c = Cycles()
        let pit = I8254(clock: clock(c, frequency: I8254.frequency))  // one cycle per PIT tick
        _ = pit.write(offset: 3, size: 1, value: 0x34)  // channel 0, LSB then MSB, mode 2
        _ = pit.write(offset: 0, size: 1, value: 0xE8)
        _ = pit.write(offset: 0, size: 1, value: 0x03)  // 1000
        c.now = 300
        _ = pit.write(offset: 3, size: 1, value: 0x00)  // latch channel 0
        c.now = 900
        let lo = pit.read(offset: 0, size: 1)!, hi = pit.read(offset: 0, size: 1)!
        #expect(hi << 8 | lo == 700, "the latched value")
        let lo2 = pit.read(offset: 0, size: 1)!, hi2 = pit.read(offset: 0, size: 1)!
        #expect(hi2 << 8 | lo2 == 100)
        c.now = 1300
        let lo3 = pit.read(offset: 0, size: 1)!, hi3 = pit.read(offset: 0, size: 1)!
        #expect(hi3 << 8 | lo3 == 700, "mode 2 reloads")
    }

    // MARK: GT-64120, PCI, PIIX4

    func configRead(_ malta: Malta, device: UInt32, function: UInt32, register: UInt32) -> UInt32 {
        _ = malta.bus.write(0x1BE0_0CF8, size: 4, value: 0x8000_0000 | device << 11 | function << 8 | register)
        return malta.bus.read(0x1BE0_0CFC, size: 4)!
    }

    @Test func pciBusHoldsTheHostBridgeAndThePIIX4() {
        let malta = Malta()
        #expect(configRead(malta, device: 0, function: 0, register: 0) == 0x4620_11AB)
        #expect(configRead(malta, device: 10, function: 0, register: 0) == 0x7110_8086)
        #expect(configRead(malta, device: 10, function: 0, register: 0x0C) == 0x0080_0000, "multi-function")
        #expect(configRead(malta, device: 10, function: 3, register: 0) == 0x7113_8086)
        #expect(configRead(malta, device: 10, function: 1, register: 0) == 0xFFFF_FFFF)
        #expect(configRead(malta, device: 11, function: 0, register: 0) == 0xFFFF_FFFF)
        #expect(malta.bus.read(0x1BE0_0C18, size: 4) == 0, "no master abort flagged")
        #expect(malta.bus.read(0x1BE0_0048, size: 4) == 0xC0, "PCI I/O window at 0x18000000")
    }

    @Test func interruptAcknowledgeThroughTheGT() {
        let malta = Malta()
        malta.pic.setIRQ(4, true)
        #expect(malta.cpu.cause & 0x400 != 0, "IP2")
        #expect(malta.bus.read(0x1BE0_0C34, size: 4) == 4)
        #expect(malta.cpu.cause & 0x400 == 0)
    }

    @Test func piix4PowerOff() {
        let malta = Malta()
        // The PM registers answer only once Linux's fix-up enabled them at 0x1000.
        #expect(malta.bus.read(0x1800_1004, size: 2) == 0xFFFF)
        _ = malta.bus.write(0x1BE0_0CF8, size: 4, value: 0x8000_5340)
        _ = malta.bus.write(0x1BE0_0CFC, size: 4, value: 0x1000)
        _ = malta.bus.write(0x1BE0_0CF8, size: 4, value: 0x8000_5380)
        _ = malta.bus.write(0x1BE0_0CFC, size: 4, value: 0x01)
        #expect(malta.bus.read(0x1800_1000, size: 2) == 0)
        #expect(!malta.poweredOff)
        _ = malta.bus.write(0x1800_1004, size: 2, value: 0x2000)  // SUS_EN, sleep type 0
        #expect(malta.poweredOff)
    }

    @Test func initrdGoesWhereQEMUPutsIt() throws {
        #expect(Malta.initrdAddress(size: 1_135_271, ramSize: 128 << 20, kernelEnd: 0x0100_0000) == 0x07ED_0000)
        #expect(Malta.initrdAddress(size: 100 << 20, ramSize: 64 << 20, kernelEnd: 0) == nil)
        #expect(Malta.initrdAddress(size: 1 << 20, ramSize: 4 << 20, kernelEnd: 0x0030_0000) == nil, "not above the kernel")
        let malta = Malta()
        try malta.load(initrd: [1, 2, 3, 4])
        #expect(malta.kernelCommandLine == "rd_start=0xffffffff87fe0000 rd_size=4 ")
        malta.boot(entry: 0x8010_0000)
        #expect(malta.bus.readRAM(at: 0x07FE_0000, count: 4) == [1, 2, 3, 4])
    }
}

/// Idle pacing (`Malta.paceIdleToHostClock`): idle guest time waits for the host's clock.
@Suite struct IdlePacingTests {
    /// A console with no input whose waits advance a fake host clock.
    final class FakeHost: ConsoleInput {
        var now: UInt64 = 0
        var waited: UInt64 = 0
        func poll() -> [UInt8] { [] }
        func waitForInput() -> [UInt8]? { nil }
        func waitForInput(timeoutNanoseconds nanoseconds: UInt64) -> [UInt8] {
            now += nanoseconds
            waited += nanoseconds
            return []
        }
    }

    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/guests/os/teachos.elf").path
    static var built: Bool { FileManager.default.isReadableFile(atPath: path) }

    func run(paced: Bool) throws -> (String, FakeHost, Malta) {
        let host = FakeHost()
        let (output, board) = try run(paced: paced, input: host, now: { host.now })
        return (output, host, board)
    }

    /// teachos with idle=wait to power-off, `input` as its console and `now` as the host clock.
    func run(paced: Bool, input: ConsoleInput, now: @escaping () -> UInt64, batch: UInt64? = nil) throws -> (String, Malta) {
        var bytes: [UInt8] = []
        var config = MaltaConfiguration()
        config.commandLine = "idle=wait"
        let board = Malta(configuration: config) { bytes.append($0) }
        try board.load(path: Self.path)
        board.consoleInput = input
        board.paceIdleToHostClock = paced
        board.hostNanoseconds = now
        if let batch { board.pacedBatchSize = batch }
        board.boot()
        #expect(board.run(maxInstructions: 100_000_000) == .poweredOff)
        return (String(decoding: bytes, as: UTF8.self), board)
    }

    @Test(.enabled(if: built, "needs Scripts/build-guests (teachos)"))
    func idleTimeWaitsForTheHostClockAndChangesNothingElse() throws {
        let (plain, plainHost, plainBoard) = try run(paced: false)
        let (paced, host, board) = try run(paced: true)
        #expect(paced == plain)
        #expect(board.cpu.cycles == plainBoard.cpu.cycles)
        #expect(plainHost.waited == 0)
        let idle = board.clock.nanoseconds(atCycle: board.cpu.idleCycles)
        #expect(board.cpu.idleCycles > 0)
        // The fake host clock moves only while the board waits, so the board waited until it
        // had caught up with guest time, at each idle stretch: about all of guest time (the
        // last stretch may end the run before it is paced).
        let total = board.clock.nanoseconds
        #expect(host.waited >= idle && host.waited <= total, "waited \(host.waited) ns for \(idle) ns idle, \(total) ns in all")
    }

    /// A key pressed 1 ms into the first wait: the wait ends, the byte reaches the UART and the
    /// guest's lead over the host's clock is forgiven, never waited for later (before, the answer
    /// to the first command typed in `magritte linux` waited until the host caught up).
    final class TypingHost: ConsoleInput {
        var now: UInt64 = 0
        var waited: UInt64 = 0
        var requests: [UInt64] = []
        func poll() -> [UInt8] { [] }
        func waitForInput() -> [UInt8]? { nil }
        func waitForInput(timeoutNanoseconds nanoseconds: UInt64) -> [UInt8] {
            requests.append(nanoseconds)
            let slept = requests.count == 1 ? min(nanoseconds, 1_000_000) : nanoseconds
            now += slept
            waited += slept
            return requests.count == 1 ? [UInt8(ascii: "x")] : []
        }
    }

    @Test(.enabled(if: built, "needs Scripts/build-guests (teachos)"))
    func inputDuringAWaitForgivesTheGuestsLead() throws {
        let host = TypingHost()
        // Small batches, so that the board paces after every idle stretch: without the
        // forgiveness, the later waits would make up the lead and the host would catch up with
        // all of guest time.
        let (_, board) = try run(paced: true, input: host, now: { host.now }, batch: 1000)
        let lead = try #require(host.requests.first)
        #expect(lead > 2_000_000, "the first wait is for the guest's lead (\(lead) ns)")
        #expect(host.requests.count > 1, "the guest idles again after the key")
        #expect(board.uart.hasReceivedData || board.uart.queuedInputCount > 0)
        let total = board.clock.nanoseconds
        #expect(host.waited <= total - lead + 1_000_000, "waited \(host.waited) ns of \(total) ns, lead \(lead) ns")
    }
}
