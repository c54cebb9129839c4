import Foundation
import Testing
@testable import MagritteCore

@Suite struct SmokeTests {
    @Test func loopSumsAndPowersOff() {
        // li t0,0; li t1,100; loop: addu t0,t0,t1; addiu t1,t1,-1; bnez t1,loop; nop;
        // lui t2,0xbf00; li t3,0x42; sb t3,0x500(t2); b .; nop
        let prog: [UInt32] = [
            0x2408_0000, 0x2409_0064, 0x0109_4021, 0x2529_FFFF, 0x1520_FFFD, 0x0000_0000,
            0x3C0A_BF00, 0x240B_0042, 0xA14B_0500, 0x1000_FFFF, 0x0000_0000,
        ]
        let bus = TestBus()
        bus.load(prog, at: 0x10_0000)
        let cpu = CPU(bus: bus)
        bus.cpu = cpu
        cpu.jump(to: 0x8010_0000)
        let reason = cpu.run(instructions: 10_000)
        #expect(reason == .stopRequested)
        #expect(bus.poweredOff)
        #expect(cpu.gpr(8) == 5050)
    }
}
