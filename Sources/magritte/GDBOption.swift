import ArgumentParser
import MagritteGDB

/// `--gdb PORT` of `magritte boot` and `magritte vmm`: serves one debugger on 127.0.0.1:PORT
/// before the first instruction (Docs/gdb.md). Returns when it detaches or disconnects (the
/// run then goes on without it); exits when it kills the target.
func serveDebugger(_ target: any GDBTarget, port: UInt16) throws {
    let server: GDBServer
    do { server = try GDBServer(port: port) } catch {
        complain(error.message)
        throw ExitCode(1)
    }
    server.notice = { complain($0) }
    var stderr = StandardError()
    print("magritte: waiting for gdb on 127.0.0.1:\(server.port) (target remote :\(server.port))", to: &stderr)
    let end: GDBServer.End
    do { end = try server.serve(target) } catch {
        complain(error.message)
        throw ExitCode(1)
    }
    if end == .killed {
        complain("killed by the debugger")
        throw ExitCode(137)
    }
}
