/// What `echo` wrote of one console to the host, by position in that console. Going back in
/// time and running forward again makes the same output again at the same positions; it is
/// written once. Output that differs from what was written replaces it from there on.
struct EchoTranscript {
    private var written: [UInt8] = []

    /// Whether the end of `console` from `start` (a byte, or a line) is new to the host; if so
    /// it is noted as written, and what followed it before is dropped. Bytes before `start` that
    /// were never written (echo was off) count as written.
    mutating func isNew(_ console: [UInt8], from start: Int) -> Bool {
        let end = console.count
        guard start < end else { return false }
        if written.count >= end && written[start..<end].elementsEqual(console[start..<end]) { return false }
        if written.count > start { written.removeSubrange(start...) }
        written.append(contentsOf: console[written.count..<end])
        return true
    }

    /// A new run (a load or reset): its output is written again.
    mutating func removeAll() { written.removeAll() }
}
