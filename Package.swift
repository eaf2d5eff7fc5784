// swift-tools-version:6.0
import PackageDescription

// Layers (see docs/architecture.md): foundation (OCI, OCIRegistry) → domain → engines → surfaces (WardenCLI).
// Dependencies point downward only; Tests/OCITests/LayeringTests.swift enforces it.
let package = Package(
    name: "Warden",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "warden", targets: ["WardenCLI"]),
        // The development tools (random test content, a throttling proxy, benchmark drivers): not shipped.
        .executable(name: "warden-dev", targets: ["WardenDev"]),
        // The fuzzing harness (scripts/fuzz.sh builds it with libFuzzer and AddressSanitizer).
        .executable(name: "warden-fuzz", targets: ["WardenFuzz"]),
        .library(name: "OCI", targets: ["OCI"]),
        .library(name: "OCIRegistry", targets: ["OCIRegistry"]),
        .library(name: "OCITesting", targets: ["OCITesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swiftwasm/WasmKit", from: "0.4.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    ],
    targets: [
        // Foundation: OCI names, model, content stores, graph copy, image layout.
        .target(
            name: "OCI",
            dependencies: [
                "Documents",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Foundation: the OCI distribution client (registry content store).
        .target(
            name: "OCIRegistry",
            dependencies: [
                "Documents",
                "OCI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Domain: the CEL expression language (standard library only).
        .target(name: "CEL"),
        // Foundation for documents: strict YAML with positions, CEL conditions, IANA zones, private files.
        .target(
            name: "Documents",
            dependencies: ["CEL", .product(name: "Yams", package: "Yams")]
        ),
        // Domain: keys, signatures, attestations and their verification.
        .target(
            name: "Trust",
            dependencies: [
                "Documents",
                "OCI", "CEL",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // Domain: policy documents (CEL rules over an artifact's facts) and the facts gathered for them.
        .target(
            name: "Policy",
            dependencies: ["CEL", "Documents", "OCI", "Trust"]
        ),
        // Domain: known vulnerabilities: OSV advisories and their database, version orderings, matching with
        // explanations, CVSS, VEX and ignore rules, reports (SARIF, CycloneDX VDR, OpenVEX).
        .target(
            name: "Vulnerability",
            dependencies: [
                "CEL", "Documents", "Inventory", "Storage",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ]
        ),
        // Domain: triggers — normalised events, webhook receivers (Distribution, Harbor, zot, GitHub, Docker Hub, generic)
        // and trigger documents.
        .target(
            name: "Triggers",
            dependencies: ["CEL", "Documents", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Domain: findings and compliance — finding identity and discovery dates, SLA categories and due dates,
        // indexed rescorings, OpenVEX mapping, compliance snapshots, backlog priorities, issue documents.
        .target(
            name: "Findings",
            dependencies: ["Documents", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The system zlib (gzip layers).
        .systemLibrary(name: "SystemZlib", providers: [.apt(["zlib1g-dev"])]),
        // prctl(PR_SET_CHILD_SUBREAPER) for the process runtime's reaper (prctl is variadic).
        .systemLibrary(name: "CProcess"),
        // Domain: image filesystems (layers, whiteouts, tar), package catalogers, SBOM formats.
        .target(
            name: "Inventory",
            dependencies: [
                "OCI", "CEL", "SystemZlib", .product(name: "NIOCore", package: "swift-nio"), .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // Engine: durable workflows of supply-chain actions: definitions, the journalled engine, action runtimes.
        .target(
            name: "Workflow",
            dependencies: [
                "CEL", "CProcess", "Documents", "Storage",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "WasmKitWASI", package: "WasmKit"),
                .product(name: "WASI", package: "WasmKit"),
            ]
        ),
        // Persistence: Warden's local state (SQLite through GRDB).
        .target(
            name: "Storage",
            dependencies: [.product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Engine: declarative, verified replication of upstream artifacts into an internal registry.
        .target(
            name: "Replicate",
            dependencies: [
                "Documents", "OCI", "OCIRegistry", "Trust", "Storage",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Application layer: one function per job, called by the CLI, the workflow actions and the HTTP API.
        .target(
            name: "WardenApp",
            dependencies: [
                "CEL", "Documents", "Findings", "OCI", "OCIRegistry", "Trust", "Policy", "Inventory", "Replicate", "Storage", "Triggers",
                "Vulnerability", "Workflow", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Surface: the built-in workflow actions, thin adapters from JSON inputs to the application layer.
        .target(
            name: "WardenActions",
            dependencies: [
                "WardenApp", "Workflow", "CEL", "Documents", "Findings", "OCI", "OCIRegistry", "Trust", "Policy", "Inventory", "Replicate",
                "Storage", "Vulnerability",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Surface: `warden serve`, the control plane's HTTP API (Hummingbird) over the application layer.
        .target(
            name: "WardenServer",
            dependencies: [
                "CEL", "Documents", "Findings", "Storage", "Triggers", "WardenApp", "Workflow",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "WardenFuzz",
            dependencies: ["CEL", "Documents", "Inventory", "OCI", "Policy", "Replicate", "Trust", "Vulnerability", "Workflow"]
        ),
        // Sample content: random, valid images, indexes and artifacts (the demo, tests and benchmarks).
        .target(name: "SampleContent", dependencies: ["OCI"]),
        // Test tools shipped as a product: random artifacts, a validator, real-peer harness, an in-process registry.
        .target(
            name: "OCITesting",
            dependencies: [
                "OCI", "SampleContent",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Surface helpers: the command-line plumbing the executables share (registry flags, output, error table).
        .target(
            name: "CommandSupport",
            dependencies: [
                "Documents", "OCI", "OCIRegistry", "WardenApp",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Surface: the `warden` command.
        .executableTarget(
            name: "WardenCLI",
            dependencies: [
                "CommandSupport",
                "Findings",
                "OCI",
                "OCIRegistry",
                "SampleContent",
                "Trust",
                "Documents",
                "Storage",
                "Replicate",
                "CEL",
                "Policy",
                "Inventory",
                "Vulnerability",
                "Workflow",
                "WardenApp",
                "WardenActions",
                "WardenServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Surface: `warden-dev`, the development tools.
        .executableTarget(
            name: "WardenDev",
            dependencies: [
                "CEL", "CommandSupport", "Documents", "Findings", "OCI", "OCIRegistry", "OCITesting", "Policy", "SampleContent", "Storage",
                "WardenApp", "Workflow", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "TrustTests",
            dependencies: [
                "Trust", "Documents", "OCI", "OCITesting", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .testTarget(name: "CELTests", dependencies: ["CEL"]),
        .testTarget(
            name: "VulnerabilityTests", dependencies: ["Vulnerability", "Inventory", "CEL", "Documents", "SampleContent", "Storage"],
            exclude: ["Data", "reference"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "OCITesting"]),
        .testTarget(name: "FindingsTests", dependencies: ["Findings", "Documents"]),
        .testTarget(name: "TriggersTests", dependencies: ["Triggers", "CEL", "Documents"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "AppTests",
            dependencies: [
                "WardenApp", "CEL", "Documents", "Findings", "Inventory", "OCI", "OCIRegistry", "OCITesting", "Replicate", "Storage", "Triggers",
                "Trust", "Vulnerability", "Workflow",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"), .product(name: "SwiftASN1", package: "swift-asn1"),
            ]),
        .testTarget(name: "WorkflowTests", dependencies: ["Workflow", "CEL", "Trust", "Storage", "OCITesting"]),
        .testTarget(
            name: "InventoryTests", dependencies: ["Inventory", "OCI", "OCITesting", "CEL", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(
            name: "PolicyTests", dependencies: ["Policy", "CEL", "Trust", "OCI", "OCITesting", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(
            name: "ReplicateTests",
            dependencies: ["Replicate", "Storage", "Trust", "OCI", "OCITesting", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "WardenServer", "WardenApp", "WardenActions", "Findings", "Storage", "Triggers", "Workflow", "Documents", "CEL", "OCITesting", "OCI",
                "OCIRegistry", "Inventory",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "OCITests",
            dependencies: ["OCI", "OCIRegistry", "OCITesting"]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "OCI", "OCIRegistry", "OCITesting", "Trust", "Storage", "Replicate", "Policy", "CEL", "Inventory", "Workflow",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ]
)
