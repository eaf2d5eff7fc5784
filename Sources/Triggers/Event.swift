import CEL
import Crypto
import Documents
import Foundation

/// One thing that happened, in the one shape every trigger source produces: a registry webhook of any vendor, a
/// registry or HTTP poller, the scheduler, or a person firing a trigger by hand. Triggers select events with CEL
/// over ``celValue`` and start workflows with them; the dispatcher deduplicates on ``id``.
///
/// `data` holds what the vendor said beyond the subject, under the same names for every vendor where it has them:
/// `action` (the vendor's verb: `push`, `published`, `PUSH_ARTIFACT` …), `actor` (who did it), `vendorEventId`
/// (the vendor's own delivery or event id — kept, never used as ``id``), `size` (bytes of the target), `url`.
public struct TriggerEvent: Codable, Sendable, Equatable {
    /// What happened. Registry kinds have derived ids (``registryEventID(kind:registry:repository:tag:digest:)``).
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// A manifest (or, with `includeBlobs`, a blob) was pushed; the tag it was pushed under, if any, is in the subject.
        case registryPush = "registry.push"
        /// A tag was set on content already in the registry (a poller seeing a tag move, or a generic sender).
        case registryTag = "registry.tag"
        /// A manifest (digest), a tag (tag, no digest) or a whole repository (neither) was deleted.
        case registryDelete = "registry.delete"
        /// Content was pulled: only from receivers configured with `includePulls`.
        case registryPull = "registry.pull"
        /// The scheduler's tick for a cron trigger.
        case scheduleTick = "schedule.tick"
        /// An HTTP poller saw a new item.
        case pollChange = "poll.change"
        /// A person fired a trigger by hand.
        case manualFire = "manual.fire"

        /// Whether the kind is about registry content (its id is derived from kind and subject).
        public var isRegistry: Bool { rawValue.hasPrefix("registry.") }
    }

    /// Who reported the event.
    public struct Source: Codable, Sendable, Equatable {
        /// The receiver's (or poller's, or trigger's) name.
        public var receiver: String
        /// The receiver format (``ReceiverFormat`` raw value), or `schedule`, `poll`, `http`, `manual`.
        public var format: String
        /// The vendor's own name for what happened: `push` (distribution), `PUSH_ARTIFACT` or `harbor.artifact.pushed`
        /// (Harbor), `zotregistry.image.updated` (zot), `registry_package.published` (GitHub), `push` (Docker Hub), the
        /// kind (generic).
        public var vendor: String
        /// When it happened according to the sender (RFC 3339, UTC, milliseconds), if the sender said.
        public var occurredAt: String?

        public init(receiver: String, format: String, vendor: String, occurredAt: String? = nil) {
            self.receiver = receiver
            self.format = format
            self.vendor = vendor
            self.occurredAt = occurredAt
        }
    }

    /// The registry content the event is about. Empty `registry` and `repository` for events about no content
    /// (schedule ticks, most manual and HTTP poll events).
    public struct Subject: Codable, Sendable, Equatable {
        /// The registry's canonical name (`registry.example.com`, `ghcr.io`, `docker.io`), lower case.
        public var registry: String
        public var repository: String
        public var tag: String?
        /// `algorithm:encoded`, as the registry reported it; nil until resolved when ``TriggerEvent/needsDigest``.
        public var digest: String?
        public var mediaType: String?

        public init(registry: String, repository: String, tag: String? = nil, digest: String? = nil, mediaType: String? = nil) {
            self.registry = registry
            self.repository = repository
            self.tag = tag
            self.digest = digest
            self.mediaType = mediaType
        }

        /// `registry/repository[:tag][@digest]`, or "" for an empty subject.
        public var reference: String {
            guard !registry.isEmpty || !repository.isEmpty else { return "" }
            var s = registry.isEmpty ? repository : registry + "/" + repository
            if let tag { s += ":" + tag }
            if let digest { s += "@" + digest }
            return s
        }
    }

    /// The delivery as received, for inspection: headers with every credential replaced by `<redacted>`, and the
    /// body cut at the receiver's `rawBodyLimit`. Events normalised from one delivery share it.
    public struct Raw: Codable, Sendable, Equatable {
        public var headers: [String: String]
        public var body: String
        /// Whether `body` was cut.
        public var truncated: Bool

        public init(headers: [String: String], body: String, truncated: Bool) {
            self.headers = headers
            self.body = body
            self.truncated = truncated
        }
    }

    public var id: String
    public var source: Source
    public var kind: Kind
    public var subject: Subject
    public var data: JSONValue
    public var raw: Raw?
    /// The subject names a tag but no digest (Docker Hub never sends one): the dispatcher resolves the tag with a
    /// registry HEAD and calls ``withDigest(_:)`` before deduplicating or starting anything.
    public var needsDigest: Bool

    /// An event with a caller-chosen id (schedule ticks, manual fires, HTTP poll items).
    public init(
        id: String, source: Source, kind: Kind, subject: Subject = Subject(registry: "", repository: ""), data: Value = .map([]),
        raw: Raw? = nil, needsDigest: Bool = false
    ) {
        self.id = id
        self.source = source
        self.kind = kind
        self.subject = subject
        self.data = JSONValue(data)
        self.raw = raw
        self.needsDigest = needsDigest
    }

    /// A registry event: its id is derived from kind and subject, so every reporter of the same change (a webhook,
    /// a poller) gives the same id. `needsDigest` is set when a push or tag event names a tag without a digest.
    public static func registry(kind: Kind, subject: Subject, source: Source, data: Value = .map([]), raw: Raw? = nil) -> TriggerEvent {
        let id = registryEventID(kind: kind, registry: subject.registry, repository: subject.repository, tag: subject.tag, digest: subject.digest)
        let needsDigest = (kind == .registryPush || kind == .registryTag) && subject.digest == nil && subject.tag != nil
        return TriggerEvent(id: id, source: source, kind: kind, subject: subject, data: data, raw: raw, needsDigest: needsDigest)
    }

    /// `sha256:` and the hex SHA-256 of `warden-event-v1\n{kind}\n{registry}\n{repository}\n{tag}\n{digest}` (absent
    /// tag or digest as empty lines): the identity of a registry change, whoever reports it.
    public static func registryEventID(kind: Kind, registry: String, repository: String, tag: String?, digest: String?) -> String {
        let text = "warden-event-v1\n\(kind.rawValue)\n\(registry)\n\(repository)\n\(tag ?? "")\n\(digest ?? "")"
        return "sha256:" + hex(SHA256.hash(data: Data(text.utf8)))
    }

    /// The event with its digest resolved (after a registry HEAD of the tag): `needsDigest` cleared and, for a
    /// registry event, the id derived again from the complete subject.
    public func withDigest(_ digest: String) -> TriggerEvent {
        var e = self
        e.subject.digest = digest
        e.needsDigest = false
        if kind.isRegistry {
            e.id = Self.registryEventID(kind: kind, registry: subject.registry, repository: subject.repository, tag: subject.tag, digest: digest)
        }
        return e
    }

    enum CodingKeys: String, CodingKey { case id, source, kind, subject, data, raw, needsDigest }

    /// Decodes the stored form; `data`, `raw` and `needsDigest` may be absent (an event written by hand, for
    /// `warden trigger check`).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        source = try c.decode(Source.self, forKey: .source)
        kind = try c.decode(Kind.self, forKey: .kind)
        subject = try c.decode(Subject.self, forKey: .subject)
        data = try c.decodeIfPresent(JSONValue.self, forKey: .data) ?? JSONValue(.map([]))
        raw = try c.decodeIfPresent(Raw.self, forKey: .raw)
        needsDigest = try c.decodeIfPresent(Bool.self, forKey: .needsDigest) ?? false
    }

    /// The event as CEL sees it, bound as `event` (see ``bindings``): `id`, `kind`, `needsDigest`,
    /// `source.{receiver, format, vendor, occurredAt}`, `subject.{registry, repository, tag, digest, mediaType,
    /// reference}` and `data`. Absent strings are "" (so `event.subject.tag.startsWith('v')` is false for a push by
    /// digest, not an error). The raw delivery is not part of it.
    public var celValue: Value {
        func map(_ fields: [(String, Value)]) -> Value { .map(fields.map { (.string($0.0), $0.1) }) }
        return map([
            ("id", .string(id)), ("kind", .string(kind.rawValue)), ("needsDigest", .bool(needsDigest)),
            (
                "source",
                map([
                    ("receiver", .string(source.receiver)), ("format", .string(source.format)), ("vendor", .string(source.vendor)),
                    ("occurredAt", .string(source.occurredAt ?? "")),
                ])
            ),
            (
                "subject",
                map([
                    ("registry", .string(subject.registry)), ("repository", .string(subject.repository)), ("tag", .string(subject.tag ?? "")),
                    ("digest", .string(subject.digest ?? "")), ("mediaType", .string(subject.mediaType ?? "")),
                    ("reference", .string(subject.reference)),
                ])
            ),
            ("data", data.value),
        ])
    }

    /// The variables a trigger's selector and inputs are evaluated with: `event`.
    public var bindings: [String: Value] { ["event": celValue] }

    public static func == (a: TriggerEvent, b: TriggerEvent) -> Bool {
        a.id == b.id && a.source == b.source && a.kind == b.kind && a.subject == b.subject && a.raw == b.raw && a.needsDigest == b.needsDigest
            && a.data.value.jsonText(sortedKeys: true) == b.data.value.jsonText(sortedKeys: true)
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
