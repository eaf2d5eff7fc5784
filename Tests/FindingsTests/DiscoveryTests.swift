import Foundation
import Testing

@testable import Findings

@Suite struct DiscoveryTests {
    static let key = FindingKey(artefact: artefact("team/app", 2), datasource: "osv", dataKey: vulnerability())

    /// The rule's table: which earlier findings pass their discovery date on to a finding first seen at `now`.
    @Test(arguments: [
        // (earlier findings, maximum reuse in days, now, expected discovery)
        ([Finding](), nil as Int?, day(12), day(12)),
        ([finding(on: artefact("team/app", 1), discovered: day(0), lastSeen: day(10))], nil, day(12), day(0)),
        ([finding(on: artefact("team/app", 1), discovered: day(0), lastSeen: day(10))], 30, day(12), day(0)),
        ([finding(on: artefact("team/app", 1), discovered: day(0), lastSeen: day(10), resolved: day(10))], 30, day(50), day(50)),
        ([finding(on: artefact("team/app", 1), discovered: day(0), lastSeen: day(10), resolved: day(10))], nil, day(50), day(0)),
        ([finding(on: artefact("team/other", 1), discovered: day(0), lastSeen: day(10))], nil, day(12), day(12)),
        ([finding(on: artefact("team/app", 1), datasource: "trivy", discovered: day(0))], nil, day(12), day(12)),
        ([finding(vulnerability("CVE-2026-0002"), on: artefact("team/app", 1), discovered: day(0))], nil, day(12), day(12)),
        (
            [
                finding(on: artefact("team/app", 1), discovered: day(0), lastSeen: day(5), resolved: day(5)),
                finding(on: artefact("team/app", 3), discovered: day(3), lastSeen: day(20)),
            ], 10, day(30), day(3)
        ),
        ([finding(on: artefact("team/app", 1), discovered: day(20))], nil, day(12), day(12)),
    ])
    func discoveryDate(earlier: [Finding], maximumReuseDays: Int?, now: Date, expected: Date) {
        let rule = DiscoveryDates(maximumReuse: maximumReuseDays.map { .days($0) })
        #expect(rule.discoveryDate(for: Self.key, at: now, earlier: earlier) == expected)
    }

    @Test func versionBumpKeepsTheDiscoveryDate() throws {
        let v1 = finding(on: artefact("team/app", 1), discovered: day(0), lastSeen: day(19))
        let scan = Scan(artefact: artefact("team/app", 2), datasource: "osv", scannedAt: day(20), entries: [.init(vulnerability(), score: 9.1)])
        let result = FindingsMerge().merge(existing: [v1], scan: scan)
        #expect(result.closed.isEmpty)
        let f = try #require(result.upserts.first)
        #expect(result.upserts.count == 1)
        #expect(f.key.artefact == artefact("team/app", 2) && f.discoveredAt == day(0) && f.lastSeenAt == day(20) && f.score == 9.1 && f.isOpen)
    }

    @Test func beyondTheMaximumReuseTimeTheDateResets() {
        let v1 = finding(on: artefact("team/app", 1), discovered: day(0), lastSeen: day(10), resolved: day(10))
        let scan = Scan(artefact: artefact("team/app", 2), datasource: "osv", scannedAt: day(100), entries: [.init(vulnerability())])
        let merge = FindingsMerge(discovery: DiscoveryDates(maximumReuse: .days(30)))
        #expect(merge.merge(existing: [v1], scan: scan).upserts.map(\.discoveredAt) == [day(100)])
    }

    @Test func anUpdateNeverChangesTheDiscoveryDate() throws {
        let older = finding(on: artefact("team/app", 1), discovered: day(0), lastSeen: day(30))
        let current = finding(on: artefact("team/app", 2), score: 5.0, discovered: day(3), lastSeen: day(9))
        let scan = Scan(
            artefact: artefact("team/app", 2), datasource: "osv", scannedAt: day(10), entries: [.init(vulnerability(), score: 9.8, summary: "worse")])
        let f = try #require(FindingsMerge().merge(existing: [older, current], scan: scan).upserts.first)
        #expect(f.discoveredAt == day(3) && f.score == 9.8 && f.summary == "worse" && f.lastSeenAt == day(10))
    }

    @Test func aCompleteScanClosesWhatItNoLongerReports() throws {
        let a = finding(vulnerability("CVE-A"), discovered: day(0))
        let b = finding(vulnerability("CVE-B"), discovered: day(1))
        let malware = finding(.malware(file: "sha256:ee", signature: "Eicar"), datasource: "clamav", score: nil, discovered: day(1))
        let otherVersion = finding(vulnerability("CVE-B"), on: artefact("team/app", 2), discovered: day(1))
        let alreadyClosed = finding(vulnerability("CVE-C"), discovered: day(0), resolved: day(2))
        let scan = Scan(artefact: artefact(), datasource: "osv", scannedAt: day(9), entries: [.init(vulnerability("CVE-A"), score: 7.5)])
        let result = FindingsMerge().merge(existing: [a, b, malware, otherVersion, alreadyClosed], scan: scan)
        #expect(result.upserts.map(\.key.dataKey.id) == ["CVE-A"])
        #expect(result.closed.count == 1)
        let closed = try #require(result.closed.first)
        #expect(closed.key == b.key && closed.resolvedAt == day(9) && closed.discoveredAt == day(1) && !closed.isOpen)
    }

    @Test func anOlderScanDeliveredLateChangesNothing() {
        let a = finding(vulnerability("CVE-A"), score: 5.0, discovered: day(0), lastSeen: day(10))
        let b = finding(vulnerability("CVE-B"), discovered: day(0), lastSeen: day(10))
        let scan = Scan(artefact: artefact(), datasource: "osv", scannedAt: day(8), entries: [.init(vulnerability("CVE-A"), score: 9.0)])
        let result = FindingsMerge().merge(existing: [a, b], scan: scan)
        #expect(result.upserts.isEmpty && result.closed.isEmpty)
    }

    @Test(arguments: [(nil as Int?, day(0)), (10, day(0)), (1, day(7))])
    func aResolvedFindingThatReturnsIsReopened(maximumReuseDays: Int?, expected: Date) {
        let gone = finding(discovered: day(0), lastSeen: day(5), resolved: day(5))
        let scan = Scan(artefact: artefact(), datasource: "osv", scannedAt: day(7), entries: [.init(vulnerability(), score: 7.5)])
        let merge = FindingsMerge(discovery: DiscoveryDates(maximumReuse: maximumReuseDays.map { .days($0) }))
        let result = merge.merge(existing: [gone], scan: scan)
        #expect(result.upserts.count == 1 && result.upserts[0].resolvedAt == nil && result.upserts[0].discoveredAt == expected)
    }

    @Test func aFindingReportedTwiceInOneScanIsOneFinding() {
        let scan = Scan(
            artefact: artefact(), datasource: "osv", scannedAt: day(1), entries: [.init(vulnerability(), score: 1), .init(vulnerability(), score: 2)])
        let upserts = FindingsMerge().merge(existing: [], scan: scan).upserts
        #expect(upserts.count == 1 && upserts[0].score == 1 && upserts[0].discoveredAt == day(1))
    }
}
