// swift-tools-version: 6.0
import PackageDescription

// Layers (each imports only those above it):
//   MagritteCore     — CPU core: decode, execute, CP0, TLB, exceptions, disassembler
//   MagritteMachine  — board and devices: physical bus, RAM, UART, Malta, ELF loader
//   MagritteHypervisor — the trap-and-emulate VMM
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
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        .target(name: "CMagritteLua", dependencies: ["CLua"]),
        .systemLibrary(name: "CEditLine", pkgConfig: "libedit", providers: [.apt(["libedit-dev"])]),
        .target(name: "MagritteLua", dependencies: ["CMagritteLua", "MagritteMachine", "MagritteHypervisor"]),
        .executableTarget(
            name: "magritte",
            dependencies: [
                "MagritteMachine",
                "MagritteHypervisor",
                "MagritteLua",
                "CEditLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "magritte-bench", dependencies: ["MagritteMachine", "MagritteHypervisor", "MagritteLua"]),
        .testTarget(name: "MagritteCoreTests", dependencies: ["MagritteCore"]),
        .testTarget(name: "MagritteMachineTests", dependencies: ["MagritteMachine"]),
        .testTarget(name: "OracleTests", dependencies: ["MagritteMachine"]),
        .testTarget(name: "MagritteLuaTests", dependencies: ["MagritteLua"]),
        .testTarget(name: "HypervisorTests", dependencies: ["MagritteHypervisor", "MagritteMachine", "MagritteCore"]),
    ],
    swiftLanguageModes: [.v6]
)
