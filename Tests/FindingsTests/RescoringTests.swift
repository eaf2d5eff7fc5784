import Foundation
import Testing

@testable import Findings

@Suite struct RescoringTests {
    static let shop = ComponentRef(name: "example.org/shop", version: "1.4.0")
    /// One rescoring of each scope, narrower ones newer, and a global one newest of all.
    static let scoped = RescoringIndex([
        rescoring("global", .global, category: "LOW", created: day(1)),
        rescoring("component", .component("example.org/shop"), category: "MEDIUM", created: day(2)),
        rescoring("artefact", .artefact(artefact("team/app", 1).name), category: "HIGH", created: day(3)),
        rescoring("single", .single(artefact("team/app", 1)), category: "CRITICAL", created: day(4), expires: day(10)),
        rescoring("global-newer", .global, category: "NONE", created: day(5)),
        rescoring("other-key", .single(artefact("team/app", 1)), category: "NONE", dataKey: vulnerability("CVE-2026-9999"), created: day(0)),
    ])

    /// The narrowest scope in force wins, then the newest; an expired rescoring no longer applies.
    @Test(arguments: [
        // (artefact, in the shop component, time, winning rescoring)
        (artefact("team/app", 1), true, day(6), "single" as String?),
        (artefact("team/app", 2), true, day(6), "artefact"),
        (artefact("team/web", 1), true, day(6), "component"),
        (artefact("team/web", 1), false, day(6), "global-newer"),
        (artefact("team/web", 1), false, day(4), "global"),
        (artefact("team/app", 1), true, day(3, hours: 12), "artefact"),
        (artefact("team/app", 1), true, day(10), "artefact"),
        (artefact("team/app", 1), true, day(9, hours: 23), "single"),
        (artefact("team/web", 1), false, day(0, hours: 12), nil),
    ])
    func precedence(on artefact: ArtefactID, inShop: Bool, time: Date, expected: String?) {
        let key = FindingKey(artefact: artefact, datasource: "osv", dataKey: vulnerability())
        #expect(Self.scoped.match(key, component: inShop ? Self.shop.name : nil, at: time).rescoring?.id == expected)
    }

    @Test func theRescoringSetsCategoryAndDueDate() {
        let evaluator = SLAEvaluator(rescorings: Self.scoped)
        let f = finding(on: artefact("team/app", 1), score: 2.0, discovered: day(0))
        let e = evaluator.effective(f, component: Self.shop, now: day(6))
        #expect(e.category.description == "CRITICAL" && e.dueDate == day(30) && e.rescoring?.id == "single" && e.overdue == false)
        let later = evaluator.effective(f, component: Self.shop, now: day(31))
        #expect(later.category.description == "HIGH" && later.dueDate == day(30) && later.overdue)
        // Another data key is untouched by these rescorings: LOW by its score.
        let other = evaluator.effective(finding(vulnerability("CVE-2026-0002"), score: 2.0), component: Self.shop, now: day(6))
        #expect(other.category.description == "LOW" && other.rescoring == nil && other.dueDate == day(120))
    }

    @Test(arguments: [
        // (due date, processing time, expected due)
        (day(12) as Date?, nil as Int?, day(12)), (nil, 5, day(8)), (nil, 0, day(3)), (nil, nil, day(33)),
    ])
    func ownDueDateOrProcessingTime(due: Date?, processingDays: Int?, expected: Date) {
        let r = rescoring("r", category: "HIGH", created: day(4), due: due, processingTime: processingDays.map { .days($0) })
        let e = SLAEvaluator(rescorings: RescoringIndex([r])).effective(finding(score: 9.9, discovered: day(3)), component: nil, now: day(5))
        #expect(e.category.description == "HIGH" && e.dueDate == expected)
    }

    @Test func aRescoringToAnUnknownCategoryIsUncategorised() {
        let e = SLAEvaluator(rescorings: RescoringIndex([rescoring("r", category: "GONE")])).effective(finding(), component: nil, now: day(1))
        #expect(e.category == .uncategorised && e.rescoring?.id == "r" && e.dueDate == nil)
    }

    /// An expired rescoring reactivates the finding: with a fresh clock, as if discovered at the expiry.
    @Test(arguments: [
        // (fresh clock, time, category, clock start, due date, overdue)
        (true, day(20), "NONE", day(0), nil as Date?, false),
        (true, day(41), "HIGH", day(40), day(70), false),
        (true, day(71), "HIGH", day(40), day(70), true),
        (false, day(41), "HIGH", day(0), day(30), true),
    ])
    func expiry(freshClock: Bool, time: Date, category: String, clockStart: Date, due: Date?, overdue: Bool) {
        let r = rescoring("r", .single(artefact()), created: day(1), expires: day(40), freshClock: freshClock)
        let e = SLAEvaluator(rescorings: RescoringIndex([r])).effective(finding(score: 7.5, discovered: day(0)), component: nil, now: time)
        #expect(e.category.description == category && e.clockStart == clockStart && e.dueDate == due && e.overdue == overdue)
    }

    @Test func aFreshClockRestartsOnlyWhatItDecided() {
        let shadowed = rescoring("global", .global, created: day(1), expires: day(40), freshClock: true)
        let narrower = rescoring("single", .single(artefact()), category: "CRITICAL", created: day(2))
        let f = finding(score: 7.5, discovered: day(0))
        let e = SLAEvaluator(rescorings: RescoringIndex([shadowed, narrower])).effective(f, component: nil, now: day(41))
        #expect(e.rescoring?.id == "single" && e.clockStart == day(0) && e.dueDate == day(30) && e.overdue)
        // Alone, the same rescoring decided the finding until it expired: the clock restarts.
        #expect(RescoringIndex([shadowed]).match(f.key, component: nil, at: day(41)) == .init(rescoring: nil, clockRestart: day(40)))
    }

    @Test func historyAndRescoringsInForce() {
        let key = FindingKey(artefact: artefact("team/app", 1), datasource: "osv", dataKey: vulnerability())
        #expect(Self.scoped.history(of: key, component: Self.shop.name).map(\.id) == ["global", "component", "artefact", "single", "global-newer"])
        #expect(Self.scoped.history(of: key, component: nil).map(\.id) == ["global", "artefact", "single", "global-newer"])
        let elsewhere = FindingKey(artefact: artefact("team/web", 1), datasource: "osv", dataKey: vulnerability())
        #expect(Self.scoped.history(of: elsewhere, component: nil).map(\.id) == ["global", "global-newer"])
        #expect(Self.scoped.inForce(at: day(2)).map(\.id) == ["other-key", "global", "component"])
        #expect(Self.scoped.inForce(at: day(11)).map(\.id) == ["other-key", "global", "component", "artefact", "global-newer"])
    }

    @Test(arguments: [
        ("", nil as Int?, nil as Date?, false, "a comment saying why is required"),
        ("  \n", nil, nil, false, "a comment saying why is required"),
        ("ok", 3, nil, false, "give a due date or a processing time, not both"),
        ("ok", nil, day(0), false, "it expires before it is created"),
        ("ok", nil, nil, true, "a fresh clock needs an expiry"),
    ])
    func invalidRescorings(comment: String, processingDays: Int?, expires: Date?, freshClock: Bool, reason: String) {
        #expect(throws: Rescoring.Invalid(reason: "rescoring r: \(reason)")) {
            try Rescoring(
                id: "r", dataKey: vulnerability(), scope: .global, categoryID: "NONE", comment: comment, user: "alice", createdAt: day(1),
                dueDate: processingDays == nil ? nil : day(9), processingTime: processingDays.map { .days($0) }, expiresAt: expires,
                freshClock: freshClock)
        }
    }

    /// The index gives what comparing every finding with every rescoring gives, on a random mix of scopes,
    /// creation times, expiries and fresh clocks.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func indexEqualsTheNaiveMatch(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        let names = ["team/a", "team/b", "team/c", "team/d", "team/e"]
        let artefacts = names.flatMap { n in (1...4).map { artefact(n, $0) } }
        let components = ["shop", "bank", "mail"]
        let keys = (0..<12).map { vulnerability("CVE-2026-\($0)", package: "pkg:deb/debian/p\($0 % 4)") }
        func componentOf(_ a: ArtefactID) -> String? { a.repository == "team/e" ? nil : components[Int(a.repository.utf8.last!) % 3] }
        let rescorings = (0..<400).map { i -> Rescoring in
            let a = artefacts.randomElement(using: &rng)!
            let scope: Rescoring.Scope =
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: .global
                case 1: .component(components.randomElement(using: &rng)!)
                case 2: .artefact(a.name)
                default: .single(a)
                }
            let created = day(Double(Int.random(in: 0..<60, using: &rng)))
            let expires = Bool.random(using: &rng) ? created.addingTimeInterval(Double(Int.random(in: 1..<40, using: &rng)) * 86_400) : nil
            return rescoring(
                "r\(i)", scope, category: ["NONE", "LOW", "HIGH"].randomElement(using: &rng)!, dataKey: keys.randomElement(using: &rng)!,
                created: created, expires: expires, freshClock: expires != nil && Bool.random(using: &rng))
        }
        let index = RescoringIndex(rescorings)
        var compared = 0
        var decided = 0
        for a in artefacts {
            for k in keys {
                let key = FindingKey(artefact: a, datasource: "osv", dataKey: k)
                for t in stride(from: 0.0, through: 100, by: 7.5).map({ day($0) }) {
                    let expected = Self.naiveMatch(rescorings, key, component: componentOf(a), at: t)
                    #expect(index.match(key, component: componentOf(a), at: t) == expected)
                    compared += 1
                    if expected.rescoring != nil { decided += 1 }
                }
            }
        }
        #expect(compared == 20 * 12 * 14)
        // The set exercises both outcomes.
        #expect(decided > compared / 10 && decided < compared)
    }

    /// The reference: every rescoring checked against the finding, O(findings × rescorings).
    static func naiveMatch(_ all: [Rescoring], _ key: FindingKey, component: String?, at t: Date) -> RescoringIndex.Match {
        let applicable = all.filter { $0.applies(to: key, component: component) }
        func winner(_ inForce: (Rescoring) -> Bool) -> Rescoring? { applicable.filter(inForce).min(by: Rescoring.precedes) }
        let restart = applicable.filter { r in
            guard r.freshClock, let end = r.expiresAt, end <= t else { return false }
            return winner({ $0.createdAt < end && ($0.expiresAt ?? .distantFuture) >= end })?.id == r.id
        }.compactMap(\.expiresAt).max()
        return .init(rescoring: winner { $0.isInForce(at: t) }, clockRestart: restart)
    }
}
