import Foundation
import OCITesting
import Storage
import Testing

/// The contract every `WorkflowStore` keeps, one test body run against each implementation (the in-memory twin and
/// SQLite now; PostgreSQL joins by adding a case to `Implementation`).
enum Implementation: String, CaseIterable, CustomTestStringConvertible {
    case memory, sqlite

    var testDescription: String { rawValue }

    func make() throws -> any WorkflowStore {
        switch self {
        case .memory: return MemoryWorkflowStore()
        case .sqlite:
            let dir = try makeTemporaryDirectory()
            return try SQLiteWorkflowStore(path: dir + "/workflows.sqlite")
        }
    }
}

@Suite struct WorkflowStoreContractTests {
    func record(_ id: String, key: String? = nil, status: RunStatus = .queued, at: Date = Date()) -> RunRecord {
        RunRecord(
            id: id, workflow: "w", file: "w.yaml", definition: "d", inputs: "{}", idempotencyKey: key, parent: nil, status: status, createdAt: at)
    }

    @Test(arguments: Implementation.allCases) func createIsIdempotentByKeyAndKeepsTheFirstEntries(_ impl: Implementation) async throws {
        let store = try impl.make()
        let first = try await store.create(record("r1", key: "k"), entries: [JournalEntry(run: "r1", type: "run.created")])
        #expect(first.created && first.run.id == "r1")
        let again = try await store.create(record("r2", key: "k"), entries: [JournalEntry(run: "r2", type: "run.created")])
        #expect(!again.created && again.run.id == "r1")
        #expect(try await store.run(id: "r2") == nil)
        #expect(try await store.journal(run: "r1").map(\.type) == ["run.created"])
        #expect(try await store.journal(run: "r2").isEmpty)
    }

    @Test(arguments: Implementation.allCases) func appendKeepsOrderAndAppliesTheUpdate(_ impl: Implementation) async throws {
        let store = try impl.make()
        _ = try await store.create(record("r"), entries: [JournalEntry(run: "r", type: "run.created")])
        try await store.append(
            run: "r",
            [
                JournalEntry(run: "r", type: "step.started", step: "a"),
                JournalEntry(run: "r", type: "attempt.started", step: "a", item: 0, attempt: 1),
            ],
            update: RunUpdate(status: "running"))
        try await store.append(
            run: "r", [JournalEntry(run: "r", type: "run.finished", data: #"{"status":"succeeded"}"#)],
            update: RunUpdate(status: "succeeded", outputs: #"{"x":1}"#))
        let journal = try await store.journal(run: "r")
        #expect(journal.map(\.type) == ["run.created", "step.started", "attempt.started", "run.finished"])
        #expect(journal[2].step == "a" && journal[2].item == 0 && journal[2].attempt == 1)
        #expect(journal.last?.data == #"{"status":"succeeded"}"#)
        let seqs = journal.compactMap(\.seq)
        #expect(seqs.count == journal.count && seqs == seqs.sorted() && Set(seqs).count == seqs.count)
        let run = try #require(try await store.run(id: "r"))
        #expect(run.status == "succeeded" && run.outputs == #"{"x":1}"# && run.finished)
        #expect(run.updatedAt >= run.createdAt)
    }

    @Test(arguments: Implementation.allCases) func journalAfterASequenceNumberReadsOnlyWhatIsNewInPages(_ impl: Implementation) async throws {
        let store = try impl.make()
        _ = try await store.create(record("r"), entries: [JournalEntry(run: "r", type: "run.created")])
        _ = try await store.create(record("other"), entries: [JournalEntry(run: "other", type: "run.created")])
        try await store.append(run: "r", (1...5).map { JournalEntry(run: "r", type: "step.started", step: "s\($0)") })
        let all = try await store.journal(run: "r")
        let seqs = all.compactMap(\.seq)
        #expect(seqs.count == 6)
        #expect(try await store.journal(run: "r", after: 0, limit: 100).compactMap(\.seq) == seqs)
        #expect(try await store.journal(run: "r", after: seqs[1], limit: 2).map(\.step) == ["s2", "s3"])
        #expect(try await store.journal(run: "r", after: seqs[5], limit: 100).isEmpty)
        #expect(try await store.journal(run: "missing", after: 0, limit: 10).isEmpty)
    }

    @Test(arguments: Implementation.allCases) func runsAreListedNewestFirstAndFilteredByStatus(_ impl: Implementation) async throws {
        let store = try impl.make()
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        for (i, status) in (["queued", "running", "succeeded", "failed"] as [RunStatus]).enumerated() {
            _ = try await store.create(record("r\(i)", status: status, at: t.addingTimeInterval(Double(i))), entries: [])
        }
        #expect(try await store.runs(statuses: nil, limit: 10).map(\.id) == ["r3", "r2", "r1", "r0"])
        #expect(try await store.runs(statuses: nil, limit: 2).map(\.id) == ["r3", "r2"])
        #expect(Set(try await store.runs(statuses: ["queued", "failed"], limit: 10).map(\.id)) == ["r0", "r3"])
        #expect(try await store.runs(statuses: ["waiting"], limit: 10).isEmpty)
    }

    @Test(arguments: Implementation.allCases) func oneDriverAtATime(_ impl: Implementation) async throws {
        let store = try impl.make()
        _ = try await store.create(record("r"), entries: [])
        #expect(try await store.claim(run: "r", owner: "h:1", isGone: { _ in false }))
        // Another live process cannot take it; the same owner may claim again.
        #expect(!(try await store.claim(run: "r", owner: "h:2", isGone: { _ in false })))
        #expect(try await store.claim(run: "r", owner: "h:1", isGone: { _ in false }))
        #expect(try await store.run(id: "r")?.owner == "h:1")
        // A driver that is gone is replaced.
        #expect(try await store.claim(run: "r", owner: "h:2", isGone: { $0 == "h:1" }))
        #expect(try await store.run(id: "r")?.owner == "h:2")
        // Releasing by someone else changes nothing; by the owner frees the run.
        try await store.release(run: "r", owner: "h:1")
        #expect(try await store.run(id: "r")?.owner == "h:2")
        try await store.release(run: "r", owner: "h:2")
        #expect(try await store.run(id: "r")?.owner == nil)
        #expect(try await store.claim(run: "r", owner: "h:3", isGone: { _ in false }))
        #expect(!(try await store.claim(run: "missing", owner: "h:3", isGone: { _ in true })))
    }

    @Test(arguments: Implementation.allCases) func signalsArePendingUntilConsumedByAnAppend(_ impl: Implementation) async throws {
        let store = try impl.make()
        _ = try await store.create(record("r"), entries: [])
        _ = try await store.create(record("other"), entries: [])
        try await store.signal(RunSignal(run: "r", kind: "approve", step: "gate", by: "alice", comment: "ok"))
        try await store.signal(RunSignal(run: "r", kind: "cancel", by: "ops"))
        try await store.signal(RunSignal(run: "other", kind: "cancel", by: "ops"))
        let pending = try await store.pendingSignals(run: "r")
        #expect(pending.map(\.kind) == ["approve", "cancel"])
        #expect(pending[0].step == "gate" && pending[0].by == "alice" && pending[0].comment == "ok")
        let first = try #require(pending[0].id)
        try await store.append(run: "r", [JournalEntry(run: "r", type: "approval.decided", step: "gate")], update: nil, consumed: [first])
        #expect(try await store.pendingSignals(run: "r").map(\.kind) == ["cancel"])
        #expect(try await store.pendingSignals(run: "other").map(\.kind) == ["cancel"])
    }
}
