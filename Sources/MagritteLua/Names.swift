import MagritteCore

/// Register and exception names as scripts use them.
enum Names {
    /// ABI names of the GPRs (`s8` and `fp` both name register 30).
    static let gprs = [
        "zero", "at", "v0", "v1", "a0", "a1", "a2", "a3", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7",
        "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "t8", "t9", "k0", "k1", "gp", "sp", "fp", "ra",
    ]

    static let gprNumbers: [String: Int] = {
        var d: [String: Int] = [:]
        for (i, n) in gprs.enumerated() { d[n] = i }
        d["s8"] = 30
        for i in 0..<32 { d["r\(i)"] = i }
        return d
    }()

    /// Exception names accepted in filters: the manual's mnemonics (case-insensitive) and words.
    static func exception(_ name: String) -> ExceptionCode? {
        let n = name.lowercased()
        if let c = ExceptionCode.allCases.first(where: { $0.description.lowercased() == n }) { return c }
        switch n {
        case "interrupt": return .interrupt
        case "tlb_modified", "modified": return .tlbModified
        case "tlb_load", "tlbl": return .tlbLoad
        case "tlb_store", "tlbs": return .tlbStore
        case "address_error_load", "address_error": return .addressErrorLoad
        case "address_error_store": return .addressErrorStore
        case "bus_error_fetch": return .busErrorFetch
        case "bus_error", "bus_error_data": return .busErrorData
        case "syscall": return .syscall
        case "breakpoint", "break": return .breakpoint
        case "reserved_instruction", "reserved": return .reservedInstruction
        case "coprocessor_unusable": return .coprocessorUnusable
        case "overflow": return .overflow
        case "trap": return .trap
        default: return nil
        }
    }

    static let exceptionList = ExceptionCode.allCases.map(\.description).joined(separator: ", ")

    static func mode(_ name: String) -> Mode? {
        switch name.lowercased() {
        case "kernel": .kernel
        case "supervisor": .supervisor
        case "user": .user
        default: nil
        }
    }

    static func cause(_ c: ModeChangeCause) -> String {
        switch c {
        case .exception(let code): code.description
        case .eret: "eret"
        case .statusWrite: "mtc0"
        case .host: "host"
        }
    }
}
