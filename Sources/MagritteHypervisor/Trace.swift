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
        /// The guest's TLBWI/TLBWR (emulated just before): entry `index` of its virtual TLB now
        /// maps VPN → PFN as `entry` says; the VMM put the pages it could into the physical TLB
        /// at these machine addresses (nil: not installed, e.g. invalid or another ASID).
        case tlbWrite(index: Int, entry: TLBEntry, evenMachine: UInt32?, oddMachine: UInt32?)
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
        case .tlbWrite: "tlb_write"
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
        case .reflect(let c, let v): "reflect \(c) to the guest's handler at 0x\(Hex.word(v))"
        case .emulate(let s): "emulate \(s)"
        case .tlbWrite(let i, let e, let even, let odd): VMMEvent.describe(i, e, even, odd)
        case .hiddenFill(let va, let ma, let kseg): "\(kseg ? "kseg fill" : "hidden TLB fill") 0x\(Hex.word(va)) -> machine 0x\(Hex.word(ma))"
        case .realReturn(let t): "real return to 0x\(Hex.word(t))"
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

extension VMMEvent {
    /// "virtual TLB 9: VPN2 0x00408000 ASID 3 -> PFN 0x426, PFN 0x427; physical TLB: VPN2
    /// 0x00408000 -> MFN 0x2526, MFN 0x2527"
    static func describe(_ i: Int, _ e: TLBEntry, _ even: UInt32?, _ odd: UInt32?) -> String {
        func pfn(_ lo: UInt32) -> String { lo & 2 == 0 ? "invalid" : "PFN " + Hex.prefixed(lo >> 6) }
        var text = "virtual TLB \(i): VPN2 0x\(Hex.word(e.vpn2)) ASID \(e.asid) -> \(pfn(e.lo0)), \(pfn(e.lo1))"
        if even != nil || odd != nil {
            let mfns = [even, odd].map { $0.map { "MFN " + Hex.prefixed($0 >> 12) } ?? "-" }
            text += "; physical TLB: VPN2 0x\(Hex.word(e.vpn2)) -> \(mfns[0]), \(mfns[1])"
        }
        return text
    }
}

/// A bounded log of VMM events (oldest dropped first), with a listener for live use.
public final class VMMTrace {
    public let capacity: Int
    @exclusivity(unchecked) private var items: [VMMEvent] = []
    @exclusivity(unchecked) private var head = 0
    /// Every event ever recorded (also those dropped from the buffer).
    @exclusivity(unchecked) public internal(set) var total: UInt64 = 0
    /// Called for each event as it happens (Lua hooks, breakpoints). Nil costs nothing.
    @exclusivity(unchecked) public var listener: ((VMMEvent) -> Void)? { didSet { isActive = recording || listener != nil } }
    /// Whether events are stored at all (listeners still see them).
    @exclusivity(unchecked) public var recording = true {
        didSet {
            if recording != oldValue { epoch &+= 1 }
            isActive = recording || listener != nil
        }
    }
    /// Changes where the events stored stop being those stored before plus those appended
    /// since (cleared, restored, recording switched): VMM snapshots share them until then.
    @exclusivity(unchecked) private(set) var epoch: UInt64 = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Whether events are wanted at all (stored or listened to): the VMM skips building them
    /// otherwise. A stored flag (kept by `recording` and `listener`): every exit tests it.
    @exclusivity(unchecked) public private(set) var isActive = true { didSet { if isActive != oldValue { onActivityChange?() } } }
    /// Told when `isActive` changes (the VMM's gate for translated code, VMM+InlineCP0.swift).
    @exclusivity(unchecked) var onActivityChange: (() -> Void)?

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
        epoch &+= 1
    }

    /// How many events are stored.
    var count: Int { items.count }

    /// The newest `n` events stored (at most `count`), oldest first.
    func newest(_ n: Int) -> [VMMEvent] {
        let n = min(n, items.count)
        let start = (head + items.count - n) % max(items.count, 1)
        return start + n <= items.count ? Array(items[start..<start + n]) : Array(items[start...] + items[..<(start + n - items.count)])
    }

    /// Puts back the stored events (oldest first) and the total of a snapshot (VMM+Snapshot.swift).
    func restore(events: [VMMEvent], total: UInt64) {
        items = Array(events.suffix(capacity))
        head = 0
        self.total = total
        epoch &+= 1
    }
}

