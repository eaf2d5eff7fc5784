import Foundation

/// How a surface reaches registries, as it was asked to: carried unchanged to a driver started in the background.
public struct RegistrySettings: Sendable, Equatable, Codable {
    public var plainHTTP = false
    public var insecureRegistries: [String] = []
    public var caFile: String?
    public var insecureTokenRealm = false
    public var authfile: String?
    public var verbose = false

    public init(
        plainHTTP: Bool = false, insecureRegistries: [String] = [], caFile: String? = nil, insecureTokenRealm: Bool = false,
        authfile: String? = nil, verbose: Bool = false
    ) {
        self.plainHTTP = plainHTTP
        self.insecureRegistries = insecureRegistries
        self.caFile = caFile
        self.insecureTokenRealm = insecureTokenRealm
        self.authfile = authfile
        self.verbose = verbose
    }

    /// The command-line flags that say the same.
    public var arguments: [String] {
        var a: [String] = []
        if plainHTTP { a.append("--plain-http") }
        for h in insecureRegistries { a += ["--insecure-registry", h] }
        if let caFile { a += ["--ca-file", caFile] }
        if insecureTokenRealm { a.append("--insecure-token-realm") }
        if let authfile { a += ["--authfile", authfile] }
        if verbose { a.append("--verbose") }
        return a
    }
}

/// The runs job: what a detached run's background driver is started with, so that it drives the run exactly as the
/// command that detached it would have (same state, actions, concurrency and registry settings).
public enum RunsJob {
    public static func resumeArguments(run: String, state: String, actions: [String], concurrency: Int, registry: RegistrySettings) -> [String] {
        var args = ["runs", "resume", run, "--state", state, "--concurrency", String(concurrency)]
        for a in actions { args += ["--actions", a] }
        return args + registry.arguments
    }
}
