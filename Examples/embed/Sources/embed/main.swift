// Embeds Magritte through its Swift API (Docs/embedding.md): boots a guest ELF on the Malta
// board, reads its console, stops it at a breakpoint, runs two guests under the VMM, and asks the
// Lua bridge for a value. Prints what it saw; exits 1 if anything is not as expected.
//
// Usage: embed [GUESTS]   GUESTS: the directory Scripts/build-guests fills (default ../../.build/guests)
import Foundation
import MagritteCore
import MagritteHypervisor
import MagritteLua
import MagritteMachine

let guests = CommandLine.arguments.dropFirst().first ?? "../../.build/guests"
let hello = guests + "/tests/hello.elf"
let second = guests + "/tests/alu_rr.elf"
var failures = 0

@MainActor func check(_ ok: Bool, _ what: String) {
    print((ok ? "ok    " : "FAIL  ") + what)
    if !ok { failures += 1 }
}

/// Runs `path` alone on a bare Malta board until it powers off; returns its console output.
@MainActor func runBare(_ path: String) throws -> (console: String, outcome: RunOutcome, instructions: UInt64) {
    var console: [UInt8] = []
    let board = Malta(configuration: MaltaConfiguration(ramSize: 32 << 20)) { console.append($0) }
    try board.load(path: path)
    board.boot()
    let outcome = board.run(maxInstructions: 100_000_000)
    return (String(decoding: console, as: UTF8.self), outcome, board.cpu.retiredInstructions)
}

/// A breakpoint: stops the CPU before the instruction at `pc` executes.
final class Breakpoint: CPUObserver {
    let pc: UInt32
    var hits = 0
    init(pc: UInt32) { self.pc = pc }
    func cpu(_ cpu: CPU, willExecuteAt pc: UInt32) -> ObserverAction {
        guard pc == self.pc else { return .proceed }
        hits += 1
        return .stop
    }
}

do {
    // 1. Boot a guest and read its console.
    let bare = try runBare(hello)
    print("hello.elf on bare Malta: \(bare.outcome), \(bare.instructions) instructions")
    print(bare.console.split(separator: "\n").prefix(2).map { "  | " + $0 }.joined(separator: "\n"))
    check(bare.outcome == .poweredOff, "the guest powers off")
    check(bare.console.hasPrefix("hello from the guest\n"), "its console starts with its greeting")

    // 2. Stop at a breakpoint: `main`, found in the ELF's symbol table.
    var console: [UInt8] = []
    let board = Malta(configuration: MaltaConfiguration(ramSize: 32 << 20)) { console.append($0) }
    let image = try board.load(path: hello)
    guard let main = image.symbols.first(where: { $0.name == "main" }) else {
        check(false, "hello.elf has a symbol main")
        exit(1)
    }
    board.boot()
    let breakpoint = Breakpoint(pc: main.address)
    board.cpu.observer = breakpoint
    board.cpu.observesInstructions = true
    let stopped = board.run(maxInstructions: 10_000_000)
    print("breakpoint at main (0x\(String(main.address, radix: 16))): \(stopped), pc 0x\(String(board.cpu.pc, radix: 16))")
    check(stopped == .stopped && board.cpu.pc == main.address && breakpoint.hits == 1, "the run stops at main, before it runs")
    check(console.isEmpty, "nothing printed before main")
    let word = board.bus.read(main.address & 0x1FFF_FFFF, size: 4) ?? 0
    print("  main: " + Disassembler.text(word: word, pc: main.address))
    board.cpu.observesInstructions = false
    let resumed = board.run(maxInstructions: 100_000_000)
    check(resumed == .poweredOff && String(decoding: console, as: UTF8.self) == bare.console,
          "resumed, it finishes with the same console as the uninterrupted run")

    // 3. Two guests side by side under the VMM, each printing what it prints alone.
    let vmm = try VMM()
    let a = try vmm.addGuest(GuestConfiguration(name: "hello"), imagePath: hello)
    let b = try vmm.addGuest(GuestConfiguration(name: "alu"), imagePath: second)
    let outcome = vmm.run(maxInstructions: 500_000_000)
    print("VMM with two guests: \(outcome); \(a.name): \(a.statistics.instructions) instructions, "
          + "\(b.name): \(b.statistics.instructions) instructions")
    check(outcome == .allPoweredOff, "both guests power off")
    check(a.consoleText == bare.console, "guest \(a.name) prints what it prints alone")
    check(b.consoleText == (try runBare(second)).console && !b.consoleText.isEmpty, "guest \(b.name) prints what it prints alone")
    check(a.statistics.traps.reduce(0, +) > 0, "the VMM emulated the guests' privileged instructions")

    // 4. The Lua bridge: the same machine API scripts use.
    let lua = MagritteLua()
    let result = try lua.lua.run("return magritte.hex(0xbeef)")
    print("Lua: magritte.hex(0xbeef) = \(result)")
    check(result == ["0x0000beef"], "the Lua bridge answers")
} catch {
    print("FAIL  \(error)")
    failures += 1
}

if failures > 0 {
    print("embed: \(failures) check(s) failed")
    exit(1)
}
print("embed: all checks passed")
