// swift-tools-version: 6.0
// A standalone package that embeds Magritte through its Swift API (Docs/embedding.md).
//
// By default it depends on the Magritte checkout two directories up (a path dependency). With
// MAGRITTE_URL and MAGRITTE_VERSION set it depends on Magritte by version, as any other package
// would: Scripts/check-embedding does that with a file:// URL to a tagged clone, so the build
// fails if a library target of Magritte ever carries unsafe build flags again.
import Foundation
import PackageDescription

let environment = Context.environment
let magritte: Package.Dependency
if let url = environment["MAGRITTE_URL"], let version = environment["MAGRITTE_VERSION"].flatMap({ Version($0) }) {
    magritte = .package(url: url, exact: version)
} else {
    magritte = .package(name: "Magritte", path: "../..")
}

let package = Package(
    name: "embed",
    platforms: [.macOS(.v13)],
    dependencies: [magritte],
    targets: [
        .executableTarget(
            name: "embed",
            dependencies: [
                .product(name: "MagritteCore", package: "Magritte"),
                .product(name: "MagritteMachine", package: "Magritte"),
                .product(name: "MagritteHypervisor", package: "Magritte"),
                .product(name: "MagritteLua", package: "Magritte"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
