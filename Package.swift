// swift-tools-version: 6.0
import PackageDescription

// Layers (each imports only those above it):
//   MagritteCore     — CPU core: decode, execute, CP0, TLB, exceptions, disassembler
//   MagritteMachine  — board and devices: physical bus, RAM, UART, Malta, ELF loader
//   MagritteHypervisor — the trap-and-emulate VMM
//   MagritteGDB      — the GDB remote stub over a bare machine or a VMM's guests
//   MagritteLua      — the Lua 5.4 bridge (C shim CMagritteLua over the system's liblua5.4)
//   magritte         — the command line and the Lua console (line editing: CEditLine over libedit)
//
// No target has unsafe build flags, so that a package can depend on Magritte by version
// (Examples/embed, checked by Scripts/check-embedding). Release builds use the default -O; the hot
// paths are written not to need -Ounchecked (wrapping arithmetic, unchecked pointers,
// @exclusivity(unchecked) on the CPU's hot state). The tests run guests for hundreds of millions
// of instructions: Scripts/test builds them with -O (see there).
let package = Package(
    name: "Magritte",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "MagritteCore", targets: ["MagritteCore"]),
        .library(name: "MagritteMachine", targets: ["MagritteMachine"]),
        .library(name: "MagritteHypervisor", targets: ["MagritteHypervisor"]),
        .library(name: "MagritteGDB", targets: ["MagritteGDB"]),
        .library(name: "MagritteLua", targets: ["MagritteLua"]),
        .executable(name: "magritte", targets: ["magritte"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "MagritteCore"),
        .target(name: "MagritteMachine", dependencies: ["MagritteCore"]),
        .target(name: "MagritteHypervisor", dependencies: ["MagritteCore", "MagritteMachine"]),
        .target(name: "MagritteGDB", dependencies: ["MagritteCore", "MagritteMachine", "MagritteHypervisor"]),
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        .target(name: "CMagritteLua", dependencies: ["CLua"]),
        .systemLibrary(name: "CEditLine", pkgConfig: "libedit", providers: [.apt(["libedit-dev"])]),
        .target(name: "MagritteLua", dependencies: ["CMagritteLua", "MagritteMachine", "MagritteHypervisor", "MagritteGDB"]),
        .executableTarget(
            name: "magritte",
            dependencies: [
                "MagritteMachine",
                "MagritteHypervisor",
                "MagritteLua",
                "MagritteGDB",
                "CEditLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "magritte-bench", dependencies: ["MagritteMachine", "MagritteHypervisor", "MagritteLua"]),
        // What the test targets share: the repository's paths, host tools, running processes.
        .target(name: "MagritteTestSupport", path: "Tests/Support"),
        .testTarget(name: "MagritteCoreTests", dependencies: ["MagritteCore", "MagritteTestSupport"]),
        .testTarget(name: "MagritteMachineTests", dependencies: ["MagritteMachine", "MagritteTestSupport"]),
        .testTarget(name: "OracleTests", dependencies: ["MagritteMachine", "MagritteTestSupport"]),
        .testTarget(name: "MagritteLuaTests", dependencies: ["MagritteLua", "MagritteTestSupport"]),
        .testTarget(name: "GDBTests", dependencies: ["MagritteGDB", "MagritteHypervisor", "MagritteMachine", "MagritteCore", "MagritteTestSupport"]),
        .testTarget(name: "HypervisorTests", dependencies: ["MagritteHypervisor", "MagritteMachine", "MagritteCore", "MagritteTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
