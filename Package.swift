// swift-tools-version:6.0
import PackageDescription

// The server targets optimize across modules in release builds, so the UVHTTP
// hot path inlines into the code that calls it. UVHTTP and its C targets carry
// no unsafe flags, because SwiftPM rejects those in a package used as a
// dependency.
let optimized: [SwiftSetting] = [
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]

let package = Package(
    name: "pmsd",
    products: [
        .library(name: "UVHTTP", targets: ["UVHTTP"]),
        .executable(name: "pmsd", targets: ["pmsd"]),
        .executable(name: "uvhttp-hello", targets: ["UVHTTPHello"]),
    ],
    targets: [
        .systemLibrary(
            name: "CLibUV",
            path: "CSources/CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        .target(
            name: "CLLHTTP",
            path: "CSources/CLLHTTP"
        ),
        .target(
            name: "CUVHTTP",
            dependencies: ["CLibUV", "CLLHTTP"],
            path: "CSources/CUVHTTP"
        ),
        .target(
            name: "UVHTTP",
            dependencies: ["CUVHTTP"]
        ),
        .target(
            name: "PlexGeneral",
            dependencies: ["UVHTTP"],
            swiftSettings: optimized
        ),
        .executableTarget(
            name: "pmsd",
            dependencies: ["PlexGeneral", "UVHTTP"],
            swiftSettings: optimized
        ),
        .executableTarget(
            name: "UVHTTPHello",
            dependencies: ["UVHTTP"],
            path: "Examples/UVHTTPHello"
        ),
        .executableTarget(
            name: "pmsd-microbench",
            dependencies: ["PlexGeneral"],
            path: "Benchmarks/Micro",
            swiftSettings: optimized
        ),
        .testTarget(name: "UVHTTPTests", dependencies: ["UVHTTP"]),
        .testTarget(name: "PlexGeneralTests", dependencies: ["PlexGeneral", "UVHTTP"]),
    ]
)
