import Foundation
import OCI
import OCITesting
import Testing

/// The `warden` command as users run it: outputs, exit codes, against a real registry and skopeo.
@Suite(.serialized) struct CLITests {
    @Test func copyInspectDigestTagsAndExitCodes() async throws {
        let reg = try await RegistryProcess.start()
        let auth = try await RegistryProcess.start(auth: ("carol", "pw"))
        defer { reg.stop(); auth.stop() }
        let dir = try makeTemporaryDirectory()
        let (gen, genOut, genErr) = try await wardenDev(["testdata", "oci-layout:\(dir)/src:v1", "--layers", "2", "--with-referrers", "--seed", "9"])
        #expect(gen == 0, "\(genErr)")
        let digest = genOut.trimmingCharacters(in: .whitespacesAndNewlines)

        let (code, out, err) = try await warden(["copy", "oci-layout:\(dir)/src:v1", "\(reg.host)/cli/app:v1", "--output", "json"])
        #expect(code == 0, "\(err)")
        struct Report: Decodable {
            var root: Descriptor
            var blobsCopied: Int
            var referrers: [Descriptor]
            var cosignTags: [String]
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(out.utf8))
        #expect(report.root.digest.description == digest)
        #expect(report.referrers.count == 1)
        #expect(report.cosignTags.count == 1)

        let (_, raw, _) = try await warden(["inspect", "--raw", "\(reg.host)/cli/app:v1"])
        let (skopeoBytes, skopeoDigest) = try await Skopeo.rawManifest("\(reg.host)/cli/app:v1")
        #expect(Data(raw.utf8) == skopeoBytes)
        #expect(skopeoDigest.description == digest)

        let (_, d, _) = try await warden(["digest", "\(reg.host)/cli/app:v1"])
        #expect(d.trimmingCharacters(in: .whitespacesAndNewlines) == digest)
        let (_, tags, _) = try await warden(["tags", "\(reg.host)/cli/app"])
        #expect(tags.split(separator: "\n").contains("v1"))
        let (_, inspect, _) = try await warden(["inspect", "\(reg.host)/cli/app:v1"])
        #expect(inspect.contains("application/spdx+json"))
        #expect(inspect.contains(".sig"))

        let (_, catalog, _) = try await warden(["catalog", reg.host])
        #expect(catalog.split(separator: "\n").contains("cli/app"))

        let (missing, _, missingErr) = try await warden(["copy", "\(reg.host)/cli/app:nope", "oci-layout:\(dir)/out:x"])
        #expect(missing == 3)
        #expect(missingErr.contains("404"))
        let (usage, _, usageErr) = try await warden(["digest", "\(reg.host)/Cli/App:v1"])
        #expect(usage == 64)
        #expect(usageErr.contains("must be lowercase"))
        let (denied, _, deniedErr) = try await warden(["copy", "oci-layout:\(dir)/src:v1", "\(auth.host)/cli/app:v1", "--dest-creds", "carol:wrong"])
        #expect(denied == 4)
        #expect(deniedErr.contains("401"))
        let (ok, _, okErr) = try await warden([
            "copy", "oci-layout:\(dir)/src:v1", "\(auth.host)/cli/app:v1", "--dest-creds", "carol:pw", "--verbose",
        ])
        #expect(ok == 0, "\(okErr)")
        // --verbose logs each exchange, never the credentials.
        #expect(okErr.contains("method=PUT"))
        #expect(!okErr.contains("carol:pw"))
        #expect(!okErr.contains(Data("carol:pw".utf8).base64EncodedString()))
        // The same from a file: the password stays off the command line.
        try "carol:pw\n".write(toFile: dir + "/dest.creds", atomically: true, encoding: .utf8)
        let (fromFile, _, fromFileErr) = try await warden([
            "copy", "oci-layout:\(dir)/src:v1", "\(auth.host)/cli/app:v2", "--dest-creds-file", dir + "/dest.creds",
        ])
        #expect(fromFile == 0, "\(fromFileErr)")
    }

    @Test func demoRunsOnItsOwn() async throws {
        let dir = try makeTemporaryDirectory()
        let (code, out, err) = try await warden(["demo", "--directory", dir])
        #expect(code == 0, "\(err)")
        #expect(out.contains("(same digest)"))
        #expect(out.contains("0 blobs copied"))
    }

    @Test func workflowValidateAndGraph() async throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/examples/release-workflow.yaml").path
        let (ok, out, err) = try await warden(["workflow", "validate", example])
        #expect(ok == 0, "\(err)")
        #expect(out.contains("workflow \"promote\", 6 steps, 2 inputs, 6 levels"))
        let (g, graph, _) = try await warden(["workflow", "graph", example, "--format", "dot"])
        #expect(g == 0 && graph.contains("verify -> sbom;"))
        let dir = try makeTemporaryDirectory()
        try "apiVersion: warden.dev/v1\nkind: Workflow\nsteps:\n  - id: a\n    uses: oci/cpy@v1\n".write(
            toFile: dir + "/w.yaml", atomically: true, encoding: .utf8)
        let (bad, _, badErr) = try await warden(["workflow", "validate", dir + "/w.yaml"])
        #expect(bad == 1 && badErr.contains("w.yaml:5:11: unknown action \"oci/cpy\""), "\(badErr)")
    }

    @Test func celEvalPrintsJSONAndPositionedErrors() async throws {
        let dir = try makeTemporaryDirectory()
        try #"{"sbom": {"components": [{"name": "bash", "licenses": ["GPL-3.0"]}, {"name": "zlib", "licenses": ["Zlib"]}]}, "n": 3}"#
            .write(toFile: dir + "/vars.json", atomically: true, encoding: .utf8)
        let (ok, out, err) = try await warden(
            ["cel", "eval", "sbom.components.filter(c, 'GPL-3.0' in c.licenses).map(c, c.name) + [string(n * 2)]", "--vars", dir + "/vars.json"])
        #expect(ok == 0, "\(err)")
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == #"["bash","6"]"#)
        let (parse, _, parseErr) = try await warden(["cel", "eval", "n +"])
        #expect(parse == 64)
        #expect(parseErr.contains("1:4: unexpected end of input") && parseErr.contains("   ^"))
        let (eval, _, evalErr) = try await warden(["cel", "eval", "n / 0", "--vars", dir + "/vars.json"])
        #expect(eval == 1)
        #expect(evalErr.contains("1:3: division by zero"))
    }
}
