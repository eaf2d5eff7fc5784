import Foundation
import GRDB

// The SQLite implementation of `ControlStore`: the control tables live in the workflow store's file, and every change
// goes through its group committer with its audit entries in the same savepoint.

extension WorkspaceRecord: FetchableRecord, PersistableRecord { public static let databaseTableName = "workspace" }
extension RoleBinding: FetchableRecord, PersistableRecord { public static let databaseTableName = "roleBinding" }
extension TokenRecord: FetchableRecord, PersistableRecord { public static let databaseTableName = "token" }
extension CatalogEntry: FetchableRecord, PersistableRecord { public static let databaseTableName = "catalog" }
extension IdempotencyRecord: FetchableRecord, PersistableRecord { public static let databaseTableName = "idempotency" }
extension AuditEntry: FetchableRecord, PersistableRecord { public static let databaseTableName = "audit" }
extension AuditCheckpoint: FetchableRecord, PersistableRecord { public static let databaseTableName = "auditCheckpoint" }

extension SQLiteWorkflowStore {
    static func registerControlMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v2-control") { db in
            try db.alter(table: RunRecord.databaseTableName) { t in
                t.add(column: "workspace", .text).notNull().defaults(to: RunRecord.defaultWorkspace)
                t.add(column: "labels", .text).notNull().defaults(to: "{}")
            }
            try db.create(index: "run_workspace_created", on: "run", columns: ["workspace", "createdAt", "id"])
            try db.create(table: WorkspaceRecord.databaseTableName) { t in
                t.primaryKey("name", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("createdBy", .text).notNull()
            }
            try db.create(table: RoleBinding.databaseTableName) { t in
                t.column("workspace", .text).notNull()
                t.column("principal", .text).notNull().indexed()
                t.column("role", .text).notNull()
                t.primaryKey(["workspace", "principal"])
            }
            try db.create(table: TokenRecord.databaseTableName) { t in
                t.primaryKey("id", .text)
                t.column("name", .text).notNull()
                t.column("subject", .text).notNull()
                t.column("hash", .text).notNull().unique()
                t.column("createdAt", .datetime).notNull()
                t.column("createdBy", .text).notNull()
                t.column("expiresAt", .datetime)
                t.column("revokedAt", .datetime)
            }
            try db.create(table: CatalogEntry.databaseTableName) { t in
                t.column("workspace", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("name", .text).notNull()
                t.column("version", .integer).notNull()
                t.column("digest", .text).notNull()
                t.column("content", .text).notNull()
                t.column("deprecated", .boolean).notNull()
                t.column("createdAt", .datetime).notNull()
                t.column("createdBy", .text).notNull()
                t.primaryKey(["workspace", "kind", "name", "version"])
            }
            try db.create(index: "catalog_digest", on: "catalog", columns: ["workspace", "kind", "name", "digest"])
            try db.create(table: IdempotencyRecord.databaseTableName) { t in
                t.column("scope", .text).notNull()
                t.column("key", .text).notNull()
                t.column("fingerprint", .text).notNull()
                t.column("status", .integer)
                t.column("headers", .text)
                t.column("body", .blob)
                t.column("createdAt", .datetime).notNull()
                t.column("expiresAt", .datetime).notNull().indexed()
                t.primaryKey(["scope", "key"])
            }
            try db.create(table: AuditEntry.databaseTableName) { t in
                t.primaryKey("seq", .integer)
                t.column("atMillis", .integer).notNull().indexed()
                t.column("actor", .text).notNull().indexed()
                t.column("action", .text).notNull().indexed()
                t.column("subject", .text).notNull().indexed()
                t.column("workspace", .text).indexed()
                t.column("decision", .text)
                t.column("requestID", .text)
                t.column("details", .text).notNull()
                t.column("previous", .text).notNull()
                t.column("hash", .text).notNull()
            }
            // The log is append-only through SQL: an edit has to remove these first (and the chain shows it).
            try db.execute(
                sql: """
                    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
                    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
                    """)
            try db.create(table: AuditCheckpoint.databaseTableName) { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("count", .integer).notNull()
                t.column("head", .text).notNull()
                t.column("at", .datetime).notNull()
                t.column("keyID", .text).notNull()
                t.column("signature", .text).notNull()
            }
        }
    }

    /// Chains `events` after the log's head, inside the caller's transaction.
    @discardableResult
    static func appendAudit(_ events: [AuditEvent], _ db: Database) throws -> [AuditEntry] {
        guard !events.isEmpty else { return [] }
        var (seq, head): (Int64, String) = (0, AuditEntry.genesis)
        if let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")) {
            seq = row["seq"]
            head = row["hash"]
        }
        let insert = try db.cachedStatement(
            sql:
                "INSERT INTO audit (seq, atMillis, actor, action, subject, workspace, decision, requestID, details, previous, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        var out: [AuditEntry] = []
        for e in events {
            seq += 1
            let entry = AuditEntry(seq: seq, event: e, previous: head)
            try insert.execute(arguments: [
                entry.seq, entry.atMillis, entry.actor, entry.action, entry.subject, entry.workspace, entry.decision, entry.requestID, entry.details,
                entry.previous, entry.hash,
            ])
            head = entry.hash
            out.append(entry)
        }
        return out
    }

    func write<T: Sendable>(_ op: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await wrap { try await committer.submit(op) }
    }
    func read<T: Sendable>(_ op: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await wrap { try await db.read(op) }
    }

    public func createWorkspace(_ workspace: WorkspaceRecord, audit: [AuditEvent]) async throws -> Bool {
        try await write { db in
            guard try WorkspaceRecord.fetchOne(db, key: workspace.name) == nil else { return false }
            try workspace.insert(db)
            try Self.appendAudit(audit, db)
            return true
        }
    }

    public func workspaces() async throws -> [WorkspaceRecord] {
        try await read { try WorkspaceRecord.order(Column("name")).fetchAll($0) }
    }

    public func workspace(_ name: String) async throws -> WorkspaceRecord? {
        try await read { try WorkspaceRecord.fetchOne($0, key: name) }
    }

    public func bind(_ binding: RoleBinding, audit: [AuditEvent]) async throws {
        try await write { db in
            try binding.save(db)
            try Self.appendAudit(audit, db)
        }
    }

    public func unbind(workspace: String, principal: String, audit: [AuditEvent]) async throws -> Bool {
        try await write { db in
            let deleted = try RoleBinding.deleteOne(db, key: ["workspace": workspace, "principal": principal])
            if deleted { try Self.appendAudit(audit, db) }
            return deleted
        }
    }

    public func bindings(workspace: String?) async throws -> [RoleBinding] {
        try await read { db in
            var q = RoleBinding.order(Column("workspace"), Column("principal"))
            if let workspace { q = q.filter(Column("workspace") == workspace) }
            return try q.fetchAll(db)
        }
    }

    public func bindings(principals: [String]) async throws -> [RoleBinding] {
        try await read { db in
            try RoleBinding.filter(principals.contains(Column("principal"))).order(Column("workspace"), Column("principal")).fetchAll(db)
        }
    }

    public func createToken(_ token: TokenRecord, bindings: [RoleBinding], audit: [AuditEvent]) async throws {
        try await write { db in
            try token.insert(db)
            for b in bindings { try b.save(db) }
            try Self.appendAudit(audit, db)
        }
    }

    public func token(hash: String) async throws -> TokenRecord? {
        try await read { try TokenRecord.fetchOne(try $0.cachedStatement(sql: "SELECT * FROM token WHERE hash = ?"), arguments: [hash]) }
    }

    public func tokens() async throws -> [TokenRecord] {
        try await read { try TokenRecord.order(Column("createdAt"), Column("id")).fetchAll($0) }
    }

    public func revokeToken(id: String, at: Date, audit: [AuditEvent]) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "UPDATE token SET revokedAt = ? WHERE id = ? AND revokedAt IS NULL", arguments: [at, id])
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(audit, db)
            return true
        }
    }

    public func publish(_ entry: CatalogEntry, audit: [AuditEvent]) async throws -> (entry: CatalogEntry, created: Bool) {
        try await write { db in
            let filter = CatalogEntry.filter(Column("workspace") == entry.workspace && Column("kind") == entry.kind && Column("name") == entry.name)
            if let existing = try filter.filter(Column("digest") == entry.digest).order(Column("version")).fetchOne(db) {
                try Self.appendAudit(audit, db)
                return (existing, false)
            }
            var e = entry
            e.version = (try Int.fetchOne(db, filter.select(max(Column("version")))) ?? 0) + 1
            try e.insert(db)
            try Self.appendAudit(audit, db)
            return (e, true)
        }
    }

    public func catalog(workspace: String, kind: String, name: String?) async throws -> [CatalogEntry] {
        try await read { db in
            if let name {
                return try CatalogEntry.filter(Column("workspace") == workspace && Column("kind") == kind && Column("name") == name)
                    .order(Column("version")).fetchAll(db)
            }
            return try CatalogEntry.fetchAll(
                db,
                sql: """
                    SELECT c.* FROM catalog c JOIN (SELECT name, max(version) AS v FROM catalog WHERE workspace = ? AND kind = ? GROUP BY name) l
                    ON c.name = l.name AND c.version = l.v WHERE c.workspace = ? AND c.kind = ? ORDER BY c.name
                    """, arguments: [workspace, kind, workspace, kind])
        }
    }

    public func catalogEntry(workspace: String, kind: String, name: String, version: Int) async throws -> CatalogEntry? {
        try await read { db in
            try CatalogEntry.fetchOne(db, key: ["workspace": workspace, "kind": kind, "name": name, "version": version])
        }
    }

    public func deprecate(workspace: String, kind: String, name: String, version: Int, audit: [AuditEvent]) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE catalog SET deprecated = 1 WHERE workspace = ? AND kind = ? AND name = ? AND version = ?",
                arguments: [workspace, kind, name, version])
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(audit, db)
            return true
        }
    }

    public func claimIdempotency(scope: String, key: String, fingerprint: String, now: Date, ttl: TimeInterval) async throws -> IdempotencyClaim {
        try await write { db in
            if let r = try IdempotencyRecord.fetchOne(db, key: ["scope": scope, "key": key]), r.expiresAt > now {
                if r.fingerprint != fingerprint { return .mismatch }
                return r.status == nil ? .inFlight : .replay(r)
            }
            try IdempotencyRecord(scope: scope, key: key, fingerprint: fingerprint, createdAt: now, expiresAt: now.addingTimeInterval(ttl)).save(db)
            return .claimed
        }
    }

    public func completeIdempotency(scope: String, key: String, status: Int, headers: String, body: Data) async throws {
        try await write { db in
            try db.execute(
                sql: "UPDATE idempotency SET status = ?, headers = ?, body = ? WHERE scope = ? AND key = ?",
                arguments: [status, headers, body, scope, key])
        }
    }

    public func abandonIdempotency(scope: String, key: String) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM idempotency WHERE scope = ? AND key = ? AND status IS NULL", arguments: [scope, key])
        }
    }

    public func purgeIdempotency(now: Date) async throws -> Int {
        try await write { db in
            try db.execute(sql: "DELETE FROM idempotency WHERE expiresAt <= ?", arguments: [now])
            return db.changesCount
        }
    }

    @discardableResult
    public func appendAudit(_ events: [AuditEvent]) async throws -> [AuditEntry] {
        try await write { db in try Self.appendAudit(events, db) }
    }

    public func auditEntries(_ query: AuditQuery) async throws -> [AuditEntry] {
        try await read { db in
            var q = AuditEntry.order(Column("seq").desc)
            if let v = query.actor { q = q.filter(Column("actor") == v) }
            if let v = query.action { q = q.filter(Column("action") == v) }
            if let v = query.subject { q = q.filter(Column("subject") == v) }
            if let v = query.workspace { q = q.filter(Column("workspace") == v) }
            if let v = query.since { q = q.filter(Column("atMillis") >= Int64((v.timeIntervalSince1970 * 1000).rounded(.down))) }
            if let v = query.until { q = q.filter(Column("atMillis") < Int64((v.timeIntervalSince1970 * 1000).rounded(.up))) }
            if let v = query.before { q = q.filter(Column("seq") < v) }
            return try q.limit(query.limit).fetchAll(db)
        }
    }

    public func auditChain(from: Int64, limit: Int) async throws -> [AuditEntry] {
        try await read { db in
            try AuditEntry.filter(Column("seq") >= from).order(Column("seq")).limit(limit).fetchAll(db)
        }
    }

    public func auditCount() async throws -> Int64 {
        try await read { try Int64.fetchOne($0, sql: "SELECT count(*) FROM audit") ?? 0 }
    }

    public func addCheckpoint(_ checkpoint: AuditCheckpoint) async throws {
        try await write { db in try checkpoint.insert(db) }
    }

    public func checkpoints() async throws -> [AuditCheckpoint] {
        try await read { try AuditCheckpoint.order(Column("id")).fetchAll($0) }
    }

    public func runs(_ query: RunQuery) async throws -> [RunRecord] {
        try await read { db in
            var clauses: [String] = []
            var args: [(any DatabaseValueConvertible)?] = []
            if let v = query.workspace {
                clauses.append("workspace = ?")
                args.append(v)
            }
            if let v = query.statuses {
                clauses.append("status IN (\(v.map { _ in "?" }.joined(separator: ",")))")
                args += v.map { $0 }
            }
            if let v = query.workflow {
                clauses.append("workflow = ?")
                args.append(v)
            }
            if let v = query.createdAfter {
                clauses.append("createdAt > ?")
                args.append(v)
            }
            if let v = query.createdBefore {
                clauses.append("createdAt < ?")
                args.append(v)
            }
            if let label = query.label {
                clauses.append("json_extract(labels, ?) = ?")
                args += ["$.\"" + label.key.replacingOccurrences(of: "\"", with: "") + "\"", label.value]
            }
            if let after = query.after {
                clauses.append("(createdAt, id) < (?, ?)")
                args += [after.createdAt, after.id]
            }
            let sql =
                // Every column but the definition, which no list shows (a run's page reads it with the run).
                "SELECT id, workflow, file, '' AS definition, inputs, idempotencyKey, parent, status, outputs, error, owner, createdAt, updatedAt, workspace, labels FROM run"
                + (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "))
                + " ORDER BY createdAt DESC, id DESC LIMIT ?"
            args.append(query.limit)
            return try RunRecord.fetchAll(try db.cachedStatement(sql: sql), arguments: StatementArguments(args))
        }
    }
}
