import Foundation
import OCITesting
import Testing

/// `warden policy eval|check` through the binary: decisions, exit codes, facts gathered from a real registry.
@Suite struct PolicyCheckTests {
    static var repo: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
    static var example: String { repo.appendingPathComponent("docs/examples/release-gate.yaml").path }
    static var schema: String { repo.appendingPathComponent("docs/schemas/policy-input.schema.json").path }

    @Test func evalExitCodesDistinguishAllowWarnDenyAndErrors() async throws {
        let dir = try makeTemporaryDirectory()
        let facts = Self.repo.appendingPathComponent("docs/examples/facts.json").path
        let (allow, allowOut, allowErr) = try await warden(["policy", "eval", Self.example, "--input", facts])
        #expect(allow == 0, "\(allowOut)\(allowErr)")
        #expect(allowOut.hasPrefix("policy release-gate: allow\n  pass  signed-by-release-key\n"))

        // Drop the VEX statement and the SBOM: deny with the finding's id, and a warning.
        var text = try String(contentsOfFile: facts, encoding: .utf8)
        text = text.replacingOccurrences(
            of: #""vex": {"status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}"#, with: #""vex": null"#)
        let sbomStart = text.range(of: #""sbom": {"#)!.lowerBound
        let vulnStart = text.range(of: #""vulnerabilities": ["#)!.lowerBound
        text.replaceSubrange(sbomStart..<vulnStart, with: "\"sbom\": null,\n  ")
        try text.write(toFile: dir + "/deny.json", atomically: true, encoding: .utf8)
        let (deny, denyOut, _) = try await warden(["policy", "eval", Self.example, "--input", dir + "/deny.json", "--output", "json"])
        #expect(deny == 12)
        let result = try JSONSerialization.jsonObject(with: Data(denyOut.utf8)) as? [String: Any]
        #expect(result?["decision"] as? String == "deny")
        let rules = result?["rules"] as? [[String: Any]] ?? []
        #expect(rules.count == 5)
        #expect(
            rules.first { $0["name"] as? String == "no-open-critical-vulnerability" }?["message"] as? String
                == "critical vulnerabilities without a VEX statement: CVE-2024-0001 in libc6")
        #expect(rules.first { $0["name"] as? String == "sbom-known" }?["outcome"] as? String == "fired")

        // Only the warning left: 0, or 14 with --fail-on-warn.
        let warnOnly = text.replacingOccurrences(of: #""vex": null"#, with: #""vex": {"status": "fixed"}"#)
        try warnOnly.write(toFile: dir + "/warn.json", atomically: true, encoding: .utf8)
        let (warn, warnOut, _) = try await warden(["policy", "eval", Self.example, "--input", dir + "/warn.json"])
        #expect(warn == 0)
        #expect(warnOut.contains("policy release-gate: warn") && warnOut.contains("  warn  sbom-known: no SBOM is known for"))
        let (strict, _, _) = try await warden(["policy", "eval", Self.example, "--input", dir + "/warn.json", "--fail-on-warn"])
        #expect(strict == 14)

        // Policy errors: malformed input (with its position), malformed policy, a rule that cannot be evaluated.
        try #"{"image": {"reference": "x"},}"#.write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        let (badInput, _, badInputErr) = try await warden(["policy", "eval", Self.example, "--input", dir + "/bad.json"])
        #expect(badInput == 15)
        #expect(badInputErr.contains("bad.json:1:30: expected a string key"), "\(badInputErr)")
        try "apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - name: a\n    deny: size(x) +\n".write(
            toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let (badPolicy, _, badPolicyErr) = try await warden(["policy", "eval", dir + "/bad.yaml", "--input", facts])
        #expect(badPolicy == 15)
        #expect(badPolicyErr.contains("bad.yaml:5:20: invalid CEL: unexpected end of input"), "\(badPolicyErr)")
        try "apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - name: a\n    deny: image.nothing\n".write(
            toFile: dir + "/runtime.yaml", atomically: true, encoding: .utf8)
        let (runtime, runtimeOut, _) = try await warden(["policy", "eval", dir + "/runtime.yaml", "--input", facts])
        #expect(runtime == 15)
        #expect(runtimeOut.contains("ERROR a: ") && runtimeOut.contains("runtime.yaml:5:16: `image.nothing`: no such key: nothing"), "\(runtimeOut)")
    }

    /// Facts from a real registry: a signed image with provenance passes the example policy through a trust
    /// policy, fails without one, and fails when --facts adds an open critical finding. The facts validate
    /// against the documented JSON Schema (Python jsonschema).
    @Test func checkGathersFactsFromTheRegistry() async throws {
        let registry = try await RegistryProcess.start()
        defer { registry.stop() }
        let dir = try makeTemporaryDirectory()
        let env = ["WARDEN_PASSWORD": ""]
        let image = "\(registry.host)/products/shop:1.4.2"
        _ = try await wardenDev(["testdata", image, "--layers", "2"])
        let (gen, _, genErr) = try await warden(["key", "generate", "--output-key-prefix", dir + "/release"], environment: env)
        #expect(gen == 0, "\(genErr)")
        try #"{"buildDefinition":{"buildType":"https://ci.example/build/v1"},"runDetails":{"builder":{"id":"https://ci.example/builder"}}}"#
            .write(toFile: dir + "/provenance.json", atomically: true, encoding: .utf8)
        for args in [
            ["sign", image], ["attest", image, "--predicate", dir + "/provenance.json", "--type", "slsaprovenance1", "--format", "bundle"],
        ] {
            let (s, _, e) = try await warden(args + ["--key", dir + "/release.key"], environment: env)
            #expect(s == 0, "\(args): \(e)")
        }
        try """
        apiVersion: warden.dev/v1
        kind: TrustPolicy
        authorities:
          release:
            key: release.pub
        policies:
          - name: all
            images: ["**"]
            authorities: [release]

        """.write(toFile: dir + "/trust.yaml", atomically: true, encoding: .utf8)

        let (status, out, err) = try await warden([
            "policy", "check", image, "--policy", Self.example, "--trust-policy", dir + "/trust.yaml", "--facts-output", dir + "/facts.json",
        ])
        #expect(status == 0, "\(out)\(err)")
        #expect(out.contains("policy release-gate: warn"))
        #expect(out.contains("  pass  signed-by-release-key\n  pass  provenance-from-our-builder\n"))
        #expect(out.contains("  skip  no-gpl-3: match excludes the image"))

        let facts = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/facts.json"))) as? [String: Any]
        let img = facts?["image"] as? [String: Any]
        #expect(img?["reference"] as? String == image)
        #expect((img?["digest"] as? String)?.hasPrefix("sha256:") == true)
        #expect((img?["platform"] as? [String: Any])?["os"] as? String == "linux")
        let attestations = facts?["attestations"] as? [[String: Any]] ?? []
        #expect(attestations.count == 1)
        #expect(attestations.first?["verified"] as? Bool == true && attestations.first?["authority"] as? String == "release")
        let builder = ((attestations.first?["predicate"] as? [String: Any])?["runDetails"] as? [String: Any])?["builder"] as? [String: Any]
        #expect(builder?["id"] as? String == "https://ci.example/builder")
        let validation = try await runProgram(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])), cls=jsonschema.Draft202012Validator)",
                Self.schema, dir + "/facts.json",
            ])
        #expect(validation.status == 0, "\(validation.errorOutput)")

        // Without a trust policy nothing counts as verified: denied.
        let (unverified, unverifiedOut, _) = try await warden(["policy", "check", image, "--policy", Self.example])
        #expect(unverified == 12)
        #expect(unverifiedOut.contains("DENY  signed-by-release-key") && unverifiedOut.contains("DENY  provenance-from-our-builder"))

        // A scanner's findings added with --facts.
        try """
        {"vulnerabilities": [{"id": "CVE-2026-1234", "severity": "CRITICAL", "package": {"name": "openssl", "version": "3.0.1"}, "vex": null}],
         "sbom": {"components": []}}
        """.write(toFile: dir + "/scan.json", atomically: true, encoding: .utf8)
        let (denied, deniedOut, _) = try await warden([
            "policy", "check", image, "--policy", Self.example, "--key", dir + "/release.pub", "--facts", dir + "/scan.json",
            "--facts-output", dir + "/facts2.json",
        ])
        #expect(denied == 12)
        let keyFacts = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/facts2.json"))) as? [String: Any]
        let signature = (keyFacts?["signatures"] as? [[String: Any]])?.first
        #expect(signature?["verified"] as? Bool == true && signature?["authority"] as? String == "key \(dir)/release.pub")
        #expect(
            deniedOut.contains("DENY  no-open-critical-vulnerability: critical vulnerabilities without a VEX statement: CVE-2026-1234 in openssl"))
        #expect(!deniedOut.contains("sbom-known: no SBOM"))
    }
}
