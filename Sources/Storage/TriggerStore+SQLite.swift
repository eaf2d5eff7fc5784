import Foundation
import GRDB

// The SQLite implementation of `TriggerStore`: its tables live in the workflow store's file and every change goes
// through the group committer with its audit entries in the same savepoint.

extension EventRecord: FetchableRecord, PersistableRecord { public static let databaseTableName = "triggerEvent" }
extension DispatchRecord: FetchableRecord, PersistableRecord { public static let databaseTableName = "dispatch" }
extension DispatchRecord.Status: DatabaseValueConvertible {}

extension SQLiteWorkflowStore {
    static func registerTriggerMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3-triggers") { db in
            try db.create(table: EventRecord.databaseTableName) { t in
                t.primaryKey("id", .text)
                t.column("receiver", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("subject", .text).notNull()
                t.column("event", .text).notNull()
                t.column("receivedAt", .datetime).notNull()
            }
            try db.create(index: "triggerEvent_received", on: "triggerEvent", columns: ["receivedAt"])
            try db.create(table: DispatchRecord.databaseTableName) { t in
                t.primaryKey("key", .text)
                t.column("workspace", .text).notNull()
                t.column("trigger", .text).notNull()
                t.column("event", .text).notNull()
                t.column("generation", .integer).notNull()
                t.column("status", .text).notNull()
                t.column("attempts", .integer).notNull()
                t.column("nextAttemptAt", .datetime).notNull()
                t.column("run", .text)
                t.column("error", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
                t.uniqueKey(["workspace", "trigger", "event", "generation"])
            }
            try db.create(index: "dispatch_due", on: "dispatch", columns: ["status", "nextAttemptAt"])
            try db.create(index: "dispatch_created", on: "dispatch", columns: ["createdAt", "key"])
            try db.create(table: "lease") { t in
                t.primaryKey("name", .text)
                t.column("holder", .text).notNull()
                t.column("epoch", .integer).notNull()
                t.column("expiresAt", .double).notNull()
            }
            try db.create(table: "scheduleFire") { t in
                t.column("trigger", .text).notNull()
                t.column("planned", .double).notNull()
                t.column("epoch", .integer).notNull()
                t.primaryKey(["trigger", "planned"])
            }
            try db.create(table: "pollCursor") { t in
                t.column("trigger", .text).notNull()
                t.column("tag", .text).notNull()
                t.column("digest", .text).notNull()
                t.primaryKey(["trigger", "tag"])
            }
        }
    }

    /// Records the event and the dispatches it makes, inside the caller's transaction.
    static func record(_ event: EventRecord, _ targets: [DispatchTarget], now: Date, audit: [AuditEvent], _ db: Database) throws
        -> [DispatchDecision]
    {
        try db.cachedStatement(
            sql: "INSERT OR IGNORE INTO triggerEvent (id, receiver, kind, subject, event, receivedAt) VALUES (?, ?, ?, ?, ?, ?)"
        ).execute(arguments: [event.id, event.receiver, event.kind, event.subject, event.event, event.receivedAt])
        let latest = try db.cachedStatement(
            sql: "SELECT * FROM dispatch WHERE workspace = ? AND trigger = ? AND event = ? ORDER BY generation DESC LIMIT 1")
        var out: [DispatchDecision] = []
        for t in targets {
            let last = try DispatchRecord.fetchOne(latest, arguments: [t.workspace, t.trigger, event.id])
            if let last, now.timeIntervalSince(last.createdAt) < t.window {
                out.append(.duplicate(last))
                continue
            }
            let d = DispatchRecord(workspace: t.workspace, trigger: t.trigger, event: event.id, generation: (last?.generation ?? 0) + 1, at: now)
            try d.insert(db)
            out.append(.created(d))
        }
        try appendAudit(audit, db)
        return out
    }

    public func record(event: EventRecord, targets: [DispatchTarget], now: Date, audit: [AuditEvent]) async throws -> [DispatchDecision] {
        try await write { db in try Self.record(event, targets, now: now, audit: audit, db) }
    }

    public func dueDispatches(now: Date, limit: Int) async throws -> [DispatchRecord] {
        try await read { db in
            try DispatchRecord.fetchAll(
                try db.cachedStatement(sql: "SELECT * FROM dispatch WHERE status = 'pending' AND nextAttemptAt <= ? ORDER BY nextAttemptAt LIMIT ?"),
                arguments: [now, limit])
        }
    }

    public func completeDispatch(key: String, run: String, at: Date, audit: [AuditEvent]) async throws {
        try await write { db in
            try db.cachedStatement(
                sql: "UPDATE dispatch SET status = 'dispatched', run = ?, attempts = attempts + 1, error = NULL, updatedAt = ? WHERE key = ?"
            ).execute(arguments: [run, at, key])
            try Self.appendAudit(audit, db)
        }
    }

    public func failDispatch(key: String, error: String, retryAt: Date?, at: Date, audit: [AuditEvent]) async throws {
        try await write { db in
            try db.cachedStatement(
                sql:
                    "UPDATE dispatch SET status = ?, attempts = attempts + 1, error = ?, nextAttemptAt = coalesce(?, nextAttemptAt), updatedAt = ? WHERE key = ? AND status = 'pending'"
            ).execute(arguments: [retryAt == nil ? "dead" : "pending", error, retryAt, at, key])
            try Self.appendAudit(audit, db)
        }
    }

    public func dispatch(key: String) async throws -> DispatchRecord? {
        try await read { try DispatchRecord.fetchOne($0, key: key) }
    }

    public func dispatches(_ query: DispatchQuery) async throws -> [DispatchRecord] {
        try await read { db in
            var q = DispatchRecord.all()
            if let s = query.statuses { q = q.filter(s.map(\.rawValue).contains(Column("status"))) }
            if let w = query.workspace { q = q.filter(Column("workspace") == w) }
            if let t = query.trigger { q = q.filter(Column("trigger") == t) }
            if let before = query.before, let b = try DispatchRecord.fetchOne(db, key: before) {
                q = q.filter(Column("createdAt") < b.createdAt || (Column("createdAt") == b.createdAt && Column("key") < b.key))
            }
            return try q.order(Column("createdAt").desc, Column("key").desc).limit(query.limit).fetchAll(db)
        }
    }

    public func dispatchCount(status: DispatchRecord.Status) async throws -> Int {
        try await read { try DispatchRecord.filter(Column("status") == status.rawValue).fetchCount($0) }
    }

    public func replayDispatch(key: String, at: Date, audit: [AuditEvent]) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE dispatch SET status = 'pending', attempts = 0, nextAttemptAt = ?, updatedAt = ? WHERE key = ? AND status = 'dead'",
                arguments: [at, at, key])
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(audit, db)
            return true
        }
    }

    public func discardDispatch(key: String, at: Date, audit: [AuditEvent]) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE dispatch SET status = 'discarded', updatedAt = ? WHERE key = ? AND status = 'dead'", arguments: [at, key])
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(audit, db)
            return true
        }
    }

    public func event(id: String) async throws -> EventRecord? {
        try await read { try EventRecord.fetchOne($0, key: id) }
    }

    public func events(receiver: String?, before: (receivedAt: Date, id: String)?, limit: Int) async throws -> [EventRecord] {
        try await read { db in
            var q = EventRecord.all()
            if let receiver { q = q.filter(Column("receiver") == receiver) }
            if let before { q = q.filter(sql: "(receivedAt, id) < (?, ?)", arguments: [before.receivedAt, before.id]) }
            return try q.order(Column("receivedAt").desc, Column("id").desc).limit(limit).fetchAll(db)
        }
    }

    /// The epoch `holder` holds lease `name` under at `now`, renewing or taking it, inside the caller's transaction.
    static func acquire(_ name: String, _ holder: String, ttl: TimeInterval, now: Date, _ db: Database) throws -> Int64? {
        let t = now.timeIntervalSince1970
        if let row = try Row.fetchOne(db, sql: "SELECT holder, epoch, expiresAt FROM lease WHERE name = ?", arguments: [name]) {
            let current: String = row["holder"]
            let epoch: Int64 = row["epoch"]
            let expires: Double = row["expiresAt"]
            if current == holder && expires > t {
                try db.execute(sql: "UPDATE lease SET expiresAt = ? WHERE name = ?", arguments: [t + ttl, name])
                return epoch
            }
            guard expires <= t else { return nil }
            try db.execute(
                sql: "UPDATE lease SET holder = ?, epoch = ?, expiresAt = ? WHERE name = ?", arguments: [holder, epoch + 1, t + ttl, name])
            return epoch + 1
        }
        try db.execute(sql: "INSERT INTO lease (name, holder, epoch, expiresAt) VALUES (?, ?, 1, ?)", arguments: [name, holder, t + ttl])
        return 1
    }

    /// Fencing: lease `name` is still `holder`'s, under `epoch`, and live at `now`.
    static func holds(_ name: String, _ holder: String, _ epoch: Int64, now: Date, _ db: Database) throws -> Bool {
        guard let row = try Row.fetchOne(db, sql: "SELECT holder, epoch, expiresAt FROM lease WHERE name = ?", arguments: [name]) else {
            return false
        }
        return row["holder"] as String == holder && row["epoch"] as Int64 == epoch && row["expiresAt"] as Double > now.timeIntervalSince1970
    }

    public func acquireLease(name: String, holder: String, ttl: TimeInterval, now: Date) async throws -> Int64? {
        try await write { db in try Self.acquire(name, holder, ttl: ttl, now: now, db) }
    }

    public func releaseLease(name: String, holder: String) async throws {
        try await write { db in
            try db.execute(sql: "UPDATE lease SET expiresAt = 0 WHERE name = ? AND holder = ?", arguments: [name, holder])
        }
    }

    public func recordFire(
        trigger: String, planned: Date, lease: String, holder: String, epoch: Int64, now: Date, event: EventRecord, targets: [DispatchTarget],
        audit: [AuditEvent]
    ) async throws -> [DispatchDecision]? {
        try await write { db in
            guard try Self.holds(lease, holder, epoch, now: now, db) else { return nil }
            try db.execute(
                sql: "INSERT OR IGNORE INTO scheduleFire (trigger, planned, epoch) VALUES (?, ?, ?)",
                arguments: [trigger, planned.timeIntervalSince1970, epoch])
            guard db.changesCount > 0 else { return nil }
            return try Self.record(event, targets, now: now, audit: audit, db)
        }
    }

    public func lastFire(trigger: String) async throws -> Date? {
        try await read { db in
            try Double.fetchOne(db, sql: "SELECT max(planned) FROM scheduleFire WHERE trigger = ?", arguments: [trigger])
                .map { Date(timeIntervalSince1970: $0) }
        }
    }

    public func pollCursor(trigger: String) async throws -> [String: String] {
        try await read { db in
            var out: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT tag, digest FROM pollCursor WHERE trigger = ?", arguments: [trigger]) {
                out[row["tag"]] = row["digest"]
            }
            return out
        }
    }

    public func recordPoll(
        trigger: String, lease: String, holder: String, epoch: Int64, now: Date, events: [PolledEvent], cursor: [String: String?],
        audit: [AuditEvent]
    ) async throws -> [[DispatchDecision]]? {
        try await write { db in
            guard try Self.holds(lease, holder, epoch, now: now, db) else { return nil }
            var out: [[DispatchDecision]] = []
            for e in events { out.append(try Self.record(e.event, e.targets, now: now, audit: [], db)) }
            let upsert = try db.cachedStatement(
                sql: "INSERT INTO pollCursor (trigger, tag, digest) VALUES (?, ?, ?) ON CONFLICT(trigger, tag) DO UPDATE SET digest = excluded.digest"
            )
            let delete = try db.cachedStatement(sql: "DELETE FROM pollCursor WHERE trigger = ? AND tag = ?")
            for (key, value) in cursor {
                if let value { try upsert.execute(arguments: [trigger, key, value]) } else { try delete.execute(arguments: [trigger, key]) }
            }
            try Self.appendAudit(audit, db)
            return out
        }
    }

    public func deferDispatch(key: String, until: Date, at: Date) async throws {
        try await write { db in
            try db.execute(
                sql: "UPDATE dispatch SET nextAttemptAt = ?, updatedAt = ? WHERE key = ? AND status = 'pending'", arguments: [until, at, key])
        }
    }

    public func dispatchedCount(workspace: String, trigger: String, since: Date) async throws -> Int {
        try await read { db in
            try DispatchRecord.filter(
                Column("workspace") == workspace && Column("trigger") == trigger && Column("status") == "dispatched" && Column("updatedAt") >= since
            ).fetchCount(db)
        }
    }
}
