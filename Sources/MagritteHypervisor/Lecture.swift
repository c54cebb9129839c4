import MagritteCore
import MagritteMachine

/// The flows of the lecture (Docs/vmm.md) that can be drawn from a run.
public enum LectureFlow: String, CaseIterable, Sendable {
    /// A process's system call: trap, the OS's handler, return from trap.
    case syscall
    /// A process's TLB miss handled by the OS's software refill handler.
    case tlbMiss = "tlb-miss"
}

/// A column of the lecture's tables: who acts.
public enum Lane: String, Sendable {
    case process = "Process"
    case hardware = "Hardware"
    case os = "Operating System"
    case vmm = "VMM"
}

/// One step of a flow: who acts, and what happened (with this run's addresses and counts).
public struct FlowStep: Sendable, Equatable {
    public var lane: Lane
    public var text: String
    public init(_ lane: Lane, _ text: String) {
        self.lane = lane
        self.text = text
    }
}

/// A flow as it happened in a run, in the lecture's columns.
public struct Flow: Sendable, Equatable {
    public var title: String
    /// The guest whose flow it is.
    public var guest: String
    /// The trapping instruction of the flow.
    public var pc: UInt32
    public var lanes: [Lane]
    public var steps: [FlowStep]
    /// Figures about the rest of the run (e.g. how many misses the VMM answered unseen).
    public var note: String?
    /// For a TLB miss: the VPN2 the handler installed, i.e. the page of the access, so that the
    /// bare-hardware twin is the same access and not another one by the same instruction.
    public var page: UInt32? = nil
}

/// Builds the lecture's tables from real runs: "System Call with VMM" and "TLB Miss with VMM"
/// from a VMM trace, "Standard System Call" and "Standard Address Translation Flow on TLB
/// Miss" from the same guest run on bare Malta.
public enum LectureTables {
    // MARK: Under the VMM, from the trace

    /// The first complete instance of `flow` made by a user process of `guest` (any guest when
    /// nil) in `trace`, or nil when the run has none.
    public static func flow(_ flow: LectureFlow, trace: [VMMEvent], guest: String? = nil) -> Flow? {
        var i = 0
        while i < trace.count {
            let e = trace[i]
            if e.modeBefore == .user, guest == nil || e.guest == guest, case .trap(let code) = e.kind {
                let found: Flow?
                switch flow {
                case .syscall where code == .syscall: found = systemCall(trace, from: i)
                case .tlbMiss where code == .tlbLoad || code == .tlbStore: found = tlbMiss(trace, from: i)
                default: found = nil
                }
                if let found { return found }
            }
            i += 1
        }
        return nil
    }

    /// The events of the trap at `start` up to the real return to the process: the reflection,
    /// what the VMM did for the guest kernel meanwhile, and the return. Nil when incomplete.
    struct Episode {
        var trap: VMMEvent
        var reflect: VMMEvent
        var vector: UInt32
        var emulated: [VMMEvent] = []
        /// The guest's TLB writes, as the VMM carried them out.
        var tlbWrites: [VMMEvent] = []
        var hiddenFills = 0
        var ksegFills = 0
        var devices = 0
        /// Exits for device accesses (fewer than the accesses when a polling loop was emulated).
        var deviceExits = 0
        var otherTraps: [ExceptionCode] = []
        /// Exits for privileged instructions (fewer than those emulated when clustered).
        var privilegedExits = 0
        var switches = 0
        var eret: VMMEvent?
        var realReturn: VMMEvent
        /// The guest's next trap after the return (to tell a retried access that hit).
        var nextTrap: VMMEvent?
    }

    static func episode(_ t: [VMMEvent], from start: Int) -> Episode? {
        let g = t[start].guest
        var j = start + 1
        // The VMM's reaction must be a reflection of this very trap to the guest's handler.
        while j < t.count, t[j].guest != g { j += 1 }
        guard j < t.count, case .reflect(_, let vector) = t[j].kind else { return nil }
        let reflect = t[j]
        var emulated: [VMMEvent] = [], writes: [VMMEvent] = [], hidden = 0, kseg = 0, devices = 0, switches = 0
        var other: [ExceptionCode] = []
        var eret: VMMEvent?
        var privilegedExits = 0, deviceExits = 0
        var afterTrap = false  // the guest's event before was a trap (its exit's first)
        j += 1
        while j < t.count {
            let e = t[j]
            j += 1
            if case .machineSwitch = e.kind { switches += 1; continue }
            guard e.guest == g else { continue }
            defer { if case .trap = e.kind { afterTrap = true } else { afterTrap = false } }
            switch e.kind {
            case .emulate(let text):
                if text.hasPrefix("eret") { eret = e } else { emulated.append(e) }
            case .tlbWrite: writes.append(e)
            case .hiddenFill(_, _, let isKseg): if isKseg { kseg += 1 } else { hidden += 1 }
            case .device:
                devices += 1
                if afterTrap { deviceExits += 1 }
            case .trap(let c):
                if c == .coprocessorUnusable || c == .reservedInstruction { privilegedExits += 1 }  // rdhwr is emulated after an RI
                if c != .coprocessorUnusable && c != .tlbLoad && c != .tlbStore { other.append(c) }
            case .realReturn where e.modeAfter == .user:
                var next: VMMEvent?
                var k = j
                while k < t.count {
                    if t[k].guest == g, case .trap = t[k].kind { next = t[k]; break }
                    k += 1
                }
                return Episode(trap: t[start], reflect: reflect, vector: vector, emulated: emulated, tlbWrites: writes, hiddenFills: hidden,
                               ksegFills: kseg, devices: devices, deviceExits: deviceExits, otherTraps: other, privilegedExits: privilegedExits, switches: switches, eret: eret,
                               realReturn: e, nextTrap: next)
            case .powerOff: return nil
            default: break
            }
        }
        return nil
    }

    static func systemCall(_ t: [VMMEvent], from start: Int) -> Flow? {
        guard let ep = episode(t, from: start) else { return nil }
        let pc = ep.trap.pc
        let handler = ep.realReturn.instructions &- ep.reflect.instructions
        guard case .realReturn(let target) = ep.realReturn.kind else { return nil }
        var steps = [
            FlowStep(.process, "System call: syscall at \(Hex.prefixedWord(pc)) traps (Cause Sys) — to the VMM, which owns the real kernel mode"),
            FlowStep(.vmm, "Process trapped: call the OS trap handler at \(Hex.prefixedWord(ep.vector)) at reduced privilege (supervisor mode); virtual EPC = \(Hex.prefixedWord(pc)), Cause = Sys, Status.EXL = 1"),
            FlowStep(.os, "OS trap handler: decode the trap and execute the system call (\(handler) instructions); every privileged instruction traps to the VMM: \(summary(ep.emulated)); when done: issue return-from-trap (eret)"),
            FlowStep(.vmm, "OS tried return from trap (eret at \(Hex.prefixedWord(ep.eret?.pc ?? 0)) traps: Coprocessor Unusable): do the real return to \(Hex.prefixedWord(target)) in user mode"),
            FlowStep(.process, "Resume execution @PC after the trap: \(Hex.prefixedWord(target))\(target == pc &+ 4 ? " = syscall + 4" : "")"),
        ]
        if ep.switches > 0 { steps[2].text += " (the VMM switched machines \(ep.switches) times meanwhile)" }
        return Flow(title: "System call with a VMM — guest \(ep.trap.guest), from this run", guest: ep.trap.guest, pc: pc, lanes: [.process, .os, .vmm],
                    steps: steps, note: note(ep))
    }

    static func tlbMiss(_ t: [VMMEvent], from start: Int) -> Flow? {
        guard let ep = episode(t, from: start), ep.vector & 0xFFF == 0 else { return nil }  // the refill vector
        guard let write = ep.emulated.first(where: { if case .emulate(let s) = $0.kind { return s.hasPrefix("tlbw") }; return false }),
              case .emulate(let writeText) = write.kind, let written = ep.tlbWrites.first,
              case .realReturn(let target) = ep.realReturn.kind, case .trap(let code) = ep.trap.kind
        else { return nil }
        let pc = ep.trap.pc
        let before = ep.emulated.prefix { $0 != write }
        let access = code == .tlbStore ? "Store to" : "Load from"
        let hit = ep.nextTrap.map { $0.pc != pc || $0.instructions > ep.realReturn.instructions &+ 1 } ?? true
        let detail = written.text
        let mnemonic = writeText.prefix { $0 != " " && $0 != "\t" }
        let steps = [
            FlowStep(.process, "\(access) memory at pc \(Hex.prefixedWord(pc)): TLB miss (\(code)): trap"),
            FlowStep(.vmm, "VMM TLB miss handler: the guest's virtual TLB has no entry either, so call into the OS TLB refill handler at \(Hex.prefixedWord(ep.vector)) (reducing privilege); virtual BadVAddr, Context, EntryHi set"),
            FlowStep(.os, "OS TLB miss handler: extract VPN from VA, do the page-table lookup, get the PFN, update the TLB (\(before.count) privileged instructions before it, emulated: \(summary(Array(before))))"),
            FlowStep(.vmm, "Trap handler: unprivileged code trying to update the TLB (\(mnemonic) at \(Hex.prefixedWord(write.pc))); the OS installs VPN→PFN, the VMM writes \(detail); jump back to the OS (reducing privilege)"),
            FlowStep(.os, "Return from trap (eret at \(Hex.prefixedWord(ep.eret?.pc ?? 0)))"),
            FlowStep(.vmm, "Trap handler: unprivileged code trying to return from a trap: real return to \(Hex.prefixedWord(target)) in user mode"),
            FlowStep(.process, "Resume execution @PC of the instruction (\(Hex.prefixedWord(target))): the instruction is retried; \(hit ? "TLB hit" : "it missed again")"),
        ]
        var page: UInt32?
        if case .tlbWrite(_, let entry, _, _) = written.kind { page = entry.vpn2 }
        return Flow(title: "TLB miss with a VMM — guest \(ep.trap.guest), from this run", guest: ep.trap.guest, pc: pc, lanes: [.process, .os, .vmm],
                    steps: steps, note: note(ep), page: page)
    }

    /// "mfc0 ×2 (…), mtc0 ×1" in order of first use.
    static func summary(_ events: [VMMEvent]) -> String {
        var order: [String] = [], counts: [String: Int] = [:]
        for e in events {
            guard case .emulate(let text) = e.kind else { continue }
            let m = String(text.prefix { $0 != " " && $0 != "\t" })
            if counts[m] == nil { order.append(m) }
            counts[m, default: 0] += 1
        }
        if order.isEmpty { return "none" }
        return order.map { "\($0) ×\(counts[$0]!)" }.joined(separator: ", ")
    }

    static func note(_ ep: Episode) -> String? {
        var parts: [String] = []
        if ep.hiddenFills > 0 { parts.append("\(ep.hiddenFills) TLB misses of the guest kernel answered by the VMM from the virtual TLB, unseen") }
        if ep.ksegFills > 0 { parts.append("\(ep.ksegFills) kseg0/kseg1 pages filled from the pmap") }
        if ep.devices > 0 {
            let polled = ep.deviceExits < ep.devices ? " in \(ep.deviceExits) exits (the VMM emulates a polling loop's instructions after a device access in the same exit)" : ""
            parts.append("\(ep.devices) device accesses emulated\(polled)")
        }
        if !ep.otherTraps.isEmpty { parts.append("other traps: " + ep.otherTraps.map(\.description).joined(separator: ", ")) }
        let emulated = ep.emulated.count + (ep.eret == nil ? 0 : 1)
        if ep.privilegedExits < emulated {
            parts.append("the \(emulated) privileged instructions took \(ep.privilegedExits) exits (the VMM emulates a privileged instruction right after a trapping one in the same exit)")
        }
        return parts.isEmpty ? nil : "Meanwhile: " + parts.joined(separator: "; ") + "."
    }

    // MARK: On bare hardware, from a run of the same guest

    /// Runs the guest's image alone on bare Malta (same RAM and command line) until its first
    /// `flow` from a user process has completed, and describes it. Nil when there is none within
    /// `maxInstructions`.
    /// With `pc`, the first instance whose trapping instruction is at `pc` is preferred, and with
    /// `page` too, the first whose handler installs that VPN2 (the same access).
    public static func bareFlow(_ flow: LectureFlow, like guest: Guest, pc: UInt32? = nil, page: UInt32? = nil,
                                maxInstructions: UInt64 = 100_000_000) -> Flow? {
        if let pc, let page, let f = bareRun(flow, like: guest, pc: pc, page: page, maxInstructions: maxInstructions) { return f }
        if let pc, let f = bareRun(flow, like: guest, pc: pc, maxInstructions: maxInstructions) { return f }
        return bareRun(flow, like: guest, pc: nil, maxInstructions: maxInstructions)
    }

    static func bareRun(_ flow: LectureFlow, like guest: Guest, pc: UInt32?, page: UInt32? = nil, maxInstructions: UInt64) -> Flow? {
        guard let image = guest.image else { return nil }
        var config = MaltaConfiguration(ramSize: guest.ramSize)
        config.commandLine = guest.configuration.commandLine
        let board = Malta(configuration: config)
        do { try board.load(elf: image) } catch { return nil }
        board.boot()
        let recorder = BareFlowRecorder(flow: flow, pc: pc, page: page)
        board.cpu.observer = recorder
        _ = board.run(maxInstructions: maxInstructions)
        board.cpu.observer = nil
        return recorder.result(guest: guest.name)
    }

    // MARK: Text

    /// The flow as a text table in the lecture's columns, steps numbered.
    public static func render(_ flow: Flow, width: Int = 34) -> String {
        let bar = "+" + flow.lanes.map { _ in String(repeating: "-", count: width + 2) + "+" }.joined()
        func line(_ cells: [String]) -> String {
            "|" + cells.map { " " + $0 + String(repeating: " ", count: max(0, width - $0.count)) + " |" }.joined()
        }
        var out = flow.title + "\n" + bar + "\n" + line(flow.lanes.map(\.rawValue)) + "\n" + bar + "\n"
        for (n, step) in flow.steps.enumerated() {
            let text = wrap("\(n + 1). " + step.text, width: width, indent: n + 1 >= 10 ? 4 : 3)
            let column = flow.lanes.firstIndex(of: step.lane) ?? 0
            for l in text {
                out += line(flow.lanes.indices.map { $0 == column ? l : "" }) + "\n"
            }
            out += bar + "\n"
        }
        if let note = flow.note { out += wrap(note, width: (width + 3) * flow.lanes.count, indent: 0).joined(separator: "\n") + "\n" }
        return out
    }

    /// The flow from a VMM run and, beside it, the same flow on bare hardware.
    public static func render(_ flow: LectureFlow, trace: [VMMEvent], guests: [Guest]) -> String {
        guard let vmmFlow = self.flow(flow, trace: trace) else {
            return "No \(flow == .syscall ? "system call" : "TLB miss reflected to a refill handler") from a guest's user process in the recorded trace.\n"
        }
        var out = render(vmmFlow) + "\n"
        if let g = guests.first(where: { $0.name == vmmFlow.guest }), let bare = bareFlow(flow, like: g, pc: vmmFlow.pc, page: vmmFlow.page) {
            out += render(bare) + "\n"
        }
        return out
    }

    static func wrap(_ text: String, width: Int, indent: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            var w = String(word)
            let pad = lines.isEmpty && current.isEmpty ? "" : String(repeating: " ", count: indent)
            if current.isEmpty {
                current = (lines.isEmpty ? "" : pad)
            } else if current.count + 1 + w.count <= width {
                current += " " + w
                continue
            } else {
                lines.append(current)
                current = pad
            }
            // Words longer than a line are cut.
            while current.count + w.count > width {
                let room = max(1, width - current.count)
                lines.append(current + w.prefix(room))
                w = String(w.dropFirst(room))
                current = pad
            }
            current += w
        }
        if !current.trimmingSpaces.isEmpty || lines.isEmpty { lines.append(current) }
        return lines
    }
}

extension String {
    var trimmingSpaces: Substring { drop { $0 == " " } }
}


/// Watches a bare run for the first instance of a flow made by a user process.
final class BareFlowRecorder: CPUObserver {
    let flow: LectureFlow
    var userSince: UInt64 = 0
    var started = false
    var done = false
    var trapPC: UInt32 = 0
    var code: ExceptionCode = .syscall
    var vector: UInt32 = 0
    var epc: UInt32 = 0
    var userRun: UInt64 = 0
    var startInstructions: UInt64 = 0
    var endInstructions: UInt64 = 0
    var eretPC: UInt32 = 0
    var target: UInt32 = 0
    var writes: [(index: Int, entry: TLBEntry, pc: UInt32)] = []
    /// After the flow: whether the retried instruction missed again.
    var awaitingRetry = false
    var missedAgain = false

    let wantedPC: UInt32?
    /// The VPN2 the handler must install (the same access as a VMM run's), or nil for any.
    let wantedPage: UInt32?
    var badVAddr: UInt32 = 0

    init(flow: LectureFlow, pc: UInt32?, page: UInt32? = nil) {
        self.flow = flow
        wantedPC = pc
        wantedPage = page
    }

    func cpu(_ cpu: CPU, didChangeMode c: ModeChange) -> ObserverAction {
        if awaitingRetry {
            // The process's next exception: the same instruction missing again, or anything else.
            if c.from == .user, case .exception(let code) = c.cause {
                missedAgain = c.pc == target && (code == .tlbLoad || code == .tlbStore)
                awaitingRetry = false
                return .stop
            }
            return .proceed
        }
        if done { return .proceed }
        if !started {
            if c.to == .user { userSince = cpu.retiredInstructions }
            guard c.from == .user, case .exception(let code) = c.cause else { return .proceed }
            let wanted = flow == .syscall ? code == .syscall : (code == .tlbLoad || code == .tlbStore) && cpu.pc & 0xFFF == 0
            guard wanted, wantedPC == nil || wantedPC == c.pc else { return .proceed }
            started = true
            self.code = code
            trapPC = c.pc
            vector = cpu.pc
            epc = cpu.cp0.epc
            badVAddr = cpu.cp0.badVAddr
            userRun = cpu.retiredInstructions &- userSince
            startInstructions = cpu.retiredInstructions
            writes = []
            return .proceed
        }
        if c.to == .user, c.cause == .eret {
            eretPC = c.pc
            target = cpu.pc
            endInstructions = cpu.retiredInstructions
            if flow == .syscall {
                done = true
                return .stop
            }
            if let first = writes.first, wantedPage == nil || first.entry.vpn2 == wantedPage {
                done = true
                awaitingRetry = true
                return .proceed
            }
            started = false  // no TLB write, or one for another page (another access): keep looking
        }
        return .proceed
    }

    func cpu(_ cpu: CPU, didWriteTLB index: Int, entry: TLBEntry, pc: UInt32) -> ObserverAction {
        if started && !done { writes.append((index, entry, pc)) }
        return .proceed
    }

    func result(guest: String) -> Flow? {
        guard done else { return nil }
        let handler = endInstructions &- startInstructions
        switch flow {
        case .syscall:
            return Flow(title: "Standard system call — the same guest (\(guest)) alone on bare Malta", guest: guest, pc: trapPC, lanes: [.process, .hardware, .os], steps: [
                FlowStep(.process, "Execute instructions (add, load, etc.): \(userRun) instructions in user mode"),
                FlowStep(.process, "System call: syscall at \(Hex.prefixedWord(trapPC)): trap to the OS"),
                FlowStep(.hardware, "Switch to kernel mode; jump to the trap handler at \(Hex.prefixedWord(vector)) (EPC = \(Hex.prefixedWord(epc)), Cause = Sys)"),
                FlowStep(.os, "In kernel mode: handle the system call (\(handler) instructions, privileged ones included, no traps); return from trap (eret at \(Hex.prefixedWord(eretPC)))"),
                FlowStep(.hardware, "Switch to user mode; return to user code at EPC = \(Hex.prefixedWord(target))"),
                FlowStep(.process, "Resume execution @PC after the trap: \(Hex.prefixedWord(target))\(target == trapPC &+ 4 ? " = syscall + 4" : "")"),
            ], note: nil)
        case .tlbMiss:
            let w = writes[0]
            func pfn(_ lo: UInt32) -> String { lo & 2 == 0 ? "invalid" : "PFN " + Hex.prefixed(lo >> 6) }
            var bare = Flow(title: "Standard TLB miss — the same guest (\(guest)) alone on bare Malta", guest: guest, pc: trapPC, lanes: [.process, .os], steps: [
                FlowStep(.process, "\(badVAddr == trapPC ? "Fetch the instruction at" : code == .tlbStore ? "Store to \(Hex.prefixedWord(badVAddr)) at pc" : "Load from \(Hex.prefixedWord(badVAddr)) at pc") \(Hex.prefixedWord(trapPC)): TLB miss (\(code)): trap to the refill handler at \(Hex.prefixedWord(vector))"),
                FlowStep(.os, "OS TLB miss handler: extract VPN from VA, page-table lookup, get the PFN, update the TLB (TLB \(w.index): VPN2 \(Hex.prefixedWord(w.entry.vpn2)) ASID \(w.entry.asid) -> \(pfn(w.entry.lo0)), \(pfn(w.entry.lo1)), at \(Hex.prefixedWord(w.pc))); return from trap (\(handler) instructions)"),
                FlowStep(.process, "Resume execution @PC of the trapping instruction (\(Hex.prefixedWord(target))): the instruction is retried; \(missedAgain ? "it missed again" : "TLB hit")"),
            ], note: nil)
            bare.page = w.entry.vpn2
            return bare
        }
    }
}
