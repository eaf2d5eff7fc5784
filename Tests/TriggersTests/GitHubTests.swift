import CEL
import Foundation
import Testing

@testable import Triggers

@Suite struct GitHubTests {
    static let secret = "gh-webhook-secret"
    /// openssl dgst -sha256 -hmac gh-webhook-secret < Fixtures/github-registry-package-published.json
    static let fixtureSignature = "sha256=8c7fbe1fae044e5d574c5016931c21b034a71e5a1f995b7358847cdf7d8f542a"
    let config = ReceiverConfig(name: "github", format: .github, secret: secret)
    let digest = "sha256:7f0c4f5a0f1de6e1b6f1a4c0f3e56d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e"

    func headers(event: String = "registry_package", signature: String?) -> [(String, String)] {
        var h = [
            ("Content-Type", "application/json"), ("X-GitHub-Event", event), ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("User-Agent", "GitHub-Hookshot/044aadd"),
        ]
        if let signature { h.append(("X-Hub-Signature-256", signature)) }
        return h
    }

    @Test func aSignedRegistryPackagePublished() throws {
        let body = try Fixture.bytes("github-registry-package-published")
        #expect(Receivers.hubSignature(secret: Self.secret, body: body) == Self.fixtureSignature)
        let events = try Receivers.normalise(config: config, headers: headers(signature: Self.fixtureSignature), body: body)
        let e = try #require(events.first)
        #expect(events.count == 1)
        #expect(e.kind == .registryPush)
        #expect(
            e.subject
                == TriggerEvent.Subject(
                    registry: "ghcr.io", repository: "acme-corp/shop", tag: "v2.1.0", digest: digest,
                    mediaType: "application/vnd.oci.image.index.v1+json"))
        #expect(e.source.vendor == "registry_package.published")
        #expect(e.source.occurredAt == "2026-03-02T09:14:08.000Z")
        #expect(data(e, "actor")?.celEquals(.string("release-bot")) == true)
        #expect(data(e, "vendorEventId")?.celEquals(.string("72d3162e-cc78-11e3-81ab-4c9367dc0958")) == true)
        #expect(data(e, "packageVersionId")?.celEquals(.int(371_839_554)) == true)
        #expect(
            e.id
                == TriggerEvent.registryEventID(kind: .registryPush, registry: "ghcr.io", repository: "acme-corp/shop", tag: "v2.1.0", digest: digest)
        )
    }

    @Test func thePackageEventReadsTheSameWay() throws {
        let text = try Fixture.text("github-registry-package-published").replacingOccurrences(of: "\"registry_package\":", with: "\"package\":")
        let body = bytes(text)
        let e = try #require(
            try Receivers.normalise(
                config: config, headers: headers(event: "package", signature: Receivers.hubSignature(secret: Self.secret, body: body)), body: body
            )
            .first)
        #expect(e.subject.repository == "acme-corp/shop" && e.source.vendor == "package.published")
    }

    @Test func signaturesAreChecked() throws {
        let body = try Fixture.bytes("github-registry-package-published")
        let missing = rejection { try Receivers.normalise(config: config, headers: headers(signature: nil), body: body) }
        #expect(missing?.status == 401 && missing?.code == .signatureMissing)
        let sha1 = rejection {
            try Receivers.normalise(config: config, headers: headers(signature: nil) + [("X-Hub-Signature", "sha1=0a")], body: body)
        }
        #expect(sha1?.code == .signatureMissing && sha1?.reason.contains("SHA-1") == true)
        let wrongKey = Receivers.hubSignature(secret: "another-secret", body: body)
        let wrong = rejection { try Receivers.normalise(config: config, headers: headers(signature: wrongKey), body: body) }
        #expect(wrong?.status == 401 && wrong?.code == .signatureInvalid)
        let tampered = rejection { try Receivers.normalise(config: config, headers: headers(signature: Self.fixtureSignature), body: body + [0x20]) }
        #expect(tampered?.code == .signatureInvalid)
        let garbled = rejection { try Receivers.normalise(config: config, headers: headers(signature: "sha256=zz"), body: body) }
        #expect(garbled?.code == .signatureInvalid)
        // Upper-case hex is the same signature.
        #expect(
            try Receivers.normalise(
                config: config, headers: headers(signature: "sha256=" + Self.fixtureSignature.dropFirst(7).uppercased()), body: body
            ).count == 1)
        for r in [missing, sha1, wrong, tampered, garbled] { #expect(r.map { !$0.reason.contains(Self.secret) } == true) }
    }

    @Test func pingsAndOtherEventsCarryNothingButAreSigned() throws {
        let ping = bytes(#"{"zen":"Design for failure.","hook_id":109948940}"#)
        let signed = headers(event: "ping", signature: Receivers.hubSignature(secret: Self.secret, body: ping))
        #expect(try Receivers.normalise(config: config, headers: signed, body: ping).isEmpty)
        #expect(rejection { try Receivers.normalise(config: config, headers: headers(event: "ping", signature: nil), body: ping) }?.status == 401)
        let push = bytes(#"{"ref":"refs/heads/main"}"#)
        #expect(
            try Receivers.normalise(
                config: config, headers: headers(event: "push", signature: Receivers.hubSignature(secret: Self.secret, body: push)), body: push
            ).isEmpty)
        let npm = bytes(#"{"action":"published","registry_package":{"package_type":"npm","name":"x","owner":{"login":"o"}}}"#)
        #expect(
            try Receivers.normalise(config: config, headers: headers(signature: Receivers.hubSignature(secret: Self.secret, body: npm)), body: npm)
                .isEmpty)
        let deleted = bytes(#"{"action":"deleted","registry_package":{}}"#)
        #expect(
            try Receivers.normalise(
                config: config, headers: headers(signature: Receivers.hubSignature(secret: Self.secret, body: deleted)), body: deleted
            ).isEmpty)
        let noEvent = rejection {
            try Receivers.normalise(
                config: config, headers: [("X-Hub-Signature-256", Receivers.hubSignature(secret: Self.secret, body: ping))], body: ping)
        }
        #expect(noEvent?.status == 400 && noEvent?.reason == "header X-GitHub-Event: missing")
    }

    /// GitHub's other content type: `payload=<url-encoded JSON>`, signed as sent.
    @Test func formEncodedDeliveries() throws {
        let json = try Fixture.text("github-registry-package-published")
        let encoded = json.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let body = bytes("payload=" + encoded)
        var h = headers(signature: Receivers.hubSignature(secret: Self.secret, body: body))
        h[0] = ("Content-Type", "application/x-www-form-urlencoded")
        #expect(try Receivers.normalise(config: config, headers: h, body: body).first?.subject.tag == "v2.1.0")
        let bad = bytes("payload=%7")
        h[h.count - 1] = ("X-Hub-Signature-256", Receivers.hubSignature(secret: Self.secret, body: bad))
        #expect(rejection { try Receivers.normalise(config: config, headers: h, body: bad) }?.reason.contains("%-escape") == true)
    }

    @Test func aReceiverWithoutASecretVerifiesNothing() throws {
        let c = ReceiverConfig(name: "github", format: .github)
        #expect(!c.problems.isEmpty)
        let body = try Fixture.bytes("github-registry-package-published")
        let r = rejection { try Receivers.normalise(config: c, headers: headers(signature: Self.fixtureSignature), body: body) }
        #expect(r?.status == 500 && r?.code == .receiverMisconfigured)
    }

    @Test func malformedPackages() {
        func reason(_ json: String) -> String? {
            let body = bytes(json)
            return rejection {
                try Receivers.normalise(
                    config: config, headers: headers(signature: Receivers.hubSignature(secret: Self.secret, body: body)), body: body)
            }?.reason
        }
        #expect(reason(#"{"action":"published"}"#) == "registry_package: missing")
        #expect(reason(#"{"action":"published","registry_package":{"package_type":"CONTAINER","name":"x"}}"#) == "registry_package.owner: missing")
        #expect(
            reason(#"{"action":"published","registry_package":{"package_type":"CONTAINER","name":"x","owner":{"login":"o"},"package_version":{}}}"#)
                == "registry_package.package_version.container_metadata.tag: missing (the version names neither a tag nor a digest)")
        #expect(
            reason(
                #"{"action":"published","registry_package":{"package_type":"CONTAINER","name":"x","owner":{"login":"o"},"package_version":{"container_metadata":{"tag":{"name":"v1","digest":"md5:"}}}}}"#
            )?
            .hasPrefix("registry_package.package_version.container_metadata.tag.digest:") == true)
        #expect(
            reason(#"{"action":"published","registry_package":{"package_type":"CONTAINER","name":"bad name","owner":{"login":"o"}}}"#)?.hasPrefix(
                "registry_package.name:") == true)
    }
}
