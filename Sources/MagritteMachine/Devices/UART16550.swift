import MagritteCore

/// A National Semiconductor 16550A UART, register-compatible with QEMU's `hw/char/serial.c`
/// (what Linux's 8250 driver and YAMON-style polling loops expect).
///
/// Output is instant: a byte written to THR goes straight to `output`, so LSR.THRE and TEMT are
/// set again by the time the guest looks, and the THR-empty interrupt re-arms after every byte.
/// Input comes from the host through `receive(_:)` into an unbounded host-side queue, from which
/// bytes move into the receiver (RBR, or the 16-byte FIFO when FCR enables it) as the guest
/// reads them, so the host can never overrun the guest. The receive timeout interrupt (a few
/// bytes waiting below the FIFO trigger level) is raised by `tick()`, which the board calls
/// between instruction batches: guest time, not host time.
///
/// Registers are 8 bits at offsets 0–7 shifted left by `registerShift` (0 on the ISA bus; 3 for
/// the Malta FPGA's CBUS UART, whose registers are 8 bytes apart).
public final class UART16550: Device {
    // Register bits.
    public enum LSR {
        public static let dataReady: UInt8 = 0x01
        public static let overrun: UInt8 = 0x02
        public static let breakInterrupt: UInt8 = 0x10
        public static let thrEmpty: UInt8 = 0x20
        public static let transmitterEmpty: UInt8 = 0x40
    }
    public enum IER {
        public static let receivedData: UInt8 = 0x01
        public static let thrEmpty: UInt8 = 0x02
        public static let lineStatus: UInt8 = 0x04
        public static let modemStatus: UInt8 = 0x08
    }
    public enum IIR {
        public static let noInterrupt: UInt8 = 0x01
        public static let modemStatus: UInt8 = 0x00
        public static let thrEmpty: UInt8 = 0x02
        public static let receivedData: UInt8 = 0x04
        public static let lineStatus: UInt8 = 0x06
        public static let characterTimeout: UInt8 = 0x0C
        public static let fifoEnabled: UInt8 = 0xC0
    }
    static let lcrDLAB: UInt8 = 0x80
    static let mcrLoop: UInt8 = 0x10
    static let mcrOut2: UInt8 = 0x08
    static let fcrEnable: UInt8 = 0x01
    static let fcrClearReceive: UInt8 = 0x02
    static let fcrClearTransmit: UInt8 = 0x04
    static let fifoSize = 16

    /// Register spacing: register `n` is at offset `n << registerShift`.
    public let registerShift: UInt32

    /// Where transmitted bytes go (stdout in the command line, a buffer in tests). Nil drops them.
    public var output: ((UInt8) -> Void)?
    /// Called whenever the interrupt output changes level.
    public var onInterruptChange: ((Bool) -> Void)?
    /// The level of the interrupt output (an enabled condition is pending).
    public private(set) var interruptAsserted = false

    // Register state, as named in the 16550 data sheet.
    public private(set) var rbr: UInt8 = 0
    public private(set) var ier: UInt8 = 0
    public private(set) var iir: UInt8 = IIR.noInterrupt
    public private(set) var lcr: UInt8 = 0
    public private(set) var mcr: UInt8 = 0
    public private(set) var lsr: UInt8 = 0
    public private(set) var msr: UInt8 = 0
    public private(set) var scr: UInt8 = 0
    public private(set) var fcr: UInt8 = 0
    /// The baud-rate divisor latch (DLL | DLM << 8).
    public private(set) var divisor: UInt16 = 0

    private var rxFIFO: [UInt8] = []
    private var rxTriggerLevel = 1
    private var thrInterruptPending = false
    private var timeoutPending = false
    private var readSinceTick = false
    // Host input not yet taken by the receiver; `pendingHead` avoids O(n) removal at the front.
    private var pending: [UInt8] = []
    private var pendingHead = 0

    /// Bytes the guest has written to THR (not counting loopback).
    public private(set) var transmittedCount = 0

    public init(registerShift: UInt32 = 0) {
        self.registerShift = registerShift
        reset()
    }

    /// The power-on state (QEMU's `serial_reset`): 9600 baud divisor, MCR.OUT2, LSR THRE|TEMT,
    /// MSR DCD|DSR|CTS. Host input still queued is kept.
    public func reset() {
        rbr = 0
        ier = 0
        iir = IIR.noInterrupt
        lcr = 0
        lsr = LSR.transmitterEmpty | LSR.thrEmpty
        msr = 0x80 | 0x20 | 0x10
        divisor = 0x0C
        mcr = UART16550.mcrOut2
        scr = 0
        fcr = 0
        rxFIFO.removeAll()
        rxTriggerLevel = 1
        thrInterruptPending = false
        timeoutPending = false
        readSinceTick = false
        setInterrupt(false)
        acceptInput()
    }

    // MARK: Host side

    /// Queues bytes typed on (or piped into) the host console for the guest.
    public func receive<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        pending.append(contentsOf: bytes)
        acceptInput()
    }

    /// Host bytes queued but not yet moved into the receiver.
    public var queuedInputCount: Int { pending.count - pendingHead }

    /// Whether the receiver holds a byte the guest has not read.
    public var hasReceivedData: Bool { lsr & LSR.dataReady != 0 }

    /// Advances the receive-timeout clock by one board tick: a FIFO holding bytes below its
    /// trigger level that the guest did not read since the previous tick raises the character
    /// timeout interrupt (the 16550's "four character times without a read").
    public func tick() {
        if fifoEnabled && !rxFIFO.isEmpty && !readSinceTick && !timeoutPending {
            timeoutPending = true
            updateInterrupt()
        }
        readSinceTick = false
    }

    /// Raises the character timeout at once if received bytes are waiting below the FIFO's
    /// trigger level (the board calls it when the CPU idles: time passes without reads).
    public func expireReceiveTimeout() {
        if fifoEnabled && !rxFIFO.isEmpty && !timeoutPending {
            timeoutPending = true
            updateInterrupt()
        }
    }

    // MARK: Device

    public func read(offset: UInt32, size: Int) -> UInt32? {
        UInt32(readRegister(Int((offset >> registerShift) & 7)))
    }

    public func write(offset: UInt32, size: Int, value: UInt32) -> Bool {
        writeRegister(Int((offset >> registerShift) & 7), UInt8(truncatingIfNeeded: value))
        return true
    }

    /// Reads register `index` (0–7) with its side effects.
    public func readRegister(_ index: Int) -> UInt8 {
        switch index {
        case 0:
            if lcr & UART16550.lcrDLAB != 0 { return UInt8(truncatingIfNeeded: divisor) }
            var value: UInt8
            if fifoEnabled {
                value = rxFIFO.isEmpty ? 0 : rxFIFO.removeFirst()
                if rxFIFO.isEmpty { lsr &= ~(LSR.dataReady | LSR.breakInterrupt) }
                timeoutPending = false
            } else {
                value = rbr
                lsr &= ~(LSR.dataReady | LSR.breakInterrupt)
            }
            readSinceTick = true
            updateInterrupt()
            if mcr & UART16550.mcrLoop == 0 { acceptInput() }
            return value
        case 1:
            return lcr & UART16550.lcrDLAB != 0 ? UInt8(divisor >> 8) : ier
        case 2:
            let value = iir
            if value & 0x06 == IIR.thrEmpty && value & IIR.noInterrupt == 0 {
                thrInterruptPending = false
                updateInterrupt()
            }
            return value
        case 3:
            return lcr
        case 4:
            return mcr
        case 5:
            let value = lsr
            if lsr & (LSR.breakInterrupt | LSR.overrun) != 0 {
                lsr &= ~(LSR.breakInterrupt | LSR.overrun)
                updateInterrupt()
            }
            return value
        case 6:
            if mcr & UART16550.mcrLoop != 0 {
                // Loopback: the modem control outputs drive the status inputs.
                return (mcr & 0x0C) << 4 | (mcr & 0x02) << 3 | (mcr & 0x01) << 5
            }
            let value = msr
            if msr & 0x0F != 0 {
                msr &= 0xF0
                updateInterrupt()
            }
            return value
        default:
            return scr
        }
    }

    /// Writes register `index` (0–7) with its side effects.
    public func writeRegister(_ index: Int, _ value: UInt8) {
        switch index {
        case 0:
            if lcr & UART16550.lcrDLAB != 0 {
                divisor = divisor & 0xFF00 | UInt16(value)
                return
            }
            // THR: as QEMU, the holding register empties at once, so the THRE interrupt drops
            // and rises again (an edge for an edge-triggered interrupt controller).
            thrInterruptPending = false
            lsr &= ~LSR.thrEmpty
            updateInterrupt()
            if mcr & UART16550.mcrLoop != 0 {
                loopback(value)
            } else {
                transmittedCount += 1
                output?(value)
            }
            lsr |= LSR.thrEmpty | LSR.transmitterEmpty
            thrInterruptPending = true
            updateInterrupt()
        case 1:
            if lcr & UART16550.lcrDLAB != 0 {
                divisor = divisor & 0x00FF | UInt16(value) << 8
                return
            }
            ier = value & 0x0F
            if lsr & LSR.thrEmpty != 0 { thrInterruptPending = true }
            updateInterrupt()
        case 2:
            writeFCR(value)
        case 3:
            lcr = value
        case 4:
            let wasLoop = mcr & UART16550.mcrLoop != 0
            mcr = value & 0x1F
            if wasLoop && mcr & UART16550.mcrLoop == 0 { acceptInput() }
        case 5, 6:
            break  // LSR and MSR are read-only
        default:
            scr = value
        }
    }

    // MARK: Internals

    private var fifoEnabled: Bool { fcr & UART16550.fcrEnable != 0 }

    private func writeFCR(_ v: UInt8) {
        var value = v
        if fcr == value { return }
        if (value ^ fcr) & UART16550.fcrEnable != 0 {
            value |= UART16550.fcrClearReceive | UART16550.fcrClearTransmit  // toggling FE flushes
        }
        if value & UART16550.fcrClearReceive != 0 {
            lsr &= ~(LSR.dataReady | LSR.breakInterrupt)
            timeoutPending = false
            rxFIFO.removeAll()
        }
        if value & UART16550.fcrEnable != 0 {
            iir |= IIR.fifoEnabled
            switch value & 0xC0 {
            case 0x00: rxTriggerLevel = 1
            case 0x40: rxTriggerLevel = 4
            case 0x80: rxTriggerLevel = 8
            default: rxTriggerLevel = 14
            }
        } else {
            iir &= ~IIR.fifoEnabled
        }
        fcr = value & 0xC9
        updateInterrupt()
        acceptInput()
    }

    /// In loopback mode a transmitted byte arrives at the receiver (overrunning if it is full).
    private func loopback(_ byte: UInt8) {
        if fifoEnabled {
            if rxFIFO.count < UART16550.fifoSize { rxFIFO.append(byte) } else { lsr |= LSR.overrun }
        } else {
            if lsr & LSR.dataReady != 0 { lsr |= LSR.overrun }
            rbr = byte
        }
        lsr |= LSR.dataReady
        updateInterrupt()
    }

    /// Moves queued host bytes into the receiver while it has room.
    private func acceptInput() {
        guard mcr & UART16550.mcrLoop == 0, pendingHead < pending.count else { return }
        var moved = false
        if fifoEnabled {
            while rxFIFO.count < UART16550.fifoSize && pendingHead < pending.count {
                rxFIFO.append(pending[pendingHead])
                pendingHead += 1
                moved = true
            }
        } else if lsr & LSR.dataReady == 0 {
            rbr = pending[pendingHead]
            pendingHead += 1
            moved = true
        }
        if pendingHead == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
        } else if pendingHead > 4096 {
            pending.removeFirst(pendingHead)
            pendingHead = 0
        }
        if moved {
            lsr |= LSR.dataReady
            readSinceTick = true  // the timeout counts from the newest byte too
            updateInterrupt()
        }
    }

    /// Recomputes IIR and the interrupt output from IER and the pending conditions, in the
    /// 16550's priority order.
    private func updateInterrupt() {
        var id = IIR.noInterrupt
        if ier & IER.lineStatus != 0 && lsr & 0x1E != 0 {
            id = IIR.lineStatus
        } else if ier & IER.receivedData != 0 && timeoutPending {
            id = IIR.characterTimeout
        } else if ier & IER.receivedData != 0 && lsr & LSR.dataReady != 0
                    && (!fifoEnabled || rxFIFO.count >= rxTriggerLevel) {
            id = IIR.receivedData
        } else if ier & IER.thrEmpty != 0 && thrInterruptPending {
            id = IIR.thrEmpty
        } else if ier & IER.modemStatus != 0 && msr & 0x0F != 0 {
            id = IIR.modemStatus
        }
        iir = id | (iir & 0xF0)
        setInterrupt(id != IIR.noInterrupt)
    }

    private func setInterrupt(_ level: Bool) {
        guard level != interruptAsserted else { return }
        interruptAsserted = level
        onInterruptChange?(level)
    }
}

extension UART16550 {
    /// Appends the registers, the receive FIFO, the host input not yet received and the
    /// interrupt state (`Docs/time-travel.md`).
    public func saveState(to w: inout SnapshotWriter) {
        for v in [rbr, ier, iir, lcr, mcr, lsr, msr, scr, fcr] { w.put(v) }
        w.put(divisor)
        w.put(rxFIFO)
        w.put(rxTriggerLevel)
        w.put(thrInterruptPending)
        w.put(timeoutPending)
        w.put(readSinceTick)
        w.put(Array(pending[pendingHead...]))
        w.put(transmittedCount)
        w.put(interruptAsserted)
    }

    /// Replaces the state with what `saveState` wrote (the interrupt output is set without
    /// calling `onInterruptChange`: the controller it drives is restored with it).
    public func restoreState(from r: inout SnapshotReader) throws(SnapshotError) {
        let regs = try r.raw(9)
        let divisor = try r.u16()
        let fifo = try r.byteArray(limit: UART16550.fifoSize)
        let trigger = try r.int(in: 1...14)
        let thr = try r.bool(), timeout = try r.bool(), read = try r.bool()
        let queued = try r.byteArray(limit: 1 << 30)
        let transmitted = try r.int(in: 0...Int.max)
        let asserted = try r.bool()
        (rbr, ier, iir, lcr, mcr, lsr, msr, scr, fcr) = (regs[0], regs[1], regs[2], regs[3], regs[4], regs[5], regs[6], regs[7], regs[8])
        self.divisor = divisor
        rxFIFO = fifo
        rxTriggerLevel = trigger
        thrInterruptPending = thr
        timeoutPending = timeout
        readSinceTick = read
        pending = queued
        pendingHead = 0
        transmittedCount = transmitted
        interruptAsserted = asserted
    }
}
