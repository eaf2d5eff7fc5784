import Foundation
import OCI

/// `skopeo`, the independent client integration tests compare Warden against.
public enum Skopeo {
    public static let binary = "/usr/bin/skopeo"

    /// Runs skopeo with the given arguments; TLS verification is off for the loopback test registries.
    @discardableResult
    public static func run(_ arguments: [String]) throws -> String {
        try check()
        return try OCITesting.run(binary, arguments)
    }

    /// The exact manifest bytes skopeo reads for `docker://REF`, and their digest.
    public static func rawManifest(_ reference: String, creds: String? = nil) throws -> (Data, Digest) {
        try check()
        var args = ["inspect", "--raw", "--tls-verify=false"]
        if let creds { args += ["--creds", creds] }
        let out = NSTemporaryDirectory() + "warden-skopeo-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        // Through a file, so the bytes are exactly what skopeo printed.
        try OCITesting.run("/bin/sh", ["-c", "\"$0\" \"$@\" > \(out)", binary] + args + ["docker://\(reference)"])
        let data = try Data(contentsOf: URL(fileURLWithPath: out))
        return (data, Digest.compute(data))
    }

    static func check() throws {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError("\(binary) is missing: run scripts/test.sh (or `apt-get install skopeo`) first")
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
    throw HarnessError("\(name) executable not found under .build/: run `swift build` first (scripts/test.sh does)")
}

/// Runs the CLI as users do: exit status, stdout and stderr. `environment` adds variables to this process's
/// environment; a nil value removes one.
public func runWarden(_ arguments: [String], environment: [String: String?] = [:], executable: String = "warden") throws -> (Int32, String, String) {
    var env = ProcessInfo.processInfo.environment
    for (name, value) in environment { env[name] = value }
    let (status, out, err) = try runProcess(try wardenExecutable(executable), arguments, environment: env)
    return (status, String(decoding: out, as: UTF8.self), err)
}
