import MagritteGDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension MagritteLua {
    /// `m:gdb([port])`: serves gdb on 127.0.0.1:PORT (0 or none: a free port, printed on stderr)
    /// and blocks until the debugger detaches, kills or disconnects; returns "detached", "killed"
    /// or "disconnected". The machine keeps the state gdb left it in (Docs/gdb.md).
    func defineGDB() {
        machineClass.method("gdb") { [unowned self] m, call in
            let port = try call.optionalInteger(2) ?? 0
            guard (0...65535).contains(port) else { throw LuaError("gdb: the port must be 0...65535 (0: any free port), not \(port)") }
            try notRunning(m, "gdb")
            try checkRunnable(m, "gdb")
            let server: GDBServer
            do { server = try GDBServer(port: UInt16(port)) } catch { throw LuaError("\(error)") }
            server.notice = { MagritteLua.tellStderr($0) }
            MagritteLua.tellStderr("waiting for gdb on 127.0.0.1:\(server.port) (target remote :\(server.port))")
            let end: GDBServer.End
            do { end = try server.serve(MachineTarget(machine: m.board, timeTravel: m.timeTravel)) } catch { throw LuaError("\(error)") }
            lua.push("\(end)")
            return 1
        }
    }

    /// "magritte: LINE" on stderr.
    static func tellStderr(_ line: String) {
        var text = "magritte: \(line)\n"
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
