import Foundation
import OCI
import OCITesting
import Synchronization
import Testing

@Suite struct CopyTests {
    let amd64 = Platform(os: "linux", architecture: "amd64")
    let arm64 = Platform(os: "linux", architecture: "arm64", variant: "v8")
    let s390x = Platform(os: "linux", architecture: "s390x")

    @Test func copiesIndexWithReferrersAndCosignTagsThenSkipsOnRerun() async throws {
        let src = MemoryStore(name: "src")
        let dst = MemoryStore(name: "dst")
        var random = RandomContent(seed: 1)
        let index = try await random.pushIndex(to: src, platforms: [amd64, arm64], layerSizes: [100, 200])
        try await src.tag(index.descriptor, as: "v1")
        let sbom = try await random.pushArtifact(to: src, subject: index.descriptor, artifactType: "application/spdx+json")
        // A signature of the SBOM: referrers are followed recursively.
        let sbomSig = try await random.pushArtifact(to: src, subject: sbom.descriptor, artifactType: MediaType.sigstoreBundleV03)
        let sig = try await random.pushCosignSignature(to: src, subject: index.descriptor, dockerReference: "x/y")
        try await src.tag(sig.descriptor, as: "\(index.digest.tagSchema).sig")

        let report = try await GraphCopier(from: src, to: dst).copy(reference: "v1", destinationTag: "v1")
        #expect(report.root.digest == index.digest)
        #expect(report.manifestsCopied == 6)  // index, 2 images, sbom, its signature, cosign sig
        #expect(Set(report.referrers.map(\.digest)) == [sbom.digest, sbomSig.digest])
        #expect(report.cosignTags == ["\(index.digest.tagSchema).sig"])
        #expect(try await dst.resolve("v1").digest == index.digest)
        #expect(try await dst.resolve("\(index.digest.tagSchema).sig").digest == sig.digest)
        #expect(try await dst.referrers(of: sbom.descriptor, artifactType: nil).map(\.digest) == [sbomSig.digest])
        #expect(try await dst.fetchManifest(index.descriptor).bytes == index.bytes)
        #expect(await dst.blobCount == (await src.blobCount))

        let again = try await GraphCopier(from: src, to: dst).copy(reference: "v1", destinationTag: "v1")
        #expect(again.blobsCopied == 0)
        #expect(again.manifestsCopied == 0)
        #expect(again.bytesCopied == 0)
    }

    /// An index of manifests with thousands of layers each is copied with a bounded number of manifests and blobs
    /// in flight (a task per layer of every manifest at once made 584 MB for 20,000-layer manifests), and completely.
    @Test func aWideGraphIsCopiedWithBoundedWorkInFlight() async throws {
        let src = MemoryStore(name: "src")
        let dst = MemoryStore(name: "dst")
        var entries: [Descriptor] = []
        for m in 0..<24 {
            var layers: [Descriptor] = []
            for l in 0..<1_000 {
                let blob = Data("layer \(m)-\(l)".utf8)
                let d = Descriptor.of(blob, mediaType: MediaType.imageLayer)
                try await src.push(d, bytes: blob)
                layers.append(d)
            }
            let config = Data(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"n":\#(m)}"#.utf8)
            let configDesc = Descriptor.of(config, mediaType: MediaType.imageConfig)
            try await src.push(configDesc, bytes: config)
            let manifest = try RawManifest.encode(ImageManifest(config: configDesc, layers: layers), mediaType: MediaType.imageManifest)
            try await src.push(manifest)
            entries.append(manifest.descriptor)
        }
        let index = try RawManifest.encode(ImageIndex(manifests: entries), mediaType: MediaType.imageIndex)
        try await src.push(index)
        try await src.tag(index.descriptor, as: "wide")
        let options = CopyOptions(referrers: false, concurrency: 4)
        let report = try await GraphCopier(from: src, to: dst, options: options).copy(reference: "wide", destinationTag: "wide")
        #expect(report.manifestsCopied == 25)
        #expect(report.blobsCopied == 24 * 1_001)
        // One level of children at a time per node: the index's 8 manifests in flight, each with at most 8 blobs.
        let childLimit = 8
        #expect(report.peakInFlight <= 1 + childLimit + childLimit * childLimit, "peak \(report.peakInFlight)")
        #expect(report.peakInFlight > 1)
    }

    @Test func onePlatformCopiesThatManifestAlone() async throws {
        let src = MemoryStore()
        let dst = MemoryStore()
        var random = RandomContent(seed: 2)
        let index = try await random.pushIndex(to: src, platforms: [amd64, arm64, s390x], layerSizes: [10])
        var options = CopyOptions()
        options.platforms = [Platform(os: "linux", architecture: "arm64")]
        let report = try await GraphCopier(from: src, to: dst, options: options).copy(reference: index.digest.description, destinationTag: "arm")
        let idx = try #require(try index.parsed().imageIndex, "expected an index")
        #expect(report.root.digest == idx.manifests[1].digest)
        #expect(try await dst.resolve("arm").digest == idx.manifests[1].digest)
        #expect(try await !dst.exists(idx.manifests[0]))
    }

    @Test func severalPlatformsBuildAFilteredIndex() async throws {
        let src = MemoryStore()
        let dst = MemoryStore()
        var random = RandomContent(seed: 3)
        let index = try await random.pushIndex(to: src, platforms: [amd64, arm64, s390x], layerSizes: [10])
        var options = CopyOptions()
        options.platforms = [amd64, s390x]
        let report = try await GraphCopier(from: src, to: dst, options: options).copy(reference: index.digest.description, destinationTag: "two")
        #expect(report.root.digest != index.digest)
        let copied = try await dst.fetchManifest(try await dst.resolve("two"))
        let idx = try #require(try copied.parsed().imageIndex, "expected an index")
        #expect(idx.manifests.compactMap(\.platform) == [amd64, s390x])
        options.platforms = [Platform(os: "windows", architecture: "amd64")]
        let error = try await #require(throws: OCIError.self) {
            _ = try await GraphCopier(from: src, to: dst, options: options).copy(reference: index.digest.description, destinationTag: "none")
        }
        #expect(error.reason.contains("available: linux/amd64, linux/arm64/v8, linux/s390x"))
    }

    @Test func corruptSourceFailsAndLeavesNoTag() async throws {
        let src = MemoryStore()
        let dst = MemoryStore()
        var random = RandomContent(seed: 4)
        let image = try await random.pushImage(to: src, layerSizes: [1000, 1000, 1000])
        let m = try #require(try image.parsed().imageManifest, "expected an image manifest")
        var bad = try await src.fetch(m.layers[1]).collect(limit: 1 << 20)
        bad[600] ^= 0xff
        await src.corrupt(m.layers[1].digest, with: bad)
        let e = try await #require(throws: OCIError.self) {
            _ = try await GraphCopier(from: src, to: dst).copy(root: image.descriptor, destinationTag: "v1")
        }
        #expect(
            e.code == .digestMismatch && e.reason.contains(m.layers[1].digest.description)
                && e.reason.contains(Digest.compute(bad).description))
        #expect(try await dst.listTags().isEmpty)
        #expect(try await !dst.exists(image.descriptor))
    }

    @Test func noReferrersAndProgressEvents() async throws {
        let src = MemoryStore()
        let dst = MemoryStore()
        var random = RandomContent(seed: 5)
        let image = try await random.pushImage(to: src, layerSizes: [5000, 7000])
        _ = try await random.pushArtifact(to: src, subject: image.descriptor, artifactType: "a/b")
        let bytes = Mutex(0)
        var options = CopyOptions(referrers: false)
        options.progress = { event in
            if case .bytes(let n) = event { bytes.withLock { $0 += n } }
        }
        let report = try await GraphCopier(from: src, to: dst, options: options).copy(root: image.descriptor, destinationTag: nil)
        #expect(report.referrers.isEmpty)
        #expect(try await dst.referrers(of: image.descriptor, artifactType: nil).isEmpty)
        #expect(bytes.withLock { $0 } == Int(report.bytesCopied))
        #expect(report.bytesCopied > 12000)
    }
}
