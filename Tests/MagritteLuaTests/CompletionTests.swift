import Testing
@testable import MagritteLua

/// Tab completion as the console asks for it: `completions(for: textBeforeTheCursor)`.
@Suite struct CompletionTests {
    func api(_ setup: String = "") throws -> MagritteLua {
        let m = MagritteLua()
        m.writeOut = { _ in }
        try m.lua.run(setup)
        return m
    }

    @Test func globalsAndKeywords() throws {
        let m = try api()
        #expect(m.completions(for: "pri") == ["print"])
        #expect(m.completions(for: "x = fun").contains("function"))
        #expect(m.completions(for: "mag") == ["magritte"])
    }

    @Test func fieldsOfTablesAndTheirIndexChain() throws {
        let m = try api("t = setmetatable({alpha = 1, [2] = 'x', ['no name'] = 3}, {__index = {beta = 2}})")
        #expect(m.completions(for: "t.") == ["t.alpha", "t.beta"])
        #expect(m.completions(for: "string.fo") == ["string.format"])
        #expect(m.completions(for: "magritte.ma") == ["magritte.machine"])
    }

    @Test func methodsAfterAColon() throws {
        let m = try api("s = 'text'; t = {f = function() end, n = 1}")
        #expect(m.completions(for: "s:up") == ["s:upper"])
        #expect(m.completions(for: "t:") == ["t:f"])
    }

    @Test func fieldsAndMethodsOfMagritteObjects() throws {
        let m = try api("m = magritte.machine{}")
        let cpu = m.completions(for: "m.cpu.")
        #expect(cpu.contains("m.cpu.pc") && cpu.contains("m.cpu.hi") && cpu.contains("m.cpu.lo") && cpu.contains("m.cpu.mode"))
        #expect(cpu.contains("m.cpu.a0") && cpu.contains("m.cpu.gpr") && cpu.contains("m.cpu.cp0"))
        #expect(m.completions(for: "m.cpu.cp0.sta") == ["m.cpu.cp0.status"])
        let methods = m.completions(for: "m:")
        #expect(methods.contains("m:run") && methods.contains("m:step"))
        #expect(!methods.contains("m:cpu"))
        #expect(m.completions(for: "print(m.cpu.p").contains("m.cpu.pc"))
    }

    @Test func nothingToCompleteIsEmptyAndHarmless() throws {
        let m = try api("""
            bad = setmetatable({}, {__index = function() error("no") end})
            slow = setmetatable({}, {__index = function() while true do end end})
            """)
        #expect(m.completions(for: "x = 1.").isEmpty)
        #expect(m.completions(for: "print(\"m.").isEmpty)
        #expect(m.completions(for: "nosuch.").isEmpty)
        #expect(m.completions(for: "bad.x.").isEmpty)
        #expect(m.completions(for: "slow.x.").isEmpty)
        #expect(m.completions(for: "a..b").isEmpty)
        // The state still works, with the stack balanced.
        let top = m.lua.top
        #expect(try m.lua.run("return 1 + 1") == ["2"])
        #expect(m.lua.top == top)
    }
}
