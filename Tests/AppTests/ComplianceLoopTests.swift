import Findings
import Foundation
import Storage
import Synchronization
import Testing
import Triggers
import WardenApp

/// The scanning loop's rules over a real SQLite state file with an injected clock: the enumerator following tags,
/// the backlog's priorities and claims, workers that die, the grace period, issue export and its close reasons.
/// (A real registry and real scanners: Tests/ServerTests/ComplianceLoopLiveTests.swift.)
@Suite struct ComplianceLoopTests {
    /// Tags → digests, changed by the test; a missing tag is an error.
    final class Tags: TriggerLookup, @unchecked Sendable {
        let digests = Mutex<[String: String]>([:])
        func set(_ tag: String, _ digest: String) { digests.withLock { $0[tag] = digest } }
        func tags(registry: String, repository: String) async throws -> [String] { [] }
        func resolve(registry: String, repository: String, tag: String) async throws -> (digest: String, mediaType: String) {
            guard let d = digests.withLock({ $0["\(registry)/\(repository):\(tag)"] }) else { throw ControlError(.notFound, "no tag \(tag)") }
            return (d, "application/vnd.oci.image.manifest.v1+json")
        }
        func get(url: String, headers: [(String, String)], limit: Int) async throws -> HTTPFetched { HTTPFetched(status: 404, headers: [], body: []) }
    }

    /// Reports `entries` for every artefact (or fails when `fail`), counting its scans.
    final class FakeScanner: ArtefactScanner, @unchecked Sendable {
        let datasource: String
        let entries: Mutex<[Scan.Entry]>
        let count = Mutex(0)
        let fail = Mutex(false)
        init(_ datasource: String, _ entries: [Scan.Entry]) {
            self.datasource = datasource
            self.entries = Mutex(entries)
        }
        func scan(_ artefact: ArtefactID, at: Date) async throws -> ScannerResult {
            count.withLock { $0 += 1 }
            if fail.withLock({ $0 }) { throw ControlError(.invalid, "scanner broke") }
            return ScannerResult(scan: Scan(artefact: artefact, datasource: datasource, scannedAt: at, entries: entries.withLock { $0 }))
        }
    }

    static func digest(_ n: Int) -> String { "sha256:" + String(repeating: String(n), count: 64) }
    let ana = ControlFixture.caller("ana")

    @Test func theEnumeratorFollowsTagsQueuesDueScansAndForgetsAfterTheGracePeriod() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        let plane = CompliancePlane(control: f.plane)
        let tags = Tags()
        tags.set("r.example/team/app:1.0", Self.digest(1))
        let vuln = FakeScanner("vuln", [Scan.Entry(.vulnerability(package: "openssl", id: "CVE-1"), score: 9.8)])
        let license = FakeScanner("license", [Scan.Entry(.license(package: "openssl", id: "Apache-2.0"))])
        let scanners: [String: any ArtefactScanner] = ["vuln": vuln, "license": license]
        let declared = try await plane.declare(
            component: """
                apiVersion: warden.dev/v1
                kind: Component
                metadata: {name: shop}
                spec:
                  version: "1"
                  artefacts: [r.example/team/app:1.0, r.example/team/db@\(Self.digest(7))]
                """, file: "shop.yaml", caller: ana)
        #expect(declared.tags.map(\.reference) == ["r.example/team/app:1.0"] && declared.artefacts.count == 1)

        // First round: the tag's digest is a new version; both artefacts are due for both scanners, at HIGH.
        var round = try await plane.enumerate(lookup: tags, scanners: ["vuln", "license"], interval: 3600, grace: 86_400)
        #expect(round.newVersions == ["r.example/team/app@\(Self.digest(1))"] && round.queued == 4 && round.errors.isEmpty)
        #expect(try await plane.backlog(limit: 10).map(\.priority) == [4, 4, 4, 4])
        // A second round before any scan queues the same four items again, which changes nothing.
        round = try await plane.enumerate(lookup: tags, scanners: ["vuln", "license"], interval: 3600, grace: 86_400)
        #expect(round.newVersions.isEmpty)
        #expect(try await plane.backlog(limit: 10).count == 4)

        // Two workers drain the backlog.
        var done: [CompliancePlane.WorkOutcome] = []
        while let w = try await plane.work(worker: done.count % 2 == 0 ? "w1" : "w2", scanners: scanners) { done.append(w) }
        #expect(done.count == 4 && done.allSatisfy { $0.error == nil } && vuln.count.withLock { $0 } == 2)
        #expect(try await plane.backlog(limit: 10).isEmpty)
        // Fresh scans are not queued again; after the interval they are, at the priority of their findings.
        #expect(try await plane.enumerate(lookup: tags, scanners: ["vuln", "license"], interval: 3600, grace: 86_400).queued == 0)
        f.clock.advance(3601)
        #expect(try await plane.enumerate(lookup: tags, scanners: ["vuln", "license"], interval: 3600, grace: 86_400).queued == 4)
        #expect(try await plane.backlog(limit: 10).map(\.priority).sorted() == [8, 8, 8, 8])
        while try await plane.work(worker: "w1", scanners: scanners) != nil {}

        // The tag moves: the new digest is a new version with the old one's discovery date; the old one is no longer
        // tracked, and is deleted with its findings a grace period later. An unresolvable tag is reported, not fatal.
        let firstDiscovery = try await plane.findings(.init(digest: Self.digest(1), type: "vulnerability"), caller: ana).items[0].discoveredAt
        f.clock.advance(60)
        tags.set("r.example/team/app:1.0", Self.digest(2))
        _ = try await plane.trackTags(["r.example/team/app:gone"], component: nil, componentVersion: nil, caller: ana)
        round = try await plane.enumerate(lookup: tags, scanners: ["vuln"], interval: 3600, grace: 86_400)
        #expect(round.newVersions == ["r.example/team/app@\(Self.digest(2))"] && round.untracked == ["r.example/team/app@\(Self.digest(1))"])
        #expect(round.errors.count == 1 && round.errors[0].contains("gone"))
        while try await plane.work(worker: "w1", scanners: scanners) != nil {}
        let moved = try await plane.findings(.init(digest: Self.digest(2), type: "vulnerability"), caller: ana).items
        #expect(moved.count == 1 && moved[0].discoveredAt == firstDiscovery && moved[0].component == "shop:1")
        f.clock.advance(86_401)
        round = try await plane.enumerate(lookup: tags, scanners: ["vuln"], interval: 3600 * 100, grace: 86_400)
        #expect(round.deleted == 1)
        #expect(try await plane.findings(.init(digest: Self.digest(1)), caller: ana).items.isEmpty)
        #expect(try await f.store.auditEntries(AuditQuery(action: "artefact.untrack")).count == 1)
    }

    @Test func aFailedScanSaysWhyAndADeadWorkersClaimIsTakenOverAfterItsLease() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        let plane = CompliancePlane(control: f.plane)
        let ref = ArtefactRef(registry: "r.example", repository: "team/app", digest: Self.digest(1))
        _ = try await plane.track([ArtefactSighting(ref: ref)], caller: ana)
        let tags = Tags()
        let vuln = FakeScanner("vuln", [Scan.Entry(.vulnerability(package: "openssl", id: "CVE-1"), score: 5)])
        _ = try await plane.enumerate(lookup: tags, scanners: ["vuln"])
        // A worker claims the item and dies (it never completes); until its lease runs out nobody else gets it.
        #expect(try await f.store.claim(worker: "dead", scanners: ["vuln"], now: f.clock.now, lease: 1800) != nil)
        #expect(try await plane.work(worker: "alive", scanners: ["vuln": vuln], lease: 1800) == nil)
        f.clock.advance(1801)
        vuln.fail.withLock { $0 = true }
        let failed = try #require(try await plane.work(worker: "alive", scanners: ["vuln": vuln], lease: 1800))
        #expect(failed.error?.contains("scanner broke") == true && failed.scan == nil)
        // The failed item is done; the next round queues the never-scanned version again, and it succeeds.
        _ = try await plane.enumerate(lookup: tags, scanners: ["vuln"])
        vuln.fail.withLock { $0 = false }
        let ok = try #require(try await plane.work(worker: "alive", scanners: ["vuln": vuln], lease: 1800))
        #expect(ok.error == nil && ok.scan?.new == 1)
    }

    @Test func issuesAreExportedWithStableIdsAndCloseWithAReason() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        let plane = CompliancePlane(control: f.plane)
        let dir = f.dir + "/issues"
        let v1 = ArtefactID(registry: "r.example", repository: "team/app", digest: Self.digest(1))
        let db = ArtefactID(registry: "r.example", repository: "team/db", digest: Self.digest(2))
        _ = try await plane.track(
            [ArtefactSighting(ref: ArtefactRef(registry: v1.registry, repository: v1.repository, digest: v1.digest), component: "shop")], caller: ana)
        _ = try await plane.track(
            [ArtefactSighting(ref: ArtefactRef(registry: db.registry, repository: db.repository, digest: db.digest))], caller: ana)
        for (a, id) in [(v1, "CVE-1"), (db, "CVE-2")] {
            _ = try await plane.recordScan(
                Scan(
                    artefact: a, datasource: "vuln", scannedAt: f.clock.now,
                    entries: [Scan.Entry(.vulnerability(package: "openssl", id: id), score: 9.8)]),
                caller: ana)
        }
        let first = try await plane.exportIssues(delivery: .directory(dir), caller: ana)
        #expect(first.open.count == 2 && first.closed.isEmpty)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files == first.open.flatMap { ["\($0.id).json", "\($0.id).md"] }.sorted(), "\(files)")
        // The same findings export to the same ids.
        #expect(try await plane.exportIssues(delivery: .directory(dir), caller: ana).open.map(\.id) == first.open.map(\.id))
        // shop's finding rescored NONE (never due): its issue closes for having no open findings; db untracked: its
        // issue closes for that.
        let shop = try #require(first.open.first { $0.title.contains("component shop") })
        _ = try await plane.rescore(
            .init(dataKey: .vulnerability(package: "openssl", id: "CVE-1"), scope: .component("shop"), category: "NONE", comment: "accepted"),
            caller: ana)
        try await f.store.markInactive([ArtefactRef(registry: db.registry, repository: db.repository, digest: db.digest)], at: f.clock.now, audit: [])
        let second = try await plane.exportIssues(delivery: .directory(dir), caller: ana)
        #expect(second.open.isEmpty)
        #expect(Set(second.closed.map(\.state)) == ["closed:no-open-findings", "closed:not-tracked"], "\(second.closed)")
        #expect(second.closed.first { $0.id == shop.id }?.state == "closed:no-open-findings")
        let json = try String(contentsOfFile: dir + "/\(shop.id).json", encoding: .utf8)
        #expect(json.contains("closed"), "\(json)")
        // Closed issues are not closed again.
        #expect(try await plane.exportIssues(delivery: .directory(dir), caller: ana).closed.isEmpty)
        #expect(try await f.store.auditEntries(AuditQuery(action: "issues.export")).count == 4)
    }
}

/// Tags pushed to registries the triggers' receivers hear from join the tracked set.
@Suite struct PushFollowingTests {
    let ana = ControlFixture.caller("ana")
    static let lease = "compliance-enumerator"

    /// Records a registry event as a receiver does, one second after the previous one.
    func push(
        _ f: ControlFixture, _ receiver: String, _ repository: String, tag: String?, digest: String? = ComplianceLoopTests.digest(1),
        mediaType: String? = "application/vnd.oci.image.manifest.v1+json", kind: TriggerEvent.Kind = .registryPush
    ) async throws {
        let e = TriggerEvent.registry(
            kind: kind, subject: .init(registry: "r.example", repository: repository, tag: tag, digest: digest, mediaType: mediaType),
            source: .init(receiver: receiver, format: "distribution", vendor: "push"))
        let record = EventRecord(
            id: e.id, receiver: receiver, kind: kind.rawValue, subject: e.subject.reference,
            event: String(decoding: try JSONEncoder().encode(e), as: UTF8.self), receivedAt: f.clock.now)
        _ = try await f.store.record(event: record, targets: [], now: f.clock.now, audit: [])
        f.clock.advance(1)
    }

    @Test func pushedTagsAreFollowedOnceFromWhereTheLastRoundStopped() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        let plane = CompliancePlane(control: f.plane)
        _ = try await plane.trackTags(["r.example/team/app:1.0"], component: "shop", componentVersion: nil, caller: ana)
        try await push(f, "hub", "team/app", tag: "1.0")  // tracked already: keeps its component
        try await push(f, "hub", "team/api", tag: "2.0")  // followed
        try await push(f, "hub", "team/api", tag: "sha256-" + String(repeating: "a", count: 64) + ".sig")  // a signature
        try await push(f, "hub", "team/api", tag: nil)  // by digest alone: a referrer, most likely
        try await push(f, "hub", "team/blob", tag: "x", mediaType: "application/octet-stream")  // a blob
        try await push(f, "hub", "team/web", tag: "1", kind: .registryDelete)  // not a push
        try await push(f, "other", "team/other", tag: "1")  // another receiver's
        let epoch = try #require(try await f.store.acquireLease(name: Self.lease, holder: "s1", ttl: 600, now: f.clock.now))
        let first = try await plane.followPushes(receivers: ["hub"], lease: Self.lease, holder: "s1", epoch: epoch)
        #expect(first.read == 7 && first.followed == ["r.example/team/api:2.0"] && first.kept, "\(first)")
        let tracked = try await plane.trackedTags()
        #expect(tracked.map(\.reference) == ["r.example/team/api:2.0", "r.example/team/app:1.0"])
        #expect(tracked.first { $0.reference == "r.example/team/app:1.0" }?.component == "shop")
        let audit = try await f.store.auditEntries(AuditQuery(action: "tag.track"))
        #expect(audit.contains { $0.actor == "system:compliance" && $0.subject == "tag/r.example/team/api:2.0" })

        // The next round reads only what came after; every receiver's pushes without a list.
        #expect(try await plane.followPushes(receivers: ["hub"], lease: Self.lease, holder: "s1", epoch: epoch).read == 0)
        try await push(f, "hub", "team/web", tag: "3")
        let third = try await plane.followPushes(receivers: nil, lease: Self.lease, holder: "s1", epoch: epoch)
        #expect(third.read == 1 && third.followed == ["r.example/team/web:3"], "\(third)")

        // A server that lost the lease does not move the position: the next holder reads the push again.
        try await push(f, "other", "team/late", tag: "1")
        let fenced = try await plane.followPushes(receivers: nil, lease: Self.lease, holder: "s2", epoch: epoch)
        #expect(!fenced.kept && fenced.followed == ["r.example/team/late:1"])
        let again = try await plane.followPushes(receivers: nil, lease: Self.lease, holder: "s1", epoch: epoch)
        #expect(again.read == 1 && again.followed.isEmpty && again.kept, "\(again)")

        // The enumerator resolves the followed tags like any tracked tag.
        let tags = ComplianceLoopTests.Tags()
        for t in ["r.example/team/app:1.0", "r.example/team/api:2.0", "r.example/team/web:3", "r.example/team/late:1"] {
            tags.set(t, ComplianceLoopTests.digest(2))
        }
        let round = try await plane.enumerate(lookup: tags, scanners: ["vuln"])
        #expect(round.newVersions.count == 4 && round.errors.isEmpty, "\(round)")
    }
}
