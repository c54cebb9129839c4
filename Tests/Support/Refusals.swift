import Testing

/// Expects `parse` to refuse `text` with an error whose message contains `message` (the input
/// logs' and snapshot files' tests of bad input).
public func expectRefused(_ text: String, _ message: String, by parse: (String) throws -> Void,
                          sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try parse(text)
        Issue.record("accepted: \(text.debugDescription)", sourceLocation: sourceLocation)
    } catch {
        #expect("\(error)".contains(message), "\(error)", sourceLocation: sourceLocation)
    }
}
