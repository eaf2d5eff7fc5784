import Documents
import Foundation
import Testing

@testable import Findings

@Suite struct SLATests {
    /// The default vulnerability categories: each score's category and due date (days after discovery).
    @Test(arguments: [
        (10.0 as Double?, "CRITICAL", 30 as Int?), (9.0, "CRITICAL", 30), (8.9, "HIGH", 30), (7.0, "HIGH", 30), (6.9, "MEDIUM", 90),
        (6.94, "MEDIUM", 90), (4.0, "MEDIUM", 90), (3.9, "LOW", 120), (0.1, "LOW", 120), (0.0, "NONE", nil), (nil, "uncategorised", nil),
    ])
    func defaultCategories(score: Double?, category: String, dueDays: Int?) {
        let f = finding(score: score, discovered: day(3))
        let e = SLAEvaluator().effective(f, component: nil, now: day(4))
        #expect(e.category.description == category)
        #expect(e.dueDate == dueDays.map { day(3 + Double($0)) })
        #expect(e.clockStart == day(3) && e.rescoring == nil && !e.overdue)
    }

    @Test func aTypeWithoutCategoriesIsUncategorisedNotDropped() {
        let f = finding(.malware(file: "sha256:ee", signature: "Eicar-Test-Signature"), score: nil)
        #expect(SLAPolicy.default.category(of: f) == .uncategorised)
        let e = SLAEvaluator().effective(f, component: nil, now: day(1))
        #expect(e.category == .uncategorised && e.dueDate == nil && !e.overdue)
        // So is a license no default category takes.
        #expect(SLAPolicy.default.category(of: finding(.license(package: "pkg:npm/left-pad", id: "LicenseRef-acme"), score: nil)) == .uncategorised)
    }

    /// The default license categories: strong copyleft HIGH in 30 days, weak copyleft and unknown MEDIUM in 90,
    /// permissive NONE (never due).
    @Test(arguments: [("GPL-3.0-only", "HIGH", 30 as Int?), ("LGPL-2.1-only", "MEDIUM", 90), ("UNKNOWN", "MEDIUM", 90), ("MIT", "NONE", nil)])
    func defaultLicenseCategories(id: String, category: String, dueDays: Int?) {
        let e = SLAEvaluator().effective(finding(.license(package: "pkg:npm/x", id: id), score: nil, discovered: day(3)), component: nil, now: day(4))
        #expect(e.category.description == category && e.dueDate == dueDays.map { day(3 + Double($0)) })
    }

    @Test func zeroProcessingTimeIsDueOnDiscovery() throws {
        let blocked = SLACategorisation(id: "BLOCKED", value: 8, allowedProcessingTime: .zero, selector: .pattern(try NamePattern("^GPL-")))
        let policy = SLAPolicy([.license: [blocked]])
        let f = finding(.license(package: "pkg:npm/x", id: "GPL-3.0-only"), score: nil, discovered: day(2))
        let evaluator = SLAEvaluator(policy: policy)
        let atDiscovery = evaluator.effective(f, component: nil, now: day(2))
        #expect(atDiscovery.category.description == "BLOCKED" && atDiscovery.dueDate == day(2) && !atDiscovery.overdue)
        #expect(evaluator.effective(f, component: nil, now: day(2).addingTimeInterval(1)).overdue)
        #expect(atDiscovery.isOverdue(now: day(2, hours: 1)) && !atDiscovery.isOverdue(now: day(1)))
        // Patterns are searched in the data key's id: MIT is in no category.
        #expect(policy.category(of: finding(.license(package: "pkg:npm/x", id: "MIT"), score: nil)) == .uncategorised)
    }

    @Test func aResolvedFindingIsNeverOverdue() {
        let f = finding(score: 9.5, discovered: day(0), resolved: day(10))
        let e = SLAEvaluator().effective(f, component: nil, now: day(60))
        #expect(e.dueDate == day(30) && e.isOverdue(now: day(60)) && !e.overdue)
    }

    static let document = """
        apiVersion: warden.dev/v1
        kind: SLAPolicy
        metadata: {name: strict}
        spec:
          types:
            - type: vulnerability
              categorisations:
                - id: CRITICAL
                  value: 8
                  allowedProcessingTime: 7
                  selector: {cvss: {min: 9.0, max: 10}}
                - {id: HIGH, displayName: High risk, value: 4, allowedProcessingTime: 720h, selector: {cvss: {min: 7, max: 8.9}}}
                - {id: ACCEPTED, value: 0}
            - type: license
              categorisations:
                - {id: BLOCKED, value: 8, allowedProcessingTime: 0, selector: {pattern: "^(A|L)?GPL-"}}
                - {id: REVIEW, value: 1, allowedProcessingTime: 0s, selector: {pattern: "."}}
        """

    @Test func readsAPolicy() throws {
        let policy = try SLAPolicy.parse(Self.document, file: "sla.yaml")
        let vulnerabilities = try #require(policy.categorisations[.vulnerability])
        #expect(vulnerabilities.map(\.id) == ["CRITICAL", "HIGH", "ACCEPTED"])
        #expect(vulnerabilities.map(\.displayName) == ["Critical", "High risk", "Accepted"])
        #expect(vulnerabilities.map(\.allowedProcessingTime) == [.days(7), .seconds(720 * 3600), nil])
        #expect(vulnerabilities[0].selector == .score(9...10) && vulnerabilities[2].selector == nil)
        let licenses = try #require(policy.categorisations[.license])
        #expect(licenses.map(\.allowedProcessingTime) == [.zero, .zero])
        // First match in document order.
        #expect(policy.category(of: finding(.license(package: "p", id: "LGPL-2.1"), score: nil)).description == "BLOCKED")
        #expect(policy.category(of: finding(.license(package: "p", id: "MIT"), score: nil)).description == "REVIEW")
        #expect(policy.category(of: finding(score: 5.0)) == .uncategorised)
        #expect(policy.category(id: "ACCEPTED", type: .vulnerability).categorisation?.value == 0)
        #expect(policy.category(id: "ACCEPTED", type: .license) == .uncategorised)
    }

    static let head = "apiVersion: warden.dev/v1\nkind: SLAPolicy\nspec:\n  types:\n    - type: vulnerability\n      categorisations:\n"

    /// Each mistake is an error at its line and column.
    @Test(arguments: [
        ("        - {id: A, value: 1, colour: red}", "sla.yaml:7:29: unknown key \"colour\""),
        ("        - {id: A, value: 1, selector: {cvss: {min: 7, max: 4}}}", "sla.yaml:7:46: cvss range 7.0–4.0: min is above max"),
        ("        - {id: A, value: 1, selector: {cvss: {min: 0, max: 11}}}", "sla.yaml:7:60: \"11\" is not a score from 0 to 10"),
        ("        - {id: A, value: 1, selector: {cvss: {min: x, max: 1}}}", "sla.yaml:7:52: \"x\" is not a score from 0 to 10"),
        ("        - {id: A, value: 1, selector: {cvss: {min: 4}}}", "sla.yaml:7:46: cvss needs min and max"),
        (
            "        - {id: A, value: 1, selector: {cvss: {min: 4, max: 7}}}\n        - {id: B, value: 2, selector: {cvss: {min: 7, max: 9}}}",
            "sla.yaml:8:46: cvss range 7.0–9.0 overlaps category A's 4.0–7.0"
        ),
        ("        - {id: A, value: 1, selector: {pattern: \"(GPL\"}}", "sla.yaml:7:49: pattern \"(GPL\" is not a regular expression"),
        ("        - {id: A, value: 1, selector: {}}", "sla.yaml:7:39: selector needs exactly one of cvss or pattern"),
        ("        - {id: A, value: 1, selector: {pattern: a, cvss: {min: 1, max: 2}}}", "sla.yaml:7:39: selector needs exactly one"),
        ("        - {id: A, value: -1}", "sla.yaml:7:26: value must not be negative"),
        ("        - {id: A, value: high}", "sla.yaml:7:26: expected an integer, found \"high\""),
        ("        - {id: A}", "sla.yaml:7:11: value is missing"),
        ("        - {value: 1}", "sla.yaml:7:11: id is missing"),
        ("        - {id: A, value: 1}\n        - {id: A, value: 2}", "sla.yaml:8:16: category \"A\" is listed twice"),
        ("        - {id: A, value: 1, allowedProcessingTime: 1w}", "sla.yaml:7:52: allowedProcessingTime \"1w\" is neither a number of days"),
        ("        - {id: A, value: 1, allowedProcessingTime: -3}", "sla.yaml:7:52: allowedProcessingTime \"-3\""),
        (
            "        - {id: A, value: 1}\n    - type: vulnerability\n      categorisations: []",
            "sla.yaml:8:13: type \"vulnerability\" is listed twice"
        ),
        ("        - {id: A, value: 1}\n    - type: Bad_Type\n      categorisations: []", "sla.yaml:8:13: type \"Bad_Type\" must match"),
        ("        - {id: A, value: 1}\n    - {type: license}", "sla.yaml:8:7: categorisations is missing"),
    ])
    func policyErrors(tail: String, expected: String) {
        do {
            _ = try SLAPolicy.parse(Self.head + tail, file: "sla.yaml")
            Issue.record("no error for \(tail)")
        } catch {
            #expect("\(error)".hasPrefix(expected), "\(error)")
        }
    }

    @Test(arguments: [
        ("", "sla.yaml:1:1: the document is empty"),
        ("apiVersion: warden.dev/v2\nkind: SLAPolicy\nspec: {types: []}", "sla.yaml:1:13: apiVersion must be warden.dev/v1"),
        ("apiVersion: warden.dev/v1\nkind: Trigger\nspec: {types: []}", "sla.yaml:2:7: kind must be SLAPolicy"),
        ("apiVersion: warden.dev/v1\nkind: SLAPolicy", "sla.yaml:1:1: spec is missing"),
        ("apiVersion: warden.dev/v1\nkind: SLAPolicy\nspec: {tipes: []}", "sla.yaml:3:8: unknown key \"tipes\""),
        ("apiVersion: warden.dev/v1\nkind: SLAPolicy\nspek: {}", "sla.yaml:3:1: unknown key \"spek\""),
    ])
    func documentErrors(text: String, expected: String) {
        #expect(throws: YAMLError.self) { try SLAPolicy.parse(text, file: "sla.yaml") }
        do { _ = try SLAPolicy.parse(text, file: "sla.yaml") } catch { #expect("\(error)".hasPrefix(expected), "\(error)") }
    }
}
