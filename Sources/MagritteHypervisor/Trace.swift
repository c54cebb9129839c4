import MagritteCore

/// One thing the VMM did, as the lecture's tables show it.
public struct VMMEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A physical exception entered the VMM.
        case trap(ExceptionCode)
        /// The VMM delivered an exception to the guest's own handler at `vector`.
        case reflect(ExceptionCode, vector: UInt32)
        /// The VMM emulated a privileged instruction (its disassembly).
        case emulate(String)
        /// A TLB miss the VMM answered itself: from the guest's virtual TLB, or (kseg) from the pmap.
        case hiddenFill(virtual: UInt32, machine: UInt32, kseg: Bool)
        /// The VMM performed the guest's ERET: the real return to `target`.
        case realReturn(target: UInt32)
        /// The VMM saved one guest's machine state and restored this one's.
        case machineSwitch(from: String?)
        case hypercall(function: UInt32)
        /// An emulated device register access.
        case device(String)
        /// The guest went idle: "wait", "hypercall", or a detected spin loop.
        case idle(String)
        case wake
        case powerOff
        case asidRollover
    }

    public var kind: Kind
    public var guest: String
    public var modeBefore: Mode
    public var modeAfter: Mode
    public var pc: UInt32
    /// The machine's retired-instruction count when it happened.
    public var instructions: UInt64

    /// A short name of the kind ("trap", "reflect", ...), as scripts filter on it.
    public var name: String {
        switch kind {
        case .trap: "trap"
        case .reflect: "reflect"
        case .emulate: "emulate"
        case .hiddenFill: "hidden_fill"
        case .realReturn: "return"
        case .machineSwitch: "switch"
        case .hypercall: "hypercall"
        case .device: "device"
        case .idle: "idle"
        case .wake: "wake"
        case .powerOff: "poweroff"
        case .asidRollover: "asid_rollover"
        }
    }

    /// One line for a person.
    public var text: String {
        switch kind {
        case .trap(let c): "trap \(c) into the VMM"
        case .reflect(let c, let v): "reflect \(c) to the guest's handler at 0x\(hex8(v))"
        case .emulate(let s): "emulate \(s)"
        case .hiddenFill(let va, let ma, let kseg): "\(kseg ? "kseg fill" : "hidden TLB fill") 0x\(hex8(va)) -> machine 0x\(hex8(ma))"
        case .realReturn(let t): "real return to 0x\(hex8(t))"
        case .machineSwitch(let from): "machine switch \(from ?? "-") -> \(guest)"
        case .hypercall(let f): "hypercall \(f)"
        case .device(let s): "device \(s)"
        case .idle(let s): "idle (\(s))"
        case .wake: "wake"
        case .powerOff: "power off"
        case .asidRollover: "physical ASIDs exhausted: TLB flushed"
        }
    }
}

/// A bounded log of VMM events (oldest dropped first), with a listener for live use.
public final class VMMTrace {
    public let capacity: Int
    private var items: [VMMEvent] = []
    private var head = 0
    /// Every event ever recorded (also those dropped from the buffer).
    public private(set) var total: UInt64 = 0
    /// Called for each event as it happens (Lua hooks, breakpoints). Nil costs nothing.
    public var listener: ((VMMEvent) -> Void)?
    /// Whether events are stored at all (listeners still see them).
    public var recording = true

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Whether events are wanted at all (stored or listened to): the VMM skips formatting
    /// their text otherwise.
    public var isActive: Bool { recording || listener != nil }

    func append(_ e: VMMEvent) {
        total &+= 1
        listener?(e)
        guard recording else { return }
        if items.count < capacity { items.append(e) } else {
            items[head] = e
            head = (head + 1) % capacity
        }
    }

    /// The stored events, oldest first.
    public var events: [VMMEvent] { Array(items[head...] + items[..<head]) }

    public func clear() {
        items.removeAll()
        head = 0
    }
}

/// Eight lower-case hex digits (formatted by hand: the VMM's trace calls it on hot paths).
func hex8(_ v: UInt32) -> String {
    String(unsafeUninitializedCapacity: 8) { buffer in
        let digits: StaticString = "0123456789abcdef"
        for i in 0..<8 {
            buffer[i] = digits.utf8Start[Int((v >> (28 - 4 * UInt32(i))) & 0xF)]
        }
        return 8
    }
}
