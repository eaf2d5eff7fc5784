import Crypto
import Foundation
import OCI
import OCIRegistry
import OCITesting
import Testing
import Trust

/// Legacy (.sig) signatures against the real registry, checked in both directions with an independent
/// implementation (Python `cryptography` + urllib, following the cosign signature spec).
@Suite(.serialized) struct SignatureTests {
    @Test func wardenSignaturesVerifyInTheIndependentImplementationAndAccumulate() async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let dir = try makeTemporaryDirectory()
        let regs = try makeRegistries()
        let repo = try regs.repository(Reference(parsing: "\(a.host)/signed/app"))
        var random = RandomContent(seed: 400)
        let image = try await random.pushImage(to: repo, layerSizes: [1000])
        try await repo.tag(image.descriptor, as: "v1")
        let key1 = P256.Signing.PrivateKey()
        let key2 = P256.Signing.PrivateKey()
        try await SimpleSigning.sign(image.descriptor, in: repo, dockerReference: "\(a.host)/signed/app", key: key1, annotations: ["env": "prod"])
        try await SimpleSigning.sign(image.descriptor, in: repo, dockerReference: "\(a.host)/signed/app", key: key2)

        // Both signatures are in the .sig manifest; each verifies only with its own key.
        let sig = try await repo.fetchManifest(repo.resolve("\(image.digest.tagSchema).sig"))
        let m = try #require(try sig.parsed().imageManifest, "expected an image manifest")
        #expect(m.layers.count == 2)
        let results = try await SimpleSigning.verify(image.descriptor, in: repo, key: key1.publicKey)
        #expect(results.map(\.verified) == [true, false])
        #expect(results[0].annotations == ["env": "prod"])
        #expect(results[1].reason?.contains("does not verify") == true)

        // The independent implementation checks payload bytes, digest binding and the ECDSA signature.
        try Data(publicKeyPEM(key1.publicKey).utf8).write(to: URL(fileURLWithPath: dir + "/k1.pub"))
        let payload = try await repo.fetchVerified(m.layers[0]).collect(limit: 1 << 20)
        try payload.write(to: URL(fileURLWithPath: dir + "/payload.json"))
        let b64 = m.layers[0].annotations?[SimpleSigning.signatureAnnotation] ?? ""
        let (ok, identity, err) = try await pythonSign(["verify", dir + "/k1.pub", dir + "/payload.json", b64, image.digest.description])
        #expect(ok == 0, "\(err)")
        #expect(identity.trimmingCharacters(in: .whitespacesAndNewlines) == "\(a.host)/signed/app")
        let (other, _, _) = try await pythonSign([
            "verify", dir + "/k1.pub", dir + "/payload.json", b64, "sha256:" + String(repeating: "0", count: 64),
        ])
        #expect(other == 2)
        try await regs.shutdown()
    }

    @Test func independentSignaturesVerifySurviveCopyAndTamperingIsNamed() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        let dir = try makeTemporaryDirectory()
        let regs = try makeRegistries()
        let repo = try regs.repository(Reference(parsing: "\(a.host)/app"))
        var random = RandomContent(seed: 401)
        let image = try await random.pushImage(to: repo, layerSizes: [2000])
        let other = try await random.pushImage(to: repo, layerSizes: [3000])
        try await repo.tag(image.descriptor, as: "v1")
        let (kp, _, kpErr) = try await pythonSign(["keypair", dir + "/py"])
        #expect(kp == 0, "\(kpErr)")
        let (pushed, _, pushErr) = try await pythonSign(["push", a.host, "app", image.digest.description, dir + "/py.pem"])
        #expect(pushed == 0, "\(pushErr)")
        let pub = try loadPublicKey(String(contentsOfFile: dir + "/py.pub", encoding: .utf8), source: "py.pub")

        let results = try await SimpleSigning.verify(image.descriptor, in: repo, key: pub)
        #expect(results.count == 1)
        #expect(results.first?.verified == true)
        #expect(results.first?.annotations == ["signer": "python"])
        let wrongKey = try await SimpleSigning.verify(image.descriptor, in: repo, key: P256.Signing.PrivateKey().publicKey)
        #expect(wrongKey.first?.verified == false)

        // The signature travels with warden copy and still verifies at the destination.
        let dst = try regs.repository(Reference(parsing: "\(b.host)/mirror/app"))
        let report = try await GraphCopier(from: repo, to: dst).copy(reference: "v1", destinationTag: "v1")
        #expect(report.cosignTags == ["\(image.digest.tagSchema).sig"])
        #expect(try await SimpleSigning.verify(image.descriptor, in: dst, key: pub).first?.verified == true)

        // A signature moved onto another image is rejected with the reason.
        let sig = try await repo.resolve("\(image.digest.tagSchema).sig")
        try await repo.tag(sig, as: "\(other.digest.tagSchema).sig")
        let moved = try await SimpleSigning.verify(other.descriptor, in: repo, key: pub)
        #expect(moved.first?.verified == false)
        #expect(moved.first?.reason?.contains("signature is for \(image.digest)") == true)
        // No .sig tag at all is "no signatures", not an error.
        let unsigned = try await random.pushImage(to: repo, layerSizes: [10])
        #expect(try await SimpleSigning.verify(unsigned.descriptor, in: repo, key: pub).isEmpty)
        try await regs.shutdown()
    }

    @Test func signAndVerifyOnTheCommandLine() async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let dir = try makeTemporaryDirectory()
        let (gen, _, genErr) = try await wardenDev(["testdata", "\(a.host)/cli/signed:v1", "--layers", "1"])
        #expect(gen == 0, "\(genErr)")
        let env = ["WARDEN_PASSWORD": ""]
        let (key, _, keyErr) = try await warden(["key", "generate", "--output-key-prefix", dir + "/k"], environment: env)
        #expect(key == 0, "\(keyErr)")
        let (unsigned, _, _) = try await warden(["verify", "\(a.host)/cli/signed:v1", "--key", dir + "/k.pub"])
        #expect(unsigned == 10)
        let (signed, _, signErr) = try await warden(
            ["sign", "\(a.host)/cli/signed:v1", "--key", dir + "/k.key", "--annotation", "team=core"], environment: env)
        #expect(signed == 0, "\(signErr)")
        let (verified, out, verifyErr) = try await warden(["verify", "\(a.host)/cli/signed:v1", "--key", dir + "/k.pub", "--output", "json"])
        #expect(verified == 0, "\(verifyErr)")
        #expect(out.contains("\"verified\" : true"))
        let (_, _, _) = try await warden(["key", "generate", "--output-key-prefix", dir + "/other"], environment: env)
        let (invalid, text, _) = try await warden(["verify", "\(a.host)/cli/signed:v1", "--key", dir + "/other.pub"])
        #expect(invalid == 11)
        #expect(text.contains("does not verify"))
    }
}

@Suite struct SignatureKeyTypeTests {
    /// cosign accepts Ed25519 and RSA keys too: signatures the independent implementation makes with them verify.
    @Test(arguments: ["ed25519", "rsa"])
    func ed25519AndRSASignaturesVerify(kind: String) async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let dir = try makeTemporaryDirectory()
        let regs = try makeRegistries()
        let repo = try regs.repository(Reference(parsing: "\(a.host)/keys/app"))
        var random = RandomContent(seed: 402)
        let image = try await random.pushImage(to: repo, layerSizes: [100])
        let (kp, _, kpErr) = try await pythonSign(["keypair", dir + "/k", kind])
        #expect(kp == 0, "\(kpErr)")
        let (pushed, _, pushErr) = try await pythonSign(["push", a.host, "keys/app", image.digest.description, dir + "/k.pem"])
        #expect(pushed == 0, "\(pushErr)")
        let key = try loadVerificationKey(String(contentsOfFile: dir + "/k.pub", encoding: .utf8), source: "k.pub")
        #expect(key.algorithm == (kind == "rsa" ? "rsa-sha256" : "ed25519"))
        let results = try await SimpleSigning.verify(image.descriptor, in: repo, key: key)
        #expect(results.map(\.verified) == [true])
        // Another key of the same type does not verify it.
        let (_, _, _) = try await pythonSign(["keypair", dir + "/other", kind])
        let other = try loadVerificationKey(String(contentsOfFile: dir + "/other.pub", encoding: .utf8), source: "other.pub")
        #expect(try await SimpleSigning.verify(image.descriptor, in: repo, key: other).map(\.verified) == [false])
        try await regs.shutdown()
    }
}
