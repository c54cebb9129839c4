import Foundation
@testable import MagritteCore

/// A minimal board for core tests: RAM at 0, a transmit-only UART at 0x180003F8 (LSR always
/// ready) and the Malta SOFTRES register at 0x1F000500.
final class TestBus: PhysicalBus {
    let ram: UnsafeMutableRawPointer
    let ramSize: Int
    var output: [UInt8] = []
    weak var cpu: CPU?
    var poweredOff = false

    init(ramSize: Int = 16 << 20) {
        self.ramSize = ramSize
        ram = UnsafeMutableRawPointer.allocate(byteCount: ramSize, alignment: 4096)
        ram.initializeMemory(as: UInt8.self, repeating: 0, count: ramSize)
    }

    deinit { ram.deallocate() }

    func ramPage(frame: UInt32) -> UnsafeMutableRawPointer? {
        Int(frame) < ramSize >> 12 ? ram + Int(frame) << 12 : nil
    }

    func read(_ address: UInt32, size: Int) -> UInt32? {
        switch address {
        case 0x1800_03FD: return 0x60
        case 0x1800_03F8...0x1800_03FF: return 0
        default: return nil
        }
    }

    func write(_ address: UInt32, size: Int, value: UInt32) -> Bool {
        switch address {
        case 0x1800_03F8: output.append(UInt8(truncatingIfNeeded: value)); return true
        case 0x1800_03F9...0x1800_03FF: return true
        case 0x1F00_0500:
            if value & 0xFF == 0x42 { poweredOff = true; cpu?.requestStop() }
            return true
        default: return false
        }
    }

    /// Copies `words` into RAM at physical `address`.
    func load(_ words: [UInt32], at address: UInt32) {
        for (i, w) in words.enumerated() {
            (ram + Int(address) + 4 * i).storeBytes(of: w, as: UInt32.self)
        }
    }

    var text: String { String(decoding: output, as: UTF8.self) }
}

/// Runs a flat binary (llvm-objcopy -O binary) of an ELF linked at 0x80100000.
func runFlat(_ binary: Data, instructions: UInt64 = 50_000_000) -> (TestBus, CPU, StopReason) {
    let bus = TestBus()
    binary.withUnsafeBytes { raw in
        (bus.ram + 0x10_0000).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
    }
    let cpu = CPU(bus: bus)
    bus.cpu = cpu
    cpu.writeCP0(12, 0, 0x0040_0000)
    cpu.jump(to: 0x8010_0000)
    let reason = cpu.run(instructions: instructions)
    return (bus, cpu, reason)
}
