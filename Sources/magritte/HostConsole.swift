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

    init() { buffer.reserveCapacity(4096) }

    func put(_ byte: UInt8) {
        buffer.append(byte)
        if buffer.count >= 4096 { flush() }
    }

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
/// On a terminal, canonical mode, echo and CR→NL translation are switched off (the guest
/// echoes, and Enter sends CR as on QEMU's `-nographic` console); signals stay on, and
/// Ctrl-C restores the terminal and exits with status 130.
final class StdinConsole: ConsoleInput {
    private var atEnd = false

    init() {
        guard isatty(0) != 0, tcgetattr(0, &savedTerminal) == 0 else { return }
        var raw = savedTerminal
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        raw.c_iflag &= ~tcflag_t(ICRNL | IXON)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        if tcsetattr(0, TCSANOW, &raw) == 0 {
            terminalChanged = true
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
        return Array(buffer[0..<n])
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
