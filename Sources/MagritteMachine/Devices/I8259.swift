import MagritteCore

/// The PIIX4's two cascaded Intel 8259A programmable interrupt controllers, as QEMU models them
/// (`hw/intc/i8259.c`): the slave's output drives the master's IRQ 2, the master's output is
/// the Malta's CPU hardware interrupt 0 (Cause.IP2).
///
/// ISA ports: master 0x20–0x21, slave 0xA0–0xA1, edge/level control (ELCR) 0x4D0–0x4D1 (`elcr`
/// device). Linux on the Malta initialises both with ICW1–ICW4 (vector bases 0 and 8), masks
/// with OCW1, sends specific and non-specific EOIs, and finds the pending interrupt with a PCI
/// interrupt-acknowledge cycle through the GT-64120 (`acknowledge()`), not with the poll
/// command — both are here.
public final class I8259Pair {
    /// One 8259A.
    public final class Controller: Device {
        public let isMaster: Bool
        // Register state, named as in QEMU's PICCommonState.
        public fileprivate(set) var irr: UInt8 = 0
        public fileprivate(set) var imr: UInt8 = 0
        public fileprivate(set) var isr: UInt8 = 0
        /// Input line levels (for edge detection).
        public fileprivate(set) var lastIRR: UInt8 = 0
        public fileprivate(set) var elcr: UInt8 = 0
        let elcrMask: UInt8
        public fileprivate(set) var irqBase: UInt8 = 0
        var priorityAdd: UInt8 = 0
        var readISR = false
        var poll = false
        var specialMask = false
        var initState = 0
        var autoEOI = false
        var rotateOnAutoEOI = false
        var specialFullyNested = false
        var init4 = false
        var singleMode = false
        /// The INT output changed.
        var onOutputChange: ((Bool) -> Void)?
        public private(set) var output = false

        init(master: Bool) {
            isMaster = master
            elcrMask = master ? 0xF8 : 0xDE
        }

        /// The power-on state (QEMU's `pic_reset`): everything clear, ELCR too.
        func reset() {
            elcr = 0
            initReset()
        }

        private func initReset() {
            lastIRR = 0
            irr &= elcr
            imr = 0
            isr = 0
            priorityAdd = 0
            irqBase = 0
            readISR = false
            poll = false
            specialMask = false
            initState = 0
            autoEOI = false
            rotateOnAutoEOI = false
            specialFullyNested = false
            init4 = false
            singleMode = false
            update()
        }

        /// Priority (0 = highest) of the highest-priority bit of `mask`, 8 if none.
        private func priority(of mask: UInt8) -> Int {
            if mask == 0 { return 8 }
            var p = 0
            while mask & (1 << ((p + Int(priorityAdd)) & 7)) == 0 { p += 1 }
            return p
        }

        /// The interrupt the controller would deliver now, or nil.
        func pendingIRQ() -> Int? {
            let p = priority(of: irr & ~imr)
            if p == 8 { return nil }
            var inService = isr
            if specialMask { inService &= ~imr }
            if specialFullyNested && isMaster { inService &= ~(1 << 2) }
            return p < priority(of: inService) ? (p + Int(priorityAdd)) & 7 : nil
        }

        func update() {
            let level = pendingIRQ() != nil
            if level != output {
                output = level
                onOutputChange?(level)
            }
        }

        /// Drives input line `irq` (0–7).
        func setInput(_ irq: Int, _ level: Bool) {
            let mask = UInt8(1) << UInt8(irq)
            if elcr & mask != 0 {
                if level { irr |= mask; lastIRR |= mask } else { irr &= ~mask; lastIRR &= ~mask }
            } else {
                if level {
                    if lastIRR & mask == 0 { irr |= mask }
                    lastIRR |= mask
                } else {
                    lastIRR &= ~mask
                }
            }
            update()
        }

        /// The acknowledge cycle for `irq`: in service (unless auto-EOI), edge request cleared.
        func intack(_ irq: Int) {
            let mask = UInt8(1) << UInt8(irq)
            if autoEOI {
                if rotateOnAutoEOI { priorityAdd = UInt8((irq + 1) & 7) }
            } else {
                isr |= mask
            }
            if elcr & mask == 0 { irr &= ~mask }
            update()
        }

        func setELCR(_ value: UInt8) { elcr = value & elcrMask }

        public func read(offset: UInt32, size: Int) -> UInt32? {
            if poll {
                poll = false
                guard let irq = pendingIRQ() else { return 0 }
                intack(irq)
                return UInt32(irq) | 0x80
            }
            if offset & 1 == 0 { return UInt32(readISR ? isr : irr) }
            return UInt32(imr)
        }

        public func write(offset: UInt32, size: Int, value: UInt32) -> Bool {
            let v = UInt8(truncatingIfNeeded: value)
            if offset & 1 == 0 {
                if v & 0x10 != 0 {  // ICW1
                    initReset()
                    initState = 1
                    init4 = v & 1 != 0
                    singleMode = v & 2 != 0
                } else if v & 0x08 != 0 {  // OCW3
                    if v & 0x04 != 0 { poll = true }
                    if v & 0x02 != 0 { readISR = v & 1 != 0 }
                    if v & 0x40 != 0 { specialMask = (v >> 5) & 1 != 0 }
                } else {  // OCW2
                    let command = v >> 5
                    switch command {
                    case 0, 4:
                        rotateOnAutoEOI = command == 4
                    case 1, 5:  // non-specific EOI (5: and rotate)
                        let p = priority(of: isr)
                        if p != 8 {
                            let irq = (p + Int(priorityAdd)) & 7
                            isr &= ~(1 << UInt8(irq))
                            if command == 5 { priorityAdd = UInt8((irq + 1) & 7) }
                            update()
                        }
                    case 3:  // specific EOI
                        isr &= ~(1 << (v & 7))
                        update()
                    case 6:  // set priority
                        priorityAdd = (v &+ 1) & 7
                        update()
                    case 7:  // specific EOI and rotate
                        let irq = v & 7
                        isr &= ~(1 << irq)
                        priorityAdd = (irq + 1) & 7
                        update()
                    default:
                        break
                    }
                }
            } else {
                switch initState {
                case 0:  // OCW1
                    imr = v
                    update()
                case 1:  // ICW2
                    irqBase = v & 0xF8
                    initState = singleMode ? (init4 ? 3 : 0) : 2
                case 2:  // ICW3
                    initState = init4 ? 3 : 0
                default:  // ICW4
                    specialFullyNested = (v >> 4) & 1 != 0
                    autoEOI = (v >> 1) & 1 != 0
                    initState = 0
                }
            }
            return true
        }
    }

    /// The edge/level control registers at ports 0x4D0 (master) and 0x4D1 (slave).
    public final class ELCR: Device {
        unowned let pair: I8259Pair
        init(pair: I8259Pair) { self.pair = pair }
        public func read(offset: UInt32, size: Int) -> UInt32? {
            UInt32(offset & 1 == 0 ? pair.master.elcr : pair.slave.elcr)
        }
        public func write(offset: UInt32, size: Int, value: UInt32) -> Bool {
            let c = offset & 1 == 0 ? pair.master : pair.slave
            c.setELCR(UInt8(truncatingIfNeeded: value))
            return true
        }
    }

    public let master = Controller(master: true)
    public let slave = Controller(master: false)
    public private(set) lazy var elcr = ELCR(pair: self)

    /// Called when the master's INT output (the CPU's interrupt line) changes.
    public var onOutputChange: ((Bool) -> Void)? {
        didSet { master.onOutputChange = onOutputChange }
    }

    /// Whether the master's INT output is asserted.
    public var output: Bool { master.output }

    public init() {
        slave.onOutputChange = { [unowned master] level in master.setInput(2, level) }
    }

    /// The power-on state of both controllers.
    public func reset() {
        slave.reset()
        master.reset()
    }

    /// Drives ISA interrupt line `irq` (0–15; 2 is the cascade and is not an input).
    public func setIRQ(_ irq: Int, _ level: Bool) {
        precondition((0..<16).contains(irq), "ISA IRQ must be 0...15")
        if irq < 8 { master.setInput(irq, level) } else { slave.setInput(irq - 8, level) }
    }

    /// The interrupt-acknowledge cycle (QEMU's `pic_read_irq`): the vector of the highest
    /// priority pending interrupt, which goes in service; the spurious IRQ 7 (or 15 through the
    /// cascade) when none is pending.
    public func acknowledge() -> UInt32 {
        guard let irq = master.pendingIRQ() else {
            return UInt32(master.irqBase) + 7
        }
        let vector: UInt32
        if irq == 2 {
            var irq2 = 7
            if let s = slave.pendingIRQ() {
                slave.intack(s)
                irq2 = s
            }
            vector = UInt32(slave.irqBase) + UInt32(irq2)
        } else {
            vector = UInt32(master.irqBase) + UInt32(irq)
        }
        master.intack(irq)
        return vector
    }
}

extension I8259Pair {
    /// Appends both controllers' registers, modes and output levels.
    public func saveState(to w: inout SnapshotWriter) {
        for c in [master, slave] {
            for v in [c.irr, c.imr, c.isr, c.lastIRR, c.elcr, c.irqBase, c.priorityAdd] { w.put(v) }
            for v in [c.readISR, c.poll, c.specialMask, c.autoEOI, c.rotateOnAutoEOI, c.specialFullyNested,
                      c.init4, c.singleMode, c.output] { w.put(v) }
            w.put(c.initState)
        }
    }

    /// Replaces both controllers' state (output levels set without calling `onOutputChange`:
    /// the CPU's interrupt lines are restored with the CPU).
    public func restoreState(from r: inout SnapshotReader) throws(SnapshotError) {
        for c in [master, slave] {
            let b = try r.raw(7)
            var flags: [Bool] = []
            for _ in 0..<9 { flags.append(try r.bool()) }
            let initState = try r.int(in: 0...3)
            (c.irr, c.imr, c.isr, c.lastIRR, c.elcr, c.irqBase, c.priorityAdd) = (b[0], b[1], b[2], b[3], b[4] & c.elcrMask, b[5], b[6] & 7)
            (c.readISR, c.poll, c.specialMask, c.autoEOI, c.rotateOnAutoEOI) = (flags[0], flags[1], flags[2], flags[3], flags[4])
            (c.specialFullyNested, c.init4, c.singleMode) = (flags[5], flags[6], flags[7])
            c.restoreOutput(flags[8])
            c.initState = initState
        }
    }
}

extension I8259Pair.Controller {
    fileprivate func restoreOutput(_ level: Bool) { output = level }
}
