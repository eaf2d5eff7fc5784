import Foundation
import OCITesting
import Testing

/// `warden db import` and `warden db status` as users run them, on the real OSV records of
/// Tests/VulnerabilityTests/Data/osv.
@Suite struct DatabaseCommandTests {
    static let data = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("VulnerabilityTests/Data/osv").path

    struct Report: Decodable {
        struct Counts: Decodable {
            var inserted: Int
            var replaced: Int
            var unchanged: Int
        }
        var counts: Counts
        var read: Int
        var skippedUnchanged: Int
        var malformed: [String]
        var malformedCount: Int
    }

    struct Status: Decodable {
        var path: String
        var records: Int
        var withdrawn: Int
        var ecosystems: [String: Int]
        var newestModified: String?
        var lastImport: String?
        var ageDays: Int?
    }

    @Test func dbImportThenStatusOnTheRealRecords() async throws {
        let state = try makeTemporaryDirectory() + "/state"
        let (code, out, err) = try await warden(["db", "import", Self.data, "--state", state])
        #expect(code == 0, "\(err)")
        #expect(out.hasPrefix("read 29 records from 29 files: 29 inserted, 0 replaced, 0 unchanged; 0 skipped unchanged; 0 malformed"), "\(out)")
        #expect(FileManager.default.fileExists(atPath: state + "/vulnerabilities.sqlite"))

        let (again, againOut, againErr) = try await warden(["db", "import", Self.data, "--state", state, "--json"])
        #expect(again == 0, "\(againErr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(againOut.utf8))
        #expect(report.read == 29 && report.counts.unchanged == 29 && report.counts.inserted == 0)

        let (s, statusOut, statusErr) = try await warden(["db", "status", "--state", state, "--json"])
        #expect(s == 0, "\(statusErr)")
        let status = try JSONDecoder().decode(Status.self, from: Data(statusOut.utf8))
        #expect(status.records == 29)
        #expect(status.ecosystems["PyPI"] == 16 && status.ecosystems["Go"] == 6 && status.ecosystems["Debian:7"] == 1)
        #expect(status.newestModified == "2025-10-13T15:48:05.810314Z")
        #expect(status.lastImport != nil)
        #expect(status.ageDays != nil)

        let (_, text, _) = try await warden(["db", "status", "--state", state])
        #expect(text.contains("records: 29 (0 withdrawn)"), "\(text)")
        #expect(text.contains("PyPI"))
    }

    @Test func dbImportExitCodes() async throws {
        let dir = try makeTemporaryDirectory()
        let state = dir + "/state"
        // Nothing readable: every record malformed → exit 1 with the first one named.
        try #"{"modified": "2024-01-01T00:00:00Z"}"#.write(toFile: dir + "/X-1.json", atomically: true, encoding: .utf8)
        let (bad, badOut, badErr) = try await warden(["db", "import", dir + "/X-1.json", "--state", state])
        #expect(bad == 1)
        #expect(badOut.contains("malformed: \(dir)/X-1.json: $.id: required string is missing"), "\(badOut)")
        #expect(badErr.contains("no record could be read"), "\(badErr)")
        // Some malformed, some read: success.
        let (mixed, _, mixedErr) = try await warden(["db", "import", dir + "/X-1.json", Self.data + "/github", "--state", state])
        #expect(mixed == 0, "\(mixedErr)")
        // A path that does not exist: 3, and nothing of the other paths is imported.
        let fresh = dir + "/fresh"
        let (missing, _, missingErr) = try await warden(["db", "import", Self.data + "/github", dir + "/none.zip", "--state", fresh])
        #expect(missing == 3, "\(missingErr)")
        let (_, empty, _) = try await warden(["db", "status", "--state", fresh, "--json"])
        #expect(empty.contains("\"records\" : 0"), "\(empty)")
        // A time that is not RFC 3339: usage error.
        let (usage, _, _) = try await warden(["db", "import", dir, "--state", state, "--modified-since", "yesterday"])
        #expect(usage == 64)
    }
}
