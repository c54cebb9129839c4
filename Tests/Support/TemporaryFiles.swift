import Foundation

/// Files in the temporary directory under unique names, removed by `remove()` (call it in a
/// `defer`).
public final class TemporaryFiles {
    private var made: [URL] = []

    public init() {}

    /// A new unique path ending in `name` (the file is not created).
    public func url(_ name: String) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID().uuidString)-\(name)")
        made.append(url)
        return url
    }

    public func remove() {
        for url in made { try? FileManager.default.removeItem(at: url) }
    }
}
