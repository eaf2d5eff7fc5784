import AsyncHTTPClient
import CEL
import Documents
import Foundation
import OCITesting
import Testing

/// `warden findings`, `warden rescore` and `warden compliance` as clients of a running `warden serve`: the same
/// output as the same commands on the server's state directory, changes made as the token's principal, and the
/// commands the API has no counterpart of refusing `--server` instead of quietly working on a local directory.
@Suite(.serialized) struct ComplianceCLIClientTests {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)
    static let artefact = "registry.example/team/app@\(digest)"

    @Test func theComplianceCommandsAsClientsPrintWhatTheyPrintLocally() async throws {
        try await withClient { client in try await self.body(client) }
    }

    func body(_ client: HTTPClient) async throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let token = try await adminToken(dir)
        // The state directory's SLA policy, set before the server starts: CRITICAL is due in 7 days, not 30.
        try """
        apiVersion: warden.dev/v1
        kind: SLAPolicy
        spec:
          types:
            - type: vulnerability
              categorisations:
                - {id: CRITICAL, value: 8, allowedProcessingTime: 7, selector: {cvss: {min: 9, max: 10}}}
                - {id: MEDIUM, value: 2, allowedProcessingTime: 90, selector: {cvss: {min: 0, max: 8.9}}}
                - {id: NONE, value: 0}
        """.write(toFile: dir + "/policy.yaml", atomically: true, encoding: .utf8)
        let (set, _, setErr) = try await runWarden(["compliance", "policy", "--set", dir + "/policy.yaml", "--state", dir + "/state"])
        #expect(set == 0, "\(setErr)")
        let server = try await ServeProcess(dir: dir)
        try await server.ready(client)
        let scan = """
            {"artefact": "\(Self.artefact)", "datasource": "osv", "tags": ["1.0"], "entries": [
              {"type": "vulnerability", "subject": "pkg:deb/debian/openssl", "id": "CVE-2026-1", "score": 9.8, "summary": "overflow"},
              {"type": "vulnerability", "subject": "pkg:deb/debian/zlib", "id": "CVE-2026-2", "score": 5.0, "summary": "read"}]}
            """
        let (status, answer) = try await client.send(.POST, server.base + "/api/v1/scans", token: token, json: scan)
        #expect(status == 200, "\(answer)")
        var env = ProcessInfo.processInfo.environment
        env["XDG_CONFIG_HOME"] = dir + "/config"
        env["WARDEN_SERVER"] = nil
        env["WARDEN_TOKEN"] = nil
        let warden = try wardenExecutable()
        func remote(_ args: [String], token: String? = token) async throws -> ProcessResult {
            var e = env
            e["WARDEN_TOKEN"] = token
            return try await runProgram(warden, args + ["--server", server.base], environment: e)
        }
        func local(_ args: [String]) async throws -> ProcessResult {
            try await runProgram(warden, args + ["--state", server.state], environment: env)
        }
        /// Runs both; the outputs must be the same but for the lines `now` dates (`ignoring` says which).
        func same(_ args: [String], ignoring: (Substring) -> Bool = { _ in false }) async throws -> ProcessResult {
            let r = try await remote(args)
            let l = try await local(args)
            func kept(_ text: String) -> [Substring] { text.split(separator: "\n").filter { !ignoring($0) } }
            #expect(
                r.succeeded && l.succeeded && kept(r.output) == kept(l.output),
                "\(args): \(r.output)\(r.errorOutput)\n---\n\(l.output)\(l.errorOutput)")
            return r
        }

        // Without a token the server refuses (401 → exit 4) and says how to get one.
        let anonymous = try await remote(["findings", "list"], token: nil)
        #expect(anonymous.status == 4 && anonymous.errorOutput.contains("warden login"), "\(anonymous.errorOutput)")

        let list = try await same(["findings", "list", "--output", "json"])
        let page = try Value.parseJSON(Array(list.output.utf8))
        guard case .list(let items)? = page["items"], items.count == 2, case .string(let key)? = items[0]["key"] else {
            Issue.record("findings list: \(list.output)")
            return
        }
        _ = try await same(["findings", "list", "--artefact", Self.artefact, "--category", "CRITICAL"])
        // The server applies the state directory's policy: the CRITICAL finding is due 7 days after its discovery.
        let critical = try #require(items.first { $0["category"]?.string == "CRITICAL" }, "\(items)")
        let discovered = try #require(critical["discoveredAt"]?.string.flatMap(RFC3339.date))
        #expect(critical["dueDate"]?.string.flatMap(RFC3339.date) == discovered + 7 * 86_400, "\(critical)")
        _ = try await same(["findings", "show", key, "--output", "json"])

        // A rescoring made through the server is the token's principal's, and both sides see it.
        let created = try await remote([
            "rescore", "create", "--package", "pkg:deb/debian/openssl", "--id", "CVE-2026-1", "--scope", "global", "--category", "NONE",
            "--comment", "not reachable", "--expires", "2099-01-01",
        ])
        #expect(created.succeeded && created.output.hasPrefix("rsc-") && created.output.contains("NONE"), "\(created.output)\(created.errorOutput)")
        let id = String(created.output.prefix { !$0.isWhitespace })
        let listed = try await same(["rescore", "list", "--output", "json"])
        #expect(listed.output.contains(#""user" : "admin""#), "\(listed.output)")
        let summary = try await same(["compliance", "summary", Self.artefact])
        #expect(summary.output.contains(": MEDIUM"), "the rescored CRITICAL no longer counts: \(summary.output)")
        // A summary is as of now: its time and the day before it differ by the moments the two commands ran.
        _ = try await same(["compliance", "summary", Self.artefact, "--output", "json"]) { $0.hasPrefix(#"  "at""#) || $0.hasPrefix(#"  "from""#) }
        _ = try await same(["compliance", "sla-report", Self.artefact, "--release-date", "2099-06-01", "--output", "json"])
        // The document's own id and time are the moment of the export; its statements are the same.
        let exported = try await same(["rescore", "export"]) { $0.hasPrefix(#"  "@id""#) || $0.hasPrefix(#"  "timestamp""#) }
        #expect(exported.output.contains("CVE-2026-1") && exported.output.contains("not_affected"), "\(exported.output)")

        let snap = try await remote(["compliance", "snapshot"])
        #expect(snap.succeeded && snap.output.contains("snapshots taken"), "\(snap.output)\(snap.errorOutput)")
        let history = try await same(["compliance", "history", Self.artefact, "--output", "json"])
        #expect(history.output.contains(#""summary" : "MEDIUM""#), "\(history.output)")

        // Errors keep their meaning: an unknown rescoring is a 404 (exit 3), a bad category the server's 400.
        let missing = try await remote(["rescore", "revoke", "rsc-nope"])
        #expect(missing.status == 3 && missing.errorOutput.contains("rsc-nope"), "\(missing.errorOutput)")
        let bad = try await remote([
            "rescore", "create", "--package", "p", "--id", "CVE-2026-2", "--scope", "global", "--category", "SOMEDAY", "--comment", "x",
        ])
        #expect(bad.status == 1 && bad.errorOutput.contains("SOMEDAY"), "\(bad.errorOutput)")
        let revoked = try await remote(["rescore", "revoke", id])
        #expect(revoked.succeeded && revoked.output.hasPrefix("\(id) ends"), "\(revoked.output)\(revoked.errorOutput)")
        let after = try await same(["compliance", "summary", Self.artefact])
        #expect(after.output.contains(": CRITICAL"), "\(after.output)")

        // What only works on a state directory says so instead of writing to a local one.
        let track = try await remote(["findings", "track", Self.artefact])
        #expect(track.status == 64 && track.errorOutput.contains("state directory only"), "\(track.errorOutput)")
        #expect(try await server.stop().status == 0)
        let audit = try await runProgram(warden, ["audit", "list", "--action", "rescoring.create", "--state", server.state], environment: env)
        #expect(audit.output.contains("admin"), "\(audit.output)")
    }
}
