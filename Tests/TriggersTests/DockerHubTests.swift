import CEL
import Foundation
import Testing

@testable import Triggers

@Suite struct DockerHubTests {
    let config = ReceiverConfig(name: "hub", format: .dockerhub, secret: "hub-token", header: "X-Warden-Token")
    let headers = [("Content-Type", "application/json"), ("X-Warden-Token", "hub-token")]

    @Test func aPushNeedsItsDigestResolved() throws {
        let e = try #require(try Receivers.normalise(config: config, headers: headers, body: try Fixture.bytes("dockerhub-push")).first)
        #expect(e.kind == .registryPush)
        #expect(e.subject == TriggerEvent.Subject(registry: "docker.io", repository: "acme/api", tag: "2.3.0"))
        #expect(e.needsDigest)
        #expect(e.source.occurredAt == "2026-03-02T09:14:07.000Z")
        #expect(data(e, "actor")?.celEquals(.string("acmebuild")) == true)
        #expect(data(e, "callbackUrl") == nil)
        #expect(e.raw?.body.contains("callback_url") == true)

        let digest = "sha256:0b3e8fd8de6ae7b1e3b4c94a1a2a0bb4bbf39a3a3a2f6c7b9b4b2f2b0f6e4a1c"
        let resolved = e.withDigest(digest)
        #expect(!resolved.needsDigest)
        #expect(
            resolved.id
                == TriggerEvent.registryEventID(kind: .registryPush, registry: "docker.io", repository: "acme/api", tag: "2.3.0", digest: digest))
        // The same push reported by a poller (with the digest) deduplicates against it.
        let polled = TriggerEvent.registry(
            kind: .registryPush, subject: TriggerEvent.Subject(registry: "docker.io", repository: "acme/api", tag: "2.3.0", digest: digest),
            source: TriggerEvent.Source(receiver: "hub-poller", format: "poll", vendor: "registry.push"))
        #expect(polled.id == resolved.id)
    }

    @Test func officialImagesLiveUnderLibrary() throws {
        let body = bytes(#"{"push_data":{"tag":"1.27","pusher":"library"},"repository":{"repo_name":"nginx"}}"#)
        #expect(try Receivers.normalise(config: config, headers: headers, body: body).first?.subject.repository == "library/nginx")
    }

    @Test func theTokenHeaderIsRequiredAndRedacted() throws {
        let body = try Fixture.bytes("dockerhub-push")
        #expect(
            rejection { try Receivers.normalise(config: config, headers: [("Content-Type", "application/json")], body: body) }?.code
                == .signatureMissing)
        #expect(rejection { try Receivers.normalise(config: config, headers: [("X-Warden-Token", "nope")], body: body) }?.code == .signatureInvalid)
        let e = try #require(try Receivers.normalise(config: config, headers: headers, body: body).first)
        #expect(e.raw?.headers["X-Warden-Token"] == "<redacted>")
    }

    @Test(arguments: [
        (#"{"repository":{"repo_name":"acme/api"}}"#, "push_data: missing"),
        (#"{"push_data":{"pusher":"x"},"repository":{"repo_name":"acme/api"}}"#, "push_data.tag: missing"),
        (#"{"push_data":{"tag":"has space"},"repository":{"repo_name":"acme/api"}}"#, "push_data.tag: \"has space\" is not a tag"),
        (
            #"{"push_data":{"tag":"1"},"repository":{"namespace":"Acme","name":"api"}}"#,
            "repository.namespace/name: \"Acme/api\" is not a repository name"
        ),
        (#"{"push_data":{"tag":"1","pushed_at":"now"},"repository":{"repo_name":"acme/api"}}"#, "push_data.pushed_at: expected a number of seconds"),
        (#"{"push_data":{"tag":"1"},"repository":{}}"#, "repository.repo_name: missing"),
    ])
    func malformedPushes(body: String, reason: String) {
        let r = rejection { try Receivers.normalise(config: config, headers: headers, body: bytes(body)) }
        #expect(r?.status == 400)
        #expect(r?.reason.hasPrefix(reason) == true, "\(String(describing: r?.reason))")
    }
}
