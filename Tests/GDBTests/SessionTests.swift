import Testing
@testable import MagritteGDB

/// A scripted target: 72 registers, a 64 KiB RAM at 0x80000000, stops from a queue.
final class ScriptedTarget: GDBReversibleTarget {
    var registers = [UInt32](repeating: 0, count: 72)
    var ram = [UInt8](repeating: 0, count: 0x10000)
    var points: [GDBStopPoint] = []
    var stops: [GDBStop] = []
    var steps: [Int] = []
    var resumed: [Int?] = []
    var detached = false
    var canGoBack = false
    var threads = [1, 2]
    let base: UInt32 = 0x8000_0000

    func threadDescription(_ thread: Int) -> String? { "guest\(thread)" }
    func readRegister(_ n: Int, thread: Int) -> UInt32? { n < 38 ? registers[n] &+ UInt32(thread - 1) << 24 : nil }
    func writeRegister(_ n: Int, _ value: UInt32, thread: Int) -> Bool {
        guard n < 38, n != GDBRegister.badVAddr else { return false }
        registers[n] = value
        return true
    }
    func readByte(_ address: UInt32, thread: Int) -> UInt8? {
        guard address >= base, address - base < ram.count else { return nil }
        return ram[Int(address - base)]
    }
    func writeByte(_ address: UInt32, _ value: UInt8, thread: Int) -> Bool {
        guard address >= base, address - base < ram.count else { return false }
        ram[Int(address - base)] = value
        return true
    }
    func insert(_ point: GDBStopPoint) -> Bool { points.append(point); return true }
    func remove(_ point: GDBStopPoint) -> Bool {
        guard let i = points.firstIndex(of: point) else { return false }
        points.remove(at: i)
        return true
    }
    func step(thread: Int) -> GDBStop { steps.append(thread); return .trap(thread: thread) }
    func resume(thread: Int?, interrupted: () -> Bool) -> GDBStop {
        resumed.append(thread)
        if stops.isEmpty {
            while !interrupted() {}
            return .interrupted(thread: 1)
        }
        return stops.removeFirst()
    }
    func detach() { detached = true }
    func stepBack(thread: Int) -> GDBStop { .historyBegin(thread: thread) }
    func continueBack(thread: Int?, interrupted: () -> Bool) -> GDBStop { .watch(.write, address: 0x8000_0010, thread: 2) }
}

func send(_ s: GDBSession, _ text: String, interrupted: () -> Bool = { false }) -> String? {
    s.handle(Array(text.utf8), interrupted: interrupted).map { String(decoding: $0, as: UTF8.self) }
}

@Suite struct SessionTests {
    @Test func qSupportedAdvertisesReverseOnlyWhenTheTargetCanGoBack() {
        let t = ScriptedTarget()
        let s = GDBSession(target: t)
        let plain = send(s, "qSupported:multiprocess+;swbreak+;xmlRegisters=i386") ?? ""
        #expect(plain.contains("PacketSize=4000"))
        #expect(plain.contains("qXfer:features:read+"))
        #expect(!plain.contains("Reverse"))
        #expect(send(s, "bs") == "E01")
        #expect(send(s, "bc") == "E01")
        t.canGoBack = true
        #expect(send(s, "qSupported")!.contains("ReverseStep+;ReverseContinue+"))
        #expect(send(s, "bs") == "T05replaylog:begin;thread:1;")
        #expect(send(s, "bc") == "T05watch:80000010;thread:2;")
        #expect(s.selectedThread == 2)
    }

    @Test func targetDescriptionIsServedInChunks() {
        let s = GDBSession(target: ScriptedTarget())
        var xml = ""
        var offset = 0
        while true {
            let r = send(s, "qXfer:features:read:target.xml:\(String(offset, radix: 16)),100")!
            xml += r.dropFirst()
            offset += r.count - 1
            if r.hasPrefix("l") { break }
            #expect(r.hasPrefix("m"))
            #expect(r.count == 0x101)
        }
        #expect(xml == GDBRegister.targetXML)
        for feature in ["org.gnu.gdb.mips.cpu", "org.gnu.gdb.mips.cp0", "org.gnu.gdb.mips.fpu"] { #expect(xml.contains(feature)) }
        #expect(send(s, "qXfer:features:read:other.xml:0,100") == "E00")
        #expect(send(s, "qXfer:features:read:target.xml:zz,100") == "E01")
        #expect(send(s, "qXfer:features:read:target.xml:ffffff,100") == "E01")
    }

    @Test func registersInGDBOrderWithFloatingPointReadingZero() {
        let t = ScriptedTarget()
        for i in 0..<38 { t.registers[i] = UInt32(i) * 0x0101_0101 }
        let s = GDBSession(target: t)
        let g = send(s, "g")!
        #expect(g.count == 72 * 8)
        #expect(g.prefix(16) == "0000000001010101")
        #expect(g.dropFirst(37 * 8).prefix(8) == "25252525")  // pc
        #expect(g.dropFirst(38 * 8).allSatisfy { $0 == "0" })  // f0…fir
        #expect(send(s, "p25") == "25252525")
        #expect(send(s, "p26") == "00000000")
        #expect(send(s, "p48") == "E01")
        #expect(send(s, "P25=78563412") == "OK")
        #expect(t.registers[37] == 0x1234_5678)
        #expect(send(s, "P26=ffffffff") == "OK")  // f0: ignored
        #expect(send(s, "p26") == "00000000")
        #expect(send(s, "P23=00000000") == "E01")  // badvaddr: the target refuses
        #expect(send(s, "P25=1234") == "E01")
        #expect(send(s, "Pzz=12345678") == "E01")
        // G writes back what changed; its length must be exact.
        var all = Array(send(s, "g")!)
        all.replaceSubrange(8 * 5..<8 * 6, with: Array("efbeadde"))
        #expect(send(s, "G" + String(all)) == "OK")
        #expect(t.registers[5] == 0xDEAD_BEEF)
        #expect(send(s, "G" + String(all.dropLast())) == "E01")
        // Thread 2's registers differ (the scripted target adds the thread to the top byte).
        #expect(send(s, "Hg2") == "OK")
        #expect(send(s, "p25") == "78563413")
        #expect(send(s, "Hg9") == "E01")
    }

    @Test func memoryReadsWritesAndFaults() {
        let t = ScriptedTarget()
        let s = GDBSession(target: t)
        #expect(send(s, "M80000010,4:01020304") == "OK")
        #expect(send(s, "m80000010,4") == "01020304")
        #expect(send(s, "mffffffff80000010,2") == "0102")  // sign-extended kernel address
        #expect(send(s, "X80000020,3:a}]b") == "OK")
        #expect(Array(t.ram[0x20..<0x23]) == [UInt8(ascii: "a"), UInt8(ascii: "}"), UInt8(ascii: "b")])
        #expect(send(s, "X80000020,0:") == "OK")
        #expect(send(s, "m7ffffffe,4") == "E14")  // unmapped
        #expect(send(s, "m8000fffe,4") == "0000")  // a short read up to the end
        #expect(send(s, "mfffffffe,4") == "E01")  // wraps past 4 GiB
        #expect(send(s, "m80000000,ffffffff") == "E01")
        #expect(send(s, "m80000000,100000000") == "E01")
        #expect(send(s, "m1234567812345678,4") == "E01")
        #expect(send(s, "m80000000") == "E01")
        #expect(send(s, "m80000000,4000")!.count == 2 * GDBSession.maxTransfer)
        #expect(send(s, "M80000010,4:0102") == "E01")
        #expect(send(s, "M80000010,2:01zz") == "E01")
        #expect(send(s, "M7ffffff0,4:01020304") == "E14")
        #expect(send(s, "X80000020,2:a}") == "E01")
    }

    @Test func breakpointsAndWatchpointsReachTheTarget() {
        let t = ScriptedTarget()
        let s = GDBSession(target: t)
        #expect(send(s, "Z0,80001000,4") == "OK")
        #expect(send(s, "Z1,80001004,4") == "OK")
        #expect(send(s, "Z2,80002000,4") == "OK")
        #expect(send(s, "Z3,80002000,4") == "OK")
        #expect(send(s, "Z4,ffffffff80002000,2") == "OK")
        #expect(t.points == [
            GDBStopPoint(kind: .software, address: 0x8000_1000, length: 4),
            GDBStopPoint(kind: .software, address: 0x8000_1004, length: 4),
            GDBStopPoint(kind: .write, address: 0x8000_2000, length: 4),
            GDBStopPoint(kind: .read, address: 0x8000_2000, length: 4),
            GDBStopPoint(kind: .access, address: 0x8000_2000, length: 2),
        ])
        #expect(send(s, "z2,80002000,4") == "OK")
        #expect(send(s, "z2,80002000,4") == "E01")
        #expect(send(s, "Z5,80002000,4") == "E01")
        #expect(send(s, "Z2,fffffffe,4") == "E01")
        #expect(send(s, "Z2,80002000,0") == "E01")
        #expect(send(s, "Z0,80001000") == "E01")
        #expect(send(s, "Z0,80001000,4;X1,0") == "OK")  // conditions are gdb's business
    }

    @Test func stopRepliesForEveryKindOfStop() {
        let t = ScriptedTarget()
        t.stops = [.trap(thread: 2), .watch(.write, address: 0x8000_2000, thread: 1),
                   .watch(.read, address: 0x8000_2004, thread: 1), .watch(.access, address: 0x8000_2008, thread: 2), .exited(code: 0)]
        let s = GDBSession(target: t)
        #expect(send(s, "?") == "T05thread:1;")
        #expect(send(s, "c") == "T05thread:2;")
        #expect(send(s, "?") == "T05thread:2;")
        #expect(send(s, "qC") == "QC2")
        #expect(send(s, "vCont;c") == "T05watch:80002000;thread:1;")
        #expect(send(s, "vCont;c:2") == "T05rwatch:80002004;thread:1;")
        #expect(send(s, "c80004000") == "T05awatch:80002008;thread:2;")
        #expect(t.registers[37] == 0x8000_4000)
        #expect(send(s, "vCont;c") == "W00")
        #expect(t.resumed == [nil, nil, 2, nil, nil])
        // Ctrl-C: the target polls and stops with SIGINT.
        var polls = 0
        #expect(send(s, "c", interrupted: { polls += 1; return polls > 3 }) == "T02thread:1;")
        #expect(polls == 4)
    }

    @Test func steppingPicksTheThread() {
        let t = ScriptedTarget()
        let s = GDBSession(target: t)
        #expect(send(s, "vCont?") == "vCont;c;C;s;S")
        #expect(send(s, "vCont;s:2;c") == "T05thread:2;")
        #expect(send(s, "s") == "T05thread:2;")  // the stop selected thread 2
        #expect(send(s, "Hc1") == "OK")
        #expect(send(s, "s") == "T05thread:1;")
        #expect(send(s, "vCont;s:7") == "E01")
        #expect(send(s, "vCont;x") == "E01")
        #expect(send(s, "vCont;") == "E01")
        #expect(t.steps == [2, 2, 1])
    }

    @Test func threadsAndSessionEnd() {
        let t = ScriptedTarget()
        let s = GDBSession(target: t)
        #expect(send(s, "qfThreadInfo") == "m1,2")
        #expect(send(s, "qsThreadInfo") == "l")
        #expect(send(s, "qThreadExtraInfo,2") == String(decoding: hexEncode("guest2".utf8), as: UTF8.self))
        #expect(send(s, "qThreadExtraInfo,3") == "E01")
        #expect(send(s, "T2") == "OK")
        #expect(send(s, "T3") == "E01")
        #expect(send(s, "Tzz") == "E01")
        #expect(send(s, "Hg0") == "OK")
        #expect(send(s, "Hc-1") == "OK")
        #expect(send(s, "qAttached") == "1")
        #expect(send(s, "qOffsets") == "")
        #expect(send(s, "vMustReplyEmpty") == "")
        #expect(send(s, "!") == "")
        #expect(send(s, "") == "")
        #expect(send(s, "QStartNoAckMode") == "OK")
        #expect(s.noAck)
        #expect(send(s, "D;1") == "OK")
        #expect(s.ended == .detached)
        #expect(t.detached)
        let k = GDBSession(target: ScriptedTarget())
        #expect(send(k, "k") == nil)
        #expect(k.ended == .killed)
    }

    /// Random and mutated packets never crash the host; every reply is a valid payload.
    @Test func fuzzedPacketsGetAnAnswerAndNeverCrash() {
        var rng = XorShift(state: 0x6764_6273)
        let seeds = ["g", "G00", "p25", "P25=00000000", "m80000000,10", "M80000000,2:0102", "X80000000,2:ab",
                     "Z0,80001000,4", "z2,80002000,4", "Hg1", "Hc-1", "T1", "qXfer:features:read:target.xml:0,ffff",
                     "qSupported:xmlRegisters=mips", "vCont;s:1", "qThreadExtraInfo,1", "qC", "?", "bs", "bc"]
        let alphabet = Array("0123456789abcdefABCDEF,:;=-$#}*xzZmMgGpPXHTqQvs".utf8)
        let iterations = Int(env("MAGRITTE_GDB_FUZZ") ?? "") ?? 20_000
        for _ in 0..<iterations {
            let t = ScriptedTarget()
            t.stops = [.trap(thread: 1)]
            t.canGoBack = rng.next() & 1 == 0
            let s = GDBSession(target: t)
            var p = Array(seeds[Int(rng.next() % UInt64(seeds.count))].utf8)
            for _ in 0..<Int(rng.next() % 6) {
                let r = rng.next()
                let at = p.isEmpty ? 0 : Int(r >> 8 % UInt64(p.count + 1)) % (p.count + 1)
                switch r % 4 {
                case 0: p.insert(alphabet[Int(r >> 32) % alphabet.count], at: at)
                case 1: if !p.isEmpty { p.remove(at: min(at, p.count - 1)) }
                case 2: p.insert(contentsOf: [UInt8](repeating: UInt8(ascii: "f"), count: Int(r >> 40) % 24), at: at)
                default: if !p.isEmpty { p[min(at, p.count - 1)] = UInt8(truncatingIfNeeded: r >> 16) }
                }
            }
            if let reply = s.handle(p, interrupted: { true }) {
                #expect(reply.count <= 2 * GDBSession.packetSize)
                var reader = PacketReader()
                #expect(reader.feed(framePacket(reply)) == [.packet(reply)])
            }
        }
        // And raw bytes through the framing layer.
        var reader = PacketReader(maxPayload: 1024)
        for _ in 0..<iterations {
            let n = Int(rng.next() % 64)
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            for case .packet(let p) in reader.feed(bytes) { _ = GDBSession(target: ScriptedTarget()).handle(p) }
        }
    }
}

/// xorshift64: a reproducible stream for the fuzz test.
struct XorShift {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

#if canImport(Glibc)
import Glibc
#endif
func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
