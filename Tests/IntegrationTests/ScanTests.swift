import Foundation
import OCI
import OCITesting
import Testing

/// `warden db import` + `warden scan` through the binary: real OSV records (Tests/VulnerabilityTests/Data/osv,
/// SOURCES.md says where each came from) matched against a hand-written SBOM of PyPI, npm, Maven, Go, Debian,
/// Ubuntu and Alpine packages with the expected finding set; VEX and ignore rules; --fail-on; layer provenance
/// and the vulnerability attestation on a real registry.
@Suite struct ScanTests {
    static let data = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("VulnerabilityTests/Data").path

    /// Every (vulnerability id, package name) the mixed SBOM must produce against the test records, worked out
    /// from the records by hand: the fixed versions are above the SBOM's versions, the other releases' and the
    /// already-fixed records stay out (jinja2's PYSEC 2014–2021, requests' PYSEC-2023-74 fixed in 2.31.0,
    /// pip's fixed in 23.3, nginx of Debian 12 against a Debian 7 advisory, mariadb 10.6.8-r0).
    static let expected: Set<String> = [
        "CVE-2024-34064 jinja2", "CVE-2024-35195 requests", "CVE-2023-43804 urllib3", "CVE-2023-45803 urllib3", "CVE-2024-3651 idna",
        "CVE-2023-37920 certifi", "MULTI-ECO-FIX-DEMO demo-lib@pypi", "MULTI-ECO-FIX-DEMO demo-lib@npm", "CVE-2024-4068 braces",
        "CVE-2024-47554 commons-io", "CVE-2023-45288 stdlib", "CVE-2026-33814 stdlib", "CVE-2026-42505 stdlib",
        "CVE-2023-45288 golang.org/x/net", "CVE-2026-33814 golang.org/x/net", "CVE-2023-48795 golang.org/x/crypto",
        "CVE-2025-22869 golang.org/x/crypto", "GO-2024-3344 filippo.io/age", "CVE-2014-3616 nginx-full", "CVE-2022-27449 mariadb-client",
        "CVE-2025-38094 linux-image-3.13.0-170-generic",
    ]

    struct Report: Decodable {
        struct Finding: Decodable {
            struct Package: Decodable {
                var name: String
                var type: String
                var ecosystem: String
                var layer: String?
            }
            struct Suppression: Decodable {
                var status: String
                var source: String
            }
            var id: String
            var ids: [String]
            var package: Package
            var severity: String
            var explanation: [String]
            var fixedVersions: [String]
            var suppression: Suppression?
        }
        var findings: [Finding]
        var warnings: [String]
        var expiredRules: [String]
    }

    static func decodeReport(_ text: String) throws -> Report { try JSONDecoder().decode(Report.self, from: Data(text.utf8)) }

    static func key(_ f: Report.Finding) -> String {
        f.package.name == "demo-lib" ? "\(f.id) demo-lib@\(f.package.type)" : "\(f.id) \(f.package.name)"
    }

    static func importDatabase(_ state: String) async throws {
        let (status, out, err) = try await warden(["db", "import", data + "/osv", "--state", state])
        #expect(status == 0, "\(out)\(err)")
    }

    @Test func realRecordsAgainstAHandWrittenSBOM() async throws {
        let state = try makeTemporaryDirectory()
        try await Self.importDatabase(state)
        let dir = try makeTemporaryDirectory()
        let sbom = Self.data + "/sbom/mixed.cdx.json"
        let (status, out, err) = try await warden([
            "scan", "sbom:\(sbom)", "--state", state, "-o", "json", "-o", "sarif=\(dir)/scan.sarif", "-o", "cyclonedx-json=\(dir)/vdr.json",
            "-o", "table=\(dir)/table.txt", "--max-db-age", "100000",
        ])
        #expect(status == 0, "\(err)")
        let report = try JSONDecoder().decode(Report.self, from: Data(out.utf8))
        #expect(Set(report.findings.map(Self.key)) == Self.expected)
        #expect(report.findings.count == Self.expected.count)
        // idna's PYSEC record lists a GIT range first: it is skipped with a reason and the ECOSYSTEM range still
        // decides (the evaluation does not stop at the first range).
        let idna = try #require(report.findings.first { $0.package.name == "idna" })
        #expect(idna.explanation.contains { $0.contains("(GIT) skipped") })
        #expect(idna.explanation.contains("PYSEC-2024-60 (PyPI): introduced 0.1 ≤ 3.6 < fixed 3.7 (PEP 440 order)"))
        // urllib3's record writes its events out of order (2.0.0 → 2.0.6, then 0 → 1.26.17): sorted, the 1.26 window matches.
        let urllib3 = try #require(report.findings.first { $0.id == "CVE-2023-43804" })
        #expect(urllib3.fixedVersions.first == "1.26.17")
        #expect(urllib3.ids.contains("GHSA-v845-jxx5-vc9f") && urllib3.ids.contains("PYSEC-2023-192"))
        let nginx = try #require(report.findings.first { $0.package.name == "nginx-full" })
        #expect(nginx.package.ecosystem == "Debian:7")
        #expect(nginx.explanation == ["DSA-3029-1 (Debian:7): introduced 0 ≤ 1.2.1-2.2+wheezy2 < fixed 1.2.1-2.2+wheezy3 (dpkg order)"])
        let stdlib = try #require(report.findings.first { $0.id == "CVE-2023-45288" && $0.package.name == "stdlib" })
        #expect(stdlib.explanation == ["GO-2024-2687 (Go): introduced 0 ≤ go1.21.3 < fixed 1.21.9 (Go module order)"])
        // The outputs the other formats wrote validate where a validator exists.
        for (kind, file) in [("sarif", "scan.sarif"), ("cyclonedx", "vdr.json")] {
            let checked = try await runProgram("/usr/bin/env", ["python3", Self.data + "/../reference/validate.py", kind, "\(dir)/\(file)"])
            #expect(checked.status == 0, "\(kind): \(checked.output)\(checked.errorOutput)")
        }
        let table = try String(contentsOfFile: dir + "/table.txt", encoding: .utf8)
        #expect(table.contains("CVE-2024-4068"))
    }

    @Test func vexIgnoreRulesAndFailOn() async throws {
        let state = try makeTemporaryDirectory()
        try await Self.importDatabase(state)
        let dir = try makeTemporaryDirectory()
        let sbom = "sbom:" + Self.data + "/sbom/mixed.cdx.json"
        // Four findings are high (urllib3's CVE-2023-43804, idna, braces, commons-io): --fail-on high exits 16, critical 0.
        let (high, _, highErr) = try await warden(["scan", sbom, "--state", state, "--fail-on", "high", "-o", "json=\(dir)/r.json"])
        #expect(high == 16, "\(highErr)")
        let (critical, _, _) = try await warden(["scan", sbom, "--state", state, "--fail-on", "critical", "-o", "json=\(dir)/r.json"])
        #expect(critical == 0)
        // A VEX statement (written by `warden vex create`) sets braces' finding aside; three highs remain.
        let (created, _, createErr) = try await warden([
            "vex", "create", "--id", "CVE-2024-4068", "--product", "pkg:npm/braces", "--status", "not_affected", "--justification",
            "vulnerable_code_not_in_execute_path", "-o", dir + "/braces.openvex.json",
        ])
        #expect(created == 0, "\(createErr)")
        let (vexed, out, vexErr) = try await warden([
            "scan", sbom, "--state", state, "--fail-on", "high", "--vex", dir + "/braces.openvex.json", "-o", "json",
        ])
        #expect(vexed == 16, "\(vexErr)")
        let report = try JSONDecoder().decode(Report.self, from: Data(out.utf8))
        let braces = try #require(report.findings.first { $0.package.name == "braces" })
        #expect(braces.suppression?.status == "not_affected")
        #expect(report.findings.filter { $0.severity == "high" && $0.suppression == nil }.count == 3)
        // A not_affected statement without a justification or impact statement is refused, naming the file.
        try Data(
            #"{"@context":"https://openvex.dev/ns/v0.2.0","@id":"urn:x","author":"a","timestamp":"2026-01-01T00:00:00Z","version":1,"statements":[{"vulnerability":{"name":"CVE-2024-4068"},"products":[{"@id":"pkg:npm/braces"}],"status":"not_affected"}]}"#
                .utf8
        ).write(to: URL(fileURLWithPath: dir + "/bad.openvex.json"))
        let (refused, _, refusedErr) = try await warden(["scan", sbom, "--state", state, "--vex", dir + "/bad.openvex.json"])
        #expect(refused != 0 && refusedErr.contains("bad.openvex.json") && refusedErr.contains("justification"), "\(refusedErr)")
        // Ignore rules for the other three highs, and one expired rule (reported, no longer applying): the gate passes.
        try Data(
            """
            rules:
              - id: CVE-2023-43804
                reason: no cookies are sent through redirects here
                expires: 2099-01-01
              - id: CVE-2024-3651
                reason: host names come from configuration only
                expires: 2099-01-01
              - package: pkg:maven/commons-io/commons-io
                reason: XmlStreamReader is not used
                expires: 2099-01-01
              - id: CVE-2024-35195
                reason: accepted until the upgrade
                expires: 2020-01-01
            """.utf8
        ).write(to: URL(fileURLWithPath: dir + "/ignore.yaml"))
        let (ignored, ignoredOut, ignoredErr) = try await warden([
            "scan", sbom, "--state", state, "--vex", dir + "/braces.openvex.json", "--ignore", dir + "/ignore.yaml", "--fail-on", "high", "-o",
            "json", "--now", "2026-12-01T00:00:00Z",
        ])
        #expect(ignored == 0, "\(ignoredErr)")
        let ir = try JSONDecoder().decode(Report.self, from: Data(ignoredOut.utf8))
        #expect(ir.findings.first { $0.id == "CVE-2024-3651" }?.suppression?.status == "ignored")
        #expect(ir.findings.first { $0.id == "CVE-2024-47554" }?.suppression?.status == "ignored")
        #expect(ir.findings.first { $0.id == "CVE-2024-35195" }?.suppression == nil)
        #expect(ir.expiredRules.count == 1 && ir.expiredRules[0].contains("CVE-2024-35195"), "\(ir.expiredRules)")
        // A stale database: reported by default, refused with --fail-on-stale.
        // The JSON report is a policy input as it is: `policy check --facts` gates on its vulnerabilities.
        try Data(ignoredOut.utf8).write(to: URL(fileURLWithPath: dir + "/scan.json"))
        try """
        apiVersion: warden.dev/v1
        kind: Policy
        name: no-open-high
        rules:
          - name: no-open-high
            deny: vulnerabilities.exists(v, v.severity in ["CRITICAL", "HIGH"] && v.vex == null)
        """.write(toFile: dir + "/gate.yaml", atomically: true, encoding: .utf8)
        let (gate, gateOut, gateErr) = try await warden(["policy", "eval", dir + "/gate.yaml", "--input", dir + "/scan.json"])
        #expect(gate == 0, "\(gateOut)\(gateErr)")
        let (openGate, _, _) = try await warden(["policy", "eval", dir + "/gate.yaml", "--input", dir + "/r.json"])
        #expect(openGate == 12)
        let (stale, _, staleErr) = try await warden(["scan", sbom, "--state", state, "--fail-on-stale", "--max-db-age", "1"])
        #expect(stale != 0 && staleErr.contains("days old"), "\(staleErr)")
    }

    @Test func imagesNameTheLayerAndTheScanIsAttested() async throws {
        let state = try makeTemporaryDirectory()
        try await Self.importDatabase(state)
        let layout = try await SBOMTests.makeLayout()
        let dir = try makeTemporaryDirectory()
        let (status, out, err) = try await warden(["scan", "oci-layout:\(layout):v1", "--state", state, "-o", "json"])
        #expect(status == 0, "\(err)")
        let report = try JSONDecoder().decode(Report.self, from: Data(out.utf8))
        // requests 2.31.0 is in the image's second layer.
        let store = try LayoutStore(path: layout)
        let manifest = try #require(try await store.fetchManifest(try await store.resolve("v1")).parsed().imageManifest)
        let requests = try #require(report.findings.first { $0.package.name == "requests" })
        #expect(requests.id == "CVE-2024-35195")
        #expect(requests.package.layer == manifest.layers[1].digest.description)
        // --attest on a registry: cosign's vulnerability predicate, verified by verify-attestation --type vuln.
        let registry = try await RegistryProcess.start()
        defer { registry.stop() }
        let (copied, _, copyErr) = try await warden(["copy", "oci-layout:\(layout):v1", "\(registry.host)/scan/app:v1"])
        #expect(copied == 0, "\(copyErr)")
        let env = ["WARDEN_PASSWORD": ""]
        _ = try await warden(["key", "generate", "--output-key-prefix", dir + "/k"], environment: env)
        let (attested, _, attestErr) = try await warden(
            ["scan", "\(registry.host)/scan/app:v1", "--state", state, "--attest", "--key", dir + "/k.key", "-o", "json=\(dir)/s.json"],
            environment: env)
        #expect(attested == 0, "\(attestErr)")
        let (verified, verifyOut, verifyErr) = try await warden([
            "verify-attestation", "\(registry.host)/scan/app:v1", "--type", "vuln", "--key", dir + "/k.pub",
        ])
        #expect(verified == 0, "\(verifyOut)\(verifyErr)")
        // An OpenVEX attestation on the image: read when it verifies with --vex-key, left out (and named) otherwise.
        try Data(
            #"{"@context":"https://openvex.dev/ns/v0.2.0","@id":"urn:warden:test","author":"release team","timestamp":"2026-11-01T00:00:00Z","version":1,"statements":[{"vulnerability":{"name":"CVE-2024-35195"},"products":[{"@id":"pkg:pypi/requests"}],"status":"not_affected","justification":"vulnerable_code_not_in_execute_path"}]}"#
                .utf8
        ).write(to: URL(fileURLWithPath: dir + "/requests.openvex.json"))
        let (vexAttested, _, vexAttestErr) = try await warden(
            [
                "attest", "\(registry.host)/scan/app:v1", "--type", "openvex", "--predicate", dir + "/requests.openvex.json", "--key", dir + "/k.key",
            ], environment: env)
        #expect(vexAttested == 0, "\(vexAttestErr)")
        let (withVEX, withVEXOut, withVEXErr) = try await warden([
            "scan", "\(registry.host)/scan/app:v1", "--state", state, "--vex-key", dir + "/k.pub", "-o", "json",
        ])
        #expect(withVEX == 0, "\(withVEXErr)")
        let suppressed = try JSONDecoder().decode(Report.self, from: Data(withVEXOut.utf8))
        #expect(suppressed.findings.first { $0.id == "CVE-2024-35195" }?.suppression?.status == "not_affected")
        _ = try await warden(["key", "generate", "--output-key-prefix", dir + "/other"], environment: env)
        let (otherKey, otherOut, _) = try await warden([
            "scan", "\(registry.host)/scan/app:v1", "--state", state, "--vex-key", dir + "/other.pub", "-o", "json",
        ])
        #expect(otherKey == 0)
        let unverified = try JSONDecoder().decode(Report.self, from: Data(otherOut.utf8))
        #expect(unverified.findings.first { $0.id == "CVE-2024-35195" }?.suppression == nil)
        #expect(unverified.warnings.contains { $0.contains("OpenVEX attestation") && $0.contains("left out") }, "\(unverified.warnings)")
    }

    /// `vuln/scan@v1` feeding `policy/eval@v1` in a workflow: the scan's `vulnerabilities` output is the policy
    /// input's list, and a medium finding without a VEX statement denies.
    @Test func scanStepFeedsThePolicyGate() async throws {
        let dir = try makeTemporaryDirectory()
        let state = dir + "/state"
        try await Self.importDatabase(state)
        let layout = try await SBOMTests.makeLayout()
        try """
        apiVersion: warden.dev/v1
        kind: Policy
        name: vuln-gate
        variables:
          open: >-
            vulnerabilities.filter(v, v.severity in ["CRITICAL", "HIGH", "MEDIUM"]
              && (v.vex == null || !(v.vex.status in ["not_affected", "fixed", "ignored"])))
        rules:
          - name: no-open-medium-or-worse
            deny: size(variables.open) > 0
            message: "open: {{ variables.open.map(v, v.id + ' ' + v.package.name) }}"
        """.write(toFile: dir + "/gate.yaml", atomically: true, encoding: .utf8)
        try """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: scan-gate
        inputs:
          image: {type: string}
        steps:
          - id: scan
            uses: vuln/scan@v1
            with: {image: '${{ inputs.image }}'}
          - id: gate
            uses: policy/eval@v1
            with:
              policy: gate.yaml
              facts: {vulnerabilities: '${{ steps.scan.outputs.vulnerabilities }}'}
        outputs:
          open: ${{ steps.scan.outputs.open }}
          decision: ${{ steps.gate.outputs.decision }}
          messages: ${{ steps.gate.outputs.messages }}
          report: ${{ steps.scan.artifacts["scan.sarif"] }}
        """.write(toFile: dir + "/scan.yaml", atomically: true, encoding: .utf8)
        let (rc, out, err) = try await warden([
            "run", dir + "/scan.yaml", "--input", "image=oci-layout:\(layout):v1", "--state", state, "--output", "json",
        ])
        #expect(rc == 0, "\(out)\(err)")
        #expect(out.contains(#""open":1"#), "\(out)")
        #expect(out.contains(#""decision":"deny""#), "\(out)")
        #expect(out.contains("CVE-2024-35195 requests"), "\(out)")
    }
}
