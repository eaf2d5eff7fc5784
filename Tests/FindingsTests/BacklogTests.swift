import Foundation
import Testing

@testable import Findings

@Suite struct BacklogTests {
    @Test(arguments: [("CRITICAL", 8), ("HIGH", 4), ("MEDIUM", 2), ("LOW", 1), ("NONE", 0), ("GONE", 2)])
    func priorityFromCategory(category: String, priority: Int) {
        #expect(BacklogPriority(SLAPolicy.default.category(id: category, type: .vulnerability)).rawValue == priority)
    }

    @Test(arguments: [
        (BacklogPriority.low, BacklogPriority.high, BacklogPriority.high), (.high, .low, .high), (.critical, .none, .critical),
        (.medium, .medium, .medium),
    ])
    func priorityIsRaisedNeverLowered(first: BacklogPriority, second: BacklogPriority, merged: BacklogPriority) {
        let a = BacklogItem(scanner: "osv", artefact: artefact(), priority: first, createdAt: day(1))
        let b = BacklogItem(scanner: "osv", artefact: artefact(), priority: second, createdAt: day(2))
        #expect(a.merged(with: b) == BacklogItem(scanner: "osv", artefact: artefact(), priority: merged, createdAt: day(1)))
        #expect(b.merged(with: a) == BacklogItem(scanner: "osv", artefact: artefact(), priority: merged, createdAt: day(1)))
    }

    @Test func oneItemPerScannerAndArtefact() {
        var items: [BacklogItem.Key: BacklogItem] = [:]
        BacklogItem.enqueue(BacklogItem(scanner: "osv", artefact: artefact(), priority: .low, createdAt: day(1)), into: &items)
        BacklogItem.enqueue(BacklogItem(scanner: "osv", artefact: artefact(), priority: .critical, createdAt: day(3)), into: &items)
        BacklogItem.enqueue(BacklogItem(scanner: "osv", artefact: artefact(), priority: .medium, createdAt: day(4)), into: &items)
        BacklogItem.enqueue(BacklogItem(scanner: "clamav", artefact: artefact(), priority: .low, createdAt: day(2)), into: &items)
        #expect(items.count == 2)
        #expect(
            items[BacklogItem.Key(scanner: "osv", artefact: artefact())]
                == BacklogItem(scanner: "osv", artefact: artefact(), priority: .critical, createdAt: day(1)))
    }

    @Test func claimedHighestPriorityFirstThenOldest() {
        let items = [
            BacklogItem(scanner: "osv", artefact: artefact("a"), priority: .low, createdAt: day(0)),
            BacklogItem(scanner: "osv", artefact: artefact("b"), priority: .high, createdAt: day(5)),
            BacklogItem(scanner: "osv", artefact: artefact("c"), priority: .high, createdAt: day(2)),
            BacklogItem(scanner: "osv", artefact: artefact("d"), priority: .critical, createdAt: day(9)),
            BacklogItem(scanner: "clamav", artefact: artefact("c"), priority: .high, createdAt: day(2)),
            BacklogItem(scanner: "osv", artefact: artefact("e"), priority: .none, createdAt: day(-5)),
        ]
        let order = items.sorted(by: BacklogItem.claimsBefore).map { "\($0.key.scanner) \($0.key.artefact.repository)" }
        #expect(order == ["osv d", "clamav c", "osv c", "osv b", "osv a", "osv e"])
        #expect(BacklogItem.next(in: items.reversed())?.key.artefact.repository == "d")
        #expect(BacklogItem.next(in: []) == nil)
    }
}
