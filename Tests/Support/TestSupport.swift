import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What every test target shares: where the repository and the built guests are, how to find a
/// host tool or the `magritte` executable, and how to run a process with a time limit.

/// The repository and the files the build puts in it.
public enum Repository {
    /// The repository's root directory.
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The path of `.build/guests/NAME.elf` (built by `Scripts/build-guests`), e.g. `tests/hello`.
    public static func guest(_ name: String) -> String {
        root.appendingPathComponent(".build/guests/\(name).elf").path
    }

    /// Whether `Scripts/build-guests` has run (teachos and the hello program are there).
    public static var guestsBuilt: Bool {
        FileManager.default.fileExists(atPath: guest("os/teachos")) && FileManager.default.fileExists(atPath: guest("tests/hello"))
    }
}

/// Host tools, found on PATH and in the Swift toolchain's own directory (clang, ld.lld and
/// llvm-objdump ship with Swift).
public enum Tools {
    static let searchPath: [String] = {
        var dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        if let swift = dirs.lazy.map({ $0 + "/swift" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            dirs.append(URL(fileURLWithPath: swift).resolvingSymlinksInPath().deletingLastPathComponent().path)
        }
        return dirs
    }()

    /// The path of host tool `name`, or nil.
    public static func find(_ name: String) -> String? {
        searchPath.lazy.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public static let qemu = find("qemu-system-mipsel")
    public static let python = find("python3")
    public static let clang = find("clang")
    public static let lld = find("ld.lld")

    /// The `magritte` executable built next to this test bundle (`swift build --build-tests`).
    public static let magritte: String? = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("magritte").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }()
}

/// How a process ended and what it wrote.
public struct ProcessOutput: Sendable {
    /// The exit status, or 128 + the signal that ended it.
    public var status: Int32
    /// Killed by a signal (including the time limit's SIGKILL).
    public var signaled: Bool
    public var timedOut: Bool
    public var stdout: Data
    public var stderr: Data
    public var out: String { String(decoding: stdout, as: UTF8.self) }
    public var err: String { String(decoding: stderr, as: UTF8.self) }
    /// Exited by itself with status 0.
    public var succeeded: Bool { status == 0 && !signaled && !timedOut }
}

public struct ProcessError: Error, CustomStringConvertible {
    public let description: String
}

/// Runs `executable` with `arguments` in `directory` (default: the current one), `input` on its
/// standard input, the environment extended by `environment`; kills it (SIGKILL) after `timeout`
/// seconds. Input and output go through files, so a chatty process never blocks on a full pipe.
///
/// posix_spawn and a waitpid poll rather than Foundation's `Process`: on Linux, `Process`
/// termination handlers stop arriving once the parallel test cases have blocked every thread of
/// the cooperative pool, and a run that must be killed then hangs the whole test run.
public func runProcess(_ executable: String, _ arguments: [String], in directory: URL? = nil, input: Data = Data(),
                       environment: [String: String] = [:], timeout: TimeInterval = 600) throws -> ProcessOutput {
    let fm = FileManager.default
    let base = fm.temporaryDirectory.appendingPathComponent("magritte-proc-\(UUID().uuidString)").path
    let inPath = base + ".in", outPath = base + ".out", errPath = base + ".err"
    defer { for p in [inPath, outPath, errPath] { unlink(p) } }
    guard fm.createFile(atPath: inPath, contents: input) else {
        throw ProcessError(description: "cannot create files in \(fm.temporaryDirectory.path)")
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, inPath, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    // In another directory: through the shell (glibc's addchdir action is not visible to Swift).
    let command = directory.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0.path, executable] } ?? [executable]
    let argv: [UnsafeMutablePointer<CChar>?] = (command + arguments).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] =
        ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for p in argv { free(p) }
        for p in envp { free(p) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, command[0], &actions, nil, argv, envp)
    guard rc == 0 else {
        throw ProcessError(description: "cannot run \(executable): \(String(cString: strerror(rc)))")
    }
    var status: Int32 = 0
    var timedOut = false
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid || (r < 0 && errno != EINTR) { break }
        if Date() > deadline {
            timedOut = true
            kill(pid, SIGKILL)
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            break
        }
        usleep(2000)
    }
    let signaled = status & 0x7F != 0
    return ProcessOutput(status: signaled ? 128 + (status & 0x7F) : (status >> 8) & 0xFF, signaled: signaled, timedOut: timedOut,
                         stdout: fm.contents(atPath: outPath) ?? Data(), stderr: fm.contents(atPath: errPath) ?? Data())
}
