import ArgumentParser
import CommandSupport
import Crypto
import Documents
import Foundation
import OCI
import OCIRegistry
import Replicate
import Storage
import Trust
import WardenApp

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
        let configuration: RegistryConfiguration
        do {
            configuration = try ReplicationJob.configuration(for: replication, base: global.registryConfiguration())
        } catch let e as OCIError {
            printError("error: \(e.reason)")
            throw ExitCode(64)
        }
        let interactive = isatty(STDERR_FILENO) == 1
        var progress: (@Sendable (ItemReport) -> Void)?
        if interactive {
            progress = { @Sendable (r: ItemReport) in
                let action = r.action.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
                printError("\(action) \(r.target)")
            }
        }
        let report: ReplicationReport = try await withRegistries(global, configuration: configuration) { registries in
            await ReplicationJob.run(
                replication, registries: registries, state: store, attestKey: key, dryRun: dryRun, progress: progress,
                planned: { n in if interactive { printError("plan: \(n) tags from \(replication.artifacts.count) entries") } })
        }
        switch global.output {
        case .json: try printJSON(report)
        case .text: printTable(report)
        }
        if report.items.contains(where: { $0.action == ItemReport.Action.failed }) { throw ExitCode(1) }
        if report.items.contains(where: { $0.action == ItemReport.Action.refused }) { throw ExitCode(13) }
    }

    /// The state file; a dry run reads it when it exists and never creates it.
    func openState() throws -> (any ReplicationStateStore)? {
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
