import CEL
import Foundation
import Testing

@testable import Triggers

@Suite struct GenericTests {
    static let secret = "generic-secret"
    let config = ReceiverConfig(name: "ci", format: .generic, secret: secret)
    static let stamp: Int64 = 1_772_442_847

    func signed(_ body: String, at stamp: Int64 = stamp, secret: String = secret) -> [(String, String)] {
        [
            ("Content-Type", "application/json"), ("X-Warden-Timestamp", String(stamp)),
            ("X-Warden-Signature", Receivers.genericSignature(secret: secret, timestamp: stamp, body: bytes(body))),
        ]
    }

    func normalise(_ body: String, headers: [(String, String)]? = nil, now: Date = fixtureNow) throws(ReceiverRejection) -> [TriggerEvent] {
        try Receivers.normalise(config: config, headers: headers ?? signed(body), body: bytes(body), now: now)
    }

    /// The signature is the documented HMAC (computed independently with openssl).
    @Test func aSignedManualFire() throws {
        let body = #"{"kind":"manual.fire","id":"x1"}"#
        // printf '1772442847.{"kind":"manual.fire","id":"x1"}' | openssl dgst -sha256 -hmac generic-secret
        let expected = "sha256=3e3a9d6f4cd5d07bf5265fb773621c50f18cad88167aacc1ef3b4351cfe5a079"
        #expect(Receivers.genericSignature(secret: Self.secret, timestamp: Self.stamp, body: bytes(body)) == expected)
        let headers = [("X-Warden-Timestamp", "1772442847"), ("X-Warden-Signature", expected)]
        let e = try #require(try normalise(body, headers: headers).first)
        #expect(e.id == "x1" && e.kind == .manualFire)
        #expect(e.subject.reference == "")
        #expect(e.source == TriggerEvent.Source(receiver: "ci", format: "generic", vendor: "manual.fire"))
    }

    @Test func timestampsOutsideTheReplayWindowAreStale() throws {
        let body = #"{"kind":"manual.fire","id":"x1"}"#
        #expect(try normalise(body, now: fixtureNow.addingTimeInterval(299)).count == 1)
        #expect(try normalise(body, now: fixtureNow.addingTimeInterval(-299)).count == 1)
        for skew in [301.0, -301.0, 86_400.0] {
            let r = rejection { try normalise(body, now: fixtureNow.addingTimeInterval(skew)) }
            #expect(r?.status == 401 && r?.code == .timestampStale, "\(skew)")
        }
        var narrow = config
        narrow.replayWindow = .seconds(10)
        #expect(
            rejection { try Receivers.normalise(config: narrow, headers: signed(body), body: bytes(body), now: fixtureNow.addingTimeInterval(11)) }?
                .code == .timestampStale)
        // A replay with a fresh timestamp but the old signature fails the signature, not the clock.
        var replay = signed(body)
        replay[1] = ("X-Warden-Timestamp", String(Self.stamp + 3600))
        #expect(rejection { try normalise(body, headers: replay, now: fixtureNow.addingTimeInterval(3600)) }?.code == .signatureInvalid)
    }

    @Test func signaturesAndTimestampsAreRequired() {
        let body = #"{"kind":"manual.fire","id":"x1"}"#
        let h = signed(body)
        #expect(rejection { try normalise(body, headers: [h[0], h[2]]) }?.code == .signatureMissing)
        #expect(rejection { try normalise(body, headers: [h[0], h[1]]) }?.code == .signatureMissing)
        #expect(rejection { try normalise(body, headers: [h[0], ("X-Warden-Timestamp", "1e9"), h[2]]) }?.code == .timestampInvalid)
        #expect(rejection { try normalise(body, headers: [h[0], ("X-Warden-Timestamp", "-5"), h[2]]) }?.code == .timestampInvalid)
        #expect(rejection { try normalise(body, headers: signed(body, secret: "wrong")) }?.code == .signatureInvalid)
        #expect(
            rejection { try Receivers.normalise(config: config, headers: h, body: bytes(body + " "), now: fixtureNow) }?.code == .signatureInvalid)
        #expect(rejection { try normalise(body, headers: [h[0], h[1], ("X-Warden-Signature", "sha1=00")]) }?.code == .signatureInvalid)
    }

    @Test func aBatchOfRegistryEventsTakesDerivedIDs() throws {
        let body = """
            {"events":[
             {"kind":"registry.push","id":"build-77","subject":{"registry":"Registry.Example.com","repository":"team/shop","tag":"1.4.2","digest":"\(manifestDigest)"},
              "data":{"pipeline":"release"},"occurredAt":"2026-03-02T10:14:07+01:00"},
             {"kind":"registry.tag","subject":{"registry":"registry.example.com","repository":"team/shop","tag":"stable"}},
             {"kind":"poll.change","id":"item-3","data":{"title":"CVE-2026-1"}}]}
            """
        let events = try normalise(body)
        try #require(events.count == 3)
        #expect(events[0].id == "sha256:ac45fec58b76be3e423cb87d91d53c92d94724c7122c9754d6fd050fdc1acde6")
        #expect(events[0].subject.registry == "registry.example.com")
        #expect(data(events[0], "vendorEventId")?.celEquals(.string("build-77")) == true)
        #expect(data(events[0], "pipeline")?.celEquals(.string("release")) == true)
        #expect(events[0].source.occurredAt == "2026-03-02T09:14:07.000Z")
        #expect(events[1].kind == .registryTag && events[1].needsDigest)
        #expect(events[2].id == "item-3" && events[2].kind == .pollChange)
        #expect(data(events[2], "title")?.celEquals(.string("CVE-2026-1")) == true)
    }

    /// The same push from a distribution webhook, a poller (TriggerEvent.registry) and a generic sender is one event.
    @Test func oneChangeHasOneIDWhoeverReportsIt() throws {
        let webhook = try #require(
            try Receivers.normalise(
                config: ReceiverConfig(name: "registry", format: .distribution), headers: [:], body: try Fixture.bytes("distribution-push")
            ).first)
        let generic = try #require(
            try normalise(
                #"{"kind":"registry.push","subject":{"registry":"registry.example.com","repository":"team/shop","tag":"1.4.2","digest":"\#(manifestDigest)"}}"#
            ).first)
        let polled = TriggerEvent.registry(
            kind: .registryPush,
            subject: TriggerEvent.Subject(registry: "registry.example.com", repository: "team/shop", tag: "1.4.2", digest: manifestDigest),
            source: TriggerEvent.Source(receiver: "shop-poller", format: "poll", vendor: "registry.push"))
        #expect(webhook.id == generic.id)
        #expect(webhook.id == polled.id)
        #expect(webhook.source.receiver != generic.source.receiver)
    }

    @Test(arguments: [
        (#"{"kind":"registry.pushed","subject":{"repository":"a/b"}}"#, 400, "payload-unsupported", "kind: \"registry.pushed\" is not one of"),
        (#"{"kind":"schedule.tick","id":"t"}"#, 400, "payload-unsupported", "kind: \"schedule.tick\" is not one of"),
        (#"{"kind":"registry.push"}"#, 400, "payload-malformed", "subject: missing"),
        (#"{"kind":"registry.push","subject":{"repository":"a/b"}}"#, 400, "registry-unknown", "subject.registry: missing"),
        (#"{"kind":"manual.fire"}"#, 400, "payload-malformed", "id: missing"),
        (#"{"kind":"manual.fire","id":"has space"}"#, 400, "payload-malformed", "id: must be 1 to 200 visible ASCII characters"),
        (
            #"{"events":[{"kind":"manual.fire","id":"a"},{"kind":"manual.fire","id":"b","subjekt":{}}]}"#, 400, "payload-malformed",
            "events[1].subjekt: unknown member"
        ),
        (
            #"{"kind":"registry.push","subject":{"registry":"r.example","repository":"a/b","digets":"x"}}"#, 400, "payload-malformed",
            "subject.digets: unknown member"
        ),
        (#"{"kind":"manual.fire","id":"a","data":[1]}"#, 400, "payload-malformed", "data: expected an object, found a list"),
        (
            #"{"kind":"manual.fire","id":"a","occurredAt":"03/02/2026"}"#, 400, "payload-malformed",
            "occurredAt: \"03/02/2026\" is not an RFC 3339 time"
        ),
        (#"{"events":[{"kind":"manual.fire","id":"a"}],"extra":1}"#, 400, "payload-malformed", "extra: unknown member"),
    ])
    func malformedEvents(body: String, status: Int, code: String, reason: String) {
        let r = rejection { try normalise(body) }
        #expect(r?.status == status && r?.code.rawValue == code, "\(String(describing: r))")
        #expect(r?.reason.hasPrefix(reason) == true, "\(String(describing: r?.reason))")
    }
}
