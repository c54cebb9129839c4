import Foundation
import MagritteCore
import MagritteTestSupport
import Testing
@testable import MagritteHypervisor
@testable import MagritteMachine

/// VMM snapshots (issue 10, item 1): run to N, snapshot, run M gives the same consoles,
/// registers, RAM, instruction counts, statistics and events as restoring the snapshot (into the
/// same VMM, or from a file into another) and running M; bad files are refused and change nothing.
@Suite struct VMMSnapshotTests {
    static func teachosPair(engine: Engine = .hostDefault, guestRAM: Int = 32 << 20, tlbEntries: Int = 64,
                            names: [String] = ["a", "b"], window: Bool = true) throws -> VMM {
        let path = Repository.guest("os/teachos")
        let vmm = try VMM(tlbEntries: tlbEntries, engine: engine)
        vmm.mapsDevices = window
        for (name, idle) in zip(names, ["idle=wait", "idle=spin"]) {
            try vmm.addGuest(GuestConfiguration(name: name, ramSize: guestRAM, commandLine: idle), imagePath: path)
        }
        return vmm
    }

    /// Everything a run shows, to compare two runs.
    struct Observed: Equatable {
        var consoles: [String]
        var registers: [[UInt32]]
        var cp0: [[UInt32]]
        var ramDigest: UInt64
        var retired: UInt64
        var executed: UInt64
        var guestRetired: [UInt64]
        var statistics: [GuestStatistics]
        var states: [GuestState]
        var eventTotal: UInt64
        var events: [VMMEvent]
        var now: UInt64
    }

    /// The names of the fields in which two observations differ (short failure messages).
    static func differences(_ a: Observed, _ b: Observed) -> [String] {
        let pairs: [(String, Bool)] = [("consoles", a.consoles == b.consoles), ("registers", a.registers == b.registers),
                                       ("cp0", a.cp0 == b.cp0), ("ram", a.ramDigest == b.ramDigest), ("retired", a.retired == b.retired),
                                       ("executed", a.executed == b.executed), ("guest retired", a.guestRetired == b.guestRetired),
                                       ("statistics", a.statistics == b.statistics), ("states", a.states == b.states),
                                       ("event total", a.eventTotal == b.eventTotal), ("events", a.events == b.events), ("now", a.now == b.now)]
        return pairs.filter { !$0.1 }.map(\.0)
    }

    static func observe(_ vmm: VMM) -> Observed {
        let ram = RAMPages(of: vmm.bus)
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for f in ram.frames { h = (h ^ UInt64(f)) &* 0x100_0000_01B3 }
        for p in ram.pages { for b in UnsafeRawBufferPointer(start: p.bytes, count: 4096) { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 } }
        return Observed(
            consoles: vmm.guests.map(\.consoleText),
            registers: vmm.guests.map { g in let r = vmm.registers(of: g); return r.gprs + [r.hi, r.lo, r.pc] },
            cp0: vmm.guests.map { g in [(9, 0), (11, 0), (12, 0), (13, 0), (14, 0), (10, 0), (8, 0)].map { vmm.virtualCP0(g, $0.0, $0.1) } },
            ramDigest: h, retired: vmm.cpu.retiredInstructions, executed: vmm.cpu.executedInstructions,
            guestRetired: vmm.guests.map { vmm.retiredInstructions(of: $0) }, statistics: vmm.guests.map(\.statistics),
            states: vmm.guests.map(\.state), eventTotal: vmm.trace.total, events: vmm.trace.events, now: vmm.now)
    }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vmmsnap-\(getpid())-\(name)").path
    }

    /// Early in the guests' boot (the CPU decodes most of their code after the snapshot), with
    /// the device window on and off (device polling emulates the guests' loops in their exits,
    /// and those stop at a store to a frame holding decoded code): a restore puts back the
    /// frames that held code, so the counts are the same.
    @Test("run N, snapshot, run M = restore, run M (same VMM, file, fresh VMM)",
          arguments: [(Engine.interpreter, true), (.jit, true), (.interpreter, false), (.jit, false)])
    func restoreThenRunIsTheSameRun(engine: Engine, window: Bool) throws {
        let n: UInt64 = 500_000, m: UInt64 = 9_000_000
        let vmm = try Self.teachosPair(engine: engine, window: window)
        #expect(vmm.run(maxInstructions: n) == .instructionLimit)
        let path = Self.temporaryPath("run-\(engine)-\(window).snap")
        defer { unlink(path) }
        let snap = try vmm.snapshot(toFile: path)
        let code = vmm.cpu.codeFrames(below: vmm.ramFrames)
        #expect(vmm.run(maxInstructions: m) == .instructionLimit)
        let straight = Self.observe(vmm)
        #expect(vmm.cpu.codeFrames(below: vmm.ramFrames).count > code.count, "the run after the snapshot decoded more code")
        // The run crossed timer interrupts, machine switches, TLB fills and console output.
        #expect(straight.statistics.allSatisfy { $0.switchesIn > 1 && $0.reflected[0] > 0 && $0.hiddenTLBFills + $0.ksegFills > 0 })
        #expect(straight.consoles.allSatisfy { !$0.isEmpty })
        #expect(straight.executed > snap.executed)

        // Into the same VMM, in memory.
        try vmm.restore(snap)
        #expect(vmm.cpu.executedInstructions == snap.executed)
        #expect(vmm.cpu.codeFrames(below: vmm.ramFrames) == code)
        #expect(vmm.run(maxInstructions: m) == .instructionLimit)
        #expect(Self.differences(Self.observe(vmm), straight) == [])

        // From the file into a VMM built the same way that ran elsewhere first.
        let other = try Self.teachosPair(engine: engine, window: window)
        _ = other.run(maxInstructions: 2_345_678)
        try other.restore(fromFile: path)
        #expect(other.cpu.codeFrames(below: other.ramFrames) == code)
        #expect(other.run(maxInstructions: m) == .instructionLimit)
        #expect(Self.differences(Self.observe(other), straight) == [])
    }

    @Test("a guest's comm page is part of its state: restored into a VMM where it was never mapped")
    func theCommPageIsRestored() throws {
        let n: UInt64 = 2_000_000, m: UInt64 = 3_000_000  // teachos alone runs about 8 million
        func commGuest() throws -> VMM {
            let vmm = try VMM()
            try vmm.addGuest(GuestConfiguration(name: "pv", ramSize: 32 << 20, commandLine: "idle=wait pv=comm"),
                             imagePath: Repository.guest("os/teachos"))
            return vmm
        }
        let vmm = try commGuest()
        #expect(vmm.run(maxInstructions: n) == .instructionLimit)
        let page = try #require(vmm.guests[0].commPage)
        let snap = try vmm.snapshot()
        #expect(vmm.run(maxInstructions: m) == .instructionLimit)
        let straight = Self.observe(vmm)

        let fresh = try commGuest()
        #expect(fresh.guests[0].commPage == nil)
        try fresh.restore(snap)
        #expect(fresh.guests[0].commPage == page)
        #expect(fresh.run(maxInstructions: m) == .instructionLimit)
        #expect(Self.differences(Self.observe(fresh), straight) == [])
    }

    @Test func snapshotsAreSmallAndTheFileRoundTrips() throws {
        let vmm = try Self.teachosPair(engine: .interpreter)
        _ = vmm.run(maxInstructions: 3_000_000)
        let snap = vmm.snapshot()
        let bytes = snap.encoded()
        let decoded = try VMMSnapshot(decoding: bytes)
        #expect(decoded.encoded() == bytes)
        #expect(decoded.executed == snap.executed && decoded.storedPages == snap.storedPages)
        #expect(decoded.events == snap.events && decoded.eventTotal == snap.eventTotal)
        // Two teachos guests touch a few hundred pages of 256 MiB; run-length coding shrinks them.
        #expect(snap.storedPages > 10 && snap.storedPages < 4096)
        #expect(bytes.count < snap.storedPages * 4096)
    }

    static func expectRefused(_ vmm: VMM, _ bytes: [UInt8], _ words: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let before = observe(vmm)
        let path = temporaryPath("bad-\(words.hashValue).snap")
        defer { unlink(path) }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        do {
            try vmm.restore(fromFile: path)
            Issue.record("a bad file was accepted (expected: \(words))", sourceLocation: sourceLocation)
        } catch {
            #expect(error.message.contains(words), "\(error.message)", sourceLocation: sourceLocation)
        }
        #expect(differences(observe(vmm), before) == [], "a refused file changed the VMM", sourceLocation: sourceLocation)
    }

    /// Re-seals a changed payload (a valid checksum), to reach the checks after the envelope.
    static func resealed(_ file: [UInt8], _ change: (inout [UInt8]) -> Void) -> [UInt8] {
        var payload = Array(file[SnapshotFile.headerSize...])
        change(&payload)
        return SnapshotFile.wrap(payload, kind: .vmm)
    }

    @Test func badFilesAreRefusedAndChangeNothing() throws {
        let source = try Self.teachosPair(engine: .interpreter)
        _ = source.run(maxInstructions: 2_000_000)
        let good = source.snapshot().encoded()
        let vmm = try Self.teachosPair(engine: .interpreter)
        _ = vmm.run(maxInstructions: 1_000_000)

        Self.expectRefused(vmm, Array(good[..<(good.count / 2)]), "truncated")
        Self.expectRefused(vmm, Array(good[..<20]), "truncated")
        var flipped = good
        flipped[good.count - 100] ^= 0x40
        Self.expectRefused(vmm, flipped, "checksum")
        Self.expectRefused(vmm, Array("#!/bin/sh\necho not a snapshot\n".utf8), "not a Magritte snapshot")
        var version = good
        version[8] = 7
        Self.expectRefused(vmm, version, "format version 7 (a newer Magritte wrote it)")
        // A file of the version before, refused by its version (read first), not as corrupt.
        // (Main at 5c0ca86 wrote these bytes but for the frames of decoded code in the state.)
        let current = SnapshotFile.formatVersion
        Self.expectRefused(vmm, SnapshotFile.wrap(Array(good[SnapshotFile.headerSize...]), kind: .vmm, version: current - 1),
                           "the snapshot has format version \(current - 1) (an older Magritte wrote it); this Magritte reads version \(current)")
        // A bare machine's snapshot.
        let board = Malta(configuration: MaltaConfiguration(ramSize: 32 << 20))
        Self.expectRefused(vmm, board.snapshot().encoded(), "not of a VMM")
        // A corrupt state inside a sound envelope: the guest count, and a flag that is not 0/1.
        Self.expectRefused(vmm, Self.resealed(good) { $0[8] = 99 }, "impossible VMM configuration")
        Self.expectRefused(vmm, Self.resealed(good) { $0[90] = 5 }, "outside -1...1")
        Self.expectRefused(vmm, Self.resealed(good) { $0.removeLast(10) }, "truncated")
        Self.expectRefused(vmm, Self.resealed(good) { $0 += [0, 0] }, "corrupt")
        // The frames of decoded code (format version 2): one past the machine's RAM, two out of
        // order (found in the payload as `saveState` wrote them).
        let code = source.cpu.codeFrames(below: source.ramFrames)
        #expect(code.count >= 2)
        func frames(_ list: [UInt32]) -> [UInt8] {
            var w = SnapshotWriter()
            w.put(list)
            return w.bytes
        }
        func replacingFrames(with list: [UInt32]) -> [UInt8] {
            Self.resealed(good) { payload in
                let old = frames(code)
                guard let at = (0...(payload.count - old.count)).first(where: { payload[$0..<($0 + old.count)].elementsEqual(old) }) else {
                    Issue.record("the frames of decoded code are not in the payload")
                    return
                }
                payload.replaceSubrange(at..<(at + old.count), with: frames(list))
            }
        }
        Self.expectRefused(vmm, replacingFrames(with: code.dropLast() + [UInt32(source.ramFrames)]), "impossible VMM state")
        Self.expectRefused(vmm, replacingFrames(with: [code[1], code[0]] + code.dropFirst(2)), "impossible VMM state")
        #expect(replacingFrames(with: code) == good)  // the control: the same frames give the same file

        // Other configurations: guest count, guest memory, TLB size, machine RAM, names.
        let path = Self.temporaryPath("config.snap")
        defer { unlink(path) }
        let one = try VMM()
        try one.addGuest(GuestConfiguration(name: "a", commandLine: "idle=wait"), imagePath: Repository.guest("os/teachos"))
        for (other, words) in [(one, "1 guest ("), (try Self.teachosPair(engine: .interpreter, guestRAM: 16 << 20), "16 MiB"),
                               (try Self.teachosPair(engine: .interpreter, tlbEntries: 32), "32 TLB entries"),
                               (try Self.teachosPair(engine: .interpreter, names: ["x", "y"]), "x 32 MiB")] {
            try other.snapshot(toFile: path)
            Self.expectRefused(vmm, Array(FileManager.default.contents(atPath: path)!), "another VMM configuration")
            Self.expectRefused(vmm, Array(FileManager.default.contents(atPath: path)!), words)
        }
        let small = try VMM(ramSize: 128 << 20)
        try small.snapshot(toFile: path)
        #expect(throws: SnapshotError.self) { try vmm.restore(fromFile: path) }
        #expect(throws: SnapshotError.self) { try vmm.restore(fromFile: "/nonexistent/vmm.snap") }

        // After all that, the VMM still runs as one that was never asked to restore.
        let twin = try Self.teachosPair(engine: .interpreter)
        _ = twin.run(maxInstructions: 1_000_000)
        _ = vmm.run(maxInstructions: 2_000_000)
        _ = twin.run(maxInstructions: 2_000_000)
        #expect(Self.differences(Self.observe(vmm), Self.observe(twin)) == [])
    }
}
