import Documents
import Foundation

/// The rule for a new finding's discovery date: the same finding on another version of the artefact (same
/// datasource, type and data key) passes its discovery date on, so a version bump does not restart the SLA clock —
/// unless that finding was last seen longer than ``maximumReuse`` ago, then the finding counts as new.
public struct DiscoveryDates: Sendable, Hashable {
    /// How long after an earlier finding was last seen (or resolved) its discovery date may still be reused; nil:
    /// without limit.
    public var maximumReuse: Duration?

    public init(maximumReuse: Duration? = nil) { self.maximumReuse = maximumReuse }

    /// The discovery date for finding `key`, first reported at `now`, given `earlier` findings (of any artefact:
    /// only those of the same lineage count).
    public func discoveryDate(for key: FindingKey, at now: Date, earlier: [Finding]) -> Date {
        let lineage = key.lineage
        return discoveryDate(at: now, candidates: earlier.lazy.filter { $0.key.lineage == lineage })
    }

    /// The rule over candidates already known to share the lineage.
    func discoveryDate(at now: Date, candidates: some Sequence<Finding>) -> Date {
        var date = now
        for c in candidates where c.discoveredAt < date {
            if let limit = maximumReuse, now.timeIntervalSince(c.resolvedAt ?? c.lastSeenAt) > limit.seconds { continue }
            date = c.discoveredAt
        }
        return date
    }
}

/// A complete scan of one artefact version by one datasource: every finding it reports. What it does not report
/// is gone from the artefact.
public struct Scan: Sendable, Hashable {
    /// One finding as a scanner reports it.
    public struct Entry: Sendable, Hashable {
        public var dataKey: DataKey
        public var score: Double?
        public var summary: String

        public init(_ dataKey: DataKey, score: Double? = nil, summary: String = "") {
            self.dataKey = dataKey
            self.score = score
            self.summary = summary
        }
    }

    public var artefact: ArtefactID
    public var datasource: String
    public var scannedAt: Date
    public var entries: [Entry]

    public init(artefact: ArtefactID, datasource: String, scannedAt: Date, entries: [Entry]) {
        self.artefact = artefact
        self.datasource = datasource
        self.scannedAt = scannedAt
        self.entries = entries
    }
}

/// Folds a complete scan into the recorded findings: what to write and what to close.
public struct FindingsMerge: Sendable, Hashable {
    public struct Result: Sendable, Hashable {
        /// Findings to insert or replace (by key), in the scan's order.
        public var upserts: [Finding]
        /// Open findings of the scanned artefact and datasource the scan no longer reports, now resolved.
        public var closed: [Finding]
    }

    public var discovery: DiscoveryDates

    public init(discovery: DiscoveryDates = DiscoveryDates()) { self.discovery = discovery }

    /// `existing`: the recorded findings of the scanned artefact's name (every version; others are ignored).
    ///
    /// A reported finding that is open keeps its discovery date and gets the scan's score, summary and time; one
    /// that is new, or was resolved and is back, gets its date from ``discovery`` (the finding itself included
    /// among the earlier ones). Open findings of the same artefact and datasource the scan does not report are
    /// closed at the scan's time. A finding last seen after the scan (an older scan delivered late) is left alone.
    public func merge(existing: [Finding], scan: Scan) -> Result {
        let name = scan.artefact.name
        var byLineage: [FindingLineage: [Finding]] = [:]
        var current: [FindingKey: Finding] = [:]
        for f in existing where f.key.artefact.name == name {
            byLineage[f.key.lineage, default: []].append(f)
            if f.key.artefact == scan.artefact { current[f.key] = f }
        }
        var reported = Set<FindingKey>()
        var upserts: [Finding] = []
        for entry in scan.entries {
            let key = FindingKey(artefact: scan.artefact, datasource: scan.datasource, dataKey: entry.dataKey)
            guard reported.insert(key).inserted else { continue }
            var f: Finding
            if let old = current[key], old.isOpen {
                guard old.lastSeenAt <= scan.scannedAt else { continue }
                f = old
            } else {
                let since = discovery.discoveryDate(at: scan.scannedAt, candidates: byLineage[key.lineage] ?? [])
                f = Finding(key: key, discoveredAt: since)
            }
            f.score = entry.score
            f.summary = entry.summary
            f.lastSeenAt = scan.scannedAt
            upserts.append(f)
        }
        let closed = current.values
            .filter { $0.isOpen && $0.key.datasource == scan.datasource && !reported.contains($0.key) && $0.lastSeenAt <= scan.scannedAt }
            .map { f in
                var f = f
                f.resolvedAt = scan.scannedAt
                return f
            }
            .sorted { $0.key.stableString < $1.key.stableString }
        return Result(upserts: upserts, closed: closed)
    }
}
