/// The interpreter's hot loop.
///
/// pc, npc, the delay-slot flag and the remaining budget live in locals (registers); every
/// other piece of state is reached through `self`'s unsafe buffers. A batch ends when the
/// budget is used up or `batchBreak` is set by something that can change interrupt state
/// (mtc0, eret, ei/di, wait, a device raising a line, an exception). Each instruction's
/// semantics take a few lines; faults call the out-of-line slow paths, which update CP0 in one
/// place (`enterException`) and leave the new pc in `self`. An exception ends the batch unless a
/// trap handler left the CPU at the next instruction with nothing for the run loop to do
/// (`enterException` then leaves `batchBreak` clear): the loop goes on in place.
extension CPU {
    /// The ordinary loop.
    func executeFast(_ budget: UInt64) -> UInt64 { execute(budget, observing: false) }

    /// The ordinary loop for part of a batch the translator runs (`executeTranslated`): `elapsed`
    /// slots of the batch are done, and `cycles` stays at the batch's start, as in one batch.
    func executeFast(_ budget: UInt64, elapsed: UInt64) -> UInt64 { execute(budget, observing: false, elapsed: elapsed) }

    /// The loop that reports every instruction to the observer.
    func executeObserved(_ budget: UInt64) -> UInt64 { execute(budget, observing: true) }

    /// Executes up to `budget` instruction slots; returns how many were used.
    @inline(__always)
    func execute(_ budget: UInt64, observing: Bool, elapsed: UInt64? = nil) -> UInt64 {
        var pc = self.pc
        var npc = self.npc
        var delay = self.inDelaySlot
        var remaining = budget
        let r = regs
        batchBreak = false
        let start = cycles &+ (elapsed ?? 0)
        // The observer for this batch, loaded once: reading `self.observer` before every
        // instruction costs a retain and a release each time. An observer set during the batch
        // takes over at the next one (`observer`'s didSet ends the batch).
        let batchObserver = observing ? observer : nil
        // Without `observesInstructions`, the observing loop reports only `observedPCs`.
        let observesAll = observing && observesInstructions

        // Slow paths may call out (observers, the trap handler) and read the time
        // (`currentCycles`): publish it. Only the count lives in the loop; the instructions that
        // read the time do so out of line (`executeRare`), so that the time is not a second
        // induction variable kept in a register across the dispatch.
        @inline(__always) func sync() { batchRemaining = remaining }
        batchStart = start
        batchBudget = budget
        batchRemaining = budget
        inBatch = true
        defer { inBatch = false }
        // After a slow path (which had the count published): the position, and the count, which
        // a trap handler may have lowered by slots it emulated (`chargeEmulated`).
        @inline(__always) func reload() {
            remaining = batchRemaining
            pc = self.pc
            npc = self.npc
            delay = self.inDelaySlot
        }
        // To the next instruction: what every case but the branches and jumps does after it ran.
        @inline(__always) func advance() {
            pc = npc
            npc &+= 4
            delay = false
        }
        // A branch or jump: its delay slot (at npc) runs next, then the target.
        @inline(__always) func jump(_ target: UInt32) {
            pc = npc
            npc = target
            delay = true
        }
        // A conditional branch: the target is relative to the delay slot.
        @inline(__always) func branch(_ taken: Bool, _ offset: UInt32) {
            pc = npc
            npc = taken ? npc &+ offset : npc &+ 4
            delay = true
        }

        loop: while remaining > 0 {
            // Fetch: the page check folds in the alignment check.
            if _slowPath((pc & 0xFFFF_F003) != codeTag) {
                batchRemaining = remaining &- 1  // the slot is used if the fetch faults
                if !enterCodePage(pc, delay: delay) {
                    if outOfHostMemory { break loop }  // nothing ran: the slot is not used
                    remaining &-= 1
                    reload()
                    if batchBreak { break loop }
                    continue loop
                }
            }
            let slot = Int((pc >> 2) & 1023)
            // Decoded in memory, then read from there: no join of a decoded value in registers
            // with the fast path's loads (which cost register copies before the dispatch).
            if _slowPath(codeDecoded[slot].op == .undecoded) { decodeSlot(slot) }
            let d = codeDecoded[slot]
            if observing {
                if observerStopPC == pc {
                    observerStopPC = nil
                } else if let observer = batchObserver, observesAll || observedPCs.contains(pc) {
                    sync()
                    if case .stop = observer.cpu(self, willExecuteAt: pc) {
                        observerStopPC = pc
                        stopRequested = true
                        break loop
                    }
                }
            }
            // During the switch `pc` and `delay` are the instruction's own (for exceptions and
            // links); the cases advance them after it (`advance()` below the switch), branches
            // and jumps to their own targets (then `continue loop`). No copy of the old pc is
            // kept live across the dispatch.
            remaining &-= 1
            let rs = Int(d.rs), rt = Int(d.rt), rd = Int(d.rd)
            let imm = d.imm

            switch d.op {
            // MARK: ALU
            case .addiu: r[rd] = r[rs] &+ imm
            case .addu: r[rd] = r[rs] &+ r[rt]
            case .subu: r[rd] = r[rs] &- r[rt]
            case .and: r[rd] = r[rs] & r[rt]
            case .or: r[rd] = r[rs] | r[rt]
            case .xor: r[rd] = r[rs] ^ r[rt]
            case .nor: r[rd] = ~(r[rs] | r[rt])
            case .andi: r[rd] = r[rs] & imm
            case .ori: r[rd] = r[rs] | imm
            case .xori: r[rd] = r[rs] ^ imm
            case .lui: r[rd] = imm
            case .slt: r[rd] = Int32(bitPattern: r[rs]) < Int32(bitPattern: r[rt]) ? 1 : 0
            case .sltu: r[rd] = r[rs] < r[rt] ? 1 : 0
            case .slti: r[rd] = Int32(bitPattern: r[rs]) < Int32(bitPattern: imm) ? 1 : 0
            case .sltiu: r[rd] = r[rs] < imm ? 1 : 0
            case .sll: r[rd] = r[rt] << imm
            case .srl: r[rd] = r[rt] >> imm
            case .sra: r[rd] = UInt32(bitPattern: Int32(bitPattern: r[rt]) >> imm)
            case .rotr: r[rd] = r[rt] >> imm | r[rt] << ((32 &- imm) & 31)
            case .sllv: r[rd] = r[rt] &<< r[rs]
            case .srlv: r[rd] = r[rt] &>> r[rs]
            case .srav: r[rd] = UInt32(bitPattern: Int32(bitPattern: r[rt]) &>> r[rs])
            case .rotrv:
                let s = r[rs]
                r[rd] = r[rt] &>> s | r[rt] &<< (32 &- s)
            case .nop, .ssnop, .ehb, .pause, .sync, .pref, .synci: break
            case .add, .addi, .sub:
                let a = Int32(bitPattern: r[rs])
                let b = Int32(bitPattern: d.op == .addi ? imm : r[rt])
                let (v, o) = d.op == .sub ? a.subtractingReportingOverflow(b) : a.addingReportingOverflow(b)
                if o {
                    sync(); enterException(.overflow, pc: pc, inDelaySlot: delay)
                    reload()
                    if batchBreak { break loop }
                    continue loop
                }
                r[rd] = UInt32(bitPattern: v)
            case .movz: if r[rt] == 0 { r[rd] = r[rs] }
            case .movn: if r[rt] != 0 { r[rd] = r[rs] }
            case .mfhi: r[rd] = hi
            case .mflo: r[rd] = lo
            case .mthi: hi = r[rs]
            case .mtlo: lo = r[rs]
            case .mult:
                let p = Int64(Int32(bitPattern: r[rs])) &* Int64(Int32(bitPattern: r[rt]))
                lo = UInt32(truncatingIfNeeded: p)
                hi = UInt32(truncatingIfNeeded: p >> 32)
            case .multu:
                let p = UInt64(r[rs]) &* UInt64(r[rt])
                lo = UInt32(truncatingIfNeeded: p)
                hi = UInt32(truncatingIfNeeded: p >> 32)
            case .mul:
                r[rd] = UInt32(bitPattern: Int32(bitPattern: r[rs]) &* Int32(bitPattern: r[rt]))
            case .madd, .msub:
                let p = Int64(Int32(bitPattern: r[rs])) &* Int64(Int32(bitPattern: r[rt]))
                let acc = Int64(bitPattern: UInt64(hi) << 32 | UInt64(lo))
                let v = d.op == .madd ? acc &+ p : acc &- p
                lo = UInt32(truncatingIfNeeded: v)
                hi = UInt32(truncatingIfNeeded: v >> 32)
            case .maddu, .msubu:
                let p = UInt64(r[rs]) &* UInt64(r[rt])
                let acc = UInt64(hi) << 32 | UInt64(lo)
                let v = d.op == .maddu ? acc &+ p : acc &- p
                lo = UInt32(truncatingIfNeeded: v)
                hi = UInt32(truncatingIfNeeded: v >> 32)
            case .div:
                // As QEMU: a zero divisor, or INT_MIN / -1, divides by 1 instead.
                let a = Int32(bitPattern: r[rs])
                var b = Int32(bitPattern: r[rt])
                if b == 0 || (a == .min && b == -1) { b = 1 }
                lo = UInt32(bitPattern: a / b)
                hi = UInt32(bitPattern: a % b)
            case .divu:
                let a = r[rs]
                var b = r[rt]
                if b == 0 { b = 1 }
                lo = a / b
                hi = a % b
            case .clz: r[rd] = UInt32(truncatingIfNeeded: r[rs].leadingZeroBitCount)
            case .clo: r[rd] = UInt32(truncatingIfNeeded: (~r[rs]).leadingZeroBitCount)
            case .seb: r[rd] = UInt32(bitPattern: Int32(Int8(truncatingIfNeeded: r[rt])))
            case .seh: r[rd] = UInt32(bitPattern: Int32(Int16(truncatingIfNeeded: r[rt])))
            case .wsbh:
                let v = r[rt]
                r[rd] = (v & 0xFF00_FF00) >> 8 | (v & 0x00FF_00FF) << 8
            case .ext: r[rd] = (r[rs] &>> UInt32(truncatingIfNeeded: rt)) & imm
            case .ins:
                let pos = UInt32(truncatingIfNeeded: rt)
                r[rd] = (r[rd] & ~(imm &<< pos)) | ((r[rs] & imm) &<< pos)

            // MARK: Branches and jumps (the target is relative to the delay slot, at npc)
            case .beq: branch(r[rs] == r[rt], imm); continue loop
            case .bne: branch(r[rs] != r[rt], imm); continue loop
            case .blez: branch(Int32(bitPattern: r[rs]) <= 0, imm); continue loop
            case .bgtz: branch(Int32(bitPattern: r[rs]) > 0, imm); continue loop
            case .bltz: branch(Int32(bitPattern: r[rs]) < 0, imm); continue loop
            case .bgez: branch(Int32(bitPattern: r[rs]) >= 0, imm); continue loop
            case .bltzal:
                let taken = Int32(bitPattern: r[rs]) < 0
                r[31] = pc &+ 8
                branch(taken, imm)
                continue loop
            case .bgezal:
                let taken = Int32(bitPattern: r[rs]) >= 0
                r[31] = pc &+ 8
                branch(taken, imm)
                continue loop
            case .beql, .bnel, .blezl, .bgtzl, .bltzl, .bgezl, .bltzall, .bgezall:
                let a = r[rs]
                let s = Int32(bitPattern: a)
                let taken: Bool
                switch d.op {
                case .beql: taken = a == r[rt]
                case .bnel: taken = a != r[rt]
                case .blezl: taken = s <= 0
                case .bgtzl: taken = s > 0
                case .bltzl, .bltzall: taken = s < 0
                default: taken = s >= 0
                }
                if d.op == .bltzall || d.op == .bgezall { r[31] = pc &+ 8 }
                if taken {
                    branch(true, imm)
                } else {
                    pc = npc &+ 4  // nullify the delay slot
                    npc = pc &+ 4
                    delay = false
                }
                continue loop
            case .j: jump((npc & 0xF000_0000) | imm); continue loop
            case .jal: r[31] = pc &+ 8; jump((npc & 0xF000_0000) | imm); continue loop
            case .jr, .jrhb: jump(r[rs]); continue loop
            case .jalr, .jalrhb:
                let target = r[rs]
                r[rd] = pc &+ 8
                jump(target)
                continue loop

            // MARK: Loads and stores
            case .lw:
                let va = r[rs] &+ imm
                let e = currentSoftTLB[Int((va >> 12) & 255)]
                if _fastPath(e.tag == va & 0xFFFF_F003) {
                    r[rd] = UnsafeRawPointer(bitPattern: e.addend &+ UInt(va)).unsafelyUnwrapped.load(as: UInt32.self)
                } else {
                    sync(); guard let v = slowLoad(va, size: 4, pc: pc, delay: delay) else { reload(); if batchBreak { break loop }; continue loop }
                    r[rd] = v
                    if batchBreak { advance(); break loop }
                }
            case .lb, .lbu:
                let va = r[rs] &+ imm
                let e = currentSoftTLB[Int((va >> 12) & 255)]
                var v: UInt32
                if _fastPath(e.tag == va & 0xFFFF_F000) {
                    v = UInt32(UnsafeRawPointer(bitPattern: e.addend &+ UInt(va)).unsafelyUnwrapped.load(as: UInt8.self))
                } else {
                    sync(); guard let s = slowLoad(va, size: 1, pc: pc, delay: delay) else { reload(); if batchBreak { break loop }; continue loop }
                    v = s
                }
                if d.op == .lb { v = UInt32(bitPattern: Int32(Int8(truncatingIfNeeded: v))) }
                r[rd] = v
                if batchBreak { advance(); break loop }
            case .lh, .lhu:
                let va = r[rs] &+ imm
                let e = currentSoftTLB[Int((va >> 12) & 255)]
                var v: UInt32
                if _fastPath(e.tag == va & 0xFFFF_F001) {
                    v = UInt32(UnsafeRawPointer(bitPattern: e.addend &+ UInt(va)).unsafelyUnwrapped.load(as: UInt16.self))
                } else {
                    sync(); guard let s = slowLoad(va, size: 2, pc: pc, delay: delay) else { reload(); if batchBreak { break loop }; continue loop }
                    v = s
                }
                if d.op == .lh { v = UInt32(bitPattern: Int32(Int16(truncatingIfNeeded: v))) }
                r[rd] = v
                if batchBreak { advance(); break loop }
            case .sw:
                let va = r[rs] &+ imm
                let e = currentSoftTLB[256 + Int((va >> 12) & 255)]
                if _fastPath(e.tag == va & 0xFFFF_F003) {
                    UnsafeMutableRawPointer(bitPattern: e.addend &+ UInt(va)).unsafelyUnwrapped.storeBytes(of: r[rt], as: UInt32.self)
                } else {
                    sync(); guard slowStore(va, size: 4, value: r[rt], pc: pc, delay: delay) else { reload(); if batchBreak { break loop }; continue loop }
                    if batchBreak { advance(); break loop }
                }
            case .sb:
                let va = r[rs] &+ imm
                let e = currentSoftTLB[256 + Int((va >> 12) & 255)]
                if _fastPath(e.tag == va & 0xFFFF_F000) {
                    UnsafeMutableRawPointer(bitPattern: e.addend &+ UInt(va)).unsafelyUnwrapped.storeBytes(of: UInt8(truncatingIfNeeded: r[rt]), as: UInt8.self)
                } else {
                    sync(); guard slowStore(va, size: 1, value: r[rt], pc: pc, delay: delay) else { reload(); if batchBreak { break loop }; continue loop }
                    if batchBreak { advance(); break loop }
                }
            case .sh:
                let va = r[rs] &+ imm
                let e = currentSoftTLB[256 + Int((va >> 12) & 255)]
                if _fastPath(e.tag == va & 0xFFFF_F001) {
                    UnsafeMutableRawPointer(bitPattern: e.addend &+ UInt(va)).unsafelyUnwrapped.storeBytes(of: UInt16(truncatingIfNeeded: r[rt]), as: UInt16.self)
                } else {
                    sync(); guard slowStore(va, size: 2, value: r[rt], pc: pc, delay: delay) else { reload(); if batchBreak { break loop }; continue loop }
                    if batchBreak { advance(); break loop }
                }
            // MARK: The rare instructions, out of line (fewer values live in the hot switch)
            case .lwl, .lwr, .swl, .swr, .ll, .sc, .cache,
                 .tge, .tgeu, .tlt, .tltu, .teq, .tne, .tgei, .tgeiu, .tlti, .tltiu, .teqi, .tnei,
                 .syscall, .break, .rdhwr,
                 .mfc0, .mtc0, .di, .ei, .tlbr, .tlbwi, .tlbwr, .tlbp, .eret, .wait, .rdpgpr, .wrpgpr,
                 .cop, .reserved, .deret, .sdbbp:
                sync()
                guard executeRare(pc: pc, delay: delay) else { reload(); if batchBreak { break loop }; continue loop }
                if batchBreak { advance(); break loop }
            case .undecoded:
                fatalError("undecoded instruction reached dispatch")
            }
            advance()
        }
        let used = budget &- remaining
        if elapsed == nil { cycles &+= used }
        self.pc = pc
        self.npc = npc
        self.inDelaySlot = delay
        return used
    }

    /// The instructions too rare to keep in the loop's switch (unaligned and linked loads and
    /// stores, CACHE, traps, system calls, RDHWR, CP0 and coprocessor instructions): executed
    /// with the batch's count already published (`batchRemaining`). Returns false when the
    /// instruction took an exception or returned from one (the new pc is in `self`); true when it
    /// completed (the loop then advances; `batchBreak` may be set).
    @inline(__always)
    func executeRare(pc: UInt32, delay: Bool) -> Bool {
        executeRare(codeDecoded[Int((pc >> 2) & 1023)], pc: pc, delay: delay)
    }

    /// `executeRare` for the decoded instruction `d` at `pc` (also called from translated code).
    @inline(never)
    func executeRare(_ d: DecodedInstruction, pc: UInt32, delay: Bool) -> Bool {
        let r = regs
        let rs = Int(d.rs), rt = Int(d.rt), rd = Int(d.rd)
        let imm = d.imm
        switch d.op {
        case .lwl, .lwr:
            let va = r[rs] &+ imm
            let e = currentSoftTLB[Int((va >> 12) & 255)]
            let w: UInt32
            if _fastPath(e.tag == va & 0xFFFF_F000) {
                w = UnsafeRawPointer(bitPattern: e.addend &+ UInt(va & ~3)).unsafelyUnwrapped.load(as: UInt32.self)
            } else {
                guard let s = wordContaining(va, kind: .load, pc: pc, delay: delay) else { return false }
                w = s
            }
            let b = (va & 3) &* 8
            if d.op == .lwl {
                let keep: UInt32 = b == 24 ? 0 : 0xFFFF_FFFF &>> (b &+ 8)
                r[rd] = (w &<< (24 &- b)) | (r[rd] & keep)
            } else {
                let keep: UInt32 = b == 0 ? 0 : ~(0xFFFF_FFFF &>> b)
                r[rd] = (w &>> b) | (r[rd] & keep)
            }
        case .swl, .swr:
            let va = r[rs] &+ imm
            let aligned = va & ~3
            // Translate for a store first, so a read-only page faults as a store.
            guard let w = wordContaining(va, kind: .store, pc: pc, delay: delay) else { return false }
            let b = (va & 3) &* 8
            let v = r[rt]
            let merged: UInt32
            if d.op == .swl {
                let keep: UInt32 = b == 24 ? 0 : ~(0xFFFF_FFFF &>> (24 &- b))
                merged = (w & keep) | (v &>> (24 &- b))
            } else {
                let keep: UInt32 = b == 0 ? 0 : 0xFFFF_FFFF &>> (32 &- b)
                merged = (w & keep) | (v &<< b)
            }
            guard slowStore(aligned, size: 4, value: merged, pc: pc, delay: delay) else { return false }
        case .ll:
            let va = r[rs] &+ imm
            guard let v = loadWord(va, pc: pc, delay: delay) else { return false }
            r[rd] = v
            llBit = true
            llVirtual = va
            llValue = v
            cp0.llAddr = (physicalAddress(of: va) ?? 0) >> 4
        case .sc:
            let va = r[rs] &+ imm
            if !memoryWatches.isEmpty && stopsBeforeAccess(va, size: 4, value: r[rt], write: true, pc: pc, delay: delay) { return false }
            if va & 3 != 0 {
                enterException(.addressErrorStore, pc: pc, inDelaySlot: delay, badVAddr: va)
                return false
            }
            var ok: UInt32 = 0
            if llBit && va == llVirtual {
                guard let current = wordContaining(va, kind: .store, pc: pc, delay: delay) else { return false }
                if current == llValue {
                    guard slowStore(va, size: 4, value: r[rt], pc: pc, delay: delay) else { return false }
                    ok = 1
                }
            }
            llBit = false
            r[rd] = ok
        case .cache:
            if mode != .kernel && cp0.status & StatusBits.cu0 == 0 {
                if let done = emulatePrivileged(d, pc: pc, delay: delay) { return done }
                enterException(.coprocessorUnusable, pc: pc, inDelaySlot: delay)
                return false
            }

        // MARK: Traps and system
        case .tge, .tgeu, .tlt, .tltu, .teq, .tne, .tgei, .tgeiu, .tlti, .tltiu, .teqi, .tnei:
            let a = r[rs]
            let b: UInt32
            switch d.op {
            case .tge, .tgeu, .tlt, .tltu, .teq, .tne: b = r[rt]
            default: b = imm
            }
            let sa = Int32(bitPattern: a), sb = Int32(bitPattern: b)
            let taken: Bool
            switch d.op {
            case .tge, .tgei: taken = sa >= sb
            case .tgeu, .tgeiu: taken = a >= b
            case .tlt, .tlti: taken = sa < sb
            case .tltu, .tltiu: taken = a < b
            case .teq, .teqi: taken = a == b
            default: taken = a != b
            }
            if taken {
                enterException(.trap, pc: pc, inDelaySlot: delay)
                return false
            }
        case .syscall, .break:
            if let done = emulatePrivileged(d, pc: pc, delay: delay) { return done }
            enterException(d.op == .syscall ? .syscall : .breakpoint, pc: pc, inDelaySlot: delay)
            return false
        case .rdhwr:
            let cp0Usable = mode == .kernel || cp0.status & StatusBits.cu0 != 0
            guard let reg = HardwareRegister(rawValue: d.rs), reg.readable(cp0Usable: cp0Usable, hwrEna: cp0.hwrEna) else {
                enterException(.reservedInstruction, pc: pc, inDelaySlot: delay)
                return false
            }
            switch reg {
            case .cpuNum: r[rd] = cp0.ebase & 0x3FF
            case .synciStep: r[rd] = HardwareRegister.synciStepBytes
            case .cc: r[rd] = countAt(currentCycles)
            case .ccRes: r[rd] = UInt32(configuration.instructionsPerCountTick)
            }

        // MARK: Coprocessor 0 (privileged unless CU0)
        case .mfc0, .mtc0, .di, .ei, .tlbr, .tlbwi, .tlbwr, .tlbp, .eret, .wait, .rdpgpr, .wrpgpr:
            if mode != .kernel && cp0.status & StatusBits.cu0 == 0 {
                if let done = emulatePrivileged(d, pc: pc, delay: delay) { return done }
                enterException(.coprocessorUnusable, pc: pc, inDelaySlot: delay)
                return false
            }
            switch d.op {
            case .mfc0: r[rd] = readCP0(Int(imm & 31), Int(imm >> 5), now: currentCycles)
            case .mtc0: writeCP0(Int(imm & 31), Int(imm >> 5), r[rt], now: currentCycles, pc: pc)
            case .di, .ei:
                r[rd] = cp0.status
                if d.op == .di { cp0.status &= ~StatusBits.ie } else { cp0.status |= StatusBits.ie }
                batchBreak = true
            case .rdpgpr, .wrpgpr: r[rd] = r[rt]  // one shadow set: the current one
            case .tlbr: tlbRead()
            case .tlbwi: tlbWrite(Int((cp0.index & 0x7FFF_FFFF) % UInt32(configuration.tlbEntries)), pc: pc)
            case .tlbwr: tlbWrite(Int(randomAt(currentCycles)), pc: pc)
            case .tlbp: tlbProbe()
            case .eret:
                executeEret(pc: pc)
                return false
            default:  // wait
                waiting = true
                batchBreak = true
            }
        case .cop:
            enterException(.coprocessorUnusable, pc: pc, inDelaySlot: delay, coprocessor: UInt32(rt))
            return false
        case .reserved, .deret, .sdbbp:
            enterException(.reservedInstruction, pc: pc, inDelaySlot: delay)
            return false
        default:
            preconditionFailure("\(d.op) is executed in the loop")
        }
        return true
    }

    /// Decodes the word in `slot` of the current code page into its decoded slot.
    @inline(never)
    func decodeSlot(_ slot: Int) { codeDecoded[slot] = decode(codeHost[slot]) }

    /// An aligned word load through the software TLB, falling back to the slow path.
    @inline(__always)
    func loadWord(_ va: UInt32, pc: UInt32, delay: Bool) -> UInt32? {
        let e = currentSoftTLB[Int((va >> 12) & 255)]
        if _fastPath(e.tag == va & 0xFFFF_F003) {
            return UnsafeRawPointer(bitPattern: e.addend &+ UInt(va)).unsafelyUnwrapped.load(as: UInt32.self)
        }
        return slowLoad(va, size: 4, pc: pc, delay: delay)
    }

    /// The aligned word containing `va`, translated for a load or a store (LWL/LWR/SWL/SWR/SC):
    /// a fault reports `va` itself as BadVAddr, as QEMU and the manual do.
    @inline(never)
    func wordContaining(_ va: UInt32, kind: AccessKind, pc: UInt32, delay: Bool) -> UInt32? {
        if !memoryWatches.isEmpty && stopsBeforeAccess(va & ~3, size: 4, value: 0, write: kind == .store, pc: pc, delay: delay) { return nil }
        let t = translate(va, kind)
        guard case .physical(let pa) = t else {
            raiseTranslationFault(t, va: va, kind: kind, pc: pc, delay: delay)
            return nil
        }
        let aligned = pa & ~3
        if let page = bus.ramPage(frame: aligned >> 12) {
            return (page + Int(aligned & 0xFFF)).load(as: UInt32.self)
        }
        busAccessPC = pc
        guard let v = bus.read(aligned, size: 4) else {
            enterException(.busErrorData, pc: pc, inDelaySlot: delay)
            return nil
        }
        return v
    }
}
