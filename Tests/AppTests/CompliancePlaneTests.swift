import CEL
import Findings
import Foundation
import Storage
import Testing
import WardenApp

/// The compliance engine's jobs over a real SQLite state file with an injected clock: scans folded into findings,
/// effective categories and due dates, rescorings with scope, expiry and revocation, summaries, snapshots, SLA
/// reports — and who may do what, audited.
@Suite struct CompliancePlaneTests {
    static let app = ArtefactName(registry: "r.example", repository: "team/app")
    static func version(_ n: Int) -> ArtefactID {
        ArtefactID(registry: app.registry, repository: app.repository, digest: "sha256:" + String(repeating: String(n), count: 64))
    }
    static let day: TimeInterval = 86_400

    func fixture() async throws -> (ControlFixture, CompliancePlane) {
        let f = try ControlFixture()
        return (f, CompliancePlane(control: f.plane))
    }
    let ana = ControlFixture.caller("ana")

    func scan(_ artefact: ArtefactID, at: Date, _ entries: [(String, String, Double)]) -> Scan {
        Scan(
            artefact: artefact, datasource: "vuln", scannedAt: at,
            entries: entries.map { Scan.Entry(.vulnerability(package: $0.0, id: $0.1), score: $0.2, summary: "\($0.0) \($0.1)") })
    }

    @Test func aVersionBumpKeepsDiscoveryDatesAndAbsentFindingsClose() async throws {
        let (f, plane) = try await fixture()
        defer { f.remove() }
        let t0 = f.clock.now
        let first = try await plane.recordScan(
            scan(Self.version(1), at: t0, [("openssl", "CVE-1", 9.8), ("zlib", "CVE-2", 5.0), ("bash", "CVE-3", 0)]), caller: ana)
        #expect(first == .init(artefact: Self.version(1).description, datasource: "vuln", reported: 3, new: 3, closed: 0))
        f.clock.advance(10 * Self.day)
        // Version 2 still has CVE-1 (its clock keeps running from t0) and a new CVE-4; CVE-2 and CVE-3 are gone.
        let second = try await plane.recordScan(
            scan(Self.version(2), at: f.clock.now, [("openssl", "CVE-1", 9.8), ("curl", "CVE-4", 7.5)]), caller: ana)
        #expect(second.new == 2 && second.closed == 0)
        // Version 1 scanned again without CVE-2: it closes there.
        let third = try await plane.recordScan(
            scan(Self.version(1), at: f.clock.now, [("openssl", "CVE-1", 9.8), ("bash", "CVE-3", 0)]), caller: ana)
        #expect(third == .init(artefact: Self.version(1).description, datasource: "vuln", reported: 2, new: 0, closed: 1))

        let v2 = try await plane.findings(.init(digest: Self.version(2).digest), caller: ana).items
        // Key order: curl before openssl.
        #expect(v2.map(\.id) == ["CVE-4", "CVE-1"])
        #expect(v2[1].discoveredAt == t0 && v2[1].category == "CRITICAL" && v2[1].dueDate == t0 + 30 * Self.day && !v2[1].overdue)
        #expect(v2[0].discoveredAt == t0 + 10 * Self.day && v2[0].category == "HIGH")
        let v1 = try await plane.findings(.init(digest: Self.version(1).digest, openOnly: false), caller: ana).items
        #expect(v1.map(\.id) == ["CVE-3", "CVE-1", "CVE-2"])
        let closed = try #require(v1.first { $0.id == "CVE-2" })
        #expect(closed.resolvedAt == t0 + 10 * Self.day && closed.category == "MEDIUM" && !closed.overdue)
        #expect(v1.first { $0.id == "CVE-3" }?.category == "NONE" && v1.first { $0.id == "CVE-3" }?.dueDate == nil)
        // 31 days in, CVE-1 is overdue on both versions.
        f.clock.advance(21 * Self.day)
        let overdue = try await plane.findings(.init(repository: Self.app.repository, overdue: true), caller: ana)
        #expect(overdue.items.map(\.artefact) == [Self.version(1).description, Self.version(2).description] && overdue.next == nil)
        #expect(try await plane.summary(.artefact(Self.version(2)), caller: ana).summary == "CRITICAL")
        #expect(try await plane.summary(.artefact(Self.version(9)), caller: ana).summary == "UNKNOWN")
    }

    @Test func pagesFollowTheCursorAndEffectiveFiltersSkipWithinThem() async throws {
        let (f, plane) = try await fixture()
        defer { f.remove() }
        let entries = (0..<45).map { ("pkg\($0 % 5)", String(format: "CVE-%03d", $0), $0 % 3 == 0 ? 9.5 : 4.5) }
        _ = try await plane.recordScan(scan(Self.version(1), at: f.clock.now, entries), caller: ana)
        for (filter, total) in [
            (CompliancePlane.FindingFilter(limit: 10), 45), (.init(category: "CRITICAL", limit: 4), 15), (.init(category: "MEDIUM", limit: 7), 30),
        ] {
            var seen: [String] = []
            var filter = filter
            var pages = 0
            repeat {
                let page = try await plane.findings(filter, caller: ana)
                #expect(page.items.count <= filter.limit)
                seen += page.items.map(\.key)
                filter.cursor = page.next
                pages += 1
            } while filter.cursor != nil && pages < 100
            #expect(seen.count == total && Set(seen).count == total && seen == seen.sorted())
        }
        await #expect(throws: ControlError(.invalid, "")) { try await plane.findings(.init(cursor: "not-a-cursor!"), caller: ana) }
        await #expect(throws: ControlError(.invalid, "")) { try await plane.findings(.init(limit: 0), caller: ana) }
    }

    @Test func rescoringsApplyByScopeExpireAndAreAuditedOnce() async throws {
        let (f, plane) = try await fixture()
        defer { f.remove() }
        let t0 = f.clock.now
        _ = try await plane.recordScan(scan(Self.version(1), at: t0, [("openssl", "CVE-1", 9.8)]), caller: ana)
        _ = try await plane.recordScan(scan(Self.version(2), at: t0, [("openssl", "CVE-1", 9.8)]), caller: ana)
        let key = DataKey.vulnerability(package: "openssl", id: "CVE-1")
        // Not applicable for every version of the artefact, for 20 days, with a fresh clock after.
        let broad = try await plane.rescore(
            .init(
                dataKey: key, scope: .artefact(Self.app), category: "NONE", comment: "the vulnerable code is not built",
                expiresAt: t0 + 20 * Self.day,
                freshClock: true), caller: ana)
        #expect(broad.user == "ana" && broad.scope == "artefact" && broad.scopeValue == "r.example/team/app")
        f.clock.advance(1)
        // Version 2 alone: LOW, due in 5 days (narrower wins).
        let narrow = try await plane.rescore(
            .init(dataKey: key, scope: .single(Self.version(2)), category: "LOW", comment: "mitigated by the proxy", processingTime: .days(5)),
            caller: ana)
        var items = try await plane.findings(.init(), caller: ana).items
        #expect(items.map(\.category) == ["NONE", "LOW"] && items.map(\.rescoring) == [broad.id, narrow.id])
        #expect(items[0].dueDate == nil && items[1].dueDate == t0 + 5 * Self.day)
        #expect(try await plane.summary(.artefact(Self.version(1)), caller: ana).summary == "CLEAN")
        // The rescoring expires: version 1 is CRITICAL again, its SLA clock restarted at the expiry.
        f.clock.advance(25 * Self.day)
        items = try await plane.findings(.init(), caller: ana).items
        #expect(items[0].category == "CRITICAL" && items[0].dueDate == t0 + 50 * Self.day && items[0].rescoring == nil)
        #expect(try await plane.auditExpiries() == [broad.id])
        #expect(try await plane.auditExpiries().isEmpty)
        let expiries = try await f.store.auditEntries(AuditQuery(action: "rescoring.expire"))
        #expect(expiries.count == 1 && expiries[0].actor == "system:compliance" && expiries[0].subject == "rescoring/\(broad.id)")
        // Revoking the narrow one: version 2 falls back to its own category; both stay in its history.
        _ = try await plane.revoke(narrow.id, caller: ana)
        let detail = try await plane.finding(key: items[1].key, caller: ana)
        #expect(detail.finding.category == "CRITICAL" && detail.rescorings.map(\.id) == [broad.id, narrow.id])
        #expect(try await plane.rescorings(of: key, caller: ana).count == 2)
        #expect(try await f.store.auditEntries(AuditQuery(action: "rescoring.create")).count == 2)
        #expect(try await f.store.auditEntries(AuditQuery(action: "rescoring.revoke")).count == 1)
        // Bad requests: an unknown category, no comment, a revoked rescoring that does not exist.
        await #expect(throws: ControlError(.invalid, "")) {
            try await plane.rescore(.init(dataKey: key, scope: .global, category: "BLOCKER", comment: "x"), caller: ana)
        }
        await #expect(throws: ControlError(.invalid, "")) {
            try await plane.rescore(.init(dataKey: key, scope: .global, category: "NONE", comment: " "), caller: ana)
        }
        await #expect(throws: ControlError(.notFound, "")) { try await plane.revoke("rsc-missing", caller: ana) }
    }

    @Test func malformedArtefactsAreRefusedAndLoseNothing() async throws {
        let (f, plane) = try await fixture()
        defer { f.remove() }
        _ = try await plane.recordScan(scan(Self.version(1), at: f.clock.now, [("openssl", "CVE-1", 9.8)]), caller: ana)
        for digest in ["sha256:XYZ", "sha512:" + String(repeating: "a", count: 64), "sha256:" + String(repeating: "A", count: 64)] {
            await #expect(throws: ControlError(.invalid, "")) {
                try await plane.recordScan(
                    scan(ArtefactID(registry: "r.example", repository: "team/app", digest: digest), at: f.clock.now, []), caller: ana)
            }
        }
        #expect(throws: ControlError(.invalid, "")) { try CompliancePlane.Subject(parsing: "app@sha256:" + String(repeating: "1", count: 64)) }
        #expect(try await plane.findings(.init(), caller: ana).items.count == 1)
        #expect(try await f.store.auditEntries(AuditQuery(action: "findings.scan")).count == 1)
    }

    @Test func snapshotsMakeAHistoryAndTheSLAReportUsesTheRescoringsOfItsDate() async throws {
        let (f, plane) = try await fixture()
        defer { f.remove() }
        let t0 = f.clock.now
        _ = try await plane.track(
            [
                ArtefactSighting(
                    ref: ArtefactRef(registry: "r.example", repository: "team/app", digest: Self.version(1).digest), component: "shop",
                    componentVersion: "1.0")
            ], caller: ana)
        _ = try await plane.recordScan(scan(Self.version(1), at: t0, [("openssl", "CVE-1", 9.8), ("zlib", "CVE-2", 7.0)]), caller: ana)
        #expect(try await plane.takeSnapshots() == 2)
        f.clock.advance(Self.day)
        _ = try await plane.recordScan(scan(Self.version(1), at: f.clock.now, [("openssl", "CVE-1", 9.8)]), caller: ana)
        let r = try await plane.rescore(
            .init(
                dataKey: .vulnerability(package: "openssl", id: "CVE-1"), scope: .component("shop"), category: "NONE",
                comment: "accepted until the fix",
                expiresAt: t0 + 40 * Self.day), caller: ana)
        #expect(try await plane.takeSnapshots() == 2)
        #expect(try await plane.takeSnapshots() == 2)
        let history = try await plane.history(.component("shop"), from: nil, to: nil, caller: ana)
        #expect(history.count == 2)
        #expect(history[0].summary == "CRITICAL" && history[0].open == 2 && history[0].openByCategory == ["CRITICAL": 1, "HIGH": 1])
        #expect(history[1].summary == "CLEAN" && history[1].open == 1 && history[1].resolved == 1)
        await #expect(throws: ControlError(.invalid, "")) { try await plane.history(.component("shop"), from: "yesterday", to: nil, caller: ana) }
        // At day 35 the component rescoring is in force (CVE-1 not overdue); at day 45 it has expired and CVE-1 is.
        let during = try await plane.slaReport(.component("shop"), releaseDate: t0 + 35 * Self.day, caller: ana)
        #expect(during.overdue.isEmpty && during.rescoringsApplied.map(\.id) == [r.id])
        let after = try await plane.slaReport(.component("shop"), releaseDate: t0 + 45 * Self.day, caller: ana)
        #expect(after.overdue.map(\.id) == ["CVE-1"] && after.rescoringsApplied.isEmpty)
        #expect(try CompliancePlane.Subject(parsing: "shop") == .component("shop"))
        #expect(try CompliancePlane.Subject(parsing: Self.version(1).description) == .artefact(Self.version(1)))
    }
}
