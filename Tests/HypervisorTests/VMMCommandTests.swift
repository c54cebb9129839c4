import Foundation
import MagritteCore
import MagritteMachine
import MagritteTestSupport
import Testing
@testable import MagritteHypervisor

/// `magritte vmm`, run as a process: console lines per guest, exit statuses, errors, tables.
@Suite struct VMMCommandTests {
    /// The `magritte` built next to this test bundle (`swift build --build-tests` builds it).
    static let executable = Tools.magritte

    struct Result {
        var status: Int32
        var out: String
        var err: String
    }

    static func vmm(_ arguments: [String]) throws -> Result { try magritte(["vmm"] + arguments) }

    /// Runs `magritte ARGUMENTS` with no input.
    static func magritte(_ arguments: [String]) throws -> Result {
        let r = try runProcess(try #require(executable), arguments)
        return Result(status: r.status, out: r.out, err: r.err)
    }

    static let hello = GuestsUnderVMMTests.guest("tests/hello")
    static let teachos = GuestsUnderVMMTests.guest("os/teachos")

    /// The lines a guest wrote, from the interleaved "NAME| text" stream.
    static func lines(of name: String, in out: String) -> [String] {
        out.split(separator: "\n", omittingEmptySubsequences: false).compactMap { line -> String? in
            guard let bar = line.firstIndex(of: "|"), line[..<bar].trimmingCharacters(in: .whitespaces) == name else { return nil }
            let rest = line[line.index(after: bar)...]
            return String(rest.hasPrefix(" ") ? rest.dropFirst() : rest)
        }
    }

    @Test(.enabled(if: executable != nil)) func twoGuestsSideBySide() throws {
        let r = try Self.vmm([Self.hello, Self.teachos, "--append", "", "--append", "idle=wait", "--stats"])
        #expect(r.status == 0, "\(r.err)")
        let bareHello = try GuestsUnderVMMTests().bare(Self.hello).split(separator: "\n").map(String.init)
        let bareOS = try GuestsUnderVMMTests().bare(Self.teachos, append: "idle=wait").split(separator: "\n").map(String.init)
        #expect(Self.lines(of: "hello", in: r.out) == bareHello)
        func stable(_ l: [String]) -> [String] { l.filter { !$0.hasPrefix("timing:") } }
        #expect(stable(Self.lines(of: "teachos", in: r.out)) == stable(bareOS))
        // Every stdout line belongs to a guest; names are padded to one width.
        #expect(r.out.split(separator: "\n").allSatisfy { $0.hasPrefix("hello  | ") || $0.hasPrefix("teachos| ") })
        #expect(r.err.contains("hello: powered off") && r.err.contains("teachos: powered off"))
        #expect(r.err.contains("VMM entries:") && r.err.contains("cycles descheduled in wait"))
    }

    @Test(.enabled(if: executable != nil)) func namesAndRepeatedImages() throws {
        let r = try Self.vmm([Self.hello, Self.hello, Self.hello, "--name", "first"])
        #expect(r.status == 0, "\(r.err)")
        for name in ["first", "hello", "hello-2"] {
            #expect(Self.lines(of: name, in: r.out).first == "hello from the guest", "\(name)")
        }
    }

    @Test(.enabled(if: executable != nil)) func tablesAndSVG() throws {
        let svg = FileManager.default.temporaryDirectory.appendingPathComponent("flows-\(UUID().uuidString).svg")
        defer { try? FileManager.default.removeItem(at: svg) }
        let r = try Self.vmm([Self.teachos, "--table", "syscall", "--table", "tlb-miss", "--svg", svg.path])
        #expect(r.status == 0, "\(r.err)")
        for title in ["System call with a VMM", "Standard system call", "TLB miss with a VMM", "Standard TLB miss"] {
            #expect(r.out.contains(title), "\(title)")
        }
        let text = try String(contentsOf: svg, encoding: .utf8)
        #expect(text.hasPrefix("<svg") && text.contains("Operating System") && text.hasSuffix("</svg>\n"))
    }

    /// `--no-device-window` makes every guest device access an exit: the guest prints the same,
    /// and `--stats` reports the window's accesses only while it is on (and the translator's
    /// counters with the translator).
    @Test(.enabled(if: executable != nil)) func theDeviceWindowCanBeTurnedOff() throws {
        let rtcpoll = GuestsUnderVMMTests.guest("vmm/rtcpoll")
        let on = try Self.vmm([rtcpoll, "--stats", "--engine", "jit"])
        let off = try Self.vmm([rtcpoll, "--stats", "--engine", "jit", "--no-device-window"])
        #expect(on.status == 0 && off.status == 0, "\(on.err)\n\(off.err)")
        let console = Self.lines(of: "rtcpoll", in: on.out)
        #expect(console.contains { $0.hasPrefix("rtcpoll: PIT count changed") }, "\(on.out)")
        #expect(Self.lines(of: "rtcpoll", in: off.out) == console)
        #expect(on.err.contains("device window: ") && on.err.contains(" device accesses served without an exit"), "\(on.err)")
        #expect(!off.err.contains("device window:"), "\(off.err)")
        #expect(on.err.contains("jit: ") && on.err.contains("jit returns to the loop: "), "\(on.err)")
    }

    @Test(.enabled(if: executable != nil)) func exitStatusesAndErrors() throws {
        let limit = try Self.vmm([Self.teachos, "--max-instructions", "1000"])
        #expect(limit.status == 2 && limit.err.contains("instruction limit reached") && limit.err.contains("teachos"))

        let missing = try Self.vmm(["/nonexistent/kernel.elf"])
        #expect(missing.status == 1 && missing.err.contains("/nonexistent/kernel.elf"))

        let notELF = try Self.vmm([#filePath])
        #expect(notELF.status == 1 && notELF.err.contains(#filePath))

        let tooBig = try Self.vmm([Self.hello, Self.hello, "--guest-ram", "200M", "--guest-ram", "200M"])
        #expect(tooBig.status == 1 && tooBig.err.contains("needs 200 MiB"))

        let none = try Self.vmm([])
        #expect(none.status == 64 && none.err.contains("at least one guest image"))
        let names = try Self.vmm([Self.hello, "--name", "a", "--name", "b"])
        #expect(names.status == 64 && names.err.contains("2 names for 1 images"))
        let svg = try Self.vmm([Self.hello, "--svg", "/tmp/x.svg"])
        #expect(svg.status == 64 && svg.err.contains("--table"))
        let flow = try Self.vmm([Self.hello, "--table", "pagefault"])
        #expect(flow.status == 64)
        let slice = try Self.vmm([Self.hello, "--slice", "0"])
        #expect(slice.status == 64 && slice.err.contains("slice"))
        let dup = try Self.vmm([Self.hello, Self.hello, "--name", "x", "--name", "x"])
        #expect(dup.status == 1 && dup.err.contains("already exists"))
    }
}
