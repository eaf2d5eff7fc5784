import Crypto
import Foundation
import Logging
import OCI
import OCIRegistry
import Storage
import Trust

/// One unit of work: a source tag (or digest) and where it goes.
public struct PlanItem: Sendable, Codable {
    public var source: String
    /// Tag or digest in the source repository.
    public var reference: String
    public var target: String
    /// Target tag; nil for digest selections (pushed by digest only).
    public var targetTag: String?
    /// Index of the artifact entry in the file.
    public var entry: Int

    public var sourceReference: String { reference.contains(":") ? "\(source)@\(reference)" : "\(source):\(reference)" }
    public var targetReference: String { targetTag.map { "\(target):\($0)" } ?? "\(target)@\(reference)" }
}

/// What happened to one item.
public struct ItemReport: Sendable, Codable {
    public enum Action: String, Sendable, Codable {
        /// Dry run: would be verified and copied.
        case planned
        /// Verified (when the entry asks for it) and copied.
        case copied
        /// The source digest was replicated and verified before: nothing to do.
        case unchanged
        /// Refused by verification: nothing of it was pushed.
        case refused
        /// An error (network, registry, missing tag).
        case failed
    }
    public var source: String
    public var target: String
    public var action: Action
    public var sourceDigest: String?
    public var verifiedBy: [String] = []
    public var identities: [String] = []
    public var attestations: [String] = []
    public var reasons: [String] = []
    /// Referrers made listed at the target by this run: pushed, or found there unlisted and listed (repaired).
    public var referrersCopied = 0
    /// Of those, referrers that were at the target already but missing from its listing of their subject.
    public var referrersRepaired = 0
    /// Whether the source's referrers or cosign tags differed from those seen when this digest was last replicated
    /// (or refused): new signatures, attestations or SBOMs to verify and carry. Nil when there was no earlier record.
    public var attachmentsChanged: Bool?
    public var cosignTags = 0
    public var bytesCopied: Int64 = 0
    public var blobsCopied = 0
    public var blobsMounted = 0
    public var replicationAttestation: String?
}

public struct ReplicationReport: Sendable, Codable {
    public var items: [ItemReport]
    public var seconds: Double
    public var counts: [String: Int] {
        Dictionary(grouping: items, by: \.action.rawValue).mapValues(\.count)
    }
    enum CodingKeys: String, CodingKey { case items, seconds, counts }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(items, forKey: .items)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(counts, forKey: .counts)
    }
    public init(items: [ItemReport], seconds: Double) {
        self.items = items
        self.seconds = seconds
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        items = try c.decode([ItemReport].self, forKey: .items)
        seconds = try c.decode(Double.self, forKey: .seconds)
    }
}

/// The predicate type of Warden's replication attestations.
public let replicationPredicateType = "https://warden.dev/replication/v1"

/// Plans and executes a replication file: each selected source tag is resolved, verified against its entry's trust
/// policy, and — only when it passes — copied with the referrers the entry selects; the target tag is written last.
public final class Replicator: Sendable {
    public let file: ReplicationFile
    let registries: Registries
    let state: (any ReplicationStateStore)?
    /// Raw key bytes (the key type itself is not Sendable).
    let attestKeyBytes: Data?
    let logger: Logger
    let progress: (@Sendable (ItemReport) -> Void)?
    /// One ledger per replicator: a blob shared by several images reaches each target registry once.
    let ledger = BlobLedger()

    public init(
        file: ReplicationFile, registries: Registries, state: (any ReplicationStateStore)?, attestKey: P256.Signing.PrivateKey? = nil,
        logger: Logger = Logger(label: "warden.replicate"), progress: (@Sendable (ItemReport) -> Void)? = nil
    ) {
        self.file = file
        self.registries = registries
        self.state = state
        self.attestKeyBytes = attestKey?.rawRepresentation
        self.logger = logger
        self.progress = progress
    }

    func repository(_ name: String) throws -> RegistryRepository {
        try registries.repository(Reference(parsing: name))
    }

    /// Expands prefix entries (through the source registry's catalog) and tag selections into items. Errors of one
    /// entry (a repository that does not exist, a registry that refuses listing) become failed items, not a
    /// failed plan.
    public func plan() async -> (items: [PlanItem], failures: [ItemReport]) {
        var items: [PlanItem] = []
        var failures: [ItemReport] = []
        for (i, artifact) in file.artifacts.enumerated() {
            do {
                var pairs: [(String, String)] = [(artifact.source, artifact.target)]
                if artifact.prefix {
                    let ref = try Reference(parsing: artifact.source + "/x")
                    let namespace = String(ref.repository.dropLast(1))
                    let repos = try await registries.client(host: ref.registry).catalog()
                    pairs = repos.filter { $0.hasPrefix(namespace) }.sorted().map {
                        ("\(ref.registry)/\($0)", artifact.target + "/" + $0.dropFirst(namespace.count))
                    }
                }
                for (source, target) in pairs {
                    var tags = artifact.tags.exact
                    if artifact.tags.needsListing {
                        let (valid, invalid) = try await repository(source).listTagsChecked()
                        tags = artifact.tags.select(from: valid)
                        // Names a registry lists that are no tags (`v1/../../other/manifests/latest`) are never used.
                        for bad in artifact.tags.select(from: invalid) where invalid.contains(bad) {
                            var r = ItemReport(source: source, target: target, action: .failed)
                            r.reasons = ["\(artifact.position): \(source) listed \"\(bad.prefix(200))\", which is not a valid tag; not replicated"]
                            failures.append(r)
                        }
                    }
                    for t in tags {
                        items.append(
                            PlanItem(
                                source: source, reference: t, target: target,
                                targetTag: artifact.targetTag.replacingOccurrences(of: "{tag}", with: t), entry: i))
                    }
                    for d in artifact.tags.digests {
                        items.append(PlanItem(source: source, reference: d.description, target: target, targetTag: nil, entry: i))
                    }
                }
            } catch {
                var r = ItemReport(source: artifact.source, target: artifact.target, action: .failed)
                r.reasons = ["\(artifact.position): \(Self.describe(error))"]
                failures.append(r)
            }
        }
        return (items, failures)
    }

    /// Runs the plan: items in parallel under the file's global limit and each registry's own limit.
    /// Runs the plan. Each item is first checked (one HEAD, compared with the state) under a wide limit, so an
    /// unchanged estate costs one round of parallel HEADs; verification and copying then run under the file's
    /// global limit and each registry's own limit.
    public func run(_ items: [PlanItem], dryRun: Bool = false) async -> [ItemReport] {
        let checks = AsyncSemaphore(permits: max(32, file.concurrency))
        let global = AsyncSemaphore(permits: file.concurrency)
        var perHost: [String: AsyncSemaphore] = [:]
        for (host, r) in file.registries { if let c = r.concurrency { perHost[host] = AsyncSemaphore(permits: c) } }
        let hostLimits = perHost
        let results = Results(count: items.count)
        await withTaskGroup(of: Void.self) { group in
            for (i, item) in items.enumerated() {
                group.addTask {
                    await checks.acquire()
                    let checked = await self.check(item, dryRun: dryRun)
                    await checks.release()
                    var report: ItemReport
                    switch checked {
                    case .done(let r):
                        report = r
                    case .work(let root, let seen, var r):
                        await global.acquire()
                        let hosts = Set([Self.host(item.source), Self.host(item.target)]).sorted().compactMap { hostLimits[$0] }
                        for h in hosts { await h.acquire() }
                        await self.replicate(item, root: root, seen: seen, dryRun: dryRun, report: &r)
                        for h in hosts.reversed() { await h.release() }
                        await global.release()
                        report = r
                    }
                    self.progress?(report)
                    await results.set(i, report)
                }
            }
        }
        return await results.values
    }

    enum Checked {
        case done(ItemReport)
        /// To verify and copy; with the attachments seen at the source when the check took them.
        case work(Descriptor, AttachmentSnapshot?, ItemReport)
    }

    /// Resolves the source (one HEAD) and compares it with the state: when the digest was replicated (or refused)
    /// before, the source's attachments are looked up too (the referrers listing and the cosign tags, side by side)
    /// — an item whose digest and attachments are both unchanged ends here, a copied one as `unchanged`, a refused one
    /// refused again without being verified again. New attachments send it to verification and copying: they are
    /// carried, and a new valid signature can turn a refusal into a copy.
    func check(_ item: PlanItem, dryRun: Bool) async -> Checked {
        var report = ItemReport(source: item.sourceReference, target: item.targetReference, action: .failed)
        do {
            let source = try repository(item.source)
            // A dry run consults the state too (to show what would be skipped); it never writes it.
            let record = try state?.replication(target: item.targetReference)
            // The attachments of the digest recorded last time are looked up while the tag is resolved: when the
            // tag has not moved (the common case), the check costs one round trip, not two.
            let speculative: Task<AttachmentSnapshot, Error>? = record.flatMap { r in
                guard let digest = try? Digest(parsing: r.sourceDigest) else { return nil }
                return Task {
                    try await AttachmentSnapshot.take(of: Descriptor(mediaType: MediaType.imageManifest, digest: digest, size: 0), in: source)
                }
            }
            let root: Descriptor
            do {
                root = try await source.resolve(item.reference)
            } catch {
                speculative?.cancel()
                throw error
            }
            report.sourceDigest = root.digest.description
            guard let record, record.sourceDigest == root.digest.description,
                let outcome = ItemReport.Action(rawValue: record.outcome), outcome == .copied || outcome == .refused
            else {
                speculative?.cancel()
                return .work(root, nil, report)
            }
            let seen: AttachmentSnapshot
            if let early = try? await speculative?.value {
                seen = early
            } else {
                seen = try await AttachmentSnapshot.take(of: root, in: source)
            }
            report.attachmentsChanged = record.attachments != seen.canonical
            guard record.attachments == seen.canonical else { return .work(root, seen, report) }
            // A refusal stands only while the replication file that decided it is unchanged (a trust fix re-verifies).
            guard outcome == .copied || record.policy == file.fingerprint else { return .work(root, seen, report) }
            report.verifiedBy = record.verifiedBy.split(separator: ",").map(String.init)
            if outcome == .copied {
                report.action = .unchanged
            } else {
                report.action = .refused
                report.reasons = (record.detail ?? "").components(separatedBy: "; ").filter { !$0.isEmpty }
                report.reasons.append(
                    "digest, attachments and replication file unchanged since \(ISO8601DateFormatter().string(from: record.updatedAt)): not verified again"
                )
            }
            return .done(report)
        } catch {
            report.reasons = [Self.describe(error)]
            return .done(report)
        }
    }

    static func host(_ repository: String) -> String { String(repository.prefix { $0 != "/" }) }

    /// Verifies and copies one item whose source resolved to `root`.
    func replicate(_ item: PlanItem, root: Descriptor, seen: AttachmentSnapshot?, dryRun: Bool, report: inout ItemReport) async {
        let artifact = file.artifacts[item.entry]
        do {
            let source = try repository(item.source)
            let target = try repository(item.target)
            // The attachments this run acts on, taken before verification and copying read them: one added while
            // they run is recorded as unseen, and the next run carries it.
            var attachments: AttachmentSnapshot?
            if let seen {
                attachments = seen
            } else if !dryRun, state != nil {
                attachments = try await AttachmentSnapshot.take(of: root, in: source)
            }
            var decision: PolicyDecision?
            if let verify = artifact.verify {
                let d = try await ImageVerification.verify(
                    root, in: source, repository: item.source, policy: verify.policy, exhaustive: true)
                decision = d
                report.verifiedBy = Array(Set(d.signatures.filter(\.verified).compactMap(\.authority))).sorted()
                report.identities = Array(Set((d.signatures + d.attestations).filter(\.verified).compactMap(\.identity))).sorted()
                report.attestations = Array(Set(d.attestations.filter(\.verified).compactMap(\.predicateType))).sorted()
                if d.outcome != .allowed {
                    report.action = .refused
                    report.reasons =
                        d.reasons
                        + (d.signatures + d.attestations).filter { !$0.verified }.compactMap { c in
                            c.reason.map { "\(c.kind) \(c.layout) \(c.location): \($0)" }
                        }
                    if !dryRun {
                        try state?.save(
                            ReplicationRecord(
                                target: item.targetReference, sourceReference: item.sourceReference, sourceDigest: root.digest.description,
                                outcome: ItemReport.Action.refused.rawValue, verifiedBy: "", detail: report.reasons.joined(separator: "; "),
                                attachments: attachments?.canonical, policy: file.fingerprint))
                    }
                    return
                }
            }
            if dryRun {
                report.action = .planned
                return
            }
            var options = CopyOptions(referrers: artifact.referrers != .none, concurrency: 8)
            options.ledger = ledger
            if case .list(let platforms) = artifact.platforms { options.platforms = platforms }
            if case .only(let kinds) = artifact.referrers {
                options.cosignTagSuffixes = Self.cosignSuffixes(kinds)
                options.referrerFilter = { Self.referrerSelected($0, kinds: kinds) }
            }
            let copy = try await GraphCopier(from: source, to: target, options: options, logger: logger)
                .copy(root: root, destinationTag: item.targetTag, currentDestination: nil)
            report.bytesCopied = copy.bytesCopied
            report.blobsCopied = copy.blobsCopied
            report.blobsMounted = copy.blobsMounted
            report.referrersCopied = copy.referrersCopied + copy.referrersRepaired.count
            report.referrersRepaired = copy.referrersRepaired.count
            report.reasons += copy.referrersRefused.map { "referrer not copied: \($0)" }
            report.cosignTags = copy.cosignTags.count
            if let bytes = attestKeyBytes, let attestKey = try? P256.Signing.PrivateKey(rawRepresentation: bytes) {
                report.replicationAttestation = try await attest(item, root: copy.root, decision: decision, in: target, key: attestKey).digest
                    .description
            }
            report.action = .copied
            try state?.save(
                ReplicationRecord(
                    target: item.targetReference, sourceReference: item.sourceReference, sourceDigest: root.digest.description,
                    outcome: ItemReport.Action.copied.rawValue, verifiedBy: report.verifiedBy.joined(separator: ","), detail: nil,
                    attachments: attachments?.canonical, policy: file.fingerprint))
        } catch {
            report.action = .failed
            report.reasons = [Self.describe(error)]
        }
    }

    /// A signed statement that `root` in the target came from the source digest, when, and under which policy.
    func attest(_ item: PlanItem, root: Descriptor, decision: PolicyDecision?, in target: RegistryRepository, key: P256.Signing.PrivateKey)
        async throws -> Descriptor
    {
        var predicate: [String: Any] = [
            "source": ["reference": item.sourceReference, "digest": decision?.digest ?? root.digest.description],
            "target": item.targetReference,
            "replicatedAt": ISO8601DateFormatter().string(from: Date()),
        ]
        if let decision {
            predicate["verification"] = [
                "policy": decision.policy ?? "", "outcome": decision.outcome.rawValue,
                "verifiedBy": Array(Set(decision.signatures.filter(\.verified).compactMap(\.authority))).sorted(),
                "attestations": Array(Set(decision.attestations.filter(\.verified).compactMap(\.predicateType))).sorted(),
            ]
        }
        let data = try JSONSerialization.data(withJSONObject: predicate, options: [.sortedKeys, .withoutEscapingSlashes])
        return try await Signer.attest(
            root, in: target, name: item.target, predicateType: replicationPredicateType, predicate: data, key: key, format: .bundle)
    }

    static func cosignSuffixes(_ kinds: Set<String>) -> [String] {
        var out: [String] = []
        if kinds.contains("signatures") { out.append("sig") }
        if kinds.contains("attestations") { out.append("att") }
        if kinds.contains("sboms") { out.append("sbom") }
        return out
    }

    /// Whether a referrer belongs to the selected kinds (signatures, attestations, sboms) or artifact types.
    static func referrerSelected(_ d: Descriptor, kinds: Set<String>) -> Bool {
        let type = d.artifactType ?? ""
        if kinds.contains(type) { return true }
        let predicate = d.annotations?[Attachments.bundlePredicateTypeAnnotation]
        let isSBOM = ["spdx", "cyclonedx", "syft"].contains { type.lowercased().contains($0) || (predicate?.contains($0) ?? false) }
        if SigstoreBundle.isBundleMediaType(type) {
            if predicate == InTotoStatement.cosignSignPredicate || d.annotations?[Attachments.bundleContentAnnotation] == "message-signature" {
                return kinds.contains("signatures")
            }
            return isSBOM ? kinds.contains("sboms") || kinds.contains("attestations") : kinds.contains("attestations")
        }
        if type == MediaType.cosignSimpleSigning || type == "application/vnd.dev.cosign.artifact.sig.v1+json" { return kinds.contains("signatures") }
        if type == DSSEEnvelope.mediaType || type == "application/vnd.in-toto+json" || type == "application/vnd.dev.cosign.artifact.att.v1+json" {
            return kinds.contains("attestations")
        }
        return isSBOM && kinds.contains("sboms")
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case let e as OCIError: e.reason
        case let e as TrustError: e.reason
        case let e as StateError: e.description
        default: "\(error)"
        }
    }
}

actor Results {
    var slots: [ItemReport?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: ItemReport) { slots[i] = r }
    var values: [ItemReport] { slots.compactMap { $0 } }
}
