import Foundation
import GRDB
import Synchronization

/// What the last replication did for one target tag: the source digest it verified and copied (or refused).
public struct ReplicationRecord: Codable, Sendable, Equatable {
    /// `registry/repository:tag` of the target.
    public var target: String
    public var sourceReference: String
    public var sourceDigest: String
    /// `copied` or `refused`.
    public var outcome: String
    /// Authorities that verified it, comma-separated (empty when the entry has no verification).
    public var verifiedBy: String
    public var detail: String?
    /// What was attached to the source digest when it was last verified and copied (or refused): its referrers and
    /// cosign tags, as canonical JSON. Nil in records written before Warden kept it.
    public var attachments: String?
    /// Fingerprint of the replication file that decided the outcome (a refusal is reused only under the same file).
    public var policy: String?
    public var updatedAt: Date

    public init(
        target: String, sourceReference: String, sourceDigest: String, outcome: String, verifiedBy: String, detail: String?,
        attachments: String? = nil, policy: String? = nil, updatedAt: Date = Date()
    ) {
        self.target = target
        self.sourceReference = sourceReference
        self.sourceDigest = sourceDigest
        self.outcome = outcome
        self.verifiedBy = verifiedBy
        self.detail = detail
        self.attachments = attachments
        self.policy = policy
        self.updatedAt = updatedAt
    }
}

/// Where replication keeps what it decided per target tag. SQLite (`StateStore`) by default; the in-memory twin
/// (`MemoryReplicationState`) serves unit tests; both pass `ReplicationStateContractTests`.
public protocol ReplicationStateStore: Sendable {
    /// The record of `target` (`registry/repository:tag`), nil when there is none.
    func replication(target: String) throws -> ReplicationRecord?
    /// Writes `record`, replacing the record of its target.
    func save(_ record: ReplicationRecord) throws
    /// Every record, ordered by target.
    func allReplications() throws -> [ReplicationRecord]
}

/// The in-memory twin of the replication state.
public final class MemoryReplicationState: ReplicationStateStore {
    private let records = Mutex<[String: ReplicationRecord]>([:])
    public init() {}
    public func replication(target: String) throws -> ReplicationRecord? { records.withLock { $0[target] } }
    public func save(_ record: ReplicationRecord) throws { records.withLock { $0[record.target] = record } }
    public func allReplications() throws -> [ReplicationRecord] { records.withLock { $0.values.sorted { $0.target < $1.target } } }
}

// The SQLite implementation's view of the record: GRDB conformances live here only.
extension ReplicationRecord: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "replication"
}

/// Warden's local state in one SQLite file (GRDB). Every write is a transaction: a process killed at any point
/// leaves the file as it was before or after the write, never in between. The file is in WAL mode with
/// `synchronous = NORMAL`: a killed process loses nothing it committed; a power cut may lose the last commits
/// (which a re-run redoes), never the file's consistency.
public final class StateStore: ReplicationStateStore {
    let db: DatabasePool
    public let path: String

    /// Opens (creating when absent) the state file at `path` and brings its schema up to date.
    public init(path: String) throws {
        self.path = path
        db = try SQLiteDatabase.open(path: path, what: "state file", synchronous: .normal, busyTimeout: 10) { migrator in
            migrator.registerMigration("v1-replication") { db in
                try db.create(table: ReplicationRecord.databaseTableName) { t in
                    t.primaryKey("target", .text)
                    t.column("sourceReference", .text).notNull()
                    t.column("sourceDigest", .text).notNull()
                    t.column("outcome", .text).notNull()
                    t.column("verifiedBy", .text).notNull()
                    t.column("detail", .text)
                    t.column("updatedAt", .datetime).notNull()
                }
            }
            migrator.registerMigration("v2-replication-attachments") { db in
                try db.alter(table: ReplicationRecord.databaseTableName) { t in t.add(column: "attachments", .text) }
            }
            migrator.registerMigration("v3-replication-policy") { db in
                try db.alter(table: ReplicationRecord.databaseTableName) { t in t.add(column: "policy", .text) }
            }
        }
    }

    public func replication(target: String) throws -> ReplicationRecord? {
        do {
            return try db.read { try ReplicationRecord.fetchOne($0, key: target) }
        } catch {
            throw StateError("state file \(path): \(error)")
        }
    }

    public func save(_ record: ReplicationRecord) throws {
        do {
            try db.write { try record.save($0) }
        } catch {
            throw StateError("state file \(path): \(error)")
        }
    }

    public func allReplications() throws -> [ReplicationRecord] {
        do {
            return try db.read { try ReplicationRecord.order(Column("target")).fetchAll($0) }
        } catch {
            throw StateError("state file \(path): \(error)")
        }
    }

    /// SQLite's own consistency check of the file ("ok" when sound).
    public func integrityCheck() throws -> String {
        try db.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") ?? "" }
    }
}

/// An error of Warden's state (the SQLite files under the state directory, their in-memory twins): a code and a
/// reason that names the file or the record.
public struct StateError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The error's code: extensible (a new code is a new static member); errors compare equal when their
    /// codes do.
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// The database could not be opened, read or written (the reason has SQLite's error).
        public static let io = Code(rawValue: "io")
        /// A record that must be new exists already.
        public static let conflict = Code(rawValue: "conflict")
    }

    public var code: Code
    public var reason: String
    public var description: String { reason }
    public init(_ reason: String) { self.init(.io, reason) }
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }
    public static func == (a: StateError, b: StateError) -> Bool { a.code == b.code }
}

/// Creates `path` empty and readable by its owner only (0600) if it does not exist, before SQLite opens it: SQLite
/// gives its journal, WAL and shared-memory files the database file's mode, so the whole database stays private
/// whatever the umask.
func createPrivateFile(_ path: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    if fd >= 0 { close(fd) }
}
