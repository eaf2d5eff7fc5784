import Foundation
import OCI
import OCIRegistry
import OCITesting

func makeRegistries(credentials: [String: Credentials] = [:], _ configure: (inout RegistryConfiguration) -> Void = { _ in }) throws -> Registries {
    var c = RegistryConfiguration()
    c.retry.initialDelay = .milliseconds(20)
    c.connectTimeout = .seconds(2)
    c.credentials = CredentialResolver(explicit: credentials, configFiles: [], environment: [:])
    configure(&c)
    return try Registries(configuration: c)
}

/// Builds content in a fresh OCI layout and has skopeo push it to a registry: the source side of interop tests is
/// written by the independent client, not by Warden.
func skopeoPush(layout: String, tag: String, to reference: String, all: Bool = false, creds: String? = nil, preserveDigests: Bool = true)
    async throws
{
    var args = ["copy", "--dest-tls-verify=false"]
    if preserveDigests { args.append("--preserve-digests") }
    if all { args.append("--all") }
    if let creds { args += ["--dest-creds", creds] }
    args += ["oci:\(layout):\(tag)", "docker://\(reference)"]
    try await Skopeo.run(args)
}

/// Runs the CLI and returns exit status, stdout and stderr.
func warden(_ arguments: [String], environment: [String: String] = [:]) async throws -> (Int32, String, String) {
    try await runWarden(arguments, environment: environment)
}

/// Runs `warden-dev` (testdata, test-proxy, bench-*).
func wardenDev(_ arguments: [String]) async throws -> (Int32, String, String) {
    try await runWarden(arguments, executable: "warden-dev")
}

/// A fresh OCI layout holding one random image tagged `tag`, and the generator to make more content with.
func layoutWithImage(seed: UInt64, layerSizes: [Int], tag: String = "v1") async throws
    -> (path: String, store: LayoutStore, image: RawManifest, random: RandomContent)
{
    let path = try makeTemporaryDirectory()
    var random = RandomContent(seed: seed)
    let store = try LayoutStore(path: path)
    let image = try await random.pushImage(to: store, layerSizes: layerSizes)
    try await store.tag(image.descriptor, as: tag)
    return (path, store, image, random)
}

/// Runs one of the independent Python implementations in Tests/Interop; returns status, stdout and stderr.
func runInterop(_ script: String, _ args: [String]) async throws -> (Int32, String, String) {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Interop/\(script)").path
    let result = try await runProgram("/usr/bin/env", ["python3", path] + args)
    return (result.status, result.output, result.errorOutput)
}

func pythonSign(_ args: [String]) async throws -> (Int32, String, String) { try await runInterop("cosign_sign.py", args) }
func pythonInterop(_ args: [String]) async throws -> (Int32, String, String) { try await runInterop("sigstore_interop.py", args) }
