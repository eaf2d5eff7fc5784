import Crypto
import Documents
import Foundation
import OCI
import OCIRegistry
import Replicate
import Storage

/// The replication job (`warden replicate` and `replicate@v1`): the same file behaves the same from every surface —
/// its registries' credentials, plain HTTP, request rates and CA files are applied here, once.
public enum ReplicationJob {
    /// `base` with what the file's `registries:` section asks for: credentials from the named environment variables,
    /// plain HTTP, requests per second, and each CA file trusted beside `base`'s (read from where they are; nothing
    /// is copied to a temporary file).
    public static func configuration(
        for file: ReplicationFile, base: RegistryConfiguration, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> RegistryConfiguration {
        var c = base
        for (host, r) in file.registries.sorted(by: { $0.key < $1.key }) {
            if let u = r.usernameEnv, let p = r.passwordEnv {
                guard let user = environment[u], let pass = environment[p] else {
                    throw OCIError(.invalidArgument, "registry \(host): environment variables \(u) and \(p) must be set")
                }
                c.credentials.explicit[host] = Credentials(username: user, password: pass)
            }
            if r.plainHTTP { c.plainHTTPHosts.insert(host) }
            if let rps = r.requestsPerSecond { c.requestsPerSecond[host] = rps }
            if let ca = r.caFile {
                guard FileManager.default.isReadableFile(atPath: ca) else {
                    throw OCIError(.invalidArgument, "registry \(host): cannot read CA file \(ca)")
                }
                if ca != c.caBundlePath && !c.additionalCABundlePaths.contains(ca) { c.additionalCABundlePaths.append(ca) }
            }
        }
        return c
    }

    /// Plans and runs the file: every selected tag verified, then copied or refused; the state (if any) records
    /// what was decided.
    public static func run(
        _ file: ReplicationFile, registries: Registries, state: (any ReplicationStateStore)?, attestKey: P256.Signing.PrivateKey? = nil,
        dryRun: Bool = false,
        progress: (@Sendable (ItemReport) -> Void)? = nil, planned: ((Int) -> Void)? = nil
    ) async -> ReplicationReport {
        let start = ContinuousClock.now
        let replicator = Replicator(file: file, registries: registries, state: state, attestKey: attestKey, progress: progress)
        let (items, failures) = await replicator.plan()
        planned?(items.count)
        let done = await replicator.run(items, dryRun: dryRun)
        return ReplicationReport(items: failures + done, seconds: (ContinuousClock.now - start).seconds)
    }
}
