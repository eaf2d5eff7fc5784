import CEL
import Foundation
import Testing

@testable import Triggers

@Suite struct ZotTests {
    static let secret = "Basic emVidTp3ZWJob29r"
    let config = ReceiverConfig(name: "zot", format: .zot, registry: "zot.example.com", secret: secret)
    let imageDigest = "sha256:2d4e459f4ecb5329407ae3e47cbc107a2fbace221354ca75960af4c047b3cb13"

    func binaryHeaders(type: String) -> [(String, String)] {
        [
            ("Content-Type", "application/json"), ("Ce-Specversion", "1.0"), ("Ce-Id", "3c6a0f3e-5b7e-4a55-9b0d-9c1b5b0e8e21"),
            ("Ce-Source", "zotregistry.dev"), ("Ce-Type", type), ("Ce-Time", "2026-03-02T09:14:07.123456Z"), ("Authorization", Self.secret),
        ]
    }

    /// Binary mode, as zot's HTTP sink sends it (the CloudEvents SDK's default).
    @Test func anImageUpdatedInBinaryMode() throws {
        let body = try Fixture.bytes("zot-image-updated")
        let e = try #require(try Receivers.normalise(config: config, headers: binaryHeaders(type: "zotregistry.image.updated"), body: body).first)
        #expect(e.kind == .registryPush)
        #expect(
            e.subject
                == TriggerEvent.Subject(
                    registry: "zot.example.com", repository: "apps/api", tag: "2.0.1", digest: imageDigest,
                    mediaType: "application/vnd.oci.image.manifest.v1+json"))
        #expect(e.source.occurredAt == "2026-03-02T09:14:07.123Z")
        #expect(e.source.vendor == "zotregistry.image.updated")
        #expect(data(e, "vendorEventId")?.celEquals(.string("3c6a0f3e-5b7e-4a55-9b0d-9c1b5b0e8e21")) == true)
        #expect(data(e, "size")?.celEquals(.int(405)) == true)
        #expect(data(e, "manifest") == nil)
    }

    @Test func structuredModeAndAReferenceThatIsADigest() throws {
        let body = """
            {"specversion":"1.0","id":"1","source":"zotregistry.dev","type":"zotregistry.image.deleted","time":"2026-03-02T09:14:07Z",
             "datacontenttype":"application/json","channel":"prod",
             "data":{"name":"apps/api","reference":"\(imageDigest)","digest":"\(imageDigest)","mediaType":"application/vnd.oci.image.manifest.v1+json"}}
            """
        let e = try #require(
            try Receivers.normalise(
                config: config, headers: [("Content-Type", "application/cloudevents+json"), ("Authorization", Self.secret)], body: bytes(body)
            ).first)
        #expect(e.kind == .registryDelete)
        #expect(e.subject.tag == nil && e.subject.digest == imageDigest)
        #expect(data(e, "channel")?.celEquals(.string("prod")) == true)
    }

    @Test func otherTypesCarryNothing() throws {
        let body = bytes(#"{"name":"apps/new"}"#)
        #expect(try Receivers.normalise(config: config, headers: binaryHeaders(type: "zotregistry.repository.created"), body: body).isEmpty)
        #expect(try Receivers.normalise(config: config, headers: binaryHeaders(type: "zotregistry.image.lint_failed"), body: body).isEmpty)
    }

    @Test func zotNeedsAConfiguredRegistry() throws {
        var c = config
        c.registry = nil
        #expect(c.problems.contains { $0.contains("zot events do not name the registry") })
        let body = try Fixture.bytes("zot-image-updated")
        let r = rejection { try Receivers.normalise(config: c, headers: binaryHeaders(type: "zotregistry.image.updated"), body: body) }
        #expect(r?.status == 400 && r?.code == .registryUnknown)
    }

    @Test func whatIsNotACloudEventIsRefused() throws {
        let plain = rejection {
            try Receivers.normalise(config: config, headers: [("Authorization", Self.secret)], body: bytes(#"{"name":"apps/api"}"#))
        }
        #expect(plain?.status == 400 && plain?.reason.hasPrefix("not a CloudEvent") == true)
        var headers = binaryHeaders(type: "zotregistry.image.updated")
        headers[1] = ("ce-specversion", "0.3")
        let old = rejection { try Receivers.normalise(config: config, headers: headers, body: bytes("{}")) }
        #expect(old?.code == .payloadUnsupported)
        let noName = rejection {
            try Receivers.normalise(
                config: config, headers: binaryHeaders(type: "zotregistry.image.updated"), body: bytes(#"{"digest":"\#(imageDigest)"}"#))
        }
        #expect(noName?.reason == "name: missing")
        let xml = rejection {
            try Receivers.normalise(
                config: config,
                headers: binaryHeaders(type: "zotregistry.image.updated").map { $0.0 == "Content-Type" ? ($0.0, "application/xml") : $0 },
                body: bytes("<x/>"))
        }
        #expect(xml?.status == 415)
    }
}
