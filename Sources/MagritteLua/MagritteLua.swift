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
        lua.push(function: { call in
            let v = try call.word(1)
            call.state.push("0x" + hex(v))
            return 1
        }, name: "magritte.hex")
        lua_setfield(L, -2, "hex")
        lua.push(Names.exceptionList)
        lua_setfield(L, -2, "exceptions")
        lua_pushvalue(L, -1)
        lua_setglobal(L, "magritte")
        // require("magritte") finds it too
        lua_getglobal(L, "package")
        lua_getfield(L, -1, "loaded")
        lua_pushvalue(L, -3)
        lua_setfield(L, -2, "magritte")
        mg_pop(L, 3)
    }

    /// magritte.machine{ram = "64M", tlb = 16, image = "x.elf", append = "...", initrd = "f.gz", echo = false}
    func newMachine(_ call: LuaCall) throws -> Int32 {
        var config = MaltaConfiguration()
        var image: String?
        var initrd: String?
        var echo = false
        if !call.isNoneOrNil(1) {
            try call.checkTable(1)
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
        }
        let board = Malta(configuration: config)
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
    }
}

/// The CPU of a machine, for `m.cpu`, `m.cpu.gpr` and `m.cpu.cp0`.
final class CPUView {
    let machine: LuaMachine
    init(_ m: LuaMachine) { machine = m }
    var cpu: CPU { machine.cpu }
}

/// Memory through the current translation (`m.mem`) or physical (`m.phys`).
final class MemoryView {
    let machine: LuaMachine
    let physical: Bool
    init(_ m: LuaMachine, physical: Bool) {
        machine = m
        self.physical = physical
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
