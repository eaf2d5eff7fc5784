import Crypto
import Foundation
import OCI
import OCIRegistry
import OCITesting
import Replicate
import Storage
import Testing
import Trust

/// `warden replicate` end to end between two real registries.
@Suite(.serialized) struct ReplicationTests {
    /// An upstream and a downstream registry, a scratch directory, and a client.
    static func pair() async throws -> (RegistryProcess, RegistryProcess, String, Registries) {
        let up = try await RegistryProcess.start()
        do {
            return (up, try await RegistryProcess.start(), try makeTemporaryDirectory(), try makeRegistries())
        } catch {
            up.stop()
            throw error
        }
    }

    /// Checks that a tag points at a complete graph: every blob and child manifest is present.
    func assertComplete(_ repo: RegistryRepository, _ tag: String) async throws {
        let root = try await repo.resolve(tag)
        var pending = [root]
        while let node = pending.popLast() {
            #expect(try await repo.exists(node), "\(repo.displayName): \(node.digest) missing under \(tag)")
            if MediaType.isManifest(node.mediaType) {
                pending += try await repo.fetchManifest(node).children().filter { $0.urls?.isEmpty ?? true }
            }
        }
    }

    func writeFile(_ dir: String, upstream: String, target: String, extra: String = "") throws -> String {
        let text = """
            apiVersion: warden.dev/v1
            kind: Replication
            defaults:
              concurrency: 4
              verify:
                authorities:
                  release: {key: release.pub}
            artifacts:
              - source: \(upstream)/team/app
                target: \(target)/mirror/app
                tags: {semver: ">=1.0 <2"}
              - source: \(upstream)/team/unsigned
                target: \(target)/mirror/unsigned
                tags: {exact: ["1.0"]}
              - source: \(upstream)/team/forged
                target: \(target)/mirror/forged
                tags: {exact: ["1.0"]}
            \(extra)
            """
        try text.write(toFile: dir + "/replication.yaml", atomically: true, encoding: .utf8)
        return dir + "/replication.yaml"
    }

    func report(_ json: String) throws -> ReplicationReport {
        try JSONDecoder().decode(ReplicationReport.self, from: Data(json.utf8))
    }

    @Test func verifiedReplicationRefusalsAndIncrementalRuns() async throws {
        let (up, down, dir, regs) = try await Self.pair()
        defer { up.stop(); down.stop() }
        let release = P256.Signing.PrivateKey()
        let forger = P256.Signing.PrivateKey()
        try Data(publicKeyPEM(release.publicKey).utf8).write(to: URL(fileURLWithPath: dir + "/release.pub"))
        var random = RandomContent(seed: 600)
        let app = try regs.repository(Reference(parsing: "\(up.host)/team/app"))
        var appImages: [String: RawManifest] = [:]
        for tag in ["1.0", "1.1", "2.0", "1.2-rc.1"] {
            let image = try await random.pushImage(to: app, layerSizes: [3000, 2000])
            try await app.tag(image.descriptor, as: tag)
            try await SimpleSigning.sign(image.descriptor, in: app, dockerReference: "\(up.host)/team/app", key: release)
            appImages[tag] = image
        }
        try await Signer.attest(
            appImages["1.1"]!.descriptor, in: app, name: "\(up.host)/team/app", predicateType: "https://slsa.dev/provenance/v1",
            predicate: Data(#"{"builder":{"id":"ci"}}"#.utf8), key: release, format: .bundle)
        let unsigned = try regs.repository(Reference(parsing: "\(up.host)/team/unsigned"))
        let u = try await random.pushImage(to: unsigned, layerSizes: [1000])
        try await unsigned.tag(u.descriptor, as: "1.0")
        let forged = try regs.repository(Reference(parsing: "\(up.host)/team/forged"))
        let f = try await random.pushImage(to: forged, layerSizes: [1000])
        try await forged.tag(f.descriptor, as: "1.0")
        try await SimpleSigning.sign(f.descriptor, in: forged, dockerReference: "\(up.host)/team/forged", key: forger)
        // The target already has an older forged:1.0; a refusal must leave it as it is.
        let targetForged = try regs.repository(Reference(parsing: "\(down.host)/mirror/forged"))
        let old = try await random.pushImage(to: targetForged, layerSizes: [500])
        try await targetForged.tag(old.descriptor, as: "1.0")

        let file = try writeFile(dir, upstream: up.host, target: down.host)
        let state = dir + "/state"

        // Dry run: a plan, nothing pushed.
        let (dry, dryOut, dryErr) = try await warden(["replicate", "-f", file, "--dry-run", "--output", "json"])
        #expect(dry == 13, "\(dryErr)")
        let planned = try report(dryOut)
        #expect(
            planned.items.filter { $0.action == .planned }.map(\.target).sorted() == ["\(down.host)/mirror/app:1.0", "\(down.host)/mirror/app:1.1"])
        let targetApp = try regs.repository(Reference(parsing: "\(down.host)/mirror/app"))
        await #expect(throws: OCIError.self) { try await targetApp.resolve("1.0") }

        // First run: two copied (with signatures and the attestation), two refused with reasons.
        let (first, firstOut, firstErr) = try await warden(["replicate", "-f", file, "--state", state, "--output", "json"])
        #expect(first == 13, "\(firstErr)")
        let r1 = try report(firstOut)
        #expect(r1.counts == ["copied": 2, "refused": 2], "\(firstOut)")
        let copied11 = try #require(r1.items.first { $0.target.hasSuffix("app:1.1") })
        #expect(copied11.verifiedBy == ["release"])
        #expect(copied11.referrersCopied == 1 && copied11.cosignTags == 1)
        let refusedUnsigned = try #require(r1.items.first { $0.target.hasSuffix("unsigned:1.0") })
        #expect(refusedUnsigned.reasons.contains("no signature found"))
        let refusedForged = try #require(r1.items.first { $0.target.hasSuffix("forged:1.0") })
        #expect(refusedForged.reasons.contains { $0.contains("signature does not verify with release") })
        #expect(try await targetForged.resolve("1.0").digest == old.digest)
        let targetUnsigned = try regs.repository(Reference(parsing: "\(down.host)/mirror/unsigned"))
        await #expect(throws: OCIError.self) { try await targetUnsigned.resolve("1.0") }
        for tag in ["1.0", "1.1"] { try await assertComplete(targetApp, tag) }
        // The mirror verifies on its own: signatures and attestations travelled with the images.
        let (v, vOut, _) = try await warden([
            "verify-attestation", "\(down.host)/mirror/app:1.1", "--type", "slsaprovenance1", "--key", dir + "/release.pub",
        ])
        #expect(v == 0, "\(vOut)")

        // Second run, nothing changed upstream: one HEAD per tag, nothing copied.
        let (second, secondOut, _) = try await warden(["replicate", "-f", file, "--state", state, "--output", "json"])
        #expect(second == 13)
        #expect(try report(secondOut).counts == ["unchanged": 2, "refused": 2])
        // A dry run reads the state to show what would be skipped, and writes nothing.
        let (_, dryAgain, _) = try await warden(["replicate", "-f", file, "--state", state, "--dry-run", "--output", "json"])
        #expect(try report(dryAgain).counts == ["unchanged": 2, "refused": 2])

        // A tag moved upstream: re-verified and copied again; an unsigned move is refused and the mirror keeps the
        // last good image.
        let moved = try await random.pushImage(to: app, layerSizes: [1000])
        try await app.tag(moved.descriptor, as: "1.0")
        try await SimpleSigning.sign(moved.descriptor, in: app, dockerReference: "\(up.host)/team/app", key: release)
        let sneaky = try await random.pushImage(to: app, layerSizes: [1000])
        try await app.tag(sneaky.descriptor, as: "1.1")
        let (third, thirdOut, _) = try await warden(["replicate", "-f", file, "--state", state, "--output", "json"])
        #expect(third == 13)
        let r3 = try report(thirdOut)
        #expect(r3.items.first { $0.target.hasSuffix("app:1.0") }?.action == .copied)
        #expect(r3.items.first { $0.target.hasSuffix("app:1.1") }?.action == .refused)
        #expect(try await targetApp.resolve("1.0").digest == moved.digest)
        #expect(try await targetApp.resolve("1.1").digest == appImages["1.1"]!.digest)

        let store = try StateStore(path: state + "/replication.sqlite")
        #expect(try store.integrityCheck() == "ok")
        #expect(try store.replication(target: "\(down.host)/mirror/app:1.0")?.sourceDigest == moved.digest.description)
    }

    @Test func replicationAttestationsAndReferrerSelection() async throws {
        let (up, down, dir, regs) = try await Self.pair()
        defer { up.stop(); down.stop() }
        let release = P256.Signing.PrivateKey()
        try Data(publicKeyPEM(release.publicKey).utf8).write(to: URL(fileURLWithPath: dir + "/release.pub"))
        try Data(release.pemRepresentation.utf8).write(to: URL(fileURLWithPath: dir + "/release.pem"))
        var random = RandomContent(seed: 601)
        let app = try regs.repository(Reference(parsing: "\(up.host)/team/app"))
        let image = try await random.pushImage(to: app, layerSizes: [1000])
        try await app.tag(image.descriptor, as: "1.0")
        try await SimpleSigning.sign(image.descriptor, in: app, dockerReference: "\(up.host)/team/app", key: release)
        try await Signer.attest(
            image.descriptor, in: app, name: "x", predicateType: "https://openvex.dev/ns/v0.2.0", predicate: Data("{}".utf8), key: release,
            format: .legacy)
        try """
        apiVersion: warden.dev/v1
        kind: Replication
        artifacts:
          - source: \(up.host)/team/app
            target: \(down.host)/mirror/app
            tags: {exact: ["1.0"]}
            referrers: [signatures]
            targetTag: "{tag}-mirrored"
            verify:
              authorities: {release: {key: release.pub}}

        """.write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
        let (status, out, err) = try await warden([
            "replicate", "-f", dir + "/r.yaml", "--no-state", "--attest-key", dir + "/release.pem", "--output", "json",
        ])
        #expect(status == 0, "\(out)\(err)")
        let r = try report(out)
        #expect(r.items.first?.replicationAttestation != nil)
        let target = try regs.repository(Reference(parsing: "\(down.host)/mirror/app"))
        #expect(try await target.resolve("1.0-mirrored").digest == image.digest)
        // Only signatures were selected: the .sig tag travelled, the .att tag did not.
        #expect(try await target.resolve("\(image.digest.tagSchema).sig").digest == app.resolve("\(image.digest.tagSchema).sig").digest)
        await #expect(throws: OCIError.self) { try await target.resolve("\(image.digest.tagSchema).att") }
        // The replication attestation names the source and verifies with the key.
        let (v, vOut, _) = try await warden(
            ["verify-attestation", "\(down.host)/mirror/app:1.0-mirrored", "--type", replicationPredicateType, "--key", dir + "/release.pub"])
        #expect(v == 0, "\(vOut)")
        let decision = try await ImageVerification.verify(
            image.descriptor, in: target, repository: "\(down.host)/mirror/app",
            policy: ImageVerification.adHocPolicy(
                [Authority(name: "k", kind: .key(.p256(release.publicKey)))], attestations: [replicationPredicateType]))
        #expect(decision.outcome == .allowed)
    }

    /// SIGKILL in the middle of a run: the target never has a tag on an incomplete graph, the state file stays
    /// sound, and the next run completes.
    @Test func killedMidRunThenResumed() async throws {
        let (up, down, dir, regs) = try await Self.pair()
        defer { up.stop(); down.stop() }
        var random = RandomContent(seed: 602)
        let app = try regs.repository(Reference(parsing: "\(up.host)/big/app"))
        var tags: [String] = []
        for i in 0..<12 {
            let image = try await random.pushImage(to: app, layerSizes: [3 << 20, 2 << 20, 1 << 20])
            try await app.tag(image.descriptor, as: "1.\(i).0")
            tags.append("1.\(i).0")
        }
        try """
        apiVersion: warden.dev/v1
        kind: Replication
        defaults: {concurrency: 3}
        artifacts:
          - source: \(up.host)/big/app
            target: \(down.host)/mirror/app
            verify: false

        """.write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
        let state = dir + "/state"
        for delay in [0.6, 1.2] {
            let executable = try wardenExecutable()
            // Cancelling the task that runs warden kills it (SIGKILL).
            let replicate = Task { try await runProgram(executable, ["replicate", "-f", dir + "/r.yaml", "--state", state]) }
            try await Task.sleep(for: .seconds(delay))
            replicate.cancel()
            _ = try await replicate.value
            let target = try regs.repository(Reference(parsing: "\(down.host)/mirror/app"))
            for tag in (try? await target.listTags()) ?? [] { try await assertComplete(target, tag) }
            #expect(try StateStore(path: state + "/replication.sqlite").integrityCheck() == "ok")
        }
        let (status, out, err) = try await warden(["replicate", "-f", dir + "/r.yaml", "--state", state, "--output", "json"])
        #expect(status == 0, "\(err)")
        let r = try report(out)
        #expect(r.items.count == 12)
        #expect(r.items.allSatisfy { $0.action == .copied || $0.action == .unchanged })
        let target = try regs.repository(Reference(parsing: "\(down.host)/mirror/app"))
        #expect(Set(try await target.listTags()) == Set(tags))
        for tag in tags { try await assertComplete(target, tag) }
    }

    /// Images that share a base layer, replicated in parallel into different repositories of one registry: the
    /// base layer crosses the network once, the other repositories mount it.
    @Test func sharedBlobsCrossTheNetworkOncePerRun() async throws {
        let (up, down, dir, regs) = try await Self.pair()
        defer { up.stop(); down.stop() }
        var random = RandomContent(seed: 603)
        let base = random.layer(size: 4 << 20, name: "base.bin")
        let baseDesc = Descriptor.of(base, mediaType: MediaType.imageLayer)
        var expectedBytes = Int64(base.count)
        var entries = ""
        for i in 0..<6 {
            let repo = try regs.repository(Reference(parsing: "\(up.host)/shared/app\(i)"))
            try await repo.push(baseDesc, bytes: base)
            let own = random.layer(size: 50_000, name: "own.bin")
            let ownDesc = Descriptor.of(own, mediaType: MediaType.imageLayer)
            try await repo.push(ownDesc, bytes: own)
            let config = try JSONEncoder.canonical.encode(
                ImageConfig(architecture: "amd64", os: "linux", diffIDs: [baseDesc.digest, ownDesc.digest]))
            let configDesc = Descriptor.of(config, mediaType: MediaType.imageConfig)
            try await repo.push(configDesc, bytes: config)
            let manifest = try RawManifest.encode(ImageManifest(config: configDesc, layers: [baseDesc, ownDesc]), mediaType: MediaType.imageManifest)
            try await repo.push(manifest)
            try await repo.tag(manifest.descriptor, as: "1.0")
            expectedBytes += Int64(own.count + config.count)
            entries += "  - {source: \(up.host)/shared/app\(i), target: \(down.host)/mirror/app\(i), tags: {exact: [\"1.0\"]}}\n"
        }
        try "apiVersion: warden.dev/v1\nkind: Replication\ndefaults: {concurrency: 6, verify: false}\nartifacts:\n\(entries)"
            .write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
        let (status, out, err) = try await warden(["replicate", "-f", dir + "/r.yaml", "--no-state", "--output", "json"])
        #expect(status == 0, "\(err)")
        let r = try report(out)
        #expect(r.counts == ["copied": 6])
        #expect(r.items.map(\.bytesCopied).reduce(0, +) == expectedBytes)
        #expect(r.items.map(\.blobsMounted).reduce(0, +) == 5)
    }

    /// Upstream answers every fifth request with 429 and Retry-After (a proxy in front of the real registry):
    /// replication waits as told and completes.
    @Test func throttledUpstreamSlowsDownAndCompletes() async throws {
        let (up, down, dir, regs) = try await Self.pair()
        defer { up.stop(); down.stop() }
        let proxy = try await ThrottlingProxy.start(upstream: up.host, options: .init(throttleEvery: 5, retryAfter: 1))
        defer { proxy.stop() }
        var random = RandomContent(seed: 604)
        let app = try regs.repository(Reference(parsing: "\(up.host)/team/app"))
        var digests: [String: OCI.Digest] = [:]
        for tag in ["1.0", "1.1", "1.2"] {
            let image = try await random.pushImage(to: app, layerSizes: [20_000, 10_000])
            try await app.tag(image.descriptor, as: tag)
            digests[tag] = image.digest
        }
        try """
        apiVersion: warden.dev/v1
        kind: Replication
        artifacts:
          - source: \(proxy.host)/team/app
            target: \(down.host)/mirror/app
            tags: {allow: ["^1\\\\."]}
            verify: false

        """.write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
        let (status, out, err) = try await warden(["replicate", "-f", dir + "/r.yaml", "--no-state", "--output", "json"])
        #expect(status == 0, "\(out)\(err)")
        #expect(try report(out).counts == ["copied": 3])
        #expect(proxy.throttled > 0, "the proxy answered \(proxy.requests) requests without throttling any")
        let target = try regs.repository(Reference(parsing: "\(down.host)/mirror/app"))
        for (tag, digest) in digests {
            #expect(try await target.resolve(tag).digest == digest)
            try await assertComplete(target, tag)
        }
    }

    /// The README's replication example, pointed at two local registries, replicates and verifies end to end.
    @Test func readmeExampleRunsEndToEnd() async throws {
        let (up, down, dir, regs) = try await Self.pair()
        defer { up.stop(); down.stop() }
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let start = try #require(text.range(of: "```yaml\n# replication.yaml\n"))
        let end = try #require(text.range(of: "```", range: start.upperBound..<text.endIndex))
        let yaml = String(text[start.upperBound..<end.lowerBound])
            .replacingOccurrences(of: "upstream.example.com", with: up.host)
            .replacingOccurrences(of: "registry.internal:5000", with: down.host)
        try yaml.write(toFile: dir + "/replication.yaml", atomically: true, encoding: .utf8)

        // The files the example names: a release key and a trust policy requiring it.
        let release = P256.Signing.PrivateKey()
        try FileManager.default.createDirectory(atPath: dir + "/keys", withIntermediateDirectories: true)
        try Data(publicKeyPEM(release.publicKey).utf8).write(to: URL(fileURLWithPath: dir + "/keys/release.pub"))
        try """
        apiVersion: warden.dev/v1
        kind: TrustPolicy
        authorities:
          release: {key: keys/release.pub}
        policies:
          - images: ["**"]
            authorities: [release]

        """.write(toFile: dir + "/trust-policy.yaml", atomically: true, encoding: .utf8)

        // Upstream content matching each entry.
        var random = RandomContent(seed: 605)
        func push(_ repo: String, _ tags: [String], sign: Bool, provenance: Bool = false) async throws {
            let r = try regs.repository(Reference(parsing: "\(up.host)/\(repo)"))
            for tag in tags {
                let image = try await random.pushImage(to: r, layerSizes: [2000])
                try await r.tag(image.descriptor, as: tag)
                if sign { try await SimpleSigning.sign(image.descriptor, in: r, dockerReference: "\(up.host)/\(repo)", key: release) }
                if provenance {
                    try await Signer.attest(
                        image.descriptor, in: r, name: "\(up.host)/\(repo)", predicateType: "https://slsa.dev/provenance/v1",
                        predicate: Data(#"{"builder":{"id":"ci"}}"#.utf8), key: release, format: .bundle)
                }
            }
        }
        try await push("library/alpine", ["3.17.0", "3.18.0", "3.19.1", "3.20", "3.21.0", "3.21.1-rc1", "latest"], sign: true)
        try await push("tools/jq", ["v1.7", "nightly"], sign: true, provenance: true)
        try await push("tools/yq", ["v4.40"], sign: true, provenance: true)
        try await push("base/debian", ["bookworm"], sign: false)

        let (status, out, err) = try await warden(
            ["replicate", "-f", dir + "/replication.yaml", "--state", dir + "/state", "--output", "json"],
            environment: ["UPSTREAM_USER": "mirror", "UPSTREAM_PASSWORD": "unused by this registry"])
        #expect(status == 0, "\(out)\(err)")
        let r = try report(out)
        let targets = Set(r.items.filter { $0.action == .copied }.map(\.target))
        let expected: Set<String> = [
            // exact 3.20, plus the 3 newest releases in >=3.18 <4 (3.21.1-rc1 is a pre-release; 3.18.0 is 4th)
            "\(down.host)/mirror/alpine:3.20", "\(down.host)/mirror/alpine:3.21.0", "\(down.host)/mirror/alpine:3.19.1",
            "\(down.host)/mirror/tools/jq:v1.7", "\(down.host)/mirror/tools/yq:v4.40",
            "\(down.host)/mirror/debian:bookworm-upstream",
        ]
        #expect(targets == expected, "\(r.items.map { "\($0.action) \($0.target) \($0.reasons)" })")
        #expect(r.items.filter { $0.target.contains("/tools/") }.allSatisfy { $0.attestations == ["https://slsa.dev/provenance/v1"] })
        // The mirror verifies with the same key.
        let (v, vOut, _) = try await warden(["verify", "\(down.host)/mirror/alpine:3.20", "--key", dir + "/keys/release.pub"])
        #expect(v == 0, "\(vOut)")
    }
}
