import Foundation
import Testing

@testable import Findings

@Suite struct IssueTests {
    static let shop = ComponentRef(name: "example.org/shop", version: "3.1.0")
    static let lone = artefact("team/lone", 1)
    static func component(_ a: ArtefactID) -> ComponentRef? { a.repository == "team/lone" ? nil : shop }

    /// Findings of two shop artefacts and one outside the shop; today is day 40.
    static let findings = [
        finding(vulnerability("CVE-A"), on: artefact("team/app", 1), score: 9.0, discovered: day(0)),  // CRITICAL due day 30: overdue
        finding(vulnerability("CVE-B"), on: artefact("team/web", 1), score: 7.0, discovered: day(1)),  // HIGH due day 31: same window
        finding(vulnerability("CVE-C"), on: artefact("team/web", 1), score: 5.0, discovered: day(0)),  // MEDIUM due day 90
        finding(vulnerability("CVE-D"), on: artefact("team/web", 1), score: 0, discovered: day(0)),  // NONE: never due, not exported
        finding(vulnerability("CVE-E"), on: artefact("team/web", 1), score: nil, discovered: day(0)),  // uncategorised: undated
        finding(vulnerability("CVE-F"), on: lone, score: 9.9, discovered: day(35)),  // CRITICAL due day 65
        finding(.license(package: "pkg:npm/x", id: "LicenseRef-custom"), on: lone, score: nil, discovered: day(0)),  // uncategorised license
        finding(vulnerability("CVE-G"), on: lone, score: 9.9, discovered: day(0), resolved: day(20)),  // resolved
    ]

    static func issues(_ findings: [Finding] = findings, pending: Set<ArtefactID> = [artefact("team/web", 1)]) -> [IssueDocument] {
        IssueExport().issues(for: findings, evaluator: SLAEvaluator(), now: day(40), component: component, scanPending: pending.contains)
    }

    @Test func groupsBySubjectTypeAndWindow() throws {
        let issues = Self.issues()
        func issue(_ subject: IssueDocument.Subject, _ type: FindingType, _ due: Date?) throws -> IssueDocument {
            let window = IssueExport().window(for: due)
            return try #require(issues.first { $0.subject == subject && $0.type == type && $0.window == window })
        }
        #expect(issues.count == 5)
        let overdue = try issue(.component(Self.shop.name), .vulnerability, day(30))
        #expect(overdue.entries.map(\.finding.key.dataKey.id) == ["CVE-A", "CVE-B"])
        #expect(overdue.labels == ["overdue", "scan-pending"])
        #expect(overdue.window == .due(start: day(18), end: day(32)))
        #expect(overdue.title == "Vulnerabilities in component example.org/shop, due 2026-01-19 to 2026-02-01")
        #expect(try issue(.component(Self.shop.name), .vulnerability, day(90)).entries.map(\.finding.key.dataKey.id) == ["CVE-C"])
        let undated = try issue(.component(Self.shop.name), .vulnerability, nil)
        #expect(undated.entries.map(\.finding.key.dataKey.id) == ["CVE-E"] && undated.labels == ["scan-pending"] && undated.window == .undated)
        let lone = try issue(.artefact(Self.lone.name), .vulnerability, day(65))
        #expect(lone.entries.map(\.finding.key.dataKey.id) == ["CVE-F"] && lone.labels.isEmpty)
        #expect(try issue(.artefact(Self.lone.name), .license, nil).title == "Licenses in artefact registry.example/team/lone, uncategorised")
        #expect(!issues.contains { $0.entries.contains { ["CVE-D", "CVE-G"].contains($0.finding.key.dataKey.id) } })
    }

    @Test func idsAreStable() {
        let first = Self.issues()
        #expect(Self.issues(Self.findings.reversed()).map(\.id) == first.map(\.id))
        #expect(Set(first.map(\.id)).count == first.count && first.allSatisfy { $0.id.count == 64 })
        // The id depends on the group and the window only, never on the findings in it.
        let window = IssueExport().window(for: day(30))
        #expect(
            IssueDocument.id(subject: .component("example.org/shop"), type: .vulnerability, window: window)
                == "d99c48dfcff5cd3c319ceb6751a71c795b99292879497247c0017898a6a3457e")
        #expect(first.contains { $0.id == IssueDocument.id(subject: .component("example.org/shop"), type: .vulnerability, window: window) })
        #expect(
            IssueDocument.id(subject: .component("example.org/shop"), type: .vulnerability, window: IssueExport().window(for: day(45)))
                != IssueDocument.id(subject: .component("example.org/shop"), type: .vulnerability, window: window))
        #expect(
            IssueDocument.id(subject: .component("example.org/shop"), type: .license, window: window)
                != IssueDocument.id(subject: .component("example.org/shop"), type: .vulnerability, window: window))
    }

    @Test(arguments: [
        (day(18), day(18), day(32)), (day(31, hours: 23), day(18), day(32)), (day(32), day(32), day(46)), (day(-11), day(-24), day(-10)),
    ])
    func windows(due: Date, start: Date, end: Date) {
        #expect(IssueExport().window(for: due) == .due(start: start, end: end))
    }

    /// Earlier issues close with a reason; issues of subjects still tracked with open findings stay open.
    @Test func closeRules() {
        let before = Self.issues()
        // CVE-A and CVE-B are fixed, and the lone artefact is no longer tracked.
        let now = Self.issues(Self.findings.filter { !["CVE-A", "CVE-B"].contains($0.key.dataKey.id) })
        let (open, closed) = IssueExport.reconcile(previous: before, current: now) { $0 != .artefact(Self.lone.name) }
        #expect(open.count == 2 && open.allSatisfy { $0.subject == .component(Self.shop.name) && $0.state == .open })
        #expect(closed.count == 3)
        let reasons = Dictionary(
            uniqueKeysWithValues: closed.map { ($0.subject.description + " " + $0.type.rawValue + " " + "\($0.window == .undated)", $0.state) })
        #expect(reasons["component example.org/shop vulnerability false"] == .closed(.noOpenFindings))
        #expect(reasons["artefact registry.example/team/lone vulnerability false"] == .closed(.notTracked))
        #expect(reasons["artefact registry.example/team/lone license true"] == .closed(.notTracked))
        // Closing again closes nothing more.
        #expect(IssueExport.reconcile(previous: open + closed, current: now) { $0 != .artefact(Self.lone.name) }.closed.isEmpty)
    }

    @Test func markdown() throws {
        let rescorings = RescoringIndex([
            rescoring(
                "r", .single(artefact("team/app", 1)), category: "CRITICAL", dataKey: vulnerability("CVE-A"), comment: "exploited | in the wild")
        ])
        let issues = IssueExport().issues(
            for: Self.findings, evaluator: SLAEvaluator(rescorings: rescorings), now: day(40), component: Self.component, scanPending: { _ in false })
        let overdue = try #require(issues.first { $0.labels.contains("overdue") })
        let lines = overdue.markdown().split(separator: "\n").map(String.init)
        #expect(lines[0] == "# Vulnerabilities in component example.org/shop, due 2026-01-19 to 2026-02-01")
        #expect(lines[1] == "Labels: overdue")
        #expect(lines[2] == "| Artefact | Package | Vulnerability | Category | Score | Discovered | Due | Rescoring |")
        #expect(
            lines[4]
                == "| \(artefact("team/app", 1)) | pkg:deb/debian/openssl | CVE-A | CRITICAL | 9.0 | 2026-01-01 | 2026-01-31 (overdue) | CRITICAL by alice: exploited \\| in the wild |"
        )
        #expect(
            lines[5].hasPrefix("| \(artefact("team/web", 1)) | pkg:deb/debian/openssl | CVE-B | HIGH | 7.0 | 2026-01-02 | 2026-02-01 (overdue) |"))
        #expect(lines.count == 6)
        var closed = overdue
        closed.state = .closed(.notTracked)
        #expect(closed.markdown().contains("\nClosed: the component example.org/shop is no longer tracked.\n"))
    }

    @Test func json() throws {
        var issue = try #require(Self.issues().first { $0.labels.contains("overdue") })
        issue.state = .closed(.noOpenFindings)
        let object = try #require(try JSONSerialization.jsonObject(with: issue.json()) as? [String: Any])
        #expect(object["id"] as? String == issue.id)
        #expect(object["state"] as? String == "closed" && object["closeReason"] as? String == "no-open-findings")
        #expect(object["labels"] as? [String] == ["overdue", "scan-pending"] && object["type"] as? String == "vulnerability")
        #expect(object["subject"] as? String == "component example.org/shop")
        #expect((object["window"] as? [String: String]) == ["start": "2026-01-19T00:00:00.000Z", "end": "2026-02-02T00:00:00.000Z"])
        let items = try #require(object["findings"] as? [[String: Any]])
        #expect(items.count == 2)
        #expect(items[0]["id"] as? String == "CVE-A" && items[0]["category"] as? String == "CRITICAL" && items[0]["overdue"] as? Bool == true)
        #expect(items[0]["dueDate"] as? String == "2026-01-31T00:00:00.000Z" && items[0]["score"] as? Double == 9.0)
        #expect(
            items[0]["key"] as? String
                == FindingKey(artefact: artefact("team/app", 1), datasource: "osv", dataKey: vulnerability("CVE-A")).stableString)
    }
}
