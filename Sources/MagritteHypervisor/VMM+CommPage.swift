import MagritteCore

/// A guest's comm page (Docs/hypercalls.md, function 5): one page of the guest's own RAM in
/// which the VMM keeps the guest's hot virtual CP0 registers, so that its kernel reads and writes
/// them with loads and stores instead of trapping `mfc0`/`mtc0` (Disco's and KVM/MIPS's comm
/// page, the lecture's para-virtualization).
///
/// The whole state is the page's guest-physical address (what a snapshot keeps): the page's
/// contents live in guest RAM. Whenever the VMM (not the guest) has control, the virtual CP0
/// (`Guest.cp0`) is the truth: the guest's stores are taken when the VMM gets control
/// (`commPageIn`), and the page is brought up to date before the guest runs again
/// (`commPageOut`).
public struct CommPage: Sendable, Equatable {
    /// Guest-physical address of the page: 4 KiB aligned, inside the guest's RAM.
    public let address: UInt32

    public init(address: UInt32) { self.address = address }

    /// The page's first word, written once when it is mapped: 'MGCP'.
    public static let magic: UInt32 = 0x5043_474D
    /// The layout's version, the page's second word.
    public static let version: UInt32 = 1
    /// The registers the page holds, one little-endian word each from byte 8 on, in this order.
    /// `mask`: the bits a guest's `mtc0` changes (a change of any other bit in the page is
    /// ignored and undone).
    static let registers: [(number: Int, select: Int, mask: UInt32)] =
        [CP0Register.index, .entryLo0, .entryLo1, .context, .pageMask, .badVAddr, .entryHi, .status, .cause, .epc, .errorEPC]
        .map { ($0.number, $0.select, $0.writeMask) }
    /// Byte offset of the first register.
    static let firstRegister: UInt32 = 8
    /// Bytes the VMM owns at the start of the page; the rest is the guest's own.
    public static var vmmBytes: UInt32 { firstRegister + 4 * UInt32(registers.count) }

    /// What function 5 answers: 0 when the page is mapped.
    static let mapped: UInt32 = 0
    /// The address is not a 4 KiB-aligned page of the guest's RAM (-2).
    static let badAddress: UInt32 = 0xFFFF_FFFE
    /// The guest already has a comm page (-3); the first one stays.
    static let alreadyMapped: UInt32 = 0xFFFF_FFFD
}

extension VMM {
    /// Function 5: makes the page at guest-physical `address` the guest's comm page. Returns
    /// `CommPage.mapped`, `.badAddress` or `.alreadyMapped` (nothing changes then).
    func mapCommPage(_ g: Guest, _ address: UInt32) -> UInt32 {
        guard g.commPage == nil else { return CommPage.alreadyMapped }
        guard address & 0xFFF == 0, let base = g.machineAddress(address) else { return CommPage.badAddress }
        g.commPage = CommPage(address: address)
        refreshInlineCP0()
        _ = cpu.writePhysical(base, size: 4, value: CommPage.magic)
        _ = cpu.writePhysical(base &+ 4, size: 4, value: CommPage.version)
        commPageOut(g)
        return CommPage.mapped
    }

    /// The guest's writes to its comm page become the virtual CP0's, each as the `mtc0` of that
    /// register would (its write mask and side effects: a Status write changes the mode, an ASID
    /// change in EntryHi the physical ASID, …). Called when the VMM takes control: on every exit
    /// before it emulates anything, and after every quantum of guest execution.
    func commPageIn(_ g: Guest) {
        guard let p = commPagePointer(g) else { return }
        for i in 0..<CommPage.registers.count {
            let r = CommPage.registers[i]
            let v = UInt32(littleEndian: p.load(fromByteOffset: 4 * i, as: UInt32.self))
            if (v ^ commRegister(g, i)) & r.mask != 0 { writeVirtualCP0(g, r.number, r.select, v) }
        }
    }

    /// Writes the virtual CP0 registers into the comm page as the guest's `mfc0` would read them
    /// now (only the words that differ are stored). Called whenever the guest is about to run:
    /// at the end of every exit and before every quantum.
    func commPageOut(_ g: Guest) {
        guard let page = g.commPage, let p = commPagePointer(g) else { return }
        var changed = false
        for i in 0..<CommPage.registers.count {
            let v = commRegister(g, i).littleEndian
            if p.load(fromByteOffset: 4 * i, as: UInt32.self) != v {
                p.storeBytes(of: v, toByteOffset: 4 * i, as: UInt32.self)
                changed = true
            }
        }
        // Code on the page (a guest may put it there) must be decoded again.
        if changed { cpu.invalidateCode(physical: g.memoryBase &+ page.address, length: Int(CommPage.vmmBytes)) }
    }

    /// Host memory of the page's first register (RAM is one block for the VMM's lifetime).
    @inline(__always)
    func commPagePointer(_ g: Guest) -> UnsafeMutableRawPointer? {
        guard let page = g.commPage, let frame = bus.ramPage(frame: (g.memoryBase &+ page.address) >> 12) else { return nil }
        return frame + Int(CommPage.firstRegister)
    }

    /// Register `i` of the page (the order of `CommPage.registers`) as the guest's `mfc0` reads
    /// it now: the virtual CP0's fields, read directly (this runs twice on every exit).
    @inline(__always)
    func commRegister(_ g: Guest, _ i: Int) -> UInt32 {
        switch i {
        case 0: return g.cp0.index
        case 1: return g.cp0.entryLo0
        case 2: return g.cp0.entryLo1
        case 3: return g.cp0.context
        case 4: return g.cp0.pageMask
        case 5: return g.cp0.badVAddr
        case 6: return g.cp0.entryHi
        case 7: return g.cp0.status
        case 8:
            updateTimer(g)  // as mfc0 Cause: TI shows once Count has reached Compare
            return virtualCause(g)
        case 9: return g.cp0.epc
        default: return g.cp0.errorEPC
        }
    }
}
