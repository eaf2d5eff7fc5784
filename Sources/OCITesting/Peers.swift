import Foundation
import OCI

/// `skopeo`, the independent client integration tests compare Warden against.
public enum Skopeo {
    public static let binary = "/usr/bin/skopeo"

    /// Runs skopeo with the given arguments (without blocking a cooperative thread); a non-zero exit is an error
    /// with skopeo's stderr.
    @discardableResult
    public static func run(_ arguments: [String]) async throws -> String {
        try check()
        return try await runProgram(binary, arguments).checked().output
    }

    /// The exact manifest bytes skopeo reads for `docker://REF` (its standard output, unchanged), and their digest.
    public static func rawManifest(_ reference: String, creds: String? = nil) async throws -> (Data, Digest) {
        try check()
        var args = ["inspect", "--raw", "--tls-verify=false"]
        if let creds { args += ["--creds", creds] }
        let data = try await runProgram(binary, args + ["docker://\(reference)"]).checked().standardOutput
        return (data, Digest.compute(data))
    }

    static func check() throws {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError(.missingPeer, "\(binary) is missing: run scripts/test.sh (or `apt-get install skopeo`) first")
        }
    }
}

/// The `warden` executable built in this package's `.build` folder (debug first, then release).
/// `name` is `warden` (the shipped command) or `warden-dev` (the development tools: testdata, test-proxy, bench-*).
public func wardenExecutable(_ name: String = "warden") throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    for config in ["debug", "release"] {
        let path = root.appendingPathComponent(".build/\(config)/\(name)").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw HarnessError(.missingPeer, "\(name) executable not found under .build/: run `swift build` first (scripts/test.sh does)")
}

/// Runs the CLI as users do (without blocking a cooperative thread): exit status, stdout and stderr.
/// `environment` adds variables to this process's environment; a nil value removes one.
public func runWarden(_ arguments: [String], environment: [String: String?] = [:], executable: String = "warden") async throws -> (
    Int32, String, String
) {
    var env = ProcessInfo.processInfo.environment
    for (name, value) in environment { env[name] = value }
    let result = try await runProgram(try wardenExecutable(executable), arguments, environment: env)
    return (result.status, result.output, result.errorOutput)
}
