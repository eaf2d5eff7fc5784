import ArgumentParser
import Crypto
import Foundation
import OCI
import OCIRegistry
import Replicate
import Storage
import Trust

struct ReplicateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replicate",
        abstract: "Mirror the artifacts a replication file declares, verifying each before anything is pushed.",
        discussion: """
            Plans first (tags listed and selected per entry), then verifies and copies items in parallel. A refused \
            artifact is not pushed at all and its target tag is left as it was. State (last verified source digest \
            per target tag) is kept in DIR/replication.sqlite: an unchanged upstream costs one HEAD per tag.
            Exit codes: 0 everything copied or unchanged; 13 some artifacts refused by verification; 1 some items \
            failed (network, registry, missing tags) — failures take precedence over refusals.
            """)

    @Option(name: .shortAndLong, help: "Replication file (YAML, kind: Replication).")
    var file: String

    @Flag(name: .long, help: "Plan and verify, print the plan (unchanged items from the state file); push nothing, write no state.")
    var dryRun = false

    @Option(name: .long, help: "Directory of the state file (replication.sqlite); default .warden in the current directory.")
    var state: String = ".warden"

    @Flag(name: .long, help: "Keep no state: re-verify and re-check every tag.")
    var noState = false

    @Option(name: .long, help: "Sign a replication attestation (source, digest, time, policy) onto each copied artifact with this key.")
    var attestKey: String?

    @OptionGroup var password: PasswordOptions
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let replication: ReplicationFile
        do {
            replication = try ReplicationFile.load(path: file)
        } catch let e as TrustError {
            printError("error: \(e.reason)")
            throw ExitCode(64)
        }
        let key = try attestKey.map { try loadKey($0, password) }
        let store = try openState()
        var credentials: [String: Credentials] = [:]
        let env = ProcessInfo.processInfo.environment
        for (host, r) in replication.registries {
            guard let u = r.usernameEnv, let p = r.passwordEnv else { continue }
            guard let user = env[u], let pass = env[p] else {
                printError("error: registry \(host): environment variables \(u) and \(p) must be set")
                throw ExitCode(64)
            }
            credentials[host] = Credentials(username: user, password: pass)
        }
        let caBundle = try mergedCABundle(replication)
        let interactive = isatty(STDERR_FILENO) == 1
        let adjust: (inout RegistryConfiguration) -> Void = { c in
            for (host, r) in replication.registries {
                if r.plainHTTP { c.plainHTTPHosts.insert(host) }
                if let rps = r.requestsPerSecond { c.requestsPerSecond[host] = rps }
            }
            if let caBundle { c.caBundlePath = caBundle }
        }
        var progress: (@Sendable (ItemReport) -> Void)?
        if interactive {
            progress = { @Sendable (r: ItemReport) in
                let action = r.action.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
                printError("\(action) \(r.target)")
            }
        }
        let report: ReplicationReport = try await withRegistries(global, credentials: credentials, adjust: adjust) { registries in
            await execute(replication, registries: registries, store: store, key: key, progress: progress, interactive: interactive)
        }
        switch global.output {
        case .json: try printJSON(report)
        case .text: printTable(report)
        }
        if report.items.contains(where: { $0.action == ItemReport.Action.failed }) { throw ExitCode(1) }
        if report.items.contains(where: { $0.action == ItemReport.Action.refused }) { throw ExitCode(13) }
    }

    func execute(
        _ replication: ReplicationFile, registries: Registries, store: StateStore?, key: P256.Signing.PrivateKey?,
        progress: (@Sendable (ItemReport) -> Void)?, interactive: Bool
    ) async -> ReplicationReport {
        let start = ContinuousClock.now
        let replicator = Replicator(file: replication, registries: registries, state: store, attestKey: key, progress: progress)
        let (items, failures) = await replicator.plan()
        if interactive { printError("plan: \(items.count) tags from \(replication.artifacts.count) entries") }
        let done = await replicator.run(items, dryRun: dryRun)
        return ReplicationReport(items: failures + done, seconds: (ContinuousClock.now - start).seconds)
    }

    /// The state file; a dry run reads it when it exists and never creates it.
    func openState() throws -> StateStore? {
        guard !noState else { return nil }
        if dryRun && !FileManager.default.fileExists(atPath: state + "/replication.sqlite") { return nil }
        do {
            try PrivateFiles.createDirectory(state)
            return try StateStore(path: state + "/replication.sqlite")
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    /// One CA bundle for the HTTP client: the registries' caFile entries (and --ca-file) concatenated.
    func mergedCABundle(_ file: ReplicationFile) throws -> String? {
        var files = file.registries.values.compactMap(\.caFile)
        if let ca = global.caFile { files.append(ca) }
        guard files.count > 1 else { return files.first }
        var pem = Data()
        for f in Set(files).sorted() {
            guard let d = FileManager.default.contents(atPath: f) else { throw ValidationError("cannot read CA file \(f)") }
            pem.append(d)
            pem.append(Data("\n".utf8))
        }
        let path = NSTemporaryDirectory() + "warden-ca-\(getpid()).pem"
        try pem.write(to: URL(fileURLWithPath: path))
        return path
    }

    func printTable(_ report: ReplicationReport) {
        for r in report.items {
            var line = "\(r.action.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(r.source) -> \(r.target)"
            if let d = r.sourceDigest { line += " \(d.prefix(19))" }
            if !r.verifiedBy.isEmpty { line += " verified by \(r.verifiedBy.joined(separator: ", "))" }
            if !r.attestations.isEmpty { line += " attestations \(r.attestations.joined(separator: ", "))" }
            if r.action == .copied {
                line +=
                    " (\(formatBytes(r.bytesCopied)), \(r.blobsCopied) blobs, \(r.blobsMounted) mounted, \(r.referrersCopied) referrers, \(r.cosignTags) cosign tags)"
                if r.attachmentsChanged == true { line += " — new attachments upstream" }
                if r.referrersRepaired > 0 {
                    line += " — repaired the target's listing of \(r.referrersRepaired) referrer(s) that were present but not listed"
                }
            }
            print(line)
            for reason in r.reasons { print("          - \(reason)") }
        }
        let counts = report.counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        print("\(report.items.count) items: \(counts.isEmpty ? "none" : counts) in \(String(format: "%.2f", report.seconds)) s")
    }
}
