import Foundation
import MagritteCore
import MagritteMachine
import Testing
@testable import MagritteGDB

/// The TCP server with a raw client: acknowledgements, no-ack mode, Ctrl-C while the machine
/// runs, a second debugger, a debugger that disconnects mid-run, a port already taken.
@Suite(.serialized) struct ServerTests {
    /// A Malta spinning at 0x80001000 (`b .` and its delay slot) forever.
    static func spinningMachine() -> Malta {
        let m = Malta(configuration: MaltaConfiguration(ramSize: 4 << 20))
        m.cpu.writePhysical(0x1000, size: 4, value: 0x1000_FFFF)  // b .
        m.cpu.writePhysical(0x1004, size: 4, value: 0)  // nop
        m.boot(entry: 0x8000_1000)
        return m
    }

    final class Served: @unchecked Sendable {
        var end: GDBServer.End?
        let done = DispatchSemaphore(value: 0)
    }

    /// Serves `target` on a free port in a background thread; returns the port and the outcome box.
    static func serve(_ target: MachineTarget) throws -> (UInt16, Served) {
        let server = try GDBServer(port: 0)
        let served = Served()
        nonisolated(unsafe) let t = target
        nonisolated(unsafe) let s = server
        Thread.detachNewThread {
            served.end = try? s.serve(t)
            served.done.signal()
        }
        return (server.port, served)
    }

    /// A blocking client socket.
    final class Client {
        let fd: Int32
        init(port: UInt16) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let r = withLoopback(port: port) { connect(fd, $0, $1) }
            try #require(r == 0, "cannot connect to the stub")
            var tv = timeval(tv_sec: 20, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        deinit { close(fd) }
        func write(_ text: String) { _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
        func packet(_ payload: String) { write(String(decoding: framePacket(Array(payload.utf8)), as: UTF8.self)) }
        var buffer: [UInt8] = []
        /// The next `n` bytes.
        func read(_ n: Int) -> String {
            while buffer.count < n {
                var chunk = [UInt8](repeating: 0, count: 4096)
                let got = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if got <= 0 { break }
                buffer += chunk[0..<got]
            }
            let out = buffer.prefix(n)
            buffer.removeFirst(out.count)
            return String(decoding: out, as: UTF8.self)
        }
        /// The next reply packet's payload (after skipping acknowledgements).
        func reply() -> String? {
            var reader = PacketReader()
            while true {
                let c = read(1)
                if c.isEmpty { return nil }
                for case .packet(let p) in reader.feed(Array(c.utf8)) { return String(decoding: p, as: UTF8.self) }
            }
        }
    }

    @Test func acksNoAckModeCtrlCAndDetach() throws {
        let machine = Self.spinningMachine()
        let (port, served) = try Self.serve(MachineTarget(machine: machine))
        let c = try Client(port: port)
        c.write("$g#68")  // bad checksum
        #expect(c.read(1) == "-")
        c.packet("?")
        #expect(c.read(1) == "+")
        #expect(c.reply() == "T05thread:1;")
        c.write("+")
        c.packet("QStartNoAckMode")
        #expect(c.read(1) == "+")
        #expect(c.reply() == "OK")
        c.packet("p25")
        #expect(c.reply() == "00100080")  // pc 0x80001000, little-endian
        let before = machine.cpu.retiredInstructions
        c.packet("c")
        usleep(200_000)
        c.write("\u{03}")
        #expect(c.reply() == "T02thread:1;")
        #expect(machine.cpu.retiredInstructions > before)
        let pc = machine.cpu.pc
        #expect(pc == 0x8000_1000 || pc == 0x8000_1004)
        // A second debugger is turned away; the first one's session goes on.
        let second = try Client(port: port)
        #expect(second.read(1) == "")  // closed by the stub
        // One that speaks is told why, in the reply to its first packet (gdb shows the text).
        let third = try Client(port: port)
        third.packet("qSupported:multiprocess+;swbreak+")
        #expect(third.read(1) == "+")
        #expect(third.reply() == Connection.refusal && Connection.refusal.hasPrefix("E.another debugger"))
        #expect(third.read(1) == "")
        // One that trickles bytes and never ends a packet holds the session for a bounded time.
        let fourth = try Client(port: port)
        fourth.write("$qSupp")
        #expect(fourth.read(1) == "")
        c.packet("p25")
        #expect(c.reply() == (pc == 0x8000_1000 ? "00100080" : "04100080"))
        c.packet("D")
        #expect(c.reply() == "OK")
        served.done.wait()
        #expect(served.end == .detached)
    }

    @Test func aDebuggerThatDisconnectsMidRunStopsTheRun() throws {
        let machine = Self.spinningMachine()
        let (port, served) = try Self.serve(MachineTarget(machine: machine))
        do {
            let c = try Client(port: port)
            c.packet("Z0,80002000,4")  // never reached
            #expect(c.reply() == "OK")
            c.packet("c")
            usleep(100_000)
        }  // the client closes its socket while the machine runs
        served.done.wait()
        #expect(served.end == .disconnected)
        // The stub took its observer away: the machine runs on at full speed, without breakpoints.
        #expect(machine.cpu.observer == nil && !machine.cpu.observesInstructions)
        #expect(machine.run(maxInstructions: 1000) == .instructionLimit)
    }

    @Test func aPortInUseIsAClearError() throws {
        let first = try GDBServer(port: 0)
        #expect(throws: GDBError("gdb: cannot listen on 127.0.0.1:\(first.port): Address already in use")) {
            _ = try GDBServer(port: first.port)
        }
    }

    @Test func memoryOfABareMachineThroughItsTranslation() throws {
        let machine = Self.spinningMachine()
        let t = MachineTarget(machine: machine)
        #expect(t.readByte(0x8000_1000, thread: 1) == 0xFF)  // kseg0
        #expect(t.readByte(0xA000_1003, thread: 1) == 0x10)  // kseg1
        #expect(t.readByte(0xBFC0_0000, thread: 1) != nil)  // the boot ROM
        #expect(t.readByte(0xB800_03F8, thread: 1) == nil)  // the UART: not read
        #expect(t.readByte(0x0000_1000, thread: 1) == nil)  // useg: no TLB entry
        #expect(t.writeByte(0x8000_2000, 0x5A, thread: 1))
        #expect(machine.cpu.readPhysical(0x2000, size: 1) == 0x5A)
        #expect(!t.writeByte(0xBFC0_0000, 0, thread: 1))  // ROM
        #expect(t.writeRegister(GDBRegister.pc, 0x8000_1004, thread: 1) && machine.cpu.pc == 0x8000_1004)
        #expect(t.readRegister(GDBRegister.f0, thread: 1) == nil)  // the session answers 0 for FPU registers
    }

    /// A breakpoint hit, deleted, the machine run on, the breakpoint set again: the next pass
    /// over it stops (the CPU's "skip the observer once here" mark must not survive the run).
    @Test func aBreakpointSetAgainIsHitOnTheNextPass() throws {
        let machine = Self.spinningMachine()
        let session = GDBSession(target: MachineTarget(machine: machine))
        func send(_ p: String, polls: Int = 0) -> String {
            var n = 0
            return String(decoding: session.handle(Array(p.utf8), interrupted: { n += 1; return n > polls }) ?? [], as: UTF8.self)
        }
        #expect(send("Z0,80001000,4") == "OK")
        #expect(send("c") == "T05thread:1;")
        #expect(machine.cpu.pc == 0x8000_1000)
        #expect(send("z0,80001000,4") == "OK")
        for polls in [0, 1] {
            #expect(send("c", polls: polls) == "T02thread:1;")
            #expect(send("Z0,80001000,4") == "OK")
            let before = machine.cpu.retiredInstructions
            #expect(send("c") == "T05thread:1;")
            #expect(machine.cpu.pc == 0x8000_1000)
            #expect(machine.cpu.retiredInstructions - before <= 2, "polls \(polls)")
            #expect(send("z0,80001000,4") == "OK")
        }
    }

    /// `continue` under gdb is one run of the board, with the batches of a run without gdb.
    @Test func continueIsTheRunWithoutGDB() throws {
        func hello(_ out: @escaping (UInt8) -> Void) throws -> Malta {
            let m = Malta(configuration: MaltaConfiguration(ramSize: 32 << 20), output: out)
            try m.load(path: GDBProcessTests.hello)
            m.boot()
            return m
        }
        var plainOut: [UInt8] = [], debuggedOut: [UInt8] = []
        let plain = try hello { plainOut.append($0) }
        #expect(plain.run() == .poweredOff)
        let debugged = try hello { debuggedOut.append($0) }
        var batches = 0
        debugged.onBatchEnd = { batches += 1 }
        let session = GDBSession(target: MachineTarget(machine: debugged))
        #expect(session.handle(Array("c".utf8), interrupted: { false }).map { String(decoding: $0, as: UTF8.self) } == "W00")
        #expect(debuggedOut == plainOut && !plainOut.isEmpty)
        #expect(debugged.cpu.cycles == plain.cpu.cycles)
        #expect(debugged.cpu.retiredInstructions == plain.cpu.retiredInstructions)
        #expect(batches > 0)  // the board's own callback still runs
        #expect(debugged.cpu.observer == nil && !debugged.cpu.observesInstructions)
    }
}
