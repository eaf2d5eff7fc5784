import ArgumentParser
import CommandSupport
import Documents
import Foundation
import Vulnerability
import WardenApp

/// Where the database lives: the state directory.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: "State directory (the database is STATE/vulnerabilities.sqlite); default .warden.")
    var state: String = StateLayout.defaultRoot

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    var layout: StateLayout { StateLayout(state) }
}

struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db", abstract: "The vulnerability database: import OSV advisories, show what it holds (docs/vulnerabilities.md).",
        subcommands: [Import.self, Status.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import", abstract: "Import OSV records from files, directories and osv.dev all.zip archives.",
            discussion: """
                PATH is an OSV record (.json, .yaml, .yml, or a JSON array of records), a directory of them walked \
                recursively (a checkout of github.com/pypa/advisory-database, github/advisory-database, golang/vulndb's \
                data/osv), or an osv.dev per-ecosystem all.zip. A modified_id.csv next to the archive or in a directory \
                is read first: only records newer than the stored ones are opened. Malformed records are listed with \
                their file and JSON path and skipped. Exit codes: 0 when records were read (or all were unchanged); \
                1 when none could be read or a read or write failed; 3 when a PATH does not exist.
                """)

        @Argument(help: "Record files, directories and all.zip archives.") var paths: [String]
        @Option(name: .long, help: "Only records modified after this RFC 3339 time (2024-05-01T00:00:00Z).")
        var modifiedSince: String?
        @OptionGroup var options: DatabaseOptions

        func validate() throws {
            if let modifiedSince, RFC3339.date(modifiedSince) == nil {
                throw ValidationError("--modified-since \(modifiedSince): not an RFC 3339 time (2024-05-01T00:00:00Z)")
            }
        }

        func run() async throws {
            let report: ImportReport
            do {
                let store = try DatabaseJob.open(state: options.layout)
                report = try await DatabaseJob.importAdvisories(
                    DatabaseJob.ImportRequest(paths: paths, modifiedSince: modifiedSince.flatMap(RFC3339.date)), into: store)
            } catch {
                throw failure(for: error)
            }
            if options.json {
                try printJSON(report)
            } else {
                let c = report.counts
                print(
                    "read \(report.read) records from \(report.files) files: \(c.inserted) inserted, \(c.replaced) replaced, "
                        + "\(c.unchanged) unchanged; \(report.skippedUnchanged) skipped unchanged; \(report.malformedCount) malformed")
                for m in report.malformed.prefix(20) { print("  malformed: \(m)") }
                if report.malformedCount > 20 { print("  … and \(report.malformedCount - 20) more") }
            }
            if let error = DatabaseJob.failure(of: report, paths: paths) { throw failure(for: error) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status", abstract: "Records per ecosystem, withdrawn records, the newest record and the last import.")

        @OptionGroup var options: DatabaseOptions

        func run() async throws {
            let status: DatabaseJob.Status
            do {
                let store = try DatabaseJob.open(state: options.layout)
                status = try await DatabaseJob.status(of: store, path: options.layout.vulnerabilityDatabase)
            } catch {
                throw failure(for: error)
            }
            if options.json {
                try printJSON(status)
                return
            }
            print("database: \(status.path)")
            print("records: \(status.records) (\(status.withdrawn) withdrawn)")
            print("newest modified: \(status.newestModified ?? "-")")
            print("last import: \(status.lastImport.map(RFC3339.string) ?? "never")")
            print("age: \(status.ageDays.map { "\($0) days" } ?? "-")")
            if !status.ecosystems.isEmpty {
                let width = max(9, (status.ecosystems.keys.map(\.count).max() ?? 0) + 2)
                print("ECOSYSTEM".padding(toLength: width, withPad: " ", startingAt: 0) + "RECORDS")
                for (e, n) in status.ecosystems.sorted(by: { $0.key < $1.key }) {
                    print(e.padding(toLength: width, withPad: " ", startingAt: 0) + "\(n)")
                }
            }
        }
    }
}
