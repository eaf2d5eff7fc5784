import CEL
import Foundation
import Testing

@testable import Triggers

@Suite struct HarborTests {
    static let secret = "Basic aGFyYm9yOndlYmhvb2s="
    let config = ReceiverConfig(name: "harbor-prod", format: .harbor, secret: secret)
    static let busybox = "sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c"

    func normalise(_ body: [UInt8], headers: [(String, String)], config: ReceiverConfig? = nil) throws(ReceiverRejection) -> [TriggerEvent] {
        try Receivers.normalise(config: config ?? self.config, headers: headers + [("Authorization", Self.secret)], body: body, now: fixtureNow)
    }

    @Test func theDefaultPayloadFormat() throws {
        let events = try normalise(try Fixture.bytes("harbor-push-default"), headers: [("Content-Type", "application/json")])
        let e = try #require(events.first)
        #expect(events.count == 1)
        #expect(e.kind == .registryPush)
        #expect(e.subject == TriggerEvent.Subject(registry: "harbor.example.com", repository: "library/busybox", tag: "v1.0", digest: Self.busybox))
        #expect(e.source.vendor == "PUSH_ARTIFACT" && e.source.format == "harbor")
        #expect(e.source.occurredAt == "2026-03-02T09:14:07.000Z")
        #expect(data(e, "actor")?.celEquals(.string("robot$team+ci")) == true)
        #expect(data(e, "repoType")?.celEquals(.string("public")) == true)
        #expect(data(e, "url")?.celEquals(.string("harbor.example.com/library/busybox:v1.0")) == true)
    }

    /// Structured CloudEvents, as Harbor's CloudEvents format sends them: an untagged push has its digest in `tag`.
    @Test func structuredCloudEvents() throws {
        let e = try #require(
            try normalise(try Fixture.bytes("harbor-push-cloudevents"), headers: [("Content-Type", "application/cloudevents+json")]).first)
        #expect(e.kind == .registryPush)
        #expect(e.subject == TriggerEvent.Subject(registry: "harbor.example.com", repository: "library/busybox", tag: nil, digest: Self.busybox))
        #expect(e.source.vendor == "harbor.artifact.pushed")
        #expect(e.source.occurredAt == "2026-03-02T09:14:07.000Z")
        #expect(data(e, "actor")?.celEquals(.string("admin")) == true)
        #expect(data(e, "vendorEventId")?.celEquals(.string("4b2f89a6-548d-4c12-9993-a1f5790b97d2")) == true)
        #expect(data(e, "requestId")?.celEquals(.string("2eedfab8-61d3-4f3c-8ec3-8f82d1ec4c84")) == true)
        // Recognised by its specversion when sent as application/json.
        #expect(try normalise(try Fixture.bytes("harbor-push-cloudevents"), headers: [("Content-Type", "application/json")]).first?.id == e.id)
    }

    @Test func bothFormatsOfOnePushGiveOneID() throws {
        let tagged = try Fixture.text("harbor-push-cloudevents").replacingOccurrences(
            of: "\"tag\": \"sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c\"", with: "\"tag\": \"v1.0\"")
        let ce = try #require(try normalise(bytes(tagged), headers: [("Content-Type", "application/cloudevents+json")]).first)
        let plain = try #require(try normalise(try Fixture.bytes("harbor-push-default"), headers: []).first)
        #expect(ce.subject.tag == "v1.0")
        #expect(ce.id == plain.id)
    }

    @Test func binaryCloudEventsOfADelete() throws {
        let body = """
            {"resources":[{"digest":"\(Self.busybox)","tag":"v1.0","resource_url":"harbor.example.com/library/busybox:v1.0"}],
             "repository":{"name":"busybox","namespace":"library","repo_full_name":"library/busybox","repo_type":"public"}}
            """
        let headers = [
            ("Content-Type", "application/json"), ("ce-specversion", "1.0"), ("ce-id", "7c1f"), ("ce-type", "harbor.artifact.deleted"),
            ("ce-source", "/projects/1/webhook/policies/3"), ("ce-time", "2026-03-02T10:00:00+01:00"), ("ce-operator", "admin"),
        ]
        let e = try #require(try normalise(bytes(body), headers: headers).first)
        #expect(e.kind == .registryDelete)
        #expect(e.subject.tag == "v1.0" && e.subject.digest == Self.busybox)
        #expect(e.source.occurredAt == "2026-03-02T09:00:00.000Z")
        #expect(data(e, "actor")?.celEquals(.string("admin")) == true)
        let noType = rejection { try normalise(bytes(body), headers: headers.filter { $0.0 != "ce-type" }) }
        #expect(noType?.status == 400 && noType?.reason == "header ce-type: missing (a binary-mode CloudEvent needs it)")
        let badTime = rejection { try normalise(bytes(body), headers: headers.map { $0.0 == "ce-time" ? ($0.0, "yesterday") : $0 }) }
        #expect(badTime?.reason.hasPrefix("header ce-time:") == true)
    }

    @Test func pullsAndOtherEventTypes() throws {
        let pull = try Fixture.text("harbor-push-default").replacingOccurrences(of: "PUSH_ARTIFACT", with: "PULL_ARTIFACT")
        #expect(try normalise(bytes(pull), headers: []).isEmpty)
        var c = config
        c.includePulls = true
        #expect(try normalise(bytes(pull), headers: [], config: c).map(\.kind) == [.registryPull])
        let scan = #"{"type":"SCANNING_COMPLETED","occur_at":1772442847,"operator":"auto","event_data":{"resources":[]}}"#
        #expect(try normalise(bytes(scan), headers: []).isEmpty)
        let quota = #"{"specversion":"1.0","id":"q","source":"/projects/1","type":"harbor.quota.warned","data":{}}"#
        #expect(try normalise(bytes(quota), headers: [("Content-Type", "application/cloudevents+json")]).isEmpty)
    }

    @Test(arguments: [
        (#"{"type":"PUSH_ARTIFACT","event_data":{"repository":{"repo_full_name":"library/busybox"}}}"#, "event_data.resources: missing"),
        (
            #"{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"tag":"v1"}],"repository":{"repo_full_name":"library/busybox"}}}"#,
            "event_data.resources[0].digest: missing"
        ),
        (
            #"{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"digest":"sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c"}],"repository":{"repo_full_name":"library/busybox"}}}"#,
            "event_data.resources[0].resource_url: missing, and receiver harbor-prod has no registry configured"
        ),
        (#"{"type":"PUSH_ARTIFACT","event_data":{"resources":[],"repository":{"name":"busybox"}}}"#, "event_data.repository.namespace: missing"),
        (#"{"type":"PUSH_ARTIFACT","occur_at":"yesterday","event_data":{}}"#, "occur_at: expected a number of seconds, found a string"),
        (#"{"event_data":{}}"#, "type: missing"),
        (#"{"specversion":"1.0","id":"x","source":"/p","type":"harbor.artifact.pushed"}"#, "data: missing"),
        (#"{"specversion":"1.0","id":"x","type":"harbor.artifact.pushed","data":{}}"#, "source: missing"),
    ])
    func malformedPayloads(body: String, reason: String) {
        let r = rejection { try normalise(bytes(body), headers: []) }
        #expect(r?.status == 400, "\(String(describing: r))")
        #expect(r?.reason.hasPrefix(reason) == true, "\(String(describing: r?.reason))")
    }

    @Test func theAuthHeaderIsRequired() throws {
        let body = try Fixture.bytes("harbor-push-default")
        let r = rejection { try Receivers.normalise(config: config, headers: [("Authorization", "Basic d3Jvbmc=")], body: body) }
        #expect(r?.status == 401 && r?.code == .signatureInvalid)
        #expect(r.map { !$0.reason.contains(Self.secret) } == true)
    }
}
