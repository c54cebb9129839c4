import Foundation
import Testing
@testable import MagritteLua

/// The bridge is strict with what scripts pass (issue 13, items 3 and 11): every options table
/// rejects keys it does not know, counts are checked rather than clamped, and `until_output`
/// costs linear time in the output.
@Suite struct StrictBridgeTests {
    static let guestsBuilt = VMMAPITests.guestsBuilt
    static let teachos = "TEACHOS = \"\(MachineAPITests.guest("os/teachos"))\"\n"

    /// Runs `script` with HELLO set, as VMMAPITests does; `error` gives the first line of its error.
    func run(_ script: String) throws -> [String] { try VMMAPITests().run(script) }
    func error(_ script: String) throws -> String { try VMMAPITests().error(script) }

    /// Every options table of the API, with a misspelt key, and the message it must give.
    static let misspelt: [(String, String)] = [
        ("magritte.machine{imag = 'x'}", "magritte.machine: unknown option 'imag' (valid options: append, echo, engine, image, initrd, ram, tlb)"),
        ("magritte.machine{'x'}", "magritte.machine: unknown option [1] (valid options: append, echo, engine, image, initrd, ram, tlb)"),
        ("magritte.vmm{slices = 5}", "magritte.vmm: unknown option 'slices' (valid options: echo, engine, ram, slice, tlb)"),
        ("local m = magritte.machine{ram = '1M'}; m:run{step = 10}", "run: unknown option 'step' (valid options: steps, until_output)"),
        ("local m = magritte.machine{ram = '1M'}; m:on('memory', print, {adress = 0})",
         "on('memory'): unknown option 'adress' (valid options: access, address, size)"),
        ("local v = magritte.vmm{ram = '16M'}; v:run{until_ouput = 'x'}", "run: unknown option 'until_ouput' (valid options: steps, until_output)"),
        ("local v = magritte.vmm{ram = '16M'}; v:add{image = HELLO, appendd = 'x'}",
         "add: unknown option 'appendd' (valid options: append, args, idle, image, initrd, name, ram)"),
        ("local v = magritte.vmm{ram = '16M'}; v:events{kinds = 'trap'}", "events: unknown option 'kinds' (valid options: guest, kind, last)"),
        ("local v = magritte.vmm{ram = '16M'}; v:table('tlb-miss', {bar = false})", "table: unknown option 'bar' (valid options: bare, guest)"),
    ]

    @Test(arguments: misspelt) func misspeltOptionKeysAreErrors(_ c: (String, String)) throws {
        #expect(try error(c.0) == c.1)
    }

    @Test(.enabled(if: guestsBuilt)) func correctOptionsStillWork() throws {
        let out = try run("""
            local m = magritte.machine{image = HELLO, ram = "16M", tlb = 16, echo = false, append = ""}
            local r1 = m:run{steps = 10}
            local v = magritte.vmm{ram = "16M", tlb = 64, slice = 1000, echo = false}
            v:add{image = HELLO, name = "a", ram = "4M", append = "", args = "", idle = "wait"}
            local r2 = v:run{steps = 10, until_output = "never"}
            return r1, r2, #v:events{last = 2, kind = "switch", guest = "a"}
            """)
        #expect(out == ["steps", "steps", "1"])
    }

    @Test func countsAreCheckedNotClamped() throws {
        let m = "local m = magritte.machine{ram = '1M'}; "
        #expect(try error(m + "m:trace(-1)") == "trace: the number of events must be 0..1000 (got -1)")
        #expect(try error(m + "m:trace(2^40)") == "trace: the number of events must be 0..1000 (got 1099511627776)")
        #expect(try error(m + "m:trace_instructions(-5)") == "trace_instructions: the number of instructions must be 0..1048576 (got -5)")
        #expect(try error(m + "m:trace_instructions(2^40)")
            == "trace_instructions: the number of instructions must be 0..1048576 (got 1099511627776)")
        #expect(try run(m + "m:trace_instructions(1 << 20); m:trace_instructions(0); return #m:trace(1000)") == ["0"])
    }

    /// `until_output` tries the pattern on one line at a time: over teachos' console, the text
    /// handed to string.find (counted by a wrapper, which the bridge looks up at each match)
    /// stays within a small multiple of the output, where matching the whole output after each
    /// byte handed over about half its square (".-Z" then took minutes).
    @Test(.enabled(if: guestsBuilt)) func untilOutputIsLinear() throws {
        let out = try run(Self.teachos + """
            local m = magritte.machine{image = TEACHOS}
            local find, scanned = string.find, 0
            string.find = function(s, p) scanned = scanned + #s; return find(s, p) end
            local reason = m:run{until_output = ".-Z", steps = 200000000}
            string.find = find
            return reason, #m.console > 2000, scanned < 200 * #m.console, scanned > #m.console
            """)
        #expect(out == ["poweroff", "true", "true", "true"])
    }

    @Test(.enabled(if: guestsBuilt)) func untilOutputMatchesAPromptAndLines() throws {
        let out = try run("""
            local m = magritte.machine{image = HELLO}
            local r1, i1 = m:run{until_output = "hello"}
            local r2 = m:run{until_output = "^hex.*pct %%\\n$"}
            local console = m.console
            m:reset()
            local r3 = m:run{until_output = "guest\\nhex"}  -- a pattern does not span lines
            return r1, i1.pattern, r2, console:sub(-6), r3
            """)
        #expect(out == ["output", "hello", "output", "pct %\n", "poweroff"])
    }

    /// Observers see the exact retired-instruction count on every path (issue 11, item 7): an
    /// exception taken by `ll` and a mode change made by `mtc0` report the count of the
    /// instructions before them (and the mtc0 itself), and every stop on an event of teachos and
    /// user_segments reports what `m.instructions` says once the run has returned.
    @Test(.enabled(if: guestsBuilt)) func observersSeeTheExactInstructionCount() throws {
        let out = try run(Self.teachos + """
            local m = magritte.machine{ram = "1M"}
            -- lui t2, 0xc000; ll t1, 0(t2) (a TLB refill in kseg2); ori t0, zero, 0x10; mtc0 t0, $12 (to user mode)
            for i, w in ipairs{0x3c0ac000, 0xc1490000, 0x34080010, 0x40886000, 0} do m.phys:write32(0x1000 + 4 * i - 4, w) end
            m:break_on_exception(); m:break_on_mode()
            m.cpu.pc = 0x80001000
            local r1, e = m:run(10)
            m.cpu.pc = 0x80001008
            local r2, c = m:run(10)
            local function agree(image)
              local g = magritte.machine{image = image}
              g:break_on_mode(); g:break_on_exception(); g:break_on_tlb_write()
              local stops, wrong = 0, 0
              for i = 1, 300 do
                local reason, info = g:run()
                if reason == "poweroff" then break end
                stops = stops + 1
                if info.instructions ~= g.instructions then wrong = wrong + 1 end
              end
              return stops > 100 and wrong == 0
            end
            return r1, e.cause, e.instructions, r2, c.cause, c.to, c.instructions, agree(TEACHOS), agree(HELLO:gsub("hello", "user_segments"))
            """)
        #expect(out == ["exception", "TLBL", "1", "mode_change", "mtc0", "user", "3", "true", "true"])
    }
}
