/// What the stub debugs, as a small protocol: a bare Malta (`MachineTarget`), the guests of a
/// VMM (`VMMTarget`), or anything a test builds. Threads are numbered from 1; a bare machine has
/// one. The stub keeps no state of its own about the target beyond the selected threads.
public protocol GDBTarget: AnyObject {
    /// The thread ids, in order (at least one).
    var threads: [Int] { get }
    /// A short description of a thread for `info threads` (qThreadExtraInfo), or nil.
    func threadDescription(_ thread: Int) -> String?
    /// Register `n` of `thread` in gdb's MIPS numbering (`GDBRegister`); nil if it does not exist.
    func readRegister(_ n: Int, thread: Int) -> UInt32?
    /// Writes register `n`; false if it cannot be written (the stub answers `E..`).
    func writeRegister(_ n: Int, _ value: UInt32, thread: Int) -> Bool
    /// The byte at virtual address `address` as `thread` sees it; nil when unmapped.
    func readByte(_ address: UInt32, thread: Int) -> UInt8?
    /// Writes a byte through `thread`'s translation; false when unmapped or read-only.
    func writeByte(_ address: UInt32, _ value: UInt8, thread: Int) -> Bool
    /// Inserts a breakpoint or watchpoint; false when it cannot (the stub answers `E..`).
    func insert(_ point: GDBStopPoint) -> Bool
    func remove(_ point: GDBStopPoint) -> Bool
    /// Runs one instruction of `thread`.
    func step(thread: Int) -> GDBStop
    /// Runs until a breakpoint, a watchpoint, the end, or until `interrupted()` (called between
    /// slices of guest time) says the debugger pressed Ctrl-C. `thread` is the one gdb resumes
    /// (nil: all); a target with several threads may run them all.
    func resume(thread: Int?, interrupted: () -> Bool) -> GDBStop
    /// The debugger detaches (`D`) or kills (`k`): the target removes its stop points and
    /// forgets anything it set up for the debugger.
    func detach()
}

/// A target that can go back in time. The stub advertises `ReverseStep+`/`ReverseContinue+`
/// and accepts `bs`/`bc` only while `canGoBack` is true.
public protocol GDBReversibleTarget: GDBTarget {
    var canGoBack: Bool { get }
    /// Goes back one instruction of `thread`; `.historyBegin` when there is no earlier one.
    func stepBack(thread: Int) -> GDBStop
    /// Goes back to the previous breakpoint or watchpoint hit (of any thread), or to the start
    /// of history (`.historyBegin`), or until `interrupted()`.
    func continueBack(thread: Int?, interrupted: () -> Bool) -> GDBStop
}

/// A breakpoint (`Z0`) or a watchpoint (`Z2` write, `Z3` read, `Z4` access).
public struct GDBStopPoint: Hashable, Sendable {
    public enum Kind: Int, Sendable { case software = 0, hardware = 1, write = 2, read = 3, access = 4 }
    public var kind: Kind
    public var address: UInt32
    public var length: UInt32
    public init(kind: Kind, address: UInt32, length: UInt32) {
        self.kind = kind
        self.address = address
        self.length = length
    }

    /// Whether a data access of `size` bytes at `address` (a write or not) hits this watchpoint.
    public func matches(access address: UInt32, size: Int, isWrite: Bool) -> Bool {
        switch kind {
        case .software, .hardware: return false
        case .write: if !isWrite { return false }
        case .read: if isWrite { return false }
        case .access: break
        }
        let end = UInt64(address) + UInt64(size), myEnd = UInt64(self.address) + UInt64(length)
        return UInt64(address) < myEnd && UInt64(self.address) < end
    }
}

/// Why the target stopped, as the stub reports it.
public enum GDBStop: Equatable, Sendable {
    /// A breakpoint or a finished step (SIGTRAP) in `thread`.
    case trap(thread: Int)
    /// A watchpoint hit by an access at `address` in `thread`.
    case watch(GDBStopPoint.Kind, address: UInt32, thread: Int)
    /// Ctrl-C (SIGINT).
    case interrupted(thread: Int)
    /// Reverse execution reached the start of history.
    case historyBegin(thread: Int)
    /// The machine is off (every guest, under a VMM): gdb's inferior exited with `code`.
    case exited(code: UInt8)
}

/// gdb's numbering of MIPS32 registers (the order of the `g` packet): r0–r31, sr, lo, hi, bad,
/// cause, pc, f0–f31, fcsr, fir. The target description (`targetXML`) names each by number.
public enum GDBRegister {
    public static let status = 32, lo = 33, hi = 34, badVAddr = 35, cause = 36, pc = 37
    public static let f0 = 38, fcsr = 70, fir = 71
    /// Registers in the `g` packet.
    public static let count = 72
    /// Whether `n` is a floating-point register: the 24Kc has no FPU, so they read 0 and writes
    /// are ignored.
    public static func isFloatingPoint(_ n: Int) -> Bool { (f0...fir).contains(n) }

    /// The target description (qXfer:features:read:target.xml): gdb's standard MIPS features.
    /// gdb refuses a MIPS description without the FPU feature, so it is there, with registers
    /// that read 0.
    public static let targetXML: String = {
        var x = """
            <?xml version="1.0"?>
            <!DOCTYPE target SYSTEM "gdb-target.dtd">
            <target version="1.0">
            <architecture>mips</architecture>
            <feature name="org.gnu.gdb.mips.cpu">

            """
        for i in 0..<32 { x += "<reg name=\"r\(i)\" bitsize=\"32\" regnum=\"\(i)\"/>\n" }
        x += """
            <reg name="lo" bitsize="32" regnum="33"/>
            <reg name="hi" bitsize="32" regnum="34"/>
            <reg name="pc" bitsize="32" regnum="37" type="code_ptr"/>
            </feature>
            <feature name="org.gnu.gdb.mips.cp0">
            <reg name="status" bitsize="32" regnum="32"/>
            <reg name="badvaddr" bitsize="32" regnum="35"/>
            <reg name="cause" bitsize="32" regnum="36"/>
            </feature>
            <feature name="org.gnu.gdb.mips.fpu">

            """
        for i in 0..<32 { x += "<reg name=\"f\(i)\" bitsize=\"32\" type=\"ieee_single\" regnum=\"\(38 + i)\"/>\n" }
        x += """
            <reg name="fcsr" bitsize="32" group="float" regnum="70"/>
            <reg name="fir" bitsize="32" group="float" regnum="71"/>
            </feature>
            </target>

            """
        return x
    }()
}
