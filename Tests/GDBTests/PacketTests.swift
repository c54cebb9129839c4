import Testing
@testable import MagritteGDB

/// The framing layer: checksums, escapes, acknowledgements, interrupts, limits.
@Suite struct PacketFramingTests {
    @Test func framesWithTheChecksumGDBComputes() {
        // Checksums as gdb's own documentation gives them: "$g#67", "$OK#9a", "$?#3f".
        #expect(String(decoding: framePacket(Array("g".utf8)), as: UTF8.self) == "$g#67")
        #expect(String(decoding: framePacket(Array("OK".utf8)), as: UTF8.self) == "$OK#9a")
        #expect(String(decoding: framePacket(Array("?".utf8)), as: UTF8.self) == "$?#3f")
        #expect(String(decoding: framePacket([]), as: UTF8.self) == "$#00")
    }

    @Test func escapesTheFourSpecialBytes() {
        let framed = framePacket(Array("a$b#c}d*e".utf8))
        #expect(String(decoding: framed, as: UTF8.self).hasPrefix("$a}\u{04}b}\u{03}c}]d}\ne#"))
        var reader = PacketReader()
        guard case .packet(let payload)? = reader.feed(framed).first else { Issue.record("no packet"); return }
        #expect(unescapeBinary(payload[...]) == Array("a$b#c}d*e".utf8))
    }

    @Test func readsPacketsSplitAnyWay() {
        let wire = Array("+".utf8) + framePacket(Array("m80001000,4".utf8)) + Array("-$?#3f\u{03}".utf8)
        for cut in 0...wire.count {
            var reader = PacketReader()
            let events = reader.feed(wire[..<cut]) + reader.feed(wire[cut...])
            #expect(events == [.ack, .packet(Array("m80001000,4".utf8)), .nack, .packet(Array("?".utf8)), .interrupt])
        }
    }

    @Test func badChecksumsAndNonHexChecksumsAreCorrupt() {
        var reader = PacketReader()
        #expect(reader.feed(Array("$g#68".utf8)) == [.corrupt])
        #expect(reader.feed(Array("$g#zz".utf8)) == [.corrupt])
        #expect(reader.feed(Array("$g#6".utf8) + [0]) == [.corrupt])
        // A packet cut short by a new one is lost; the new one is read.
        #expect(reader.feed(Array("$gar$g#67".utf8)) == [.corrupt, .packet(Array("g".utf8))])
        #expect(reader.feed(Array("$g#67".utf8)) == [.packet(Array("g".utf8))])
    }

    @Test func anOversizedPacketIsDroppedWithoutGrowing() {
        var reader = PacketReader(maxPayload: 16)
        var wire = Array("$".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 10_000)
        var sum: UInt8 = 0
        for b in wire.dropFirst() { sum &+= b }
        wire += Array("#".utf8) + hexEncode([sum])
        #expect(reader.feed(wire) == [.corrupt])
        #expect(reader.feed(Array("$g#67".utf8)) == [.packet(Array("g".utf8))])
    }
}
