import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import MagritteLua

/// The timeline picture (issue 13, item 8): `vmm:timeline()` and `magritte vmm --timeline` write
/// SVG that parses as XML, with a lane per guest whose slices add up to the VMM's statistics.
@Suite struct TimelineTests {
    static let teachos = MachineAPITests.guest("os/teachos")
    static let built = FileManager.default.fileExists(atPath: teachos)

    /// Per lane (guest name): slices, their instructions, exits and spun instructions, machine
    /// switches to it, waited intervals; read with Foundation's XMLParser.
    final class Lanes: NSObject, XMLParserDelegate {
        struct Lane: Equatable {
            var slices = 0, instructions = 0, exits = 0, spun = 0, switches = 0, waits = 0
        }
        var lanes: [String: Lane] = [:]
        var order: [String] = []
        var current: String?

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes a: [String: String] = [:]) {
            if name == "g", a["class"] == "lane", let g = a["data-guest"] {
                current = g
                order.append(g)
                lanes[g] = Lane()
            }
            guard let g = current else { return }
            switch (name, a["class"]) {
            case ("rect", "ran"):
                lanes[g]!.slices += 1
                lanes[g]!.instructions += Int(a["data-instructions"] ?? "") ?? -1_000_000
                lanes[g]!.exits += Int(a["data-exits"] ?? "") ?? -1_000_000
            case ("rect", "spun"): lanes[g]!.spun += Int(a["data-instructions"] ?? "") ?? -1_000_000
            case ("rect", "waited"): lanes[g]!.waits += 1
            case ("path", "switch"): lanes[g]!.switches += 1
            default: break
            }
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "g" { current = nil }
        }

        static func parse(_ svg: String) throws -> Lanes {
            let lanes = Lanes()
            let parser = XMLParser(data: Data(svg.utf8))
            parser.delegate = lanes
            #expect(parser.parse(), "not XML: \(parser.parserError.map { "\($0)" } ?? "")")
            return lanes
        }
    }

    @Test(.enabled(if: built)) func lanesAgreeWithTheStatistics() throws {
        let m = MagritteLua()
        m.writeOut = { _ in }
        let out = try m.lua.run("""
            local vmm = magritte.vmm{ram = "128M"}
            local a = vmm:add{image = "\(Self.teachos)", name = "waits", idle = "wait"}
            local b = vmm:add{image = "\(Self.teachos)", name = "spins", idle = "spin"}
            assert(vmm:run() == "poweroff")
            local line = {}
            for _, g in ipairs{a, b} do
              local s = g.stats
              line[#line + 1] = table.concat({g.name, s.instructions, s.exits, s.spin_instructions, s.switches, tostring(s.wait_cycles > 0)}, " ")
            end
            return vmm:timeline(), line[1], line[2]
            """, name: "=test")
        let lanes = try Lanes.parse(out[0])
        #expect(lanes.order == ["waits", "spins"])
        for stats in out[1...] {
            let f = stats.split(separator: " ").map(String.init)
            let lane = try #require(lanes.lanes[f[0]])
            #expect(lane.slices > 3)
            #expect(lane.instructions == Int(f[1]), "\(f[0])")
            #expect(lane.exits == Int(f[2]), "\(f[0])")
            #expect(lane.spun == Int(f[3]), "\(f[0])")
            #expect(lane.switches == Int(f[4]), "\(f[0])")
            #expect((lane.waits > 0) == (f[5] == "true"), "\(f[0])")
        }
        #expect(lanes.lanes["spins"]!.spun > 0 && lanes.lanes["waits"]!.waits > 0)
    }

    @Test(.enabled(if: built)) func errorsAndAnEmptyTimeline() throws {
        let m = MagritteLua()
        let out = try m.lua.run("""
            local vmm = magritte.vmm{ram = "16M"}
            local ok, err = pcall(vmm.timeline, vmm, "/nonexistent/dir/t.svg")
            local ok2, err2 = pcall(vmm.timeline, vmm, 5)
            return vmm:timeline():match("^<svg") ~= nil, err, err2
            """, name: "=test")
        #expect(out == ["true", "timeline: cannot write /nonexistent/dir/t.svg", "timeline: the path must end in .svg (got \"5\")"])
        #expect(try Lanes.parse(try m.lua.run("return magritte.vmm{ram = '16M'}:timeline()")[0]).order.isEmpty)
    }

    /// `magritte vmm … --timeline FILE`: the same picture from the command line.
    @Test(.enabled(if: built)) func commandLineWritesIt() throws {
        let exe = try #require(ConsoleTests.executable)
        let dir = try ConsoleTests.directory([:])
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("t.svg").path
        let o = try ConsoleTests.run(exe, ["vmm", Self.teachos, Self.teachos, "--name", "one", "--name", "two", "--timeline", file, "--stats"])
        #expect(o.status == 0, "\(o.err)")
        let lanes = try Lanes.parse(try String(contentsOfFile: file, encoding: .utf8))
        #expect(lanes.order == ["one", "two"])
        #expect(lanes.lanes.values.allSatisfy { $0.slices > 3 && $0.exits > 0 && $0.switches > 0 })
        let bad = try ConsoleTests.run(exe, ["vmm", Self.teachos, "--timeline", "/nonexistent/dir/t.svg"])
        #expect(bad.status == 1 && bad.err.contains("cannot write /nonexistent/dir/t.svg"), "\(bad.err)")
    }
}
