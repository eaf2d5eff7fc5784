import CEL

/// Docker Hub repository webhooks: `{"push_data": {"tag", "pushed_at", "pusher"}, "repository": {"repo_name",
/// "namespace", "name", "repo_url" …}, "callback_url"}`, one push of `docker.io/{namespace}/{name}:{tag}`
/// (official images under `library/`). Docker Hub names no digest, so the event has `needsDigest` and an id that
/// is final only after ``TriggerEvent/withDigest(_:)``. Docker Hub cannot sign or add headers: see
/// ``ReceiverConfig/header``. `callback_url` is not kept in `data` (whoever holds it can report the delivery's
/// outcome); it stays in the raw body.
enum DockerHub {
    static func read(_ d: Delivery) throws(ReceiverRejection) -> [Draft] {
        try d.requireContentType(["application/json"])
        let root = try d.json().object()
        let push = try root.require("push_data").object()
        let repo = try root.require("repository").object()
        guard let tag = try push.tag("tag") else { throw .malformed("\(push.at("tag")): missing") }
        var repository: String
        var path = repo.at("repo_name")
        if let namespace = try repo.string("namespace"), let name = try repo.string("name") {
            repository = namespace + "/" + name
            path = repo.at("namespace") + "/name"
        } else {
            repository = try repo.requireString("repo_name")
        }
        if !repository.contains("/") { repository = "library/" + repository }
        guard Names.isRepository(repository) else { throw .malformed("\(path): \(Names.quoted(repository)) is not a repository name") }

        var data: [(String, Value)] = [("action", .string("push")), ("actor", optional(try push.string("pusher")))]
        if let url = try repo.string("repo_url") { data.append(("url", .string(url))) }
        let subject = TriggerEvent.Subject(registry: d.config.registry?.lowercased() ?? "docker.io", repository: repository, tag: tag)
        return [
            Draft(kind: .registryPush, subject: subject, vendor: "push", occurredAt: try push.seconds("pushed_at").map(rfc3339(seconds:)), data: data)
        ]
    }
}
