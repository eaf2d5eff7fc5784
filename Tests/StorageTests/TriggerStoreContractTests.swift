import Foundation
import OCITesting
import Storage
import Testing

/// The contract every `TriggerStore` keeps, run against each implementation (the in-memory twin and SQLite).
@Suite struct TriggerStoreContractTests {
    func make(_ impl: Implementation) throws -> any ControlStore {
        switch impl {
        case .memory: return MemoryWorkflowStore()
        case .sqlite: return try SQLiteWorkflowStore(path: try makeTemporaryDirectory() + "/workflows.sqlite")
        }
    }

    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func event(_ id: String, at: Date) -> EventRecord {
        EventRecord(id: id, receiver: "hub", kind: "registry.push", subject: "r/app:1", event: #"{"id":"\#(id)"}"#, receivedAt: at)
    }

    func audit(_ action: String, at: Date) -> AuditEvent { AuditEvent(at: at, actor: "receiver:hub", action: action, subject: "event") }

    @Test(arguments: Implementation.allCases) func anEventIsDispatchedOncePerTriggerWithinItsWindowAndAgainAfter(_ impl: Implementation) async throws
    {
        let store = try make(impl)
        let targets = [DispatchTarget(workspace: "ws", trigger: "a", window: 3600), DispatchTarget(workspace: "ws", trigger: "b", window: 60)]
        let first = try await store.record(event: event("e1", at: t0), targets: targets, now: t0, audit: [audit("event.accept", at: t0)])
        guard case .created(let a1) = first[0], case .created(let b1) = first[1] else { Issue.record("\(first)"); return }
        #expect(a1.key != b1.key && a1.generation == 1 && a1.status == .pending)
        #expect(a1.key == DispatchRecord.key(workspace: "ws", trigger: "a", event: "e1", generation: 1))
        // The same event 2 minutes later: a duplicate for a (1 h window), a second generation for b (1 min window).
        let t1 = t0 + 120
        let again = try await store.record(event: event("e1", at: t1), targets: targets, now: t1, audit: [])
        #expect(again[0] == .duplicate(a1))
        guard case .created(let b2) = again[1] else { Issue.record("\(again)"); return }
        #expect(b2.generation == 2 && b2.key != b1.key)
        // The event is kept once, as first received.
        #expect(try await store.event(id: "e1")?.receivedAt == t0)
        #expect(try await store.events(receiver: "hub", before: nil, limit: 10).map(\.id) == ["e1"])
        #expect(try await store.auditCount() == 1)
    }

    @Test(arguments: Implementation.allCases) func eventPagesBreakTiesOfOneInstantByID(_ impl: Implementation) async throws {
        let store = try make(impl)
        // A batched delivery records its events at one instant: pages of two must still show each exactly once.
        for id in ["e3", "e1", "e5", "e2", "e4"] { _ = try await store.record(event: event(id, at: t0), targets: [], now: t0, audit: []) }
        _ = try await store.record(event: event("late", at: t0 + 1), targets: [], now: t0 + 1, audit: [])
        _ = try await store.record(event: event("other", at: t0 + 2), targets: [], now: t0 + 2, audit: [])
        var seen: [String] = []
        var cursor: (receivedAt: Date, id: String)?
        while true {
            let page = try await store.events(receiver: "hub", before: cursor, limit: 2)
            seen += page.map(\.id)
            guard page.count == 2, let last = page.last else { break }
            cursor = (last.receivedAt, last.id)
        }
        #expect(seen == ["other", "late", "e5", "e4", "e3", "e2", "e1"])
        // A time with an empty id: the events received before it.
        #expect(try await store.events(receiver: nil, before: (t0 + 1, ""), limit: 10).map(\.id) == ["e5", "e4", "e3", "e2", "e1"])
    }

    @Test(arguments: Implementation.allCases) func dispatchesRetryThenDeadLetterAndReplayOrDiscard(_ impl: Implementation) async throws {
        let store = try make(impl)
        let targets = [DispatchTarget(workspace: "ws", trigger: "a", window: 3600)]
        _ = try await store.record(event: event("e1", at: t0), targets: targets, now: t0, audit: [])
        _ = try await store.record(event: event("e2", at: t0 + 1), targets: targets, now: t0 + 1, audit: [])
        var due = try await store.dueDispatches(now: t0 + 1, limit: 10)
        #expect(due.map(\.event) == ["e1", "e2"])
        try await store.failDispatch(key: due[0].key, error: "boom", retryAt: t0 + 30, at: t0 + 1, audit: [])
        try await store.completeDispatch(key: due[1].key, run: "run-2", at: t0 + 1, audit: [audit("dispatch.run", at: t0 + 1)])
        #expect(try await store.dueDispatches(now: t0 + 10, limit: 10).isEmpty)
        due = try await store.dueDispatches(now: t0 + 30, limit: 10)
        #expect(due.count == 1 && due[0].attempts == 1 && due[0].error == "boom")
        try await store.failDispatch(key: due[0].key, error: "boom again", retryAt: nil, at: t0 + 30, audit: [])
        #expect(try await store.dispatch(key: due[0].key)?.status == .dead)
        #expect(try await store.dispatchCount(status: .dead) == 1)
        #expect(try await store.dispatches(DispatchQuery(statuses: [.dead])).map(\.key) == [due[0].key])
        #expect(try await store.dispatch(key: DispatchRecord.key(workspace: "ws", trigger: "a", event: "e2", generation: 1))?.run == "run-2")
        // Replay puts it back as due now with its attempts reset; only a dead dispatch can be replayed or discarded.
        #expect(try await store.replayDispatch(key: due[0].key, at: t0 + 40, audit: [audit("deadletter.replay", at: t0 + 40)]))
        #expect(!(try await store.replayDispatch(key: due[0].key, at: t0 + 40, audit: [])))
        let replayed = try await store.dueDispatches(now: t0 + 40, limit: 10)
        #expect(replayed.map(\.key) == [due[0].key] && replayed[0].attempts == 0)
        try await store.failDispatch(key: due[0].key, error: "still", retryAt: nil, at: t0 + 41, audit: [])
        #expect(try await store.discardDispatch(key: due[0].key, at: t0 + 42, audit: []))
        #expect(try await store.dispatch(key: due[0].key)?.status == .discarded)
        #expect(try await store.dispatchCount(status: .dead) == 0)
        // Pages newest first, continued by key.
        let page = try await store.dispatches(DispatchQuery(limit: 1))
        #expect(page.map(\.event) == ["e2"])
        #expect(try await store.dispatches(DispatchQuery(limit: 5, before: page[0].key)).map(\.event) == ["e1"])
    }

    @Test(arguments: Implementation.allCases) func leasesAreFencedByEpoch(_ impl: Implementation) async throws {
        let store = try make(impl)
        #expect(try await store.acquireLease(name: "scheduler", holder: "a", ttl: 10, now: t0) == 1)
        #expect(try await store.acquireLease(name: "scheduler", holder: "b", ttl: 10, now: t0 + 5) == nil)
        #expect(try await store.acquireLease(name: "scheduler", holder: "a", ttl: 10, now: t0 + 5) == 1)
        // a pauses past its lease: b takes over under a new epoch, and a's fire is refused.
        #expect(try await store.acquireLease(name: "scheduler", holder: "b", ttl: 10, now: t0 + 16) == 2)
        let targets = [DispatchTarget(workspace: "ws", trigger: "nightly", window: 86400)]
        let planned = t0 + 10
        let fenced = try await store.recordFire(
            trigger: "nightly", planned: planned, lease: "scheduler", holder: "a", epoch: 1, now: t0 + 17, event: event("f1", at: t0 + 17),
            targets: targets, audit: [])
        #expect(fenced == nil)
        let fired = try await store.recordFire(
            trigger: "nightly", planned: planned, lease: "scheduler", holder: "b", epoch: 2, now: t0 + 17, event: event("f1", at: t0 + 17),
            targets: targets, audit: [audit("schedule.fire", at: t0 + 17)])
        #expect(fired?.count == 1)
        // The same planned time never fires twice.
        let twice = try await store.recordFire(
            trigger: "nightly", planned: planned, lease: "scheduler", holder: "b", epoch: 2, now: t0 + 18, event: event("f1", at: t0 + 18),
            targets: targets, audit: [])
        #expect(twice == nil)
        #expect(try await store.lastFire(trigger: "nightly") == planned)
        #expect(try await store.event(id: "f1") != nil)
        #expect(try await store.auditCount() == 1)
        // A released lease is taken by the next holder at once.
        try await store.releaseLease(name: "scheduler", holder: "b")
        #expect(try await store.acquireLease(name: "scheduler", holder: "a", ttl: 10, now: t0 + 19) == 3)
    }

    @Test(arguments: Implementation.allCases) func aPollRecordsItsEventsAndMovesItsCursorFencedByTheLease(_ impl: Implementation) async throws {
        let store = try make(impl)
        let epoch = try #require(try await store.acquireLease(name: "scheduler", holder: "a", ttl: 10, now: t0))
        let targets = [DispatchTarget(workspace: "ws", trigger: "p", window: 3600)]
        let first = try await store.recordPoll(
            trigger: "ws/p", lease: "scheduler", holder: "a", epoch: epoch, now: t0,
            events: [PolledEvent(event: event("e1", at: t0), targets: targets), PolledEvent(event: event("e2", at: t0), targets: targets)],
            cursor: ["v1": "sha256:aa", "v2": "sha256:bb"], audit: [audit("poll.change", at: t0)])
        #expect(first?.count == 2)
        #expect(try await store.pollCursor(trigger: "ws/p") == ["v1": "sha256:aa", "v2": "sha256:bb"])
        // The next poll: v1 moved, v2 gone; e1 again is a duplicate within the window.
        let second = try await store.recordPoll(
            trigger: "ws/p", lease: "scheduler", holder: "a", epoch: epoch, now: t0 + 5,
            events: [PolledEvent(event: event("e1", at: t0 + 5), targets: targets)], cursor: ["v1": "sha256:cc", "v2": nil], audit: [])
        guard case .duplicate = second?.first?.first else { Issue.record("\(String(describing: second))"); return }
        #expect(try await store.pollCursor(trigger: "ws/p") == ["v1": "sha256:cc"])
        #expect(try await store.pollCursor(trigger: "ws/q").isEmpty)
        // A holder whose lease lapsed to another records nothing, not even its cursor.
        #expect(try await store.acquireLease(name: "scheduler", holder: "b", ttl: 10, now: t0 + 20) == epoch + 1)
        let stale = try await store.recordPoll(
            trigger: "ws/p", lease: "scheduler", holder: "a", epoch: epoch, now: t0 + 21,
            events: [PolledEvent(event: event("e3", at: t0 + 21), targets: targets)], cursor: ["v3": "sha256:dd"], audit: [audit("x", at: t0)])
        #expect(stale == nil)
        #expect(try await store.event(id: "e3") == nil)
        #expect(try await store.pollCursor(trigger: "ws/p") == ["v1": "sha256:cc"])
        #expect(try await store.auditCount() == 1)
    }

    @Test(arguments: Implementation.allCases) func aDeferredDispatchKeepsItsAttemptsAndDispatchedOnesAreCountedBySince(_ impl: Implementation)
        async throws
    {
        let store = try make(impl)
        let targets = [DispatchTarget(workspace: "ws", trigger: "a", window: 3600)]
        for i in 1...3 { _ = try await store.record(event: event("e\(i)", at: t0), targets: targets, now: t0, audit: []) }
        let due = try await store.dueDispatches(now: t0, limit: 10)
        #expect(due.count == 3)
        try await store.completeDispatch(key: due[0].key, run: "r1", at: t0 + 1, audit: [])
        try await store.completeDispatch(key: due[1].key, run: "r2", at: t0 + 10, audit: [])
        try await store.deferDispatch(key: due[2].key, until: t0 + 60, at: t0 + 10)
        #expect(try await store.dueDispatches(now: t0 + 59, limit: 10).isEmpty)
        let later = try await store.dueDispatches(now: t0 + 60, limit: 10)
        #expect(later.map(\.key) == [due[2].key] && later[0].attempts == 0)
        #expect(try await store.dispatchedCount(workspace: "ws", trigger: "a", since: t0) == 2)
        #expect(try await store.dispatchedCount(workspace: "ws", trigger: "a", since: t0 + 5) == 1)
        #expect(try await store.dispatchedCount(workspace: "ws", trigger: "b", since: t0) == 0)
        #expect(try await store.dispatchedCount(workspace: "other", trigger: "a", since: t0) == 0)
    }
}
