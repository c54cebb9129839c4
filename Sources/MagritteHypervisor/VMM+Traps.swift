import MagritteCore
import MagritteMachine

/// Every physical exception comes here: privileged instructions are emulated against the
/// guest's virtual CP0, TLB misses are answered from the virtual TLB or the pmap when they can
/// be, device accesses are emulated, and everything else is reflected to the guest's handler.
extension VMM {
    public func handleTrap(_ trap: Trap, cpu: CPU) {
        // The running guest without a retain and a release per exit (the VMM holds it in
        // `guests` for the whole exit).
        guard let g = current.map({ Unmanaged.passUnretained($0) }) else {
            cpu.requestStop()
            return
        }
        g._withUnsafeGuaranteedRef { handleTrap(windowTrap(trap), $0) }  // a bus error of the device window: the fault it stands for
    }

    func handleTrap(_ trap: Trap, _ g: Guest) {
        exitBegins()
        if g.commPage != nil { commPageIn(g) }
        defer { if g.commPage != nil { commPageOut(g) } }
        g.statistics.traps[Int(trap.code.rawValue)] &+= 1
        record(.trap(trap.code), g, pc: trap.pc)
        exitKind = .other
        exitClustered = 0
        let start = collectsExitSites ? VMM.monotonicNanoseconds() : 0
        switch trap.code {
        case .tlbLoad, .tlbStore, .tlbModified:
            memoryFault(g, trap)
        case .coprocessorUnusable where trap.coprocessor == 0:
            privileged(g, trap)
        case .reservedInstruction:
            if !emulateRDHWR(g, trap) { reflect(g, trap) }
        case .interrupt:
            break  // physical interrupts stay disabled while guests run
        default:
            reflect(g, trap)
        }
        g.statistics.exitsByKind[exitKind.rawValue] &+= 1
        if collectsExitSites { noteExitSite(g, pc: trap.pc, start: start) }
    }

    /// The direct path (`TrapHandler.emulatePrivileged`, called by the CPU instead of
    /// `enterException`) for a guest kernel's `mfc0`, `mtc0`, `di`, `ei`, `eret` and `cache`,
    /// and for the reflection of a `syscall` or `break`: the emulation, counts, statistics and
    /// events of `handleTrap` (→ `privileged` → `emulatePrivileged`, or → `reflect`), without
    /// building the trap, the CPU's before/after comparison or the trapped word's decoding.
    /// What the emulation changes in the CPU (a Status, ASID, segment or TLB write, a return or
    /// a reflection) ends its batch or block as the same instruction run natively does. Declined
    /// (nil, nothing changed) where the two paths could differ or someone looks: the trace
    /// recorded or listened to, exit sites collected, clustering, a comm page, a guest process's
    /// privileged instruction, the hypercall.
    public func emulatePrivileged(_ d: DecodedInstruction, pc: UInt32, cpu: CPU) -> Bool? {
        guard emulatesDirectly, !trace.isActive, !collectsExitSites, !clustersExits, let g = current.map({ Unmanaged.passUnretained($0) }) else { return nil }
        return g._withUnsafeGuaranteedRef { g in
            guard g.commPage == nil else { return nil }
            directExits[Int(d.op.rawValue)] &+= 1  // given back when declined
            switch d.op {
            case .syscall: return reflectDirectly(g, .syscall, pc: pc)
            case .break: return reflectDirectly(g, .breakpoint, pc: pc)
            default: return emulateDirectly(g, d, pc: pc)
            }
        }
    }

    /// `emulatePrivileged`'s privileged instructions.
    @inline(__always)
    private func emulateDirectly(_ g: Guest, _ d: DecodedInstruction, pc: UInt32) -> Bool? {
        let reg = Int(d.imm & 31), sel = Int(d.imm >> 5)
        guard g.inKernelMode || g.cp0.status & StatusBits.cu0 != 0,
              d.op != .mfc0 || (reg, sel) != CP0Register.hypercall.id else {
            directExits[Int(d.op.rawValue)] &-= 1
            return nil
        }
        directExitBegins(g, .coprocessorUnusable)
        switch d.op {
        case .mfc0: if d.rd < 32 { cpu.setGPR(Int(d.rd), readVirtualCP0(g, reg, sel)) }
        case .mtc0: writeVirtualCP0(g, reg, sel, cpu.gpr(Int(d.rt)))
        case .di, .ei:
            if d.rd < 32 { cpu.setGPR(Int(d.rd), g.cp0.status) }
            if d.op == .di { g.cp0.status &= ~StatusBits.ie } else { g.cp0.status |= StatusBits.ie }
        default: break  // eret below; cache: nothing to do
        }
        g.statistics.emulatedByOp[Int(d.op.rawValue)] &+= 1
        exitKind = .privileged
        let goesOn: Bool
        if d.op == .eret {
            eret(g, pc: pc)
            goesOn = false
        } else {
            cpu.setPosition(pc: pc &+ 4, npc: pc &+ 8, inDelaySlot: false)
            goesOn = !deliverInterrupt(g)
        }
        g.statistics.exitsByKind[ExitKind.privileged.rawValue] &+= 1
        return goesOn
    }

    /// `emulatePrivileged`'s `syscall` and `break`: reflected as by `handleTrap`.
    private func reflectDirectly(_ g: Guest, _ code: ExceptionCode, pc: UInt32) -> Bool {
        directExitBegins(g, code)
        exitKind = .other
        reflect(g, Trap(code: code, pc: pc, inDelaySlot: false))
        g.statistics.exitsByKind[exitKind.rawValue] &+= 1
        return false
    }

    /// What `handleTrap` does first, for the direct path (the `trap` event is counted, not recorded).
    @inline(__always)
    private func directExitBegins(_ g: Guest, _ code: ExceptionCode) {
        exitBegins()
        g.statistics.traps[Int(code.rawValue)] &+= 1
        trace.total &+= 1
        exitClustered = 0
    }

    // MARK: Reflection

    /// Delivers `trap` to the guest as its CPU would take it (the shared exception entry,
    /// `CP0State.enterException`, on its virtual CP0), then runs the guest's vector at reduced
    /// privilege (supervisor mode).
    func reflect(_ g: Guest, _ trap: Trap) {
        if exitKind == .other { exitKind = .reflected }  // not an interrupt taken after an emulation
        let before = g.mode
        accountMode(g)
        let vector = g.cp0.enterException(trap)
        let code = trap.code
        g.statistics.reflected[Int(code.rawValue)] &+= 1
        if code.isTLB { g.statistics.reflectedTLBMisses &+= 1 }
        applyMode(g)
        cpu.setPosition(pc: vector, npc: vector &+ 4, inDelaySlot: false)
        record(.reflect(code, vector: vector), g, pc: trap.pc, modeBefore: before)
    }

    /// Reflects exception `code` raised by the VMM's emulation (not by the physical CPU).
    func reflect(_ g: Guest, _ code: ExceptionCode, pc: UInt32, inDelaySlot: Bool, badVAddr: UInt32? = nil, refill: Bool = false,
                 coprocessor: UInt32 = 0) {
        let tlb = code.isTLB
        reflect(g, Trap(code: code, pc: pc, inDelaySlot: inDelaySlot, badVAddr: badVAddr, isRefill: refill, coprocessor: coprocessor,
                        isTranslationFault: tlb))
    }

    /// Continues after the emulated instruction at `trap.pc` (at the branch target when it sat
    /// in a delay slot: the branch is evaluated again, as Linux's compute_return_epc does), and
    /// returns where.
    @discardableResult
    func advance(_ g: Guest, _ trap: Trap) -> UInt32 {
        let next: UInt32
        if trap.inDelaySlot {
            next = branchTarget(g, at: trap.pc &- 4)
        } else {
            next = trap.pc &+ 4
        }
        cpu.setPosition(pc: next, npc: next &+ 4, inDelaySlot: false)
        return next
    }

    /// Where the branch at `bpc` goes after its delay slot (`DecodedInstruction.nextPC`, the
    /// instruction table's branch rule), with the guest's current registers.
    func branchTarget(_ g: Guest, at bpc: UInt32) -> UInt32 {
        guard let w = trappedWord(g, bpc) else { return bpc &+ 8 }
        let d = decodes.instruction(w)
        return d.nextPC(afterBranchAt: bpc, rs: cpu.gpr(Int(d.rs)), rt: d.rt < 32 ? cpu.gpr(Int(d.rt)) : 0)
    }

    // MARK: Guest memory as the VMM sees it

    /// Translates a guest virtual address as the guest's CPU would (kseg0/kseg1 unmapped, the
    /// rest through its virtual TLB), without side effects. Nil: no valid mapping.
    func guestPhysical(_ g: Guest, _ va: UInt32, store: Bool = false) -> UInt32? {
        if let pa = g.cp0.unmappedPhysical(va) { return pa }
        switch TLBEntry.lookup(g.tlb, va, asid: g.cp0.asid) {
        case .mapped(let gpa, let dirty): return store && !dirty ? nil : gpa
        default: return nil
        }
    }

    func fetch(_ g: Guest, _ va: UInt32) -> UInt32? { readGuest(g, va, size: 4) }

    /// The word of the instruction at `pc` of the running guest (one that trapped, or the branch
    /// before it): from the page the CPU fetched it from while that is current (no walk of the
    /// guest's TLB), else through the guest's translation.
    func trappedWord(_ g: Guest, _ pc: UInt32) -> UInt32? { cpu.codeWord(at: pc) ?? fetch(g, pc) }

    func readGuest(_ g: Guest, _ va: UInt32, size: Int) -> UInt32? {
        guard let gpa = guestPhysical(g, va), let ma = g.machineAddress(gpa) else { return nil }
        return cpu.readPhysical(ma, size: size)
    }

    // MARK: TLB misses, kseg0/kseg1 and devices

    func memoryFault(_ g: Guest, _ trap: Trap) {
        guard let va = trap.badVAddr else { reflect(g, trap); return }
        let store = trap.code != .tlbLoad
        let fetchFault = trap.code == .tlbLoad && va == trap.pc
        // (What `deviceAddress` decides, from one walk of the guest's TLB.)
        func device(_ gpa: UInt32) {
            // Mapped to the device window, the next accesses take no exit: the CPU runs the loop.
            emulateDevice(g, trap, gpa: gpa, polls: !mapDeviceWindow(g, va))
        }
        if let gpa = g.cp0.unmappedPhysical(va) {
            // The guest believes this unmapped: fill from the pmap (a fetch from a device is a bus error).
            guard let ma = g.machineAddress(gpa) else {
                if !fetchFault { device(gpa); return }
                reflect(g, .busErrorFetch, pc: trap.pc, inDelaySlot: trap.inDelaySlot)
                return
            }
            installUnmapped(g, va: va, gpa: gpa)
            resumeAfterFill(g, trap)
            g.statistics.ksegFills &+= 1
            exitKind = .ksegFill
            record(.hiddenFill(virtual: va, machine: ma, kseg: true), g, pc: trap.pc)
            return
        }
        let lookup = TLBEntry.lookup(g.tlb, va, asid: g.cp0.asid)
        if !fetchFault, case .mapped(let gpa, let dirty) = lookup, !store || dirty, g.machineAddress(gpa) == nil {
            device(gpa)
            return
        }
        switch lookup {
        case .miss:
            reflect(g, store ? .tlbStore : .tlbLoad, pc: trap.pc, inDelaySlot: trap.inDelaySlot, badVAddr: va, refill: true)
        case .invalid:
            reflect(g, store ? .tlbStore : .tlbLoad, pc: trap.pc, inDelaySlot: trap.inDelaySlot, badVAddr: va)
        case .mapped(let gpa, let dirty):
            if store && !dirty {
                reflect(g, .tlbModified, pc: trap.pc, inDelaySlot: trap.inDelaySlot, badVAddr: va)
                return
            }
            guard let ma = g.machineAddress(gpa) else {
                reflect(g, .busErrorFetch, pc: trap.pc, inDelaySlot: trap.inDelaySlot)  // a fetch from a device
                return
            }
            // Disco's second-level TLB: the guest's own entry answers; the guest never knows.
            installMapped(g, va: va)
            resumeAfterFill(g, trap)
            g.statistics.hiddenTLBFills &+= 1
            exitKind = .hiddenFill
            record(.hiddenFill(virtual: va, machine: ma, kseg: false), g, pc: trap.pc)
        }
    }

    /// The guest-physical address of the device register a data access to `va` reaches, when
    /// the guest's own translation takes it outside its RAM (kseg0/kseg1, or a valid entry of its
    /// virtual TLB that allows the access): the VMM emulates such an access. Nil otherwise.
    func deviceAddress(_ g: Guest, _ va: UInt32, store: Bool) -> UInt32? {
        if let gpa = g.cp0.unmappedPhysical(va) { return g.machineAddress(gpa) == nil ? gpa : nil }
        guard case .mapped(let gpa, let dirty) = TLBEntry.lookup(g.tlb, va, asid: g.cp0.asid), !store || dirty,
              g.machineAddress(gpa) == nil else { return nil }
        return gpa
    }

    /// Emulates a load or store to a guest device register (not mapped, or through the device
    /// window for an instruction it leaves to this path), then, when `polls`, goes on with the
    /// instructions after it in the same exit while they poll (`continuePolling`,
    /// VMM+DevicePolling.swift).
    func emulateDevice(_ g: Guest, _ trap: Trap, gpa: UInt32, polls: Bool = true) {
        guard let w = trappedWord(g, trap.pc) else { reflect(g, .busErrorData, pc: trap.pc, inDelaySlot: trap.inDelaySlot); return }
        let d = decode(w)
        // Size, sign and direction from the instruction table; SC to a device is a bus error.
        guard let access = d.op.info.memory, access.kind != .conditional else {
            reflect(g, .busErrorData, pc: trap.pc, inDelaySlot: trap.inDelaySlot)
            return
        }
        guard deviceAccess(g, d, trap, gpa: gpa, size: access.size, signed: access.signed, isStore: access.isStore) else { return }
        advance(g, trap)
        if g.state == .runnable { deliverInterrupt(g) }
        if polls && !trap.inDelaySlot && cpu.pc == trap.pc &+ 4 { continuePolling(g) }
    }

    /// The access of `d`, a load or store of `size` bytes, to the device register at
    /// guest-physical `gpa`, as the guest's board answers it; false after reflecting a bus error
    /// (nothing answers there).
    func deviceAccess(_ g: Guest, _ d: DecodedInstruction, _ trap: Trap, gpa: UInt32, size: Int, signed: Bool, isStore: Bool) -> Bool {
        let address = size == 4 ? gpa & ~3 : gpa
        g.statistics.deviceAccesses &+= 1
        exitKind = .device
        if isStore {
            let value = cpu.gpr(Int(d.rt))
            guard g.deviceWrite(address, size: size, value: value) else {
                reflect(g, .busErrorData, pc: trap.pc, inDelaySlot: trap.inDelaySlot)
                return false
            }
            if trace.isActive {
                record(.device("write 0x\(Hex.word(address)) = \(Hex.prefixed(value & (size == 4 ? 0xFFFF_FFFF : (1 << (8 * UInt32(size))) - 1)))"), g, pc: trap.pc)
            }
        } else {
            guard var v = g.deviceRead(address, size: size) else {
                reflect(g, .busErrorData, pc: trap.pc, inDelaySlot: trap.inDelaySlot)
                return false
            }
            if signed { v = size == 1 ? UInt32(bitPattern: Int32(Int8(truncatingIfNeeded: v))) : UInt32(bitPattern: Int32(Int16(truncatingIfNeeded: v))) }
            if d.rd < 32 { cpu.setGPR(Int(d.rd), v) }
            if trace.isActive { record(.device("read 0x\(Hex.word(address)) -> \(Hex.prefixed(v))"), g, pc: trap.pc) }
        }
        return true
    }

    // MARK: Privileged instructions

    func privileged(_ g: Guest, _ trap: Trap) {
        guard g.inKernelMode || g.cp0.status & StatusBits.cu0 != 0 else {
            reflect(g, trap)  // a guest process used CP0: the guest's own CpU
            return
        }
        guard var word = trappedWord(g, trap.pc) else { reflect(g, trap); return }
        var t = trap
        // Clustering: while the next privileged instruction follows within a few plain ones
        // (the mfc0/sw, mfc0/lw/mtc0/tlbwr/eret runs of exception handlers), it would trap
        // soon: emulate the run in this exit, each instruction in the slot it would have used,
        // with the same counts and events (but no `trap` event). No one may observe
        // instructions or memory (breakpoints, hooks, watchpoints); an event listener could
        // change that in the exit (`clusterCandidate` looks again then).
        let clusters = clustersExits && g.commPage == nil && cpu.observer == nil && cpu.memoryWatches.isEmpty
        while emulatePrivileged(g, t, word), clusters, let next = clusterCandidate(g, after: t.pc) {
            chargeClustered(faulted: 1)  // its slot, as when it trapped
            g.statistics.clusteredInstructions &+= 1
            exitClustered &+= 1
            t = Trap(code: .coprocessorUnusable, pc: next.pc, inDelaySlot: false)
            word = next.word
        }
    }

    /// Charges the slot of an instruction a cluster emulated to the CPU's run in progress
    /// (`CPU.chargeEmulated`): the run goes on and ends at the same machine time as without
    /// clustering. Where its batch has no room left, the slot is accounted outside the run's
    /// budget, and the run ends after this exit (`runSlice` runs the rest of the quantum).
    @inline(__always)
    func chargeClustered(faulted: UInt64) {
        if !cpu.chargeEmulated(slots: 1, faulted: faulted) {
            clusterEndedRun = true
            cpu.requestStop()
        }
    }

    /// Emulates the privileged instruction `w` that trapped at `trap.pc`; true when the guest
    /// goes on at the next instruction in sequence (not an eret, wait, hypercall, reflection or
    /// interrupt).
    func emulatePrivileged(_ g: Guest, _ trap: Trap, _ w: UInt32) -> Bool {
        let d = decodes.instruction(w)
        var written: VMMEvent.Kind?
        switch d.op {
        case .mfc0:
            let reg = Int(d.imm & 31), sel = Int(d.imm >> 5)
            if (reg, sel) == CP0Register.hypercall.id {
                hypercall(g, trap, dest: d.rd)
                return false
            }
            if d.rd < 32 { cpu.setGPR(Int(d.rd), readVirtualCP0(g, reg, sel)) }
        case .mtc0:
            writeVirtualCP0(g, Int(d.imm & 31), Int(d.imm >> 5), cpu.gpr(Int(d.rt)))
        case .di, .ei:
            if d.rd < 32 { cpu.setGPR(Int(d.rd), g.cp0.status) }
            if d.op == .di { g.cp0.status &= ~StatusBits.ie } else { g.cp0.status |= StatusBits.ie }
        case .tlbr: tlbRead(g)
        case .tlbwi: written = tlbWrite(g, g.cp0.indexedEntry(tlbEntries: g.tlb.count), pc: trap.pc)
        case .tlbwr: written = tlbWrite(g, Int(virtualRandom(g)), pc: trap.pc)
        case .tlbp: tlbProbe(g)
        case .cache, .rdpgpr, .wrpgpr:
            if d.op != .cache, d.rd < 32 { cpu.setGPR(Int(d.rd), cpu.gpr(Int(d.rt))) }
        case .eret:
            count(g, d.op, word: w, trap.pc)
            eret(g, pc: trap.pc)
            return false
        case .wait:
            count(g, d.op, word: w, trap.pc)
            advance(g, trap)
            idle(g, kind: .wait)
            return false
        default:
            reflect(g, .reservedInstruction, pc: trap.pc, inDelaySlot: trap.inDelaySlot)
            return false
        }
        count(g, d.op, word: w, trap.pc)
        if let written, trace.isActive { record(written, g, pc: trap.pc) }
        let next = advance(g, trap)
        return !deliverInterrupt(g) && !trap.inDelaySlot && next == trap.pc &+ 4
    }

    /// Plain instructions (ALU, loads and stores to RAM the physical TLB maps now) a cluster
    /// emulates between two privileged ones: an exception entry's `mfc0`/`sw` pairs, a refill
    /// handler's `mfc0`/`lw`/`mtc0` run.
    static let clusterGap = 8

    /// The next privileged instruction after the emulated one at `pc` (not in a delay slot: the
    /// CPU goes on at `pc + 4`) when it can be emulated in the same exit, with the plain
    /// instructions before it (at most `clusterGap`, straight line) emulated here, each in its
    /// slot: it is a privileged instruction the physical CPU would trap on (its page mapped in
    /// the physical TLB, the guest still in kernel mode), before the quantum's end, with no one
    /// asking to stop. Nil otherwise; the plain instructions are then left to the CPU, or (when
    /// one could not be emulated after all) those emulated are charged and the CPU goes on at
    /// the one that could not. The caller has checked that no one observes the CPU.
    func clusterCandidate(_ g: Guest, after pc: UInt32) -> (pc: UInt32, word: UInt32)? {
        guard g.state == .runnable, g.inKernelMode, now < quantumEnd, !sliceEnd, !stopRequested else { return nil }
        // An event listener (a Lua hook) may have set a breakpoint or a watchpoint in this exit.
        if trace.isActive, cpu.observer != nil || !cpu.memoryWatches.isEmpty { return nil }
        let first = pc &+ 4
        // In the CPU's current code page the word is what the CPU would fetch without a miss.
        // Most instructions after a privileged one are not privileged: the opcode is tested
        // before decoding.
        if let current = cpu.codeWord(at: first), VMM.mayCluster(current) {
            return clusterable(current) ? (first, current) : nil
        }
        // Elsewhere, and past plain instructions, read the words from the page the CPU would
        // fetch them from (a run that leaves the page is left to the CPU).
        let asid = cpu.cp0.asid
        guard let code = cpu.codePage(containing: first)
                ?? clusterRAM(first & ~0xFFF, store: false, asid: asid).map({ UnsafePointer($0.assumingMemoryBound(to: UInt32.self)) })
        else { return nil }
        let firstIndex = Int((first & 0xFFF) >> 2)
        var index = firstIndex
        var privileged: UInt32 = 0
        // Where the next privileged word is, by opcodes alone (most runs end at a branch or a
        // call, or go on past the gap: nothing is decoded then) …
        while true {
            guard index < 1024 else { return nil }
            let w = code[index]
            if VMM.mayCluster(w) { privileged = w; break }
            guard index - firstIndex < VMM.clusterGap, VMM.mayBePlain(w) else { return nil }
            index += 1
        }
        // … then whether the words before it are all plain, decoded.
        for i in firstIndex..<index {
            let kind = pollCache.instruction(code[i]).kind
            guard kind == .alu || kind == .load || kind == .store else { return nil }
        }
        // The privileged one must trap within this quantum, as it would without clustering.
        let gap = UInt64(index - firstIndex)
        guard clusterable(privileged), now &+ gap < quantumEnd else { return nil }
        for i in firstIndex..<index {
            guard emulatePlain(pollCache.instruction(code[i]), asid: asid) else {
                // Left to the CPU from here (the batch ends: the CPU is not at the next instruction).
                let a = (first & ~0xFFF) | UInt32(i << 2)
                cpu.setPosition(pc: a, npc: a &+ 4, inDelaySlot: false)
                return nil
            }
            chargeClustered(faulted: 0)
            exitClustered &+= 1
        }
        let next = (first & ~0xFFF) | UInt32(index << 2)
        cpu.setPosition(pc: next, npc: next &+ 4, inDelaySlot: false)
        return (next, privileged)
    }

    /// The host address of `va` when the physical CPU reaches RAM there now without an
    /// exception (its TLB and segments, in its current mode, with physical ASID `asid`): for a store, a dirty page whose
    /// frame holds no decoded code (a store there is the CPU's, which forgets the code). Nil
    /// otherwise.
    func clusterRAM(_ va: UInt32, store: Bool, asid: UInt8) -> UnsafeMutableRawPointer? {
        if let p = cpu.mappedHostAddress(va, store: store) { return p }  // where the CPU's own fast path goes
        // The guest kernel runs in the physical supervisor mode with fixed segments, so what the
        // CPU reaches at a page depends only on the physical TLB (`clusterPages.generation`) and
        // the physical ASID.
        let tag = UInt64(va & ~0xFFF) | UInt64(asid) << 32 | (supervisorSegments ? 1 << 40 : 0) | (store ? 1 << 41 : 0)
        var known = clusterPages.page(tag)
        if known == nil {
            guard let ma = cpu.physicalAddress(of: va, forWrite: store), let page = bus.ramPage(frame: ma >> 12) else { return nil }
            known = (page, ma >> 12)
            clusterPages.remember(tag, page, frame: ma >> 12)
        }
        guard let (page, frame) = known, !store || !cpu.holdsCode(frame: frame) else { return nil }  // code may be decoded since
        return page + Int(va & 0xFFF)
    }

    /// Whether `w` may be a privileged instruction clustering takes (COP0 or CACHE): tested before
    /// decoding.
    @inline(__always)
    static func mayCluster(_ w: UInt32) -> Bool { w >> 26 == 0x10 || w >> 26 == 0x2F }

    /// Whether `w` may be a plain instruction a cluster emulates (`emulatePlain`), by its
    /// opcode: SPECIAL, SPECIAL2 and SPECIAL3, the immediate ALU ones, the loads and stores.
    @inline(__always)
    static func mayBePlain(_ w: UInt32) -> Bool { plainOpcodes & (1 << UInt64(w >> 26)) != 0 }

    /// Bits 0, 9–15, 28, 31, 32, 33, 35–37, 40, 41, 43.
    static let plainOpcodes: UInt64 = 0xB3B_9000_FE01

    /// Whether the COP0 or CACHE word `w` is a privileged instruction clustering emulates.
    func clusterable(_ w: UInt32) -> Bool {
        let d = decodes.instruction(w)
        switch d.op {
        case .mfc0: return (Int(d.imm & 31), Int(d.imm >> 5)) != CP0Register.hypercall.id
        case .mtc0, .di, .ei, .tlbr, .tlbwi, .tlbwr, .tlbp, .cache, .eret, .rdpgpr, .wrpgpr: return true
        default: return false
        }
    }

    /// Emulates the plain instruction `op` (not in a delay slot) as the CPU would run it:
    /// an ALU instruction that cannot trap, or an aligned load or store to RAM the physical TLB
    /// maps now (a store only to a dirty page without decoded code). False, changing nothing, for
    /// anything else.
    func emulatePlain(_ op: PolledInstruction, asid: UInt8) -> Bool {
        let d = op.decoded
        let rs = d.rs < 32 ? cpu.gpr(Int(d.rs)) : 0, rt = d.rt < 32 ? cpu.gpr(Int(d.rt)) : 0
        switch op.kind {
        case .alu:
            guard let v = VMM.plainResult(d, rs: rs, rt: rt, old: d.rd < 32 ? cpu.gpr(Int(d.rd)) : 0, hi: cpu.hi, lo: cpu.lo) else { return false }
            if d.rd < 32 { cpu.setGPR(Int(d.rd), v) }
            return true
        case .load, .store:
            let va = rs &+ d.imm, size = Int(op.size)
            guard va & UInt32(size &- 1) == 0 else { return false }
            guard let p = clusterRAM(va, store: op.kind == .store, asid: asid) else { return false }
            if op.kind == .store {
                switch size {
                case 1: p.storeBytes(of: UInt8(truncatingIfNeeded: rt), as: UInt8.self)
                case 2: p.storeBytes(of: UInt16(truncatingIfNeeded: rt), as: UInt16.self)
                default: p.storeBytes(of: rt, as: UInt32.self)
                }
                return true
            }
            let raw = size == 1 ? UInt32(p.load(as: UInt8.self)) : size == 2 ? UInt32(p.load(as: UInt16.self)) : p.load(as: UInt32.self)
            let shift = UInt32(32 - 8 * size)  // sign extension of a byte or halfword
            if d.rd < 32 { cpu.setGPR(Int(d.rd), op.signed ? UInt32(bitPattern: Int32(bitPattern: raw << shift) >> shift) : raw) }
            return true
        default:
            return false
        }
    }

    /// Counts an emulated instruction and records it (its disassembly is cached per word: the
    /// guests trap on the same few instructions over and over).
    func count(_ g: Guest, _ op: Op, word: UInt32, _ pc: UInt32) {
        g.statistics.emulatedByOp[Int(op.rawValue)] &+= 1
        exitKind = .privileged
        guard trace.isActive else { return }
        let text: String
        if let known = disassembly[word] {
            text = known
        } else {
            text = Disassembler.text(word: word, pc: pc).replacingTabs
            disassembly[word] = text
        }
        record(.emulate(text), g, pc: pc)
    }

    func emulateRDHWR(_ g: Guest, _ trap: Trap) -> Bool {
        guard let w = trappedWord(g, trap.pc) else { return false }
        let d = decodes.instruction(w)
        guard d.op == .rdhwr else { return false }
        let cp0Usable = g.inKernelMode || g.cp0.status & StatusBits.cu0 != 0
        guard let reg = HardwareRegister(rawValue: d.rs), reg.readable(cp0Usable: cp0Usable, hwrEna: g.cp0.hwrEna) else { return false }
        let v: UInt32
        switch reg {
        case .cpuNum: v = g.cp0.ebase & 0x3FF
        case .synciStep: v = HardwareRegister.synciStepBytes
        case .cc: v = virtualCount(g)
        case .ccRes: v = UInt32(VMM.ticksPerCycle)
        }
        if d.rd < 32 { cpu.setGPR(Int(d.rd), v) }
        count(g, .rdhwr, word: w, trap.pc)
        advance(g, trap)
        return true
    }

    func eret(_ g: Guest, pc: UInt32) {
        let before = g.mode
        accountMode(g)
        let (target, leftErrorLevel) = g.cp0.returnFromException()
        if leftErrorLevel { flushGuest(g) }  // kuseg was unmapped under ERL
        cpu.clearLinkedLoad()
        applyMode(g)
        cpu.setPosition(pc: target, npc: target &+ 4, inDelaySlot: false)
        record(.realReturn(target: target), g, pc: pc, modeBefore: before)
        deliverInterrupt(g)
    }

    // MARK: Interrupts and idling

    /// Cause as the guest reads it.
    func virtualCause(_ g: Guest) -> UInt32 {
        g.cp0.causeAsRead(hardwareIP: g.hardwareIP, timerPending: g.timerPending)
    }

    /// An interrupt is pending and not masked by IM (what ends a WAIT).
    func interruptPending(_ g: Guest) -> Bool {
        virtualCause(g) & g.cp0.status & StatusBits.im != 0
    }

    /// Takes a pending, enabled virtual interrupt at the current instruction boundary; true when
    /// it did.
    @discardableResult
    func deliverInterrupt(_ g: Guest) -> Bool {
        let s = g.cp0.status
        guard g.state == .runnable, s & StatusBits.ie != 0, s & (StatusBits.exl | StatusBits.erl) == 0, interruptPending(g) else { return false }
        reflect(g, .interrupt, pc: cpu.pc, inDelaySlot: cpu.inDelaySlot)
        return true
    }

    /// Deschedules the guest until its next virtual interrupt (WAIT or the idle hypercall).
    func idle(_ g: Guest, kind: WaitKind) {
        record(.idle(kind.rawValue), g, pc: cpu.pc)
        if interruptPending(g) {
            deliverInterrupt(g)
            return
        }
        g.state = .waiting
        g.waitKind = kind
        g.waitStart = now
        cpu.requestStop()
    }

    func wake(_ g: Guest) {
        let waited = now &- g.waitStart
        if g.waitKind == .hypercall { g.statistics.hypercallIdleCycles &+= waited } else { g.statistics.waitCycles &+= waited }
        g.state = .runnable
        record(.wake, g, pc: g.pc)
    }

    /// Pause-loop detection: at a quantum's end, a guest kernel found at the same pc with the
    /// same registers as at the previous one, inside a short backward loop without stores, is
    /// spinning in its idle loop; both quanta count as idle time (the first one when the spin is
    /// recognised).
    func detectSpin(_ g: Guest, ran: UInt64) {
        guard g.state == .runnable, g.inKernelMode, ran > 0 else { g.lastSample = nil; return }
        let sample = (pc: cpu.pc, hash: cpu.registerFingerprint, ran: ran)
        defer { g.lastSample = sample }
        guard let last = g.lastSample, last.pc == sample.pc, last.hash == sample.hash, isIdleLoop(g, at: sample.pc) else {
            g.spinStreak = 0
            return
        }
        if g.spinStreak == 0 {
            record(.idle("spin"), g, pc: sample.pc)
            g.statistics.spinInstructions &+= last.ran
        }
        g.spinStreak += 1
        g.statistics.spinInstructions &+= ran
        if spinPolicy == .deschedule {
            sliceEnd = true
            cpu.requestStop()
        }
    }

    /// Whether `pc` lies in a tight backward loop (a branch at most 16 instructions on, or the
    /// one just before when `pc` is its delay slot, back to at most 64 bytes before it) whose body
    /// has no stores, calls, traps or state changes (`mtc0`, `wait`, …: the instruction table).
    func isIdleLoop(_ g: Guest, at pc: UInt32) -> Bool {
        if let known = g.idleLoops[pc] { return known }
        var result = false
        search: for i in -1..<16 {
            let bpc = pc &+ UInt32(bitPattern: Int32(4 * i))
            guard let w = fetch(g, bpc) else { continue }
            let d = decode(w)
            let branch = d.op.info.branch
            switch branch.kind {
            case .conditional, .conditionalLikely, .jump:
                guard !branch.links, let target = d.takenTarget(at: bpc) else { continue }
                guard target <= pc, bpc &- target <= 64 else {
                    if i < 0 { continue }  // the instruction before is a branch elsewhere
                    break search
                }
                result = true
                var a = target
                while a <= bpc &+ 4 {
                    guard let x = fetch(g, a) else { result = false; break }
                    let info = decode(x).op.info
                    if info.memory?.isStore == true || info.branch.links || info.changesState || info.alwaysTraps { result = false }
                    a &+= 4
                }
                break search
            default: continue
            }
        }
        g.idleLoops[pc] = result
        return result
    }

    // MARK: Hypercalls (Docs/hypercalls.md)

    func hypercall(_ g: Guest, _ trap: Trap, dest: UInt8) {
        let function = cpu.gpr(4)
        g.statistics.hypercalls &+= 1
        exitKind = .hypercall
        record(.hypercall(function: function), g, pc: trap.pc)
        var result: UInt32 = 0
        switch Hypercall(rawValue: function) {
        case .probe: result = Hypercall.probeAnswer
        case .idle:
            if dest < 32 { cpu.setGPR(Int(dest), 0) }
            advance(g, trap)
            idle(g, kind: .hypercall)
            return
        case .yield:
            sliceEnd = true
            cpu.requestStop()
        case .consoleWrite:
            let p = cpu.gpr(5), n = min(cpu.gpr(6), Hypercall.maxConsoleBytes)
            var written: UInt32 = 0
            for i in 0..<n {
                guard let b = readGuest(g, p &+ i, size: 1) else { break }
                g.received(UInt8(b))
                written += 1
            }
            result = written
        case .tlbWrite:
            let p = cpu.gpr(5), n = min(cpu.gpr(6), Hypercall.maxTLBRecords)
            var done: UInt32 = 0
            for i in 0..<n {
                let r = p &+ i * Hypercall.tlbRecordSize
                guard let idx = readGuest(g, r, size: 4), let hi = readGuest(g, r &+ 4, size: 4), let lo0 = readGuest(g, r &+ 8, size: 4),
                      let lo1 = readGuest(g, r &+ 12, size: 4), let mask = readGuest(g, r &+ 16, size: 4) else { break }
                let entry = TLBEntry(entryHi: hi & CP0Register.entryHi.writeMask, pageMask: mask & CP0Register.pageMask.writeMask,
                                     entryLo0: lo0 & CP0Register.entryLo0.writeMask, entryLo1: lo1 & CP0Register.entryLo1.writeMask)
                let i = idx == Hypercall.randomIndex ? Int(virtualRandom(g)) : Int(idx % UInt32(g.tlb.count))
                replaceVirtualTLB(g, i, entry)
                done += 1
            }
            result = done
        case .mapCommPage: result = mapCommPage(g, cpu.gpr(5))
        case nil: result = Hypercall.unknown
        }
        if dest < 32 { cpu.setGPR(Int(dest), result) }
        advance(g, trap)
    }
}

/// The hypercall functions (a0 of `mfc0 $v0, $22, 7`; Docs/hypercalls.md).
enum Hypercall: UInt32 {
    case probe = 0
    case idle = 1
    case yield = 2
    case consoleWrite = 3
    case tlbWrite = 4
    case mapCommPage = 5

    /// What `probe` returns: 'MGRT'.
    static let probeAnswer: UInt32 = 0x4D47_5254
    /// What an unknown function returns (-1).
    static let unknown: UInt32 = 0xFFFF_FFFF
    /// At most this many bytes per console write.
    static let maxConsoleBytes: UInt32 = 1 << 16
    /// At most this many records per batched TLB write; each is `tlbRecordSize` bytes (index,
    /// EntryHi, EntryLo0, EntryLo1, PageMask); index 0xFFFFFFFF means Random.
    static let maxTLBRecords: UInt32 = 64
    static let tlbRecordSize: UInt32 = 20
    static let randomIndex: UInt32 = 0xFFFF_FFFF
}

/// Why a guest waits: WAIT, or the idle hypercall.
enum WaitKind: String {
    case wait
    case hypercall
}

extension String {
    var replacingTabs: String { map { $0 == "\t" ? " " : String($0) }.joined() }
}

/// The last few pages clustering reached through the physical TLB (`VMM.clusterRAM`): a tag
/// (virtual page, physical ASID, segments, whether for a store) → the host page, forgotten when
/// the VMM writes the physical TLB (`generation`).
struct ClusterPages {
    var generation: UInt64 = 0
    private var valid: UInt64 = .max
    private var tags: (UInt64, UInt64, UInt64, UInt64) = (.max, .max, .max, .max)
    private var pages: (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?)
    private var frames: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    private var next = 0

    /// The host page and machine frame of `tag` when they are known.
    func page(_ tag: UInt64) -> (UnsafeMutableRawPointer, UInt32)? {
        guard valid == generation else { return nil }
        if tags.0 == tag, let p = pages.0 { return (p, frames.0) }
        if tags.1 == tag, let p = pages.1 { return (p, frames.1) }
        if tags.2 == tag, let p = pages.2 { return (p, frames.2) }
        if tags.3 == tag, let p = pages.3 { return (p, frames.3) }
        return nil
    }

    mutating func remember(_ tag: UInt64, _ page: UnsafeMutableRawPointer, frame: UInt32) {
        if valid != generation {
            tags = (.max, .max, .max, .max)
            valid = generation
        }
        switch next {
        case 0: (tags.0, pages.0, frames.0) = (tag, page, frame)
        case 1: (tags.1, pages.1, frames.1) = (tag, page, frame)
        case 2: (tags.2, pages.2, frames.2) = (tag, page, frame)
        default: (tags.3, pages.3, frames.3) = (tag, page, frame)
        }
        next = (next + 1) & 3
    }
}

/// Privileged and trapping instruction words, decoded once (`VMM.decodes`): the guests trap on
/// the same few words over and over. Direct-mapped by a multiplicative hash (an `mfc0` and the
/// `mtc0` of the same register differ in one bit, which a shift-and-xor hash can cancel).
final class DecodedWords {
    static let entries = 256
    private let words: UnsafeMutablePointer<UInt32>
    private let decoded: UnsafeMutablePointer<DecodedInstruction>

    init() {
        words = .allocate(capacity: DecodedWords.entries)
        decoded = .allocate(capacity: DecodedWords.entries)
        words.initialize(repeating: 0, count: DecodedWords.entries)
        decoded.initialize(repeating: decode(0), count: DecodedWords.entries)  // word 0 is what an empty entry holds
    }

    deinit {
        words.deallocate()
        decoded.deallocate()
    }

    @inline(__always)
    func instruction(_ w: UInt32) -> DecodedInstruction {
        let i = Int((w &* 0x9E37_79B1) >> 24)
        if words[i] != w {
            words[i] = w
            decoded[i] = decode(w)
        }
        return decoded[i]
    }
}
