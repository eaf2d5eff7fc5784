import CEL

/// CNCF Distribution notifications: an envelope `{"events": [...]}` of events with `action` (push, pull, mount,
/// delete), `target` (`mediaType`, `digest`, `size`, `repository`, `url`, `tag`), `request` (`host` …), `actor`
/// and `source`.
///
/// - A manifest push is one `registry.push` carrying the digest and, when pushed by tag, the tag (a push by tag
///   is not reported again as `registry.tag`).
/// - Blob pushes and mounts (a media type that is not a manifest's) are reported only with `includeBlobs`, and
///   pulls only with `includePulls` (as `registry.pull`); events with an action Distribution may add later are
///   skipped. Skipped events are not validated beyond their action, so one odd blob event cannot hold up the
///   registry's queue of deliveries.
/// - A delete with a digest is a manifest delete (`registry.delete` with the digest): Distribution sends blob
///   deletes the same way, without a media type, so they cannot be told apart. A delete with a tag and no digest
///   is a tag delete, and one with neither a repository delete.
/// - The registry is the receiver's configured one, else `request.host`.
enum Distribution {
    static let mediaTypes = [
        "application/vnd.docker.distribution.events.v2+json", "application/vnd.docker.distribution.events.v1+json", "application/json",
    ]

    static func read(_ d: Delivery) throws(ReceiverRejection) -> [Draft] {
        try d.requireContentType(mediaTypes)
        let root = try d.json().object()
        guard let events = try root.child("events") else { throw .malformed("events: missing (a distribution envelope is {\"events\": [...]})") }
        var out: [Draft] = []
        for e in try events.list() {
            if let draft = try event(e.object(), d) { out.append(draft) }
        }
        return out
    }

    static func event(_ e: JSONNode, _ d: Delivery) throws(ReceiverRejection) -> Draft? {
        let action = try e.requireString("action")
        let target = try e.require("target").object()
        let mediaType = try target.child("mediaType")?.string()
        let hasTag = !(try target.child("tag")?.string() ?? "").isEmpty
        let manifest = mediaType.map { Names.manifestMediaTypes.contains($0.lowercased()) } ?? hasTag
        let kind: TriggerEvent.Kind
        let blob: Bool
        switch action {
        case "push":
            kind = .registryPush
            blob = !manifest
        case "pull":
            kind = .registryPull
            blob = !manifest
        case "mount":
            kind = .registryPush
            blob = true
        case "delete":
            kind = .registryDelete
            blob = mediaType.map { !Names.manifestMediaTypes.contains($0.lowercased()) } ?? false
        default:
            return nil
        }
        guard d.keeps(pull: kind == .registryPull, blob: blob) else { return nil }

        let repository = try target.repository("repository")
        let tag = try target.tag("tag")
        let digest = try target.digest("digest")
        if kind != .registryDelete && digest == nil { throw .malformed("\(target.at("digest")): missing") }
        let request = try e.child("request")?.object()
        let registry = try d.registry(try request?.string("host"), at: e.at("request.host"))

        var data: [(String, Value)] = [("action", .string(action))]
        data.append(("actor", optional(try e.child("actor")?.object().string("name"))))
        data.append(("vendorEventId", optional(try e.string("id"))))
        var size = try target.int("size")
        if size == nil { size = try target.int("length") }
        if let size { data.append(("size", .int(size))) }
        if let url = try target.string("url") { data.append(("url", .string(url))) }
        if let from = try target.string("fromRepository") { data.append(("fromRepository", .string(from))) }
        if blob { data.append(("blob", .bool(true))) }
        if let request {
            var fields: [(Value, Value)] = []
            for key in ["id", "addr", "host", "method", "useragent"] {
                if let v = try request.string(key) { fields.append((.string(key), .string(v))) }
            }
            data.append(("request", .map(fields)))
        }
        if let source = try e.child("source")?.object() {
            var fields: [(Value, Value)] = []
            for key in ["addr", "instanceID"] {
                if let v = try source.string(key) { fields.append((.string(key), .string(v))) }
            }
            data.append(("source", .map(fields)))
        }
        let subject = TriggerEvent.Subject(
            registry: registry, repository: repository, tag: tag, digest: digest, mediaType: try target.mediaType("mediaType"))
        return Draft(kind: kind, subject: subject, vendor: action, occurredAt: try e.time("timestamp"), data: data)
    }
}
