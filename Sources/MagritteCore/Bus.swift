/// The CPU's view of the physical address space.
///
/// The core never names a device: it asks the bus for a host pointer to a RAM page (the fast
/// path, cached by the CPU's software TLB) and sends every other access through `read`/`write`
/// (the slow path). A board implements this protocol; devices sit behind it.
public protocol PhysicalBus: AnyObject {
    /// The host address of the 4 KiB physical page `frame` (physical address >> 12) when that
    /// page is ordinary RAM, or nil when it is device space or unmapped. The pointer must stay
    /// valid for the life of the bus, and the answer for a frame must not change (the CPU's
    /// software TLB keeps it, for RAM and device pages alike).
    func ramPage(frame: UInt32) -> UnsafeMutableRawPointer?

    /// A device read of `size` bytes (1, 2 or 4) at physical address `address`, little-endian,
    /// zero-extended. Nil means nothing answers there: the CPU raises a bus error.
    func read(_ address: UInt32, size: Int) -> UInt32?

    /// A device write of the low `size` bytes of `value`. False means nothing answers there.
    func write(_ address: UInt32, size: Int, value: UInt32) -> Bool
}
