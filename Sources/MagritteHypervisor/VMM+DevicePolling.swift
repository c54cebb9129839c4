import MagritteCore
import MagritteMachine

/// Device polling in fewer exits (issue 12; Docs/vmm.md, "Device polling").
///
/// Device registers are never mapped, so every access a guest makes to one is an exit. A guest
/// that polls a device — Linux reading the RTC's register A in a loop while it calibrates its
/// clock, a driver waiting for a UART's status bit — makes two exits per turn of a loop of a few
/// plain instructions. After an emulated device access the VMM therefore goes on emulating the
/// guest's next instructions in the same exit while they are plain (ALU, branches and jumps,
/// loads and stores to RAM mapped in the physical TLB now, further device accesses) and the
/// guest keeps touching devices: it stops before anything else (a miss, a store to a clean page
/// or to a page of code, a privileged or trapping instruction, a branch in a delay slot, a device
/// access in a delay slot), at the quantum's end, or `pollWindow` instructions after the last
/// device access.
///
/// Nothing the guest can see changes: each instruction uses its own slot of machine time
/// (`CPU.accountEmulated`), so Count, the devices' clocks and the quantum see it at the same
/// instruction; a device access counts as emulated and the others as retired, as when the CPU ran
/// them and the accesses trapped; the device events are recorded as before (only their `trap`
/// events and their exits are gone); an interrupt a device access raises is taken right after it.
extension VMM {
    /// Instructions without a device access after which an exit stops emulating: the polling
    /// loops seen (the RTC's, a UART's) touch a device every 8 to 16 instructions.
    static let pollWindow = 48

    /// Goes on after the device access the CPU is positioned after (not in a delay slot), as
    /// described above.
    func continuePolling(_ g: Guest) {
        guard pollsDevices, g.state == .runnable, g.inKernelMode, g.commPage == nil, !sliceEnd, !stopRequested,
              cpu.observer == nil, cpu.memoryWatches.isEmpty, !cpu.inDelaySlot else { return }
        let start = now
        guard start < quantumEnd else { return }
        let room = quantumEnd &- start
        var pc = cpu.pc, npc = cpu.npc, delay = false
        var pages = PollPages()
        var emulated: UInt64 = 0  // slots used so far
        var accounted: UInt64 = 0, faulted: UInt64 = 0
        var accesses: UInt64 = 0
        var sinceDevice = 0
        defer {
            if emulated > 0 {
                cpu.accountEmulated(slots: emulated &- accounted, faulted: faulted)
                g.statistics.polledInstructions &+= emulated
                g.statistics.polledDeviceAccesses &+= accesses
                exitClustered &+= emulated
                // The CPU's budget for this quantum did not count these slots: end its run here
                // (`runSlice` runs the rest of the quantum).
                clusterEndedRun = true
                cpu.requestStop()
            }
        }
        // To the next instruction in sequence after one emulated here (not a branch).
        func step() {
            emulated &+= 1
            sinceDevice &+= 1
            pc = npc
            npc &+= 4
            delay = false
        }
        func reg(_ n: UInt8) -> UInt32 { n < 32 ? cpu.gpr(Int(n)) : 0 }
        func set(_ n: UInt8, _ v: UInt32) { if n < 32 { cpu.setGPR(Int(n), v) } }
        while emulated < room && sinceDevice < VMM.pollWindow {
            guard pc & 3 == 0, let code = pages.page(pc, self).base else { break }
            let op = pollCache.instruction(code.load(fromByteOffset: Int(pc & 0xFFF), as: UInt32.self))
            let d = op.decoded
            let rs = reg(d.rs), rt = reg(d.rt)
            switch op.kind {
            case .other:
                break  // left to the CPU
            case .alu:
                guard let v = VMM.plainResult(d, rs: rs, rt: rt, old: reg(d.rd), hi: cpu.hi, lo: cpu.lo) else { break }
                set(d.rd, v)
                step()
                continue
            case .branch, .likelyBranch:
                guard !delay else { break }  // a branch in a delay slot: the CPU's business
                let taken: Bool, target: UInt32
                switch op.branch.kind {
                case .conditional, .conditionalLikely:
                    taken = op.branch.condition.holds(rs: rs, rt: rt)
                    target = taken ? pc &+ 4 &+ d.imm : pc &+ 8
                case .jump: (taken, target) = (true, ((pc &+ 4) & 0xF000_0000) | d.imm)
                case .jumpRegister: (taken, target) = (true, rs)
                case .none: (taken, target) = (false, pc &+ 8)
                }
                if op.branch.links { set(d.rd, pc &+ 8) }
                emulated &+= 1
                sinceDevice &+= 1
                if op.kind == .likelyBranch && !taken {
                    pc = npc &+ 4  // the delay slot is nullified
                    npc = pc &+ 4
                } else {
                    pc = npc  // the delay slot, then the target
                    npc = target
                    delay = true
                }
                continue
            case .load, .store:
                let va = rs &+ d.imm
                let size = Int(op.size)
                guard va & UInt32(size &- 1) == 0 else { break }  // an address error: the CPU raises it
                let page = pages.page(va, self)
                if let base = page.base {
                    let p = base + Int(va & 0xFFF)
                    if op.kind == .store {
                        // A store to a clean page (TLB Modified) or to decoded code is the CPU's.
                        guard page.writable else { break }
                        switch size {
                        case 1: p.storeBytes(of: UInt8(truncatingIfNeeded: rt), as: UInt8.self)
                        case 2: p.storeBytes(of: UInt16(truncatingIfNeeded: rt), as: UInt16.self)
                        default: p.storeBytes(of: rt, as: UInt32.self)
                        }
                    } else {
                        let v: UInt32
                        switch (size, op.signed) {
                        case (1, false): v = UInt32(p.load(as: UInt8.self))
                        case (1, true): v = UInt32(bitPattern: Int32(p.load(as: Int8.self)))
                        case (2, false): v = UInt32(p.load(as: UInt16.self))
                        case (2, true): v = UInt32(bitPattern: Int32(p.load(as: Int16.self)))
                        default: v = p.load(as: UInt32.self)
                        }
                        set(d.rd, v)
                    }
                    step()
                    continue
                }
                // The CPU would trap here and the VMM emulate the access: do it in this exit.
                guard !delay, let gpa = deviceAddress(g, va, store: op.kind == .store) else { break }
                emulated &+= 1
                faulted &+= 1
                cpu.accountEmulated(slots: emulated &- accounted, faulted: faulted)
                accounted = emulated
                faulted = 0
                accesses &+= 1
                cpu.setPosition(pc: pc, npc: npc, inDelaySlot: false)
                let trap = Trap(code: op.kind == .store ? .tlbStore : .tlbLoad, pc: pc, inDelaySlot: false, badVAddr: va,
                                isTranslationFault: true)
                guard deviceAccess(g, d, trap, gpa: gpa, size: size, signed: op.signed, isStore: op.kind == .store) else { return }  // a bus error, reflected
                cpu.setPosition(pc: npc, npc: npc &+ 4, inDelaySlot: false)
                if g.state == .runnable { deliverInterrupt(g) }
                guard g.state == .runnable, cpu.pc == npc, !sliceEnd, !stopRequested else { return }
                pc = npc
                npc = pc &+ 4
                sinceDevice = 0
                continue
            }
            break
        }
        cpu.setPosition(pc: pc, npc: npc, inDelaySlot: delay)
    }

    /// The value an ALU instruction that cannot trap writes to its destination (`old`: the
    /// destination's value, for INS, MOVZ and MOVN); nil for every other instruction.
    static func plainResult(_ d: DecodedInstruction, rs: UInt32, rt: UInt32, old: UInt32, hi: UInt32, lo: UInt32) -> UInt32? {
        let imm = d.imm
        switch d.op {
        case .addiu: return rs &+ imm
        case .addu: return rs &+ rt
        case .subu: return rs &- rt
        case .and: return rs & rt
        case .or: return rs | rt
        case .xor: return rs ^ rt
        case .nor: return ~(rs | rt)
        case .andi: return rs & imm
        case .ori: return rs | imm
        case .xori: return rs ^ imm
        case .lui: return imm
        case .slt: return Int32(bitPattern: rs) < Int32(bitPattern: rt) ? 1 : 0
        case .sltu: return rs < rt ? 1 : 0
        case .slti: return Int32(bitPattern: rs) < Int32(bitPattern: imm) ? 1 : 0
        case .sltiu: return rs < imm ? 1 : 0
        case .sll: return rt << imm
        case .srl: return rt >> imm
        case .sra: return UInt32(bitPattern: Int32(bitPattern: rt) >> imm)
        case .rotr: return rt >> imm | rt << ((32 &- imm) & 31)
        case .sllv: return rt &<< rs
        case .srlv: return rt &>> rs
        case .srav: return UInt32(bitPattern: Int32(bitPattern: rt) &>> rs)
        case .rotrv: return rt &>> rs | rt &<< (32 &- rs)
        case .movz: return rt == 0 ? rs : old
        case .movn: return rt != 0 ? rs : old
        case .mfhi: return hi
        case .mflo: return lo
        case .mul: return UInt32(bitPattern: Int32(bitPattern: rs) &* Int32(bitPattern: rt))
        case .clz: return UInt32(truncatingIfNeeded: rs.leadingZeroBitCount)
        case .clo: return UInt32(truncatingIfNeeded: (~rs).leadingZeroBitCount)
        case .seb: return UInt32(bitPattern: Int32(Int8(truncatingIfNeeded: rt)))
        case .seh: return UInt32(bitPattern: Int32(Int16(truncatingIfNeeded: rt)))
        case .wsbh: return (rt & 0xFF00_FF00) >> 8 | (rt & 0x00FF_00FF) << 8
        case .ext: return (rs &>> UInt32(truncatingIfNeeded: d.rt)) & imm
        case .ins:
            let pos = UInt32(truncatingIfNeeded: d.rt)
            return (old & ~(imm &<< pos)) | ((rs & imm) &<< pos)
        case .nop, .ssnop, .ehb, .pause, .sync: return old
        default: return nil
        }
    }
}

/// An instruction word as the polling emulator needs it, decoded once (`PollCache`): what it is
/// for the emulator, from the instruction table (no table lookup per instruction).
struct PolledInstruction {
    enum Kind: UInt8 {
        /// Anything the emulator leaves to the CPU.
        case other
        /// An ALU instruction that cannot trap (`VMM.plainResult`).
        case alu
        /// A plain load or store (not LWL/LWR/SWL/SWR, LL, SC).
        case load, store
        case branch, likelyBranch
    }
    var word: UInt32 = 0
    var decoded = DecodedInstruction(op: .undecoded)
    var kind = Kind.other
    var size: UInt8 = 0
    var signed = false
    var branch = BranchInfo.none

    init() {}

    init(_ w: UInt32) {
        word = w
        decoded = decode(w)
        let info = decoded.op.info
        if let m = info.memory {
            guard m.kind == .plain else { return }
            kind = m.isStore ? .store : .load
            size = UInt8(m.size)
            signed = m.signed
        } else if info.branch.kind != .none {
            branch = info.branch
            kind = info.branch.kind == .conditionalLikely ? .likelyBranch : .branch
        } else if VMM.plainResult(decoded, rs: 0, rt: 0, old: 0, hi: 0, lo: 0) != nil {
            kind = .alu
        }
    }
}

/// Polled instructions by word, direct-mapped (a polling loop is a few dozen words; decoding
/// and the table's facts cost more than the emulation of most of them).
final class PollCache {
    static let entries = 1024
    let table: UnsafeMutablePointer<PolledInstruction>

    init() {
        table = .allocate(capacity: PollCache.entries)
        table.initialize(repeating: PolledInstruction(), count: PollCache.entries)
        table[0] = PolledInstruction(0)  // word 0 (nop) is the one whose empty entry would match
    }

    deinit { table.deallocate() }

    @inline(__always)
    func instruction(_ w: UInt32) -> PolledInstruction {
        let i = Int((w ^ w >> 10 ^ w >> 21) & UInt32(PollCache.entries &- 1))
        if table[i].word != w { table[i] = PolledInstruction(w) }  // an empty entry holds word 0 (index 0)
        return table[i]
    }
}

/// The few pages a polling loop touches, as the physical CPU reaches them now (its TLB, mirrored
/// in `VMM.physicalTLB`, does not change while the VMM emulates): virtual page → host address,
/// and whether the VMM may store there itself (a dirty entry, no decoded code in the frame).
struct PollPages {
    struct Page {
        var tag: UInt32 = 1  // never a page address
        var base: UnsafeMutableRawPointer?
        var writable = false
    }
    var pages = (Page(), Page(), Page(), Page())
    var next = 0

    /// The page of `va` (its `base` nil when the physical CPU would miss there or reach no RAM).
    mutating func page(_ va: UInt32, _ vmm: VMM) -> Page {
        let tag = va & ~0xFFF
        if pages.0.tag == tag { return pages.0 }
        if pages.1.tag == tag { return pages.1 }
        if pages.2.tag == tag { return pages.2 }
        if pages.3.tag == tag { return pages.3 }
        var p = Page(tag: tag)
        if let m = vmm.physicalMapping(tag), let base = vmm.bus.ramPage(frame: m.address >> 12) {
            p.base = base
            p.writable = m.dirty && !vmm.cpu.holdsCode(frame: m.address >> 12)
        }
        switch next {
        case 0: pages.0 = p
        case 1: pages.1 = p
        case 2: pages.2 = p
        default: pages.3 = p
        }
        next = (next + 1) & 3
        return p
    }
}
