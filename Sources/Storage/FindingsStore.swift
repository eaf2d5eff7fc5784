import Foundation

/// One version of an OCI artefact, by digest, as the findings tables key it.
public struct ArtefactRef: Codable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var registry: String
    public var repository: String
    public var digest: String

    public init(registry: String, repository: String, digest: String) {
        self.registry = registry
        self.repository = repository
        self.digest = digest
    }

    /// `registry/repository@digest`.
    public var description: String { "\(registry)/\(repository)@\(digest)" }

    public static func < (a: ArtefactRef, b: ArtefactRef) -> Bool { (a.registry, a.repository, a.digest) < (b.registry, b.repository, b.digest) }
}

/// A tracked (or once-seen) artefact version: which component it belongs to, the tags it was seen under, whether it
/// is still tracked.
public struct ArtefactRecord: Codable, Sendable, Equatable {
    public var ref: ArtefactRef
    /// The store's number for the artefact: the findings' page order.
    public var number: Int64
    public var component: String?
    public var componentVersion: String?
    /// The tags it was seen under, sorted.
    public var tags: [String]
    public var firstSeenAt: Date
    /// When it stopped being tracked; nil while tracked.
    public var inactiveSince: Date?

    public init(
        ref: ArtefactRef, number: Int64 = 0, component: String? = nil, componentVersion: String? = nil, tags: [String] = [], firstSeenAt: Date,
        inactiveSince: Date? = nil
    ) {
        self.ref = ref
        self.number = number
        self.component = component
        self.componentVersion = componentVersion
        self.tags = tags
        self.firstSeenAt = firstSeenAt
        self.inactiveSince = inactiveSince
    }
}

/// What recording an artefact sets: tags are added to those seen, a component replaces the one recorded, and the
/// artefact is tracked again.
public struct ArtefactSighting: Sendable, Equatable {
    public var ref: ArtefactRef
    public var component: String?
    public var componentVersion: String?
    public var tags: [String]
    public init(ref: ArtefactRef, component: String? = nil, componentVersion: String? = nil, tags: [String] = []) {
        self.ref = ref
        self.component = component
        self.componentVersion = componentVersion
        self.tags = tags
    }
}

/// One complete scan of an artefact version by one datasource (the meta entry: which scanner saw it when).
public struct ScanRecord: Codable, Sendable, Equatable {
    public var artefact: ArtefactRef
    public var datasource: String
    public var scannedAt: Date
    /// How many findings it reported.
    public var findings: Int
    /// Informational data it produced (JSON text: the OS id, the inventory's digest…).
    public var info: String?
    public init(artefact: ArtefactRef, datasource: String, scannedAt: Date, findings: Int, info: String? = nil) {
        self.artefact = artefact
        self.datasource = datasource
        self.scannedAt = scannedAt
        self.findings = findings
        self.info = info
    }
}

/// A finding as the store keeps it. Its key: artefact, datasource, type, subject and id (the type's data key).
public struct FindingRecord: Codable, Sendable, Equatable {
    public var artefact: ArtefactRef
    /// The artefact's ``ArtefactRecord/number`` (set by the store).
    public var artefactNumber: Int64
    public var datasource: String
    public var type: String
    public var subject: String
    public var dataID: String
    public var score: Double?
    public var summary: String
    public var discoveredAt: Date
    public var lastSeenAt: Date
    public var resolvedAt: Date?

    public init(
        artefact: ArtefactRef, artefactNumber: Int64 = 0, datasource: String, type: String, subject: String, dataID: String, score: Double?,
        summary: String, discoveredAt: Date, lastSeenAt: Date, resolvedAt: Date?
    ) {
        self.artefact = artefact
        self.artefactNumber = artefactNumber
        self.datasource = datasource
        self.type = type
        self.subject = subject
        self.dataID = dataID
        self.score = score
        self.summary = summary
        self.discoveredAt = discoveredAt
        self.lastSeenAt = lastSeenAt
        self.resolvedAt = resolvedAt
    }

    /// Where it sits in page order.
    public var cursor: FindingCursor {
        FindingCursor(artefact: artefactNumber, datasource: datasource, type: type, subject: subject, dataID: dataID)
    }
}

/// A position in the findings' page order (artefact number, datasource, type, subject, id).
public struct FindingCursor: Codable, Sendable, Hashable, Comparable {
    public var artefact: Int64
    public var datasource, type, subject, dataID: String
    public init(artefact: Int64, datasource: String, type: String, subject: String, dataID: String) {
        self.artefact = artefact
        self.datasource = datasource
        self.type = type
        self.subject = subject
        self.dataID = dataID
    }
    public static func < (a: FindingCursor, b: FindingCursor) -> Bool {
        (a.artefact, a.datasource, a.type, a.subject, a.dataID) < (b.artefact, b.datasource, b.type, b.subject, b.dataID)
    }
}

/// Filters of a findings list, in page order; nil filters match everything.
public struct FindingQuery: Sendable, Equatable {
    public var registry, repository, digest: String?
    /// Findings of the artefacts of this component (any version of it, or `componentVersion`).
    public var component, componentVersion: String?
    public var type, datasource, subject, dataID: String?
    /// Only open findings.
    public var openOnly: Bool
    /// The page starts after this position.
    public var after: FindingCursor?
    public var limit: Int

    public init(
        registry: String? = nil, repository: String? = nil, digest: String? = nil, component: String? = nil, componentVersion: String? = nil,
        type: String? = nil, datasource: String? = nil, subject: String? = nil, dataID: String? = nil, openOnly: Bool = false,
        after: FindingCursor? = nil, limit: Int = 100
    ) {
        self.registry = registry
        self.repository = repository
        self.digest = digest
        self.component = component
        self.componentVersion = componentVersion
        self.type = type
        self.datasource = datasource
        self.subject = subject
        self.dataID = dataID
        self.openOnly = openOnly
        self.after = after
        self.limit = limit
    }

    func matches(_ f: FindingRecord, _ a: ArtefactRecord?) -> Bool {
        (registry.map { $0 == f.artefact.registry } ?? true) && (repository.map { $0 == f.artefact.repository } ?? true)
            && (digest.map { $0 == f.artefact.digest } ?? true) && (component.map { $0 == a?.component } ?? true)
            && (componentVersion.map { $0 == a?.componentVersion } ?? true) && (type.map { $0 == f.type } ?? true)
            && (datasource.map { $0 == f.datasource } ?? true) && (subject.map { $0 == f.subject } ?? true)
            && (dataID.map { $0 == f.dataID } ?? true) && (!openOnly || f.resolvedAt == nil) && (after.map { f.cursor > $0 } ?? true)
    }
}

/// A rescoring as the store keeps it. `scope` is `global`, `component` (`scopeValue`: the component's name),
/// `artefact` (`registry/repository`) or `single` (`registry/repository@digest`).
public struct RescoringRecord: Codable, Sendable, Equatable {
    public var id: String
    public var type, subject, dataID: String
    public var scope: String
    public var scopeValue: String
    public var category: String
    public var comment: String
    public var user: String
    public var createdAt: Date
    public var dueDate: Date?
    public var processingSeconds: Double?
    public var expiresAt: Date?
    public var freshClock: Bool
    /// Its expiry has been written to the audit log.
    public var expiryAudited: Bool

    public init(
        id: String, type: String, subject: String, dataID: String, scope: String, scopeValue: String, category: String, comment: String,
        user: String, createdAt: Date, dueDate: Date? = nil, processingSeconds: Double? = nil, expiresAt: Date? = nil, freshClock: Bool = false,
        expiryAudited: Bool = false
    ) {
        self.id = id
        self.type = type
        self.subject = subject
        self.dataID = dataID
        self.scope = scope
        self.scopeValue = scopeValue
        self.category = category
        self.comment = comment
        self.user = user
        self.createdAt = createdAt
        self.dueDate = dueDate
        self.processingSeconds = processingSeconds
        self.expiresAt = expiresAt
        self.freshClock = freshClock
        self.expiryAudited = expiryAudited
    }
}

/// Queued scan work: one item per scanner and artefact version, claimed by one worker at a time under a lease.
public struct BacklogRecord: Codable, Sendable, Equatable {
    public var scanner: String
    public var artefact: ArtefactRef
    public var priority: Int
    public var createdAt: Date
    public var claimedBy: String?
    public var leaseUntil: Date?
    public init(scanner: String, artefact: ArtefactRef, priority: Int, createdAt: Date, claimedBy: String? = nil, leaseUntil: Date? = nil) {
        self.scanner = scanner
        self.artefact = artefact
        self.priority = priority
        self.createdAt = createdAt
        self.claimedBy = claimedBy
        self.leaseUntil = leaseUntil
    }

    /// Claimable at `now`: unclaimed, or its claim's lease has run out.
    public func isClaimable(at now: Date) -> Bool { claimedBy == nil || (leaseUntil.map { $0 <= now } ?? true) }

    /// The claim order: highest priority, then oldest, then scanner and artefact.
    public static func claimsBefore(_ a: BacklogRecord, _ b: BacklogRecord) -> Bool {
        (-a.priority, a.createdAt, a.scanner, a.artefact) < (-b.priority, b.createdAt, b.scanner, b.artefact)
    }
}

/// A compliance snapshot of an artefact or a component for one day (JSON `data`); a later snapshot of the same day
/// replaces it.
public struct SnapshotRecord: Codable, Sendable, Equatable {
    /// `artefact` or `component`.
    public var kind: String
    /// The artefact's reference or the component's name.
    public var subject: String
    /// `yyyy-mm-dd` (UTC).
    public var day: String
    public var at: Date
    public var data: String
    public init(kind: String, subject: String, day: String, at: Date, data: String) {
        self.kind = kind
        self.subject = subject
        self.day = day
        self.at = at
        self.data = data
    }
}

/// A tag whose digest the enumerator follows: each new digest becomes a tracked artefact version (of the component,
/// when given); the digests it pointed at before stop being tracked.
public struct TrackedTagRecord: Codable, Sendable, Equatable {
    public var registry, repository, tag: String
    public var component, componentVersion: String?
    public var addedAt: Date
    public init(registry: String, repository: String, tag: String, component: String? = nil, componentVersion: String? = nil, addedAt: Date) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.component = component
        self.componentVersion = componentVersion
        self.addedAt = addedAt
    }
    /// `registry/repository:tag`.
    public var reference: String { "\(registry)/\(repository):\(tag)" }
}

/// An exported issue as last delivered: its id, whether it is open, and its JSON document.
public struct IssueRecord: Codable, Sendable, Equatable {
    public var id: String
    /// `open`, or `closed:<reason>`.
    public var state: String
    public var data: String
    public var updatedAt: Date
    public init(id: String, state: String, data: String, updatedAt: Date) {
        self.id = id
        self.state = state
        self.data = data
        self.updatedAt = updatedAt
    }
}

/// Where the compliance engine keeps its state: artefacts, scans and their findings, rescorings, the scan backlog
/// and compliance snapshots. Every change that `audit` accompanies commits with its audit entries.
public protocol FindingsStore: Sendable {
    /// Records that artefacts were seen (tags added, component set when given, tracked again), in one transaction.
    @discardableResult
    func recordArtefacts(_ sightings: [ArtefactSighting], at: Date, audit: [AuditEvent]) async throws -> [ArtefactRecord]
    func artefact(_ ref: ArtefactRef) async throws -> ArtefactRecord?
    /// Artefacts by reference; nil filters match all; `trackedOnly` leaves out inactive ones.
    func artefacts(registry: String?, repository: String?, component: String?, trackedOnly: Bool) async throws -> [ArtefactRecord]
    /// Marks artefacts no longer tracked (keeps the first time they were found inactive).
    func markInactive(_ refs: [ArtefactRef], at: Date, audit: [AuditEvent]) async throws
    /// Deletes the artefacts inactive since before `before`, with their findings, scans and backlog items: how many.
    func deleteInactive(before: Date, audit: [AuditEvent]) async throws -> Int

    /// Records a complete scan: `merge` gets the recorded findings of every version of the scanned artefact's
    /// repository and returns the findings to write (inserted, or replacing the one of the same key); the scan's
    /// meta entry, the artefact (if new) and `audit` commit in the same transaction. The written findings.
    func recordScan(_ scan: ScanRecord, audit: [AuditEvent], merge: @escaping @Sendable ([FindingRecord]) throws -> [FindingRecord]) async throws
        -> [FindingRecord]
    /// The scans of an artefact, one per datasource (the latest).
    func scans(of ref: ArtefactRef) async throws -> [ScanRecord]
    func findings(_ query: FindingQuery) async throws -> [FindingRecord]
    func findingCount(_ query: FindingQuery) async throws -> Int

    /// Adds a rescoring; false when one with its id exists.
    func addRescoring(_ r: RescoringRecord, audit: [AuditEvent]) async throws -> Bool
    func rescoring(id: String) async throws -> RescoringRecord?
    /// Rescorings, oldest first; with a data key, only that key's.
    func rescorings(type: String?, subject: String?, dataID: String?) async throws -> [RescoringRecord]
    /// The rescorings (oldest first) of the findings whose id (the data key's second part) is in `dataIDs`: what the
    /// findings of a page or a component need, in a few indexed lookups.
    func rescorings(dataIDs: Set<String>) async throws -> [RescoringRecord]
    /// Ends a rescoring at `at` (its expiry, unless it expires earlier): it stays in the history. The rescoring after
    /// the change; nil when there is none with `id`.
    func revokeRescoring(id: String, at: Date, audit: [AuditEvent]) async throws -> RescoringRecord?
    /// Rescorings expired by `now` whose expiry has not been audited.
    func unauditedExpiries(now: Date) async throws -> [RescoringRecord]
    /// Writes a rescoring's expiry `audit` once: false (and nothing written) when it was written already.
    func recordExpiry(id: String, audit: [AuditEvent]) async throws -> Bool

    /// Queues work: an item already queued for the same scanner and artefact keeps its place and claim, and its
    /// priority is raised (never lowered).
    func enqueue(_ items: [BacklogRecord], audit: [AuditEvent]) async throws
    /// Claims the next claimable item (of `scanners`, or any) for `worker` until `now + lease`: highest priority,
    /// then oldest. nil when there is none.
    func claim(worker: String, scanners: [String]?, now: Date, lease: TimeInterval) async throws -> BacklogRecord?
    /// Extends `worker`'s claim; false when it no longer holds it.
    func heartbeat(worker: String, scanner: String, artefact: ArtefactRef, now: Date, lease: TimeInterval) async throws -> Bool
    /// Deletes the item `worker` holds; false when it no longer holds it.
    func complete(worker: String, scanner: String, artefact: ArtefactRef) async throws -> Bool
    /// Releases every claim of `worker` (it stopped or died): how many.
    func releaseClaims(worker: String) async throws -> Int
    /// The queue in claim order.
    func backlog(limit: Int) async throws -> [BacklogRecord]

    /// Adds or replaces tracked tags (by registry, repository and tag).
    func trackTags(_ tags: [TrackedTagRecord], audit: [AuditEvent]) async throws
    /// Stops following a tag; false when it was not tracked.
    func untrackTag(registry: String, repository: String, tag: String, audit: [AuditEvent]) async throws -> Bool
    /// Tracked tags by reference.
    func trackedTags() async throws -> [TrackedTagRecord]

    /// The issues as last exported, by id.
    func exportedIssues() async throws -> [IssueRecord]
    /// Records what an export delivered (replacing the issues of the same ids), with `audit`.
    func saveIssues(_ issues: [IssueRecord], audit: [AuditEvent]) async throws

    func saveSnapshots(_ snapshots: [SnapshotRecord]) async throws
    /// The snapshots of one subject, oldest day first, from `from` to `to` (days, inclusive) when given.
    func snapshots(kind: String, subject: String, from: String?, to: String?) async throws -> [SnapshotRecord]
}
