#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A host failure of the stub (a port that cannot be bound, a socket error), with a message.
public struct GDBError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The GDB stub's TCP server: listens on 127.0.0.1:`port` and serves one debugger at a time.
///
/// While the target runs (`c`), the socket is polled between slices of guest time, so Ctrl-C
/// (0x03) stops it at a slice boundary; guest time stays deterministic because only the slice
/// boundaries, never the guest's instructions, depend on the host.
public final class GDBServer {
    /// The port listened on (the one the system chose when 0 was asked for).
    public let port: UInt16
    private var listener: Int32
    /// Called with every packet received and reply sent (for tracing).
    public var log: ((String) -> Void)?
    /// Called with what the user should know: a second debugger turned away.
    public var notice: ((String) -> Void)?

    /// How a served session ended.
    public enum End: Equatable, Sendable { case detached, killed, disconnected }

    /// Binds 127.0.0.1:`port` (0: any free port, read it back from `port`).
    public init(port: UInt16) throws(GDBError) {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw GDBError("gdb: cannot create a socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = loopback(port: port)
        let bound = withLoopback(port: port) { bind(fd, $0, $1) }
        guard bound == 0, listen(fd, 1) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw GDBError("gdb: cannot listen on 127.0.0.1:\(port): \(reason)")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard named == 0 else {
            close(fd)
            throw GDBError("gdb: cannot read the listening port: \(String(cString: strerror(errno)))")
        }
        self.port = UInt16(bigEndian: addr.sin_port)
        listener = fd
    }

    deinit { if listener >= 0 { close(listener) } }

    /// Waits for a debugger, then serves it until it detaches (`D`), kills (`k`) or
    /// disconnects. The target stays stopped until the debugger resumes it.
    public func serve(_ target: any GDBTarget) throws(GDBError) -> End {
        var fd: Int32
        repeat { fd = accept(listener, nil, nil) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw GDBError("gdb: accept failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var nodelay: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &nodelay, socklen_t(MemoryLayout<Int32>.size))
        let connection = Connection(fd: fd, listener: listener, log: log, notice: notice)
        return connection.serve(GDBSession(target: target))
    }
}

/// One debugger's connection: reads packets, acknowledges them (until no-ack mode), answers.
final class Connection {
    let fd: Int32
    /// The listening socket: a second debugger that connects is turned away at once.
    let listener: Int32
    let log: ((String) -> Void)?
    let notice: ((String) -> Void)?
    var reader = PacketReader()
    /// Events read while the target ran and not yet handled.
    var pending: [PacketEvent] = []
    var closed = false
    var lastReply: [UInt8] = []

    init(fd: Int32, listener: Int32, log: ((String) -> Void)?, notice: ((String) -> Void)?) {
        self.notice = notice
        self.fd = fd
        self.listener = listener
        self.log = log
    }

    func serve(_ session: GDBSession) -> GDBServer.End {
        while true {
            if pending.isEmpty {
                guard let bytes = receive(blocking: true) else {
                    session.target.detach()
                    return .disconnected
                }
                pending += reader.feed(bytes)
                continue
            }
            let event = pending.removeFirst()
            switch event {
            case .ack, .interrupt:
                continue  // Ctrl-C while stopped: nothing runs, nothing to stop
            case .nack:
                if !session.noAck { send(lastReply) }
            case .corrupt:
                log?("<- (bad checksum)")
                if !session.noAck { send([UInt8(ascii: "-")]) }
            case .packet(let payload):
                log?("<- " + String(decoding: payload, as: UTF8.self))
                if !session.noAck { send([UInt8(ascii: "+")]) }
                let reply = session.handle(payload, interrupted: { self.interruptRequested() })
                if let reply {
                    log?("-> " + String(decoding: reply.prefix(200), as: UTF8.self))
                    lastReply = framePacket(reply)
                    send(lastReply)
                }
                if closed { session.target.detach(); return .disconnected }
                switch session.ended {
                case .detached: return .detached
                case .killed: return .killed
                case nil: break
                }
            }
        }
    }

    /// Polled between slices while the target runs: true on Ctrl-C or when the debugger went
    /// away (then there is nobody to run for).
    func interruptRequested() -> Bool {
        if closed { return true }
        guard let bytes = receive(blocking: false) else { return true }
        var stop = false
        for e in reader.feed(bytes) {
            if e == .interrupt { stop = true } else { pending.append(e) }
        }
        return stop
    }

    /// Bytes from the socket; [] when none are ready (non-blocking), nil when it closed.
    func receive(blocking: Bool) -> [UInt8]? {
        if closed { return nil }
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
        while true {
            let n = poll(&fds, 2, blocking ? -1 : 0)
            if n < 0 && errno == EINTR { continue }
            if n < 0 {
                closed = true
                return nil
            }
            if fds[1].revents != 0 { refuseSecondDebugger() }
            if fds[0].revents != 0 { break }
            if !blocking { return [] }
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { return Array(buffer[0..<n]) }
            if n < 0 && errno == EINTR { continue }
            closed = true
            return nil
        }
    }

    /// Turns away a connection made while a debugger is being served, and says why: the reply
    /// to its first packet is an error with a text, which gdb shows ("Remote failure reply:
    /// E.another debugger is attached"). The session goes on; the refusal waits for the other
    /// side at most `refusalReads` times `refusalPatience`.
    func refuseSecondDebugger() {
        let other = accept(listener, nil, nil)
        guard other >= 0 else { return }
        notice?("gdb: refused a second debugger (one is connected already)")
        var patience = timeval(tv_sec: 0, tv_usec: Int(Connection.refusalPatience * 1_000_000))
        setsockopt(other, SOL_SOCKET, SO_RCVTIMEO, &patience, socklen_t(MemoryLayout<timeval>.size))
        // Its first packet (qSupported), read whole: data left unread would make the close a reset.
        var reader = PacketReader()
        var buffer = [UInt8](repeating: 0, count: 4096)
        var answered = false, reads = 0
        while !answered && reads < Connection.refusalReads {
            reads += 1
            let n = buffer.withUnsafeMutableBytes { recv(other, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            for event in reader.feed(buffer[..<n]) {
                switch event { case .packet, .corrupt: answered = true; default: break }
            }
        }
        if answered {
            let reply: [UInt8] = Array("+".utf8) + framePacket(Array(Connection.refusal.utf8))
            reply.withUnsafeBytes { _ = sendNoSignal(other, $0) }
            shutdown(other, Int32(SHUT_WR))
            for _ in 0..<Connection.refusalReads {  // until it closes its side
                guard (buffer.withUnsafeMutableBytes { recv(other, $0.baseAddress, $0.count, 0) }) > 0 else { break }
            }
        }
        close(other)
    }

    /// What a second debugger is told.
    static let refusal = "E.another debugger is attached to this Magritte"
    /// How long (seconds) a refusal waits for each read from the refused debugger, and how many
    /// reads it makes at most (a peer that trickles bytes cannot hold the session).
    static let refusalPatience = 0.25
    static let refusalReads = 8

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count && !closed {
            let n = bytes[offset...].withUnsafeBytes { sendNoSignal(fd, $0) }
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            closed = true
        }
    }
}

/// send(2) that never raises SIGPIPE (a debugger that went away must not kill the host).
func sendNoSignal(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
    #if canImport(Glibc)
    return Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
    #else
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
    return Darwin.send(fd, bytes.baseAddress, bytes.count, 0)
    #endif
}

/// 127.0.0.1:`port`.
func loopback(port: UInt16) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    return addr
}

/// Calls `body` (bind, connect) with 127.0.0.1:`port` as a `sockaddr` and its length.
func withLoopback<R>(port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
    var addr = loopback(port: port)
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}
