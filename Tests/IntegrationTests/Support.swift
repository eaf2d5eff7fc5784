import Foundation
import OCI
import OCIRegistry
import OCITesting

func tempDir() -> String {
    let d = NSTemporaryDirectory() + "warden-it-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

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
func skopeoPush(layout: String, tag: String, to reference: String, all: Bool = false, creds: String? = nil, preserveDigests: Bool = true) throws {
    var args = ["copy", "--dest-tls-verify=false"]
    if preserveDigests { args.append("--preserve-digests") }
    if all { args.append("--all") }
    if let creds { args += ["--dest-creds", creds] }
    args += ["oci:\(layout):\(tag)", "docker://\(reference)"]
    try Skopeo.run(args)
}

/// The `warden` executable built next to the tests.
func wardenBinary() throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    for config in ["debug", "release"] {
        let path = root.appendingPathComponent(".build/\(config)/warden").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw HarnessError("warden executable not found under .build/: run `swift build` first (scripts/test.sh does)")
}

/// Runs the CLI and returns exit status, stdout and stderr.
func warden(_ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String, String) {
    let env = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    let (status, out, err) = try runProcess(try wardenBinary(), arguments, environment: env)
    return (status, String(decoding: out, as: UTF8.self), err)
}
