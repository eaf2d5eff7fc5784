import CEL
import Foundation

/// GitHub `package` and `registry_package` webhooks for container packages (ghcr.io), signed with
/// `X-Hub-Signature-256`, as JSON or form-encoded (`payload=`). Actions `published` and `updated` are
/// `registry.push` events of `ghcr.io/{owner}/{package}` (lower case, as ghcr.io names them) with the tag and
/// digest of `package_version.container_metadata.tag`. `ping`, other event types and packages that are not
/// containers (npm, maven …) are accepted and carry nothing.
enum GitHub {
    static func read(_ d: Delivery) throws(ReceiverRejection) -> [Draft] {
        guard let event = d.headers["X-GitHub-Event"]?.trimmingCharacters(in: .whitespaces), !event.isEmpty else {
            throw .malformed("header X-GitHub-Event: missing")
        }
        guard event == "package" || event == "registry_package" else { return [] }
        try d.requireContentType(["application/json", "application/x-www-form-urlencoded"])
        let root: JSONNode
        if d.headers.mediaType == "application/x-www-form-urlencoded" {
            root = try JSONNode.parse(formPayload(d.body), what: "the form field payload").object()
        } else {
            root = try d.json().object()
        }
        let action = try root.requireString("action")
        guard action == "published" || action == "updated" else { return [] }
        let package = try root.require(event).object()
        var type = try package.string("package_type")
        if type == nil { type = try package.string("ecosystem") }
        guard type?.lowercased() == "container" else { return [] }

        let owner = try package.require("owner").object().requireString("login")
        let name = try package.requireString("name").replacingOccurrences(of: "%2F", with: "/").replacingOccurrences(of: "%2f", with: "/")
        let repository = (owner + "/" + name).lowercased()
        guard Names.isRepository(repository) else {
            throw .malformed("\(package.at("name")): \(Names.quoted(repository)) (owner/name) is not a repository name")
        }
        let version = try package.require("package_version").object()
        let metadata = try version.child("container_metadata")?.object()
        let tagNode = try metadata?.child("tag")?.object()
        let tag = try tagNode?.tag("name")
        var digest = try tagNode?.digest("digest")
        if digest == nil, let v = try version.string("version"), Names.isDigest(v) { digest = v }
        if digest == nil && tag == nil {
            throw .malformed("\(version.at("container_metadata.tag")): missing (the version names neither a tag nor a digest)")
        }
        let mediaType = try metadata?.child("manifest")?.object().mediaType("media_type")

        var data: [(String, Value)] = [("action", .string(action))]
        data.append(("actor", optional(try root.child("sender")?.object().string("login"))))
        data.append(("vendorEventId", optional(d.headers["X-GitHub-Delivery"])))
        if let url = try version.string("html_url") { data.append(("url", .string(url))) }
        if let id = try version.int("id") { data.append(("packageVersionId", .int(id))) }
        let subject = TriggerEvent.Subject(
            registry: d.config.registry?.lowercased() ?? "ghcr.io", repository: repository, tag: tag, digest: digest, mediaType: mediaType)
        return [Draft(kind: .registryPush, subject: subject, vendor: "\(event).\(action)", occurredAt: try package.time("updated_at"), data: data)]
    }

    /// The `payload` field of a form-encoded body, percent-decoded.
    static func formPayload(_ body: [UInt8]) throws(ReceiverRejection) -> [UInt8] {
        for field in body.split(separator: UInt8(ascii: "&")) {
            guard field.starts(with: Array("payload=".utf8)) else { continue }
            var out: [UInt8] = []
            var i = field.startIndex + 8
            while i < field.endIndex {
                let c = field[i]
                if c == UInt8(ascii: "+") {
                    out.append(0x20)
                } else if c == UInt8(ascii: "%") {
                    guard i + 2 < field.endIndex, let hi = Delivery.nibble(field[i + 1]), let lo = Delivery.nibble(field[i + 2]) else {
                        throw .malformed("the form field payload has a bad %-escape at byte \(i)")
                    }
                    out.append(hi << 4 | lo)
                    i += 2
                } else {
                    out.append(c)
                }
                i += 1
            }
            return out
        }
        throw .malformed("the form body has no payload field")
    }
}
