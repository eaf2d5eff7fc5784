import Foundation
import OCI
import OCITesting
import Testing

@Suite struct StoreTests {
    @Test func verifyingStreamNamesBothDigests() async throws {
        let data = Data("hello".utf8)
        var d = Descriptor.of(data, mediaType: "application/octet-stream")
        let expected = d.digest
        let corrupt = Data("jello".utf8)
        let e = try await #require(throws: OCIError.self) {
            _ = try await ByteStream.bytes(corrupt).verifying(d, source: "test").collect(limit: 100)
        }
        #expect(e.code == .digestMismatch && e.reason.contains(expected.description) && e.reason.contains(Digest.compute(corrupt).description))
        d.size = 4
        let tooShort = try await #require(throws: OCIError.self) {
            _ = try await ByteStream.bytes(data).verifying(d, source: "test").collect(limit: 100)
        }
        #expect(tooShort.code == .sizeMismatch)
    }

    @Test func layoutRoundTripAndReopen() async throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try LayoutStore(path: dir)
        var random = RandomContent(seed: 7)
        let image = try await random.pushImage(to: store, layerSizes: [1000, 3000])
        try await store.tag(image.descriptor, as: "v1")
        let sbom = try await random.pushArtifact(to: store, subject: image.descriptor, artifactType: "application/spdx+json")
        // A layout another tool can read: oci-layout, index.json, blobs/sha256/<hex>.
        #expect(FileManager.default.fileExists(atPath: dir + "/oci-layout"))
        #expect(FileManager.default.fileExists(atPath: dir + "/blobs/sha256/\(image.digest.hex)"))
        let reopened = try LayoutStore(path: dir, create: false)
        let resolved = try await reopened.resolve("v1")
        #expect(resolved.digest == image.digest)
        #expect(try await reopened.fetchManifest(resolved).bytes == image.bytes)
        let refs = try await reopened.referrers(of: resolved, artifactType: nil)
        #expect(refs.map(\.digest) == [sbom.digest])
        #expect(refs.first?.artifactType == "application/spdx+json")
        #expect(try await reopened.referrers(of: resolved, artifactType: "other").isEmpty)
        #expect(try await reopened.listTags() == ["v1"])
        let error = try await #require(throws: OCIError.self) { try await reopened.resolve("nope") }
        #expect(error.code == .notFound)
    }

    @Test func failedLayoutWriteLeavesNothing() async throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try LayoutStore(path: dir)
        let good = Data(repeating: 1, count: 3 << 20)
        let d = Descriptor.of(good, mediaType: "application/octet-stream")
        var bad = good
        bad[bad.count - 1] = 2
        await #expect(throws: OCIError.self) { try await store.push(d, content: .bytes(bad, chunkSize: 1 << 20)) }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/blobs/sha256")
        #expect(files.isEmpty, "no blob and no temporary file after a failed write: \(files)")
        #expect(try await !store.exists(d))
        let error = try await #require(throws: OCIError.self) { try await store.tag(d, as: "x") }
        #expect(error.code == .notFound)
    }

    @Test func layoutRejectsForeignDirectory() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: dir + "/oci-layout"))
        let error = try #require(throws: OCIError.self) { try LayoutStore(path: dir) }
        #expect(error.reason.contains("oci-layout"))
        let missing = try #require(throws: OCIError.self) { try LayoutStore(path: dir + "/missing", create: false) }
        #expect(missing.code == .notFound)
    }
}
