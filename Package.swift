// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "flotilla",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "flotilla", targets: ["flotilla"]),
        .executable(name: "flotctl", targets: ["flotctl"]),
        .library(name: "VSphere", targets: ["VSphere"]),
        .library(name: "RemoteShell", targets: ["RemoteShell"]),
    ],
    dependencies: [
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.3"),
        .package(url: "https://github.com/vapor/fluent.git", from: "4.13.0"),
        .package(url: "https://github.com/vapor/fluent-sqlite-driver.git", from: "4.9.0"),
        .package(url: "https://github.com/vapor/fluent-postgres-driver.git", from: "2.14.0"),
        .package(url: "https://github.com/vapor/leaf.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssh.git", from: "0.15.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        // vSphere SOAP client: no web framework inside.
        .target(
            name: "VSphere",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // SSH client for in-guest work: no web framework inside.
        .target(
            name: "RemoteShell",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Reachability sweeps (ICMP echo over one socket, TCP connect fallback): no web framework inside.
        .target(name: "Reachability"),
        // SMTP client and message building for notifications (STARTTLS/TLS, AUTH): no web framework inside.
        .target(
            name: "Mail",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Programs on the platform's own machine, run as argv with a deadline (no web framework).
        .target(name: "ProgramRunner"),
        // Simulated guests for vcsim VMs: network/PID/UTS namespaces with sshd, driven by vSphere state.
        .target(
            name: "Lab",
            dependencies: [
                "VSphere",
                "ProgramRunner",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The web application: composes the libraries behind Vapor, Fluent and Leaf.
        .target(
            name: "App",
            dependencies: [
                "VSphere",
                "RemoteShell",
                "Lab",
                "Mail",
                "Reachability",
                "ProgramRunner",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Fluent", package: "fluent"),
                .product(name: "FluentSQLiteDriver", package: "fluent-sqlite-driver"),
                .product(name: "FluentPostgresDriver", package: "fluent-postgres-driver"),
                .product(name: "Leaf", package: "leaf"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        .executableTarget(name: "flotilla", dependencies: ["App"]),
        // The command-line client on the REST API: no web framework inside, so it builds and starts fast.
        .executableTarget(
            name: "flotctl",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Release-build benchmarks of the libraries (see scripts/bench-*).
        .executableTarget(name: "vsphere-bench", dependencies: ["VSphere"], path: "Sources/VSphereBench"),
        .executableTarget(name: "remoteshell-bench", dependencies: ["RemoteShell"], path: "Sources/RemoteShellBench"),
        .executableTarget(name: "reachability-bench", dependencies: ["Reachability"], path: "Sources/ReachabilityBench"),
        .testTarget(
            name: "AppTests",
            dependencies: ["App", "Lab", .product(name: "XCTVapor", package: "vapor")]
        ),
        .testTarget(name: "VSphereTests", dependencies: ["VSphere"]),
        .testTarget(name: "RemoteShellTests", dependencies: ["RemoteShell"]),
        .testTarget(name: "ReachabilityTests", dependencies: ["Reachability"]),
        .testTarget(
            name: "MailTests",
            dependencies: ["Mail", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            exclude: ["smtp_test_server.py"]
        ),
        .testTarget(name: "LabTests", dependencies: ["Lab", "VSphere", "RemoteShell"]),
        // Real `flotilla serve` processes on one PostgreSQL behind nginx (scripts/cluster); needs root.
        .testTarget(
            name: "ClusterTests",
            dependencies: [
                "Lab",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Runs the built `flotilla` and `flotctl` programs; builds neither.
        .testTarget(
            name: "ClientTests",
            dependencies: [
                "Lab", .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
            ],
            exclude: ["tls_relay.py"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
