import Foundation
import OCI
import OCIRegistry
import OCITesting
import Synchronization
import Testing

/// Warden against a real registry (Debian's docker-registry, CNCF distribution 2.8) with skopeo as the
/// independent client that writes the source and reads back the copy.
@Suite(.serialized) struct RegistryInteropTests {
    @Test func skopeoPushedImageCopiedAndReadBackWithIdenticalDigest() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        let (layout, _, image, _) = try await layoutWithImage(seed: 100, layerSizes: [300_000, 1_200_000, 50_000])
        try await skopeoPush(layout: layout, tag: "v1", to: "\(a.host)/library/app:v1")

        let regs = try makeRegistries()
        let src = try regs.repository(Reference(parsing: "\(a.host)/library/app"))
        let dst = try regs.repository(Reference(parsing: "\(b.host)/mirror/app"))
        let report = try await GraphCopier(from: src, to: dst).copy(reference: "v1", destinationTag: "v1")
        try await regs.shutdown()
        #expect(report.blobsCopied == 4)

        let (_, upstream) = try await Skopeo.rawManifest("\(a.host)/library/app:v1")
        let (_, mirrored) = try await Skopeo.rawManifest("\(b.host)/mirror/app:v1")
        #expect(upstream == image.digest)
        #expect(mirrored == upstream)
        // skopeo can pull every blob of the copy back out (it verifies digests as it reads).
        let out = try makeTemporaryDirectory()
        try await Skopeo.run(["copy", "--preserve-digests", "--src-tls-verify=false", "docker://\(b.host)/mirror/app:v1", "oci:\(out):pulled"])
        let pulled = try await LayoutStore(path: out, create: false).resolve("pulled")
        #expect(pulled.digest == image.digest)
    }

    @Test func dockerSchema2ImagePushedBySkopeo() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        let (layout, _, _, _) = try await layoutWithImage(seed: 108, layerSizes: [70_000, 9_000])
        // skopeo converts the OCI image to Docker v2 schema 2 on the way in.
        try await Skopeo.run(["copy", "--format", "v2s2", "--dest-tls-verify=false", "oci:\(layout):v1", "docker://\(a.host)/docker/app:v1"])
        let (bytes, pushed) = try await Skopeo.rawManifest("\(a.host)/docker/app:v1")
        #expect(try RawManifest(bytes: bytes).mediaType == MediaType.dockerManifest)

        let regs = try makeRegistries()
        let report = try await GraphCopier(
            from: try regs.repository(Reference(parsing: "\(a.host)/docker/app")), to: try regs.repository(Reference(parsing: "\(b.host)/docker/app"))
        ).copy(reference: "v1", destinationTag: "v1")
        try await regs.shutdown()
        #expect(report.root.mediaType == MediaType.dockerManifest)
        let (copiedBytes, copied) = try await Skopeo.rawManifest("\(b.host)/docker/app:v1")
        #expect(copied == pushed)
        #expect(copiedBytes == bytes)
    }

    @Test func multiPlatformIndexAllAndOnePlatform() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        let layout = try makeTemporaryDirectory()
        var random = RandomContent(seed: 101)
        let store = try LayoutStore(path: layout)
        let platforms = [
            Platform(os: "linux", architecture: "amd64"), Platform(os: "linux", architecture: "arm64", variant: "v8"),
            Platform(os: "linux", architecture: "ppc64le"),
        ]
        let index = try await random.pushIndex(to: store, platforms: platforms, layerSizes: [100_000, 20_000])
        try await store.tag(index.descriptor, as: "multi")
        // skopeo converts the index on the way (it may not preserve its digest): what it pushed is the reference.
        try await skopeoPush(layout: layout, tag: "multi", to: "\(a.host)/app:multi", all: true, preserveDigests: false)
        let (pushedBytes, pushed) = try await Skopeo.rawManifest("\(a.host)/app:multi")
        let pushedIndex = try RawManifest(bytes: pushedBytes)

        let regs = try makeRegistries()
        let src = try regs.repository(Reference(parsing: "\(a.host)/app"))
        let dst = try regs.repository(Reference(parsing: "\(b.host)/app"))
        let report = try await GraphCopier(from: src, to: dst).copy(reference: "multi", destinationTag: "multi")
        #expect(report.manifestsCopied == 4)
        #expect(try await Skopeo.rawManifest("\(b.host)/app:multi").1 == pushed)
        #expect(report.root.digest == pushed)
        for entry in try pushedIndex.children() {
            #expect(try await Skopeo.rawManifest("\(b.host)/app@\(entry.digest)").1 == entry.digest)
        }

        var options = CopyOptions()
        options.platforms = [Platform(os: "linux", architecture: "arm64")]
        let one = try await GraphCopier(from: src, to: dst, options: options).copy(reference: "multi", destinationTag: "arm64")
        #expect(try await Skopeo.rawManifest("\(b.host)/app:arm64").1 == one.root.digest)
        #expect(one.root.digest == (try pushedIndex.children())[1].digest)
        _ = index
        try await regs.shutdown()
    }

    @Test func artifactWithSubjectTravelsThroughTheFallbackIndex() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        let regs = try makeRegistries()
        let src = try regs.repository(Reference(parsing: "\(a.host)/app"))
        let dst = try regs.repository(Reference(parsing: "\(b.host)/app"))
        var random = RandomContent(seed: 102)
        let image = try await random.pushImage(to: src, layerSizes: [10_000])
        try await src.tag(image.descriptor, as: "v1")
        let sbom = try await random.pushArtifact(to: src, subject: image.descriptor, artifactType: "application/spdx+json")
        let attestation = try await random.pushArtifact(
            to: src, subject: sbom.descriptor, artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json")

        // distribution 2.8 has no referrers API: Warden wrote the sha256-<hex> fallback index, which skopeo reads.
        let (fallback, _) = try await Skopeo.rawManifest("\(a.host)/app:\(image.digest.tagSchema)")
        let index = try JSONDecoder().decode(ImageIndex.self, from: fallback)
        #expect(index.manifests.map(\.digest) == [sbom.digest])
        #expect(index.manifests.first?.artifactType == "application/spdx+json")

        let report = try await GraphCopier(from: src, to: dst).copy(reference: "v1", destinationTag: "v1")
        #expect(Set(report.referrers.map(\.digest)) == [sbom.digest, attestation.digest])
        #expect(try await Skopeo.rawManifest("\(b.host)/app@\(sbom.digest)").1 == sbom.digest)
        let (copiedFallback, _) = try await Skopeo.rawManifest("\(b.host)/app:\(sbom.digest.tagSchema)")
        #expect(try JSONDecoder().decode(ImageIndex.self, from: copiedFallback).manifests.map(\.digest) == [attestation.digest])
        #expect(try await dst.referrers(of: image.descriptor, artifactType: "application/spdx+json").map(\.digest) == [sbom.digest])
        try await regs.shutdown()
    }

    @Test func cosignSignatureTagIsCarriedAlong() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        var (layout, store, image, random) = try await layoutWithImage(seed: 103, layerSizes: [5_000])
        let sig = try await random.pushCosignSignature(to: store, subject: image.descriptor, dockerReference: "\(a.host)/app")
        let sigTag = "\(image.digest.tagSchema).sig"
        try await store.tag(sig.descriptor, as: sigTag)
        try await skopeoPush(layout: layout, tag: "v1", to: "\(a.host)/app:v1")
        try await skopeoPush(layout: layout, tag: sigTag, to: "\(a.host)/app:\(sigTag)")

        let regs = try makeRegistries()
        let report = try await GraphCopier(
            from: try regs.repository(Reference(parsing: "\(a.host)/app")), to: try regs.repository(Reference(parsing: "\(b.host)/app"))
        ).copy(reference: "v1", destinationTag: "v1")
        try await regs.shutdown()
        #expect(report.cosignTags == [sigTag])
        let (bytes, digest) = try await Skopeo.rawManifest("\(b.host)/app:\(sigTag)")
        #expect(digest == sig.digest)
        #expect(String(decoding: bytes, as: UTF8.self).contains("dev.cosignproject.cosign/signature"))
    }

    @Test func basicAuthRegistryWithGoodWrongAndMissingCredentials() async throws {
        let a = try await RegistryProcess.start(auth: ("alice", "wonderland"))
        let b = try await RegistryProcess.start(auth: ("bob", "builder"))
        defer { a.stop(); b.stop() }
        let (layout, _, image, _) = try await layoutWithImage(seed: 104, layerSizes: [20_000, 30_000])
        try await skopeoPush(layout: layout, tag: "v1", to: "\(a.host)/private/app:v1", creds: "alice:wonderland")

        let good = try makeRegistries(credentials: [
            a.host: Credentials(username: "alice", password: "wonderland"), b.host: Credentials(username: "bob", password: "builder"),
        ])
        let report = try await GraphCopier(
            from: try good.repository(Reference(parsing: "\(a.host)/private/app")),
            to: try good.repository(Reference(parsing: "\(b.host)/private/app"))
        ).copy(reference: "v1", destinationTag: "v1")
        try await good.shutdown()
        #expect(report.root.digest == image.digest)
        #expect(try await Skopeo.rawManifest("\(b.host)/private/app:v1", creds: "bob:builder").1 == image.digest)

        let wrong = try makeRegistries(credentials: [a.host: Credentials(username: "alice", password: "nope")])
        let e = try await #require(throws: OCIError.self) {
            _ = try await wrong.repository(Reference(parsing: "\(a.host)/private/app")).resolve("v1")
        }
        #expect(e.code == .unauthorized && e.reason.contains("401") && e.reason.contains(a.host))
        try await wrong.shutdown()
        let anonymous = try makeRegistries()
        let anonymousError = try await #require(throws: OCIError.self) {
            _ = try await anonymous.repository(Reference(parsing: "\(a.host)/private/app")).resolve("v1")
        }
        #expect(anonymousError.reason.contains("no credentials for \(a.host)"))
        try await anonymous.shutdown()
    }

    @Test func unknownRepositoryAndTagAreNotFound() async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let regs = try makeRegistries()
        let e = try await #require(throws: OCIError.self) {
            _ = try await regs.repository(Reference(parsing: "\(a.host)/does/not/exist")).resolve("v1")
        }
        #expect(e.code == .notFound && e.reason.contains("404") && e.reason.contains("/v2/does/not/exist/manifests/v1"))
        try await regs.shutdown()
    }

    @Test func corruptedBlobIsDetectedAndNothingIsTagged() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        let regs = try makeRegistries()
        let src = try regs.repository(Reference(parsing: "\(a.host)/app"))
        let dst = try regs.repository(Reference(parsing: "\(b.host)/app"))
        var random = RandomContent(seed: 105)
        let image = try await random.pushImage(to: src, layerSizes: [40_000, 40_000])
        try await src.tag(image.descriptor, as: "v1")
        let m = try #require(try image.parsed().imageManifest, "expected an image manifest")
        let victim = m.layers[1]
        let path = a.blobDataPath(victim.digest.hex)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[1000] ^= 0x55
        try bytes.write(to: URL(fileURLWithPath: path))
        let e = try await #require(throws: OCIError.self) {
            _ = try await GraphCopier(from: src, to: dst).copy(reference: "v1", destinationTag: "v1")
        }
        #expect(e.code == .digestMismatch && e.reason.contains(victim.digest.description) && e.reason.contains(Digest.compute(bytes).description))
        let untagged = try await #require(throws: OCIError.self) { _ = try await dst.resolve("v1") }
        #expect(untagged.code == .notFound)
        #expect(try await !dst.exists(victim))
        try await regs.shutdown()
    }

    @Test func registryGoingAwayMidCopyThenRerunSendsOnlyWhatIsMissing() async throws {
        let a = try await RegistryProcess.start()
        let b = try await RegistryProcess.start()
        defer { a.stop(); b.stop() }
        let regs = try makeRegistries { $0.retry.maxAttempts = 2 }
        let src = try regs.repository(Reference(parsing: "\(a.host)/app"))
        let dst = try regs.repository(Reference(parsing: "\(b.host)/app"))
        var random = RandomContent(seed: 106)
        let image = try await random.pushImage(to: src, layerSizes: Array(repeating: 500_000, count: 8))
        try await src.tag(image.descriptor, as: "v1")

        var options = CopyOptions(concurrency: 1)
        let done = Mutex(0)
        options.progress = { event in
            if case .blobDone(_, .copied) = event {
                let n = done.withLock { n -> Int in
                    n += 1
                    return n
                }
                if n == 3 { b.kill() }
            }
        }
        await #expect(throws: OCIError.self) {
            _ = try await GraphCopier(from: src, to: dst, options: options).copy(reference: "v1", destinationTag: "v1")
        }
        let finishedBeforeCrash = done.withLock { $0 }
        #expect(finishedBeforeCrash >= 3)
        try await b.launch()
        // The interrupted copy left no tag pointing at missing content.
        let error = try await #require(throws: OCIError.self) { _ = try await dst.resolve("v1") }
        #expect(error.code == .notFound)

        let rerun = try await GraphCopier(from: src, to: dst).copy(reference: "v1", destinationTag: "v1")
        #expect(rerun.blobsSkipped >= 3)
        #expect(rerun.blobsSkipped + rerun.blobsCopied == 9)  // 8 layers + config
        #expect(rerun.blobsCopied <= 9 - 3)
        #expect(try await Skopeo.rawManifest("\(b.host)/app:v1").1 == image.digest)
        try await regs.shutdown()
    }

    @Test func chunkedUploadOfALargeBlob() async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let regs = try makeRegistries {
            $0.chunkedUploadThreshold = 1 << 20
            $0.chunkSize = 256 << 10
        }
        let dst = try regs.repository(Reference(parsing: "\(a.host)/big"))
        let (_, store, image, _) = try await layoutWithImage(seed: 107, layerSizes: [3_000_000, 100])
        let report = try await GraphCopier(from: store, to: dst).copy(reference: "v1", destinationTag: "v1")
        try await regs.shutdown()
        #expect(report.blobsCopied == 3)
        let out = try makeTemporaryDirectory()
        try await Skopeo.run(["copy", "--preserve-digests", "--src-tls-verify=false", "docker://\(a.host)/big:v1", "oci:\(out):v1"])
        #expect(try await LayoutStore(path: out, create: false).resolve("v1").digest == image.digest)
    }
}

@Suite struct RegistryAPITests {
    /// docker-registry ignores If-Match: referrers pushed at once by one process still all land in the fallback
    /// index (writers of the same index take turns).
    @Test func concurrentReferrersAllReachTheFallbackIndex() async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let regs = try makeRegistries()
        let repo = try regs.repository(Reference(parsing: "\(a.host)/race/app"))
        var random = RandomContent(seed: 700)
        let image = try await random.pushImage(to: repo, layerSizes: [100])
        var artifacts: [RawManifest] = []
        for i in 0..<8 {
            // Built in memory first, then pushed together.
            let store = MemoryStore()
            artifacts.append(try await random.pushArtifact(to: store, subject: image.descriptor, artifactType: "application/x-test-\(i)"))
            for d in try artifacts.last!.children() { try await repo.push(d, content: try await store.fetch(d)) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for raw in artifacts { group.addTask { try await repo.push(raw) } }
            while try await group.next() != nil {}
        }
        let found = try await repo.referrers(of: image.descriptor, artifactType: nil)
        #expect(Set(found.map(\.digest)) == Set(artifacts.map(\.digest)))
    }

    @Test func sameRegistryCopyMountsEveryBlob() async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let regs = try makeRegistries()
        let src = try regs.repository(Reference(parsing: "\(a.host)/team-a/app"))
        let dst = try regs.repository(Reference(parsing: "\(a.host)/team-b/app"))
        var random = RandomContent(seed: 201)
        let image = try await random.pushImage(to: src, layerSizes: [200_000, 300_000, 400_000])
        try await src.tag(image.descriptor, as: "v1")
        let report = try await GraphCopier(from: src, to: dst).copy(reference: "v1", destinationTag: "v1")
        #expect(report.blobsMounted == 4)
        #expect(report.blobsCopied == 0)
        #expect(report.bytesCopied == 0)
        #expect(try await Skopeo.rawManifest("\(a.host)/team-b/app:v1").1 == image.digest)
        try await regs.shutdown()
    }

    @Test func paginationRangeReadsAndDelete() async throws {
        let a = try await RegistryProcess.start()
        defer { a.stop() }
        let regs = try makeRegistries()
        var random = RandomContent(seed: 200)
        for name in ["one", "two", "three"] {
            let repo = try regs.repository(Reference(parsing: "\(a.host)/pages/\(name)"))
            let image = try await random.pushImage(to: repo, layerSizes: [3000])
            for t in ["a", "b", "c", "d", "e"] { try await repo.tag(image.descriptor, as: "\(name)-\(t)") }
        }
        let repo = try regs.repository(Reference(parsing: "\(a.host)/pages/two"))
        // Pages of two tags each, followed through Link headers.
        #expect(try await repo.listTags(pageSize: 2).sorted() == ["two-a", "two-b", "two-c", "two-d", "two-e"])
        #expect(try await regs.client(host: a.host).catalog(pageSize: 2) == ["pages/one", "pages/three", "pages/two"])

        let manifest = try await repo.fetchManifest(repo.resolve("two-a"))
        let m = try #require(try manifest.parsed().imageManifest, "expected an image manifest")
        let layer = m.layers[0]
        let whole = try await repo.fetchVerified(layer).collect(limit: 1 << 20)
        let tail = try await repo.fetch(layer, offset: 1000).collect(limit: 1 << 20)
        #expect(tail == whole.dropFirst(1000))

        try await repo.delete(manifest.descriptor)
        let error = try await #require(throws: OCIError.self) { _ = try await repo.resolve("two-a") }
        #expect(error.code == .notFound)
        try await regs.shutdown()
    }
}

@Suite struct TransportTests {
    /// A registry serving TLS with a certificate from a private CA: trusted with the CA bundle, refused without.
    @Test func tlsWithACustomCABundle() async throws {
        let dir = try makeTemporaryDirectory()
        let conf = """
            [req]
            distinguished_name = dn
            [dn]
            [ext]
            subjectAltName = IP:127.0.0.1
            basicConstraints = CA:FALSE
            """
        try Data(conf.utf8).write(to: URL(fileURLWithPath: dir + "/openssl.cnf"))
        let openssl = "/usr/bin/openssl"
        try run(
            openssl,
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/ca.key", "-out", dir + "/ca.pem", "-days", "2", "-subj",
                "/CN=Warden Test CA",
            ])
        try run(
            openssl,
            [
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/server.key", "-out", dir + "/server.csr", "-subj", "/CN=127.0.0.1",
                "-config", dir + "/openssl.cnf",
            ])
        try run(
            openssl,
            [
                "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.pem", "-CAkey", dir + "/ca.key", "-CAcreateserial", "-out",
                dir + "/server.pem", "-days", "2", "-extfile", dir + "/openssl.cnf", "-extensions", "ext",
            ])
        let reg = try await RegistryProcess.start(tls: (certificate: dir + "/server.pem", key: dir + "/server.key"))
        defer { reg.stop() }

        let trusted = try makeRegistries {
            $0.tlsOnLoopback = true
            $0.caBundlePath = dir + "/ca.pem"
        }
        let repo = try trusted.repository(Reference(parsing: "\(reg.host)/secure/app"))
        var random = RandomContent(seed: 300)
        let image = try await random.pushImage(to: repo, layerSizes: [5000])
        try await repo.tag(image.descriptor, as: "v1")
        #expect(try await repo.resolve("v1").digest == image.digest)
        try await trusted.shutdown()

        let untrusted = try makeRegistries { $0.tlsOnLoopback = true }
        let e = try await #require(throws: OCIError.self) {
            _ = try await untrusted.repository(Reference(parsing: "\(reg.host)/secure/app")).resolve("v1")
        }
        #expect(e.code == .transport && e.reason.contains("TLS") && e.reason.contains("--ca-file"))
        try await untrusted.shutdown()
    }
}
