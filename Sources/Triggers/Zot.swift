import CEL

/// zot's events extension: CloudEvents (binary mode by default, structured accepted) of type
/// `zotregistry.image.updated` (`registry.push`) and `zotregistry.image.deleted` (`registry.delete`), whose data
/// is `{"name": repository, "reference": tag or digest, "digest", "mediaType", "manifest"}`. Other types
/// (`zotregistry.repository.created`, `zotregistry.image.lint_failed`) are accepted and carry nothing. zot names
/// no host in its events, so the receiver's `registry` must be configured. zot authenticates with its sink's
/// credentials, sent as `Authorization: Basic …`.
enum Zot {
    static let kinds: [String: TriggerEvent.Kind] = ["zotregistry.image.updated": .registryPush, "zotregistry.image.deleted": .registryDelete]

    static func read(_ d: Delivery) throws(ReceiverRejection) -> [Draft] {
        guard let events = try CloudEvent.read(d) else {
            throw .malformed("not a CloudEvent: zot sends ce-specversion and ce-type headers (binary mode) or application/cloudevents+json")
        }
        var out: [Draft] = []
        for ce in events {
            guard let kind = kinds[ce.type] else { continue }
            let data = try ce.requireData()
            let repository = try data.repository("name")
            var tag: String?
            var digest = try data.digest("digest")
            if let reference = try data.string("reference") {
                if Names.isDigest(reference) {
                    digest = digest ?? reference
                } else {
                    tag = try data.tag("reference")
                }
            }
            if kind == .registryPush && digest == nil { throw .malformed("\(data.at("digest")): missing") }
            let registry = try d.registry(nil, at: "the event (zot names no registry host)")
            var fields: [(String, Value)] = [("action", .string(ce.type)), ("vendorEventId", .string(ce.id)), ("actor", .null)]
            if let channel = ce.extensions["channel"] { fields.append(("channel", .string(channel))) }
            fields.append(("eventSource", .string(ce.source)))
            // The manifest itself is not kept (the dispatcher can fetch it); its length is the target's size.
            if let manifest = try data.string("manifest") { fields.append(("size", .int(Int64(manifest.utf8.count)))) }
            let subject = TriggerEvent.Subject(
                registry: registry, repository: repository, tag: tag, digest: digest, mediaType: try data.mediaType("mediaType"))
            out.append(Draft(kind: kind, subject: subject, vendor: ce.type, occurredAt: ce.time, data: fields))
        }
        return out
    }
}
