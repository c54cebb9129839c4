#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CEditLine
import MagritteLua

/// Ctrl-C while Lua code or a guest runs: `MagritteLua.interrupt()` stops the guest at the next
/// instruction boundary and makes Lua raise "interrupted!" (as lua.c's `laction` does with a
/// hook). At the prompt, Ctrl-C only interrupts the read, and the console clears the line.
///
/// The handler must not allocate, lock or touch the Lua state beyond `lua_sethook`. Its own state
/// lives behind a pointer allocated before the handler is installed (so its accesses escape
/// Swift's dynamic exclusivity checks), and `interrupt()` only retains the running machine (an
/// atomic increment), stores two flags (the machine's `interrupted`, the CPU's stop request)
/// and calls `lua_sethook`: no allocation, no lock. In debug builds those two stores go through
/// the exclusivity checks, which neither allocate nor lock; they could only trap if the signal
/// landed inside the main thread's own access to the same flag (a few instructions, once per CPU
/// batch); release builds (-enforce-exclusivity=unchecked) have no such window.
///
/// While armed, an interrupt that has not ended the chunk a second later is delivered again
/// (SIGALRM): a stop request that lands between two CPU batches can be lost, and a script may
/// catch "interrupted!". The third Ctrl-C ends the process, so a guest stuck where nothing checks
/// for a stop request cannot hold the terminal hostage.
enum Interrupt {
    struct State {
        var armed: sig_atomic_t = 0
        var count: sig_atomic_t = 0
        var target: UnsafeMutableRawPointer?
    }

    nonisolated(unsafe) static let state: UnsafeMutablePointer<State> = {
        let p = UnsafeMutablePointer<State>.allocate(capacity: 1)
        p.initialize(to: State())
        return p
    }()

    static let limit: sig_atomic_t = 3

    /// Installs the SIGINT and SIGALRM handlers.
    static func install() {
        _ = state
        _ = mg_set_signal_handler(SIGINT, { _ in
            let s = Interrupt.state
            guard s.pointee.armed != 0 else { return }
            s.pointee.count += 1
            if s.pointee.count >= Interrupt.limit {
                signal(SIGINT, SIG_DFL)
                raise(SIGINT)
                return
            }
            Interrupt.deliver()
            alarm(1)
        }, 0)
        _ = mg_set_signal_handler(SIGALRM, { _ in
            let s = Interrupt.state
            guard s.pointee.armed != 0, s.pointee.count > 0 else { return }
            Interrupt.deliver()
            alarm(1)
        }, 1)
    }

    private static func deliver() {
        guard let p = state.pointee.target else { return }
        Unmanaged<MagritteLua>.fromOpaque(p)._withUnsafeGuaranteedRef { $0.interrupt() }
    }

    /// Ctrl-C now interrupts `api` (which the caller keeps alive until `disarm`).
    static func arm(_ api: MagritteLua) {
        state.pointee.armed = 0
        state.pointee.count = 0
        state.pointee.target = Unmanaged.passUnretained(api).toOpaque()
        state.pointee.armed = 1
    }

    /// Ctrl-C now interrupts `api`, keeping the count (for a run over several states).
    static func retarget(_ api: MagritteLua) {
        state.pointee.armed = 0
        state.pointee.target = Unmanaged.passUnretained(api).toOpaque()
        state.pointee.armed = 1
    }

    static func disarm() {
        state.pointee.armed = 0
        alarm(0)
    }

    /// Whether Ctrl-C was pressed since `arm`.
    static var happened: Bool { state.pointee.count > 0 }
}
