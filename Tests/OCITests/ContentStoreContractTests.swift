import Foundation
import OCI
import OCIRegistry
import OCITesting
import Testing

/// The implementations of `ContentStore` (Sources/OCI/ContentStore.swift), each run through the same contract.
///
/// What each one supports, as the contract asserts it:
///
/// | implementation      | referrers are listed from                            | tags of an empty repository | mount | manifest by reference |
/// |---------------------|------------------------------------------------------|-----------------------------|-------|-----------------------|
/// | `memory`            | its own index of pushed manifests with a subject     | `[]`                        | no    | no                    |
/// | `layout`            | untagged `index.json` entries                        | `[]`                        | no    | no                    |
/// | `registry`          | the referrers API (OCI 1.1 test registry)            | `[]`                        | yes   | yes                   |
/// | `registry-fallback` | the `sha256-<hex>` fallback tag (test registry       | `[]`                        | yes   | yes                   |
/// |                     | without the referrers API)                           |                             |       |                       |
/// | `distribution`      | the fallback tag (docker-registry, distribution 2)   | notFound (`NAME_UNKNOWN`)   | yes   | yes                   |
///
/// A lookup in the memory store cannot fail; in the others it can (an unreadable `index.json`, a registry that
/// answers 503 or is gone), and then it throws rather than report that nothing is there.
///
/// The registry implementations are `RegistryRepository` over a loopback registry: the in-process
/// `TestRegistryServer`, and a real `docker-registry` started by `RegistryProcess` (which fails with install
/// instructions when the binary is missing, as every integration test does; it never skips).
enum StoreImplementation: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory
    case layout
    case registry
    case registryFallback = "registry-fallback"
    case distribution

    var testDescription: String { rawValue }

    enum ReferrersSource { case storeIndex, referrersAPI, fallbackTag }

    /// Where the implementation finds referrers.
    var referrers: ReferrersSource {
        switch self {
        case .memory, .layout: .storeIndex
        case .registry: .referrersAPI
        case .registryFallback, .distribution: .fallbackTag
        }
    }

    /// Whether listing the tags of a repository nothing was pushed to is an empty list (else: notFound).
    var listsNoTagsAsEmpty: Bool { self != .distribution }

    var isRegistry: Bool { self == .registry || self == .registryFallback || self == .distribution }

    /// Whether a lookup can fail (there is something to break); the memory store's cannot.
    var lookupsCanFail: Bool { self != .memory }

    /// A fresh, empty store of this kind for `body`; removed (or shut down) afterwards.
    func withStore(_ body: (StoreUnderTest) async throws -> Void) async throws {
        switch self {
        case .memory:
            try await body(StoreUnderTest(store: MemoryStore(name: "memory"), name: "memory", sibling: nil, requests: { [] }, breakStore: nil))
        case .layout:
            try await withTemporaryDirectory(prefix: "warden-contract") { dir in
                let store = try LayoutStore(path: dir + "/layout")
                // An index.json that is not an index: nothing can be looked up any more.
                let corrupt: @Sendable () async throws -> Void = {
                    try Data("{\"manifests\": 7".utf8).write(to: URL(fileURLWithPath: dir + "/layout/index.json"))
                }
                try await body(StoreUnderTest(store: store, name: dir + "/layout", sibling: nil, requests: { [] }, breakStore: corrupt))
            }
        case .registry, .registryFallback:
            var options = TestRegistryServer.Options()
            options.referrersAPI = self == .registry
            let server = try await TestRegistryServer.start(options: options)
            do {
                try await Self.withRegistry(host: server.host, requests: { server.requests }, breakStore: { server.setUnavailable(true) }, body)
            } catch {
                try? await server.shutdown()
                throw error
            }
            try await server.shutdown()
        case .distribution:
            let registry = try await RegistryProcess.start()
            defer { registry.stop() }
            try await Self.withRegistry(host: registry.host, requests: { [] }, breakStore: { registry.kill() }, body)
        }
    }

    /// Repositories `contract/store` and `contract/sibling` of the registry at `host`. Uploads above 64 KiB are
    /// chunked (32 KiB chunks), so the larger blobs of the contract go through the chunked path.
    private static func withRegistry(
        host: String, requests: @escaping @Sendable () -> [String], breakStore: @escaping @Sendable () async throws -> Void,
        _ body: (StoreUnderTest) async throws -> Void
    ) async throws {
        var c = RegistryConfiguration()
        c.retry.initialDelay = .milliseconds(10)
        c.retry.maxAttempts = 2
        // The HTTP client keeps trying to connect to a registry that is gone until this timeout.
        c.connectTimeout = .seconds(2)
        c.credentials = CredentialResolver(explicit: [:], configFiles: [], environment: [:])
        c.chunkedUploadThreshold = 64 << 10
        c.chunkSize = 32 << 10
        let registries = try Registries(configuration: c)
        do {
            let store = try registries.repository(Reference(parsing: "\(host)/contract/store"))
            let sibling = try registries.repository(Reference(parsing: "\(host)/contract/sibling"))
            try await body(StoreUnderTest(store: store, name: "\(host)/contract/store", sibling: sibling, requests: requests, breakStore: breakStore))
        } catch {
            try? await registries.shutdown()
            throw error
        }
        try await registries.shutdown()
    }
}

/// A store under test, and what the contract needs around it.
struct StoreUnderTest {
    let store: any ContentStore
    /// What the store's `displayName` names (its repository, its directory).
    let name: String
    /// Another repository of the same registry (a mount's source); nil where stores have no siblings.
    let sibling: (any ContentStore)?
    /// Requests the test registry received, as "METHOD path" (empty for other implementations).
    let requests: () -> [String]
    /// Makes every later lookup fail: corrupts the layout's index, makes the test registry answer 503 to everything,
    /// kills docker-registry. Nil for the memory store.
    let breakStore: (@Sendable () async throws -> Void)?
}

@Suite struct ContentStoreContractTests {
    /// Blob sizes: empty, one byte, small, and above the registry fixtures' chunked-upload threshold.
    static let blobSizes = [0, 1, 1000, 200_000]

    static func notFound(_ error: OCIError) -> Bool { error.code == .notFound }

    /// A descriptor of random bytes that were never pushed anywhere.
    static func absent(_ random: inout RandomContent, mediaType: String = "application/octet-stream") -> Descriptor {
        Descriptor.of(random.generator.bytes(64), mediaType: mediaType)
    }

    /// `displayName`, which messages use, names the store: its repository, its directory.
    @Test(arguments: StoreImplementation.allCases) func theDisplayNameNamesTheStore(_ impl: StoreImplementation) async throws {
        try await impl.withStore { s in
            #expect(s.store.displayName.contains(s.name), "\(s.store.displayName) does not name \(s.name)")
        }
    }

    // MARK: blobs

    /// A pushed blob exists and reads back byte for byte, with its declared size; pushing it again is no error.
    @Test(arguments: StoreImplementation.allCases) func aPushedBlobReadsBackByteExact(_ impl: StoreImplementation) async throws {
        try await impl.withStore { s in
            var random = RandomContent(seed: 9100)
            for size in Self.blobSizes {
                let bytes = random.generator.bytes(size)
                let d = Descriptor.of(bytes, mediaType: "application/octet-stream")
                #expect(try await !s.store.exists(d), "\(size) bytes exist before the push")
                try await s.store.push(d, bytes: bytes)
                #expect(try await s.store.exists(d), "\(size) bytes")
                let raw = try await s.store.fetch(d).collect(limit: 1 << 20)
                #expect(raw == bytes, "\(size) bytes read back as \(raw.count) other bytes")
                #expect(Int64(raw.count) == d.size)
                #expect(try await s.store.fetchVerified(d).collect(limit: 1 << 20) == bytes)
                try await s.store.push(d, bytes: bytes)
                #expect(try await s.store.fetch(d).collect(limit: 1 << 20) == bytes, "a second push of \(size) bytes changed them")
            }
        }
    }

    /// Bytes that do not match the declared digest, or not the declared size, are refused, and neither the declared
    /// digest nor the bytes' own digest is visible afterwards — below and above the chunked-upload threshold.
    @Test(arguments: StoreImplementation.allCases) func aMismatchedPushFailsAndLeavesNothing(_ impl: StoreImplementation) async throws {
        try await impl.withStore { s in
            var random = RandomContent(seed: 9200)
            for size in [1000, 200_000] {
                let bytes = random.generator.bytes(size)
                let declared = Descriptor.of(random.generator.bytes(size), mediaType: "application/octet-stream")
                let actual = Descriptor.of(bytes, mediaType: "application/octet-stream")
                let wrongDigest = try await #require(throws: OCIError.self) { try await s.store.push(declared, bytes: bytes) }
                #expect(wrongDigest.code == .digestMismatch, "\(size) bytes: \(wrongDigest)")
                #expect(try await !s.store.exists(declared))
                #expect(try await !s.store.exists(actual))

                var tooLong = actual
                tooLong.size += 1
                let wrongSize = try await #require(throws: OCIError.self) { try await s.store.push(tooLong, bytes: bytes) }
                #expect(wrongSize.code == .sizeMismatch, "\(size) bytes declared one longer: \(wrongSize)")
                #expect(try await !s.store.exists(actual))
                await #expect(throws: OCIError.self) { _ = try await s.store.fetch(actual).collect(limit: 1 << 20) }
            }
            // A manifest whose bytes are not its digest's.
            let image = try await random.pushImage(to: MemoryStore(), layerSizes: [10])
            let other = try await random.pushImage(to: MemoryStore(), layerSizes: [10])
            var forged = image.descriptor
            forged.digest = other.digest
            let error = try await #require(throws: OCIError.self) { try await s.store.push(forged, bytes: image.bytes) }
            #expect(error.code == .digestMismatch || error.code == .sizeMismatch, "\(error)")
            #expect(try await !s.store.exists(forged))
            #expect(try await !s.store.exists(image.descriptor))
            let unresolved = try await #require(throws: OCIError.self) { _ = try await s.store.resolve(other.digest.description) }
            #expect(Self.notFound(unresolved), "\(unresolved)")
        }
    }

    /// What was never pushed is absent: `exists` says false, and fetching, resolving or tagging it fails with
    /// the notFound code.
    @Test(arguments: StoreImplementation.allCases) func absentContentIsNotFound(_ impl: StoreImplementation) async throws {
        try await impl.withStore { s in
            var random = RandomContent(seed: 9300)
            // Something is stored, so that the repository itself exists.
            let image = try await random.pushImage(to: s.store, layerSizes: [10])
            try await s.store.tag(image.descriptor, as: "present")

            let blob = Self.absent(&random)
            #expect(try await !s.store.exists(blob))
            let fetchBlob = try await #require(throws: OCIError.self) { _ = try await s.store.fetch(blob).collect(limit: 1 << 20) }
            #expect(Self.notFound(fetchBlob), "\(fetchBlob)")

            let manifest = Self.absent(&random, mediaType: MediaType.imageManifest)
            #expect(try await !s.store.exists(manifest))
            let fetchManifest = try await #require(throws: OCIError.self) { _ = try await s.store.fetch(manifest).collect(limit: 1 << 20) }
            #expect(Self.notFound(fetchManifest), "\(fetchManifest)")

            let byTag = try await #require(throws: OCIError.self) { _ = try await s.store.resolve("absent") }
            #expect(Self.notFound(byTag), "\(byTag)")
            let byDigest = try await #require(throws: OCIError.self) { _ = try await s.store.resolve(manifest.digest.description) }
            #expect(Self.notFound(byDigest), "\(byDigest)")

            // A tag must point at a stored manifest.
            let tagging = try await #require(throws: OCIError.self) { try await s.store.tag(manifest, as: "dangling") }
            #expect(Self.notFound(tagging), "\(tagging)")
            #expect(try await !s.store.listTags().contains("dangling"))
        }
    }

    // MARK: manifests and tags

    /// A manifest pushed by digest resolves by that digest; tagged, it resolves by the tag; both give its media
    /// type, size and exact bytes.
    @Test(arguments: StoreImplementation.allCases) func aManifestResolvesByDigestAndByTag(_ impl: StoreImplementation) async throws {
        try await impl.withStore { s in
            var random = RandomContent(seed: 9400)
            let image = try await random.pushImage(to: s.store, layerSizes: [100, 2000])
            #expect(try await s.store.exists(image.descriptor))
            let byDigest = try await s.store.resolve(image.digest.description)
            #expect(byDigest.digest == image.digest && byDigest.size == image.descriptor.size && byDigest.mediaType == MediaType.imageManifest)
            #expect(try await s.store.fetchManifest(byDigest).bytes == image.bytes)

            try await s.store.tag(image.descriptor, as: "v1")
            let byTag = try await s.store.resolve("v1")
            #expect(byTag.digest == image.digest && byTag.size == image.descriptor.size && byTag.mediaType == MediaType.imageManifest)
            #expect(try await s.store.fetchManifest(byTag).bytes == image.bytes)
            #expect(try await s.store.listTags().contains("v1"))

            // An index is a manifest too.
            let index = try await random.pushIndex(
                to: s.store, platforms: [Platform(os: "linux", architecture: "amd64"), Platform(os: "linux", architecture: "arm64")], layerSizes: [10]
            )
            try await s.store.tag(index.descriptor, as: "multi")
            let multi = try await s.store.resolve("multi")
            #expect(multi.digest == index.digest && multi.mediaType == MediaType.imageIndex)
            #expect(try await s.store.fetchManifest(multi).bytes == index.bytes)
        }
    }

    /// Tagging a second manifest with the same tag moves the tag; the first manifest stays, by its digest.
    @Test(arguments: StoreImplementation.allCases) func taggingAgainMovesTheTag(_ impl: StoreImplementation) async throws {
        try await impl.withStore { s in
            var random = RandomContent(seed: 9500)
            let first = try await random.pushImage(to: s.store, layerSizes: [100])
            let second = try await random.pushImage(to: s.store, layerSizes: [100])
            try await s.store.tag(first.descriptor, as: "latest")
            #expect(try await s.store.resolve("latest").digest == first.digest)
            try await s.store.tag(second.descriptor, as: "latest")
            #expect(try await s.store.resolve("latest").digest == second.digest)
            #expect(try await s.store.fetchManifest(s.store.resolve("latest")).bytes == second.bytes)
            #expect(try await s.store.listTags().filter { $0 == "latest" }.count == 1)
            #expect(try await s.store.resolve(first.digest.description).digest == first.digest)
            #expect(try await s.store.fetchManifest(first.descriptor).bytes == first.bytes)
        }
    }

    /// `listTags` lists exactly the tags written; a repository nothing was pushed to lists none (memory, layout,
    /// the test registry) or is not found (distribution answers `NAME_UNKNOWN`).
    @Test(arguments: StoreImplementation.allCases) func tagsAreListed(_ impl: StoreImplementation) async throws {
        try await impl.withStore { s in
            if impl.listsNoTagsAsEmpty {
                #expect(try await s.store.listTags().isEmpty)
            } else {
                let error = try await #require(throws: OCIError.self) { _ = try await s.store.listTags() }
                #expect(Self.notFound(error), "\(error)")
            }
            var random = RandomContent(seed: 9600)
            let image = try await random.pushImage(to: s.store, layerSizes: [100])
            let other = try await random.pushImage(to: s.store, layerSizes: [100])
            for tag in ["v1", "v1.0", "stable"] { try await s.store.tag(image.descriptor, as: tag) }
            try await s.store.tag(other.descriptor, as: "v2")
            #expect(Set(try await s.store.listTags()) == ["v1", "v1.0", "stable", "v2"])
            #expect(try await s.store.listTags().count == 4)
        }
    }

    // MARK: referrers

    /// Manifests whose subject is an image are its referrers, filtered by artifact type on request; an image
    /// nothing refers to has none. Each implementation is seen to use the mechanism it claims.
    @Test(arguments: StoreImplementation.allCases) func referrersAreListedAndFiltered(_ impl: StoreImplementation) async throws {
        try await impl.withStore { s in
            var random = RandomContent(seed: 9700)
            let image = try await random.pushImage(to: s.store, layerSizes: [100])
            let lonely = try await random.pushImage(to: s.store, layerSizes: [100])
            let sbom = try await random.pushArtifact(
                to: s.store, subject: image.descriptor, artifactType: "application/spdx+json", annotations: ["kind": "sbom"])
            let provenance = try await random.pushArtifact(to: s.store, subject: image.descriptor, artifactType: "application/vnd.in-toto+json")

            let all = try await s.store.referrers(of: image.descriptor, artifactType: nil)
            #expect(Set(all.map(\.digest)) == [sbom.digest, provenance.digest])
            #expect(all.count == 2)
            let listed = try #require(all.first { $0.digest == sbom.digest })
            #expect(listed.artifactType == "application/spdx+json" && listed.mediaType == MediaType.imageManifest)
            #expect(listed.size == sbom.descriptor.size && listed.annotations?["kind"] == "sbom")

            #expect(try await s.store.referrers(of: image.descriptor, artifactType: "application/spdx+json").map(\.digest) == [sbom.digest])
            #expect(try await s.store.referrers(of: image.descriptor, artifactType: "application/x-none").isEmpty)
            #expect(try await s.store.referrers(of: lonely.descriptor, artifactType: nil).isEmpty)

            let tags = try await s.store.listTags()
            switch impl.referrers {
            case .storeIndex:
                #expect(tags.isEmpty, "referrers added tags: \(tags)")
            case .referrersAPI:
                #expect(!tags.contains(image.digest.tagSchema), "a fallback tag was written although the registry has the referrers API")
                #expect(s.requests().contains { $0.hasPrefix("GET /v2/contract/store/referrers/\(image.digest)") })
            case .fallbackTag:
                #expect(tags == [image.digest.tagSchema])
            }
        }
    }

    /// A lookup that cannot be made throws; it never answers "no referrers", "no tags" or "absent".
    @Test(arguments: StoreImplementation.allCases.filter(\.lookupsCanFail))
    func aFailedLookupThrowsRatherThanFindingNothing(_ impl: StoreImplementation) async throws {
        try await impl.withStore { s in
            var random = RandomContent(seed: 9750)
            let image = try await random.pushImage(to: s.store, layerSizes: [100])
            _ = try await random.pushArtifact(to: s.store, subject: image.descriptor, artifactType: "application/spdx+json")
            try await s.store.tag(image.descriptor, as: "v1")
            let breakStore = try #require(s.breakStore)
            try await breakStore()
            await #expect(throws: (any Error).self) { _ = try await s.store.referrers(of: image.descriptor, artifactType: nil) }
            await #expect(throws: (any Error).self) { _ = try await s.store.listTags() }
            await #expect(throws: (any Error).self) { _ = try await s.store.resolve("v1") }
        }
    }

    // MARK: optional capabilities

    /// Registry repositories mount blobs from a sibling repository and read manifests by reference in one request;
    /// the local stores offer neither, and say so by not conforming.
    @Test(arguments: StoreImplementation.allCases) func optionalCapabilitiesAreWhatTheyClaim(_ impl: StoreImplementation) async throws {
        try await impl.withStore { s in
            #expect((s.store as? any BlobMounter != nil) == impl.isRegistry)
            #expect((s.store as? any ManifestByReference != nil) == impl.isRegistry)
            if impl.isRegistry { try await Self.registryCapabilities(s) }
        }
    }

    /// A registry repository's mount and manifest-by-reference, which the local stores do not have.
    static func registryCapabilities(_ s: StoreUnderTest) async throws {
        let mounter = try #require(s.store as? any BlobMounter)
        let sibling = try #require(s.sibling)
        var random = RandomContent(seed: 9800)
        let bytes = random.generator.bytes(5000)
        let blob = Descriptor.of(bytes, mediaType: MediaType.imageLayer)
        try await sibling.push(blob, bytes: bytes)
        #expect(try await !s.store.exists(blob))
        #expect(try await mounter.mount(blob, from: sibling))
        #expect(try await s.store.fetch(blob).collect(limit: 1 << 20) == bytes)
        // A mount from a store of another kind is declined (the caller then uploads).
        let local = MemoryStore()
        let other = Descriptor.of(random.generator.bytes(100), mediaType: MediaType.imageLayer)
        #expect(try await !mounter.mount(other, from: local))

        let image = try await random.pushImage(to: s.store, layerSizes: [100])
        try await s.store.tag(image.descriptor, as: "v1")
        let byReference = try #require(s.store as? any ManifestByReference)
        let fetched = try await byReference.getManifest("v1")
        #expect(fetched.bytes == image.bytes && fetched.digest == image.digest)
        #expect(try await byReference.getManifest(image.digest.description).bytes == image.bytes)
    }
}
