import Foundation
import Vulnerability

/// The vulnerability database job: open the state directory's database, import OSV advisories into it, say what it
/// holds and how old it is. `warden db`, the HTTP API and the workflow actions call these and only render.
public enum DatabaseJob {
    /// The state directory's advisory database (`StateLayout.vulnerabilityDatabase`), created with the directory
    /// when absent.
    public static func open(state: StateLayout) throws -> SQLiteAdvisoryStore {
        do {
            try FileManager.default.createDirectory(atPath: state.root, withIntermediateDirectories: true)
        } catch {
            throw VulnerabilityError(.io, "\(state.root): cannot create the state directory: \(error.localizedDescription)")
        }
        return try SQLiteAdvisoryStore(path: state.vulnerabilityDatabase)
    }

    /// What an import was asked to do.
    public struct ImportRequest: Sendable {
        /// Record files, directories and osv.dev `all.zip` archives.
        public var paths: [String]
        /// Leave out records not modified after this time.
        public var modifiedSince: Date?
        public init(paths: [String], modifiedSince: Date? = nil) {
            self.paths = paths
            self.modifiedSince = modifiedSince
        }
    }

    /// Imports `request.paths` into `store` (the state directory's database for the CLI). Malformed records are in
    /// the report; `failure(of:)` says whether the import as a whole failed.
    public static func importAdvisories(
        _ request: ImportRequest, into store: any AdvisoryStore, progress: (@Sendable (ImportProgress) -> Void)? = nil
    ) async throws -> ImportReport {
        try await AdvisoryImport.run(paths: request.paths, into: store, modifiedSince: request.modifiedSince, progress: progress)
    }

    /// The error an import's report amounts to: none while anything was read or found unchanged; when nothing was,
    /// a malformed-input error naming the first record that could not be read (or saying there were none).
    public static func failure(of report: ImportReport, paths: [String]) -> VulnerabilityError? {
        guard report.read == 0, report.skippedUnchanged == 0 else { return nil }
        if let first = report.malformed.first {
            return VulnerabilityError(.malformed, "no record could be read (\(report.malformedCount) malformed; the first: \(first))")
        }
        return VulnerabilityError(.malformed, "\(paths.joined(separator: ", ")): no OSV records found")
    }

    /// What the database holds, how old it is, and where it is.
    public struct Status: Sendable, Codable, Equatable {
        public var path: String
        public var records: Int
        public var withdrawn: Int
        /// Records per ecosystem as the records spell it (`Debian:12`, `PyPI`).
        public var ecosystems: [String: Int]
        /// The newest `modified` of any record (RFC 3339).
        public var newestModified: String?
        public var lastImport: Date?
        /// Whole days since the data was last known fresh (the newest record's `modified`, else the last import);
        /// nil for an empty database.
        public var ageDays: Int?
    }

    /// The state of `store` at `now` (`path` names it).
    public static func status(of store: any AdvisoryStore, path: String, now: Date = Date()) async throws -> Status {
        let s = try await store.status()
        let age = s.freshness.map { max(0, Int(now.timeIntervalSince($0) / 86_400)) }
        return Status(
            path: path, records: s.records, withdrawn: s.withdrawn, ecosystems: s.ecosystems, newestModified: s.newestModified,
            lastImport: s.lastImport, ageDays: age)
    }
}
