import CEL
import Foundation
import Testing

@testable import Triggers

@Suite struct DistributionTests {
    static let secret = "Bearer 9f8e7d6c-registry-token"
    let config = ReceiverConfig(name: "registry", format: .distribution, secret: secret)
    let headers = [("Content-Type", "application/vnd.docker.distribution.events.v2+json"), ("Authorization", secret)]

    func normalise(_ body: [UInt8], config: ReceiverConfig? = nil, headers: [(String, String)]? = nil) throws(ReceiverRejection) -> [TriggerEvent] {
        try Receivers.normalise(config: config ?? self.config, headers: headers ?? self.headers, body: body, now: fixtureNow)
    }

    /// A batched envelope: the blob push and the pull are dropped, the manifest push is one event with its tag.
    @Test func aPushEnvelopeGivesOneEventForTheManifest() throws {
        let events = try normalise(try Fixture.bytes("distribution-push"))
        try #require(events.count == 1)
        let e = events[0]
        #expect(e.kind == .registryPush)
        #expect(
            e.subject
                == TriggerEvent.Subject(
                    registry: "registry.example.com", repository: "team/shop", tag: "1.4.2", digest: manifestDigest,
                    mediaType: "application/vnd.oci.image.manifest.v1+json"))
        #expect(e.id == "sha256:ac45fec58b76be3e423cb87d91d53c92d94724c7122c9754d6fd050fdc1acde6")
        #expect(!e.needsDigest)
        #expect(e.source == TriggerEvent.Source(receiver: "registry", format: "distribution", vendor: "push", occurredAt: "2026-03-02T09:14:07.913Z"))
        #expect(data(e, "actor")?.celEquals(.string("ci-bot")) == true)
        #expect(data(e, "size")?.celEquals(.int(1165)) == true)
        #expect(data(e, "vendorEventId")?.celEquals(.string("4f2a0c6e-1d8b-4e8f-a3f0-9b6d5c4e3a22")) == true)
        #expect(data(e, "request")?["useragent"]?.celEquals(.string("containerd/1.7.13")) == true)
        #expect(data(e, "url")?.celEquals(.string("https://registry.example.com/v2/team/shop/manifests/" + manifestDigest)) == true)
    }

    @Test func blobsAndPullsAreReportedWhenIncluded() throws {
        var c = config
        c.includeBlobs = true
        c.includePulls = true
        let events = try normalise(try Fixture.bytes("distribution-push"), config: c)
        #expect(events.map(\.kind) == [.registryPush, .registryPush, .registryPull])
        #expect(events[0].subject.mediaType == "application/vnd.docker.image.rootfs.diff.tar.gzip")
        #expect(data(events[0], "blob")?.celEquals(.bool(true)) == true)
        #expect(events[0].subject.tag == nil)
        #expect(data(events[1], "blob") == nil)
        #expect(events[2].subject.tag == "1.4.2")
        #expect(data(events[2], "actor")?.celEquals(.string("deployer")) == true)
        // A pull and a push of the same manifest are different events.
        #expect(Set(events.map(\.id)).count == 3)

        c.includeBlobs = false
        #expect(try normalise(try Fixture.bytes("distribution-push"), config: c).map(\.kind) == [.registryPush, .registryPull])
    }

    /// Manifest delete (digest), tag delete (tag, no digest), repository delete (neither).
    @Test func theThreeDeletes() throws {
        let events = try normalise(try Fixture.bytes("distribution-deletes"))
        try #require(events.count == 3)
        #expect(events.allSatisfy { $0.kind == .registryDelete && !$0.needsDigest })
        #expect(events.allSatisfy { $0.subject.registry == "registry.example.com:5000" })
        #expect(events[0].subject.digest == manifestDigest && events[0].subject.tag == nil && events[0].subject.repository == "team/shop")
        #expect(events[1].subject.digest == nil && events[1].subject.tag == "1.4.1")
        #expect(events[2].subject.digest == nil && events[2].subject.tag == nil && events[2].subject.repository == "team/old-shop")
        #expect(
            events[1].id
                == TriggerEvent.registryEventID(
                    kind: .registryDelete, registry: "registry.example.com:5000", repository: "team/shop", tag: "1.4.1", digest: nil))
    }

    @Test func theConfiguredRegistryNameWinsOverTheRequestHost() throws {
        var c = config
        c.registry = "Registry.Internal"
        let e = try #require(try normalise(try Fixture.bytes("distribution-push"), config: c).first)
        #expect(e.subject.registry == "registry.internal")
        #expect(
            e.id
                == TriggerEvent.registryEventID(
                    kind: .registryPush, registry: "registry.internal", repository: "team/shop", tag: "1.4.2", digest: manifestDigest))
    }

    @Test func theStaticSecretIsRequired() throws {
        let body = try Fixture.bytes("distribution-push")
        let missing = rejection { try normalise(body, headers: [("Content-Type", "application/json")]) }
        #expect(missing?.status == 401 && missing?.code == .signatureMissing)
        let wrong = rejection { try normalise(body, headers: [("Authorization", "Bearer guess")]) }
        #expect(wrong?.status == 401 && wrong?.code == .signatureInvalid)
        let longer = rejection { try normalise(body, headers: [("Authorization", Self.secret + "x")]) }
        #expect(longer?.code == .signatureInvalid)
        for r in [missing, wrong, longer] { #expect(r.map { !$0.reason.contains("9f8e7d6c") } == true) }
        // Header names are case-insensitive; the secret may be configured without its Bearer prefix.
        #expect(try normalise(body, headers: [("authorization", Self.secret)]).count == 1)
        var bare = config
        bare.secret = "9f8e7d6c-registry-token"
        #expect(try normalise(body, config: bare).count == 1)
        // Another header, as configured.
        var custom = config
        custom.header = "X-Registry-Token"
        custom.secret = "t0ken"
        #expect(try normalise(body, config: custom, headers: [("x-registry-token", "t0ken")]).count == 1)
        #expect(rejection { try normalise(body, config: custom) }?.code == .signatureMissing)
        // Two Authorization fields are not one secret.
        #expect(
            rejection { try normalise(body, headers: [("Authorization", Self.secret), ("Authorization", Self.secret)]) }?.code == .signatureInvalid)
    }

    @Test(arguments: [
        (
            "{\"events\":[{\"action\":\"push\",\"target\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b\"},\"request\":{\"host\":\"r.example\"}}]}",
            "events[0].target.repository: missing"
        ),
        (
            "{\"events\":[{\"action\":\"push\",\"target\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"repository\":\"a/b\",\"digest\":\"sha256:abc\"},\"request\":{\"host\":\"r.example\"}}]}",
            "events[0].target.digest: \"sha256:abc\" is not a digest"
        ),
        (
            "{\"events\":[{\"action\":\"push\",\"target\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"repository\":\"a/b\",\"tag\":\"-bad\",\"digest\":\"sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b\"},\"request\":{\"host\":\"r.example\"}}]}",
            "events[0].target.tag: \"-bad\" is not a tag"
        ),
        (
            "{\"events\":[{\"action\":\"delete\",\"target\":{\"repository\":\"Team/Shop\"}}]}",
            "events[0].target.repository: \"Team/Shop\" is not a repository name"
        ),
        (
            "{\"events\":[{\"action\":\"delete\",\"target\":{\"repository\":\"a/b\"},\"request\":{\"host\":\"bad host\"}}]}",
            "events[0].request.host: \"bad host\" is not a registry host"
        ),
        ("{\"events\":[{\"action\":\"delete\",\"target\":{\"repository\":\"a/b\"}}]}", "events[0].request.host: missing"),
        (
            "{\"events\":[{\"action\":\"push\",\"target\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"repository\":\"a/b\"},\"request\":{\"host\":\"r.example\"}}]}",
            "events[0].target.digest: missing"
        ),
        ("{\"events\":[{\"action\":7}]}", "events[0].action: expected a string, found a number"),
        ("{\"events\":[{\"action\":\"delete\",\"target\":[]}]}", "events[0].target: expected an object, found a list"),
        ("{\"events\":{}}", "events: expected a list, found an object"),
        ("{\"event\":[]}", "events: missing"),
        ("[1,2]", "the body: expected an object, found a list"),
        ("{\"events\":[{\"action\":\"push\",\"target\":{}}", "the body is not JSON: 1:"),
        ("", "the body is not JSON: 1:1:"),
    ])
    func malformedEnvelopesAreRefusedWithThePath(body: String, reason: String) {
        let r = rejection { try normalise(bytes(body)) }
        #expect(r?.status == 400, "\(String(describing: r))")
        #expect(r?.reason.hasPrefix(reason) == true, "\(String(describing: r?.reason))")
    }

    /// Events Distribution may add later, and pulls of odd shape, do not hold up the envelope.
    @Test func skippedEventsAreNotValidated() throws {
        let body = """
            {"events":[{"action":"replicate","target":{"repository":"NOT VALID"}},
             {"action":"pull","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"Bad Name","digest":"x"}},
             {"action":"delete","target":{"repository":"a/b"},"request":{"host":"r.example"}}]}
            """
        let events = try normalise(bytes(body))
        #expect(events.map(\.subject.repository) == ["a/b"])
        #expect(try normalise(bytes("{\"events\":[]}")).isEmpty)
    }

    @Test func aContentTypeDistributionDoesNotSendIsRefused() throws {
        let body = try Fixture.bytes("distribution-push")
        let r = rejection { try normalise(body, headers: [("Content-Type", "text/plain"), ("Authorization", Self.secret)]) }
        #expect(r?.status == 415 && r?.code == .contentTypeUnsupported)
        // Parameters and case do not matter.
        #expect(
            try normalise(
                try Fixture.bytes("distribution-push"),
                headers: [("Content-Type", "Application/JSON; charset=utf-8"), ("Authorization", Self.secret)]
            ).count == 1)
    }
}
