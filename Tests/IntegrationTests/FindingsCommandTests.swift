import Foundation
import OCITesting
import Testing

/// `warden scan` → `warden findings record` → `warden rescore` → `warden compliance` through the binary on one state
/// directory: real OSV records against the mixed SBOM, a VEX statement becoming a rescoring of one version, an
/// artefact-wide rescoring covering the next version, discovery dates carried across the version bump.
@Suite struct FindingsCommandTests {
    static let v1 = "r.example/team/app@sha256:" + String(repeating: "1", count: 64)
    static let v2 = "r.example/team/app@sha256:" + String(repeating: "2", count: 64)

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
    }

    func items(_ state: String, _ extra: [String] = []) async throws -> [[String: Any]] {
        let (status, out, err) = try await warden(["findings", "list", "--state", state, "--output", "json", "--limit", "1000"] + extra)
        #expect(status == 0, "\(err)")
        return try json(out)["items"] as? [[String: Any]] ?? []
    }

    @Test func aScanReportBecomesFindingsThatRescoringsAndVersionBumpsFollow() async throws {
        let state = try makeTemporaryDirectory()
        try await ScanTests.importDatabase(state)
        let dir = try makeTemporaryDirectory()
        let sbom = "sbom:" + ScanTests.data + "/sbom/mixed.cdx.json"
        let (created, _, createErr) = try await warden([
            "vex", "create", "--id", "CVE-2024-4068", "--product", "pkg:npm/braces", "--status", "not_affected", "--justification",
            "vulnerable_code_not_in_execute_path", "-o", dir + "/braces.openvex.json",
        ])
        #expect(created == 0, "\(createErr)")
        let (scanned, _, scanErr) = try await warden([
            "scan", sbom, "--state", state, "--vex", dir + "/braces.openvex.json", "-o", "json=\(dir)/v1.json",
        ])
        #expect(scanned == 0, "\(scanErr)")
        // The SBOM names no digest: the artefact is given.
        let (noArtefact, _, noArtefactErr) = try await warden(["findings", "record", dir + "/v1.json", "--state", state])
        #expect(noArtefact == 64 && noArtefactErr.contains("--artefact"), "\(noArtefactErr)")
        let (recorded, recordOut, recordErr) = try await warden([
            "findings", "record", dir + "/v1.json", "--artefact", Self.v1, "--tag", "1.0", "--state", state, "--output", "json",
        ])
        #expect(recorded == 0, "\(recordErr)")
        let outcome = try json(recordOut)
        let scan = try #require(outcome["scan"] as? [String: Any])
        #expect(scan["reported"] as? Int == ScanTests.expected.count && scan["new"] as? Int == ScanTests.expected.count, "\(recordOut)")
        #expect((outcome["rescorings"] as? [Any])?.count == 1)
        let first = try await items(state)
        #expect(first.count == ScanTests.expected.count)
        let braces = try #require(first.first { $0["subject"] as? String == "pkg:npm/braces" })
        #expect(braces["category"] as? String == "NONE" && braces["rescoring"] != nil, "\(braces)")
        // Recording the same report again changes nothing and makes no second VEX rescoring.
        let (again, againOut, _) = try await warden(["findings", "record", dir + "/v1.json", "--artefact", Self.v1, "--state", state])
        #expect(again == 0 && againOut.contains("(0 new), 0 resolved, 0 VEX rescorings"), "\(againOut)")

        // jinja2's finding does not apply to any version of the artefact.
        let jinja = try #require(first.first { $0["subject"] as? String == "pkg:pypi/jinja2" })
        let (rescored, rescoreOut, rescoreErr) = try await warden([
            "rescore", "--package", "pkg:pypi/jinja2", "--id", "CVE-2024-34064", "--scope", "artefact:r.example/team/app", "--category", "NONE",
            "--comment", "templates are not user-supplied", "--state", state,
        ])
        #expect(rescored == 0 && rescoreOut.hasPrefix("rsc-"), "\(rescoreErr)")
        let (badScope, _, badScopeErr) = try await warden([
            "rescore", "--package", "x", "--id", "y", "--scope", "artefact:nope", "--category", "NONE", "--comment", "c", "--state", state,
        ])
        #expect(badScope == 64 && badScopeErr.contains("--scope"), "\(badScopeErr)")

        // Version 2, scanned without the VEX file: braces is back in its own category there, jinja2 stays NONE, and
        // every finding keeps version 1's discovery date.
        let (scanned2, _, _) = try await warden(["scan", sbom, "--state", state, "-o", "json=\(dir)/v2.json"])
        #expect(scanned2 == 0)
        let (recorded2, _, recordErr2) = try await warden(["findings", "record", dir + "/v2.json", "--artefact", Self.v2, "--state", state])
        #expect(recorded2 == 0, "\(recordErr2)")
        let second = try await items(state, ["--artefact", Self.v2])
        #expect(second.count == ScanTests.expected.count)
        #expect(second.first { $0["subject"] as? String == "pkg:npm/braces" }?["category"] as? String == "HIGH")
        #expect(second.first { $0["subject"] as? String == "pkg:pypi/jinja2" }?["category"] as? String == "NONE")
        let discovered = Dictionary(first.map { ("\($0["subject"]!) \($0["id"]!)", $0["discoveredAt"] as? String) }, uniquingKeysWith: { a, _ in a })
        for f in second { #expect(discovered["\(f["subject"]!) \(f["id"]!)"] == f["discoveredAt"] as? String, "\(f)") }
        let (shown, showOut, _) = try await warden(["findings", "show", try #require(jinja["key"] as? String), "--state", state])
        #expect(shown == 0 && showOut.contains("templates are not user-supplied"), "\(showOut)")

        // The summary, a snapshot, the history, an SLA report a year on.
        let (summarised, summaryOut, _) = try await warden(["compliance", "summary", Self.v2, "--state", state, "--output", "json"])
        #expect(summarised == 0)
        let summary = try json(summaryOut)
        #expect(["CRITICAL", "HIGH"].contains(summary["summary"] as? String ?? ""), "\(summaryOut)")
        #expect(summary["open"] as? Int == ScanTests.expected.count)
        let (tracked, _, _) = try await warden(["findings", "track", Self.v2, "--component", "shop", "--component-version", "2.0", "--state", state])
        #expect(tracked == 0)
        let (snap, snapOut, _) = try await warden(["compliance", "snapshot", "--state", state])
        #expect(snap == 0 && snapOut.contains("3 snapshots"), "\(snapOut)")
        let (history, historyOut, _) = try await warden(["compliance", "history", "shop", "--state", state])
        #expect(history == 0 && historyOut.split(separator: "\n").count == 1, "\(historyOut)")
        let nextYear = RFC3339Day.string(Date().addingTimeInterval(365 * 86_400))
        let (report, reportOut, _) = try await warden([
            "compliance", "sla-report", "shop", "--release-date", nextYear, "--state", state, "--output", "json",
        ])
        #expect(report == 0)
        let overdue = try json(reportOut)["overdue"] as? [[String: Any]] ?? []
        #expect(!overdue.isEmpty && !overdue.contains { $0["subject"] as? String == "pkg:pypi/jinja2" }, "\(reportOut)")

        // Rescorings as OpenVEX, read back by the scanner: a global NONE for idna suppresses its finding in a new scan.
        let (global, _, globalErr) = try await warden([
            "rescore", "--package", "pkg:pypi/idna", "--id", "CVE-2024-3651", "--scope", "global", "--category", "NONE", "--comment",
            "vulnerable_code_not_in_execute_path", "--state", state,
        ])
        #expect(global == 0, "\(globalErr)")
        let (exported, _, exportErr) = try await warden(["rescore", "export", "-o", dir + "/rescorings.openvex.json", "--state", state])
        #expect(exported == 0, "\(exportErr)")
        let vex = try json(try String(contentsOfFile: dir + "/rescorings.openvex.json", encoding: .utf8))
        let statements = vex["statements"] as? [[String: Any]] ?? []
        // braces (single version), jinja2 (every version), idna (anywhere).
        #expect(statements.count == 3 && statements.allSatisfy { $0["status"] as? String == "not_affected" }, "\(vex)")
        let (rescan, rescanOut, rescanErr) = try await warden([
            "scan", sbom, "--state", state, "--vex", dir + "/rescorings.openvex.json", "-o", "json",
        ])
        #expect(rescan == 0, "\(rescanErr)")
        let suppressed = try ScanTests.decodeReport(rescanOut).findings.first { $0.package.name == "idna" }?.suppression
        #expect(suppressed?.status == "not_affected", "\(rescanOut.prefix(2000))")

        // A file that is not a report: a clear error, nothing recorded.
        try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/empty.json"))
        let (bad, _, badErr) = try await warden(["findings", "record", dir + "/empty.json", "--artefact", Self.v1, "--state", state])
        #expect(bad == 65 && badErr.contains("empty.json"), "\(badErr)")
        let (audit, auditOut, _) = try await warden(["audit", "list", "--state", state])
        #expect(audit == 0 && auditOut.contains("rescoring.create") && auditOut.contains("findings.scan"), "\(auditOut)")
    }
}

extension FindingsCommandTests {
    /// The scanners as workflow steps: `findings/record@v1` records a scan computed by any step (here, literal
    /// entries of a datasource of one's own); `findings/scan@v1` runs a built-in scanner on an image in a real
    /// registry. Both land in the state directory's findings, audited as the run's.
    @Test func workflowStepsRecordScansOfTheirOwnAndOfTheBuiltInScanners() async throws {
        let reg = try await RegistryProcess.start()
        defer { reg.stop() }
        let dir = try makeTemporaryDirectory()
        let state = dir + "/state"
        let layout = try await SBOMTests.makeLayout()
        try await Skopeo.run(["copy", "--dest-tls-verify=false", "oci:\(layout):v1", "docker://\(reg.host)/team/app:v1"])
        let digest = try await Skopeo.rawManifest("\(reg.host)/team/app:v1").1.description
        try """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: compliance
        inputs:
          artefact: {type: string}
        steps:
          - id: secrets
            uses: findings/record@v1
            with:
              artefact: '${{ inputs.artefact }}'
              datasource: secrets
              entries:
                - {type: secret, subject: /app/.env, id: aws-access-key, score: 9.1, summary: an AWS key in .env}
          - id: licenses
            uses: findings/scan@v1
            with: {artefact: '${{ inputs.artefact }}', scanner: license}
        outputs:
          secrets: ${{ steps.secrets.outputs.new }}
          licenses: ${{ steps.licenses.outputs.reported }}
        """.write(toFile: dir + "/compliance.yaml", atomically: true, encoding: .utf8)
        let artefact = "\(reg.host)/team/app@\(digest)"
        let (rc, out, err) = try await warden([
            "run", dir + "/compliance.yaml", "--input", "artefact=\(artefact)", "--state", state, "--output", "json",
        ])
        #expect(rc == 0, "\(out)\(err)")
        #expect(out.contains(#""secrets":1"#), "\(out)")
        let listed = try await items(state, ["--artefact", artefact])
        #expect(listed.contains { $0["datasource"] as? String == "secrets" && $0["category"] as? String == "uncategorised" }, "\(listed)")
        #expect(listed.contains { $0["datasource"] as? String == "license" }, "\(listed)")
        let (audit, auditOut, _) = try await warden(["audit", "list", "--state", state])
        #expect(audit == 0 && auditOut.contains("run:") && auditOut.contains("findings.scan"), "\(auditOut)")
        // A step given a tag instead of a digest fails permanently, saying what it needs.
        let (bad, badOut, badErr) = try await warden([
            "run", dir + "/compliance.yaml", "--input", "artefact=\(reg.host)/team/app:v1", "--state", state,
        ])
        #expect(bad != 0 && (badOut + badErr).contains("sha256"), "\(badOut)\(badErr)")
    }
    /// The state directory's SLA policy: shown, checked with file:line errors, set (audited), applied by every
    /// command that reads findings; a broken one stops those commands and can still be replaced.
    @Test func theStateDirectorysSLAPolicyIsCheckedSetAndApplied() async throws {
        let state = try makeTemporaryDirectory()
        let dir = try makeTemporaryDirectory()
        let (shown, shownOut, _) = try await warden(["compliance", "policy", "--state", state])
        #expect(
            shown == 0 && shownOut.contains("policy: defaults") && shownOut.contains("vulnerability\tCRITICAL\tvalue 8\tdue in 30 days"),
            "\(shownOut)")
        try """
        apiVersion: warden.dev/v1
        kind: SLAPolicy
        spec:
          types:
            - type: vulnerability
              categorisations:
                - {id: URGENT, value: 8, allowedProcessingTime: 7, selector: {cvss: {min: 7, max: 10}}}
                - {id: SOON, value: 2, allowedProcessingTime: 30, selector: {cvss: {min: 6.5, max: 8}}}
        """.write(toFile: dir + "/overlap.yaml", atomically: true, encoding: .utf8)
        let (bad, _, badErr) = try await warden(["compliance", "policy", "--check", dir + "/overlap.yaml", "--state", state])
        #expect(bad == 65 && badErr.contains("overlap.yaml:8:") && badErr.contains("overlaps category URGENT"), "\(badErr)")
        try """
        apiVersion: warden.dev/v1
        kind: SLAPolicy
        metadata: {name: strict}
        spec:
          discovery: {maximumReuse: 30}
          types:
            - type: vulnerability
              categorisations:
                - {id: URGENT, value: 8, allowedProcessingTime: 7, selector: {cvss: {min: 7, max: 10}}}
                - {id: LATER, value: 1, allowedProcessingTime: 0, selector: {cvss: {min: 0.1, max: 6.9}}}
                - {id: NONE, value: 0}
        """.write(toFile: dir + "/strict.yaml", atomically: true, encoding: .utf8)
        let (set, setOut, setErr) = try await warden(["compliance", "policy", "--set", dir + "/strict.yaml", "--state", state])
        #expect(set == 0 && setOut.contains("sla-policy.yaml") && setOut.contains("up to 30 days"), "\(setOut)\(setErr)")
        #expect(setOut.contains("vulnerability\tLATER\tvalue 1\tdue on discovery\tcvss 0.1–6.9"), "\(setOut)")

        // Findings recorded and listed under it: the ids are the policy's, LATER ones overdue at once.
        try await ScanTests.importDatabase(state)
        let (scanned, _, scanErr) = try await warden([
            "scan", "sbom:" + ScanTests.data + "/sbom/mixed.cdx.json", "--state", state, "-o", "json=\(dir)/r.json",
        ])
        #expect(scanned == 0, "\(scanErr)")
        let (recorded, _, recordErr) = try await warden(["findings", "record", dir + "/r.json", "--artefact", Self.v1, "--state", state])
        #expect(recorded == 0, "\(recordErr)")
        let listed = try await items(state)
        let categories = Set(listed.compactMap { $0["category"] as? String })
        #expect(!listed.isEmpty && categories.isSubset(of: ["URGENT", "LATER", "NONE", "uncategorised"]), "\(categories)")
        #expect(listed.filter { $0["category"] as? String == "LATER" }.allSatisfy { $0["overdue"] as? Bool == true })
        let (audit, auditOut, _) = try await warden(["audit", "list", "--action", "sla-policy.set", "--state", state])
        #expect(audit == 0 && auditOut.contains("sla-policy.set"), "\(auditOut)")

        // A policy broken in place stops what reads findings, naming it; setting a good one still works.
        try "apiVersion: warden.dev/v1\nkind: SLAPolicy\nspec: {typos: []}\n".write(
            toFile: state + "/sla-policy.yaml", atomically: true, encoding: .utf8)
        let (broken, _, brokenErr) = try await warden(["findings", "list", "--state", state])
        #expect(broken == 65 && brokenErr.contains("sla-policy.yaml:3:") && brokenErr.contains("typos"), "\(brokenErr)")
        let (fixed, _, fixedErr) = try await warden(["compliance", "policy", "--set", dir + "/strict.yaml", "--state", state])
        #expect(fixed == 0, "\(fixedErr)")
        #expect(try await items(state).count == listed.count)
    }
}

/// `yyyy-mm-dd` in UTC.
enum RFC3339Day {
    static func string(_ d: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd"
        return f.string(from: d)
    }
}
