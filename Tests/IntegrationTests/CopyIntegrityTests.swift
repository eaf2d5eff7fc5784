import Crypto
import Foundation
import OCI
import OCIRegistry
import OCITesting
import Replicate
import Storage
import Synchronization
import Testing
import Trust

/// The promises of the graph copy and of replication under interruption and concurrency, against docker-registry
/// (distribution 2.8: no referrers API, so referrers are listed through the `sha256-<hex>` fallback index):
/// a referrer pushed just before a crash is listed by the next run, attachments added upstream later reach the
/// mirror, and concurrent copies into one repository never fail a manifest push.
@Suite(.serialized) struct CopyIntegrityTests {
    /// A PUT of a referrers fallback index (`/manifests/sha256-<hex>`, not a cosign `sha256-<hex>.sig` tag): the
    /// write that lists a referrer.
    static func isFallbackIndexPut(_ method: String, _ uri: String) -> Bool {
        guard method == "PUT", let r = uri.range(of: "/manifests/sha256-") else { return false }
        let tail = uri[r.upperBound...]
        return tail.count == 64 && tail.allSatisfy(\.isHexDigit)
    }

    /// The process a killing proxy kills.
    final class Victim: Sendable {
        let pid = Mutex<pid_t>(0)
    }

    /// A proxy in front of `upstream` that SIGKILLs the victim process when it sends a fallback index write
    /// (the write never reaches the registry), and a way to run warden under it.
    static func killingProxy(upstream: String) async throws -> (ThrottlingProxy, Victim) {
        let victim = Victim()
        let proxy = try await ThrottlingProxy.start(
            upstream: upstream,
            options: .init(intercept: { method, uri in
                guard Self.isFallbackIndexPut(method, uri) else { return nil }
                let pid = victim.pid.withLock { $0 }
                if pid > 0 { kill(pid, SIGKILL) }
                return .init(status: 503)
            }))
        return (proxy, victim)
    }

    /// Runs warden with `arguments`, its pid handed to the killing proxy; expects it to die by SIGKILL.
    static func runUntilKilled(_ arguments: [String], victim: Victim) async throws {
        let result = try await runProgram(try wardenExecutable(), arguments, started: { pid in victim.pid.withLock { $0 = pid } })
        #expect(result.signalled && result.status == SIGKILL, "\(arguments) was not killed")
    }

    static func report(_ json: String) throws -> ReplicationReport {
        try JSONDecoder().decode(ReplicationReport.self, from: Data(json.utf8))
    }

    /// Digests the destination lists as referrers of `subject`.
    static func listed(_ repo: RegistryRepository, _ subject: Descriptor) async throws -> Set<OCI.Digest> {
        Set(try await repo.referrers(of: subject, artifactType: nil).map(\.digest))
    }

    /// The copy fails between pushing a referrer manifest and adding it to the fallback index (the registry in
    /// front of the destination refuses the index write): the referrer is stored but unlisted, and the tag is not
    /// written. The next copy lists it (an "ensure listed", not a "push if absent"), says so, and only then tags.
    @Test func referrerStoredButNotListedIsListedByTheNextCopy() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        let failIndexWrites = Mutex(true)
        let proxy = try await ThrottlingProxy.start(
            upstream: b.host,
            options: .init(intercept: { method, uri in
                Self.isFallbackIndexPut(method, uri) && failIndexWrites.withLock { $0 } ? .init(status: 503) : nil
            }))
        defer { proxy.stop() }
        let regs = try makeRegistries { $0.retry.maxAttempts = 1 }
        var random = RandomContent(seed: 1300)
        let src = try regs.repository(Reference(parsing: "\(a.host)/app"))
        let image = try await random.pushImage(to: src, layerSizes: [2000])
        try await src.tag(image.descriptor, as: "v1")
        let sbom = try await random.pushArtifact(to: src, subject: image.descriptor, artifactType: "application/spdx+json")
        let viaProxy = try regs.repository(Reference(parsing: "\(proxy.host)/app"))
        let dst = try regs.repository(Reference(parsing: "\(b.host)/app"))

        await #expect(throws: OCIError.self) {
            _ = try await GraphCopier(from: src, to: viaProxy).copy(reference: "v1", destinationTag: "v1")
        }
        // The state an interruption at that point leaves: referrer stored, not listed, no tag.
        #expect(try await dst.exists(sbom.descriptor))
        #expect(try await Self.listed(dst, image.descriptor).isEmpty)
        let error = try await #require(throws: OCIError.self) { _ = try await dst.resolve("v1") }
        #expect(error.code == .notFound)

        failIndexWrites.withLock { $0 = false }
        let rerun = try await GraphCopier(from: src, to: dst).copy(reference: "v1", destinationTag: "v1")
        #expect(rerun.referrersRepaired.map(\.digest) == [sbom.digest])
        #expect(rerun.referrersCopied == 0)
        #expect(try await Self.listed(dst, image.descriptor) == [sbom.digest])
        #expect(try await dst.resolve("v1").digest == image.digest)

        // Once listed, a further copy has nothing to repair and pushes nothing.
        let third = try await GraphCopier(from: src, to: dst).copy(reference: "v1", destinationTag: "v1")
        #expect(third.referrersRepaired.isEmpty && third.referrersCopied == 0 && third.manifestsCopied == 0)
        #expect(third.referrers.map(\.digest) == [sbom.digest])
        try await regs.shutdown()
    }

    /// `warden copy` SIGKILLed at the exact moment it writes the fallback index (the proxy kills it when the
    /// request arrives, so the write never happens): `warden copy` run again lists the referrer and says so.
    @Test func copyKilledBetweenReferrerPushAndIndexUpdate() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        let (proxy, victim) = try await Self.killingProxy(upstream: b.host)
        defer { proxy.stop() }
        let regs = try makeRegistries()
        var random = RandomContent(seed: 1301)
        let src = try regs.repository(Reference(parsing: "\(a.host)/app"))
        let image = try await random.pushImage(to: src, layerSizes: [5000, 3000])
        try await src.tag(image.descriptor, as: "v1")
        let key = P256.Signing.PrivateKey()
        let attestation = try await Signer.attest(
            image.descriptor, in: src, name: "\(a.host)/app", predicateType: "https://slsa.dev/provenance/v1",
            predicate: Data(#"{"builder":{"id":"ci"}}"#.utf8), key: key, format: .bundle)

        try await Self.runUntilKilled(["copy", "\(a.host)/app:v1", "\(proxy.host)/app:v1"], victim: victim)
        let dst = try regs.repository(Reference(parsing: "\(b.host)/app"))
        #expect(try await dst.exists(attestation))
        #expect(try await Self.listed(dst, image.descriptor).isEmpty)
        let error = try await #require(throws: OCIError.self) { _ = try await dst.resolve("v1") }
        #expect(error.code == .notFound)

        let (status, out, err) = try await warden(["copy", "\(a.host)/app:v1", "\(b.host)/app:v1"])
        #expect(status == 0, "\(err)")
        #expect(out.contains("repaired   1 referrer(s)") && out.contains(attestation.digest.description), "\(out)")
        #expect(try await Self.listed(dst, image.descriptor) == [attestation.digest])
        #expect(try await dst.resolve("v1").digest == image.digest)
        // The mirror's copy verifies: the attestation is found through the listing.
        let dir = try makeTemporaryDirectory()
        try Data(publicKeyPEM(key.publicKey).utf8).write(to: URL(fileURLWithPath: dir + "/k.pub"))
        let (v, vOut, vErr) = try await warden(["verify-attestation", "\(b.host)/app:v1", "--type", "slsaprovenance1", "--key", dir + "/k.pub"])
        #expect(v == 0, "\(vOut)\(vErr)")
        try await regs.shutdown()
    }

    /// `warden replicate` SIGKILLed at the same moment, with its state file: the next run (state kept) lists the
    /// referrer, reports the repair and writes the tag; the state file is sound.
    @Test func replicateKilledBetweenReferrerPushAndIndexUpdate() async throws {
        let up = try await RegistryProcess.start()
        let down = try await RegistryProcess.start()
        defer { up.stop(); down.stop() }
        let (proxy, victim) = try await Self.killingProxy(upstream: down.host)
        defer { proxy.stop() }
        let regs = try makeRegistries()
        let dir = try makeTemporaryDirectory()
        let key = P256.Signing.PrivateKey()
        try Data(publicKeyPEM(key.publicKey).utf8).write(to: URL(fileURLWithPath: dir + "/k.pub"))
        var random = RandomContent(seed: 1302)
        let src = try regs.repository(Reference(parsing: "\(up.host)/team/app"))
        let image = try await random.pushImage(to: src, layerSizes: [4000])
        try await src.tag(image.descriptor, as: "1.0")
        try await SimpleSigning.sign(image.descriptor, in: src, dockerReference: "\(up.host)/team/app", key: key)
        let sbom = try await Signer.attest(
            image.descriptor, in: src, name: "\(up.host)/team/app", predicateType: "https://cyclonedx.org/bom",
            predicate: Data(#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#.utf8), key: key, format: .bundle)
        func file(_ target: String) throws -> String {
            let path = dir + "/r-\(target.replacingOccurrences(of: ":", with: "_")).yaml"
            try """
            apiVersion: warden.dev/v1
            kind: Replication
            artifacts:
              - source: \(up.host)/team/app
                target: \(target)/mirror/app
                tags: {exact: ["1.0"]}
                verify: {authorities: {release: {key: k.pub}}}

            """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let state = dir + "/state"
        try await Self.runUntilKilled(["replicate", "-f", try file(proxy.host), "--state", state], victim: victim)
        let dst = try regs.repository(Reference(parsing: "\(down.host)/mirror/app"))
        #expect(try await dst.exists(sbom))
        #expect(try await Self.listed(dst, image.descriptor).isEmpty)
        let error = try await #require(throws: OCIError.self) { _ = try await dst.resolve("1.0") }
        #expect(error.code == .notFound)
        #expect(try StateStore(path: state + "/replication.sqlite").integrityCheck() == "ok")

        // Run again straight to the target registry, with the same state (which holds no record of the killed run).
        let (status, out, err) = try await warden(["replicate", "-f", try file(down.host), "--state", state, "--output", "json"])
        #expect(status == 0, "\(out)\(err)")
        let r = try Self.report(out)
        let item = try #require(r.items.first)
        #expect(item.action == .copied)
        #expect(item.referrersRepaired == 1 && item.referrersCopied == 1, "\(out)")
        #expect(try await Self.listed(dst, image.descriptor) == [sbom.digest])
        #expect(try await dst.resolve("1.0").digest == image.digest)
        let (text, textOut, _) = try await warden(["replicate", "-f", try file(down.host), "--no-state"])
        #expect(text == 0 && !textOut.contains("repaired"), "\(textOut)")
    }

    /// Replication with state, then attachments arrive upstream: a bundle attestation (a referrer) and a legacy
    /// attestation (the cosign `.att` tag) each reach the mirror on the next run and verify there; an item refused
    /// for want of a signature is not verified again while nothing changes, and is copied once a valid signature
    /// arrives. Upstream request counts of the unchanged runs are printed (they include the attachment checks).
    @Test func attachmentsAddedUpstreamLaterReachTheMirror() async throws {
        let up = try await RegistryProcess.start()
        let down = try await RegistryProcess.start()
        defer { up.stop(); down.stop() }
        let proxy = try await ThrottlingProxy.start(upstream: up.host)
        defer { proxy.stop() }
        let regs = try makeRegistries()
        let dir = try makeTemporaryDirectory()
        let key = P256.Signing.PrivateKey()
        try Data(publicKeyPEM(key.publicKey).utf8).write(to: URL(fileURLWithPath: dir + "/k.pub"))
        var random = RandomContent(seed: 1303)
        let app = try regs.repository(Reference(parsing: "\(up.host)/team/app"))
        let image = try await random.pushImage(to: app, layerSizes: [200_000])
        try await app.tag(image.descriptor, as: "1.0")
        try await SimpleSigning.sign(image.descriptor, in: app, dockerReference: "\(proxy.host)/team/app", key: key)
        let late = try regs.repository(Reference(parsing: "\(up.host)/team/late"))
        let lateImage = try await random.pushImage(to: late, layerSizes: [3000])
        try await late.tag(lateImage.descriptor, as: "1.0")
        try """
        apiVersion: warden.dev/v1
        kind: Replication
        defaults:
          verify: {authorities: {release: {key: k.pub}}}
        artifacts:
          - {source: \(proxy.host)/team/app, target: \(down.host)/mirror/app, tags: {exact: ["1.0"]}}
          - {source: \(proxy.host)/team/late, target: \(down.host)/mirror/late, tags: {exact: ["1.0"]}}

        """.write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
        let state = dir + "/state"
        func replicate() async throws -> (ReplicationReport, Int) {
            let before = proxy.requests
            let (status, out, err) = try await warden(["replicate", "-f", dir + "/r.yaml", "--state", state, "--output", "json"])
            #expect(status == 0 || status == 13, "\(out)\(err)")
            return (try Self.report(out), proxy.requests - before)
        }
        func item(_ r: ReplicationReport, _ name: String) throws -> ItemReport {
            try #require(r.items.first { $0.target.hasSuffix("\(name):1.0") })
        }
        let (r1, _) = try await replicate()
        #expect(try item(r1, "app").action == .copied)
        #expect(try item(r1, "late").action == .refused)
        let (r2, unchangedRequests) = try await replicate()
        #expect(try item(r2, "app").action == .unchanged)
        let refusedAgain = try item(r2, "late")
        #expect(refusedAgain.action == .refused && refusedAgain.attachmentsChanged == false)
        #expect(refusedAgain.reasons.contains("no signature found"))
        #expect(refusedAgain.reasons.contains { $0.contains("not verified again") })

        // A provenance attestation arrives upstream (a referrer through the fallback index).
        let provenance = try await Signer.attest(
            image.descriptor, in: app, name: "\(up.host)/team/app", predicateType: "https://slsa.dev/provenance/v1",
            predicate: Data(#"{"builder":{"id":"ci"}}"#.utf8), key: key, format: .bundle)
        let (r3, _) = try await replicate()
        let carried = try item(r3, "app")
        #expect(carried.action == .copied && carried.attachmentsChanged == true && carried.referrersCopied == 1, "\(carried)")
        #expect(carried.bytesCopied < 100_000)  // the image's layer was not sent again
        let target = try regs.repository(Reference(parsing: "\(down.host)/mirror/app"))
        #expect(try await Self.listed(target, image.descriptor) == [provenance.digest])
        let (v, vOut, vErr) = try await warden([
            "verify-attestation", "\(down.host)/mirror/app:1.0", "--type", "slsaprovenance1", "--key", dir + "/k.pub",
        ])
        #expect(v == 0, "\(vOut)\(vErr)")

        // A legacy attestation (the `.att` cosign tag) arrives upstream.
        try await Signer.attest(
            image.descriptor, in: app, name: "\(up.host)/team/app", predicateType: "https://openvex.dev/ns/v0.2.0",
            predicate: Data(#"{"statements":[]}"#.utf8), key: key, format: .legacy)
        let (r4, _) = try await replicate()
        #expect(try item(r4, "app").action == .copied && item(r4, "app").attachmentsChanged == true)
        let att = "\(image.digest.tagSchema).att"
        #expect(try await target.resolve(att).digest == app.resolve(att).digest)
        let (vex, vexOut, vexErr) = try await warden([
            "verify-attestation", "\(down.host)/mirror/app:1.0", "--type", "openvex", "--key", dir + "/k.pub",
        ])
        #expect(vex == 0, "\(vexOut)\(vexErr)")

        // The refused image gets a valid signature upstream: verified again and copied.
        try await SimpleSigning.sign(lateImage.descriptor, in: late, dockerReference: "\(proxy.host)/team/late", key: key)
        let (r5, _) = try await replicate()
        let accepted = try item(r5, "late")
        #expect(accepted.action == .copied && accepted.verifiedBy == ["release"], "\(accepted)")
        let mirrorLate = try regs.repository(Reference(parsing: "\(down.host)/mirror/late"))
        #expect(try await mirrorLate.resolve("1.0").digest == lateImage.digest)

        let (r6, unchangedAfter) = try await replicate()
        #expect(r6.counts == ["unchanged": 2])
        print("upstream requests of an unchanged run of 2 items: \(unchangedRequests) (1 copied, 1 refused); \(unchangedAfter) (2 copied)")
        try await regs.shutdown()
    }

    /// A refusal is reused only under the same replication file: trusting the signer's key re-verifies and copies.
    @Test func aRefusalIsReconsideredWhenTheReplicationFileChanges() async throws {
        let up = try await RegistryProcess.start()
        let down = try await RegistryProcess.start()
        defer { up.stop(); down.stop() }
        let regs = try makeRegistries()
        let dir = try makeTemporaryDirectory()
        let release = P256.Signing.PrivateKey()
        let vendor = P256.Signing.PrivateKey()
        try Data(publicKeyPEM(release.publicKey).utf8).write(to: URL(fileURLWithPath: dir + "/release.pub"))
        try Data(publicKeyPEM(vendor.publicKey).utf8).write(to: URL(fileURLWithPath: dir + "/vendor.pub"))
        var random = RandomContent(seed: 1307)
        let app = try regs.repository(Reference(parsing: "\(up.host)/team/app"))
        let image = try await random.pushImage(to: app, layerSizes: [1000])
        try await app.tag(image.descriptor, as: "1.0")
        try await SimpleSigning.sign(image.descriptor, in: app, dockerReference: "\(up.host)/team/app", key: vendor)
        func write(_ authorities: String) throws {
            try """
            apiVersion: warden.dev/v1
            kind: Replication
            artifacts:
              - {source: \(up.host)/team/app, target: \(down.host)/mirror/app, tags: {exact: ["1.0"]}, verify: {authorities: \(authorities)}}

            """.write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
        }
        func run() async throws -> ItemReport {
            let (_, out, err) = try await warden(["replicate", "-f", dir + "/r.yaml", "--state", dir + "/state", "--output", "json"])
            return try #require(try Self.report(out).items.first, "\(err)")
        }
        try write("{release: {key: release.pub}}")
        #expect(try await run().action == .refused)
        let again = try await run()
        #expect(again.action == .refused && again.reasons.contains { $0.contains("not verified again") })
        try write("{release: {key: release.pub}, vendor: {key: vendor.pub}}")
        let trusted = try await run()
        #expect(trusted.action == .copied && trusted.verifiedBy == ["vendor"], "\(trusted)")
    }

    /// `warden copy` of an image already at the destination carries referrers added at the source since.
    @Test func copyOfAnUnchangedImageCarriesNewReferrers() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        let regs = try makeRegistries()
        var random = RandomContent(seed: 1304)
        let src = try regs.repository(Reference(parsing: "\(a.host)/app"))
        let image = try await random.pushImage(to: src, layerSizes: [2000])
        try await src.tag(image.descriptor, as: "v1")
        let (first, _, firstErr) = try await warden(["copy", "\(a.host)/app:v1", "\(b.host)/app:v1"])
        #expect(first == 0, "\(firstErr)")
        let key = P256.Signing.PrivateKey()
        try await SimpleSigning.sign(image.descriptor, in: src, dockerReference: "\(a.host)/app", key: key)
        let sbom = try await random.pushArtifact(to: src, subject: image.descriptor, artifactType: "application/spdx+json")
        let (second, out, err) = try await warden(["copy", "\(a.host)/app:v1", "\(b.host)/app:v1", "--output", "json"])
        #expect(second == 0, "\(err)")
        let report = try JSONDecoder().decode(CopyReport.self, from: Data(out.utf8))
        #expect(report.referrersCopied == 1 && report.cosignTags == ["\(image.digest.tagSchema).sig"], "\(out)")
        let dst = try regs.repository(Reference(parsing: "\(b.host)/app"))
        #expect(try await Self.listed(dst, image.descriptor) == [sbom.digest])
        #expect(try await dst.resolve("\(image.digest.tagSchema).sig").digest == src.resolve("\(image.digest.tagSchema).sig").digest)
        try await regs.shutdown()
    }

    /// A manifest PUT answered `MANIFEST_BLOB_UNKNOWN` (as distribution answers while a concurrent blob link
    /// rewrite settles) is tried once more after the manifest's blobs are checked; a second refusal is reported.
    @Test func manifestBlobUnknownIsRetriedOnceThenReported() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        let refusals = Mutex(0)
        let refuse = Mutex(1)
        let unknown = #"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:0"}]}"#
        let proxy = try await ThrottlingProxy.start(
            upstream: b.host,
            options: .init(intercept: { method, uri in
                guard method == "PUT", uri.contains("/manifests/sha256:") else { return nil }
                return refusals.withLock { n in
                    guard n < refuse.withLock({ $0 }) else { return nil }
                    n += 1
                    return .init(status: 400, body: unknown)
                }
            }))
        defer { proxy.stop() }
        let regs = try makeRegistries()
        var random = RandomContent(seed: 1306)
        let src = try regs.repository(Reference(parsing: "\(a.host)/app"))
        let image = try await random.pushImage(to: src, layerSizes: [3000])
        try await src.tag(image.descriptor, as: "v1")
        let dst = try regs.repository(Reference(parsing: "\(proxy.host)/app"))
        let report = try await GraphCopier(from: src, to: dst).copy(reference: "v1", destinationTag: "v1")
        #expect(refusals.withLock { $0 } == 1)
        #expect(report.manifestsCopied == 1)
        #expect(try await dst.resolve("v1").digest == image.digest)

        // Refused every time: reported after the second try, and no tag is written.
        refusals.withLock { $0 = 0 }
        refuse.withLock { $0 = 100 }
        let other = try await random.pushImage(to: src, layerSizes: [3000])
        try await src.tag(other.descriptor, as: "v2")
        let e = try await #require(throws: OCIError.self) {
            _ = try await GraphCopier(from: src, to: dst).copy(reference: "v2", destinationTag: "v2")
        }
        #expect(e.code == .manifestBlobUnknown && e.reason.contains("refused again"))
        #expect(refusals.withLock { $0 } == 2)
        let untagged = try await #require(throws: OCIError.self) { _ = try await dst.resolve("v2") }
        #expect(untagged.code == .notFound)
        try await regs.shutdown()
    }

    /// Signed images that share a base layer, in two repositories, replicated into two repositories of one registry
    /// in one run, ten runs in a row into fresh repositories: each shared blob (the base layer, the signatures'
    /// empty config) is brought to each repository once, the other copies wait for it instead of mounting it again
    /// (distribution rewrites a repository's blob link on every mount, and a manifest PUT that reads the link
    /// meanwhile is refused with MANIFEST_BLOB_UNKNOWN), and no manifest push fails.
    @Test func concurrentCopiesIntoOneRepositoryNeverFail() async throws {
        let up = try await RegistryProcess.start()
        let down = try await RegistryProcess.start()
        defer { up.stop(); down.stop() }
        let regs = try makeRegistries()
        let dir = try makeTemporaryDirectory()
        let key = P256.Signing.PrivateKey()
        var random = RandomContent(seed: 1305)
        let images = Int(ProcessInfo.processInfo.environment["WARDEN_TEST_IMAGES"] ?? "") ?? 30
        let runs = Int(ProcessInfo.processInfo.environment["WARDEN_TEST_RUNS"] ?? "") ?? 10
        let base = random.layer(size: 64 << 10, name: "base.bin")
        for name in ["app", "tool"] {
            let repo = try regs.repository(Reference(parsing: "\(up.host)/team/\(name)"))
            for i in 0..<images {
                let manifest = try await random.pushImage(to: repo, layerSizes: [1000], baseLayers: [base])
                try await repo.tag(manifest.descriptor, as: "1.\(i).0")
                try await SimpleSigning.sign(manifest.descriptor, in: repo, dockerReference: "\(up.host)/team/\(name)", key: key)
            }
        }
        var failures: [String] = []
        for run in 0..<runs {
            try """
            apiVersion: warden.dev/v1
            kind: Replication
            defaults: {concurrency: 16, verify: false}
            artifacts:
              - {source: \(up.host)/team/app, target: \(down.host)/run\(run)/mirror/app}
              - {source: \(up.host)/team/tool, target: \(down.host)/run\(run)/mirror/tool}

            """.write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
            let (status, out, err) = try await warden(["replicate", "-f", dir + "/r.yaml", "--no-state", "--output", "json"])
            let r = try Self.report(out)
            let failed = r.items.filter { $0.action != .copied }.map { "run \(run) \($0.target): \($0.reasons)" }
            failures += failed
            #expect(status == 0 && failed.isEmpty && r.items.count == 2 * images, "run \(run): \(failed) \(err)")
            #expect(r.items.allSatisfy { $0.cosignTags == 1 })
            // Each run brings the base layer across the network once; the other repository mounts it.
            #expect(r.items.map(\.blobsMounted).reduce(0, +) >= 1)
        }
        print("concurrent copies: \(runs) runs of \(2 * images) signed images, \(failures.count) failed items")
    }
}
