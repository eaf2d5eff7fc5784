import Crypto
import Foundation
import OCI
import OCIRegistry
import OCITesting
import Testing
import Trust

/// DSSE attestations, sigstore bundles and certificate-signed signatures against the real registry, checked in both
/// directions with independent implementations (securesystemslib, in-toto-attestation, sigstore-protobuf-specs,
/// cryptography).
@Suite(.serialized) struct AttestationTests {
    @Test func independentAttestationsVerifyInWarden() async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let dir = try makeTemporaryDirectory()
        let regs = try makeRegistries()
        let repo = try regs.repository(Reference(parsing: "\(a.host)/att/app"))
        var random = RandomContent(seed: 500)
        let v1 = try await random.pushImage(to: repo, layerSizes: [500])
        try await repo.tag(v1.descriptor, as: "v1")
        let v01 = try await random.pushImage(to: repo, layerSizes: [500])
        try await repo.tag(v01.descriptor, as: "v01")
        _ = try await pythonSign(["keypair", dir + "/k"])
        _ = try await pythonSign(["keypair", dir + "/other"])

        let (s1, _, e1) = try await pythonInterop([
            "attest-push", a.host, "att/app", v1.digest.description, dir + "/k.pem", "https://slsa.dev/provenance/v1", "v1",
        ])
        #expect(s1 == 0, "\(e1)")
        let (s2, _, e2) = try await pythonInterop([
            "attest-push", a.host, "att/app", v01.digest.description, dir + "/k.pem", "https://slsa.dev/provenance/v0.2", "v01",
        ])
        #expect(s2 == 0, "\(e2)")

        let (ok, out, err) = try await warden(["verify-attestation", "\(a.host)/att/app:v1", "--type", "slsaprovenance1", "--key", dir + "/k.pub"])
        #expect(ok == 0, "\(out)\(err)")
        #expect(out.contains("verified attestation https://slsa.dev/provenance/v1 [att-tag"))
        let (ok01, out01, _) = try await warden(["verify-attestation", "\(a.host)/att/app:v01", "--type", "slsaprovenance", "--key", dir + "/k.pub"])
        #expect(ok01 == 0, "\(out01)")
        // Another key: found but invalid (11); another type: nothing to satisfy it (10).
        let (bad, badOut, _) = try await warden([
            "verify-attestation", "\(a.host)/att/app:v1", "--type", "slsaprovenance1", "--key", dir + "/other.pub",
        ])
        #expect(bad == 11)
        #expect(badOut.contains("signature does not verify"))
        let (none, _, _) = try await warden(["verify-attestation", "\(a.host)/att/app:v1", "--type", "cyclonedx", "--key", dir + "/k.pub"])
        #expect(none == 10)
        // The v0.1 statement names v01's digest: moved onto v1 it is refused for its binding.
        try await repo.tag(repo.resolve("\(v01.digest.tagSchema).att"), as: "\(v1.digest.tagSchema).att")
        let (moved, movedOut, _) = try await warden([
            "verify-attestation", "\(a.host)/att/app:v1", "--type", "slsaprovenance", "--key", dir + "/k.pub",
        ])
        #expect(moved == 11)
        #expect(movedOut.contains("do not include \(v1.digest)"))
    }

    @Test func wardenEnvelopesAndBundlesVerifyInTheIndependentImplementations() async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let dir = try makeTemporaryDirectory()
        let regs = try makeRegistries()
        let repo = try regs.repository(Reference(parsing: "\(a.host)/att/out"))
        var random = RandomContent(seed: 501)
        let image = try await random.pushImage(to: repo, layerSizes: [500])
        let key = P256.Signing.PrivateKey()
        try Data(publicKeyPEM(key.publicKey).utf8).write(to: URL(fileURLWithPath: dir + "/k.pub"))
        let predicate = Data(#"{"buildDefinition":{"buildType":"https://warden.dev/test"}}"#.utf8)

        // Legacy .att layer: securesystemslib verifies the envelope, in-toto-attestation validates the statement.
        try await Signer.attest(
            image.descriptor, in: repo, name: "\(a.host)/att/out", predicateType: "https://slsa.dev/provenance/v1", predicate: predicate, key: key,
            format: .legacy)
        let att = try #require(try await repo.fetchManifest(repo.resolve("\(image.digest.tagSchema).att")).parsed().imageManifest, "no .att manifest")
        #expect(att.layers[0].mediaType == "application/vnd.dsse.envelope.v1+json")
        #expect(att.layers[0].annotations?["predicateType"] == "https://slsa.dev/provenance/v1")
        try await repo.fetchVerified(att.layers[0]).collect(limit: 1 << 20).write(to: URL(fileURLWithPath: dir + "/env.json"))
        let (ok, out, err) = try await pythonInterop(["dsse-verify", dir + "/k.pub", dir + "/env.json", image.digest.description])
        #expect(ok == 0, "\(err)")
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "https://slsa.dev/provenance/v1")
        let (wrong, _, _) = try await pythonInterop(["dsse-verify", dir + "/k.pub", dir + "/env.json", "sha256:" + String(repeating: "1", count: 64)])
        #expect(wrong == 2)

        // Bundle referrer (through the fallback index: this registry has no referrers API).
        try await Signer.attest(
            image.descriptor, in: repo, name: "\(a.host)/att/out", predicateType: "https://cyclonedx.org/bom",
            predicate: Data(#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#.utf8), key: key,
            format: .bundle)
        let referrers = try await repo.referrers(of: image.descriptor, artifactType: SigstoreBundle.mediaTypeV03)
        #expect(referrers.count == 1)
        #expect(referrers.first?.annotations?["dev.sigstore.bundle.predicateType"] == "https://cyclonedx.org/bom")
        let r = try #require(referrers.first)
        let m = try #require(try await repo.fetchManifest(r).parsed().imageManifest, "expected an image manifest")
        #expect(m.config.mediaType == MediaType.emptyJSON)
        #expect(m.subject?.digest == image.digest)
        try await repo.fetchVerified(m.layers[0]).collect(limit: 1 << 20).write(to: URL(fileURLWithPath: dir + "/bundle.json"))
        let (bok, bout, berr) = try await pythonInterop(["bundle-check", dir + "/bundle.json", image.digest.description, dir + "/k.pub"])
        #expect(bok == 0, "\(berr)")
        #expect(bout.contains("hint=\(Signer.keyHint(key.publicKey))"))
    }

    /// A certificate-signed bundle (root → intermediate → leaf with Fulcio's identity extensions) with a Rekor
    /// signed entry timestamp, made by the independent implementation; verified offline.
    @Test func certificateSignaturesWithTransparencyLog() async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let dir = try makeTemporaryDirectory()
        let regs = try makeRegistries()
        let repo = try regs.repository(Reference(parsing: "\(a.host)/keyless/app"))
        var random = RandomContent(seed: 502)
        let fresh = try await random.pushImage(to: repo, layerSizes: [300])
        try await repo.tag(fresh.descriptor, as: "fresh")
        let old = try await random.pushImage(to: repo, layerSizes: [300])
        try await repo.tag(old.descriptor, as: "old")
        let email = "release@example.com"
        let issuer = "https://accounts.example.com"
        try FileManager.default.createDirectory(atPath: dir + "/fresh", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/old", withIntermediateDirectories: true)
        let (s1, _, e1) = try await pythonInterop(["keyless", a.host, "keyless/app", fresh.digest.description, dir + "/fresh", email, issuer])
        #expect(s1 == 0, "\(e1)")
        let (s2, _, e2) = try await pythonInterop(["keyless", a.host, "keyless/app", old.digest.description, dir + "/old", email, issuer, "expired"])
        #expect(s2 == 0, "\(e2)")

        func verify(_ tag: String, _ extra: [String]) async throws -> (Int32, String) {
            let (status, out, err) = try await warden(["verify", "\(a.host)/keyless/app:\(tag)"] + extra)
            return (status, out + err)
        }
        let certs = ["--certificate-chain", dir + "/fresh/ca.pem", "--certificate-oidc-issuer", issuer]
        let (ok, okOut) = try await verify("fresh", certs + ["--certificate-identity", email])
        #expect(ok == 0, "\(okOut)")
        #expect(okOut.contains("identity \(email) (issuer \(issuer))"))
        let (withLog, withLogOut) = try await verify(
            "fresh", certs + ["--certificate-identity-regexp", "@example\\.com$", "--rekor-key", dir + "/fresh/rekor.pub"])
        #expect(withLog == 0, "\(withLogOut)")
        // Wrong identity, wrong issuer, another CA, another log key: each refused with its reason.
        let (wrongId, wrongIdOut) = try await verify("fresh", certs + ["--certificate-identity", "someone@example.com"])
        #expect(wrongId == 11)
        #expect(wrongIdOut.contains("matches none of: subject someone@example.com"))
        let (otherCA, otherCAOut) = try await verify(
            "fresh", ["--certificate-chain", dir + "/old/ca.pem", "--certificate-oidc-issuer", issuer, "--certificate-identity", email])
        #expect(otherCA == 11)
        #expect(otherCAOut.contains("does not chain to a trusted root"))
        let (otherLog, otherLogOut) = try await verify("fresh", certs + ["--certificate-identity", email, "--rekor-key", dir + "/old/rekor.pub"])
        #expect(otherLog == 11)
        #expect(otherLogOut.contains("signed entry timestamp"))
        // The whole trust root from trusted_root.json, offline.
        let (trusted, trustedOut) = try await verify(
            "fresh", ["--trusted-root", dir + "/fresh/trusted_root.json", "--certificate-identity", email, "--certificate-oidc-issuer", issuer])
        #expect(trusted == 0, "\(trustedOut)")
        // A certificate that expired long ago is valid at the time the log integrated the signature — but only
        // when that time is proven by a verified SET.
        let oldCerts = ["--certificate-chain", dir + "/old/ca.pem", "--certificate-oidc-issuer", issuer, "--certificate-identity", email]
        let (expired, expiredOut) = try await verify("old", oldCerts)
        #expect(expired == 11)
        #expect(expiredOut.contains("does not chain to a trusted root"))
        let (proven, provenOut) = try await verify("old", oldCerts + ["--rekor-key", dir + "/old/rekor.pub"])
        #expect(proven == 0, "\(provenOut)")
    }

    /// Signatures and attestations in every layout survive `warden copy` and verify at the destination.
    @Test func attachmentsSurviveCopyAndVerifyAtTheDestination() async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let b = try await RegistryProcess.start()
        defer { b.stop() }
        let dir = try makeTemporaryDirectory()
        let env = ["WARDEN_PASSWORD": ""]
        _ = try await wardenDev(["testdata", "\(a.host)/src/app:v1", "--layers", "2"])
        let (gen, _, genErr) = try await warden(["key", "generate", "--output-key-prefix", dir + "/k"], environment: env)
        #expect(gen == 0, "\(genErr)")
        try Data(#"{"k":"v"}"#.utf8).write(to: URL(fileURLWithPath: dir + "/p.json"))
        for args in [
            ["sign", "\(a.host)/src/app:v1"], ["sign", "\(a.host)/src/app:v1", "--format", "bundle"],
            ["attest", "\(a.host)/src/app:v1", "--predicate", dir + "/p.json", "--type", "openvex"],
            ["attest", "\(a.host)/src/app:v1", "--predicate", dir + "/p.json", "--type", "spdxjson", "--format", "bundle"],
        ] {
            let (s, _, e) = try await warden(args + ["--key", dir + "/k.key"], environment: env)
            #expect(s == 0, "\(args): \(e)")
        }
        let (copied, _, copyErr) = try await warden(["copy", "\(a.host)/src/app:v1", "\(b.host)/dst/app:v1"])
        #expect(copied == 0, "\(copyErr)")
        try """
        apiVersion: warden.dev/v1
        kind: TrustPolicy
        authorities:
          ours:
            key: k.pub
        policies:
          - name: mirrored
            images: ["\(b.host)/dst/**"]
            authorities: [ours]
            attestations:
              - predicateType: openvex
                conditions: ['predicate.k == "v"']
              - predicateType: spdxjson

        """.write(toFile: dir + "/policy.yaml", atomically: true, encoding: .utf8)
        let (status, out, err) = try await warden(["verify", "\(b.host)/dst/app:v1", "--policy", dir + "/policy.yaml", "--output", "json"])
        #expect(status == 0, "\(out)\(err)")
        let decision = try JSONDecoder().decode(PolicyDecision.self, from: Data(out.utf8))
        #expect(decision.outcome == .allowed)
        #expect(decision.signatures.filter(\.verified).map(\.layout).sorted() == ["bundle-referrer", "sig-tag"])
        #expect(decision.attestations.filter(\.verified).map(\.layout).sorted() == ["att-tag", "bundle-referrer"])
        // The source repository is under no policy rule: refused (12).
        let (refused, _, _) = try await warden(["verify", "\(a.host)/src/app:v1", "--policy", dir + "/policy.yaml"])
        #expect(refused == 12)
        let (check, checkOut, _) = try await warden(["policy", "lint", dir + "/policy.yaml", "--image", "\(b.host)/dst/x", "--image", "quay.io/x"])
        #expect(check == 0)
        #expect(checkOut.contains("policy \"mirrored\"") && checkOut.contains("no policy matches"))
    }

    /// A layer swapped under the tag changes the digest: the signature no longer applies (10), and the old signature
    /// moved onto the new digest is refused for its binding (11).
    @Test func swappedLayerLosesItsSignature() async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let dir = try makeTemporaryDirectory()
        let regs = try makeRegistries()
        let repo = try regs.repository(Reference(parsing: "\(a.host)/swap/app"))
        var random = RandomContent(seed: 503)
        let image = try await random.pushImage(to: repo, layerSizes: [400, 400])
        try await repo.tag(image.descriptor, as: "v1")
        let key = P256.Signing.PrivateKey()
        try Data(publicKeyPEM(key.publicKey).utf8).write(to: URL(fileURLWithPath: dir + "/k.pub"))
        try await SimpleSigning.sign(image.descriptor, in: repo, dockerReference: "\(a.host)/swap/app", key: key)
        let (ok, _, _) = try await warden(["verify", "\(a.host)/swap/app:v1", "--key", dir + "/k.pub"])
        #expect(ok == 0)

        var m = try #require(try image.parsed().imageManifest, "expected an image manifest")
        let evil = random.layer(size: 400, name: "evil.bin")
        m.layers[1] = Descriptor.of(evil, mediaType: MediaType.imageLayer)
        try await repo.push(m.layers[1], bytes: evil)
        let swapped = try RawManifest.encode(m, mediaType: MediaType.imageManifest)
        try await repo.push(swapped)
        try await repo.tag(swapped.descriptor, as: "v1")
        let (none, noneOut, _) = try await warden(["verify", "\(a.host)/swap/app:v1", "--key", dir + "/k.pub"])
        #expect(none == 10)
        #expect(noneOut.contains(swapped.digest.description))

        try await repo.tag(repo.resolve("\(image.digest.tagSchema).sig"), as: "\(swapped.digest.tagSchema).sig")
        let (moved, movedOut, _) = try await warden(["verify", "\(a.host)/swap/app:v1", "--key", dir + "/k.pub"])
        #expect(moved == 11)
        #expect(movedOut.contains("signature is for \(image.digest), not \(swapped.digest)"))
    }
}
