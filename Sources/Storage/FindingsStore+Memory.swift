import Foundation

/// The findings tables of the in-memory twin.
struct MemoryFindingsState {
    var artefacts: [ArtefactRef: ArtefactRecord] = [:]
    var nextNumber: Int64 = 1
    /// Findings by artefact number, then by cursor (the key within the artefact).
    var findings: [ArtefactRef: [FindingCursor: FindingRecord]] = [:]
    var scans: [ArtefactRef: [String: ScanRecord]] = [:]
    var rescorings: [String: RescoringRecord] = [:]
    var backlog: [BacklogKey: BacklogRecord] = [:]
    var snapshots: [String: SnapshotRecord] = [:]
    var trackedTags: [String: TrackedTagRecord] = [:]
    var issues: [String: IssueRecord] = [:]

    struct BacklogKey: Hashable {
        var scanner: String
        var artefact: ArtefactRef
    }

    mutating func ensure(_ ref: ArtefactRef, at: Date) -> ArtefactRecord {
        if let a = artefacts[ref] { return a }
        let a = ArtefactRecord(ref: ref, number: nextNumber, firstSeenAt: at)
        nextNumber += 1
        artefacts[ref] = a
        return a
    }
}

extension MemoryWorkflowStore {
    public func recordArtefacts(_ sightings: [ArtefactSighting], at: Date, audit: [AuditEvent]) async throws -> [ArtefactRecord] {
        let out = sightings.map { s in
            var a = findings.ensure(s.ref, at: at)
            a.tags = Array(Set(a.tags).union(s.tags)).sorted()
            if let c = s.component {
                a.component = c
                a.componentVersion = s.componentVersion
            }
            a.inactiveSince = nil
            findings.artefacts[s.ref] = a
            return a
        }
        control.append(audit)
        return out
    }

    public func artefact(_ ref: ArtefactRef) async throws -> ArtefactRecord? { findings.artefacts[ref] }

    public func artefacts(registry: String?, repository: String?, component: String?, trackedOnly: Bool) async throws -> [ArtefactRecord] {
        findings.artefacts.values.filter { a in
            (registry.map { $0 == a.ref.registry } ?? true) && (repository.map { $0 == a.ref.repository } ?? true)
                && (component.map { $0 == a.component } ?? true) && (!trackedOnly || a.inactiveSince == nil)
        }
        .sorted { $0.ref < $1.ref }
    }

    public func markInactive(_ refs: [ArtefactRef], at: Date, audit: [AuditEvent]) async throws {
        for r in refs where findings.artefacts[r]?.inactiveSince == nil && findings.artefacts[r] != nil { findings.artefacts[r]!.inactiveSince = at }
        control.append(audit)
    }

    public func deleteInactive(before: Date, audit: [AuditEvent]) async throws -> Int {
        let gone = findings.artefacts.values.filter { ($0.inactiveSince.map { $0 < before }) ?? false }.map(\.ref)
        for r in gone {
            findings.artefacts[r] = nil
            findings.findings[r] = nil
            findings.scans[r] = nil
            findings.backlog = findings.backlog.filter { $0.key.artefact != r }
        }
        if !gone.isEmpty { control.append(audit) }
        return gone.count
    }

    public func recordScan(_ scan: ScanRecord, audit: [AuditEvent], merge: @escaping @Sendable ([FindingRecord]) throws -> [FindingRecord])
        async throws
        -> [FindingRecord]
    {
        var state = findings
        _ = state.ensure(scan.artefact, at: scan.scannedAt)
        let existing = state.findings.filter { $0.key.registry == scan.artefact.registry && $0.key.repository == scan.artefact.repository }
            .flatMap(\.value.values)
        var written = try merge(existing)
        for i in written.indices {
            let a = state.ensure(written[i].artefact, at: scan.scannedAt)
            written[i].artefactNumber = a.number
            state.findings[a.ref, default: [:]][written[i].cursor] = written[i]
        }
        if (state.scans[scan.artefact]?[scan.datasource]?.scannedAt).map({ $0 <= scan.scannedAt }) ?? true {
            state.scans[scan.artefact, default: [:]][scan.datasource] = scan
        }
        findings = state
        control.append(audit)
        return written
    }

    public func scans(of ref: ArtefactRef) async throws -> [ScanRecord] {
        (findings.scans[ref] ?? [:]).values.sorted { $0.datasource < $1.datasource }
    }

    func matching(_ query: FindingQuery) -> [FindingRecord] {
        findings.findings.flatMap { ref, byKey in
            let a = findings.artefacts[ref]
            return byKey.values.filter { query.matches($0, a) }
        }
        .sorted { $0.cursor < $1.cursor }
    }

    public func findings(_ query: FindingQuery) async throws -> [FindingRecord] { Array(matching(query).prefix(query.limit)) }

    public func findingCount(_ query: FindingQuery) async throws -> Int {
        var q = query
        q.after = nil
        return matching(q).count
    }

    public func addRescoring(_ r: RescoringRecord, audit: [AuditEvent]) async throws -> Bool {
        guard findings.rescorings[r.id] == nil else { return false }
        findings.rescorings[r.id] = r
        control.append(audit)
        return true
    }

    public func rescoring(id: String) async throws -> RescoringRecord? { findings.rescorings[id] }

    public func rescorings(type: String?, subject: String?, dataID: String?) async throws -> [RescoringRecord] {
        findings.rescorings.values.filter { r in
            guard let type, let subject, let dataID else { return true }
            return r.type == type && r.subject == subject && r.dataID == dataID
        }
        .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    public func rescorings(dataIDs: Set<String>) async throws -> [RescoringRecord] {
        findings.rescorings.values.filter { dataIDs.contains($0.dataID) }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    public func revokeRescoring(id: String, at: Date, audit: [AuditEvent]) async throws -> RescoringRecord? {
        guard var r = findings.rescorings[id] else { return nil }
        if r.expiresAt.map({ $0 > at }) ?? true {
            r.expiresAt = at
            r.freshClock = false
        }
        findings.rescorings[id] = r
        control.append(audit)
        return r
    }

    public func unauditedExpiries(now: Date) async throws -> [RescoringRecord] {
        findings.rescorings.values.filter { !$0.expiryAudited && ($0.expiresAt.map { $0 <= now } ?? false) }
            .sorted { ($0.expiresAt!, $0.id) < ($1.expiresAt!, $1.id) }
    }

    public func recordExpiry(id: String, audit: [AuditEvent]) async throws -> Bool {
        guard let r = findings.rescorings[id], !r.expiryAudited else { return false }
        findings.rescorings[id]!.expiryAudited = true
        control.append(audit)
        return true
    }

    public func enqueue(_ items: [BacklogRecord], audit: [AuditEvent]) async throws {
        for i in items {
            _ = findings.ensure(i.artefact, at: i.createdAt)
            let key = MemoryFindingsState.BacklogKey(scanner: i.scanner, artefact: i.artefact)
            if var old = findings.backlog[key] {
                old.priority = max(old.priority, i.priority)
                old.createdAt = min(old.createdAt, i.createdAt)
                findings.backlog[key] = old
            } else {
                findings.backlog[key] = BacklogRecord(scanner: i.scanner, artefact: i.artefact, priority: i.priority, createdAt: i.createdAt)
            }
        }
        control.append(audit)
    }

    public func claim(worker: String, scanners: [String]?, now: Date, lease: TimeInterval) async throws -> BacklogRecord? {
        guard
            var next = findings.backlog.values.filter({ $0.isClaimable(at: now) && (scanners.map(Set.init)?.contains($0.scanner) ?? true) })
                .min(by: BacklogRecord.claimsBefore)
        else { return nil }
        next.claimedBy = worker
        next.leaseUntil = now + lease
        findings.backlog[MemoryFindingsState.BacklogKey(scanner: next.scanner, artefact: next.artefact)] = next
        return next
    }

    public func heartbeat(worker: String, scanner: String, artefact: ArtefactRef, now: Date, lease: TimeInterval) async throws -> Bool {
        let key = MemoryFindingsState.BacklogKey(scanner: scanner, artefact: artefact)
        guard let item = findings.backlog[key], item.claimedBy == worker, (item.leaseUntil.map { $0 > now }) ?? false else { return false }
        findings.backlog[key]!.leaseUntil = now + lease
        return true
    }

    public func complete(worker: String, scanner: String, artefact: ArtefactRef) async throws -> Bool {
        let key = MemoryFindingsState.BacklogKey(scanner: scanner, artefact: artefact)
        guard findings.backlog[key]?.claimedBy == worker else { return false }
        findings.backlog[key] = nil
        return true
    }

    public func releaseClaims(worker: String) async throws -> Int {
        var n = 0
        for (k, v) in findings.backlog where v.claimedBy == worker {
            findings.backlog[k]!.claimedBy = nil
            findings.backlog[k]!.leaseUntil = nil
            n += 1
        }
        return n
    }

    public func backlog(limit: Int) async throws -> [BacklogRecord] {
        Array(findings.backlog.values.sorted(by: BacklogRecord.claimsBefore).prefix(limit))
    }

    public func trackTags(_ tags: [TrackedTagRecord], audit: [AuditEvent]) async throws {
        for t in tags { findings.trackedTags[t.reference] = t }
        control.append(audit)
    }

    public func untrackTag(registry: String, repository: String, tag: String, audit: [AuditEvent]) async throws -> Bool {
        guard findings.trackedTags.removeValue(forKey: "\(registry)/\(repository):\(tag)") != nil else { return false }
        control.append(audit)
        return true
    }

    public func trackedTags() async throws -> [TrackedTagRecord] {
        findings.trackedTags.values.sorted { ($0.registry, $0.repository, $0.tag) < ($1.registry, $1.repository, $1.tag) }
    }

    public func exportedIssues() async throws -> [IssueRecord] { findings.issues.values.sorted { $0.id < $1.id } }

    public func saveIssues(_ issues: [IssueRecord], audit: [AuditEvent]) async throws {
        for i in issues { findings.issues[i.id] = i }
        control.append(audit)
    }

    public func saveSnapshots(_ snapshots: [SnapshotRecord]) async throws {
        for s in snapshots { findings.snapshots["\(s.kind)\n\(s.subject)\n\(s.day)"] = s }
    }

    public func snapshots(kind: String, subject: String, from: String?, to: String?) async throws -> [SnapshotRecord] {
        findings.snapshots.values.filter { $0.kind == kind && $0.subject == subject && $0.day >= (from ?? "") && $0.day <= (to ?? "\u{10FFFF}") }
            .sorted { $0.day < $1.day }
    }
}
