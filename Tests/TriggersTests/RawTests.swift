import CEL
import Foundation
import Testing

@testable import Triggers

@Suite struct RawTests {
    @Test func credentialsAreRedactedAndTheRestKept() throws {
        let config = ReceiverConfig(name: "r", format: .distribution, registry: "r.example", secret: "Bearer s3cret", header: "Authorization")
        let headers = [
            ("Authorization", "Bearer s3cret"), ("Cookie", "session=abc"), ("X-Hub-Signature-256", "sha256=00"), ("X-Warden-Signature", "sha256=11"),
            ("X-Gitlab-Token", "glt"), ("X-Api-Key", "k"), ("Content-Type", "application/json"), ("User-Agent", "Go-http-client/1.1"),
            ("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-For", "10.0.0.2"),
        ]
        let e = try #require(
            try Receivers.normalise(config: config, headers: headers, body: bytes(#"{"events":[{"action":"delete","target":{"repository":"a/b"}}]}"#))
                .first)
        let raw = try #require(e.raw)
        for name in ["Authorization", "Cookie", "X-Hub-Signature-256", "X-Warden-Signature", "X-Gitlab-Token", "X-Api-Key"] {
            #expect(raw.headers[name] == "<redacted>", "\(name)")
        }
        #expect(raw.headers["Content-Type"] == "application/json")
        #expect(raw.headers["User-Agent"] == "Go-http-client/1.1")
        #expect(raw.headers["X-Forwarded-For"] == "10.0.0.1, 10.0.0.2")
        let encoded = String(decoding: try JSONEncoder().encode(e), as: UTF8.self)
        for secret in ["s3cret", "session=abc", "glt"] { #expect(!encoded.contains(secret), "\(secret)") }
        #expect(!raw.truncated && raw.body.contains("a/b"))
    }

    @Test func theConfiguredHeaderIsRedactedWhateverItsName() throws {
        let config = ReceiverConfig(name: "h", format: .dockerhub, secret: "t", header: "X-Shared")
        let e = try #require(
            try Receivers.normalise(
                config: config, headers: [("x-shared", "t")], body: bytes(#"{"push_data":{"tag":"1"},"repository":{"repo_name":"a/b"}}"#)
            ).first)
        #expect(e.raw?.headers["x-shared"] == "<redacted>")
    }

    @Test func bodiesAreCutAtTheLimitOnACharacterBoundary() throws {
        var config = ReceiverConfig(name: "g", format: .generic, secret: "k")
        config.rawBodyLimit = 40
        // "é" is two bytes: the cut at 40 falls inside one of them.
        let body = #"{"kind":"manual.fire","id":"a","data":{"t":"ééééééééééééééééééé"}}"#
        let headers = [
            ("X-Warden-Timestamp", "1772442847"),
            ("X-Warden-Signature", Receivers.genericSignature(secret: "k", timestamp: 1_772_442_847, body: bytes(body))),
        ]
        let e = try #require(try Receivers.normalise(config: config, headers: headers, body: bytes(body), now: fixtureNow).first)
        let raw = try #require(e.raw)
        #expect(raw.truncated)
        #expect(raw.body.utf8.count <= 40 && raw.body.utf8.count >= 39)
        #expect(!raw.body.contains("\u{FFFD}"))
        #expect(body.hasPrefix(raw.body))
        // The event itself is read from the whole body.
        #expect(data(e, "t")?.celEquals(.string("ééééééééééééééééééé")) == true)
    }

    @Test func eventsOfOneDeliveryShareItsRaw() throws {
        let config = ReceiverConfig(name: "r", format: .distribution)
        let events = try Receivers.normalise(config: config, headers: [:], body: try Fixture.bytes("distribution-deletes"))
        #expect(events.count == 3)
        #expect(Set(events.compactMap { $0.raw?.body }).count == 1)
    }
}
