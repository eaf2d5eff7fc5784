import Foundation
import GRDB

/// The one way Warden opens a SQLite file: created private (0600) when absent, WAL (a `DatabasePool`), a busy
/// timeout, the durability asked for, and the schema brought up to date by `migrations` — errors as `StateError`s
/// naming the file (`what` says which: "state file", "workflow store", "vulnerability database"). Every store of
/// every module opens its file here, so all of them share one set of settings.
public enum SQLiteDatabase {
    /// How much a commit waits for the disk: what a crash or a power cut may lose.
    public enum Synchronous: String, Sendable {
        /// A killed process loses nothing it committed; a power cut may lose the last commits.
        case normal = "NORMAL"
        /// Every commit survives a power cut.
        case full = "FULL"
    }

    /// Opens (creating when absent, mode 0600) the SQLite file at `path` in WAL mode and runs the migrations
    /// `migrations` registers that have not run yet. `busyTimeout` is how long a statement waits for another
    /// process's lock before failing.
    public static func open(
        path: String, what: String, synchronous: Synchronous, busyTimeout: TimeInterval, migrations: (inout DatabaseMigrator) -> Void
    ) throws -> DatabasePool {
        var config = Configuration()
        config.busyMode = .timeout(busyTimeout)
        let pragma = "PRAGMA synchronous = \(synchronous.rawValue)"
        config.prepareDatabase { db in try db.execute(sql: pragma) }
        do {
            createPrivateFile(path)
            let db = try DatabasePool(path: path, configuration: config)
            var migrator = DatabaseMigrator()
            migrations(&migrator)
            try migrator.migrate(db)
            return db
        } catch {
            throw StateError("\(what) \(path): \(error)")
        }
    }
}
