import CMagritteLua
import MagritteCore
import MagritteHypervisor
import MagritteMachine

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `magritte` Lua module: one Lua state with machines, CPUs, memory, hooks and traces as Lua
/// objects (see Docs/lua-api.md).
public final class MagritteLua {
    public let lua: LuaState
    /// Where machines echo console output (stdout by default).
    public var writeOut: (UInt8) -> Void = { b in
        var c = b
        _ = write(1, &c, 1)
    }
    /// The machine currently inside `run` (for Ctrl-C).
    var running: LuaMachine?
    /// The VMM currently inside `run` or a guest's `step` (for Ctrl-C).
    var runningVMM: LuaVMM?

    let machineClass = LuaClass<LuaMachine>("magritte.machine")
    let cpuClass = LuaClass<CPUView>("magritte.cpu")
    let gprClass = LuaClass<CPUView>("magritte.gpr")
    let cp0Class = LuaClass<CPUView>("magritte.cp0")
    let memoryClass = LuaClass<MemoryView>("magritte.memory")
    let handleClass = LuaClass<HookHandle>("magritte.handle")
    let vmmClass = LuaClass<LuaVMM>("magritte.vmm")
    let guestClass = LuaClass<LuaGuest>("magritte.guest")
    let guestCP0Class = LuaClass<LuaGuest>("magritte.guest_cp0")
    let snapshotClass = LuaClass<LuaSnapshot>("magritte.snapshot")

    public init() {
        lua = LuaState()
        defineMachine()
        defineSnapshot()
        defineCPU()
        defineMemory()
        defineHandle()
        defineVMM()
        defineModule()
        defineGDB()
    }

    /// Interrupts whatever runs: a guest in `run` stops at the next instruction boundary and Lua
    /// code raises "interrupted!". Only sets flags, so a signal handler may call it.
    public func interrupt() {
        if let m = running {
            m.interrupted = true
            m.cpu.requestStop()
        }
        if let v = runningVMM {
            v.interrupted = true
            v.vmm.stop()
        }
        mg_interrupt(lua.L)
    }

    // MARK: The module table

    func defineModule() {
        let L = lua.L
        lua_createtable(L, 0, 8)
        lua.push(function: { [unowned self] call in try self.newMachine(call) }, name: "magritte.machine")
        lua_setfield(L, -2, "machine")
        lua.push(function: { [unowned self] call in try self.newVMM(call) }, name: "magritte.vmm")
        lua_setfield(L, -2, "vmm")
        lua.push("0.1")
        lua_setfield(L, -2, "version")
        lua.push(function: { call in
            let word = try call.word(1, "word")
            let pc = try call.optionalWord(2, "pc") ?? 0
            call.state.push(Disassembler.text(word: word, pc: pc))
            return 1
        }, name: "magritte.disasm_word")
        lua_setfield(L, -2, "disasm_word")
        lua.push(function: { [unowned self] call in
            if lua_type(call.state.L, 1) == LUA_TTABLE {
                call.state.push(show(at: 1, hex: true))  // a table's integers in hex
                return 1
            }
            let v = try call.word(1)
            call.state.push("0x" + Hex.word(v))
            return 1
        }, name: "magritte.hex")
        lua_setfield(L, -2, "hex")
        lua.push(Names.exceptionList)
        lua_setfield(L, -2, "exceptions")
        defineShowAndHelp()
        lua_pushvalue(L, -1)
        lua_setglobal(L, "magritte")
        // require("magritte") finds it too
        lua_getglobal(L, "package")
        lua_getfield(L, -1, "loaded")
        lua_pushvalue(L, -3)
        lua_setfield(L, -2, "magritte")
        mg_pop(L, 3)
    }

    /// magritte.machine{ram = "64M", tlb = 16, image = "x.elf", append = "...", initrd = "f.gz", echo = false, engine = "jit"}
    func newMachine(_ call: LuaCall) throws -> Int32 {
        var config = MaltaConfiguration()
        var image: String?
        var initrd: String?
        var echo = false
        if !call.isNoneOrNil(1) {
            try call.options(1, "magritte.machine", ["ram", "tlb", "append", "image", "initrd", "echo", "engine"])
            switch call.field(1, "ram") {
            case .none: break
            case .integer(let n):
                guard n >= 1 << 20, n <= 256 << 20, n % 4096 == 0 else {
                    throw LuaError("ram must be a multiple of 4 KiB from 1 MiB to 256 MiB (got \(n))")
                }
                config.ramSize = Int(n)
            case .string(let s):
                do { config.ramSize = try MaltaConfiguration.ramSize(parsing: s) } catch { throw LuaError("ram: \(error)") }
            default: throw LuaError("ram must be a size such as \"64M\" or a number of bytes")
            }
            switch call.field(1, "tlb") {
            case .none: break
            case .integer(let n) where (1...64).contains(n): config.cpu.tlbEntries = Int(n)
            default: throw LuaError("tlb must be a number of TLB entries from 1 to 64")
            }
            switch call.field(1, "append") {
            case .none: break
            case .string(let s): config.commandLine = s
            default: throw LuaError("append must be a string (the kernel command line)")
            }
            switch call.field(1, "image") {
            case .none: break
            case .string(let s): image = s
            default: throw LuaError("image must be the path of an ELF file")
            }
            switch call.field(1, "initrd") {
            case .none: break
            case .string(let s): initrd = s
            default: throw LuaError("initrd must be the path of an initial RAM disk (QEMU's -initrd)")
            }
            switch call.field(1, "echo") {
            case .none: break
            case .boolean(let b): echo = b
            default: throw LuaError("echo must be a boolean")
            }
            switch call.field(1, "engine") {
            case .none: break
            case .string(let s) where Engine(rawValue: s) != nil: config.cpu.engine = Engine(rawValue: s)!
            default: throw LuaError("engine must be \"jit\" or \"interpreter\"")
            }
        }
        let board: Malta
        do { board = try Malta.make(configuration: config) } catch { throw LuaError("machine: \(error.message)") }
        let machine = LuaMachine(board: board, api: self)
        machine.echo = echo
        if let image { try load(machine, image) }
        if let initrd {
            // Placed above the kernel and announced on the command line, as by QEMU (Docs/linux.md).
            do { try board.loadInitrd(path: initrd) } catch { throw LuaError("initrd: \(error.message)") }
            if image != nil { board.boot() }
        }
        machineClass.push(machine, in: lua)
        return 1
    }

    func load(_ m: LuaMachine, _ path: String) throws {
        try notRunning(m, "load")
        do {
            try m.board.load(path: path)
        } catch {
            throw LuaError("cannot load \(path): \(error.message)" + missingGuestHint(path, error))
        }
        m.board.boot()
        m.console.removeAll()
        m.echoed.removeAll()
    }
}

/// The CPU of a machine, for `m.cpu`, `m.cpu.gpr` and `m.cpu.cp0`.
final class CPUView {
    let machine: LuaMachine
    init(_ m: LuaMachine) { machine = m }
    var cpu: CPU { machine.cpu }
}

/// An address space as `m.mem`, `m.phys`, `g.mem` and `g.phys` show it: one set of methods
/// (Docs/lua-api.md, "Memory") over the accessors of a machine or of a guest. The accessors
/// keep what they read alive.
final class MemoryView {
    /// "virtual", "physical", "guest virtual", "guest physical": for messages.
    let space: String
    /// Who answers: the description of the view.
    let owner: String
    let read: (UInt32, Int) -> UInt32?
    let write: (UInt32, Int, UInt32) -> Bool
    /// Why a read or a write failed.
    let unreadable: String
    let unwritable: String

    init(space: String, owner: String, unreadable: String, unwritable: String,
         read: @escaping (UInt32, Int) -> UInt32?, write: @escaping (UInt32, Int, UInt32) -> Bool) {
        self.space = space
        self.owner = owner
        self.unreadable = unreadable
        self.unwritable = unwritable
        self.read = read
        self.write = write
    }

    /// `m.mem` (through the current translation) or `m.phys`.
    convenience init(_ m: LuaMachine, physical: Bool) {
        if physical {
            self.init(space: "physical", owner: "", unreadable: "nothing answers there", unwritable: "nothing answers there",
                      read: { a, n in m.cpu.readPhysical(a, size: n) }, write: { a, n, v in m.cpu.writePhysical(a, size: n, value: v) })
        } else {
            self.init(space: "virtual", owner: "", unreadable: "not mapped in the current mode",
                      unwritable: "not mapped writable in the current mode",
                      read: { a, n in m.cpu.readVirtual(a, size: n) }, write: { a, n, v in m.cpu.writeVirtual(a, size: n, value: v) })
        }
    }
}

/// What `m:on(...)` and the `break_*` methods return: remove it to uninstall the hook. A handle
/// that is garbage-collected does NOT remove its hook (unlike MAME's notifiers), so hooks never
/// vanish silently.
final class HookHandle {
    let owner: any HookOwner
    let id: Int
    init(_ owner: any HookOwner, _ id: Int) {
        self.owner = owner
        self.id = id
    }

    var hook: Hook {
        get throws {
            guard let h = owner.hooks[id] else { throw LuaError("hook \(id) has been removed") }
            return h
        }
    }
}

/// For an image of `.build/guests` that is not there, how to get it: the guest programs are
/// build outputs, and the scenarios name them relative to the repository root.
func missingGuestHint(_ path: String, _ error: ELFError) -> String {
    guard error.kind == .unreadable, path.contains(".build/guests/") else { return "" }
    return " (build the guest programs with Scripts/build-guests, and run from the repository root)"
}

// MARK: Showing values and help

/// `magritte.show`, `magritte.hex` of a table and the global `help`: values as the console
/// prints them, and what a value offers, from the names Tab completion offers.
extension MagritteLua {
    /// The Lua side: `show(value, hex)` renders tables readably (sorted keys, nested up to 3
    /// levels, 64 entries a level, on one line when it fits in 80 columns, else several entries
    /// a line); `hex` shows integers as `magritte.hex` does.
    static let showSource = #"""
        local format, concat, sort, type, tostring, mtype, next = string.format, table.concat, table.sort, type, tostring, math.type, next
        local getmetatable = debug.getmetatable
        local show
        local function number(v, hex)
            if hex and mtype(v) == "integer" then
                -- As magritte.hex: 32-bit words in 8 digits (-2^31 .. -1 wrap), others as they are.
                if v >= -0x80000000 and v <= 0xffffffff then return format("0x%08x", v & 0xffffffff) end
                return v < 0 and format("-0x%x", -v) or format("0x%x", v)
            end
            return tostring(v)
        end
        local function key(k, hex)
            if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
            return "[" .. show(k, hex, 0, "") .. "]"
        end
        function show(v, hex, depth, indent)
            local t = type(v)
            if t == "number" then return number(v, hex) end
            if t == "string" then return depth == nil and v or (format("%q", v):gsub("\\\n", "\\n")) end
            if t ~= "table" then return tostring(v) end
            local mt = getmetatable(v)
            if type(mt) == "table" and mt.__tostring ~= nil then return tostring(v) end
            depth, indent = depth or 3, indent or ""
            if next(v) == nil then return "{}" end
            if depth <= 0 then return "{…}" end
            local n, keys = #v, {}
            for k in next, v do
                if not (mtype(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
            end
            sort(keys, function(a, b)
                local ta, tb = type(a), type(b)
                if ta == tb and (ta == "number" or ta == "string") then return a < b end
                if ta ~= tb then return ta < tb end
                return tostring(a) < tostring(b)
            end)
            local inner, parts = indent .. "  ", {}
            for i = 1, math.min(n, 64) do parts[#parts + 1] = show(v[i], hex, depth - 1, inner) end
            if n > 64 then parts[#parts + 1] = format("… (%d more)", n - 64) end
            for i = 1, math.min(#keys, 64) do
                parts[#parts + 1] = key(keys[i], hex) .. " = " .. show(v[keys[i]], hex, depth - 1, inner)
            end
            if #keys > 64 then parts[#parts + 1] = format("… (%d more)", #keys - 64) end
            local line = "{" .. concat(parts, ", ") .. "}"
            if #line + #indent <= 80 and not line:find("\n") then return line end
            -- Several short entries a line, up to 80 columns; a multi-line entry on its own.
            local lines, current = {}, nil
            for i, p in ipairs(parts) do
                local piece = p .. (i < #parts and "," or "")
                if current and not p:find("\n") and #inner + #current + 1 + #piece <= 80 then
                    current = current .. " " .. piece
                else
                    if current then lines[#lines + 1] = current end
                    current = piece
                end
                if p:find("\n") then lines[#lines + 1] = current; current = nil end
            end
            if current then lines[#lines + 1] = current end
            return "{\n" .. inner .. concat(lines, "\n" .. inner) .. "\n" .. indent .. "}"
        end
        return function(v, hex) return show(v, hex) end
        """#

    /// Defines `magritte.show(value [, "hex"])` and the global `help([value])`; the module table
    /// is on top of the stack.
    func defineShowAndHelp() {
        let L = lua.L
        lua.push(function: { [unowned self] call in
            let option = try call.optionalString(2)
            guard option == nil || option == "hex" else {
                throw LuaError("show: the second argument is \"hex\" (integers in hex) or nothing")
            }
            call.state.push(show(at: 1, hex: option == "hex"))
            return 1
        }, name: "magritte.show")
        lua_setfield(L, -2, "show")
        lua.push(function: { [unowned self] call in
            let text = call.count == 0 ? helpOverview() : help(at: 1)
            lua_getglobal(call.state.L, "print")
            call.state.push(text)
            lua_callk(call.state.L, 1, 0, 0, nil)
            return 0
        }, name: "help")
        lua_setglobal(L, "help")
    }

    static let showKey = "magritte.show"

    /// The value at `index` as `magritte.show` renders it.
    public func show(at index: Int32, hex: Bool = false) -> String {
        let L = lua.L
        let i = lua_absindex(L, index)
        pushRegistryFunction(MagritteLua.showKey, source: MagritteLua.showSource, name: "=(show)")
        lua_pushvalue(L, i)
        lua_pushboolean(L, hex ? 1 : 0)
        do {
            try lua.pcall(nargs: 2, nresults: 1)
        } catch {
            return lua.describe(at: i)
        }
        defer { mg_pop(L, 1) }
        return lua.string(at: -1) ?? lua.describe(at: i)
    }

    /// `help()`: how to start, and what the module offers.
    func helpOverview() -> String {
        """
        help(value) lists what a value offers (the names Tab completes): help(m), help(m.cpu), help(magritte).
        Start: m = magritte.machine{image = ".build/guests/tests/alu_rr.elf"}; m:run(); m.cpu:regs()
        magritte.show(v) prints tables readably (the console does it for results); magritte.hex(v) in hex.
        Documentation: Docs/lua-api.md (the API), Docs/console.md (this console).

        """ + helpOnModule()
    }

    private func helpOnModule() -> String {
        lua_getglobal(lua.L, "magritte")
        defer { mg_pop(lua.L, 1) }
        return help(at: -1)
    }

    /// `help(value)`: its type, then its fields and its methods, as completion lists them.
    func help(at index: Int32) -> String {
        let L = lua.L
        let i = lua_absindex(L, index)
        let methods = completionNames(ofValueAt: i, separator: ":").sorted()
        let methodSet = Set(methods)
        let fields = completionNames(ofValueAt: i, separator: ".").filter { !methodSet.contains($0) }.sorted()
        var title = lua.describe(at: i)
        if luaL_getmetafield(L, i, "__name") != LUA_TNIL {
            title = lua.string(at: -1) ?? title
            mg_pop(L, 1)
        } else if lua_type(L, i) == LUA_TTABLE {
            lua_getglobal(L, "magritte")
            title = lua_rawequal(L, -1, i) != 0 ? "magritte (the module)" : "a table"
            mg_pop(L, 1)
        }
        var out = title
        if fields.isEmpty && methods.isEmpty {
            let type = String(cString: lua_typename(L, lua_type(L, i)))
            return out + " (\(type)): nothing to list"
        }
        if !fields.isEmpty { out += "\n" + MagritteLua.wrap("fields:  ", fields) }
        if !methods.isEmpty {
            // A table's functions are called with ".", an object's methods with ":".
            out += "\n" + (lua_type(L, i) == LUA_TTABLE
                ? MagritteLua.wrap("functions: ", methods) : MagritteLua.wrap("methods: ", methods.map { ":" + $0 }))
        }
        return out
    }

    /// `label` and the names, comma-separated, wrapped under the label at 96 columns.
    static func wrap(_ label: String, _ names: [String]) -> String {
        var lines: [String] = []
        var line = "  " + label
        let indent = String(repeating: " ", count: line.count)
        for (n, name) in names.enumerated() {
            let piece = name + (n == names.count - 1 ? "" : ",")
            if line.count + piece.count > 96 && line != indent {
                lines.append(String(line.dropLast()))
                line = indent
            }
            line += piece + " "
        }
        lines.append(String(line.dropLast()))
        return lines.joined(separator: "\n")
    }
}
