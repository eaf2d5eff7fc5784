import Foundation
import OCI
import OCIRegistry
import OCITesting
import Testing

/// Registry-client paths the Debian registry (distribution 2.8) cannot exercise, against an in-process OCI 1.1
/// registry: the referrers API, Bearer tokens, throttling, failed referrers lookups.
@Suite struct RegistryProtocolTests {
    func registries(_ configure: (inout RegistryConfiguration) -> Void = { _ in }) throws -> Registries {
        var c = RegistryConfiguration()
        c.retry.initialDelay = .milliseconds(10)
        c.credentials = CredentialResolver(explicit: [:], configFiles: [], environment: [:])
        configure(&c)
        return try Registries(configuration: c)
    }

    @Test func referrersAPIWithArtifactTypeFilter() async throws {
        let server = try await TestRegistryServer.start()
        let regs = try registries()
        let repo = try regs.repository(Reference(parsing: "\(server.host)/app"))
        var random = RandomContent(seed: 10)
        let image = try await random.pushImage(to: repo, layerSizes: [100])
        let sbom = try await random.pushArtifact(to: repo, subject: image.descriptor, artifactType: "application/spdx+json")
        let prov = try await random.pushArtifact(to: repo, subject: image.descriptor, artifactType: "application/vnd.in-toto+json")
        let all = try await repo.referrers(of: image.descriptor, artifactType: nil)
        #expect(Set(all.map(\.digest)) == [sbom.digest, prov.digest])
        let filtered = try await repo.referrers(of: image.descriptor, artifactType: "application/spdx+json")
        #expect(filtered.map(\.digest) == [sbom.digest])
        // The registry processed the subject (OCI-Subject), so no fallback tag was written.
        #expect(try await !server.store("app").listTags().contains(image.digest.tagSchema))
        #expect(server.requests.contains { $0.contains("/referrers/\(image.digest)?artifactType=application%2Fspdx%2Bjson") })
        try await regs.shutdown()
        try await server.shutdown()
    }

    @Test func fallbackIndexWhenNoReferrersAPI() async throws {
        var options = TestRegistryServer.Options()
        options.referrersAPI = false
        let server = try await TestRegistryServer.start(options: options)
        let regs = try registries()
        let repo = try regs.repository(Reference(parsing: "\(server.host)/app"))
        var random = RandomContent(seed: 11)
        let image = try await random.pushImage(to: repo, layerSizes: [100])
        let a = try await random.pushArtifact(to: repo, subject: image.descriptor, artifactType: "x/a")
        let b = try await random.pushArtifact(to: repo, subject: image.descriptor, artifactType: "x/b")
        #expect(try await server.store("app").listTags().contains(image.digest.tagSchema))
        let refs = try await repo.referrers(of: image.descriptor, artifactType: nil)
        #expect(refs.map(\.digest) == [a.digest, b.digest])
        #expect(refs.map(\.artifactType) == ["x/a", "x/b"])
        try await regs.shutdown()
        try await server.shutdown()
    }

    @Test func failedReferrersLookupIsAnErrorNotAnEmptyList() async throws {
        var options = TestRegistryServer.Options()
        options.failReferrers = (100, 500)
        let server = try await TestRegistryServer.start(options: options)
        let regs = try registries { $0.retry.maxAttempts = 2 }
        let repo = try regs.repository(Reference(parsing: "\(server.host)/app"))
        var random = RandomContent(seed: 12)
        let image = try await random.pushImage(to: repo, layerSizes: [100])
        let e = try await #require(throws: OCIError.self) {
            _ = try await repo.referrers(of: image.descriptor, artifactType: nil)
        }
        #expect(e.code == .registry && e.reason.contains("500") && e.reason.contains("referrers"))
        try await regs.shutdown()
        try await server.shutdown()
    }

    @Test func throttledReferrersAreRetriedThenReportedAsThrottled() async throws {
        var options = TestRegistryServer.Options()
        options.failReferrers = (1, 429)
        let server = try await TestRegistryServer.start(options: options)
        let regs = try registries()
        let repo = try regs.repository(Reference(parsing: "\(server.host)/app"))
        var random = RandomContent(seed: 13)
        let image = try await random.pushImage(to: repo, layerSizes: [100])
        #expect(try await repo.referrers(of: image.descriptor, artifactType: nil).isEmpty)
        #expect(server.requests.filter { $0.contains("/referrers/") }.count == 2)

        var always = TestRegistryServer.Options()
        always.failReferrers = (100, 429)
        let server2 = try await TestRegistryServer.start(options: always)
        let repo2 = try regs.repository(Reference(parsing: "\(server2.host)/app"))
        let error = try await #require(throws: OCIError.self) {
            _ = try await repo2.referrers(of: image.descriptor, artifactType: nil)
        }
        #expect(error.code == .throttled)
        try await regs.shutdown()
        try await server.shutdown()
        try await server2.shutdown()
    }

    @Test func retryAfterOn429IsHonoured() async throws {
        var options = TestRegistryServer.Options()
        options.throttleManifests = 1
        let server = try await TestRegistryServer.start(options: options)
        let regs = try registries()
        let repo = try regs.repository(Reference(parsing: "\(server.host)/app"))
        let start = ContinuousClock.now
        let error = try await #require(throws: OCIError.self) { _ = try await repo.resolve("missing") }
        #expect(error.code == .notFound)
        // Retry-After: 1 was waited for (the policy's own delay is 10 ms here).
        #expect(start.duration(to: .now) >= .milliseconds(900))
        #expect(server.requests.filter { $0.contains("/manifests/missing") }.count == 2)
        try await regs.shutdown()
        try await server.shutdown()
    }

    @Test func bearerTokenFlowWithCredentialsAndCache() async throws {
        var options = TestRegistryServer.Options()
        options.bearerAuth = ("alice", "s3cret")
        let server = try await TestRegistryServer.start(options: options)
        let good = try registries {
            $0.credentials = CredentialResolver(
                explicit: [server.host: Credentials(username: "alice", password: "s3cret")], configFiles: [], environment: [:])
        }
        let repo = try good.repository(Reference(parsing: "\(server.host)/team/app"))
        var random = RandomContent(seed: 14)
        let image = try await random.pushImage(to: repo, layerSizes: [100, 200])
        try await repo.tag(image.descriptor, as: "v1")
        #expect(try await repo.resolve("v1").digest == image.digest)
        // One token per scope set, reused until it expires.
        #expect(server.tokensIssued <= 2)

        let bad = try registries {
            $0.credentials = CredentialResolver(
                explicit: [server.host: Credentials(username: "alice", password: "wrong")], configFiles: [], environment: [:])
        }
        let e = try await #require(throws: OCIError.self) {
            _ = try await bad.repository(Reference(parsing: "\(server.host)/team/app")).resolve("v1")
        }
        #expect(e.code == .unauthorized && e.reason.contains("401") && e.reason.contains("check the credentials"))
        let anonymous = try registries()
        let anonymousError = try await #require(throws: OCIError.self) {
            _ = try await anonymous.repository(Reference(parsing: "\(server.host)/team/app")).resolve("v1")
        }
        #expect(anonymousError.code == .unauthorized)
        for r in [good, bad, anonymous] { try await r.shutdown() }
        try await server.shutdown()
    }

    @Test func copyBetweenRepositoriesMountsAndCarriesReferrers() async throws {
        let server = try await TestRegistryServer.start()
        let regs = try registries()
        let src = try regs.repository(Reference(parsing: "\(server.host)/upstream/app"))
        let dst = try regs.repository(Reference(parsing: "\(server.host)/mirror/app"))
        var random = RandomContent(seed: 15)
        let image = try await random.pushImage(to: src, layerSizes: [1000, 2000])
        try await src.tag(image.descriptor, as: "v1")
        let sbom = try await random.pushArtifact(to: src, subject: image.descriptor, artifactType: "application/spdx+json")
        let report = try await GraphCopier(from: src, to: dst).copy(reference: "v1", destinationTag: "v1")
        #expect(report.blobsMounted == 5)  // 2 layers + config, sbom layer + empty config
        #expect(report.blobsCopied == 0)
        #expect(try await dst.referrers(of: image.descriptor, artifactType: nil).map(\.digest) == [sbom.digest])
        #expect(try await dst.resolve("v1").digest == image.digest)
        try await regs.shutdown()
        try await server.shutdown()
    }

    @Test func challengeParsing() {
        let c = AuthChallenge(
            header: #"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#)
        #expect(c?.scheme == "bearer")
        #expect(c?.parameters["realm"] == "https://auth.example.com/token")
        #expect(c?.parameters["scope"] == "repository:a/b:pull,push")
        #expect(AuthChallenge(header: #"Basic realm="x""#)?.scheme == "basic")
    }

    @Test func credentialsFromDockerConfigAndHelper() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let helper = dir + "/docker-credential-wardentest"
        try Data("#!/bin/sh\nread host\necho \"{\\\"Username\\\":\\\"helper-user\\\",\\\"Secret\\\":\\\"for-$host\\\"}\"\n".utf8).write(
            to: URL(fileURLWithPath: helper))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: helper)
        let config = dir + "/config.json"
        let auth = Data("bob:pa:ss".utf8).base64EncodedString()
        try Data(#"{"auths":{"https://reg.example.com/v1/":{"auth":"\#(auth)"}},"credHelpers":{"helped.example.com":"wardentest"}}"#.utf8)
            .write(to: URL(fileURLWithPath: config))
        setenv("PATH", dir + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"), 1)
        let resolver = CredentialResolver(explicit: [:], configFiles: [config], environment: [:])
        #expect(try resolver.credentials(for: "reg.example.com") == Credentials(username: "bob", password: "pa:ss"))
        #expect(try resolver.credentials(for: "helped.example.com") == Credentials(username: "helper-user", password: "for-helped.example.com"))
        #expect(try resolver.credentials(for: "other.example.com") == nil)
        #expect(Credentials(username: "u", password: "p").description == "u:***")
    }
}

@Suite struct FallbackIndexConcurrencyTests {
    @Test func concurrentWritersKeepEveryEntryWhereIfMatchIsHonoured() async throws {
        var options = TestRegistryServer.Options()
        options.referrersAPI = false
        let server = try await TestRegistryServer.start(options: options)
        var c = RegistryConfiguration()
        c.credentials = CredentialResolver(explicit: [:], configFiles: [], environment: [:])
        let regs = try Registries(configuration: c)
        let repo = try regs.repository(Reference(parsing: "\(server.host)/app"))
        var random = RandomContent(seed: 30)
        let image = try await random.pushImage(to: repo, layerSizes: [10])
        let subject = image.descriptor
        let digests = try await withThrowingTaskGroup(of: Digest.self) { group in
            for i in 0..<8 {
                group.addTask {
                    var r = RandomContent(seed: UInt64(100 + i))
                    return try await r.pushArtifact(to: repo, subject: subject, artifactType: "x/\(i)").digest
                }
            }
            var all: Set<Digest> = []
            for try await d in group { all.insert(d) }
            return all
        }
        let listed = try await repo.referrers(of: subject, artifactType: nil)
        #expect(Set(listed.map(\.digest)) == digests)
        #expect(server.requests.contains { $0.hasPrefix("PUT /v2/app/manifests/\(subject.digest.tagSchema)") })
        try await regs.shutdown()
        try await server.shutdown()
    }
}

@Suite struct ChunkedUploadTests {
    @Test func resumesFromTheRegistrysRangeAfterAFailedChunk() async throws {
        var options = TestRegistryServer.Options()
        options.failFirstPatch = true
        let server = try await TestRegistryServer.start(options: options)
        var c = RegistryConfiguration()
        c.credentials = CredentialResolver(explicit: [:], configFiles: [], environment: [:])
        c.retry.initialDelay = .milliseconds(5)
        c.chunkedUploadThreshold = 100_000
        c.chunkSize = 64 << 10
        let regs = try Registries(configuration: c)
        let repo = try regs.repository(Reference(parsing: "\(server.host)/chunks"))
        var generator = SeededGenerator(seed: 40)
        let data = generator.bytes(300_000)
        let d = Descriptor.of(data, mediaType: "application/octet-stream")
        try await repo.push(d, content: .bytes(data, chunkSize: 10_000))
        #expect(try await repo.fetchVerified(d).collect(limit: 1 << 20) == data)
        let log = server.requests
        #expect(log.filter { $0.hasPrefix("PATCH") }.count == 6)  // 5 chunks, the first sent twice (its second half)
        #expect(log.contains { $0.hasPrefix("GET /v2/chunks/blobs/uploads/") })
        try await regs.shutdown()
        try await server.shutdown()
    }
}

@Suite struct PacerTests {
    /// Requests to a rate-limited host get slots one interval apart, however many arrive at once; after a pause the
    /// next request goes at once.
    @Test func slotsAreSpacedByTheInterval() async {
        let pacer = Pacer(perSecond: 20)
        #expect(await pacer.interval == .milliseconds(50))
        let t0 = ContinuousClock.now
        var slots: [ContinuousClock.Instant] = []
        for _ in 0..<5 { slots.append(await pacer.reserve(at: t0)) }
        #expect(slots == (0..<5).map { t0 + .milliseconds(50 * $0) })
        let later = t0 + .seconds(10)
        #expect(await pacer.reserve(at: later) == later)
        #expect(await pacer.reserve(at: later) == later + .milliseconds(50))
    }
}
