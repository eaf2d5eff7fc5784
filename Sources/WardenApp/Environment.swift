import Foundation
import OCIRegistry

/// The version every surface reports (`warden --version`, the scanner of a vulnerability attestation).
public enum WardenVersion {
    public static let current = "0.1.0"
}

/// The state directory's layout: one place names every file Warden keeps there.
public struct StateLayout: Sendable, Equatable {
    /// The directory (default `.warden`).
    public var root: String
    public init(_ root: String = StateLayout.defaultRoot) { self.root = root }

    public static let defaultRoot = ".warden"
    /// Runs, their journal and signals.
    public var workflowsDatabase: String { root + "/workflows.sqlite" }
    /// What replication copied and verified (so unchanged artifacts are not verified again).
    public var replicationDatabase: String { root + "/replication.sqlite" }
    /// The compliance engine's SLA policy (`warden compliance policy set`); absent: the defaults.
    public var slaPolicy: String { root + "/sla-policy.yaml" }
    /// The imported OSV advisories (`warden db import`) that scans match packages against.
    public var vulnerabilityDatabase: String { root + "/vulnerabilities.sqlite" }
    /// One directory per run: work directories, attempt logs, a detached driver's log.
    public func runDirectory(_ run: String) -> String { root + "/runs/" + run }
    /// A detached run's background driver writes its output here.
    public func driverLog(_ run: String) -> String { runDirectory(run) + "/driver.log" }
    /// The control plane's checkpoint signing key (Ed25519, private) and its public half.
    public var serverKey: String { root + "/server-key" }
    public var serverPublicKey: String { root + "/server-key.pub" }
    /// Artifacts of steps, content addressed.
    public var artifacts: String { root + "/artifacts/sha256" }
}

/// The `WARDEN_*` environment variables a surface reads, in one place (those the workflow runtimes set for a step —
/// `WARDEN_RUN`, `WARDEN_OUTPUTS`, … — are documented with the runtimes in docs/workflows.md).
public enum WardenEnvironment {
    /// `WARDEN_CREDENTIAL_<SLOT>`: the credential slots workflow steps may ask for (slot names in lower case).
    public static let credentialPrefix = "WARDEN_CREDENTIAL_"
    /// `WARDEN_REGISTRY_HOST`, `WARDEN_REGISTRY_USERNAME`, `WARDEN_REGISTRY_PASSWORD`: credentials for one registry.
    public static let registryHost = "WARDEN_REGISTRY_HOST"
    public static let registryUsername = "WARDEN_REGISTRY_USERNAME"
    public static let registryPassword = "WARDEN_REGISTRY_PASSWORD"

    /// The credential slots `environment` sets.
    public static func credentials(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var credentials: [String: String] = [:]
        for (k, v) in environment where k.hasPrefix(credentialPrefix) {
            credentials[String(k.dropFirst(credentialPrefix.count)).lowercased()] = v
        }
        return credentials
    }
}

extension RegistrySettings {
    /// The registry configuration these settings describe: credentials given explicitly first, then
    /// `WARDEN_REGISTRY_*`, then the auth file (`--authfile`, else `REGISTRY_AUTH_FILE` and the usual docker and
    /// containers files).
    public func configuration(
        credentials: [String: Credentials] = [:], environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> RegistryConfiguration {
        var c = RegistryConfiguration()
        c.plainHTTP = plainHTTP
        c.plainHTTPHosts = Set(insecureRegistries)
        c.caBundlePath = caFile
        c.insecureTokenRealm = insecureTokenRealm
        var env = environment
        var explicit = credentials
        if let user = env[WardenEnvironment.registryUsername], let pass = env[WardenEnvironment.registryPassword],
            let host = env[WardenEnvironment.registryHost]
        {
            explicit[host] = explicit[host] ?? Credentials(username: user, password: pass)
        }
        if let authfile { env["REGISTRY_AUTH_FILE"] = authfile }
        c.credentials = CredentialResolver(explicit: explicit, environment: env)
        return c
    }
}
