import Foundation
import OCITesting
import Storage
import Testing

/// The contract every `FindingsStore` keeps, run against each implementation (the in-memory twin and SQLite).
@Suite struct FindingsStoreContractTests {
    func make(_ impl: Implementation) throws -> any ControlStore {
        switch impl {
        case .memory: return MemoryWorkflowStore()
        case .sqlite: return try SQLiteWorkflowStore(path: try makeTemporaryDirectory() + "/workflows.sqlite")
        }
    }

    let t0 = Date(timeIntervalSinceReferenceDate: 800_000_000.125)
    let v1 = ArtefactRef(registry: "r.example", repository: "team/app", digest: "sha256:" + String(repeating: "1", count: 64))
    let v2 = ArtefactRef(registry: "r.example", repository: "team/app", digest: "sha256:" + String(repeating: "2", count: 64))
    let other = ArtefactRef(registry: "r.example", repository: "team/db", digest: "sha256:" + String(repeating: "3", count: 64))

    func audit(_ action: String) -> AuditEvent { AuditEvent(at: t0, actor: "user:ana", action: action, subject: "findings") }

    func finding(_ a: ArtefactRef, _ id: String, package: String = "openssl", score: Double? = 7.5, resolvedAt: Date? = nil) -> FindingRecord {
        FindingRecord(
            artefact: a, datasource: "vuln", type: "vulnerability", subject: package, dataID: id, score: score, summary: "\(package) \(id)",
            discoveredAt: t0, lastSeenAt: t0, resolvedAt: resolvedAt)
    }

    /// Records a scan whose merge writes `records` and hands back what it was given.
    func scan(_ store: any ControlStore, _ a: ArtefactRef, at: Date, _ records: [FindingRecord]) async throws -> [FindingRecord] {
        let seen = Seen()
        _ = try await store.recordScan(
            ScanRecord(artefact: a, datasource: "vuln", scannedAt: at, findings: records.count), audit: [audit("findings.scan")]
        ) { existing in
            seen.set(existing)
            return records
        }
        return seen.value
    }

    final class Seen: @unchecked Sendable {
        private let lock = NSLock()
        private var records: [FindingRecord] = []
        func set(_ r: [FindingRecord]) { lock.withLock { records = r } }
        var value: [FindingRecord] { lock.withLock { records } }
    }

    @Test(arguments: Implementation.allCases) func artefactsGainTagsAndComponentsAndInactiveOnesAreDeletedWithTheirFindings(
        _ impl: Implementation
    ) async throws {
        let store = try make(impl)
        let first = try await store.recordArtefacts(
            [ArtefactSighting(ref: v1, component: "shop", componentVersion: "1.0", tags: ["1.0"])], at: t0, audit: [audit("artefact.track")])
        #expect(first.map(\.tags) == [["1.0"]] && first[0].component == "shop" && first[0].firstSeenAt == t0)
        // Seen again under another tag without a component: the tags add up, the component stays.
        let again = try await store.recordArtefacts([ArtefactSighting(ref: v1, tags: ["latest"])], at: t0 + 60, audit: [])
        #expect(again[0].tags == ["1.0", "latest"] && again[0].component == "shop" && again[0].componentVersion == "1.0")
        #expect(again[0].firstSeenAt == t0 && again[0].number == first[0].number)
        _ = try await store.recordArtefacts([ArtefactSighting(ref: v2), ArtefactSighting(ref: other, component: "db")], at: t0, audit: [])
        #expect(try await store.artefacts(registry: "r.example", repository: "team/app", component: nil, trackedOnly: false).map(\.ref) == [v1, v2])
        #expect(try await store.artefacts(registry: nil, repository: nil, component: "shop", trackedOnly: false).map(\.ref) == [v1])

        _ = try await scan(store, v1, at: t0, [finding(v1, "CVE-1")])
        try await store.enqueue([BacklogRecord(scanner: "vuln", artefact: v1, priority: 1, createdAt: t0)], audit: [])
        try await store.markInactive([v1], at: t0 + 100, audit: [audit("artefact.untrack")])
        try await store.markInactive([v1], at: t0 + 200, audit: [])
        #expect(try await store.artefact(v1)?.inactiveSince == t0 + 100)
        #expect(try await store.artefacts(registry: nil, repository: nil, component: nil, trackedOnly: true).map(\.ref) == [v2, other])
        // Within the grace period nothing goes; after it the artefact goes with its findings, scans and backlog.
        #expect(try await store.deleteInactive(before: t0 + 100, audit: [audit("artefact.delete")]) == 0)
        #expect(try await store.deleteInactive(before: t0 + 101, audit: [audit("artefact.delete")]) == 1)
        #expect(try await store.artefact(v1) == nil)
        #expect(try await store.findings(FindingQuery()).isEmpty)
        #expect(try await store.scans(of: v1).isEmpty)
        #expect(try await store.backlog(limit: 10).isEmpty)
        #expect(try await store.auditCount() == 4)
        // Seen again, a deleted artefact is new.
        let back = try await store.recordArtefacts([ArtefactSighting(ref: v1)], at: t0 + 300, audit: [])
        #expect(back[0].firstSeenAt == t0 + 300 && back[0].component == nil)
    }

    @Test(arguments: Implementation.allCases) func aScanSeesEveryVersionOfItsRepositoryAndUpdatesFindingsInPlace(_ impl: Implementation) async throws
    {
        let store = try make(impl)
        #expect(try await scan(store, v1, at: t0, [finding(v1, "CVE-1"), finding(v1, "CVE-2", package: "zlib")]).isEmpty)
        _ = try await scan(store, other, at: t0, [finding(other, "CVE-9")])
        // The second version's merge gets the first version's findings, not the other repository's.
        let seen = try await scan(store, v2, at: t0 + 10, [finding(v2, "CVE-1")])
        #expect(Set(seen.map(\.dataID)) == ["CVE-1", "CVE-2"] && seen.allSatisfy { $0.artefact == v1 })
        #expect(seen.allSatisfy { $0.discoveredAt == t0 && $0.lastSeenAt == t0 && $0.score == 7.5 })
        // The same key again replaces the finding (idempotent), here resolving it.
        var closed = finding(v1, "CVE-2", package: "zlib", resolvedAt: t0 + 20)
        closed.lastSeenAt = t0 + 5
        _ = try await scan(store, v1, at: t0 + 20, [closed])
        #expect(try await store.findingCount(FindingQuery(digest: v1.digest)) == 2)
        #expect(try await store.findingCount(FindingQuery(digest: v1.digest, openOnly: true)) == 1)
        let got = try await store.findings(FindingQuery(subject: "zlib"))
        #expect(got.count == 1 && got[0].resolvedAt == t0 + 20 && got[0].lastSeenAt == t0 + 5 && got[0].artefactNumber > 0)
        // The scans' meta entries: the latest per datasource; an older scan delivered late does not replace it.
        _ = try await scan(store, v1, at: t0 + 1, [])
        let scans = try await store.scans(of: v1)
        #expect(scans.map(\.scannedAt) == [t0 + 20] && scans[0].datasource == "vuln")
        #expect(try await store.artefact(v2) != nil)
        #expect(try await store.auditCount() == 5)
    }

    @Test(arguments: Implementation.allCases) func findingPagesFollowTheKeyOrderUnderEveryFilter(_ impl: Implementation) async throws {
        let store = try make(impl)
        _ = try await store.recordArtefacts([ArtefactSighting(ref: v1, component: "shop", componentVersion: "1.0")], at: t0, audit: [])
        _ = try await store.recordArtefacts([ArtefactSighting(ref: other, component: "shop", componentVersion: "2.0")], at: t0, audit: [])
        let ids = (0..<25).map { String(format: "CVE-%02d", $0) }
        _ = try await scan(store, v1, at: t0, ids.map { finding(v1, $0, resolvedAt: $0.hasSuffix("0") ? t0 + 1 : nil) })
        _ = try await scan(store, other, at: t0, ids.prefix(5).map { finding(other, $0) })
        _ = try await scan(store, v2, at: t0, [finding(v2, "CVE-00")])
        for query in [
            FindingQuery(limit: 7), FindingQuery(component: "shop", limit: 4), FindingQuery(component: "shop", componentVersion: "2.0", limit: 2),
            FindingQuery(type: "vulnerability", openOnly: true, limit: 6), FindingQuery(repository: "team/app", dataID: "CVE-00", limit: 1),
        ] {
            let total = try await store.findingCount(query)
            var all: [FindingRecord] = []
            var q = query
            while true {
                let page = try await store.findings(q)
                all += page
                guard page.count == q.limit, let last = page.last else { break }
                q.after = last.cursor
            }
            #expect(all.count == total, "\(query)")
            #expect(all.map(\.cursor) == all.map(\.cursor).sorted() && Set(all.map(\.cursor)).count == all.count)
        }
        #expect(try await store.findingCount(FindingQuery()) == 31)
        #expect(try await store.findingCount(FindingQuery(component: "shop")) == 30)
        #expect(try await store.findingCount(FindingQuery(component: "shop", componentVersion: "2.0")) == 5)
        #expect(try await store.findingCount(FindingQuery(openOnly: true)) == 28)
        #expect(try await store.findingCount(FindingQuery(repository: "team/app", dataID: "CVE-00")) == 2)
    }

    @Test(arguments: Implementation.allCases) func rescoringsKeepTheirHistoryAndEachExpiryIsAuditedOnce(_ impl: Implementation) async throws {
        let store = try make(impl)
        func rescoring(_ id: String, dataID: String = "CVE-1", at: Date, expires: Date? = nil) -> RescoringRecord {
            RescoringRecord(
                id: id, type: "vulnerability", subject: "openssl", dataID: dataID, scope: "artefact", scopeValue: "r.example/team/app",
                category: "NONE", comment: "not reachable", user: "user:ana", createdAt: at, processingSeconds: 3600, expiresAt: expires,
                freshClock: expires != nil)
        }
        #expect(try await store.addRescoring(rescoring("b", at: t0 + 10, expires: t0 + 100), audit: [audit("rescoring.create")]))
        #expect(try await store.addRescoring(rescoring("a", at: t0), audit: [audit("rescoring.create")]))
        #expect(try await store.addRescoring(rescoring("c", dataID: "CVE-2", at: t0), audit: []))
        #expect(try await !store.addRescoring(rescoring("a", at: t0 + 5), audit: [audit("rescoring.create")]))
        #expect(try await store.rescoring(id: "a") == rescoring("a", at: t0))
        #expect(try await store.rescorings(type: "vulnerability", subject: "openssl", dataID: "CVE-1").map(\.id) == ["a", "b"])
        #expect(try await store.rescorings(type: nil, subject: nil, dataID: nil).map(\.id) == ["a", "c", "b"])
        #expect(try await store.rescorings(dataIDs: ["CVE-2", "CVE-1", "CVE-7"]).map(\.id) == ["a", "c", "b"])
        #expect(try await store.rescorings(dataIDs: ["CVE-2"]).map(\.id) == ["c"])
        #expect(try await store.rescorings(dataIDs: []).isEmpty)
        // Revoking ends it now and keeps it; revoking one that has expired leaves its expiry.
        let revoked = try await store.revokeRescoring(id: "a", at: t0 + 50, audit: [audit("rescoring.revoke")])
        #expect(revoked?.expiresAt == t0 + 50 && revoked?.comment == "not reachable")
        #expect(try await store.revokeRescoring(id: "b", at: t0 + 200, audit: [])?.expiresAt == t0 + 100)
        #expect(try await store.revokeRescoring(id: "missing", at: t0, audit: []) == nil)
        #expect(try await store.unauditedExpiries(now: t0 + 60).map(\.id) == ["a"])
        #expect(try await store.unauditedExpiries(now: t0 + 100).map(\.id) == ["a", "b"])
        #expect(try await store.recordExpiry(id: "a", audit: [audit("rescoring.expire")]))
        #expect(try await !store.recordExpiry(id: "a", audit: [audit("rescoring.expire")]))
        #expect(try await store.unauditedExpiries(now: t0 + 1000).map(\.id) == ["b"])
        #expect(try await store.auditCount() == 4)
    }

    @Test(arguments: Implementation.allCases) func theBacklogDeduplicatesRaisesPrioritiesAndReleasesDeadClaims(_ impl: Implementation) async throws {
        let store = try make(impl)
        try await store.enqueue(
            [
                BacklogRecord(scanner: "vuln", artefact: v1, priority: 1, createdAt: t0),
                BacklogRecord(scanner: "vuln", artefact: v2, priority: 4, createdAt: t0 + 1),
                BacklogRecord(scanner: "malware", artefact: v1, priority: 4, createdAt: t0 + 2),
            ], audit: [])
        // Queued again: v1's priority is raised and it keeps its place; v2's is not lowered.
        try await store.enqueue(
            [
                BacklogRecord(scanner: "vuln", artefact: v1, priority: 8, createdAt: t0 + 5),
                BacklogRecord(scanner: "vuln", artefact: v2, priority: 0, createdAt: t0 + 6),
            ], audit: [])
        let queue = try await store.backlog(limit: 10)
        #expect(queue.map(\.priority) == [8, 4, 4] && queue[0].createdAt == t0 && queue.map(\.scanner) == ["vuln", "vuln", "malware"])
        // Two workers claim in order; a third claim gets the last item, a fourth nothing.
        let a = try await store.claim(worker: "w1", scanners: nil, now: t0 + 10, lease: 60)
        let b = try await store.claim(worker: "w2", scanners: nil, now: t0 + 10, lease: 60)
        #expect(a?.artefact == v1 && a?.scanner == "vuln" && a?.claimedBy == "w1" && a?.leaseUntil == t0 + 70)
        #expect(b?.artefact == v2 && b?.scanner == "vuln")
        #expect(try await store.claim(worker: "w2", scanners: ["vuln"], now: t0 + 10, lease: 60) == nil)
        let c = try await store.claim(worker: "w2", scanners: ["malware"], now: t0 + 10, lease: 60)
        #expect(c?.scanner == "malware")
        #expect(try await store.claim(worker: "w3", scanners: [], now: t0 + 10, lease: 60) == nil)
        // w1 heartbeats; w2 dies: its claims' leases run out and w3 gets its work.
        #expect(try await store.heartbeat(worker: "w1", scanner: "vuln", artefact: v1, now: t0 + 50, lease: 60))
        #expect(try await !store.heartbeat(worker: "w3", scanner: "vuln", artefact: v1, now: t0 + 50, lease: 60))
        let taken = try await store.claim(worker: "w3", scanners: nil, now: t0 + 80, lease: 60)
        #expect(taken?.artefact == v2 && taken?.claimedBy == "w3")
        #expect(try await !store.heartbeat(worker: "w2", scanner: "vuln", artefact: v2, now: t0 + 81, lease: 60))
        #expect(try await !store.complete(worker: "w2", scanner: "vuln", artefact: v2))
        #expect(try await store.complete(worker: "w3", scanner: "vuln", artefact: v2))
        #expect(try await store.complete(worker: "w1", scanner: "vuln", artefact: v1))
        // A stopping worker releases its claims at once.
        #expect(try await store.releaseClaims(worker: "w2") == 1)
        #expect(try await store.claim(worker: "w1", scanners: nil, now: t0 + 81, lease: 60)?.scanner == "malware")
        #expect(try await store.backlog(limit: 10).map(\.claimedBy) == ["w1"])
    }

    @Test(arguments: Implementation.allCases) func aDaysSnapshotIsReplacedAndHistoriesAreRangesOfDays(_ impl: Implementation) async throws {
        let store = try make(impl)
        try await store.saveSnapshots([
            SnapshotRecord(kind: "component", subject: "shop", day: "2026-11-30", at: t0, data: "{\"open\":3}"),
            SnapshotRecord(kind: "component", subject: "shop", day: "2026-12-01", at: t0, data: "{\"open\":2}"),
            SnapshotRecord(kind: "artefact", subject: "shop", day: "2026-12-01", at: t0, data: "{}"),
        ])
        try await store.saveSnapshots([SnapshotRecord(kind: "component", subject: "shop", day: "2026-12-01", at: t0 + 5, data: "{\"open\":1}")])
        let all = try await store.snapshots(kind: "component", subject: "shop", from: nil, to: nil)
        #expect(all.map(\.day) == ["2026-11-30", "2026-12-01"] && all[1].data == "{\"open\":1}" && all[1].at == t0 + 5)
        #expect(try await store.snapshots(kind: "component", subject: "shop", from: "2026-12-01", to: nil).count == 1)
        #expect(try await store.snapshots(kind: "component", subject: "shop", from: nil, to: "2026-11-30").count == 1)
    }

    @Test(arguments: Implementation.allCases) func trackedTagsAndExportedIssuesAreReplacedByTheirKeys(_ impl: Implementation) async throws {
        let store = try make(impl)
        try await store.trackTags(
            [
                TrackedTagRecord(registry: "r.example", repository: "team/app", tag: "1.0", component: "shop", componentVersion: "1", addedAt: t0),
                TrackedTagRecord(registry: "r.example", repository: "team/app", tag: "latest", addedAt: t0),
            ], audit: [audit("tag.track")])
        try await store.trackTags(
            [TrackedTagRecord(registry: "r.example", repository: "team/app", tag: "1.0", component: "shop", componentVersion: "2", addedAt: t0 + 1)],
            audit: [])
        let tags = try await store.trackedTags()
        #expect(tags.map(\.reference) == ["r.example/team/app:1.0", "r.example/team/app:latest"] && tags[0].componentVersion == "2")
        #expect(try await store.untrackTag(registry: "r.example", repository: "team/app", tag: "latest", audit: [audit("tag.untrack")]))
        #expect(try await !store.untrackTag(registry: "r.example", repository: "team/app", tag: "latest", audit: [audit("tag.untrack")]))
        #expect(try await store.trackedTags().count == 1)
        try await store.saveIssues(
            [IssueRecord(id: "b", state: "open", data: "{}", updatedAt: t0), IssueRecord(id: "a", state: "open", data: "{}", updatedAt: t0)],
            audit: [audit("issues.export")])
        try await store.saveIssues([IssueRecord(id: "b", state: "closed:noOpenFindings", data: "{\"x\":1}", updatedAt: t0 + 5)], audit: [])
        let issues = try await store.exportedIssues()
        #expect(issues.map(\.id) == ["a", "b"] && issues[1].state == "closed:noOpenFindings" && issues[1].updatedAt == t0 + 5)
        #expect(try await store.auditCount() == 3)
    }
}
