#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MagritteMachine

/// stderr as a `TextOutputStream`.
struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var s = string
        s.withUTF8 { buffer in writeAll(2, UnsafeRawBufferPointer(buffer)) }
    }
}

/// Writes all of `bytes` to `fd`, retrying on short writes and EINTR.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            return
        }
        offset += n
    }
}

/// The guest console's output to stdout: bytes are buffered and written at every batch end
/// (about a millisecond of guest time), before blocking for input, and at exit.
final class ConsoleOutput {
    private var buffer: [UInt8] = []
    /// With time travel (`keepTranscript`): the output of the machine's timeline so far, and
    /// how much of it was written. Going back restores the transcript of a checkpoint;
    /// re-executing from there makes the same output again, which is not written twice.
    private(set) var transcript: [UInt8]?
    private var shown = 0

    init() { buffer.reserveCapacity(4096) }

    func put(_ byte: UInt8) {
        if transcript != nil {
            transcript!.append(byte)
            guard transcript!.count > shown else { return }
            shown += 1
        }
        buffer.append(byte)
        if buffer.count >= 4096 { flush() }
    }

    /// Keeps the transcript from now on (nothing is written twice after `rewind`).
    func keepTranscript() { transcript = transcript ?? [] }

    /// The machine went back to where its output was `bytes`.
    func rewind(to bytes: [UInt8]) { transcript = bytes }

    func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { writeAll(1, $0) }
        buffer.removeAll(keepingCapacity: true)
    }
}

nonisolated(unsafe) private var savedTerminal = termios()
nonisolated(unsafe) private var terminalChanged = false

private func restoreTerminal() {
    if terminalChanged {
        tcsetattr(0, TCSANOW, &savedTerminal)
        terminalChanged = false
    }
}

/// The host's stdin as the guest console's input, read without blocking between batches.
///
/// On a terminal, canonical mode, echo, CR→NL translation and signal keys are switched off (the
/// guest echoes, Enter sends CR and Ctrl-C reaches the guest as on QEMU's `-nographic` serial
/// console). As there, Ctrl-A is an escape: Ctrl-A x ends the emulator (`onQuit`), Ctrl-A
/// Ctrl-A sends one Ctrl-A, Ctrl-A h lists these. SIGINT and SIGTERM sent from elsewhere restore
/// the terminal and exit with 130 and 143.
final class StdinConsole: ConsoleInput {
    private var atEnd = false
    /// Ctrl-A was typed: the next byte is a command.
    private var escape = false
    /// Whether Ctrl-A x was typed.
    private(set) var quitRequested = false
    /// Called once when Ctrl-A x is typed: stop the machine (its run then returns).
    var onQuit: (() -> Void)?
    /// Whether Ctrl-A escapes are recognised (on a terminal).
    let escapes: Bool

    static let escapeByte: UInt8 = 0x01

    init() {
        guard isatty(0) != 0, tcgetattr(0, &savedTerminal) == 0 else { escapes = false; return }
        escapes = true
        var raw = savedTerminal
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG)
        raw.c_iflag &= ~tcflag_t(ICRNL | IXON)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        if tcsetattr(0, TCSANOW, &raw) == 0 {
            terminalChanged = true
            // Ctrl-C is now a byte for the guest; a SIGINT sent by `kill` still ends the emulator.
            signal(SIGINT) { _ in
                restoreTerminal()
                _exit(130)
            }
            signal(SIGTERM) { _ in
                restoreTerminal()
                _exit(143)
            }
        }
    }

    /// `bytes` less the Ctrl-A escapes, which it carries out.
    func filter(_ bytes: [UInt8]) -> [UInt8] {
        guard escapes else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for b in bytes {
            if quitRequested { break }
            if !escape {
                if b == Self.escapeByte { escape = true } else { out.append(b) }
                continue
            }
            escape = false
            switch b {
            case UInt8(ascii: "x"), UInt8(ascii: "X"):
                quitRequested = true
                onQuit?()
            case Self.escapeByte, UInt8(ascii: "a"):
                out.append(Self.escapeByte)
            case UInt8(ascii: "h"), UInt8(ascii: "?"):
                var err = StandardError()
                print("\r\nC-a x    end the emulator\r\nC-a C-a  send C-a to the guest\r\nC-a h    this help\r", to: &err)
            default:
                break  // an unknown command is dropped, as QEMU's
            }
        }
        return out
    }

    /// Puts the terminal back as it was.
    func close() { restoreTerminal() }

    deinit { restoreTerminal() }

    func poll() -> [UInt8] {
        guard !atEnd, ready(timeout: 0) else { return [] }
        return readAvailable()
    }

    func waitForInput() -> [UInt8]? {
        while !atEnd {
            guard ready(timeout: -1) else { continue }
            let bytes = readAvailable()
            if !bytes.isEmpty { return bytes }
        }
        return nil
    }

    func waitForInput(timeoutNanoseconds nanoseconds: UInt64) -> [UInt8] {
        guard !atEnd else { return [] }
        let ms = Int32(clamping: (nanoseconds + 999_999) / 1_000_000)
        guard ready(timeout: ms) else { return [] }
        return readAvailable()
    }

    private func ready(timeout: Int32) -> Bool {
        let (n, revents) = pollStdin(timeout: timeout)
        if n < 0 { return false }
        if n > 0 && revents & Int16(POLLNVAL) != 0 { atEnd = true; return false }
        return n > 0
    }

    private func readAvailable() -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if n == 0 { atEnd = true; return [] }
        if n < 0 {
            if errno != EINTR && errno != EAGAIN { atEnd = true }
            return []
        }
        let bytes = filter(Array(buffer[0..<n]))
        if quitRequested { atEnd = true }
        return bytes
    }
}

/// Console input held until the guest is ready for it: bytes that arrive before `ready()` are
/// kept and delivered once it is true (the source is still read meanwhile, so that its Ctrl-A
/// escapes work). `magritte linux` holds input until the kernel's serial driver enables the
/// UART's receive interrupt, which it does when the console port is opened, just before /init
/// runs: before, the driver's probe (a loopback test) and FIFO resets would throw typed-ahead or
/// piped input away (as on QEMU's serial console). That is what lets
/// `printf 'ls /\nexit\n' | magritte linux` work.
final class HeldConsoleInput: ConsoleInput {
    let source: any ConsoleInput
    let ready: () -> Bool
    private var held: [UInt8] = []

    init(_ source: any ConsoleInput, until ready: @escaping () -> Bool) {
        self.source = source
        self.ready = ready
    }

    private func deliver(_ bytes: [UInt8]) -> [UInt8] {
        held += bytes
        guard ready(), !held.isEmpty else { return [] }
        defer { held = [] }
        return held
    }

    func poll() -> [UInt8] { deliver(source.poll()) }

    func waitForInput() -> [UInt8]? {
        // Blocking means the guest waits for input with nothing else to wake it: hand over
        // what is held rather than wait for a readiness that cannot come.
        if !held.isEmpty { defer { held = [] }; return held }
        return source.waitForInput()
    }

    func waitForInput(timeoutNanoseconds nanoseconds: UInt64) -> [UInt8] {
        deliver(source.waitForInput(timeoutNanoseconds: nanoseconds))
    }
}

/// poll(2) on stdin (a free function: inside `StdinConsole`, `poll` names its method).
private func pollStdin(timeout: Int32) -> (Int32, Int16) {
    var p = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
    let n = poll(&p, 1, timeout)
    return (n, p.revents)
}

/// A monotonic clock in seconds, for host timing in `--stats`.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Writes `text` to the file at `path` (created or truncated). False when it cannot be opened.
func writeFile(_ path: String, _ text: String) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { return false }
    var s = text
    s.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
    return close(fd) == 0
}
