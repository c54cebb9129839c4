import Foundation
import Testing
@testable import MagritteLua

/// A guest under the VMM is as debuggable as a bare machine (issue 13, item 5): memory of every
/// size and strings (guest-virtual and guest-physical), disassembly, registers, breakpoints,
/// watches, per-instruction and mode-change events for one guest. The oracle is the same
/// program on a bare machine: what the guest's hooks see must be what the machine's see.
@Suite struct GuestDebugTests {
    static let guestsBuilt = VMMAPITests.guestsBuilt
    func run(_ script: String) throws -> [String] { try VMMAPITests().run(script) }
    func error(_ script: String) throws -> String { try VMMAPITests().error(script) }

    /// Two guests of one image, with tiny slices so that they switch all the time.
    static let two = """
        local v = magritte.vmm{ram = "16M", slice = 5}
        local a = v:add{image = HELLO, ram = "4M", name = "a"}
        local b = v:add{image = HELLO, ram = "4M", name = "b"}
        local bare = magritte.machine{image = HELLO}
        local main = a:symbol("main")

        """

    @Test(.enabled(if: guestsBuilt)) func memoryOfEverySizeAndStrings() throws {
        let out = try run(Self.two + """
            assert(a.mem:read32(main) == bare.mem:read32(main) and a.phys:read32(main & 0x1fffffff) == a.mem:read32(main))
            assert(a:disasm(main, 6) == bare:disasm(main, 6), a:disasm(main, 6))
            a.mem:write32(0x80300000, 0x11223344)
            a.mem:write16(0x80300004, 0xbeef)
            a.phys:write8(0x300006, 0x7f)
            a.mem:write_string(0x80300010, "guest text")
            return a.mem:read16(0x80300000), a.mem:read8(0x80300003), a.phys:read32(0x300004), a.mem:read_string(0x80300010),
              a.phys:read_bytes(0x300010, 5), b.mem:read32(0x80300000), a:read32(0xa0300000), tostring(a.mem), tostring(b.phys)
            """)
        #expect(out == ["13124", "17", "8371951", "guest text", "guest", "0", "287454020",
                        "magritte.memory(a, guest virtual)", "magritte.memory(b, guest physical)"])
    }

    @Test(.enabled(if: guestsBuilt)) func memoryErrors() throws {
        let g = Self.two
        #expect(try error(g + "a.mem:read32(0x1000)") == "guest virtual address 0x00001000 cannot be read (not mapped by the guest, or not its RAM)")
        #expect(try error(g + "a.mem:write8(0x1000, 1)")
            == "guest virtual address 0x00001000 cannot be written (not mapped writable by the guest, or not its RAM)")
        #expect(try error(g + "a.phys:read32(0x400000)") == "guest physical address 0x00400000 cannot be read (not the guest's RAM)")
        #expect(try error(g + "a.phys:read16(0x3ffffff)") == "guest physical address 0x03ffffff cannot be read (not the guest's RAM)")
        #expect(try error(g + "a.phys:write32(0x1f000000, 1)") == "guest physical address 0x1f000000 cannot be written (not the guest's RAM)")
        #expect(try error(g + "a:disasm(0, 0)") == "disasm: count must be 1..100000")
        #expect(try error(g + "a:on('tlb_write', print)") == "unknown event 'tlb_write' (mode_change, instruction, memory)")
        #expect(try error(g + "a:watch(0, 4, 'x')") == "watch: access must be \"r\", \"w\" or \"rw\"")
        #expect(try error(g + "a:on('memory', print, {adress = 0})") == "on('memory'): unknown option 'adress' (valid options: access, address, size)")
    }

    /// A breakpoint stops its guest before the instruction and no other; resuming runs it (also
    /// after the other guest ran in between).
    @Test(.enabled(if: guestsBuilt)) func breakpointsStopExactlyInTheirGuest() throws {
        let out = try run(Self.two + """
            local hb = b:break_at(main)
            local r1, i1 = v:run()
            assert(b.pc == main and a.pc ~= main and b:dump():find("pc   " .. magritte.hex(main):sub(3), 1, true), b:dump())
            local r2 = v:run()
            bare:run()
            local first = {r1, i1.guest, tostring(i1.pc == main), hb.hits, r2, tostring(a.console == bare.console and b.console == bare.console)}
            -- both guests, one with a condition: each stops once, in turn
            local w = magritte.vmm{ram = "16M", slice = 3}
            local c, d = w:add{image = HELLO, ram = "4M", name = "c"}, w:add{image = HELLO, ram = "4M", name = "d"}
            local hc = c:break_at(main, function() return c.mem:read32(main) ~= 0 end)
            local hd = d:break_at(main)
            local s1, j1 = w:run()
            local at1 = tostring(c.pc == main)
            local s2, j2 = w:run()
            return table.concat(first, " "), table.concat({s1, j1.guest, at1, s2, j2.guest, tostring(d.pc == main), (w:run())}, " ")
            """)
        #expect(out == ["breakpoint b true 1 poweroff true", "breakpoint c true breakpoint d true poweroff"])
    }

    /// The instructions one guest's hook sees are the bare machine's, one by one, although the
    /// guests switch every few instructions and the VMM fills TLB entries unseen (an instruction
    /// retried after a hidden fill is reported once).
    @Test(.enabled(if: guestsBuilt)) func instructionEventsAreTheBareMachines() throws {
        let out = try run(Self.two + """
            local seen, expected = {}, {}
            b:on("instruction", function(pc) seen[#seen + 1] = pc end)
            bare:on("instruction", function(pc) expected[#expected + 1] = pc end)
            v:run(6000)
            bare:run(#seen)
            for i = 1, #seen do assert(seen[i] == expected[i], ("instruction %d: 0x%08x, bare 0x%08x"):format(i, seen[i], expected[i])) end
            return #seen > 2500, #seen == b.instructions
            """)
        #expect(out == ["true", "true"])
    }

    /// A watch of one guest fires on its access only, with the bare machine's address, value
    /// and pc (and the guest-physical address).
    @Test(.enabled(if: guestsBuilt)) func watchesSeeOneGuestsAccesses() throws {
        let out = try run(Self.two + """
            local sp = a:symbol("rt_stack_top")
            local bw = bare:watch(sp - 8, 4, "w")
            local _, e = bare:run()
            local w = b:watch(sp - 8, 4, "w")
            local reason, g = v:run()
            return reason, g.guest, g.address == e.address, g.value == e.value, g.pc == e.pc, g.physical == (e.address & 0x1fffffff), w.hits
            """)
        #expect(out == ["watch", "b", "true", "true", "true", "true", "1"])
    }

    /// One guest's mode changes (virtual: the VMM's, not the CPU's) are the bare machine's:
    /// from, to, cause and pc, all 80 of user_segments; a mode breakpoint stops there.
    @Test(.enabled(if: guestsBuilt)) func modeChangesAreTheBareMachines() throws {
        let out = try run("""
            local image = HELLO:gsub("hello", "user_segments")
            local v = magritte.vmm{ram = "16M", slice = 50}
            local a = v:add{image = image, ram = "4M", name = "a"}
            local b = v:add{image = image, ram = "4M", name = "b"}
            local m = magritte.machine{image = image}
            local function record(t) return function(e) t[#t + 1] = ("%s>%s %s 0x%08x"):format(e.from, e.to, e.cause, e.pc) end end
            local seen, expected = {}, {}
            b:on("mode_change", record(seen))
            m:on("mode_change", record(expected))
            v:run(); m:run()
            assert(#seen == #expected, #seen .. " " .. #expected)
            for i = 1, #seen do assert(seen[i] == expected[i], i .. ": " .. seen[i] .. " bare " .. expected[i]) end
            local w = magritte.vmm{ram = "16M", slice = 50}
            local c = w:add{image = image, ram = "4M", name = "c"}
            c:break_on_mode("kernel", "user")
            local reason, info = w:run()
            return #seen, reason, info.guest, info.to, c.mode
            """)
        #expect(out == ["80", "mode_change", "c", "user", "user"])
    }
}
