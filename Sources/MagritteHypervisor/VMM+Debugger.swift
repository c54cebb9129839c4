import MagritteCore

/// What a debugger (the GDB stub) changes in a guest, next to what VMM+Control.swift reads:
/// registers and memory, as the guest itself would write them.
extension VMM {
    /// Sets general register `n` (1...31; 0 stays 0) of `g`.
    public func setRegister(of g: Guest, _ n: Int, _ value: UInt32) {
        precondition((0..<32).contains(n), "GPR number out of range")
        guard n != 0 else { return }
        changesByHand &+= 1
        if current === g { cpu.setGPR(n, value) } else { g.gprs[n] = value }
    }

    /// Sets HI and LO of `g`.
    public func setHiLo(of g: Guest, hi: UInt32, lo: UInt32) {
        changesByHand &+= 1
        if current === g {
            cpu.hi = hi
            cpu.lo = lo
        } else {
            g.hi = hi
            g.lo = lo
        }
    }

    /// Makes `g` continue at `pc` (not in a delay slot), as a debugger's jump.
    public func setPC(of g: Guest, _ pc: UInt32) {
        changesByHand &+= 1
        if current === g {
            cpu.setPosition(pc: pc, npc: pc &+ 4, inDelaySlot: false)
        } else {
            g.pc = pc
            g.npc = pc &+ 4
            g.inDelaySlot = false
        }
    }

    /// Per-instruction observation of some guests only (`instructionObservedGuests`: Lua's
    /// instruction hooks, a guest's step back): the CPU observes every instruction while one of
    /// them is loaded, and the others run at full speed (translated). Called when the guest on
    /// the CPU or the set changes.
    func observeInstructionsOfCurrentGuest() {
        guard let observed = instructionObservedGuests else { return }
        cpu.observesInstructions = current.map { observed.contains($0.index) } ?? false
    }
}
