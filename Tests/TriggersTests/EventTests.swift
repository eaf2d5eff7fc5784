import CEL
import Documents
import Foundation
import Testing

@testable import Triggers

@Suite struct EventTests {
    let push = TriggerEvent.registry(
        kind: .registryPush,
        subject: TriggerEvent.Subject(
            registry: "registry.example.com", repository: "team/shop", tag: "1.4.2", digest: manifestDigest,
            mediaType: "application/vnd.oci.image.manifest.v1+json"),
        source: TriggerEvent.Source(receiver: "poller", format: "poll", vendor: "registry.push"), data: .map([(.string("actor"), .string("ci"))]))

    /// The id is the documented hash (computed independently with sha256sum over the same text).
    @Test func theRegistryEventIDIsTheDocumentedHash() {
        // printf 'warden-event-v1\nregistry.push\nregistry.example.com\nteam/shop\n1.4.2\nsha256:6c3c…9b3b' | sha256sum
        #expect(push.id == "sha256:ac45fec58b76be3e423cb87d91d53c92d94724c7122c9754d6fd050fdc1acde6")
        #expect(
            TriggerEvent.registryEventID(
                kind: .registryPush, registry: "registry.example.com", repository: "team/shop", tag: "1.4.2", digest: manifestDigest)
                == push.id)
        // Every field takes part.
        let others = [
            TriggerEvent.registryEventID(
                kind: .registryTag, registry: "registry.example.com", repository: "team/shop", tag: "1.4.2", digest: manifestDigest),
            TriggerEvent.registryEventID(
                kind: .registryPush, registry: "registry.example.org", repository: "team/shop", tag: "1.4.2", digest: manifestDigest),
            TriggerEvent.registryEventID(
                kind: .registryPush, registry: "registry.example.com", repository: "team/shop2", tag: "1.4.2", digest: manifestDigest),
            TriggerEvent.registryEventID(
                kind: .registryPush, registry: "registry.example.com", repository: "team/shop", tag: nil, digest: manifestDigest),
            TriggerEvent.registryEventID(kind: .registryPush, registry: "registry.example.com", repository: "team/shop", tag: "1.4.2", digest: nil),
        ]
        #expect(Set(others + [push.id]).count == 6)
        // The separators keep fields apart: moving a character across a boundary changes the id.
        #expect(
            TriggerEvent.registryEventID(kind: .registryPush, registry: "a", repository: "b/c", tag: nil, digest: nil)
                != TriggerEvent.registryEventID(kind: .registryPush, registry: "a/b", repository: "c", tag: nil, digest: nil))
    }

    @Test func aTagWithoutADigestNeedsOneAndWithDigestCompletesTheID() {
        var subject = push.subject
        subject.digest = nil
        let partial = TriggerEvent.registry(kind: .registryPush, subject: subject, source: push.source)
        #expect(partial.needsDigest)
        #expect(partial.id != push.id)
        let resolved = partial.withDigest(manifestDigest)
        #expect(!resolved.needsDigest)
        #expect(resolved.subject.digest == manifestDigest)
        #expect(resolved.id == push.id)
        // Deletes never need one; manual events keep their id.
        #expect(!TriggerEvent.registry(kind: .registryDelete, subject: subject, source: push.source).needsDigest)
        let manual = TriggerEvent(id: "fire-1", source: push.source, kind: .manualFire)
        #expect(manual.withDigest(manifestDigest).id == "fire-1")
    }

    @Test func theCELViewHasEveryFieldAndEmptyStringsForAbsentOnes() throws {
        let v = push.celValue
        #expect(v["kind"]?.celEquals(.string("registry.push")) == true)
        #expect(v["subject"]?["repository"]?.celEquals(.string("team/shop")) == true)
        #expect(v["subject"]?["reference"]?.celEquals(.string("registry.example.com/team/shop:1.4.2@" + manifestDigest)) == true)
        #expect(v["source"]?["receiver"]?.celEquals(.string("poller")) == true)
        #expect(v["source"]?["occurredAt"]?.celEquals(.string("")) == true)
        #expect(v["data"]?["actor"]?.celEquals(.string("ci")) == true)
        #expect(v["needsDigest"]?.celEquals(.bool(false)) == true)
        let byDigest = TriggerEvent.registry(
            kind: .registryPush, subject: TriggerEvent.Subject(registry: "r.example", repository: "a/b", digest: manifestDigest), source: push.source)
        #expect(byDigest.celValue["subject"]?["tag"]?.celEquals(.string("")) == true)
        #expect(try Program("event.subject.tag.startsWith('v')").evaluate(byDigest.bindings).celEquals(.bool(false)))
    }

    /// Selectors as triggers write them: a repository pattern with matches(), a tag prefix with startsWith().
    @Test(arguments: [
        ("event.subject.repository.matches('^team/[a-z]+$') && event.subject.tag.startsWith('1.')", true),
        ("event.subject.repository.matches('^other/.*')", false),
        ("event.kind == 'registry.push' && event.data.actor == 'ci'", true),
        ("event.subject.registry == 'registry.example.com' && !event.needsDigest", true),
        ("event.subject.tag.startsWith('v')", false),
    ])
    func selectorsDecideOverTheEvent(expression: String, expected: Bool) throws {
        let condition = try CELCondition(try YAMLValue.parse("\"\(expression)\"", file: "selector.yaml"))
        #expect(try condition.test(push.bindings).get() == expected)
    }

    @Test func eventsRoundTripThroughJSON() throws {
        var e = push
        e.raw = TriggerEvent.Raw(headers: ["Content-Type": "application/json"], body: "{}", truncated: false)
        e.source.occurredAt = "2026-03-02T09:14:07.000Z"
        let encoded = try JSONEncoder().encode(e)
        let decoded = try JSONDecoder().decode(TriggerEvent.self, from: encoded)
        #expect(decoded == e)
        var changed = e
        changed.data = JSONValue(.map([(.string("actor"), .string("someone else"))]))
        #expect(changed != e)
        let text = String(decoding: encoded, as: UTF8.self)
        #expect(text.contains("\"kind\":\"registry.push\""))
    }

    @Test func referencesOfPartialSubjects() {
        #expect(TriggerEvent.Subject(registry: "", repository: "").reference == "")
        #expect(TriggerEvent.Subject(registry: "docker.io", repository: "library/nginx", tag: "1.27").reference == "docker.io/library/nginx:1.27")
        #expect(TriggerEvent.Subject(registry: "ghcr.io", repository: "a/b", digest: manifestDigest).reference == "ghcr.io/a/b@" + manifestDigest)
    }
}
