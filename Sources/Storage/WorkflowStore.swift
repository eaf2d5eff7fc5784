import Foundation
import GRDB
import Synchronization

/// One workflow run: what started it and where it stands. The journal (`JournalEntry`) is the truth; the status,
/// outputs and error here are a summary written in the same transaction as the journal entries that decide them.
public struct RunRecord: Codable, Sendable, Equatable {
    public var id: String
    /// The workflow's name.
    public var workflow: String
    /// The definition file as given when the run started.
    public var file: String
    /// The definition's text: a run resumes against the definition it started with, even if the file changed.
    public var definition: String
    /// Inputs as a JSON object.
    public var inputs: String
    public var idempotencyKey: String?
    /// `RUN/STEP` of the parent step when this run is a child workflow.
    public var parent: String?
    /// `queued`, `running`, `waiting`, `succeeded`, `failed` or `cancelled`.
    public var status: RunStatus
    /// Outputs as a JSON object once the run finished.
    public var outputs: String?
    public var error: String?
    /// The process driving the run (`host:pid`), nil when none.
    public var owner: String?
    public var createdAt: Date
    public var updatedAt: Date
    /// The workspace the run belongs to (`default` for runs started from the command line).
    public var workspace: String
    /// Labels as a JSON object of strings.
    public var labels: String

    public init(
        id: String, workflow: String, file: String, definition: String, inputs: String, idempotencyKey: String?, parent: String?,
        status: RunStatus = .queued, createdAt: Date = Date(), workspace: String = RunRecord.defaultWorkspace, labels: String = "{}"
    ) {
        self.id = id
        self.workflow = workflow
        self.file = file
        self.definition = definition
        self.inputs = inputs
        self.idempotencyKey = idempotencyKey
        self.parent = parent
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.workspace = workspace
        self.labels = labels
    }

    public var finished: Bool { status.finished }
    /// The workspace of runs started without one.
    public static let defaultWorkspace = "default"
}

/// One transition of a run, appended and committed before its effect is acted on.
public struct JournalEntry: Codable, Sendable, Equatable {
    /// Assigned by the store, increasing.
    public var seq: Int64?
    public var run: String
    /// `run.created`, `step.started`, `step.skipped`, `attempt.started`, `attempt.finished`, `step.finished`,
    /// `approval.requested`, `approval.decided`, `timer.started`, `timer.fired`, `run.cancelled`, `run.finished`.
    public var type: EntryKind
    public var step: String?
    /// The foreach item (0 for steps without foreach).
    public var item: Int?
    public var attempt: Int?
    /// The details as a JSON object.
    public var data: String
    public var at: Date

    public init(run: String, type: EntryKind, step: String? = nil, item: Int? = nil, attempt: Int? = nil, data: String = "{}", at: Date = Date()) {
        self.run = run
        self.type = type
        self.step = step
        self.item = item
        self.attempt = attempt
        self.data = data
        self.at = at
    }

}

/// A request from outside the process driving a run: approve or reject an approval step, cancel the run.
public struct RunSignal: Codable, Sendable, Equatable {
    public var id: Int64?
    public var run: String
    /// `approve`, `reject` or `cancel`.
    public var kind: SignalKind
    public var step: String?
    public var by: String?
    public var comment: String?
    public var at: Date
    public var consumed: Bool

    public init(run: String, kind: SignalKind, step: String? = nil, by: String? = nil, comment: String? = nil, at: Date = Date()) {
        self.run = run
        self.kind = kind
        self.step = step
        self.by = by
        self.comment = comment
        self.at = at
        self.consumed = false
    }

}

/// The summary a journal append changes on its run.
public struct RunUpdate: Sendable, Equatable {
    public var status: RunStatus
    public var outputs: String?
    public var error: String?
    public init(status: RunStatus, outputs: String? = nil, error: String? = nil) {
        self.status = status
        self.outputs = outputs
        self.error = error
    }
}

// The SQLite implementation's view of the records: GRDB conformances live here only.
extension RunRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "run"
}
extension JournalEntry: FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "journal"
    public mutating func didInsert(_ inserted: InsertionSuccess) { seq = inserted.rowID }
}
extension RunSignal: FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "signal"
    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
extension RunStatus: DatabaseValueConvertible {}
extension EntryKind: DatabaseValueConvertible {}
extension SignalKind: DatabaseValueConvertible {}

/// Where workflow runs live: runs, their journals, and signals. SQLite (`SQLiteWorkflowStore`) by default; the
/// in-memory twin (`MemoryWorkflowStore`) serves unit tests of the engine's logic.
public protocol WorkflowStore: Sendable {
    /// Creates `run` with its first journal entries and the audit entries for `audit` in one transaction — unless a
    /// run with the same idempotency key exists, which is returned instead (`created` false, nothing written).
    func create(_ run: RunRecord, entries: [JournalEntry], audit: [AuditEvent]) async throws -> (run: RunRecord, created: Bool)
    /// Appends `entries` to `run`'s journal, applies `update`, marks `consumed` signals and chains `audit` (the
    /// credentials the transition hands out), in one durable transaction.
    func append(run: String, _ entries: [JournalEntry], update: RunUpdate?, consumed: [Int64], audit: [AuditEvent]) async throws
    func journal(run: String) async throws -> [JournalEntry]
    /// The entries of `run`'s journal after sequence number `after`, oldest first, at most `limit` (a live stream
    /// reads only what is new).
    func journal(run: String, after: Int64, limit: Int) async throws -> [JournalEntry]
    func run(id: String) async throws -> RunRecord?
    /// Runs, newest first; `statuses` filters.
    func runs(statuses: [RunStatus]?, limit: Int) async throws -> [RunRecord]
    /// Makes `owner` the driver of `run` if nobody drives it or its driver is gone (`isGone(owner)`); true when it
    /// now is.
    func claim(run: String, owner: String, isGone: @escaping @Sendable (String) -> Bool) async throws -> Bool
    func release(run: String, owner: String) async throws
    /// Records `signal` with the audit entries for `audit` in one transaction.
    func signal(_ signal: RunSignal, audit: [AuditEvent]) async throws
    func pendingSignals(run: String) async throws -> [RunSignal]
}

extension WorkflowStore {
    public func create(_ run: RunRecord, entries: [JournalEntry]) async throws -> (run: RunRecord, created: Bool) {
        try await create(run, entries: entries, audit: [])
    }
    public func signal(_ signal: RunSignal) async throws { try await self.signal(signal, audit: []) }
    public func append(run: String, _ entries: [JournalEntry], update: RunUpdate?, consumed: [Int64]) async throws {
        try await append(run: run, entries, update: update, consumed: consumed, audit: [])
    }
    public func append(run: String, _ entries: [JournalEntry], update: RunUpdate? = nil) async throws {
        try await append(run: run, entries, update: update, consumed: [], audit: [])
    }
}

/// The SQLite workflow store (GRDB, WAL, `synchronous = FULL`: a commit survives a power cut). Concurrent appends
/// are committed together (group commit): each caller still returns only after its entries are on disk, and many
/// runs share one fsync.
public final class SQLiteWorkflowStore: ControlStore {
    let db: DatabasePool
    public let path: String
    let committer: GroupCommitter

    public init(path: String) throws {
        self.path = path
        db = try SQLiteDatabase.open(path: path, what: "workflow store", synchronous: .full, busyTimeout: 30) { migrator in
            migrator.registerMigration("v1-workflows") { db in
                try db.create(table: RunRecord.databaseTableName) { t in
                    t.primaryKey("id", .text)
                    t.column("workflow", .text).notNull()
                    t.column("file", .text).notNull()
                    t.column("definition", .text).notNull()
                    t.column("inputs", .text).notNull()
                    t.column("idempotencyKey", .text).unique()
                    t.column("parent", .text)
                    t.column("status", .text).notNull().indexed()
                    t.column("outputs", .text)
                    t.column("error", .text)
                    t.column("owner", .text)
                    t.column("createdAt", .datetime).notNull().indexed()
                    t.column("updatedAt", .datetime).notNull()
                }
                try db.create(table: JournalEntry.databaseTableName) { t in
                    t.autoIncrementedPrimaryKey("seq")
                    t.column("run", .text).notNull().indexed()
                    t.column("type", .text).notNull()
                    t.column("step", .text)
                    t.column("item", .integer)
                    t.column("attempt", .integer)
                    t.column("data", .text).notNull()
                    t.column("at", .datetime).notNull()
                }
                try db.create(table: RunSignal.databaseTableName) { t in
                    t.autoIncrementedPrimaryKey("id")
                    t.column("run", .text).notNull().indexed()
                    t.column("kind", .text).notNull()
                    t.column("step", .text)
                    t.column("by", .text)
                    t.column("comment", .text)
                    t.column("at", .datetime).notNull()
                    t.column("consumed", .boolean).notNull()
                }
            }
            Self.registerControlMigrations(&migrator)
            Self.registerTriggerMigrations(&migrator)
            Self.registerFindingsMigrations(&migrator)
        }
        committer = GroupCommitter(db: db)
    }

    func wrap<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as StateError { throw e } catch { throw StateError("workflow store \(path): \(error)") }
    }

    public func create(_ run: RunRecord, entries: [JournalEntry], audit: [AuditEvent]) async throws -> (run: RunRecord, created: Bool) {
        try await wrap {
            try await committer.submit { db in
                if let key = run.idempotencyKey,
                    let existing = try RunRecord.fetchOne(try db.cachedStatement(sql: "SELECT * FROM run WHERE idempotencyKey = ?"), arguments: [key])
                {
                    return (existing, false)
                }
                try run.insert(db)
                try Self.insert(entries, db)
                try Self.appendAudit(audit, db)
                return (run, true)
            }
        }
    }

    public func append(run: String, _ entries: [JournalEntry], update: RunUpdate?, consumed: [Int64], audit: [AuditEvent]) async throws {
        try await wrap {
            try await committer.submit { db in
                try Self.insert(entries, db)
                if let update {
                    try db.cachedStatement(
                        sql: "UPDATE run SET status = ?, outputs = coalesce(?, outputs), error = coalesce(?, error), updatedAt = ? WHERE id = ?"
                    ).execute(arguments: [update.status, update.outputs, update.error, Date(), run])
                }
                if !consumed.isEmpty {
                    try db.execute(
                        sql: "UPDATE signal SET consumed = 1 WHERE id IN (\(consumed.map { _ in "?" }.joined(separator: ",")))",
                        arguments: StatementArguments(consumed))
                }
                try Self.appendAudit(audit, db)
            }
        }
    }

    /// Journal entries through one prepared statement (the hot path of every transition).
    static func insert(_ entries: [JournalEntry], _ db: Database) throws {
        guard !entries.isEmpty else { return }
        let statement = try db.cachedStatement(sql: "INSERT INTO journal (run, type, step, item, attempt, data, at) VALUES (?, ?, ?, ?, ?, ?, ?)")
        for e in entries { try statement.execute(arguments: [e.run, e.type, e.step, e.item, e.attempt, e.data, e.at]) }
    }

    public func journal(run: String) async throws -> [JournalEntry] {
        try await wrap {
            try await db.read {
                try JournalEntry.fetchAll(try $0.cachedStatement(sql: "SELECT * FROM journal WHERE run = ? ORDER BY seq"), arguments: [run])
            }
        }
    }

    public func journal(run: String, after: Int64, limit: Int) async throws -> [JournalEntry] {
        try await wrap {
            try await db.read {
                try JournalEntry.fetchAll(
                    try $0.cachedStatement(sql: "SELECT * FROM journal WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?"),
                    arguments: [run, after, limit])
            }
        }
    }

    public func run(id: String) async throws -> RunRecord? {
        try await wrap {
            try await db.read { try RunRecord.fetchOne(try $0.cachedStatement(sql: "SELECT * FROM run WHERE id = ?"), arguments: [id]) }
        }
    }

    public func runs(statuses: [RunStatus]?, limit: Int) async throws -> [RunRecord] {
        try await wrap {
            try await db.read { db in
                var q = RunRecord.order(Column("createdAt").desc, Column("id").desc)
                if let statuses { q = q.filter(statuses.contains(Column("status"))) }
                return try q.limit(limit).fetchAll(db)
            }
        }
    }

    public func claim(run: String, owner: String, isGone: @escaping @Sendable (String) -> Bool) async throws -> Bool {
        try await wrap {
            try await committer.submit { db in
                guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT owner FROM run WHERE id = ?"), arguments: [run]) else {
                    return false
                }
                if let current: String = row["owner"], current != owner, !isGone(current) { return false }
                try db.cachedStatement(sql: "UPDATE run SET owner = ? WHERE id = ?").execute(arguments: [owner, run])
                return true
            }
        }
    }

    public func release(run: String, owner: String) async throws {
        try await wrap {
            try await db.write { try $0.execute(sql: "UPDATE run SET owner = NULL WHERE id = ? AND owner = ?", arguments: [run, owner]) }
        }
    }

    public func signal(_ signal: RunSignal, audit: [AuditEvent]) async throws {
        try await wrap {
            try await committer.submit { db in
                var s = signal
                try s.insert(db)
                try Self.appendAudit(audit, db)
            }
        }
    }

    public func pendingSignals(run: String) async throws -> [RunSignal] {
        try await wrap {
            try await db.read {
                try RunSignal.fetchAll(
                    try $0.cachedStatement(sql: "SELECT * FROM signal WHERE run = ? AND consumed = 0 ORDER BY id"), arguments: [run])
            }
        }
    }

    /// SQLite's own consistency check of the file ("ok" when sound).
    public func integrityCheck() throws -> String {
        try db.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") ?? "" }
    }
}

/// Commits the writes submitted while the previous commit was on its way in one transaction. Each write runs in
/// its own savepoint, so one failing write fails alone.
final class GroupCommitter: Sendable {
    struct Job: Sendable {
        /// Runs the write; returns what to do once the transaction committed (nil) or failed.
        var run: @Sendable (Database) -> @Sendable (Error?) -> Void
        var fail: @Sendable (Error) -> Void
    }
    let db: DatabasePool
    let state = Mutex<(jobs: [Job], writing: Bool)>(([], false))
    let queue = DispatchQueue(label: "warden.workflow-store.commit")

    init(db: DatabasePool) { self.db = db }

    func submit<T: Sendable>(_ op: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, Error>) in
            let run: @Sendable (Database) -> @Sendable (Error?) -> Void = { db in
                let result: Result<T, Error>
                do {
                    var out: T?
                    try db.inSavepoint {
                        out = try op(db)
                        return .commit
                    }
                    result = .success(out!)
                } catch {
                    result = .failure(error)
                }
                return { commitError in
                    if let commitError { c.resume(throwing: commitError) } else { c.resume(with: result) }
                }
            }
            let job = Job(run: run, fail: { c.resume(throwing: $0) })
            let start = state.withLock { s in
                s.jobs.append(job)
                if s.writing { return false }
                s.writing = true
                return true
            }
            if start { queue.async { self.drain() } }
        }
    }

    func drain() {
        while true {
            let jobs = state.withLock { s in
                let jobs = s.jobs
                s.jobs = []
                if jobs.isEmpty { s.writing = false }
                return jobs
            }
            if jobs.isEmpty { return }
            var completions: [@Sendable (Error?) -> Void] = []
            do {
                try db.write { db in
                    completions = jobs.map { $0.run(db) }
                }
                for c in completions { c(nil) }
            } catch {
                if completions.count == jobs.count {
                    for c in completions { c(error) }
                } else {
                    // The transaction did not start: every write fails with the reason.
                    for job in jobs { job.fail(error) }
                }
            }
        }
    }
}

/// The in-memory twin of `SQLiteWorkflowStore` for unit tests of the engine's logic.
public actor MemoryWorkflowStore: ControlStore {
    var records: [String: RunRecord] = [:]
    var control = MemoryControlState()
    var triggers = MemoryTriggerState()
    var findings = MemoryFindingsState()
    var entries: [String: [JournalEntry]] = [:]
    var signals: [RunSignal] = []
    var seq: Int64 = 0

    public init() {}

    public func create(_ run: RunRecord, entries new: [JournalEntry], audit: [AuditEvent]) async throws -> (run: RunRecord, created: Bool) {
        if let key = run.idempotencyKey, let existing = records.values.first(where: { $0.idempotencyKey == key }) { return (existing, false) }
        guard records[run.id] == nil else { throw StateError(.conflict, "run \(run.id) exists") }
        records[run.id] = run
        entries[run.id] = []
        add(new, to: run.id)
        control.append(audit)
        return (run, true)
    }

    func add(_ new: [JournalEntry], to run: String) {
        for var e in new {
            seq += 1
            e.seq = seq
            entries[run, default: []].append(e)
        }
    }

    public func append(run: String, _ new: [JournalEntry], update: RunUpdate?, consumed: [Int64], audit: [AuditEvent]) async throws {
        add(new, to: run)
        control.append(audit)
        if let update, var r = records[run] {
            r.status = update.status
            r.outputs = update.outputs ?? r.outputs
            r.error = update.error ?? r.error
            r.updatedAt = Date()
            records[run] = r
        }
        for i in signals.indices where consumed.contains(signals[i].id ?? -1) { signals[i].consumed = true }
    }

    public func journal(run: String) async throws -> [JournalEntry] { entries[run] ?? [] }
    public func journal(run: String, after: Int64, limit: Int) async throws -> [JournalEntry] {
        Array((entries[run] ?? []).filter { ($0.seq ?? 0) > after }.prefix(limit))
    }
    public func run(id: String) async throws -> RunRecord? { records[id] }

    public func runs(statuses: [RunStatus]?, limit: Int) async throws -> [RunRecord] {
        Array(
            records.values.filter { statuses?.contains($0.status) ?? true }.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }.prefix(limit))
    }

    public func claim(run: String, owner: String, isGone: @escaping @Sendable (String) -> Bool) async throws -> Bool {
        guard var r = records[run] else { return false }
        if let current = r.owner, current != owner, !isGone(current) { return false }
        r.owner = owner
        records[run] = r
        return true
    }

    public func release(run: String, owner: String) async throws {
        if records[run]?.owner == owner { records[run]?.owner = nil }
    }

    public func signal(_ signal: RunSignal, audit: [AuditEvent]) async throws {
        var s = signal
        seq += 1
        s.id = seq
        signals.append(s)
        control.append(audit)
    }

    public func pendingSignals(run: String) async throws -> [RunSignal] { signals.filter { $0.run == run && !$0.consumed } }
}
