import Foundation
import Testing

@testable import Findings

@Suite struct ComplianceTests {
    @Test func snapshotCounts() {
        let findings = [
            finding(vulnerability("CRITICAL-overdue"), score: 9.1, discovered: day(0)),  // due day 30
            finding(vulnerability("HIGH-due-in-5"), score: 7.2, discovered: day(15)),  // due day 45
            finding(vulnerability("MEDIUM-due-later"), score: 5.0, discovered: day(0)),  // due day 90
            finding(vulnerability("MEDIUM-due-in-20"), score: 5.0, discovered: day(-30)),  // due day 60
            finding(vulnerability("LOW-overdue"), score: 1.0, discovered: day(-100)),  // due day 20
            finding(vulnerability("NONE"), score: 0, discovered: day(0)),
            finding(vulnerability("no-score"), score: nil, discovered: day(0)),
            finding(vulnerability("rescored"), score: 9.8, discovered: day(0)),
            finding(vulnerability("resolved-in-period"), score: 7.2, discovered: day(0), resolved: day(35)),
            finding(vulnerability("resolved-before"), score: 7.2, discovered: day(0), resolved: day(20)),
            finding(vulnerability("not-yet-discovered"), score: 9.9, discovered: day(50)),
        ]
        let evaluator = SLAEvaluator(rescorings: RescoringIndex([rescoring("r", .single(artefact()), dataKey: vulnerability("rescored"))]))
        let s = ComplianceSnapshot(findings: findings, evaluator: evaluator, component: nil, from: day(30), at: day(40))
        #expect(s.openByCategory == ["CRITICAL": 1, "HIGH": 1, "MEDIUM": 2, "LOW": 1, "NONE": 2])
        #expect(s.uncategorised == 1 && s.open == 8)
        #expect(s.overdue == 2 && s.dueWithin7Days == 1 && s.dueWithin30Days == 2)
        #expect(s.resolved == 1)
        #expect(
            s.worst?.description == "CRITICAL" && s.summary(scanned: true) == .worst(SLAPolicy.default.category(id: "CRITICAL", type: .vulnerability))
        )
        #expect(s.summary(scanned: false) == .unknown)
    }

    @Test(arguments: [
        ([Double?](), true, "CLEAN"), ([Double?](), false, "UNKNOWN"), ([0.0, 0.0], true, "CLEAN"), ([nil], true, "UNCATEGORISED"),
        ([nil, 0.2], true, "LOW"), ([2.0, 7.5, nil, 5.5], true, "HIGH"), ([7.5], false, "UNKNOWN"),
    ])
    func summary(scores: [Double?], scanned: Bool, expected: String) {
        let findings = scores.enumerated().map { finding(vulnerability("CVE-\($0.offset)"), score: $0.element) }
        let s = ComplianceSnapshot(findings: findings, evaluator: SLAEvaluator(), component: nil, from: day(0), at: day(1))
        #expect(s.summary(scanned: scanned).description == expected)
    }

    @Test func componentRescoringsCountForTheComponentOnly() {
        let shop = ComponentRef(name: "shop", version: "2")
        let evaluator = SLAEvaluator(rescorings: RescoringIndex([rescoring("r", .component("shop"))]))
        let findings = [finding(score: 9.0)]
        #expect(
            ComplianceSnapshot(findings: findings, evaluator: evaluator, component: shop, from: day(0), at: day(1)).summary(scanned: true) == .clean)
        #expect(
            ComplianceSnapshot(findings: findings, evaluator: evaluator, component: nil, from: day(0), at: day(1)).summary(scanned: true).description
                == "CRITICAL")
    }

    /// At a release date, the findings overdue then, with the rescorings in force then (not those made later).
    @Test func slaReport() {
        let findings = [
            finding(vulnerability("CVE-1-overdue"), score: 9.5, discovered: day(0)),
            finding(vulnerability("CVE-2-rescored-then"), score: 7.5, discovered: day(0)),
            finding(vulnerability("CVE-3-rescored-later"), score: 7.5, discovered: day(0)),
            finding(vulnerability("CVE-4-resolved-before"), score: 7.5, discovered: day(0), resolved: day(32)),
            finding(vulnerability("CVE-5-rescoring-expired"), score: 7.5, discovered: day(0)),
            finding(vulnerability("CVE-6-not-due-yet"), score: 5.0, discovered: day(0)),
        ]
        let rescorings = RescoringIndex([
            rescoring("then", dataKey: vulnerability("CVE-2-rescored-then"), created: day(10), expires: day(60)),
            rescoring("later", dataKey: vulnerability("CVE-3-rescored-later"), created: day(36)),
            rescoring("expired", dataKey: vulnerability("CVE-5-rescoring-expired"), created: day(1), expires: day(33)),
        ])
        let report = SLAReport(findings: findings, evaluator: SLAEvaluator(rescorings: rescorings), component: nil, releaseDate: day(35))
        #expect(report.overdue.map(\.finding.key.dataKey.id) == ["CVE-1-overdue", "CVE-3-rescored-later", "CVE-5-rescoring-expired"])
        #expect(report.overdue.allSatisfy { $0.effective.dueDate == day(30) && $0.effective.overdue })
        #expect(report.rescoringsApplied.map(\.id) == ["then"])
        // Today the later rescoring applies and the expired one does not.
        let today = SLAReport(findings: findings, evaluator: SLAEvaluator(rescorings: rescorings), component: nil, releaseDate: day(40))
        #expect(today.overdue.map(\.finding.key.dataKey.id) == ["CVE-1-overdue", "CVE-5-rescoring-expired"])
        #expect(today.rescoringsApplied.map(\.id) == ["then", "later"])
    }
}
