import Documents
import Foundation
import Logging
import Synchronization

/// What a graph copy does beyond the root.
public struct CopyOptions: Sendable {
    /// Platforms to keep from an index; empty means all. One platform copies that platform's manifest alone;
    /// several build a new index holding only them (a new digest, reported as such).
    public var platforms: [Platform] = []
    /// Copy referrers (referrers API, fallback index, cosign tags) recursively.
    public var referrers = true
    /// Which referrers (from the API or fallback index) to copy; nil copies all.
    public var referrerFilter: (@Sendable (Descriptor) -> Bool)?
    /// Which cosign tags (`sha256-<hex>.<suffix>`) to carry.
    public var cosignTagSuffixes = CosignTags.suffixes
    /// Blob transfers in flight at once.
    public var concurrency = 8
    /// Receives progress events; called concurrently.
    public var progress: (@Sendable (CopyEvent) -> Void)?
    /// Shared by the copies of one run, so that each blob crosses the network at most once per run.
    public var ledger: BlobLedger?

    public init(platforms: [Platform] = [], referrers: Bool = true, concurrency: Int = 8) {
        self.platforms = platforms
        self.referrers = referrers
        self.concurrency = concurrency
    }
}

public enum CopyEvent: Sendable {
    case blobStarted(Descriptor)
    case bytes(Int)
    case blobDone(Descriptor, BlobOutcome)
    case manifestDone(Descriptor, copied: Bool)
}

public enum BlobOutcome: String, Sendable, Codable {
    case copied, skipped, mounted
}

/// What a copy did, in numbers users can check.
public struct CopyReport: Sendable, Codable {
    public var source: String
    public var destination: String
    public var root: Descriptor
    public var tag: String?
    public var manifestsCopied = 0
    public var manifestsSkipped = 0
    public var blobsCopied = 0
    public var blobsSkipped = 0
    public var blobsMounted = 0
    public var bytesCopied: Int64 = 0
    /// Referrers found at the source (and copied, or found present and listed), by digest, with their artifact types.
    public var referrers: [Descriptor] = []
    /// Referrers pushed to the destination by this copy (and listed there under their subject).
    public var referrersCopied = 0
    /// Referrers found at the destination but missing from its listing of their subject (the referrers API or the
    /// `sha256-<hex>` fallback index): a copy interrupted between pushing a referrer and listing it leaves this.
    /// This copy listed them.
    public var referrersRepaired: [Descriptor] = []
    /// Referrers and cosign tags not copied, and why: one that is the manifest it is attached to (or a manifest
    /// above it), whose own `subject` names another manifest, or that lies too deep.
    public var referrersRefused: [String] = []
    /// Cosign tags carried along.
    public var cosignTags: [String] = []
    public var seconds: Double = 0
    /// The most manifests and blobs this copy had in flight at once: bounded by the concurrency settings, not by the
    /// size of the graph.
    public var peakInFlight = 0
}

/// Copies a graph of content between any two stores.
///
/// Order guarantees: blobs before the manifests that reference them, children before parents, referrers after
/// their subject, and the tag last. An interrupted copy therefore never leaves a tag pointing at missing content,
/// and a re-run skips what the destination already has (a manifest present implies its children are present).
public struct GraphCopier: Sendable {
    public let source: any ContentStore
    public let destination: any ContentStore
    public let options: CopyOptions
    let logger: Logger

    public init(
        from source: any ContentStore, to destination: any ContentStore, options: CopyOptions = .init(), logger: Logger = Logger(label: "warden.copy")
    ) {
        self.source = source
        self.destination = destination
        self.options = options
        self.logger = logger
    }

    /// Resolves `reference` (a tag or digest) in the source and copies it, tagging `destinationTag` last.
    public func copy(reference: String, destinationTag: String?) async throws -> CopyReport {
        // Resolve the source and look at the destination tag at once: an unchanged tag costs one round trip.
        let destination = self.destination
        async let current = destinationTag == nil ? nil : try? await destination.resolve(destinationTag!)
        let root = try await source.resolve(reference)
        return try await copy(root: root, destinationTag: destinationTag, currentDestination: await current)
    }

    /// Copies the graph of `root`; `currentDestination` is what the destination tag points to now, when known.
    public func copy(root: Descriptor, destinationTag: String?, currentDestination: Descriptor? = nil) async throws -> CopyReport {
        do {
            return try await copyGraph(root: root, destinationTag: destinationTag, currentDestination: currentDestination)
        } catch let refused as RefusedReferrer {
            // A manifest refused as a referrer was also needed elsewhere in the graph.
            throw OCIError(.invalidManifest, "copy of \(root.digest) from \(source.displayName): \(refused.reason)")
        }
    }

    private func copyGraph(root: Descriptor, destinationTag: String?, currentDestination: Descriptor?) async throws -> CopyReport {
        let start = ContinuousClock.now
        let run = CopyRun(copier: self)
        var root = root
        var built = false
        if MediaType.isIndex(root.mediaType), !options.platforms.isEmpty {
            (root, built) = try await run.selectPlatforms(index: root)
        }
        let tagged = currentDestination?.digest == root.digest
        if tagged { run.present(root.digest) }
        if !built { try await run.copyNode(root, allowReferrers: true) }
        // Referrers after their subject, every selected one pushed and listed before the tag is written.
        try await run.copyQueuedReferrers()
        if let destinationTag, !tagged {
            try await destination.tag(root, as: destinationTag)
        }
        var report = run.report.withLock { $0 }
        report.source = source.displayName
        report.destination = destination.displayName
        report.root = root
        report.tag = destinationTag
        report.seconds = (ContinuousClock.now - start).seconds
        return report
    }
}

/// The state of one copy: de-duplication of in-flight work and the report.
final class CopyRun: Sendable {
    let copier: GraphCopier
    let semaphore: AsyncSemaphore
    let report: Mutex<CopyReport>
    private let inflight = Mutex<[Digest: Task<Void, Error>]>([:])
    /// Manifests known to be in the destination already (e.g. the one its tag points to).
    private let known = Mutex<Set<Digest>>([])

    func present(_ digest: Digest) { _ = known.withLock { $0.insert(digest) } }

    /// Nodes (manifests and blobs) being copied now.
    private let active = Mutex(0)
    private func started() {
        let now = active.withLock {
            $0 += 1
            return $0
        }
        report.withLock { $0.peakInFlight = max($0.peakInFlight, now) }
    }

    init(copier: GraphCopier) {
        self.copier = copier
        self.semaphore = AsyncSemaphore(permits: max(1, copier.options.concurrency))
        self.report = Mutex(CopyReport(source: "", destination: "", root: .emptyJSON))
    }

    var source: any ContentStore { copier.source }
    var logger: Logger { copier.logger }
    /// Children (or referrer walks) of one node in flight at once.
    var childLimit: Int { max(4, 2 * copier.options.concurrency) }
    var destination: any ContentStore { copier.destination }

    /// Runs `work` once per digest for this copy; concurrent callers for the same digest await the same task.
    private func once(_ digest: Digest, _ work: @escaping @Sendable () async throws -> Void) async throws {
        let task = inflight.withLock { tasks -> Task<Void, Error> in
            if let t = tasks[digest] { return t }
            let t = Task {
                self.started()
                defer { self.active.withLock { $0 -= 1 } }
                try await work()
            }
            tasks[digest] = t
            return t
        }
        // The shared task is unstructured: pass cancellation (a sibling failed, the caller gave up) on to it.
        try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }

    /// Copies `node` and what it references (children before parents). Manifests whose referrers are to be copied
    /// are queued for `copyQueuedReferrers`, which runs after the graph is in place: a manifest's copy waits only
    /// for its children, which content addressing makes acyclic, so no referrer or cosign tag — whatever it
    /// points at — can make a copy wait on itself. `mustBeListed`: `node` is a referrer that the destination's
    /// listing of its subject does not show, so a copy already present is pushed again (which lists it) instead of
    /// skipped. `subject`: `node` was found as a referrer of that manifest, and its own `subject` must say so.
    func copyNode(
        _ node: Descriptor, allowReferrers: Bool, mustBeListed: Bool = false, subject: Digest? = nil, chain: [Digest] = []
    ) async throws {
        if MediaType.isManifest(node.mediaType) {
            try await once(node.digest) {
                try await self.copyManifest(node, allowReferrers: allowReferrers, mustBeListed: mustBeListed, subject: subject, chain: chain)
            }
            if copier.options.referrers && allowReferrers { queueReferrers(of: node, chain: chain + [node.digest]) }
        } else {
            try await once(node.digest) { try await self.copyBlob(node) }
        }
    }

    private func copyManifest(_ node: Descriptor, allowReferrers: Bool, mustBeListed: Bool, subject: Digest?, chain: [Digest]) async throws {
        let known = self.known.withLock { $0.contains(node.digest) }
        let present = known ? true : try await destination.exists(node)
        if present && !mustBeListed {
            report.withLock { $0.manifestsSkipped += 1 }
            copier.options.progress?(.manifestDone(node, copied: false))
            return
        }
        let raw = try await source.fetchManifest(node)
        if let subject {
            let claimed = try raw.parsed().subject?.digest
            guard claimed == subject else {
                throw RefusedReferrer(
                    reason: "\(node.digest) is listed as a referrer of \(subject) but its subject is \(claimed?.description ?? "absent")")
            }
        }
        if present {
            // Present but not listed under its subject: pushing the same bytes again lists it (every store indexes a
            // manifest's subject on push, and the registry's fallback index update is idempotent). Its children are
            // present: a manifest is pushed only after them.
            try await destination.push(raw.descriptor, content: .bytes(raw.bytes))
            report.withLock {
                $0.manifestsSkipped += 1
                $0.referrersRepaired.append(node)
            }
            logger.notice("listed referrer \(node.digest) at \(destination.displayName): it was present but missing from the listing of its subject")
            copier.options.progress?(.manifestDone(node, copied: false))
            return
        }
        var children = try raw.children()
        if case .index = try raw.parsed() {
            // Children of an index are manifests; only those are followed (urls-only foreign layers are not).
            children = children.filter { MediaType.isManifest($0.mediaType) }
        }
        // Children are started a bounded number at a time (an index of manifests with 20,000 layers each must not
        // become millions of tasks at once); blob transfers are bounded further by the copy's semaphore.
        let followed = children.filter { $0.urls?.isEmpty ?? true || MediaType.isManifest($0.mediaType) }
        try await concurrentForEach(followed, limit: childLimit) { child in
            try await self.copyNode(child, allowReferrers: allowReferrers, chain: chain + [node.digest])
        }
        try await pushManifest(raw, children: children)
        report.withLock {
            $0.manifestsCopied += 1
            if mustBeListed { $0.referrersCopied += 1 }
        }
        copier.options.progress?(.manifestDone(node, copied: true))
    }

    /// How deep referrers of referrers are followed (a signature on an SBOM on an image is 2).
    static let maxReferrerDepth = 16

    private struct Walk: Sendable {
        var subject: Descriptor
        /// The manifests above `subject`, root first, and `subject` last.
        var chain: [Digest]
    }
    private let walks = Mutex<(queue: [Walk], seen: Set<Digest>)>(([], []))

    private func queueReferrers(of subject: Descriptor, chain: [Digest]) {
        walks.withLock { w in
            if w.seen.insert(subject.digest).inserted { w.queue.append(Walk(subject: subject, chain: chain)) }
        }
    }

    /// Copies the referrers and cosign tags of every queued manifest, in waves (a referrer copied queues its own),
    /// each subject once, until none is left.
    func copyQueuedReferrers() async throws {
        while true {
            let wave = walks.withLock { w -> [Walk] in
                defer { w.queue.removeAll() }
                return w.queue
            }
            if wave.isEmpty { return }
            try await concurrentForEach(wave, limit: childLimit) { walk in try await self.copyReferrers(of: walk.subject, chain: walk.chain) }
        }
    }

    /// A referrer or cosign tag that is not copied, with the reason (recorded in the report; the copy goes on).
    private func refuse(_ reason: String) {
        logger.warning("referrer refused: \(reason)")
        report.withLock { $0.referrersRefused.append(reason) }
    }

    private func copyReferrers(of subject: Descriptor, chain: [Digest]) async throws {
        let depth = chain.count
        // The referrers lookup and the cosign tag lookups run side by side.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var found = try await self.source.referrers(of: subject, artifactType: nil)
                if let filter = self.copier.options.referrerFilter { found = found.filter(filter) }
                if found.isEmpty { return }
                if depth > Self.maxReferrerDepth {
                    return self.refuse(
                        "referrers of \(subject.digest) are \(depth) levels below the copied artifact; the limit is \(Self.maxReferrerDepth)")
                }
                // What the destination lists under the subject decides, not whether the referrer is stored there: a
                // referrer stored but not listed is invisible to every client (one lookup for all of them).
                let listed = Set(try await self.destination.referrers(of: subject, artifactType: nil).map(\.digest))
                var accepted: [Descriptor] = []
                for referrer in found {
                    if chain.contains(referrer.digest) {
                        self.refuse("\(referrer.digest) is listed as a referrer of \(subject.digest) but is that manifest or one above it")
                    } else if !MediaType.isManifest(referrer.mediaType) {
                        self.refuse(
                            "\(referrer.digest), listed as a referrer of \(subject.digest), has media type \(referrer.mediaType), not a manifest's")
                    } else {
                        accepted.append(referrer)
                    }
                }
                try await withThrowingTaskGroup(of: Void.self) { inner in
                    for referrer in accepted {
                        let isListed = listed.contains(referrer.digest)
                        if isListed { self.present(referrer.digest) }
                        inner.addTask {
                            do {
                                try await self.copyNode(
                                    referrer, allowReferrers: true, mustBeListed: !isListed, subject: subject.digest, chain: chain)
                                self.report.withLock { r in
                                    if !r.referrers.contains(where: { $0.digest == referrer.digest }) { r.referrers.append(referrer) }
                                }
                            } catch let refused as RefusedReferrer {
                                self.refuse(refused.reason)
                            }
                        }
                    }
                    while try await inner.next() != nil {}
                }
            }
            for tag in self.copier.options.cosignTagSuffixes.map({ "\(subject.digest.tagSchema).\($0)" }) {
                group.addTask {
                    let desc: Descriptor
                    do {
                        desc = try await self.source.resolve(tag)
                    } catch let e as OCIError where e.code == .notFound {
                        return
                    }
                    guard !chain.contains(desc.digest) else {
                        return self.refuse("cosign tag \(tag) points at \(desc.digest), the manifest it is attached to or one above it")
                    }
                    guard MediaType.isManifest(desc.mediaType) else {
                        return self.refuse("cosign tag \(tag) points at \(desc.digest) of media type \(desc.mediaType), not a manifest")
                    }
                    if (try? await self.destination.resolve(tag))?.digest == desc.digest {
                        self.present(desc.digest)
                    } else {
                        try await self.copyNode(desc, allowReferrers: false, chain: chain)
                        try await self.destination.tag(desc, as: tag)
                    }
                    self.report.withLock { $0.cosignTags.append(tag) }
                }
            }
            while try await group.next() != nil {}  // first error cancels the rest
        }
    }

    /// Pushes a manifest whose children are in the destination. A registry may still answer `MANIFEST_BLOB_UNKNOWN`
    /// while a concurrent mount or upload of one of its blobs settles (distribution 2.8 rewrites a repository's
    /// blob link non-atomically): the blobs are checked again, any missing one is brought again, and the push is
    /// tried once more; a second refusal is reported.
    private func pushManifest(_ raw: RawManifest, children: [Descriptor]) async throws {
        do {
            try await destination.push(raw.descriptor, content: .bytes(raw.bytes))
        } catch let e as OCIError where e.code == .manifestBlobUnknown {
            logger.notice("\(destination.displayName) refused manifest \(raw.digest) for a missing blob; checking its blobs and pushing it again")
            for child in children where !MediaType.isManifest(child.mediaType) && (child.urls?.isEmpty ?? true) {
                if try await !destination.exists(child) { try await transferBlob(child) }
            }
            do {
                try await destination.push(raw.descriptor, content: .bytes(raw.bytes))
            } catch let again as OCIError where again.code == .manifestBlobUnknown {
                throw OCIError(.manifestBlobUnknown, "\(again.reason) (refused again after its blobs were checked and brought)")
            }
        }
    }

    private func copyBlob(_ blob: Descriptor) async throws {
        guard let ledger = copier.options.ledger else { return try await transferBlob(blob) }
        // Each (destination repository, blob) is brought once per run: the other copies of the run that need it in
        // the same repository wait for the first instead of mounting or uploading it again (distribution 2.8
        // rewrites a repository's blob link non-atomically, and a manifest PUT racing such a rewrite is refused).
        switch ledger.claim(BlobLedger.repositoryKey(destination: destination.displayName, digest: blob.digest)) {
        case .wait(let task):
            if (try? await task.value) != nil {
                report.withLock { $0.blobsSkipped += 1 }
                copier.options.progress?(.blobDone(blob, .skipped))
                return
            }
            try await transferBlob(blob)  // the copy that claimed it failed: bring it here
        case .owner(let done):
            do {
                try await bringBlob(blob, ledger: ledger)
                done(.success(destination))
            } catch {
                done(.failure(error))
                throw error
            }
        }
    }

    /// Brings a blob to this copy's repository. Another copy of this run may be bringing it to another repository
    /// of the same registry: wait for it, then mount from the repository that has it (or find it already here).
    private func bringBlob(_ blob: Descriptor, ledger: BlobLedger) async throws {
        switch ledger.claim(BlobLedger.key(destination: destination.displayName, digest: blob.digest)) {
        case .owner(let done):
            do {
                try await transferBlob(blob)
                done(.success(destination))
            } catch {
                done(.failure(error))
                throw error
            }
        case .wait(let task):
            if let holder = try? await task.value, holder.displayName != destination.displayName,
                let mounter = destination as? any BlobMounter, try await mounter.mount(blob, from: holder)
            {
                report.withLock { $0.blobsMounted += 1 }
                copier.options.progress?(.blobDone(blob, .mounted))
                return
            }
            try await transferBlob(blob)
        }
    }

    private func transferBlob(_ blob: Descriptor) async throws {
        let progress = copier.options.progress
        if try await destination.exists(blob) {
            report.withLock { $0.blobsSkipped += 1 }
            progress?(.blobDone(blob, .skipped))
            return
        }
        try await semaphore.withPermit {
            progress?(.blobStarted(blob))
            if let mounter = self.destination as? any BlobMounter, try await mounter.mount(blob, from: self.source) {
                self.report.withLock { $0.blobsMounted += 1 }
                progress?(.blobDone(blob, .mounted))
                return
            }
            var stream = try await self.source.fetchVerified(blob)
            if let progress { stream = stream.observed { progress(.bytes($0)) } }
            try await self.destination.push(blob, content: stream)
            self.report.withLock {
                $0.blobsCopied += 1
                $0.bytesCopied += blob.size
            }
            progress?(.blobDone(blob, .copied))
        }
    }

    /// Applies the platform filter to an index: one platform → its manifest; several → a new index of them.
    /// Returns the new root and whether it was built (and pushed) here rather than found in the source.
    func selectPlatforms(index: Descriptor) async throws -> (Descriptor, Bool) {
        let raw = try await source.fetchManifest(index)
        guard case .index(var idx) = try raw.parsed() else { return (index, false) }
        let wanted = copier.options.platforms
        let kept = idx.manifests.filter { entry in
            guard let p = entry.platform else { return false }
            return wanted.contains { $0.matches(p) }
        }
        let missing = wanted.filter { w in !kept.contains { $0.platform.map(w.matches) ?? false } }
        guard missing.isEmpty else {
            let available = idx.manifests.compactMap { $0.platform?.description }.joined(separator: ", ")
            throw OCIError(
                .notFound,
                "\(index.digest) has no manifest for platform \(missing.map(\.description).joined(separator: ", ")); available: \(available)")
        }
        if kept.count == 1 { return (kept[0], false) }
        idx.manifests = kept
        let newIndex = try RawManifest.encode(idx, mediaType: raw.mediaType)
        // The filtered index exists only in the destination; push its children first, then it.
        for child in kept { try await copyNode(child, allowReferrers: true) }
        try await destination.push(newIndex)
        report.withLock { $0.manifestsCopied += 1 }
        return (newIndex.descriptor, true)
    }
}

/// A referrer that does not belong where it was found; it is left out of the copy with this reason.
struct RefusedReferrer: Error {
    var reason: String
}

/// Which blobs the copies of one run have brought (or are bringing) to which registry and repository. The first copy
/// to claim a blob for a repository brings it (the others needing it there wait); the first to claim it for a
/// registry transfers it, and copies into its other repositories wait and then mount it from the one that has it.
public final class BlobLedger: Sendable {
    public enum Claim {
        /// Transfer the blob, then report where it landed (or the error).
        case owner(@Sendable (Result<any ContentReader, Error>) -> Void)
        /// Another copy is bringing it; the task gives the store that has it.
        case wait(Task<any ContentReader, Error>)
    }

    private let entries = Mutex<[String: Task<any ContentReader, Error>]>([:])

    public init() {}

    /// Blobs are shared per registry host: the part of the store's name before the first `/`.
    static func key(destination: String, digest: Digest) -> String {
        String(destination.prefix { $0 != "/" }) + "|" + digest.description
    }

    /// A blob in one repository (the store's whole name).
    static func repositoryKey(destination: String, digest: Digest) -> String {
        "repository:" + destination + "|" + digest.description
    }

    func claim(_ key: String) -> Claim {
        entries.withLock { e -> Claim in
            if let t = e[key] { return .wait(t) }
            let (stream, continuation) = AsyncStream<Result<any ContentReader, Error>>.makeStream()
            let task = Task<any ContentReader, Error> {
                for await r in stream { return try r.get() }
                throw CancellationError()
            }
            e[key] = task
            return .owner { result in
                continuation.yield(result)
                continuation.finish()
            }
        }
    }
}
