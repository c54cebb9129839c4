/// What kind of MIPS32 CPU to build. The defaults are a MIPS 24Kc as QEMU models it
/// (`qemu-system-mipsel -M malta -cpu 24Kc`): 16 TLB entries, no FPU, PRId 0x00019300.
public struct CPUConfiguration: Sendable, Equatable {
    /// Number of joint TLB entries (1...64). The 24Kc has 16.
    public var tlbEntries: Int = 16
    /// MIPS32 Release 3 segmentation control (CP0 SegCtl0–2, Config3.SC). Off on a 24Kc; the
    /// VMM switches it on so that kseg0/kseg1 can be made mapped and supervisor-accessible.
    public var segmentationControl: Bool = false
    /// Retired instructions per tick of CP0 Count. The 24Kc counts every other cycle.
    public var instructionsPerCountTick: UInt64 = 2
    /// Processor identification (CP0 PRId).
    public var processorID: UInt32 = 0x0001_9300
    /// The engine: translated blocks (`Docs/jit.md`) where the host has the translator, else the interpreter.
    public var engine: Engine = .hostDefault
    /// Bytes of host code the translator keeps; when full, its code cache is emptied whole.
    public var codeCacheBytes: Int = 64 << 20

    public init() {}

    public init(tlbEntries: Int = 16, segmentationControl: Bool = false) {
        self.tlbEntries = tlbEntries
        self.segmentationControl = segmentationControl
    }
}

/// Why `CPU.run` returned.
public enum StopReason: Equatable, Sendable {
    /// The instruction budget given to `run` is used up.
    case budgetExhausted
    /// `requestStop()` was called (by a device, such as the board's power register, or the host).
    case stopRequested
    /// The CPU executed WAIT and nothing can wake it: no interrupt is pending and the timer
    /// cannot fire. The board may wait for outside input and then call `run` again.
    case waitingForInterrupt
}

/// Processor operating mode, from Status.KSU, EXL and ERL.
public enum Mode: UInt8, Sendable, CustomStringConvertible {
    case kernel = 0
    case supervisor = 1
    case user = 2

    public var description: String {
        switch self {
        case .kernel: "kernel"
        case .supervisor: "supervisor"
        case .user: "user"
        }
    }
}

/// MIPS exception codes (Cause.ExcCode).
public enum ExceptionCode: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case interrupt = 0
    case tlbModified = 1
    case tlbLoad = 2
    case tlbStore = 3
    case addressErrorLoad = 4
    case addressErrorStore = 5
    case busErrorFetch = 6
    case busErrorData = 7
    case syscall = 8
    case breakpoint = 9
    case reservedInstruction = 10
    case coprocessorUnusable = 11
    case overflow = 12
    case trap = 13
    case watch = 23
    case machineCheck = 24

    /// The short names used in traces and statistics (as in the MIPS32 manual's Table 9.x).
    public var description: String {
        switch self {
        case .interrupt: "Int"
        case .tlbModified: "Mod"
        case .tlbLoad: "TLBL"
        case .tlbStore: "TLBS"
        case .addressErrorLoad: "AdEL"
        case .addressErrorStore: "AdES"
        case .busErrorFetch: "IBE"
        case .busErrorData: "DBE"
        case .syscall: "Sys"
        case .breakpoint: "Bp"
        case .reservedInstruction: "RI"
        case .coprocessorUnusable: "CpU"
        case .overflow: "Ov"
        case .trap: "Tr"
        case .watch: "WATCH"
        case .machineCheck: "MCheck"
        }
    }
}
