import CEL

/// Harbor webhooks, in either payload format a Harbor policy can choose:
///
/// - Default: `{"type": "PUSH_ARTIFACT", "occur_at": <unix seconds>, "operator": …, "event_data": {"resources":
///   [{"digest", "tag", "resource_url"}], "repository": {"name", "namespace", "repo_full_name", "repo_type"}}}`;
/// - CloudEvents: `type` `harbor.artifact.pushed` (`.deleted`, `.pulled`), `data` the same as `event_data`, the
///   `operator` extension — structured (what Harbor sends) or binary mode.
///
/// Each resource is one event: artifact pushes are `registry.push`, deletes `registry.delete`, pulls
/// `registry.pull` (with `includePulls`). Harbor writes an untagged artifact's digest in `tag`: such a tag is
/// dropped. Other event types (scans, quotas, replication, retention) are accepted and carry nothing. The registry
/// is the configured one, else the host of `resource_url`. Harbor authenticates with its policy's "auth header",
/// sent as `Authorization`.
enum Harbor {
    static let kinds: [String: TriggerEvent.Kind] = [
        "PUSH_ARTIFACT": .registryPush, "DELETE_ARTIFACT": .registryDelete, "PULL_ARTIFACT": .registryPull,
        "harbor.artifact.pushed": .registryPush, "harbor.artifact.deleted": .registryDelete, "harbor.artifact.pulled": .registryPull,
    ]

    static func read(_ d: Delivery) throws(ReceiverRejection) -> [Draft] {
        if let events = try CloudEvent.read(d) {
            var out: [Draft] = []
            for ce in events {
                guard let kind = kinds[ce.type], d.keeps(pull: kind == .registryPull, blob: false) else { continue }
                var extras: [(String, Value)] = [("vendorEventId", .string(ce.id))]
                if let request = ce.extensions["requestid"] { extras.append(("requestId", .string(request))) }
                out += try artifacts(
                    ce.requireData(), kind: kind, vendor: ce.type, actor: ce.extensions["operator"], occurredAt: ce.time, extras: extras, d)
            }
            return out
        }
        try d.requireContentType(["application/json"])
        let root = try d.json().object()
        let type = try root.requireString("type")
        guard let kind = kinds[type], d.keeps(pull: kind == .registryPull, blob: false) else { return [] }
        let occurredAt = try root.seconds("occur_at").map(rfc3339(seconds:))
        return try artifacts(
            root.require("event_data").object(), kind: kind, vendor: type, actor: root.string("operator"), occurredAt: occurredAt, extras: [], d)
    }

    static func artifacts(
        _ data: JSONNode, kind: TriggerEvent.Kind, vendor: String, actor: String?, occurredAt: String?, extras: [(String, Value)], _ d: Delivery
    ) throws(ReceiverRejection) -> [Draft] {
        let repo = try data.require("repository").object()
        let repository: String
        if try repo.string("repo_full_name") != nil {
            repository = try repo.repository("repo_full_name")
        } else {
            let namespace = try repo.requireString("namespace")
            let name = try repo.requireString("name")
            repository = namespace + "/" + name
            guard Names.isRepository(repository) else {
                throw .malformed("\(repo.path): \(Names.quoted(repository)) (namespace/name) is not a repository name")
            }
        }
        var out: [Draft] = []
        for r in try data.require("resources").list() {
            let resource = try r.object()
            let digest = try resource.digest("digest")
            var tag: String?
            if let t = try resource.string("tag"), !Names.isDigest(t) { tag = try resource.tag("tag") }
            if kind != .registryDelete && digest == nil { throw .malformed("\(resource.at("digest")): missing") }
            let url = try resource.string("resource_url")
            let host = url.flatMap { u in u.firstIndex(of: "/").map { String(u[..<$0]) } }
            let registry = try d.registry(host, at: resource.at("resource_url"))
            var fields: [(String, Value)] = [("action", .string(vendor)), ("actor", optional(actor))]
            fields += extras
            if let url { fields.append(("url", .string(url))) }
            if let type = try repo.string("repo_type") { fields.append(("repoType", .string(type))) }
            out.append(
                Draft(
                    kind: kind, subject: TriggerEvent.Subject(registry: registry, repository: repository, tag: tag, digest: digest), vendor: vendor,
                    occurredAt: occurredAt, data: fields))
        }
        return out
    }
}
