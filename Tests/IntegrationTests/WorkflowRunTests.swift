import CEL
import Foundation
import OCITesting
import Testing
import Workflow

#if canImport(Glibc)
    import Glibc
#endif

/// `warden run` and `warden runs` through the binary, against a real registry and real processes.
@Suite struct WorkflowRunTests {
    static var repo: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    func json(_ text: String) throws -> Value { try Value.parseJSON(text) }

    /// The README's example: verify → policy → copy between two repositories of docker-registry.
    @Test func theSupplyChainExampleVerifiesDecidesAndCopies() async throws {
        let registry = try await RegistryProcess.start()
        defer { registry.stop() }
        let dir = try makeTemporaryDirectory()
        let env = ["WARDEN_PASSWORD": ""]
        let signed = "\(registry.host)/upstream/app:1.0"
        let unsigned = "\(registry.host)/upstream/other:1.0"
        for image in [signed, unsigned] { _ = try await wardenDev(["testdata", image, "--layers", "2"]) }
        _ = try await warden(["key", "generate", "--output-key-prefix", dir + "/cosign"], environment: env)
        let (s, _, se) = try await warden(["sign", signed, "--key", dir + "/cosign.key"], environment: env)
        #expect(s == 0, "\(se)")
        let example = Self.repo.appendingPathComponent("docs/examples/supply-chain.yaml").path
        let state = dir + "/state"
        let (rc, out, err) = try await warden([
            "run", example, "--input", "image=\(signed)", "--input", "target=\(registry.host)/internal/app", "--input", "key=\(dir)/cosign.pub",
            "--state", state, "--output", "json",
        ])
        #expect(rc == 0, "\(out)\(err)")
        let outputs = try json(out)
        #expect(outputs["decision"]?.jsonText() == "\"warn\"")
        #expect(outputs["copied"]?.jsonText().contains("\(registry.host)/internal/app@sha256:") == true)
        #expect(outputs["messages"]?.jsonText().contains("no verified CycloneDX SBOM attestation") == true)
        // The copy carried the signature: the internal tag verifies with the same key.
        let (v, _, ve) = try await warden(["verify", "\(registry.host)/internal/app:promoted", "--key", dir + "/cosign.pub"])
        #expect(v == 0, "\(ve)")

        // Unsigned: the verify step fails permanently (no retry), nothing is copied, the run fails.
        let (bad, badOut, badErr) = try await warden([
            "run", example, "--input", "image=\(unsigned)", "--input", "target=\(registry.host)/internal/other", "--input",
            "key=\(dir)/cosign.pub", "--state", state,
        ])
        #expect(bad == 1)
        #expect(badOut.contains("failed: verify: ") && badOut.contains("no-signature"), "\(badOut)\(badErr)")
        let (tags, tagsOut, _) = try await warden(["tags", "\(registry.host)/internal/other"])
        #expect(tags == 3 || tagsOut.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(tagsOut)")
        let (list, listOut, _) = try await warden(["runs", "list", "--state", state, "--output", "json"])
        #expect(list == 0)
        guard case .list(let runs) = try json(listOut) else { throw WorkflowTestError("runs list is not a list") }
        #expect(runs.count == 2)
        let failedRun = try #require(runs.first { $0["status"]?.jsonText() == "\"failed\"" })
        let id = try #require(failedRun["id"]).jsonText().trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        let (_, showOut, _) = try await warden(["runs", "show", String(id.prefix(10)), "--state", state])
        #expect(showOut.contains("verify         failed     attempts 1") && showOut.contains("copy           pending"), "\(showOut)")
        let (_, logsOut, _) = try await warden(["runs", "logs", id, "--state", state])
        #expect(logsOut.contains("attempt.finished") && logsOut.contains("run.finished"))

        // replicate@v1: the signed image replicates; the unsigned one is refused (a permanent failure).
        for (name, expected) in [("app", 0), ("other", 1)] {
            try """
            apiVersion: warden.dev/v1
            kind: Replication
            defaults:
              verify:
                authorities:
                  release: {key: \(dir)/cosign.pub}
            artifacts:
              - source: \(registry.host)/upstream/\(name)
                target: \(registry.host)/mirror/\(name)
                tags: {exact: ["1.0"]}
            """.write(toFile: dir + "/replication-\(name).yaml", atomically: true, encoding: .utf8)
            try """
            apiVersion: warden.dev/v1
            kind: Workflow
            name: mirror
            steps:
              - id: mirror
                uses: replicate@v1
                with: {file: replication-\(name).yaml}
            outputs:
              copied: ${{ steps.mirror.outputs.copied }}
            """.write(toFile: dir + "/mirror-\(name).yaml", atomically: true, encoding: .utf8)
            let (r, rOut, rErr) = try await warden(["run", dir + "/mirror-\(name).yaml", "--state", state])
            #expect(r == expected, "\(rOut)\(rErr)")
            if expected == 0 {
                #expect(rOut.contains(#"outputs: {"copied":1}"#), "\(rOut)")
            } else {
                #expect(rOut.contains("1 items refused"), "\(rOut)")
            }
        }
    }

    /// One replication file, two surfaces: the file's per-registry settings (here the target's credentials, from
    /// the environment variables it names) apply in `replicate@v1` exactly as in `warden replicate`.
    @Test func replicateActionAppliesTheFilesRegistrySettingsAsTheCommandDoes() async throws {
        let upstream = try await RegistryProcess.start()
        defer { upstream.stop() }
        let target = try await RegistryProcess.start(auth: ("mirror", "s3cret-pass"))
        defer { target.stop() }
        let dir = try makeTemporaryDirectory()
        let env = ["WARDEN_PASSWORD": "", "MIRROR_USER": "mirror", "MIRROR_PASS": "s3cret-pass"]
        _ = try await wardenDev(["testdata", "\(upstream.host)/team/app:1.0", "--layers", "2"])
        _ = try await warden(["key", "generate", "--output-key-prefix", dir + "/cosign"], environment: env)
        let (s, _, se) = try await warden(["sign", "\(upstream.host)/team/app:1.0", "--key", dir + "/cosign.key"], environment: env)
        #expect(s == 0, "\(se)")
        for (name, surface) in [("command", "warden replicate"), ("action", "replicate@v1")] {
            try """
            apiVersion: warden.dev/v1
            kind: Replication
            registries:
              \(target.host): {usernameEnv: MIRROR_USER, passwordEnv: MIRROR_PASS}
            defaults:
              verify:
                authorities:
                  release: {key: \(dir)/cosign.pub}
            artifacts:
              - source: \(upstream.host)/team/app
                target: \(target.host)/\(name)/app
                tags: {exact: ["1.0"]}
            """.write(toFile: dir + "/replication-\(name).yaml", atomically: true, encoding: .utf8)
            let status: Int32
            let output: String
            if surface == "warden replicate" {
                let (rc, out, err) = try await warden(["replicate", "-f", dir + "/replication-\(name).yaml", "--no-state"], environment: env)
                (status, output) = (rc, out + err)
            } else {
                try """
                apiVersion: warden.dev/v1
                kind: Workflow
                name: mirror
                steps:
                  - id: mirror
                    uses: replicate@v1
                    with: {file: replication-\(name).yaml, state: false}
                outputs:
                  copied: ${{ steps.mirror.outputs.copied }}
                """.write(toFile: dir + "/mirror.yaml", atomically: true, encoding: .utf8)
                let (rc, out, err) = try await warden(["run", dir + "/mirror.yaml", "--state", dir + "/state"], environment: env)
                (status, output) = (rc, out + err)
                #expect(out.contains(#"outputs: {"copied":1}"#), "\(output)")
            }
            #expect(status == 0, "\(surface): \(output)")
            let (t, tagsOut, tagsErr) = try await warden(
                ["tags", "\(target.host)/\(name)/app"],
                environment: ["WARDEN_REGISTRY_HOST": target.host, "WARDEN_REGISTRY_USERNAME": "mirror", "WARDEN_REGISTRY_PASSWORD": "s3cret-pass"])
            #expect(t == 0 && tagsOut.contains("1.0"), "\(surface): \(tagsOut)\(tagsErr)")
        }
    }

    /// Run views in JSON use RFC 3339 times everywhere, and `runs logs --output json` is one document.
    @Test func runViewsUseRFC3339TimesAndLogsAreOneDocument() async throws {
        let dir = try makeTemporaryDirectory()
        let state = dir + "/state"
        try "apiVersion: warden.dev/v1\nkind: Workflow\nname: t\nsteps:\n  - id: a\n    uses: noop@v1\n".write(
            toFile: dir + "/w.yaml", atomically: true, encoding: .utf8)
        let (rc, out, err) = try await warden(["run", dir + "/w.yaml", "--state", state, "--output", "json"])
        #expect(rc == 0, "\(out)\(err)")
        let rfc3339 = #/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/#
        let (_, listOut, _) = try await warden(["runs", "list", "--state", state, "--output", "json"])
        guard case .list(let runs) = try json(listOut), let run = runs.first else { throw WorkflowTestError("runs list: \(listOut)") }
        for key in ["createdAt", "updatedAt"] {
            let value = try #require(run[key]?.stringValue, "\(key) in \(listOut)")
            #expect(value.wholeMatch(of: rfc3339) != nil, "\(key): \(value)")
        }
        let id = try #require(run["id"]?.stringValue)
        let (_, showOut, _) = try await warden(["runs", "show", id, "--state", state, "--output", "json"])
        #expect(try #require(try json(showOut)["createdAt"]?.stringValue).wholeMatch(of: rfc3339) != nil, "\(showOut)")
        let (_, logsOut, _) = try await warden(["runs", "logs", id, "--state", state, "--output", "json"])
        guard case .list(let entries) = try json(logsOut) else { throw WorkflowTestError("runs logs is not one JSON array: \(logsOut)") }
        #expect(entries.count >= 4)
        for e in entries { #expect(e["at"]?.stringValue?.wholeMatch(of: rfc3339) != nil, "\(e.jsonText())") }
    }

    /// Approvals and cancellation come from other processes while a detached driver runs the workflow.
    @Test func approvalsAndCancellationReachADetachedRun() async throws {
        let dir = try makeTemporaryDirectory()
        let state = dir + "/state"
        try """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: gated
        steps:
          - id: gate
            approval: {approvers: [alice, bob], required: 1, timeout: 1h}
          - id: ship
            uses: process@v1
            needs: [gate]
            with: {command: 'echo "{\\"shipped\\": true}"'}
        """.write(toFile: dir + "/gated.yaml", atomically: true, encoding: .utf8)
        let (rc, out, err) = try await warden(["run", dir + "/gated.yaml", "--detach", "--state", state])
        #expect(rc == 0, "\(err)")
        let id = out.trimmingCharacters(in: .whitespacesAndNewlines)
        try await waitForStatus(id, state, "waiting")
        let (mallory, _, malloryErr) = try await warden(["runs", "approve", id, "gate", "--by", "mallory", "--state", state])
        #expect(mallory == 1 && malloryErr.contains("mallory is not an approver of step \"gate\""))
        let (ok, okOut, _) = try await warden(["runs", "approve", id, "gate", "--by", "bob", "--comment", "ship it", "--state", state])
        #expect(ok == 0 && okOut.contains("approved gate of run \(id) by bob"), "\(okOut)")
        try await waitForStatus(id, state, "succeeded")
        let (_, show, _) = try await warden(["runs", "show", id, "--state", state])
        #expect(show.contains("approved by bob: ship it") && show.contains(#"outputs: {"shipped":true}"#), "\(show)")

        // Cancellation: the detached driver stops the running process.
        try """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: long
        steps:
          - id: sleep
            uses: process@v1
            with: {command: 'echo $$ > \(dir)/pid; exec sleep 120'}
        """.write(toFile: dir + "/long.yaml", atomically: true, encoding: .utf8)
        let (_, longOut, _) = try await warden(["run", dir + "/long.yaml", "--detach", "--state", state])
        let long = longOut.trimmingCharacters(in: .whitespacesAndNewlines)
        for _ in 0..<250 where !FileManager.default.fileExists(atPath: dir + "/pid") { try await Task.sleep(for: .milliseconds(20)) }
        let (c, cOut, cErr) = try await warden(["runs", "cancel", long, "--by", "ops", "--state", state])
        #expect(c == 0, "\(cOut)\(cErr)")
        try await waitForStatus(long, state, "cancelled")
        let pid = Int32(try String(contentsOfFile: dir + "/pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        var gone = false
        for _ in 0..<250 {
            if kill(pid, 0) != 0 {
                gone = true
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(gone)
    }

    @Test func theActionCatalogueIsInspectable() async throws {
        let (rc, out, _) = try await warden(["actions", "list", "--state", try makeTemporaryDirectory() + "/state"])
        #expect(rc == 0)
        for name in [
            "oci/copy@v1", "trust/verify@v1", "trust/sign@v1", "trust/attest@v1", "policy/eval@v1", "http/notify@v1", "process@v1", "http@v1",
        ] {
            #expect(out.contains(name), "\(name) missing from\n\(out)")
        }
        let (show, showOut, _) = try await warden(["actions", "show", "oci/copy", "--state", try makeTemporaryDirectory() + "/state"])
        #expect(show == 0 && showOut.contains("\"required\" : [") && showOut.contains("\"destination\""))
        let (missing, _, missingErr) = try await warden(["actions", "show", "acme/nothing", "--state", try makeTemporaryDirectory() + "/state"])
        #expect(missing == 1 && missingErr.contains("no action acme/nothing"))
    }

    /// sbom/generate, trust/sign and trust/attest as steps; the signature and the SBOM attestation verify afterwards.
    @Test func signSBOMAndAttestSteps() async throws {
        let dir = try makeTemporaryDirectory()
        let layout = try await SBOMTests.makeLayout()
        _ = try await warden(["key", "generate", "--output-key-prefix", dir + "/k"], environment: ["WARDEN_PASSWORD": "pw"])
        try """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: publish
        inputs:
          image: {type: string}
        steps:
          - id: sbom
            uses: sbom/generate@v1
            with: {image: '${{ inputs.image }}'}
          - id: sign
            uses: trust/sign@v1
            with: {image: '${{ inputs.image }}', key: k.key, format: bundle, credentials: [cosign_password]}
          - id: attest
            uses: trust/attest@v1
            with:
              image: ${{ inputs.image }}
              key: k.key
              credentials: [cosign_password]
              predicateType: cyclonedx
              predicate: ${{ steps.sbom.outputs.sbom }}
        outputs:
          packages: ${{ steps.sbom.outputs.packages }}
          sbomFile: ${{ steps.sbom.artifacts["sbom.cdx.json"] }}
        """.write(toFile: dir + "/publish.yaml", atomically: true, encoding: .utf8)
        let image = "oci-layout:\(layout):v1"
        let (missing, missingOut, _) = try await warden(["run", dir + "/publish.yaml", "--input", "image=\(image)", "--state", dir + "/state"])
        #expect(missing == 1 && missingOut.contains("WARDEN_CREDENTIAL_COSIGN_PASSWORD"), "\(missingOut)")
        let (rc, out, err) = try await warden(
            ["run", dir + "/publish.yaml", "--input", "image=\(image)", "--state", dir + "/state", "--output", "json"],
            environment: ["WARDEN_CREDENTIAL_COSIGN_PASSWORD": "pw"])
        #expect(rc == 0, "\(out)\(err)")
        let outputs = try json(out)
        #expect(outputs["packages"]?.jsonText() == "4", "\(out)")
        let digest = try #require(outputs["sbomFile"]).jsonText().trimmingCharacters(in: CharacterSet(charactersIn: "\"")).dropFirst(7)
        let sbom = try String(contentsOfFile: dir + "/state/artifacts/sha256/\(digest)", encoding: .utf8)
        #expect(sbom.contains("\"bomFormat\"") && sbom.contains("pkg:pypi/requests@2.31.0"))
        let (v, _, ve) = try await warden(["verify", image, "--key", dir + "/k.pub"])
        #expect(v == 0, "\(ve)")
        let (a, _, ae) = try await warden(["verify-attestation", image, "--key", dir + "/k.pub", "--type", "cyclonedx"])
        #expect(a == 0, "\(ae)")
    }

    @Test func aTemplateRunsWithItsParameters() async throws {
        let dir = try makeTemporaryDirectory()
        try """
        apiVersion: warden.dev/v1
        kind: WorkflowTemplate
        name: counter
        parameters:
          n: {type: int}
          label: {type: string, default: items}
        workflow:
          steps:
            - id: count
              uses: noop@v1
              with: {n: "[[ n ]]", text: "[[ n ]] [[ label ]]"}
          outputs:
            n: ${{ steps.count.outputs.n + 1 }}
            text: ${{ steps.count.outputs.text }}
        """.write(toFile: dir + "/t.yaml", atomically: true, encoding: .utf8)
        let (rc, out, err) = try await warden(["run", dir + "/t.yaml", "--param", "n=41", "--state", dir + "/state", "--output", "json"])
        #expect(rc == 0, "\(err)")
        #expect(out.contains(#""n":42"#) && out.contains(#""text":"41 items""#), "\(out)")
        let (bad, _, badErr) = try await warden(["run", dir + "/t.yaml", "--param", "n=many", "--state", dir + "/state"])
        #expect(bad == 1 && badErr.contains("parameter \"n\": \"many\" is not an int"), "\(badErr)")
        let (mixed, _, mixedErr) = try await warden([
            "run", Self.repo.appendingPathComponent("docs/examples/supply-chain.yaml").path, "--param", "n=1",
        ])
        #expect(mixed == 1 && mixedErr.contains("--param is for workflow templates"))
    }

    func waitForStatus(_ run: String, _ state: String, _ status: String) async throws {
        var last = ""
        do {
            try await waitFor("run \(run) reaching \(status)", timeout: .seconds(15), poll: .milliseconds(50)) {
                let (_, out, _) = try await warden(["runs", "show", run, "--state", state, "--output", "json"])
                last = out
                return (try? Value.parseJSON(out))?["status"]?.jsonText() == "\"\(status)\""
            }
        } catch is TimeoutError {
            Issue.record("run \(run) never reached \(status): \(last)")
        }
    }
}

struct WorkflowTestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
