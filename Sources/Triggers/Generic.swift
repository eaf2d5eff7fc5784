import CEL

/// Warden's own format, for scripts, CI jobs and registries Warden has no reader for. The body is one event or
/// `{"events": [...]}`; an event is
///
/// ```json
/// {"kind": "registry.push", "subject": {"registry": "…", "repository": "…", "tag": "…", "digest": "…",
///  "mediaType": "…"}, "data": {…}, "id": "…", "occurredAt": "RFC 3339"}
/// ```
///
/// Registry kinds (`registry.push`, `registry.tag`, `registry.delete`, `registry.pull`) need a subject with a
/// repository, and take the derived id: a given `id` is kept as `data.vendorEventId`. `poll.change` and
/// `manual.fire` need an `id` (1 to 200 visible ASCII characters) and may have a subject. `schedule.tick` is
/// Warden's own and is refused. Unknown members are refused. The request is signed: `X-Warden-Timestamp` (Unix
/// seconds) and `X-Warden-Signature: sha256=` hex HMAC-SHA256 of `{timestamp}.{body}` with the receiver's secret.
enum Generic {
    static let eventKeys: Set<String> = ["kind", "subject", "data", "id", "occurredAt"]
    static let subjectKeys: Set<String> = ["registry", "repository", "tag", "digest", "mediaType"]

    static func read(_ d: Delivery) throws(ReceiverRejection) -> [Draft] {
        try d.requireContentType(["application/json"])
        let root = try d.json().object()
        if let events = try root.child("events") {
            try only(["events"], in: root)
            var out: [Draft] = []
            for e in try events.list() { out.append(try event(e.object(), d)) }
            return out
        }
        return [try event(root, d)]
    }

    static func only(_ keys: Set<String>, in node: JSONNode) throws(ReceiverRejection) {
        guard case .map(let entries) = node.value else { return }
        for (k, _) in entries {
            if case .string(let s) = k, !keys.contains(s) {
                throw .malformed("\(node.at(s)): unknown member; expected one of \(keys.sorted().joined(separator: ", "))")
            }
        }
    }

    static func event(_ e: JSONNode, _ d: Delivery) throws(ReceiverRejection) -> Draft {
        try only(eventKeys, in: e)
        let kindText = try e.requireString("kind")
        guard let kind = TriggerEvent.Kind(rawValue: kindText), kind != .scheduleTick else {
            let accepted = TriggerEvent.Kind.allCases.filter { $0 != .scheduleTick }.map(\.rawValue)
            throw .unsupported("\(e.at("kind")): \(Names.quoted(kindText)) is not one of \(accepted.joined(separator: ", "))")
        }
        let id = try e.string("id")
        if let id, id.utf8.count > 200 || !id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            throw .malformed("\(e.at("id")): must be 1 to 200 visible ASCII characters")
        }
        var fields: [(String, Value)] = []
        if let data = try e.child("data") {
            guard case .map(let entries) = data.value else { throw .malformed("\(data.path): expected an object, found \(data.typeName)") }
            for (k, v) in entries { if case .string(let s) = k { fields.append((s, v)) } }
        }
        var subject = TriggerEvent.Subject(registry: "", repository: "")
        let s = try e.child("subject")?.object()
        if let s {
            try only(subjectKeys, in: s)
            subject.tag = try s.tag("tag")
            subject.digest = try s.digest("digest")
            subject.mediaType = try s.mediaType("mediaType")
        }
        if kind.isRegistry {
            guard let s else { throw .malformed("\(e.at("subject")): missing (a \(kind.rawValue) event is about a repository)") }
            subject.repository = try s.repository("repository")
            subject.registry = try d.registry(try s.string("registry"), at: s.at("registry"))
            if let id { fields.append(("vendorEventId", .string(id))) }
            return Draft(kind: kind, subject: subject, vendor: kind.rawValue, occurredAt: try e.time("occurredAt"), data: fields)
        }
        guard let id else { throw .malformed("\(e.at("id")): missing (a \(kind.rawValue) event carries its own id)") }
        if let s {
            if try s.string("repository") != nil { subject.repository = try s.repository("repository") }
            if let r = try s.string("registry") { subject.registry = try d.registry(r, at: s.at("registry")) }
        }
        return Draft(kind: kind, subject: subject, vendor: kind.rawValue, occurredAt: try e.time("occurredAt"), data: fields, id: id)
    }
}
