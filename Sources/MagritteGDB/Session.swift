/// The meaning of GDB remote packets over a `GDBTarget`: one debugger's session. Transport-free
/// (the TCP server feeds it packets), so every packet kind and error reply is tested in process.
///
/// Malformed requests get `E01`, memory that is not there `E14` (EFAULT), unknown packets the
/// empty reply; nothing a debugger sends can make the host fail.
public final class GDBSession {
    public let target: any GDBTarget
    /// Set by `QStartNoAckMode`: the transport stops sending and expecting `+`.
    public private(set) var noAck = false
    /// How the session ended (`D` or `k`), nil while it goes on.
    public private(set) var ended: End?
    public enum End: Equatable, Sendable { case detached, killed }

    /// The thread `g`, `p`, `m`… act on (`Hg`).
    public private(set) var selectedThread: Int
    /// The thread `c`/`s` act on (`Hc`); nil: all.
    var resumeThread: Int?
    /// The last stop, for `?`.
    public private(set) var lastStop: GDBStop

    /// Bytes at most in one `m` reply (the reply is hex: twice that) and one `X`/`M` write.
    public static let maxTransfer = 0x1000
    /// The PacketSize advertised in qSupported (bytes of payload gdb may send).
    public static let packetSize = 0x4000

    public init(target: any GDBTarget) {
        self.target = target
        let first = target.threads.first ?? 1
        selectedThread = first
        lastStop = .trap(thread: first)
    }

    /// Handles one packet payload; returns the reply payload, or nil when the packet takes none
    /// (`k`). `interrupted` is polled while the target runs (`c`, `vCont`, `bc`).
    public func handle(_ payload: [UInt8], interrupted: () -> Bool = { false }) -> [UInt8]? {
        let p = payload[...]
        guard let first = p.first else { return [] }
        let rest = p.dropFirst()
        switch first {
        case UInt8(ascii: "?"): return stopReply(lastStop)
        case UInt8(ascii: "g"): return readAllRegisters()
        case UInt8(ascii: "G"): return writeAllRegisters(rest)
        case UInt8(ascii: "p"): return readRegister(rest)
        case UInt8(ascii: "P"): return writeRegister(rest)
        case UInt8(ascii: "m"): return readMemory(rest)
        case UInt8(ascii: "M"): return writeMemory(rest, binary: false)
        case UInt8(ascii: "X"): return writeMemory(rest, binary: true)
        case UInt8(ascii: "c"), UInt8(ascii: "s"):
            if !rest.isEmpty {
                guard let a = address(rest), target.writeRegister(GDBRegister.pc, a, thread: resumeThread ?? selectedThread) else { return error(1) }
            }
            if first == UInt8(ascii: "s") { return stopped(target.step(thread: resumeThread ?? selectedThread)) }
            return stopped(target.resume(thread: resumeThread, interrupted: interrupted))
        case UInt8(ascii: "H"): return setThread(rest)
        case UInt8(ascii: "T"):
            guard let t = thread(rest), t > 0, target.threads.contains(t) else { return error(1) }
            return ok
        case UInt8(ascii: "Z"), UInt8(ascii: "z"): return stopPoint(rest, insert: first == UInt8(ascii: "Z"))
        case UInt8(ascii: "D"):
            target.detach()
            ended = .detached
            return ok
        case UInt8(ascii: "k"):
            target.detach()
            ended = .killed
            return nil
        case UInt8(ascii: "b"): return reverse(rest, interrupted: interrupted)
        case UInt8(ascii: "q"), UInt8(ascii: "Q"): return query(String(decoding: p, as: UTF8.self))
        case UInt8(ascii: "v"): return vPacket(String(decoding: p, as: UTF8.self), interrupted: interrupted)
        default: return []
        }
    }

    let ok: [UInt8] = Array("OK".utf8)

    func error(_ n: UInt8) -> [UInt8] { [UInt8(ascii: "E")] + hexEncode([n]) }

    // MARK: Stop replies

    func stopped(_ stop: GDBStop) -> [UInt8] {
        lastStop = stop
        switch stop {
        case .trap(let t), .watch(_, _, let t), .interrupted(let t), .historyBegin(let t): selectedThread = t
        case .exited: break
        }
        return stopReply(stop)
    }

    /// `T05thread:N;`, `T05watch:ADDR;thread:N;`, `T02…` after Ctrl-C, `T05replaylog:begin;…`,
    /// `W00` once the machine is off.
    public func stopReply(_ stop: GDBStop) -> [UInt8] {
        switch stop {
        case .trap(let t): return Array("T05thread:\(hexString(UInt64(t)));".utf8)
        case .interrupted(let t): return Array("T02thread:\(hexString(UInt64(t)));".utf8)
        case .historyBegin(let t): return Array("T05replaylog:begin;thread:\(hexString(UInt64(t)));".utf8)
        case .watch(let kind, let a, let t):
            let name = kind == .read ? "rwatch" : kind == .access ? "awatch" : "watch"
            return Array("T05\(name):\(hexString(UInt64(a)));thread:\(hexString(UInt64(t)));".utf8)
        case .exited(let code): return Array("W".utf8) + hexEncode([code])
        }
    }

    // MARK: Registers

    func readAllRegisters() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(GDBRegister.count * 8)
        for n in 0..<GDBRegister.count { out += hexLittleEndian(registerValue(n) ?? 0) }
        return out
    }

    func registerValue(_ n: Int) -> UInt32? {
        if GDBRegister.isFloatingPoint(n) { return 0 }
        return target.readRegister(n, thread: selectedThread)
    }

    func writeAllRegisters(_ hex: ArraySlice<UInt8>) -> [UInt8] {
        guard hex.count == GDBRegister.count * 8 else { return error(1) }
        var values: [UInt32] = []
        for n in 0..<GDBRegister.count {
            let start = hex.startIndex + n * 8
            guard let v = littleEndianValue(hex[start..<start + 8]) else { return error(1) }
            values.append(v)
        }
        var failed = false
        for (n, v) in values.enumerated() where !GDBRegister.isFloatingPoint(n) && n != 0 {
            // Registers the target cannot set (badvaddr on some) keep their value: gdb writes
            // them all back when it changed one.
            if registerValue(n) != v && !target.writeRegister(n, v, thread: selectedThread) { failed = true }
        }
        return failed ? error(1) : ok
    }

    func readRegister(_ text: ArraySlice<UInt8>) -> [UInt8] {
        guard let n = hexNumber(text, maxDigits: 4), n < GDBRegister.count, let v = registerValue(Int(n)) else { return error(1) }
        return hexLittleEndian(v)
    }

    func writeRegister(_ text: ArraySlice<UInt8>) -> [UInt8] {
        guard let eq = text.firstIndex(of: UInt8(ascii: "=")), let n = hexNumber(text[..<eq], maxDigits: 4),
              n < GDBRegister.count, let v = littleEndianValue(text[(eq + 1)...]) else { return error(1) }
        if GDBRegister.isFloatingPoint(Int(n)) { return ok }  // no FPU: writes are ignored
        return target.writeRegister(Int(n), v, thread: selectedThread) ? ok : error(1)
    }

    // MARK: Memory

    /// An address of at most 32 bits; gdb may send a MIPS kernel address sign-extended to 64.
    func address(_ text: ArraySlice<UInt8>) -> UInt32? {
        guard let v = hexNumber(text, maxDigits: 16) else { return nil }
        if v <= 0xFFFF_FFFF { return UInt32(v) }
        if v >> 32 == 0xFFFF_FFFF && v & 0x8000_0000 != 0 { return UInt32(truncatingIfNeeded: v) }
        return nil
    }

    /// `ADDR,LEN` of `m`, `M`, `X`, `Z`: nil when malformed or when the range wraps past 4 GiB.
    func range(_ text: ArraySlice<UInt8>) -> (address: UInt32, length: Int)? {
        guard let comma = text.firstIndex(of: UInt8(ascii: ",")), let a = address(text[..<comma]),
              let n = hexNumber(text[(comma + 1)...], maxDigits: 8) else { return nil }
        guard UInt64(a) + n <= 1 << 32 else { return nil }
        return (a, Int(n))
    }

    func readMemory(_ text: ArraySlice<UInt8>) -> [UInt8] {
        guard let (a, n) = range(text) else { return error(1) }
        var bytes: [UInt8] = []
        // A short read is allowed; gdb asks again for the rest.
        for i in 0..<min(n, GDBSession.maxTransfer) {
            guard let b = target.readByte(a &+ UInt32(i), thread: selectedThread) else { break }
            bytes.append(b)
        }
        if bytes.isEmpty && n > 0 { return error(0x14) }
        return hexEncode(bytes)
    }

    func writeMemory(_ text: ArraySlice<UInt8>, binary: Bool) -> [UInt8] {
        guard let colon = text.firstIndex(of: UInt8(ascii: ":")), let (a, n) = range(text[..<colon]),
              n <= GDBSession.packetSize else { return error(1) }
        let data = text[(colon + 1)...]
        guard let bytes = binary ? unescapeBinary(data) : hexDecode(data), bytes.count == n else { return error(1) }
        for (i, b) in bytes.enumerated() where !target.writeByte(a &+ UInt32(i), b, thread: selectedThread) {
            return error(0x14)
        }
        return ok
    }

    // MARK: Threads

    /// A thread id: hex, `0` (any) or `-1` (all, returned as -1).
    func thread(_ text: ArraySlice<UInt8>) -> Int? {
        if text.elementsEqual("-1".utf8) { return -1 }
        guard let v = hexNumber(text, maxDigits: 8) else { return nil }
        return Int(v)
    }

    func setThread(_ text: ArraySlice<UInt8>) -> [UInt8] {
        guard let op = text.first, let t = thread(text.dropFirst()) else { return error(1) }
        guard t <= 0 || target.threads.contains(t) else { return error(1) }
        switch op {
        case UInt8(ascii: "g"): selectedThread = t > 0 ? t : selectedThread
        case UInt8(ascii: "c"): resumeThread = t > 0 ? t : nil
        default: return error(1)
        }
        return ok
    }

    // MARK: Breakpoints and watchpoints

    func stopPoint(_ text: ArraySlice<UInt8>, insert: Bool) -> [UInt8] {
        // TYPE,ADDR,KIND (conditions after ';' are not supported: gdb evaluates them itself)
        let fields = text.prefix { $0 != UInt8(ascii: ";") }.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard fields.count == 3, let t = hexNumber(fields[0], maxDigits: 1), let kind = GDBStopPoint.Kind(rawValue: Int(t)),
              let a = address(fields[1]), let length = hexNumber(fields[2], maxDigits: 8) else { return error(1) }
        if kind.rawValue >= 2 && (length == 0 || UInt64(a) + length > 1 << 32) { return error(1) }
        let point = GDBStopPoint(kind: kind == .hardware ? .software : kind, address: a, length: UInt32(length))
        return (insert ? target.insert(point) : target.remove(point)) ? ok : error(1)
    }

    // MARK: Reverse execution

    var reversible: (any GDBReversibleTarget)? {
        guard let r = target as? any GDBReversibleTarget, r.canGoBack else { return nil }
        return r
    }

    func reverse(_ text: ArraySlice<UInt8>, interrupted: () -> Bool) -> [UInt8] {
        guard text.count == 1 else { return [] }
        guard let r = reversible else { return error(1) }
        switch text.first {
        case UInt8(ascii: "s"): return stopped(r.stepBack(thread: resumeThread ?? selectedThread))
        case UInt8(ascii: "c"): return stopped(r.continueBack(thread: resumeThread, interrupted: interrupted))
        default: return []
        }
    }

    // MARK: Queries

    func query(_ text: String) -> [UInt8] {
        if text.hasPrefix("qSupported") {
            var s = "PacketSize=\(hexString(UInt64(GDBSession.packetSize)));qXfer:features:read+;QStartNoAckMode+;vContSupported+"
            if reversible != nil { s += ";ReverseStep+;ReverseContinue+" }
            return Array(s.utf8)
        }
        if text == "QStartNoAckMode" { noAck = true; return ok }
        if text.hasPrefix("qXfer:features:read:") { return features(text.dropFirst("qXfer:features:read:".count)) }
        if text == "qfThreadInfo" { return Array(("m" + target.threads.map { hexString(UInt64($0)) }.joined(separator: ",")).utf8) }
        if text == "qsThreadInfo" { return Array("l".utf8) }
        if text == "qC" { return Array("QC\(hexString(UInt64(selectedThread)))".utf8) }
        if text == "qAttached" || text.hasPrefix("qAttached:") { return Array("1".utf8) }
        if text.hasPrefix("qThreadExtraInfo,") {
            guard let t = thread(Array(text.utf8.dropFirst("qThreadExtraInfo,".count))[...]), target.threads.contains(t) else { return error(1) }
            return hexEncode((target.threadDescription(t) ?? "").utf8)
        }
        return []
    }

    /// `target.xml:OFFSET,LENGTH` → `m` and a chunk, or `l` and the last one.
    func features(_ args: Substring) -> [UInt8] {
        let parts = args.split(separator: ":", maxSplits: 1)
        guard parts.count == 2 else { return error(1) }
        guard parts[0] == "target.xml" else { return error(0) }
        let xml = Array(GDBRegister.targetXML.utf8)
        let nums = parts[1].split(separator: ",")
        guard nums.count == 2, let off = hexNumber(Array(nums[0].utf8)[...]), let len = hexNumber(Array(nums[1].utf8)[...]) else { return error(1) }
        guard off <= xml.count else { return error(1) }
        let end = min(xml.count, Int(off) + Int(min(len, UInt64(GDBSession.maxTransfer))))
        return [UInt8(ascii: end == xml.count ? "l" : "m")] + xml[Int(off)..<end]
    }

    func vPacket(_ text: String, interrupted: () -> Bool) -> [UInt8] {
        if text == "vCont?" { return Array("vCont;c;C;s;S".utf8) }
        if text.hasPrefix("vKill") {
            target.detach()
            ended = .killed
            return ok
        }
        guard text.hasPrefix("vCont;") else { return [] }
        // The first step action wins (gdb steps one thread and lets the others continue, which
        // a single-stepped guest allows to mean "the others wait"); otherwise continue.
        var continueThread: Int?? = nil
        for action in text.dropFirst("vCont;".count).split(separator: ";") {
            let parts = action.split(separator: ":", maxSplits: 1)
            guard let op = parts.first?.first, "cCsS".contains(op) else { return error(1) }
            var t: Int? = nil
            if parts.count == 2 {
                guard let n = thread(Array(parts[1].utf8)[...]) else { return error(1) }
                if n > 0 {
                    guard target.threads.contains(n) else { return error(1) }
                    t = n
                }
            }
            if op == "s" || op == "S" { return stopped(target.step(thread: t ?? selectedThread)) }
            if continueThread == nil { continueThread = .some(t) }
        }
        guard let c = continueThread else { return error(1) }
        return stopped(target.resume(thread: c, interrupted: interrupted))
    }
}
