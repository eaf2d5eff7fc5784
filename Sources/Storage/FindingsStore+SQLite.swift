import Foundation
import GRDB

// The SQLite implementation of `FindingsStore`: its tables live in the workflow store's file, findings in a table
// without rowid keyed (artefact number, datasource, type, subject, id) — the page order — and times as seconds since
// the reference date (exact round trips). Every change goes through the group committer with its audit entries.

extension SQLiteWorkflowStore {
    static func registerFindingsMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v4-findings") { db in
            try db.execute(
                sql: """
                    CREATE TABLE artefact (
                        number INTEGER PRIMARY KEY AUTOINCREMENT, registry TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL,
                        component TEXT, componentVersion TEXT, tags TEXT NOT NULL, firstSeenAt REAL NOT NULL, inactiveSince REAL,
                        UNIQUE (registry, repository, digest));
                    CREATE INDEX artefact_component ON artefact (component, componentVersion);
                    CREATE TABLE finding (
                        artefact INTEGER NOT NULL, datasource TEXT NOT NULL, type TEXT NOT NULL, subject TEXT NOT NULL, dataID TEXT NOT NULL,
                        score REAL, summary TEXT NOT NULL, discoveredAt REAL NOT NULL, lastSeenAt REAL NOT NULL, resolvedAt REAL,
                        PRIMARY KEY (artefact, datasource, type, subject, dataID)) WITHOUT ROWID;
                    CREATE INDEX finding_data ON finding (type, dataID);
                    CREATE TABLE scan (
                        artefact INTEGER NOT NULL, datasource TEXT NOT NULL, scannedAt REAL NOT NULL, findings INTEGER NOT NULL, info TEXT,
                        PRIMARY KEY (artefact, datasource)) WITHOUT ROWID;
                    CREATE TABLE rescoring (
                        id TEXT PRIMARY KEY, type TEXT NOT NULL, subject TEXT NOT NULL, dataID TEXT NOT NULL, scope TEXT NOT NULL,
                        scopeValue TEXT NOT NULL, category TEXT NOT NULL, comment TEXT NOT NULL, user TEXT NOT NULL, createdAt REAL NOT NULL,
                        dueDate REAL, processingSeconds REAL, expiresAt REAL, freshClock INTEGER NOT NULL, expiryAudited INTEGER NOT NULL);
                    CREATE INDEX rescoring_data ON rescoring (dataID, type, subject);
                    CREATE INDEX rescoring_expiry ON rescoring (expiryAudited, expiresAt);
                    CREATE TABLE backlog (
                        scanner TEXT NOT NULL, artefact INTEGER NOT NULL, priority INTEGER NOT NULL, createdAt REAL NOT NULL, claimedBy TEXT,
                        leaseUntil REAL, PRIMARY KEY (scanner, artefact)) WITHOUT ROWID;
                    CREATE INDEX backlog_order ON backlog (priority DESC, createdAt);
                    CREATE TABLE snapshot (
                        kind TEXT NOT NULL, subject TEXT NOT NULL, day TEXT NOT NULL, at REAL NOT NULL, data TEXT NOT NULL,
                        PRIMARY KEY (kind, subject, day)) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v5-compliance-tracking") { db in
            try db.execute(
                sql: """
                    CREATE TABLE trackedTag (
                        registry TEXT NOT NULL, repository TEXT NOT NULL, tag TEXT NOT NULL, component TEXT, componentVersion TEXT,
                        addedAt REAL NOT NULL, PRIMARY KEY (registry, repository, tag)) WITHOUT ROWID;
                    CREATE TABLE exportedIssue (id TEXT PRIMARY KEY, state TEXT NOT NULL, data TEXT NOT NULL, updatedAt REAL NOT NULL) WITHOUT ROWID;
                    """)
        }
    }
}

/// Times as the tables keep them.
private func t(_ d: Date) -> Double { d.timeIntervalSinceReferenceDate }
private func tOpt(_ d: Date?) -> Double? { d?.timeIntervalSinceReferenceDate }
private func date(_ v: Double) -> Date { Date(timeIntervalSinceReferenceDate: v) }
private func date(_ v: Double?) -> Date? { v.map(Date.init(timeIntervalSinceReferenceDate:)) }

private let findingColumns =
    "f.artefact, f.datasource, f.type, f.subject, f.dataID, f.score, f.summary, f.discoveredAt, f.lastSeenAt, f.resolvedAt, a.registry, a.repository, a.digest"

extension SQLiteWorkflowStore {
    static func artefactRecord(_ row: Row) throws -> ArtefactRecord {
        ArtefactRecord(
            ref: ArtefactRef(registry: row["registry"], repository: row["repository"], digest: row["digest"]), number: row["number"],
            component: row["component"], componentVersion: row["componentVersion"],
            tags: try JSONDecoder().decode([String].self, from: Data((row["tags"] as String).utf8)), firstSeenAt: date(row["firstSeenAt"] as Double),
            inactiveSince: date(row["inactiveSince"] as Double?))
    }

    static func rescoringRecord(_ row: Row) -> RescoringRecord {
        RescoringRecord(
            id: row["id"], type: row["type"], subject: row["subject"], dataID: row["dataID"], scope: row["scope"], scopeValue: row["scopeValue"],
            category: row["category"], comment: row["comment"], user: row["user"], createdAt: date(row["createdAt"] as Double),
            dueDate: date(row["dueDate"] as Double?), processingSeconds: row["processingSeconds"], expiresAt: date(row["expiresAt"] as Double?),
            freshClock: row["freshClock"], expiryAudited: row["expiryAudited"])
    }

    static func backlogRecord(_ row: Row) -> BacklogRecord {
        BacklogRecord(
            scanner: row["scanner"], artefact: ArtefactRef(registry: row["registry"], repository: row["repository"], digest: row["digest"]),
            priority: row["priority"], createdAt: date(row["createdAt"] as Double), claimedBy: row["claimedBy"],
            leaseUntil: date(row["leaseUntil"] as Double?))
    }

    static func artefactNumber(_ ref: ArtefactRef, _ db: Database) throws -> Int64? {
        try Int64.fetchOne(
            try db.cachedStatement(sql: "SELECT number FROM artefact WHERE registry = ? AND repository = ? AND digest = ?"),
            arguments: [ref.registry, ref.repository, ref.digest])
    }

    /// The artefact's number, recording it first (tracked, no tags) when it is new.
    static func ensureArtefact(_ ref: ArtefactRef, at: Date, _ db: Database) throws -> Int64 {
        if let n = try artefactNumber(ref, db) { return n }
        try db.cachedStatement(
            sql: "INSERT INTO artefact (registry, repository, digest, tags, firstSeenAt) VALUES (?, ?, ?, '[]', ?)"
        ).execute(arguments: [ref.registry, ref.repository, ref.digest, t(at)])
        return db.lastInsertedRowID
    }

    public func recordArtefacts(_ sightings: [ArtefactSighting], at: Date, audit: [AuditEvent]) async throws -> [ArtefactRecord] {
        try await write { db in
            var out: [ArtefactRecord] = []
            let fetch = try db.cachedStatement(sql: "SELECT * FROM artefact WHERE number = ?")
            for s in sightings {
                let n = try Self.ensureArtefact(s.ref, at: at, db)
                var a = try Self.artefactRecord(try Row.fetchOne(fetch, arguments: [n])!)
                a.tags = Array(Set(a.tags).union(s.tags)).sorted()
                if let c = s.component {
                    a.component = c
                    a.componentVersion = s.componentVersion
                }
                a.inactiveSince = nil
                let tags = String(decoding: try JSONEncoder().encode(a.tags), as: UTF8.self)
                try db.cachedStatement(
                    sql: "UPDATE artefact SET tags = ?, component = ?, componentVersion = ?, inactiveSince = NULL WHERE number = ?"
                ).execute(arguments: [tags, a.component, a.componentVersion, n])
                out.append(a)
            }
            try Self.appendAudit(audit, db)
            return out
        }
    }

    public func artefact(_ ref: ArtefactRef) async throws -> ArtefactRecord? {
        try await read { db in
            try Row.fetchOne(
                try db.cachedStatement(sql: "SELECT * FROM artefact WHERE registry = ? AND repository = ? AND digest = ?"),
                arguments: [ref.registry, ref.repository, ref.digest]
            ).map(Self.artefactRecord)
        }
    }

    public func artefacts(registry: String?, repository: String?, component: String?, trackedOnly: Bool) async throws -> [ArtefactRecord] {
        try await read { db in
            var clauses: [String] = []
            var args: [DatabaseValueConvertible?] = []
            if let registry { (clauses, args) = (clauses + ["registry = ?"], args + [registry]) }
            if let repository { (clauses, args) = (clauses + ["repository = ?"], args + [repository]) }
            if let component { (clauses, args) = (clauses + ["component = ?"], args + [component]) }
            if trackedOnly { clauses.append("inactiveSince IS NULL") }
            let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
            return try Row.fetchAll(
                db, sql: "SELECT * FROM artefact\(filter) ORDER BY registry, repository, digest", arguments: StatementArguments(args)!
            )
            .map(Self.artefactRecord)
        }
    }

    public func markInactive(_ refs: [ArtefactRef], at: Date, audit: [AuditEvent]) async throws {
        try await write { db in
            let update = try db.cachedStatement(
                sql: "UPDATE artefact SET inactiveSince = ? WHERE registry = ? AND repository = ? AND digest = ? AND inactiveSince IS NULL")
            for r in refs { try update.execute(arguments: [t(at), r.registry, r.repository, r.digest]) }
            try Self.appendAudit(audit, db)
        }
    }

    public func deleteInactive(before: Date, audit: [AuditEvent]) async throws -> Int {
        try await write { db in
            let numbers = try Int64.fetchAll(db, sql: "SELECT number FROM artefact WHERE inactiveSince < ?", arguments: [t(before)])
            for table in ["finding", "scan", "backlog"] {
                let delete = try db.cachedStatement(sql: "DELETE FROM \(table) WHERE artefact = ?")
                for n in numbers { try delete.execute(arguments: [n]) }
            }
            let delete = try db.cachedStatement(sql: "DELETE FROM artefact WHERE number = ?")
            for n in numbers { try delete.execute(arguments: [n]) }
            if !numbers.isEmpty { try Self.appendAudit(audit, db) }
            return numbers.count
        }
    }

    public func recordScan(_ scan: ScanRecord, audit: [AuditEvent], merge: @escaping @Sendable ([FindingRecord]) throws -> [FindingRecord])
        async throws
        -> [FindingRecord]
    {
        try await write { db in
            _ = try Self.ensureArtefact(scan.artefact, at: scan.scannedAt, db)
            let existing = try Self.findingRecords(
                try db.cachedStatement(
                    sql:
                        "SELECT \(findingColumns) FROM artefact a JOIN finding f ON f.artefact = a.number WHERE a.registry = ? AND a.repository = ?"
                ), [scan.artefact.registry, scan.artefact.repository])
            var written = try merge(existing)
            var numbers: [ArtefactRef: Int64] = [:]
            let upsert = try db.cachedStatement(
                sql: """
                    INSERT INTO finding (artefact, datasource, type, subject, dataID, score, summary, discoveredAt, lastSeenAt, resolvedAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (artefact, datasource, type, subject, dataID) DO UPDATE SET score = excluded.score, summary = excluded.summary,
                    discoveredAt = excluded.discoveredAt, lastSeenAt = excluded.lastSeenAt, resolvedAt = excluded.resolvedAt
                    """)
            for i in written.indices {
                let f = written[i]
                let n = try numbers[f.artefact] ?? Self.ensureArtefact(f.artefact, at: scan.scannedAt, db)
                numbers[f.artefact] = n
                written[i].artefactNumber = n
                try upsert.execute(arguments: [
                    n, f.datasource, f.type, f.subject, f.dataID, f.score, f.summary, t(f.discoveredAt), t(f.lastSeenAt), tOpt(f.resolvedAt),
                ])
            }
            let n = try Self.ensureArtefact(scan.artefact, at: scan.scannedAt, db)
            try db.cachedStatement(
                sql: """
                    INSERT INTO scan (artefact, datasource, scannedAt, findings, info) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (artefact, datasource) DO UPDATE SET scannedAt = excluded.scannedAt, findings = excluded.findings, info = excluded.info
                    WHERE excluded.scannedAt >= scan.scannedAt
                    """
            ).execute(arguments: [n, scan.datasource, t(scan.scannedAt), scan.findings, scan.info])
            try Self.appendAudit(audit, db)
            return written
        }
    }

    public func scans(of ref: ArtefactRef) async throws -> [ScanRecord] {
        try await read { db in
            guard let n = try Self.artefactNumber(ref, db) else { return [] }
            return try Row.fetchAll(db, sql: "SELECT * FROM scan WHERE artefact = ? ORDER BY datasource", arguments: [n]).map { row in
                ScanRecord(
                    artefact: ref, datasource: row["datasource"], scannedAt: date(row["scannedAt"] as Double), findings: row["findings"],
                    info: row["info"])
            }
        }
    }

    /// The WHERE clause and arguments of a findings query. Artefact filters select artefact numbers first (an
    /// `IN` subquery), so SQLite reads each artefact's findings as a range of the primary key, already in page
    /// order; with one, the type is compared without its index (`+f.type`), which would otherwise make it read
    /// every finding of that type and sort them.
    static func filter(_ q: FindingQuery) -> (String, [DatabaseValueConvertible?]) {
        var clauses: [String] = []
        var args: [DatabaseValueConvertible?] = []
        var artefactClauses: [String] = []
        func add(_ clause: String, _ value: String?, artefact: Bool = false) {
            guard let value else { return }
            if artefact { artefactClauses.append(clause) } else { clauses.append(clause) }
            args.append(value)
        }
        add("registry = ?", q.registry, artefact: true)
        add("repository = ?", q.repository, artefact: true)
        add("digest = ?", q.digest, artefact: true)
        add("component = ?", q.component, artefact: true)
        add("componentVersion = ?", q.componentVersion, artefact: true)
        if !artefactClauses.isEmpty {
            clauses.insert("f.artefact IN (SELECT number FROM artefact WHERE \(artefactClauses.joined(separator: " AND ")))", at: 0)
        }
        add(artefactClauses.isEmpty ? "f.type = ?" : "+f.type = ?", q.type)
        add("f.datasource = ?", q.datasource)
        add("f.subject = ?", q.subject)
        add("f.dataID = ?", q.dataID)
        if q.openOnly { clauses.append("f.resolvedAt IS NULL") }
        if let c = q.after {
            clauses.append("(f.artefact, f.datasource, f.type, f.subject, f.dataID) > (?, ?, ?, ?, ?)")
            args += [c.artefact, c.datasource, c.type, c.subject, c.dataID]
        }
        return (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "), args)
    }

    /// Findings read from a cursor over the statement: each artefact's reference is decoded once.
    static func findingRecords(_ statement: Statement, _ arguments: StatementArguments) throws -> [FindingRecord] {
        let rows = try Row.fetchCursor(statement, arguments: arguments)
        var refs: [Int64: ArtefactRef] = [:]
        var out: [FindingRecord] = []
        while let row = try rows.next() {
            let number: Int64 = row[0]
            let ref: ArtefactRef
            if let known = refs[number] {
                ref = known
            } else {
                ref = ArtefactRef(registry: row[10], repository: row[11], digest: row[12])
                refs[number] = ref
            }
            out.append(
                FindingRecord(
                    artefact: ref, artefactNumber: number, datasource: row[1], type: row[2], subject: row[3], dataID: row[4], score: row[5],
                    summary: row[6], discoveredAt: date(row[7] as Double), lastSeenAt: date(row[8] as Double), resolvedAt: date(row[9] as Double?)))
        }
        return out
    }

    public func findings(_ query: FindingQuery) async throws -> [FindingRecord] {
        try await read { db in
            let (filter, args) = Self.filter(query)
            return try Self.findingRecords(
                try db.cachedStatement(
                    sql:
                        "SELECT \(findingColumns) FROM finding f JOIN artefact a ON a.number = f.artefact\(filter) ORDER BY f.artefact, f.datasource, f.type, f.subject, f.dataID LIMIT ?"
                ), StatementArguments(args + [query.limit])!)
        }
    }

    public func findingCount(_ query: FindingQuery) async throws -> Int {
        try await read { db in
            var q = query
            q.after = nil
            let (filter, args) = Self.filter(q)
            return try Int.fetchOne(
                db, sql: "SELECT count(*) FROM finding f JOIN artefact a ON a.number = f.artefact\(filter)", arguments: StatementArguments(args)!)
                ?? 0
        }
    }

    public func addRescoring(_ r: RescoringRecord, audit: [AuditEvent]) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO rescoring (id, type, subject, dataID, scope, scopeValue, category, comment, user, createdAt, dueDate,
                    processingSeconds, expiresAt, freshClock, expiryAudited) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    r.id, r.type, r.subject, r.dataID, r.scope, r.scopeValue, r.category, r.comment, r.user, t(r.createdAt), tOpt(r.dueDate),
                    r.processingSeconds, tOpt(r.expiresAt), r.freshClock, r.expiryAudited,
                ])
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(audit, db)
            return true
        }
    }

    public func rescoring(id: String) async throws -> RescoringRecord? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM rescoring WHERE id = ?", arguments: [id]).map(Self.rescoringRecord) }
    }

    public func rescorings(type: String?, subject: String?, dataID: String?) async throws -> [RescoringRecord] {
        try await read { db in
            if let type, let subject, let dataID {
                return try Row.fetchAll(
                    db, sql: "SELECT * FROM rescoring WHERE dataID = ? AND type = ? AND subject = ? ORDER BY createdAt, id",
                    arguments: [dataID, type, subject]
                ).map(Self.rescoringRecord)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM rescoring ORDER BY createdAt, id").map(Self.rescoringRecord)
        }
    }

    public func rescorings(dataIDs: Set<String>) async throws -> [RescoringRecord] {
        try await read { db in
            var out: [RescoringRecord] = []
            let ids = dataIDs.sorted()
            for start in stride(from: 0, to: ids.count, by: 500) {
                let chunk = Array(ids[start..<min(start + 500, ids.count)])
                out += try Row.fetchAll(
                    db, sql: "SELECT * FROM rescoring WHERE dataID IN (\(chunk.map { _ in "?" }.joined(separator: ",")))",
                    arguments: StatementArguments(chunk)
                ).map(Self.rescoringRecord)
            }
            return out.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        }
    }

    public func revokeRescoring(id: String, at: Date, audit: [AuditEvent]) async throws -> RescoringRecord? {
        try await write { db in
            try db.execute(
                sql: "UPDATE rescoring SET expiresAt = ?, freshClock = 0 WHERE id = ? AND (expiresAt IS NULL OR expiresAt > ?)",
                arguments: [t(at), id, t(at)])
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM rescoring WHERE id = ?", arguments: [id]) else { return nil }
            try Self.appendAudit(audit, db)
            return Self.rescoringRecord(row)
        }
    }

    public func unauditedExpiries(now: Date) async throws -> [RescoringRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM rescoring WHERE expiryAudited = 0 AND expiresAt <= ? ORDER BY expiresAt, id", arguments: [t(now)]
            ).map(Self.rescoringRecord)
        }
    }

    public func recordExpiry(id: String, audit: [AuditEvent]) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "UPDATE rescoring SET expiryAudited = 1 WHERE id = ? AND expiryAudited = 0", arguments: [id])
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(audit, db)
            return true
        }
    }

    public func enqueue(_ items: [BacklogRecord], audit: [AuditEvent]) async throws {
        try await write { db in
            let upsert = try db.cachedStatement(
                sql: """
                    INSERT INTO backlog (scanner, artefact, priority, createdAt) VALUES (?, ?, ?, ?)
                    ON CONFLICT (scanner, artefact) DO UPDATE SET priority = max(priority, excluded.priority), createdAt = min(createdAt, excluded.createdAt)
                    """)
            for i in items {
                let n = try Self.ensureArtefact(i.artefact, at: i.createdAt, db)
                try upsert.execute(arguments: [i.scanner, n, i.priority, t(i.createdAt)])
            }
            try Self.appendAudit(audit, db)
        }
    }

    static let backlogColumns =
        "b.scanner, b.priority, b.createdAt, b.claimedBy, b.leaseUntil, a.registry, a.repository, a.digest FROM backlog b JOIN artefact a ON a.number = b.artefact"

    public func claim(worker: String, scanners: [String]?, now: Date, lease: TimeInterval) async throws -> BacklogRecord? {
        try await write { db in
            var args: [DatabaseValueConvertible?] = [t(now)]
            var only = ""
            if let scanners {
                guard !scanners.isEmpty else { return nil }
                only = " AND b.scanner IN (\(scanners.map { _ in "?" }.joined(separator: ",")))"
                args += scanners
            }
            guard
                let row = try Row.fetchOne(
                    db,
                    sql:
                        "SELECT b.artefact AS number, \(Self.backlogColumns) WHERE (b.claimedBy IS NULL OR b.leaseUntil <= ?)\(only) ORDER BY b.priority DESC, b.createdAt, b.scanner, a.registry, a.repository, a.digest LIMIT 1",
                    arguments: StatementArguments(args)!)
            else { return nil }
            var item = Self.backlogRecord(row)
            item.claimedBy = worker
            item.leaseUntil = now + lease
            try db.execute(
                sql: "UPDATE backlog SET claimedBy = ?, leaseUntil = ? WHERE scanner = ? AND artefact = ?",
                arguments: [worker, tOpt(item.leaseUntil), item.scanner, row["number"] as Int64])
            return item
        }
    }

    public func heartbeat(worker: String, scanner: String, artefact: ArtefactRef, now: Date, lease: TimeInterval) async throws -> Bool {
        try await write { db in
            guard let n = try Self.artefactNumber(artefact, db) else { return false }
            try db.execute(
                sql: "UPDATE backlog SET leaseUntil = ? WHERE scanner = ? AND artefact = ? AND claimedBy = ? AND leaseUntil > ?",
                arguments: [t(now + lease), scanner, n, worker, t(now)])
            return db.changesCount > 0
        }
    }

    public func complete(worker: String, scanner: String, artefact: ArtefactRef) async throws -> Bool {
        try await write { db in
            guard let n = try Self.artefactNumber(artefact, db) else { return false }
            try db.execute(sql: "DELETE FROM backlog WHERE scanner = ? AND artefact = ? AND claimedBy = ?", arguments: [scanner, n, worker])
            return db.changesCount > 0
        }
    }

    public func releaseClaims(worker: String) async throws -> Int {
        try await write { db in
            try db.execute(sql: "UPDATE backlog SET claimedBy = NULL, leaseUntil = NULL WHERE claimedBy = ?", arguments: [worker])
            return db.changesCount
        }
    }

    public func backlog(limit: Int) async throws -> [BacklogRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(Self.backlogColumns) ORDER BY b.priority DESC, b.createdAt, b.scanner, a.registry, a.repository, a.digest LIMIT ?",
                arguments: [limit]
            ).map(Self.backlogRecord)
        }
    }

    public func trackTags(_ tags: [TrackedTagRecord], audit: [AuditEvent]) async throws {
        try await write { db in
            let upsert = try db.cachedStatement(
                sql: "INSERT OR REPLACE INTO trackedTag (registry, repository, tag, component, componentVersion, addedAt) VALUES (?, ?, ?, ?, ?, ?)")
            for t in tags { try upsert.execute(arguments: [t.registry, t.repository, t.tag, t.component, t.componentVersion, tOpt(t.addedAt)]) }
            try Self.appendAudit(audit, db)
        }
    }

    public func untrackTag(registry: String, repository: String, tag: String, audit: [AuditEvent]) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "DELETE FROM trackedTag WHERE registry = ? AND repository = ? AND tag = ?", arguments: [registry, repository, tag])
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(audit, db)
            return true
        }
    }

    public func trackedTags() async throws -> [TrackedTagRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM trackedTag ORDER BY registry, repository, tag").map { row in
                TrackedTagRecord(
                    registry: row["registry"], repository: row["repository"], tag: row["tag"], component: row["component"],
                    componentVersion: row["componentVersion"], addedAt: date(row["addedAt"] as Double))
            }
        }
    }

    public func exportedIssues() async throws -> [IssueRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM exportedIssue ORDER BY id").map { row in
                IssueRecord(id: row["id"], state: row["state"], data: row["data"], updatedAt: date(row["updatedAt"] as Double))
            }
        }
    }

    public func saveIssues(_ issues: [IssueRecord], audit: [AuditEvent]) async throws {
        try await write { db in
            let upsert = try db.cachedStatement(sql: "INSERT OR REPLACE INTO exportedIssue (id, state, data, updatedAt) VALUES (?, ?, ?, ?)")
            for i in issues { try upsert.execute(arguments: [i.id, i.state, i.data, tOpt(i.updatedAt)]) }
            try Self.appendAudit(audit, db)
        }
    }

    public func saveSnapshots(_ snapshots: [SnapshotRecord]) async throws {
        try await write { db in
            let upsert = try db.cachedStatement(sql: "INSERT OR REPLACE INTO snapshot (kind, subject, day, at, data) VALUES (?, ?, ?, ?, ?)")
            for s in snapshots { try upsert.execute(arguments: [s.kind, s.subject, s.day, t(s.at), s.data]) }
        }
    }

    public func snapshots(kind: String, subject: String, from: String?, to: String?) async throws -> [SnapshotRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM snapshot WHERE kind = ? AND subject = ? AND day >= ? AND day <= ? ORDER BY day",
                arguments: [kind, subject, from ?? "", to ?? "\u{10FFFF}"]
            ).map { row in
                SnapshotRecord(kind: row["kind"], subject: row["subject"], day: row["day"], at: date(row["at"] as Double), data: row["data"])
            }
        }
    }
}
