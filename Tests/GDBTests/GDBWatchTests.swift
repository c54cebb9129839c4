import Foundation
import MagritteCore
import MagritteGDB
import MagritteMachine
import Testing

/// gdb-multiarch's watchpoints against `magritte boot --gdb` and `magritte vmm --gdb`, forward
/// and in reverse, on teachos (a process-table field the kernel counts up at every trap).
/// Fails (does not skip) when gdb-multiarch is missing, as GDBProcessTests.
@Suite(.serialized) struct GDBWatchTests {
    static let teachos = GDBProcessTests.guest("os/teachos")

    /// gdb's watchpoint reports (`Old value = A`, `New value = B`, the pc line after them).
    static func changes(in text: String) -> [(old: Int, new: Int, pc: UInt32)] {
        text.matches(of: /Old value = (-?\d+)\nNew value = (-?\d+)\n0x([0-9a-f]+) in \w/).compactMap { m in
            guard let old = Int(m.1), let new = Int(m.2), let pc = UInt32(m.3, radix: 16) else { return nil }
            return (old, new, pc)
        }
    }

    /// A watchpoint stops forward at the store that counts the field up (c → c+1). The first
    /// reverse-continue from there goes back over that very store (gdb shows c+1 → c at the
    /// store), the next one over the store before it (c → c-1), and forward again the store
    /// after (c-1 → c): every change once, in order, in both directions, on a bare machine and
    /// under the VMM, with both engines. (The first reverse-continue used to pass over the store just made and
    /// report c+1 → c-1.)
    @Test(arguments: [["boot"], ["boot", "--engine", "interpreter"], ["vmm"], ["vmm", "--engine", "interpreter"]])
    func reverseContinueFromAForwardWatchStop(command: [String]) throws {
        let s = try GDBProcessTests.debug(command + [Self.teachos], elf: Self.teachos, commands: [
            "break trap", "continue", "continue 40", "delete", "set $slot = (char *)&procs + 1256",
            "print *(int *)($slot + 188)", "watch *(int *)($slot + 188)", "continue", "reverse-continue",
            "x/i $pc", "reverse-continue", "x/i $pc", "continue", "delete", "continue",
        ])
        let c = try #require(s.gdb.firstMatch(of: /\$1 = (\d+)\n/).flatMap { Int($0.1) }, "\(s.gdb)")
        let changes = Self.changes(in: s.gdb)
        try #require(changes.count == 4, "\(s.gdb)")
        #expect(changes.map(\.old) == [c, c + 1, c, c - 1] && changes.map(\.new) == [c + 1, c, c - 1, c], "\(s.gdb)")
        // Going back, gdb stops at the store itself (it steps back over the access it was shown).
        let stores = s.gdb.matches(of: /=> 0x([0-9a-f]+) <trap\+\d+>:\tsw\t[a-z0-9]+,188\(/).compactMap { UInt32($0.1, radix: 16) }
        #expect(stores.count == 2 && stores == [changes[1].pc, changes[2].pc], "\(s.gdb)")
        // Forward, gdb stops just after it, also after going back (the stub looks at the first
        // instruction of a run, which the CPU does not show it after a stop there, itself).
        #expect(changes[0].pc == changes[1].pc + 4 && changes[3].pc == changes[0].pc, "\(s.gdb)")
        #expect(s.gdb.contains("[Inferior 1 (Remote target) exited normally]"), "\(s.gdb)")
        // The console is the run's without gdb: what re-execution prints again is not shown twice.
        #expect(s.out == (try GDBProcessTests.run(command + [Self.teachos]).out), "\(s.out)")
        #expect(s.out.contains("teachos: powering off"), "\(s.out)")
        #expect(s.status == 0, "\(s.err)")
    }

    /// `rwatch` and `awatch` under `magritte vmm --gdb` (the stub stops before the access, in the
    /// slow path of the watched page, while the rest runs translated): the read of the field
    /// teachos counts up is reported with its value (c, then c+1 at the next trap), the access
    /// watchpoint reports the store (c+1 → c+2), the next read and store, and in reverse the store
    /// undone; the same transcript with both engines.
    @Test func readAndAccessWatchpointsUnderTheVMM() throws {
        var transcripts: [String] = []
        for engine in ["jit", "interpreter"] {
            let s = try GDBProcessTests.debug(["vmm", "--engine", engine, Self.teachos], elf: Self.teachos, commands: [
                "break trap", "continue", "continue 40", "delete", "set $slot = (char *)&procs + 1256",
                "print *(int *)($slot + 188)", "rwatch *(int *)($slot + 188)", "continue", "continue", "delete",
                "awatch *(int *)($slot + 188)", "continue", "continue", "continue", "reverse-continue", "delete", "continue",
            ])
            let c = try #require(s.gdb.firstMatch(of: /\$1 = (\d+)\n/).flatMap { Int($0.1) }, "\(s.gdb)")
            let reads = s.gdb.matches(of: /Hardware read watchpoint 2: [^\n]*\n\nValue = (\d+)\n/).compactMap { Int($0.1) }
            #expect(reads == [c, c + 1], "\(s.gdb)")
            let accesses = s.gdb.matches(of: /Hardware access \(read\/write\) watchpoint 3: [^\n]*\n\n((?:Old value = -?\d+\nNew value = -?\d+)|(?:Value = -?\d+))\n/)
                .map { $0.1.replacing("\n", with: " ") }
            #expect(accesses == ["Old value = \(c + 1) New value = \(c + 2)", "Value = \(c + 2)", "Old value = \(c + 2) New value = \(c + 3)",
                                 "Old value = \(c + 3) New value = \(c + 2)"], "\(s.gdb)")
            #expect(s.gdb.contains("[Inferior 1 (Remote target) exited normally]"), "\(s.gdb)")
            #expect(s.status == 0, "\(s.err)")
            transcripts.append(s.gdb)
        }
        #expect(transcripts[0] == transcripts[1])
    }

    /// Two copies of teachos: a watchpoint on one guest's field (`watch … thread 1` with
    /// `set scheduler-locking on`, gdb's way to run one thread) stops only at that guest's
    /// stores, with that guest's values, forward and in reverse (the stub's `bc` after `Hc1`
    /// counts only guest 1's hits); the other guest's copy of the field is not touched.
    @Test func aWatchpointOnOneGuestUnderTheVMM() throws {
        let s = try GDBProcessTests.debug(["vmm", Self.teachos, Self.teachos], elf: Self.teachos, commands: [
            "break trap", "continue", "continue 40", "delete", "set $slot = (char *)&procs + 1256",
            "thread 2", "print *(int *)($slot + 188)", "thread 1", "set scheduler-locking on",
            "print *(int *)($slot + 188)", "watch *(int *)($slot + 188) thread 1", "continue", "continue",
            "thread 2", "print *(int *)($slot + 188)", "thread 1", "reverse-continue", "reverse-continue", "reverse-continue",
            "set scheduler-locking off", "delete", "continue",
        ])
        let printed = s.gdb.matches(of: /\$\d+ = (\d+)\n/).compactMap { Int($0.1) }
        try #require(printed.count == 3, "\(s.gdb)")
        let (other, c) = (printed[0], printed[1])
        let changes = Self.changes(in: s.gdb)
        try #require(changes.count == 5, "\(s.gdb)")
        #expect(changes.map(\.old) == [c, c + 1, c + 2, c + 1, c] && changes.map(\.new) == [c + 1, c + 2, c + 1, c, c - 1], "\(s.gdb)")
        #expect(s.gdb.components(separatedBy: "Thread 1 hit Hardware watchpoint 2").count == 6, "\(s.gdb)")
        #expect(!s.gdb.contains("Thread 2 hit"), "\(s.gdb)")
        // Guest 2 did not run forward: its field is as it was (its own, at the same virtual address).
        #expect(printed[2] == other, "\(s.gdb)")
        #expect(s.gdb.contains("[Inferior 1 (Remote target) exited normally]"), "\(s.gdb)")
        #expect(s.status == 0, "\(s.err)")
    }

    /// The stub stops before a watched store. `continue` again from that watchpoint stop, the
    /// watchpoint still inserted (gdb would step over it), makes the store (it does not stop
    /// before it forever). With a breakpoint on that store, `continue` from the breakpoint stop
    /// (where the CPU resumes without asking the observer) still stops before it for the
    /// watchpoint.
    @Test func watchStopsBeforeTheStoreAfterABreakpointThereAndNotTwice() throws {
        let hello = GDBProcessTests.hello
        let counter = try DebuggingWalkthroughTests.address(of: "rt_exc", in: hello)
        let watch = GDBStopPoint(kind: .write, address: counter, length: 4)
        func machine() throws -> (Malta, MachineTarget) {
            let m = Malta()
            try m.load(path: hello)
            m.boot()
            return (m, MachineTarget(machine: m))
        }
        // Where the watchpoint stops first: before the store, not yet made.
        let (m1, t1) = try machine()
        #expect(t1.insert(watch))
        #expect(t1.resume(thread: nil, interrupted: { false }) == .watch(.write, address: counter, thread: 1))
        let store = m1.cpu.pc, position = m1.cpu.executedInstructions
        #expect(m1.cpu.readVirtual(counter, size: 4) == 0)
        // Continuing with the watchpoint inserted: the store is made (and seen after it).
        _ = t1.resume(thread: nil, interrupted: { false })
        #expect(m1.cpu.executedInstructions > position)

        // A breakpoint on that store (the BSS-clearing loop's: passed until that iteration),
        // then the watchpoint: both stop before it.
        let (m2, t2) = try machine()
        #expect(t2.insert(GDBStopPoint(kind: .software, address: store, length: 4)))
        for _ in 0..<100_000 where m2.cpu.executedInstructions < position {
            #expect(t2.resume(thread: nil, interrupted: { false }) == .trap(thread: 1))
        }
        #expect(m2.cpu.pc == store && m2.cpu.executedInstructions == position)
        #expect(t2.insert(watch))
        #expect(t2.resume(thread: nil, interrupted: { false }) == .watch(.write, address: counter, thread: 1))
        #expect(m2.cpu.pc == store && m2.cpu.executedInstructions == position)
    }
}
