import Crypto
import Documents
import Foundation
import Inventory
import OCI
import OCIRegistry
import OCITesting
import Testing
import Trust
import WardenApp
import Workflow

/// The signing, attesting, inventory and policy jobs the CLI and the workflow actions both call.
@Suite struct SigningJobTests {
    func layoutWithImage() async throws -> (String, Descriptor) {
        let dir = try makeTemporaryDirectory()
        let store = try LayoutStore(path: dir)
        var random = RandomContent(seed: 7)
        let manifest = try await random.pushImage(to: store, layerSizes: [512])
        try await store.tag(manifest.descriptor, as: "v1")
        return (dir, manifest.descriptor)
    }

    /// A tag is resolved once and the digest is what is signed; the signature verifies with the public key, in both
    /// layouts.
    @Test(arguments: [SignatureFormat.legacy, .bundle])
    func signsTheResolvedDigest(format: SignatureFormat) async throws {
        let (dir, subject) = try await layoutWithImage()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = P256.Signing.PrivateKey()
        let registries = try Registries()
        let location = try Location(parsing: "oci-layout:\(dir):v1")
        let report = try await SigningJob.sign(
            .init(location: location, format: format, annotations: ["team": "a"]), key: key, registries: registries)
        #expect(report.subject.digest == subject.digest)
        #expect(report.signature.digest != subject.digest)

        let policy = ImageVerification.adHocPolicy([Authority(name: "k", kind: .key(.p256(key.publicKey)))])
        let store = try LayoutStore(path: dir, create: false)
        let decision = try await ImageVerification.verify(subject, in: store, repository: location.repositoryName, policy: policy, exhaustive: true)
        #expect(decision.outcome == .allowed, "\(decision.reasons)")
    }

    /// A predicate that is not JSON is refused before anything is written; an unknown predicate type is named.
    @Test func attestRefusesWhatCannotBeAttested() async throws {
        let (dir, subject) = try await layoutWithImage()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let registries = try Registries()
        let location = try Location(parsing: "oci-layout:\(dir)@\(subject.digest)")
        let key = P256.Signing.PrivateKey()
        let store = try LayoutStore(path: dir, create: false)
        let before = try await store.listTags()
        let notJSON = SigningJob.AttestRequest(
            location: location, predicateType: "custom", predicate: Data("{nope".utf8), format: .legacy, predicateSource: "--predicate p.json")
        let e = try await #require(throws: TrustError.self) { try await SigningJob.attest(notJSON, key: key, registries: registries) }
        #expect(e.code == .malformed && e.reason.contains("--predicate p.json is not JSON"), "\(e)")
        #expect(try await store.listTags() == before)

        var unknown = notJSON
        unknown.predicate = Data("{}".utf8)
        unknown.predicateType = "no-such-type"
        let u = try await #require(throws: TrustError.self) { try await SigningJob.attest(unknown, key: key, registries: registries) }
        #expect(u.reason.contains("no-such-type"), "\(u)")

        var good = unknown
        good.predicateType = "slsaprovenance1"
        let report = try await SigningJob.attest(good, key: key, registries: registries)
        #expect(report.digest == subject.digest.description && report.predicateType == "https://slsa.dev/provenance/v1")
        #expect(try await store.listTags().contains("\(subject.digest.tagSchema).att"))
    }

    /// Every source scheme of `warden sbom` names one source; only images can carry an attestation.
    @Test func inventorySources() async throws {
        #expect(try InventoryJob.Source(parsing: "dir:/x") == .directory("/x"))
        #expect(try InventoryJob.Source(parsing: "sbom:/a.json") == .sbom("/a.json"))
        #expect(try InventoryJob.Source(parsing: "docker-archive:/t.tar") == .dockerArchive("/t.tar"))
        #expect(try InventoryJob.Source(parsing: "oci-layout:/l:v1") == .image(try Location(parsing: "oci-layout:/l:v1")))
        #expect(try InventoryJob.Source(parsing: "r.io/a:1").isImage)
        #expect(throws: OCIError.self) { try InventoryJob.Source(parsing: "r.io/A B") }

        let root = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try "ID=debian\nVERSION_ID=\"12\"\n".write(toFile: root + "/etc/os-release", atomically: true, encoding: .utf8)
        let registries = try Registries()
        let source = InventoryJob.Source.directory(root)
        let result = try await InventoryJob.run(source, registries: registries)
        #expect(result.subject == nil && result.inventory.subject.name == "dir:" + root)
        let e = try await #require(throws: InventoryError.self) {
            try await InventoryJob.attest(
                result, of: source, format: .cyclonedxJSON, key: P256.Signing.PrivateKey(), layout: .bundle, registries: registries)
        }
        #expect(e.code == .unsupported)
    }
}

/// The run view every surface renders: one JSON document, RFC 3339 times everywhere, steps in definition order.
@Suite struct RunViewTests {
    @Test func aFinishedRunsView() async throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = try RunsJob.openEngine(StateLayout(dir), catalog: ActionCatalog([NoopAction()]), concurrency: 4, environment: [:])
        let text = """
            apiVersion: warden.dev/v1
            kind: Workflow
            name: view
            steps:
              - id: b
                uses: noop@v1
                with: {n: 2}
              - id: a
                uses: noop@v1
                needs: [b]
            """
        let (created, _) = try await engine.start(file: "view.yaml", text: text, inputs: [:])
        let done = try await engine.drive(created.id)
        #expect(try await RunsJob.resolve(String(done.id.prefix(done.id.count - 2)), in: engine).id == done.id)
        await #expect(throws: WorkflowError(.notFound, "")) { try await RunsJob.resolve("zz-no-such-run", in: engine) }

        let view = try await RunsJob.view(done, engine: engine)
        #expect(view.steps?.map(\.id) == ["b", "a"] && view.driver == nil)
        let json = try #require(try JSONSerialization.jsonObject(with: try RFC3339.encoder().encode(view)) as? [String: Any])
        let created_ = try #require(json["createdAt"] as? String)
        #expect(RFC3339.date(created_) != nil, "\(created_)")
        let steps = try #require(json["steps"] as? [[String: Any]])
        #expect(steps.count == 2 && (steps[0]["outputs"] as? [String: Any])?["n"] as? Int == 2, "\(steps)")
        #expect(RFC3339.date(try #require(steps[0]["finishedAt"] as? String)) != nil)
        #expect(steps[0]["attempts"] as? Int == 1 && steps[0]["status"] as? String == "succeeded")
    }
}
