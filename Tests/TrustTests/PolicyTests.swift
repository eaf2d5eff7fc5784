import Crypto
import Foundation
import OCI
import OCITesting
import Testing
import Trust

private func write(_ text: String, _ path: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) }

@Suite struct PolicyTests {
    let dir: String
    let release = P256.Signing.PrivateKey()
    let qa = P256.Signing.PrivateKey()

    init() throws {
        dir = try makeTemporaryDirectory()
        try write(publicKeyPEM(release.publicKey), dir + "/release.pub")
        try write(publicKeyPEM(qa.publicKey), dir + "/qa.pub")
    }

    func policy(_ text: String) throws -> TrustPolicy {
        try write(text, dir + "/policy.yaml")
        return try TrustPolicy.load(path: dir + "/policy.yaml")
    }

    static let twoKeys = """
        apiVersion: warden.dev/v1
        kind: TrustPolicy
        authorities:
          release:
            key: release.pub
          qa:
            key: qa.pub
        policies:
          - name: prod
            images: ["registry.example.com/prod/**"]
            authorities: [release, qa]
            threshold: 2
          - name: staging
            images: ["registry.example.com/staging/*"]
            authorities: [release]
            attestations:
              - predicateType: slsaprovenance1
                authorities: [qa]
          - name: scratch
            images: ["registry.example.com/scratch/**"]
            allowUnsigned: true
          - name: banned
            images: ["registry.example.com/banned/**"]
            reject: true

        """

    @Test func thresholdsAttestationsRejectAndUnmatched() async throws {
        let p = try policy(Self.twoKeys)
        let store = MemoryStore()
        var random = RandomContent(seed: 70)
        let image = try await random.pushImage(to: store, layerSizes: [10])
        func verify(_ repo: String) async throws -> PolicyDecision {
            try await ImageVerification.verify(image.descriptor, in: store, repository: repo, policy: p)
        }
        // prod needs both keys: none, then one, then both.
        #expect(try await verify("registry.example.com/prod/app").outcome == .noSignature)
        try await SimpleSigning.sign(image.descriptor, in: store, dockerReference: "registry.example.com/prod/app", key: release)
        let one = try await verify("registry.example.com/prod/app")
        #expect(one.outcome == .invalid)
        #expect(one.reasons == ["1 of the 2 required authorities (release, qa) verified a signature"])
        try await Signer.signBundle(image.descriptor, in: store, name: "registry.example.com/prod/app", key: qa)
        let both = try await verify("registry.example.com/prod/app")
        #expect(both.outcome == .allowed, "\(both.reasons)")
        #expect(Set(both.signatures.compactMap(\.authority)) == ["release", "qa"])

        // staging: signed by release, but provenance must come from qa.
        #expect(try await verify("registry.example.com/staging/app").reasons == ["no attestation of type https://slsa.dev/provenance/v1"])
        try await Signer.attest(
            image.descriptor, in: store, name: "x", predicateType: "https://slsa.dev/provenance/v1", predicate: Data("{}".utf8), key: release,
            format: .legacy)
        let wrongSigner = try await verify("registry.example.com/staging/app")
        #expect(wrongSigner.outcome == .invalid)
        try await Signer.attest(
            image.descriptor, in: store, name: "x", predicateType: "https://slsa.dev/provenance/v1", predicate: Data("{}".utf8), key: qa,
            format: .bundle)
        let ok = try await verify("registry.example.com/staging/app")
        #expect(ok.outcome == .allowed, "\(ok.reasons)")
        #expect(ok.attestations.contains { $0.verified && $0.authority == "qa" && $0.layout == "bundle-referrer" })

        #expect(try await verify("registry.example.com/scratch/x/y").outcome == .allowed)
        #expect(try await verify("registry.example.com/banned/app").outcome == .rejected)
        let unmatched = try await verify("docker.io/library/alpine")
        #expect(unmatched.outcome == .rejected)
        #expect(unmatched.reasons == ["no policy matches docker.io/library/alpine"])
    }

    /// CEL conditions over the predicate: one verified attestation must meet all of them.
    @Test func attestationConditions() async throws {
        let p = try policy(
            """
            apiVersion: warden.dev/v1
            kind: TrustPolicy
            authorities:
              release:
                key: release.pub
            policies:
              - name: built
                images: ["**"]
                authorities: [release]
                attestations:
                  - predicateType: slsaprovenance1
                    conditions:
                      - predicate.runDetails.builder.id == "https://ci.example/builder"
                      - predicate.buildDefinition.externalParameters.ref.startsWith("refs/tags/")

            """)
        let store = MemoryStore()
        var random = RandomContent(seed: 71)
        let image = try await random.pushImage(to: store, layerSizes: [10])
        try await SimpleSigning.sign(image.descriptor, in: store, dockerReference: "r/app", key: release)
        func provenance(_ builder: String, _ ref: String) async throws {
            let predicate = #"{"buildDefinition":{"externalParameters":{"ref":"\#(ref)"}},"runDetails":{"builder":{"id":"\#(builder)"}}}"#
            try await Signer.attest(
                image.descriptor, in: store, name: "r/app", predicateType: "https://slsa.dev/provenance/v1", predicate: Data(predicate.utf8),
                key: release, format: .bundle)
        }
        func verify() async throws -> PolicyDecision {
            try await ImageVerification.verify(image.descriptor, in: store, repository: "r/app", policy: p)
        }
        try await provenance("https://evil.example/builder", "refs/tags/v1")
        let wrongBuilder = try await verify()
        #expect(wrongBuilder.outcome == .invalid)
        #expect(
            wrongBuilder.reasons.first?.contains(
                #"meets the conditions: condition `predicate.runDetails.builder.id == "https://ci.example/builder"` (\#(dir)/policy.yaml:13:13) is false"#
            )
                == true, "\(wrongBuilder.reasons)")
        try await provenance("https://ci.example/builder", "main")
        #expect(try await verify().reasons.first?.contains("externalParameters.ref.startsWith") == true)
        try await provenance("https://ci.example/builder", "refs/tags/v2")
        let ok = try await verify()
        #expect(ok.outcome == .allowed, "\(ok.reasons)")
    }

    /// Conditions are checked when the file is read: CEL syntax with the exact column, types that can never be bool.
    @Test(arguments: [
        ("        conditions:\n          - predicate.a ==\n", ":13:27: invalid CEL: unexpected end of input"),
        ("        conditions:\n          - 'predicate.a == (1'\n", ":13:31: invalid CEL: expected ')'"),
        (
            "        conditions:\n          - size(predicate.materials)\n",
            ":13:13: the condition must be a bool, but `size(predicate.materials)` is int"
        ),
        ("        conditions:\n          - '\"yes\"'\n", ":13:13: the condition must be a bool, but `\"yes\"` is string"),
        ("        conditions: x\n", ":12:21: expected a list"),
    ])
    func conditionErrorsHavePositions(tail: String, mentions: String) throws {
        let head = """
            apiVersion: warden.dev/v1
            kind: TrustPolicy
            authorities:
              release:
                key: release.pub
            policies:
              - name: built
                images: ["**"]
                authorities: [release]
                attestations:
                  - predicateType: slsaprovenance1

            """
        let text = head + tail
        #expect {
            try policy(text)
        } throws: { e in
            let r = (e as? TrustError)?.reason ?? ""
            return r.contains("policy.yaml") && r.contains(mentions)
        }
    }

    /// Errors name the file, line and column, before anything is verified.
    @Test(arguments: [
        ("apiVersion: warden.dev/v1\nkind: TrustPolicy\npolices: []\n", ":3:1: unknown key \"polices\""),
        ("apiVersion: warden.dev/v2\nkind: TrustPolicy\n", ":1:13: apiVersion must be warden.dev/v1"),
        ("apiVersion: warden.dev/v1\nkind: TrustPolicy\nauthorities:\n  a:\n    key: missing.pub\n", ":5:10: cannot read"),
        (
            "apiVersion: warden.dev/v1\nkind: TrustPolicy\nauthorities:\n  a:\n    key: release.pub\npolicies:\n  - images: [x]\n    authorities: [b]\n",
            ":8:19: unknown authority \"b\""
        ),
        (
            "apiVersion: warden.dev/v1\nkind: TrustPolicy\nauthorities:\n  a:\n    key: release.pub\npolicies:\n  - images: [x]\n    authorities: [a]\n    threshold: 2\n",
            ":9:16: threshold 2 must be between 1"
        ),
        (
            "apiVersion: warden.dev/v1\nkind: TrustPolicy\nauthorities:\n  a:\n    key: release.pub\npolicies:\n  - images: [x]\n    authorities: [a]\n    threshold: many\n",
            ":9:16: expected an integer"
        ),
        ("apiVersion: warden.dev/v1\nkind: TrustPolicy\nauthorities:\n  a:\n    keyless:\n      roots: release.pub\n", ":6:14: "),
        ("apiVersion: warden.dev/v1\nkind: TrustPolicy\npolicies:\n  - images: x\n    reject: true\n", ":4:13: expected a list"),
        ("apiVersion: warden.dev/v1\nkind: TrustPolicy\npolicies:\n  - images: [x]\n", "names no authorities"),
        ("apiVersion: warden.dev/v1\nkind: TrustPolicy\npolicies: [\n", "not valid YAML"),
        ("apiVersion: warden.dev/v1\nkind: TrustPolicy\nkind: TrustPolicy\n", "duplicated key(s): 'kind'"),
    ])
    func policyErrorsHavePositions(text: String, mentions: String) throws {
        #expect {
            try policy(text)
        } throws: { e in
            let r = (e as? TrustError)?.reason ?? ""
            return r.contains("policy.yaml") && r.contains(mentions)
        }
    }

    @Test func containersPolicyImport() throws {
        let json = """
            {
              "default": [{"type": "reject"}],
              "transports": {
                "docker": {
                  "registry.example.com/prod": [{"type": "sigstoreSigned", "keyPath": "\(dir)/release.pub",
                                                 "signedIdentity": {"type": "matchRepository"}}],
                  "registry.example.com/prod/special": [{"type": "sigstoreSigned", "keyPaths": ["\(dir)/release.pub", "\(dir)/qa.pub"]}],
                  "registry.example.com/two": [{"type": "sigstoreSigned", "keyPath": "\(dir)/release.pub"},
                                               {"type": "sigstoreSigned", "keyPath": "\(dir)/qa.pub"}],
                  "docker.io": [{"type": "insecureAcceptAnything"}]
                }
              }
            }
            """
        let yaml = try ContainersPolicyImport.convert(Data(json.utf8), source: "policy.json")
        let p = try policy(yaml)
        #expect(p.rule(for: "registry.example.com/prod/special/x")?.authorities.count == 2)
        #expect(p.rule(for: "registry.example.com/prod/special/x")?.threshold == 1)
        #expect(p.rule(for: "registry.example.com/prod")?.name == "registry.example.com/prod")
        #expect(p.rule(for: "registry.example.com/prod/app")?.name == "registry.example.com/prod")
        #expect(p.rule(for: "registry.example.com/two")?.threshold == 2)
        #expect(p.rule(for: "docker.io/library/alpine")?.allowUnsigned == true)
        #expect(p.rule(for: "quay.io/x")?.reject == true)

        #expect {
            try ContainersPolicyImport.convert(
                Data(#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k.gpg"}]}"#.utf8), source: "policy.json")
        } throws: { e in ((e as? TrustError)?.reason ?? "").contains("default[0]: requirement type \"signedBy\" has no Warden equivalent") }
        #expect(throws: TrustError.self) { try ContainersPolicyImport.convert(Data("[]".utf8), source: "policy.json") }
    }

    /// Tampering: a signature moved to another image, a statement about another digest, a message signature over
    /// other bytes — each refused with its reason.
    @Test func tamperedAttachmentsAreRefusedWithReasons() async throws {
        let store = MemoryStore()
        var random = RandomContent(seed: 71)
        let a = try await random.pushImage(to: store, layerSizes: [10])
        let b = try await random.pushImage(to: store, layerSizes: [10])
        let key = release
        let authorities = [Authority(name: "release", kind: .key(.p256(key.publicKey)))]
        let p = ImageVerification.adHocPolicy(authorities, attestations: ["https://example.com/p"])

        // A's .sig manifest copied to B's .sig tag.
        try await SimpleSigning.sign(a.descriptor, in: store, dockerReference: "r/a", key: key)
        try await store.tag(store.resolve("\(a.digest.tagSchema).sig"), as: "\(b.digest.tagSchema).sig")
        // A statement naming A, pushed as B's attestation.
        try await Signer.attest(
            a.descriptor, in: store, name: "r/a", predicateType: "https://example.com/p", predicate: Data("{}".utf8), key: key, format: .legacy)
        try await store.tag(store.resolve("\(a.digest.tagSchema).att"), as: "\(b.digest.tagSchema).att")
        // A message signature over A's manifest, attached to B.
        let sig = try key.signature(for: a.bytes).derRepresentation
        let bundle = SigstoreBundle(
            material: .publicKey(hint: ""),
            content: .messageSignature(algorithm: "SHA2_256", digest: Data(SHA256.hash(data: a.bytes)), signature: sig))
        try await Signer.pushBundle(bundle, for: b.descriptor, predicateType: nil, in: store)

        let d = try await ImageVerification.verify(b.descriptor, in: store, repository: "r/b", policy: p)
        #expect(d.outcome == .invalid)
        let reasons = (d.signatures + d.attestations).compactMap(\.reason)
        #expect(reasons.contains("signature is for \(a.digest), not \(b.digest)"))
        #expect(reasons.contains { $0.contains("do not include \(b.digest)") })
        #expect(reasons.contains("signature does not verify with release"))
        #expect(d.signatures.allSatisfy { !$0.verified } && d.attestations.allSatisfy { !$0.verified })

        // A simple signature pushed as a referrer (cosign's OCI 1.1 experimental mode) is read too.
        let payload = try SimpleSigning.payload(dockerReference: "r/a", digest: a.digest, annotations: [:])
        var layer = Descriptor.of(payload, mediaType: MediaType.cosignSimpleSigning)
        layer.annotations = [SimpleSigning.signatureAnnotation: try key.signature(for: payload).derRepresentation.base64EncodedString()]
        try await store.push(layer, bytes: payload)
        try await store.push(.emptyJSON, bytes: Descriptor.emptyJSONBytes)
        let sigReferrer = try RawManifest.encode(
            ImageManifest(
                artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json", config: .emptyJSON, layers: [layer], subject: a.descriptor.plain),
            mediaType: MediaType.imageManifest)
        try await store.push(sigReferrer)

        // The same bundle on A verifies: the refusal above is about the binding, not the format.
        try await Signer.pushBundle(bundle, for: a.descriptor, predicateType: nil, in: store)
        let onA = try await ImageVerification.verify(a.descriptor, in: store, repository: "r/a", policy: p)
        #expect(onA.outcome == .allowed, "\(onA.reasons)")
        #expect(onA.signatures.filter(\.verified).map(\.layout).sorted() == ["bundle-referrer", "referrer", "sig-tag"])
    }
}
