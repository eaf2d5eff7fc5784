import Foundation
import GRDB

/// The one way Warden opens a SQLite file: created private (0600) when absent, WAL (a `DatabasePool`), a busy
/// timeout, the durability asked for, and the schema brought up to date by `migrations` — errors as `StateError`s
/// naming the file (`what` says which: "state file", "workflow store").
enum SQLiteDatabase {
    enum Synchronous: String {
        /// A killed process loses nothing it committed; a power cut may lose the last commits.
        case normal = "NORMAL"
        /// Every commit survives a power cut.
        case full = "FULL"
    }

    static func open(
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
