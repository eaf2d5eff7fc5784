import Foundation
import OCI
import OCITesting
import Testing

/// OCI layouts shared by several writers, and layouts holding what a layout never holds.
@Suite struct HostileLayoutTests {
    /// Eight stores on one directory (as eight `warden copy` processes or a `foreach` of `oci/copy` would be) tag
    /// and push referrers at once: every tag and every referrer is in `index.json` afterwards.
    @Test func concurrentWritersKeepEveryTag() async throws {
        let path = try makeTemporaryDirectory()
        var random = RandomContent(seed: 1500)
        let seed = try LayoutStore(path: path)
        var images: [RawManifest] = []
        for _ in 0..<8 { images.append(try await random.pushImage(to: seed, layerSizes: [500])) }
        var artifacts: [RawManifest] = []
        let staging = MemoryStore()
        for image in images {
            artifacts.append(try await random.pushArtifact(to: staging, subject: image.descriptor, artifactType: "application/x-test"))
        }
        for a in artifacts { for child in try a.children() { try await seed.push(child, content: try await staging.fetch(child)) } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, image) in images.enumerated() {
                let artifact = artifacts[i]
                group.addTask {
                    let store = try LayoutStore(path: path)
                    try await store.tag(image.descriptor, as: "v\(i)")
                    try await store.push(artifact)
                }
            }
            while try await group.next() != nil {}
        }
        let reopened = try LayoutStore(path: path, create: false)
        #expect(try await reopened.listTags() == (0..<8).map { "v\($0)" }.sorted())
        for (i, image) in images.enumerated() {
            #expect(try await reopened.referrers(of: image.descriptor, artifactType: nil).map(\.digest) == [artifacts[i].digest])
        }
    }

    /// A directory with an `index.json` and no `oci-layout` file is not taken over: its index stays as it was.
    @Test func anIndexWithoutALayoutFileIsNotOverwritten() throws {
        let path = try makeTemporaryDirectory()
        let original =
            #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:\#(String(repeating: "a", count: 64))","size":1,"annotations":{"org.opencontainers.image.ref.name":"keep"}}]}"#
        try Data(original.utf8).write(to: URL(fileURLWithPath: path + "/index.json"))
        let error = try #require(throws: OCIError.self) {
            _ = try LayoutStore(path: path)
        }
        #expect(error.reason.contains("has an index.json but no oci-layout file"))
        #expect(try String(contentsOfFile: path + "/index.json", encoding: .utf8) == original)
    }

    /// A FIFO (or a symlink) where a blob belongs is refused; it is never opened (a FIFO would block the reader).
    @Test func aFIFOOrSymlinkWhereABlobBelongsIsRefused() async throws {
        let path = try makeTemporaryDirectory()
        let store = try LayoutStore(path: path)
        let blob = Data("x".utf8)
        let fifo = Descriptor.of(blob, mediaType: MediaType.imageLayer)
        #expect(mkfifo(path + "/blobs/sha256/\(fifo.digest.hex)", 0o644) == 0)
        let error = try await #require(throws: OCIError.self) { _ = try await store.fetch(fifo) }
        #expect(error.reason.contains("is a FIFO, not a regular file"))
        let other = Descriptor.of(Data("y".utf8), mediaType: MediaType.imageLayer)
        try FileManager.default.createSymbolicLink(atPath: path + "/blobs/sha256/\(other.digest.hex)", withDestinationPath: "/etc/hostname")
        let symlink = try await #require(throws: OCIError.self) { _ = try await store.fetch(other) }
        #expect(symlink.reason.contains("is a symbolic link"))
        // index.json as a FIFO: opening the layout is refused, not blocked.
        let second = try makeTemporaryDirectory()
        _ = try LayoutStore(path: second)
        try FileManager.default.removeItem(atPath: second + "/index.json")
        #expect(mkfifo(second + "/index.json", 0o644) == 0)
        let fifoIndex = try #require(throws: OCIError.self) { _ = try LayoutStore(path: second, create: false) }
        #expect(fifoIndex.reason.contains("is a FIFO"))
    }
}
