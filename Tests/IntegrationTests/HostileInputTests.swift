import Crypto
import Foundation
import OCI
import OCIRegistry
import OCITesting
import Replicate
import Testing
import Trust

/// Content an attacker with push rights to an upstream repository can write, against a real registry
/// (docker-registry accepts all of it): Warden finishes, refuses what does not belong, and says why.
@Suite(.serialized) struct HostileInputTests {
    /// Runs warden under `timeout`: a hang is exit status 124, not a stuck test.
    static func wardenBounded(_ arguments: [String], seconds: Int = 60) async throws -> (Int32, String, String) {
        let result = try await runProgram("/usr/bin/timeout", ["-s", "KILL", "\(seconds)", try wardenExecutable()] + arguments)
        return (result.status, result.output, result.errorOutput)
    }

    /// Writes a referrers fallback index for `subject` listing `entries` (what a hostile upstream can put there).
    static func writeFallbackIndex(_ repo: RegistryRepository, subject: OCI.Digest, entries: [Descriptor]) async throws {
        let index = try RawManifest.encode(ImageIndex(manifests: entries), mediaType: MediaType.imageIndex)
        try await repo.pushManifest(index, reference: subject.tagSchema)
    }

    /// A cosign tag, and a listed referrer, that resolve to the image itself; an index's child whose listed
    /// referrer is the index above it; a listed "referrer" whose subject is another image. Before, each of the first
    /// three made `warden copy` wait on itself forever at 0 % CPU.
    @Test func selfAndAncestorReferrersAreRefusedNotAwaited() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        let regs = try makeRegistries()
        var random = RandomContent(seed: 1400)
        let src = try regs.repository(Reference(parsing: "\(a.host)/app"))
        let dst = try regs.repository(Reference(parsing: "\(b.host)/app"))

        // 1. sha256-<X>.sig → X.
        let x = try await random.pushImage(to: src, layerSizes: [1000])
        try await src.tag(x.descriptor, as: "self-sig")
        try await src.tag(x.descriptor, as: "\(x.digest.tagSchema).sig")
        let (s1, out1, err1) = try await Self.wardenBounded(["copy", "\(a.host)/app:self-sig", "\(b.host)/app:self-sig", "--output", "json"])
        #expect(s1 == 0, "\(err1)")
        let r1 = try JSONDecoder().decode(CopyReport.self, from: Data(out1.utf8))
        #expect(r1.referrersRefused.contains { $0.contains("cosign tag \(x.digest.tagSchema).sig points at \(x.digest)") }, "\(out1)")
        #expect(try await dst.resolve("self-sig").digest == x.digest)
        await #expect(throws: OCIError.self) { try await dst.resolve("\(x.digest.tagSchema).sig") }

        // 2. The fallback index of Y lists Y itself, next to a real SBOM.
        let y = try await random.pushImage(to: src, layerSizes: [1000])
        try await src.tag(y.descriptor, as: "self-referrer")
        let sbom = try await random.pushArtifact(to: src, subject: y.descriptor, artifactType: "application/spdx+json")
        try await Self.writeFallbackIndex(src, subject: y.digest, entries: [y.descriptor, try referrerDescriptor(for: sbom)])
        let (s2, out2, err2) = try await Self.wardenBounded([
            "copy", "\(a.host)/app:self-referrer", "\(b.host)/app:self-referrer", "--output", "json",
        ])
        #expect(s2 == 0, "\(err2)")
        let r2 = try JSONDecoder().decode(CopyReport.self, from: Data(out2.utf8))
        #expect(r2.referrersRefused.contains { $0.contains("\(y.digest) is listed as a referrer of \(y.digest)") }, "\(out2)")
        #expect(r2.referrers.map(\.digest) == [sbom.digest])
        #expect(Set(try await dst.referrers(of: y.descriptor, artifactType: nil).map(\.digest)) == [sbom.digest])

        // 3. An index whose child lists the index itself as a referrer.
        let child = try await random.pushImage(to: src, layerSizes: [1000])
        var entry = child.descriptor
        entry.platform = Platform(os: "linux", architecture: "amd64")
        let index = try RawManifest.encode(ImageIndex(manifests: [entry]), mediaType: MediaType.imageIndex)
        try await src.push(index)
        try await src.tag(index.descriptor, as: "ancestor")
        try await Self.writeFallbackIndex(src, subject: child.digest, entries: [index.descriptor])
        let (s3, out3, err3) = try await Self.wardenBounded(["copy", "\(a.host)/app:ancestor", "\(b.host)/app:ancestor", "--output", "json"])
        #expect(s3 == 0, "\(err3)")
        let r3 = try JSONDecoder().decode(CopyReport.self, from: Data(out3.utf8))
        #expect(r3.referrersRefused.contains { $0.contains("\(index.digest) is listed as a referrer of \(child.digest)") }, "\(out3)")
        #expect(try await dst.resolve("ancestor").digest == index.digest)

        // 4. A listed "referrer" whose own subject is another image (or none).
        let z = try await random.pushImage(to: src, layerSizes: [1000])
        try await src.tag(z.descriptor, as: "foreign")
        let other = try await random.pushImage(to: src, layerSizes: [1000])
        let foreign = try await random.pushArtifact(to: src, subject: other.descriptor, artifactType: "application/spdx+json")
        try await Self.writeFallbackIndex(src, subject: z.digest, entries: [try referrerDescriptor(for: foreign), other.descriptor])
        let (s4, out4, err4) = try await Self.wardenBounded(["copy", "\(a.host)/app:foreign", "\(b.host)/app:foreign", "--output", "json"])
        #expect(s4 == 0, "\(err4)")
        let r4 = try JSONDecoder().decode(CopyReport.self, from: Data(out4.utf8))
        #expect(r4.referrersRefused.count == 2, "\(out4)")
        #expect(r4.referrersRefused.contains { $0.contains("its subject is \(other.digest)") })
        #expect(r4.referrersRefused.contains { $0.contains("its subject is absent") })
        #expect(try await dst.referrers(of: z.descriptor, artifactType: nil).isEmpty)
        try await regs.shutdown()
    }

    /// The same self-referencing cosign tag through `warden replicate`: the run completes.
    @Test func replicateFinishesOnASelfReferencingCosignTag() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        let regs = try makeRegistries()
        var random = RandomContent(seed: 1401)
        let src = try regs.repository(Reference(parsing: "\(a.host)/team/app"))
        let x = try await random.pushImage(to: src, layerSizes: [1000])
        try await src.tag(x.descriptor, as: "1.0")
        try await src.tag(x.descriptor, as: "\(x.digest.tagSchema).att")
        let dir = try makeTemporaryDirectory()
        try """
        apiVersion: warden.dev/v1
        kind: Replication
        artifacts:
          - {source: \(a.host)/team/app, target: \(b.host)/mirror/app, tags: {exact: ["1.0"]}, verify: false}

        """.write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
        let (status, out, err) = try await Self.wardenBounded(["replicate", "-f", dir + "/r.yaml", "--no-state", "--output", "json"])
        #expect(status == 0, "\(out)\(err)")
        let dst = try regs.repository(Reference(parsing: "\(b.host)/mirror/app"))
        #expect(try await dst.resolve("1.0").digest == x.digest)
        try await regs.shutdown()
    }

    /// Each artifact lists the same five referrers, each of which lists the five again: `inspect` expands each
    /// manifest once (before: 5^8 lookups).
    @Test func inspectExpandsEachReferrerOnce() async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let regs = try makeRegistries()
        var random = RandomContent(seed: 1402)
        let src = try regs.repository(Reference(parsing: "\(a.host)/app"))
        let x = try await random.pushImage(to: src, layerSizes: [1000])
        try await src.tag(x.descriptor, as: "v1")
        var referrers: [Descriptor] = []
        for i in 0..<5 {
            referrers.append(
                try referrerDescriptor(for: try await random.pushArtifact(to: src, subject: x.descriptor, artifactType: "application/x-\(i)")))
        }
        for r in referrers { try await Self.writeFallbackIndex(src, subject: r.digest, entries: referrers) }
        let (status, out, err) = try await Self.wardenBounded(["inspect", "\(a.host)/app:v1", "--output", "json"])
        #expect(status == 0, "\(err)")
        struct Node: Decodable {
            var digest: String
            var via: String
            var referrers: [Node]
        }
        struct Output: Decodable { var referrers: [Node] }
        let tree = try JSONDecoder().decode(Output.self, from: Data(out.utf8))
        func count(_ nodes: [Node]) -> Int { nodes.count + nodes.map { count($0.referrers) }.reduce(0, +) }
        #expect(tree.referrers.count == 5)
        #expect(count(tree.referrers) == 6 * 5, "\(out)")  // the image and each referrer expanded once: 5 entries each
        func all(_ nodes: [Node]) -> [Node] { nodes + nodes.flatMap { all($0.referrers) } }
        let expanded = all(tree.referrers).filter { !$0.via.contains("shown above") }
        let expandedDigests = Set(expanded.map(\.digest))
        #expect(expandedDigests == Set(referrers.map(\.digest.description)) && expanded.count == 5)
        let repeats = all(tree.referrers).filter { $0.via.contains("shown above") }
        #expect(repeats.count == 25 && repeats.allSatisfy { $0.referrers.isEmpty })
        try await regs.shutdown()
    }

    /// An upstream lists a tag built to traverse the target's URL space: it is reported and never used; before,
    /// docker-registry applied `v1/../../../../victim/app/manifests/latest` to `victim/app:latest`.
    @Test func replicateNeverUsesAListedNameThatIsNotATag() async throws {
        let up = try await RegistryProcess.start()
        let down = try await RegistryProcess.start()
        defer { up.stop(); down.stop() }
        let regs = try makeRegistries()
        var random = RandomContent(seed: 1403)
        let src = try regs.repository(Reference(parsing: "\(up.host)/team/app"))
        let image = try await random.pushImage(to: src, layerSizes: [1000])
        try await src.tag(image.descriptor, as: "v1")
        let hostile = "v1/../../../../victim/app/manifests/latest"
        let listing = #"{"name":"team/app","tags":["v1","\#(hostile)"]}"#
        let proxy = try await ThrottlingProxy.start(
            upstream: up.host,
            options: .init(intercept: { method, uri in
                method == "GET" && uri.contains("/team/app/tags/list") ? .init(status: 200, body: listing) : nil
            }))
        defer { proxy.stop() }
        let dir = try makeTemporaryDirectory()
        try """
        apiVersion: warden.dev/v1
        kind: Replication
        artifacts:
          - {source: \(proxy.host)/team/app, target: \(down.host)/mirror/app, tags: {allow: ["^v"]}, verify: false}

        """.write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
        let (status, out, err) = try await Self.wardenBounded(["replicate", "-f", dir + "/r.yaml", "--no-state", "--output", "json"])
        #expect(status == 1, "\(out)\(err)")
        let r = try JSONDecoder().decode(ReplicationReport.self, from: Data(out.utf8))
        #expect(r.counts == ["copied": 1, "failed": 1], "\(out)")
        #expect(r.items.contains { $0.action == .failed && $0.reasons.contains { $0.contains("not a valid tag") } })
        let victim = try regs.repository(Reference(parsing: "\(down.host)/victim/app"))
        await #expect(throws: OCIError.self) { try await victim.resolve("latest") }
        let mirror = try regs.repository(Reference(parsing: "\(down.host)/mirror/app"))
        #expect(try await mirror.listTags() == ["v1"])
        // Nor does anything else put such a name into a URL.
        let error = try await #require(throws: OCIError.self) { _ = try await mirror.resolve(hostile) }
        #expect(error.code == .invalidReference)
        let tagging = try await #require(throws: OCIError.self) { try await mirror.tag(image.descriptor, as: hostile) }
        #expect(tagging.code == .invalidReference)
        try await regs.shutdown()
    }

    /// `warden inspect` reads only "no such tag" as "no cosign attachment": a registry that refuses the lookup
    /// (403) makes inspect fail with the reason, instead of showing an image without its signature.
    @Test func inspectDoesNotReadARefusedCosignLookupAsNoSignature() async throws {
        let up = try await RegistryProcess.start()
        defer { up.stop() }
        let regs = try makeRegistries()
        var random = RandomContent(seed: 1415)
        let repo = try regs.repository(Reference(parsing: "\(up.host)/team/app"))
        let image = try await random.pushImage(to: repo, layerSizes: [1000])
        try await repo.tag(image.descriptor, as: "v1")
        try await regs.shutdown()
        let proxy = try await ThrottlingProxy.start(
            upstream: up.host,
            options: .init(intercept: { _, uri in
                uri.contains("/manifests/sha256-") && uri.hasSuffix(".sig")
                    ? .init(status: 403, body: #"{"errors":[{"code":"DENIED","message":"no"}]}"#) : nil
            }))
        defer { proxy.stop() }
        let (status, out, err) = try await warden(["inspect", "\(proxy.host)/team/app:v1"])
        #expect(status == 4, "\(out)\(err)")
        #expect(err.contains("denied") || err.contains("DENIED") || err.contains("403"), "\(err)")
        // Without the refusal, inspect shows the image (and no attachment).
        let (ok, okOut, okErr) = try await warden(["inspect", "\(up.host)/team/app:v1"])
        #expect(ok == 0, "\(okOut)\(okErr)")
    }

    /// A billion-laughs document (nine levels of nine aliases, under 1 KiB) in a workflow's `with:`, in a template,
    /// and in a replication file: refused at the first anchor with its position, in bounded time and memory.
    @Test func yamlAliasesAreRefusedEverywhere() async throws {
        let dir = try makeTemporaryDirectory()
        var levels = "      l0: &l0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n"
        for i in 1...8 { levels += "      l\(i): &l\(i) [" + Array(repeating: "*l\(i - 1)", count: 9).joined(separator: ", ") + "]\n" }
        let workflow = """
            apiVersion: warden.dev/v1
            kind: Workflow
            name: bomb
            steps:
              - id: a
                uses: noop@v1
                with:
            \(levels)
            """
        try workflow.write(toFile: dir + "/bomb.yaml", atomically: true, encoding: .utf8)
        let (s1, _, e1) = try await Self.wardenBounded(["workflow", "validate", dir + "/bomb.yaml"])
        #expect(s1 != 0 && e1.contains("bomb.yaml:8:") && e1.contains("anchors and aliases"), "\(e1)")
        let (r1, _, re1) = try await Self.wardenBounded(["run", dir + "/bomb.yaml", "--state", dir + "/state"])
        #expect(r1 != 0 && re1.contains("anchors and aliases"), "\(re1)")

        let template = """
            apiVersion: warden.dev/v1
            kind: WorkflowTemplate
            name: bomb
            workflow:
              name: bomb
              steps:
                - id: a
                  uses: noop@v1
                  with:
            \(levels.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            """
        try template.write(toFile: dir + "/template.yaml", atomically: true, encoding: .utf8)
        let (s2, _, e2) = try await Self.wardenBounded(["workflow", "validate", dir + "/template.yaml"])
        #expect(s2 != 0 && e2.contains("anchors and aliases"), "\(e2)")

        try """
        apiVersion: warden.dev/v1
        kind: Replication
        defaults: &d {concurrency: 2}
        artifacts:
          - {source: a.example/x, target: b.example/x, tags: {exact: ["1"]}, verify: false}

        """.write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
        let (s3, _, e3) = try await Self.wardenBounded(["replicate", "-f", dir + "/r.yaml", "--dry-run"])
        #expect(s3 != 0 && e3.contains("r.yaml:3:") && e3.contains("anchors and aliases"), "\(e3)")
    }

    /// An input holding shell syntax, pasted into a string `command:`, stays one word (before: `/bin/sh -c` ran
    /// the `touch` it carried); a failing step's credential files are gone once the attempt ends.
    @Test func workflowInputsAreNotShellAndCredentialsDoNotOutliveTheAttempt() async throws {
        let dir = try makeTemporaryDirectory()
        try """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: quoting
        inputs:
          name: {type: string}
        steps:
          - id: echo
            uses: process@v1
            with:
              command: "printf '%s' ${{ inputs.name }} > \(dir)/said; echo '{}'"
          - id: secret
            needs: [echo]
            uses: process@v1
            with:
              command: [/bin/sh, -c, 'test -s "$WARDEN_CREDENTIALS/token" && exit 2']
              credentials: [token]

        """.write(toFile: dir + "/quoting.yaml", atomically: true, encoding: .utf8)
        let hostile = "x'; touch \(dir)/PWNED; echo '"
        let (status, out, err) = try await warden(
            ["run", dir + "/quoting.yaml", "--input", "name=\(hostile)", "--state", dir + "/state"],
            environment: ["WARDEN_CREDENTIAL_TOKEN": "s3cret"])
        #expect(status == 1, "\(out)\(err)")  // the secret step exits 2 (permanent) once it has seen its credential
        #expect(!FileManager.default.fileExists(atPath: dir + "/PWNED"))
        #expect(try String(contentsOfFile: dir + "/said", encoding: .utf8) == hostile)
        let leftovers = FileManager.default.enumerator(atPath: dir + "/state")?.compactMap { $0 as? String }.filter {
            $0.contains(".warden-credentials")
        }
        #expect(leftovers == [], "\(leftovers ?? [])")
    }

    /// `key generate` writes the private key 0600 (created so, not narrowed later) and leaves no temporary behind.
    @Test func privateKeysAreCreatedPrivate() async throws {
        let dir = try makeTemporaryDirectory()
        let (status, _, err) = try await warden(["key", "generate", "--output-key-prefix", dir + "/k"], environment: ["WARDEN_PASSWORD": "pw"])
        #expect(status == 0, "\(err)")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: dir + "/k.key")[.posixPermissions] as? NSNumber)
        #expect(mode.intValue & 0o777 == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["k.key", "k.pub"])
        let state = dir + "/state"
        _ = try await warden(["runs", "list", "--state", state])
        let stateMode = try #require(try FileManager.default.attributesOfItem(atPath: state)[.posixPermissions] as? NSNumber)
        #expect(stateMode.intValue & 0o777 == 0o700)
    }

    /// A step writing 100 MiB to stdout and to stderr: Warden keeps 16 MiB of one and 8 MiB of the other (the
    /// step fails for its oversized outputs), and a descendant that escapes with the pipes open does not hold the
    /// run (before: both files grew with the output, and the run waited for the descendant).
    @Test func stepOutputIsBounded() async throws {
        let dir = try makeTemporaryDirectory()
        try """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: flood
        steps:
          - id: flood
            uses: process@v1
            with:
              command: [/bin/sh, -c, 'head -c 104857600 /dev/zero; head -c 104857600 /dev/zero >&2; exit 0']
          - id: escape
            uses: process@v1
            with:
              command: [/bin/sh, -c, 'setsid sleep 20 & echo "{}"']

        """.write(toFile: dir + "/flood.yaml", atomically: true, encoding: .utf8)
        let (status, out, err) = try await Self.wardenBounded(["run", dir + "/flood.yaml", "--state", dir + "/state", "--output", "json"])
        #expect(status == 1, "\(out)\(err)")
        #expect((out + err).contains("outputs are larger than 16 MiB"), "\(out)\(err)")
        let files = FileManager.default.enumerator(atPath: dir + "/state")?.compactMap { $0 as? String } ?? []
        let sizes = files.map { ($0, (try? FileManager.default.attributesOfItem(atPath: dir + "/state/" + $0)[.size] as? NSNumber)?.intValue ?? 0) }
        let largest = sizes.map(\.1).max() ?? 0
        #expect(largest <= (16 << 20) + 4096, "a file of \(largest) bytes was kept")
        let log = try #require(files.first { $0.hasSuffix("logs/flood.1.log") })
        let text = try String(contentsOfFile: dir + "/state/" + log, encoding: .utf8)
        #expect(text.contains("more bytes of stderr not kept; the limit is 8388608 bytes"))
        #expect(sizes.first { $0.0 == log }!.1 <= (8 << 20) + 4096)
    }
}
