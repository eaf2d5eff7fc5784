import Crypto
import Documents
import Foundation
import OCI
import OCITesting
import Testing
import Trust

@Suite struct EnvelopeTests {
    /// The DSSE specification's worked example of the pre-authentication encoding.
    @Test func paeMatchesTheSpecification() {
        let pae = DSSEEnvelope.pae(payloadType: "http://example.com/HelloWorld", payload: Data("hello world".utf8))
        #expect(String(decoding: pae, as: UTF8.self) == "DSSEv1 29 http://example.com/HelloWorld 11 hello world")
        // Lengths count bytes, not characters.
        let utf8 = DSSEEnvelope.pae(payloadType: "t", payload: Data("é".utf8))
        #expect(String(decoding: utf8, as: UTF8.self) == "DSSEv1 1 t 2 é")
    }

    @Test func signedEnvelopesRoundTripAndRejectChanges() throws {
        let key = P256.Signing.PrivateKey()
        let env = try DSSEEnvelope.sign(payloadType: "application/vnd.in-toto+json", payload: Data("{}".utf8), key: key)
        let parsed = try DSSEEnvelope(json: env.json(), source: "test")
        #expect(parsed == env)
        #expect(parsed.verifiedSignatures(with: .p256(key.publicKey)) == [0])
        #expect(parsed.verifiedSignatures(with: .p256(P256.Signing.PrivateKey().publicKey)).isEmpty)
        var changedType = parsed
        changedType.payloadType = "text/plain"
        #expect(changedType.verifiedSignatures(with: .p256(key.publicKey)).isEmpty)
        var changedBody = parsed
        changedBody.payload = Data("{ }".utf8)
        #expect(changedBody.verifiedSignatures(with: .p256(key.publicKey)).isEmpty)
    }

    /// Malformed inputs give errors that name the input, never a crash.
    @Test(arguments: [
        ("", "not a JSON object"),
        ("[]", "not a JSON object"),
        ("{\"payload\":\"e30=\",\"signatures\":[]}", "payloadType"),
        ("{\"payloadType\":\"x\",\"payload\":\"%%%\",\"signatures\":[]}", "payload"),
        ("{\"payloadType\":\"x\",\"payload\":\"e30\",\"signatures\":{}}", "signatures"),
        ("{\"payloadType\":\"x\",\"payload\":\"e30\",\"signatures\":[{\"keyid\":\"\"}]}", "signature 0"),
        ("{\"payloadType\":\"x\",\"payload\":\"e30\",\"signatures\":[7]}", "signature 0"),
    ])
    func malformedEnvelopes(input: String, mentions: String) {
        #expect {
            try DSSEEnvelope(json: Data(input.utf8), source: "env.json")
        } throws: { e in
            let r = (e as? TrustError)?.reason ?? ""
            return r.hasPrefix("env.json") && r.contains(mentions)
        }
    }

    @Test(arguments: [
        ("{}", "_type"),
        ("{\"_type\":\"https://in-toto.io/Statement/v2\",\"predicateType\":\"p\",\"subject\":[{\"digest\":{}}]}", "Statement/v2"),
        ("{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"digest\":{}}]}", "predicateType"),
        ("{\"_type\":\"https://in-toto.io/Statement/v1\",\"predicateType\":\"p\",\"subject\":[]}", "subject"),
        ("{\"_type\":\"https://in-toto.io/Statement/v1\",\"predicateType\":\"p\",\"subject\":[{\"digest\":{\"sha256\":1}}]}", "subject 0"),
        ("not json", "not a JSON object"),
    ])
    func malformedStatements(input: String, mentions: String) {
        #expect {
            try InTotoStatement(json: Data(input.utf8), source: "st")
        } throws: { e in ((e as? TrustError)?.reason ?? "").contains(mentions) }
    }

    @Test func statementsV01AndV1BindDigests() throws {
        let digest = OCI.Digest.compute(Data("x".utf8))
        for type in [InTotoStatement.typeV01, InTotoStatement.typeV1] {
            let json = """
                {"_type":"\(type)","predicateType":"https://slsa.dev/provenance/v1",
                 "subject":[{"name":"a","digest":{"sha256":"\(digest.hex)"}}],"predicate":{"k":1}}
                """
            let s = try InTotoStatement(json: Data(json.utf8), source: "s")
            #expect(s.binds(digest))
            #expect(!s.binds(OCI.Digest.compute(Data("y".utf8))))
            #expect(String(decoding: s.predicate, as: UTF8.self) == "{\"k\":1}")
        }
        #expect(try PredicateTypes.resolve("slsaprovenance1") == "https://slsa.dev/provenance/v1")
        #expect(try PredicateTypes.resolve("https://example.com/p/v1") == "https://example.com/p/v1")
        #expect(throws: TrustError.self) { try PredicateTypes.resolve("nonsense") }
        #expect(PredicateTypes.matches("https://openvex.dev/ns/v0.2.0", wanted: "https://openvex.dev/ns"))
    }

    @Test func bundlesRoundTripInEveryVersion() throws {
        let key = P256.Signing.PrivateKey()
        let env = try DSSEEnvelope.sign(payloadType: "application/vnd.in-toto+json", payload: Data("{}".utf8), key: key)
        let entry = TransparencyLogEntry(
            logIndex: 7, logID: Data(repeating: 1, count: 32), kind: "dsse", kindVersion: "0.0.1", integratedTime: 1_700_000_000,
            signedEntryTimestamp: Data([1, 2, 3]), canonicalizedBody: Data("{\"a\":1}".utf8))
        for mediaType in SigstoreBundle.mediaTypes {
            for material in [SigstoreBundle.Material.publicKey(hint: "h"), .certificates([Data([0x30, 0x01]), Data([0x30, 0x02])])] {
                let b = SigstoreBundle(mediaType: mediaType, material: material, tlogEntries: [entry], content: .dsse(env))
                let back = try SigstoreBundle(json: b.json(), source: "b")
                #expect(back.content == b.content)
                #expect(back.tlogEntries == [entry])
                if case .certificates(let c) = material, mediaType.contains("0.3") {
                    #expect(back.material == .certificates([c[0]]))  // v0.3 carries the leaf only
                } else {
                    #expect(back.material == material)
                }
            }
        }
    }

    @Test(arguments: [
        ("{}", "mediaType"),
        ("{\"mediaType\":\"application/json\"}", "is not one of"),
        ("{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\"}", "verificationMaterial"),
        ("{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{}}", "no publicKey"),
        (
            "{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{\"certificate\":{\"rawBytes\":\"%\"}}}",
            "rawBytes"
        ),
        (
            "{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{\"publicKey\":{}}}",
            "neither messageSignature nor dsseEnvelope"
        ),
        (
            "{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{\"publicKey\":{},\"tlogEntries\":[{}]}}",
            "tlogEntries[0]"
        ),
        (
            "{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{\"publicKey\":{}},\"messageSignature\":{}}",
            "messageSignature.signature"
        ),
        (
            "{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{\"publicKey\":{}},\"dsseEnvelope\":{}}",
            "dsseEnvelope"
        ),
    ])
    func malformedBundles(input: String, mentions: String) {
        #expect {
            try SigstoreBundle(json: Data(input.utf8), source: "bundle.json")
        } throws: { e in ((e as? TrustError)?.reason ?? "").contains(mentions) }
    }

    @Test func signedEntryTimestamps() throws {
        let rekor = P256.Signing.PrivateKey()
        var entry = TransparencyLogEntry(
            logIndex: 42, logID: Data(SHA256.hash(data: rekor.publicKey.derRepresentation)), integratedTime: 1_700_000_000,
            signedEntryTimestamp: nil, canonicalizedBody: Data("{\"kind\":\"hashedrekord\"}".utf8))
        // Rekor signs canonical JSON: sorted keys, no spaces, body base64, log ID hex.
        let expected =
            "{\"body\":\"\(entry.canonicalizedBody.base64EncodedString())\",\"integratedTime\":1700000000,\"logID\":\"\(entry.logID.map { String(format: "%02x", $0) }.joined())\",\"logIndex\":42}"
        #expect(String(decoding: entry.signedEntryTimestampPayload, as: UTF8.self) == expected)
        entry.signedEntryTimestamp = try rekor.signature(for: entry.signedEntryTimestampPayload).derRepresentation
        #expect(entry.verifySET(keys: [.p256(rekor.publicKey)]))
        #expect(!entry.verifySET(keys: [.p256(P256.Signing.PrivateKey().publicKey)]))
        var moved = entry
        moved.integratedTime += 1
        #expect(!moved.verifySET(keys: [.p256(rekor.publicKey)]))
        for bad in [
            "", "{}", "{\"Payload\":{}}",
            "{\"SignedEntryTimestamp\":\"AA==\",\"Payload\":{\"body\":\"e30=\",\"integratedTime\":1,\"logIndex\":1,\"logID\":\"zz\"}}",
        ] {
            #expect(throws: TrustError.self) { try TransparencyLogEntry(cosignAnnotation: Data(bad.utf8), source: "annotation") }
        }
    }

    @Test func globs() {
        #expect(globMatch("registry.example.com/prod/**", "registry.example.com/prod/team/app"))
        #expect(globMatch("registry.example.com/prod/*", "registry.example.com/prod/app"))
        #expect(!globMatch("registry.example.com/prod/*", "registry.example.com/prod/team/app"))
        #expect(!globMatch("registry.example.com/prod/**", "registry.example.com/production/app"))
        #expect(globMatch("**", "anything/at/all"))
        #expect(globMatch("localhost:50?0/app", "localhost:5000/app"))
        #expect(!globMatch("a/b", "a/bc"))
    }
}

/// Parsers of signed content and trust material: malformed input is a reason or an error, never a crash.
@Suite struct MalformedInputTests {
    static let digest = OCI.Digest.compute(Data("image".utf8))

    @Test(arguments: [
        ("not json", "not a simple-signing document"),
        ("{}", "not a simple-signing document"),
        ("{\"critical\":{\"image\":{\"docker-manifest-digest\":7},\"type\":\"cosign container image signature\"}}", "not a simple-signing document"),
        ("{\"critical\":{\"image\":{\"docker-manifest-digest\":\"sha256:00\"},\"type\":\"something else\"}}", "has type \"something else\""),
        (
            "{\"critical\":{\"image\":{\"docker-manifest-digest\":\"sha256:00\"},\"type\":\"cosign container image signature\"}}",
            "signature is for sha256:00"
        ),
    ])
    func simpleSigningPayloads(payload: String, mentions: String) async throws {
        let key = P256.Signing.PrivateKey()
        let bytes = Data(payload.utf8)
        let o = SignedObject(
            layout: .sigTag, location: "x", content: .simpleSigning(payload: bytes, signature: try key.signature(for: bytes).derRepresentation))
        let subject = Descriptor(mediaType: MediaType.imageManifest, digest: Self.digest, size: 5)
        let check = await SignatureVerifier.check(
            o, subject: subject, manifest: nil, authorities: [Authority(name: "k", kind: .key(.p256(key.publicKey)))])
        #expect(!check.verified)
        #expect(check.reason?.contains(mentions) == true, "\(check.reason ?? "")")
    }

    @Test func dssePayloadsThatAreNotStatements() async throws {
        let key = P256.Signing.PrivateKey()
        let subject = Descriptor(mediaType: MediaType.imageManifest, digest: Self.digest, size: 5)
        for (type, body, mentions) in [
            ("text/plain", "hello", "payload type is \"text/plain\""),
            (DSSEEnvelope.inTotoPayloadType, "[1,2]", "not a JSON object"),
            (DSSEEnvelope.inTotoPayloadType, "{\"_type\":\"https://in-toto.io/Statement/v1\"}", "predicateType"),
        ] {
            let env = try DSSEEnvelope.sign(payloadType: type, payload: Data(body.utf8), key: key)
            let check = await SignatureVerifier.check(
                SignedObject(layout: .attTag, location: "x", content: .dsse(env)), subject: subject, manifest: nil,
                authorities: [Authority(name: "k", kind: .key(.p256(key.publicKey)))])
            #expect(!check.verified)
            #expect(check.reason?.contains(mentions) == true, "\(check.reason ?? "")")
        }
    }

    @Test(arguments: [
        "", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        "-----BEGIN PUBLIC KEY-----\n%%%%\n-----END PUBLIC KEY-----\n",
    ])
    func publicKeysAndCertificates(text: String) {
        #expect(throws: TrustError.self) { try loadVerificationKey(text, source: "in.pem") }
        #expect(throws: TrustError.self) { try CertificateAuthorities.loadPEM(text, source: "in.pem") }
    }

    @Test(arguments: [
        "", "[]", "{}", "{\"tlogs\":[{\"publicKey\":{}}]}", "{\"tlogs\":[{\"publicKey\":{\"rawBytes\":\"AAAA\"}}]}",
        "{\"certificateAuthorities\":[{\"certChain\":{\"certificates\":[{\"rawBytes\":\"AAAA\"}]}}]}",
    ])
    func trustedRoots(text: String) {
        #expect(throws: TrustError.self) { try TrustedRoot(json: Data(text.utf8), source: "trusted_root.json") }
    }

    @Test func certificatesThatDoNotParse() async {
        let cas = CertificateAuthorities(roots: [])
        await #expect(throws: TrustError.self) { try await cas.verify(leafDER: Data([0x30, 0x03, 0x02, 0x01, 0x01]), at: Date()) }
    }
}
