import Testing
import MagritteCore
@testable import MagritteMachine

/// Clang-built guests run end to end on the board; where QEMU is installed, the same ELF must
/// print the same thing on `qemu-system-mipsel -M malta -kernel` (the oracle).
@Suite(.enabled(if: Toolchain.hasClang, "needs clang and ld.lld"))
struct EndToEndTests {
    func run(_ elf: String, input: ScriptedInput? = nil, ramSize: Int = 128 << 20,
             limit: UInt64 = 50_000_000) throws -> (String, RunOutcome, Malta) {
        let out = OutputBuffer()
        let malta = Malta(configuration: MaltaConfiguration(ramSize: ramSize), output: out.append)
        try malta.load(path: elf)
        malta.boot()
        malta.consoleInput = input
        let outcome = malta.run(maxInstructions: limit)
        return (out.text, outcome, malta)
    }

    static let hello = Guest.consoleHeader + #"""
        static void putdec(unsigned v) { char b[12]; int n = 0; do { b[n++] = '0' + v % 10; v /= 10; } while (v); while (n) putch(b[--n]); }
        int main(void) {
            unsigned sum = 0;
            for (unsigned i = 1; i <= 1000; i++) sum += i * i;
            puts_("Hello, Malta! sum of squares = ");
            putdec(sum);
            puts_("\n");
            return 0;
        }
        """#

    @Test func helloPrintsOnTheUART() throws {
        let elf = try Guest.build("hello", ["crt0.S": Guest.runtime, "main.c": EndToEndTests.hello])
        let (text, outcome, malta) = try run(elf)
        #expect(outcome == .poweredOff)
        #expect(text == "Hello, Malta! sum of squares = 333833500\n")
        #expect(malta.cpu.exceptionCounts.allSatisfy { $0 == 0 })
        if Toolchain.hasQEMU { #expect(Guest.runOnQEMU(elf) == text) }
    }

    /// A guest that prints the boot state it finds: registers at entry, the YAMON environment,
    /// the board ID and FPGA status.
    static let bootState = #"""
            .set noreorder
            .set noat
            .text
            .globl _start
        _start:
            mtc0  $k0, $30            # keep k0/k1 in ErrorEPC/EPC while saving the rest
            mtc0  $k1, $14
            lui   $k0, %hi(saved)
            addiu $k0, $k0, %lo(saved)
            .irp n,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,28,29,30,31
            sw    $\n, (\n*4)($k0)
            .endr
            mfc0  $t0, $30
            sw    $t0, 104($k0)
            mfc0  $t0, $14
            sw    $t0, 108($k0)
            mfc0  $t0, $12
            sw    $t0, 128($k0)
            mfc0  $t0, $15, 1
            sw    $t0, 132($k0)
            lui   $sp, %hi(stack_top)
            addiu $sp, $sp, %lo(stack_top)
            jal   main
            nop
            lui   $t0, 0xBF00
            li    $t1, 0x42
            sw    $t1, 0x500($t0)
        1:  b 1b
            nop
            .bss
            .align 4
            .globl saved
        saved: .space 256
            .space 8192
        stack_top:
        """#

    static let bootStateMain = Guest.consoleHeader + #"""
        extern unsigned saved[64];
        static void hex(unsigned v) { for (int i = 28; i >= 0; i -= 4) putch("0123456789abcdef"[(v >> i) & 15]); }
        int main(void) {
            for (int i = 1; i < 32; i++) { hex(saved[i]); putch(i % 8 == 7 ? '\n' : ' '); }
            puts_("status "); hex(saved[32]); puts_(" ebase "); hex(saved[33]); puts_("\n");
            int argc = saved[4]; char **argv = (char **)saved[5]; char **envp = (char **)saved[6];
            puts_("argc "); hex(argc); puts_(" argv[1] '"); puts_(argv[1]); puts_("'\n");
            for (char **e = envp; *e; e += 2) {
                puts_(e[0]); puts_("=");
                if (e[0][0] == 'r') puts_("..."); else puts_(e[1]);
                puts_("\n");
            }
            puts_("board "); hex(*(volatile unsigned *)0xBFC00010);
            puts_(" status "); hex(*(volatile unsigned *)0xBF000208); puts_("\n");
            return 0;
        }
        """#

    @Test func bootStateAsTheGuestSeesIt() throws {
        let elf = try Guest.build("bootstate", ["crt0.S": EndToEndTests.bootState, "main.c": EndToEndTests.bootStateMain])
        let (text, outcome, _) = try run(elf, ramSize: 64 << 20)
        #expect(outcome == .poweredOff)
        let expected = """
            00000000 00000000 00000000 00000002 80002000 80002008 04000000
            00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
            00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
            00000000 80100000 0000005e bbe00088 00000000 80001fc0 00000000 bfc00644
            status 00400000 ebase 80000000
            argc 00000002 argv[1] ''
            memsize=67108864
            ememsize=67108864
            modetty0=38400n8r
            rngseed=...
            board 00000420 status 00000010

            """
        #expect(text == expected)
        if Toolchain.hasQEMU { #expect(Guest.runOnQEMU(elf, memory: "64") == expected) }
    }

    static let echo = Guest.consoleHeader + #"""
        int main(void) {
            for (;;) {
                while (!(UART[5] & 1)) {}
                char c = UART[0];
                if (c == '.') break;
                putch(c >= 'a' && c <= 'z' ? c - 32 : c);
            }
            puts_("!\n");
            return 0;
        }
        """#

    @Test func polledInputIsEchoed() throws {
        let elf = try Guest.build("echo", ["crt0.S": Guest.runtime, "main.c": EndToEndTests.echo])
        let input = ScriptedInput(polls: ["hello ", "", "world.ignored"], waits: ["never read"])
        let (text, outcome, malta) = try run(elf, input: input)
        #expect(outcome == .poweredOff)
        #expect(text == "HELLO WORLD!\n")
        #expect(input.waits == 0, "a polling guest never makes the board block")
        #expect(malta.uart.queuedInputCount == 6, "'ignored' is left: one byte in RBR, six queued")
    }

    @Test func polledInputRunsOutAtTheLimit() throws {
        let elf = try Guest.build("echo", ["crt0.S": Guest.runtime, "main.c": EndToEndTests.echo])
        let (text, outcome, _) = try run(elf, input: ScriptedInput(polls: ["abc"]), limit: 3_000_000)
        #expect(outcome == .instructionLimit)
        #expect(text == "ABC")
    }

    /// Interrupt-driven input: the UART's receive interrupt reaches Cause.IP2 through the i8259
    /// (acknowledged as Linux does: the GT-64120's interrupt-acknowledge read, then an EOI), the
    /// guest sleeps in WAIT between characters, so the board must block for console input.
    static let irqRuntime = #"""
            .set noreorder
            .text
            .globl _start
        _start:
            lui   $sp, %hi(stack_top)
            addiu $sp, $sp, %lo(stack_top)
            # copy the handler to the general exception vector (EBase 0x80000000 + 0x180)
            la    $t0, handler
            la    $t1, handler_end
            li    $t2, 0x80000180
        1:  lw    $t3, 0($t0)
            sw    $t3, 0($t2)
            addiu $t0, $t0, 4
            bne   $t0, $t1, 1b
            addiu $t2, $t2, 4
            jal   main
            nop
            lui   $t0, 0xBF00
            li    $t1, 0x42
            sw    $t1, 0x500($t0)
        2:  b 2b
            nop

            .globl enable_interrupts
        enable_interrupts:
            li    $t0, 0x0401        # IM2 | IE, BEV clear
            mtc0  $t0, $12
            jr    $ra
            ehb

            # sleep_unless_changed(seen): WAIT unless count != seen. An interrupt taken
            # anywhere from the check to the WAIT restarts the check (the handler rolls EPC
            # back), so no wake-up is lost.
            .globl sleep_unless_changed
        sleep_unless_changed:
        region:
            lui   $t0, %hi(count)
            lw    $t0, %lo(count)($t0)
            bne   $t0, $a0, 1f
            nop
            wait
        1:  jr    $ra
            nop

        handler:                     # interrupts only: take the byte, roll back a sleep
            lui   $k0, 0xBBE0
            lw    $k1, 0xC34($k0)    # PCI interrupt acknowledge: the i8259 puts IRQ 4 in service
            lui   $k0, 0xB800
            lbu   $k1, 0x3FD($k0)    # LSR
            andi  $k1, $k1, 1
            beqz  $k1, 3f
            nop
            lbu   $k1, 0x3F8($k0)    # RBR
            lui   $k0, %hi(saved_t0)
            sw    $t0, %lo(saved_t0)($k0)
            lui   $k0, %hi(count)
            lw    $t0, %lo(count)($k0)
            addiu $t0, $t0, 1
            sw    $t0, %lo(count)($k0)
            andi  $t0, $t0, 15       # received[count & 15] = byte
            lui   $k0, %hi(received)
            addiu $k0, $k0, %lo(received)
            addu  $k0, $k0, $t0
            sb    $k1, 0($k0)
            lui   $k0, %hi(saved_t0)
            lw    $t0, %lo(saved_t0)($k0)
        3:  lui   $k0, 0xB800
            li    $k1, 0x20
            sb    $k1, 0x20($k0)     # non-specific EOI to the master i8259
            mfc0  $k0, $14
            lui   $k1, %hi(region)
            addiu $k1, $k1, %lo(region)
            subu  $k0, $k0, $k1
            sltiu $k0, $k0, 20       # EPC within the five instructions of the region?
            beqz  $k0, 4f
            nop
            mtc0  $k1, $14
            ehb
        4:  eret
        handler_end:

            .bss
            .align 4
        saved_t0: .space 4
            .space 8192
        stack_top:
        """#

    static let irqEcho = Guest.consoleHeader + #"""
        volatile unsigned char received[16];
        volatile unsigned count;
        void enable_interrupts(void);
        void sleep_unless_changed(unsigned seen);
        int main(void) {
            UART[1] = 1;  /* ERBFI */
            enable_interrupts();
            unsigned seen = 0;
            puts_("> ");
            for (;;) {
                while (count == seen) sleep_unless_changed(seen);
                char c = received[++seen & 15];
                if (c == 'q') break;
                putch(c);
            }
            puts_("\nbye after ");
            putch('0' + seen);
            puts_("\n");
            return 0;
        }
        """#

    @Test func interruptDrivenInputWakesWait() throws {
        let elf = try Guest.build("irqecho", ["crt0.S": EndToEndTests.irqRuntime, "main.c": EndToEndTests.irqEcho])
        let input = ScriptedInput(waits: ["ab", "c", "q"])
        let (text, outcome, malta) = try run(elf, input: input)
        #expect(outcome == .poweredOff)
        #expect(text == "> abc\nbye after 4\n")
        #expect(input.waits == 3)
        #expect(malta.cpu.exceptionCounts[0] == 4, "one interrupt per character")
        #expect(malta.cpu.idleCycles == 0, "no timer: waiting costs no guest time")

        let stuck = ScriptedInput(waits: ["xy"])
        let (partial, deadlock, _) = try run(elf, input: stuck)
        #expect(deadlock == .deadlock)
        #expect(partial == "> xy")
    }
}
