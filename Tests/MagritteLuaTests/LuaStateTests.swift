import Testing
@testable import MagritteLua

@Suite struct LuaStateTests {
    @Test func runsChunksAndReturnsValues() throws {
        let lua = LuaState()
        #expect(try lua.run("return 1 + 2, 'x', nil, true") == ["3", "x", "nil", "true"])
    }

    @Test func syntaxErrorsAreReported() {
        let lua = LuaState()
        #expect(throws: LuaError.self) { try lua.run("return +") }
    }

    @Test func runtimeErrorsCarryATraceback() {
        let lua = LuaState()
        do {
            try lua.run("local function f() error('boom') end f()", name: "=test")
            Issue.record("no error")
        } catch {
            #expect(error.message.contains("boom"))
            #expect(error.message.contains("stack traceback"))
        }
    }

    @Test func swiftFunctionsReceiveArgumentsAndRaiseErrors() throws {
        let lua = LuaState()
        lua.register("add") { call in
            let a = try call.integer(1), b = try call.integer(2)
            call.state.push(Int(a + b))
            return 1
        }
        #expect(try lua.run("return add(40, 2)") == ["42"])
        do {
            try lua.run("return add(1, 'x')")
            Issue.record("no error")
        } catch {
            #expect(error.message.contains("bad argument #2 (integer expected, got string)"))
        }
        // The error can be caught in Lua, and the state stays usable.
        #expect(try lua.run("return pcall(add, 1)") .first == "false")
        #expect(try lua.run("return add(1, 1)") == ["2"])
    }

    @Test func tostringErrorsDoNotEscape() throws {
        let lua = LuaState()
        let out = try lua.run("return setmetatable({}, {__tostring = function() error('no') end})")
        #expect(out.first?.contains("error in __tostring") == true)
    }
}
