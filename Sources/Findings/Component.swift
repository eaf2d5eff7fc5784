import Documents
import Foundation

/// A declared component: a product made of artefacts, some followed by tag (each new digest of the tag is a new
/// version to scan), some pinned by digest.
///
/// ```yaml
/// apiVersion: warden.dev/v1
/// kind: Component
/// metadata: {name: shop}
/// spec:
///   version: "1.4"
///   artefacts:
///     - registry.example/shop/web:1.4          # followed: every new digest of the tag
///     - registry.example/shop/db@sha256:…      # one version
/// ```
public struct ComponentDocument: Sendable, Hashable {
    /// A tag the enumerator follows.
    public struct Tag: Sendable, Hashable {
        public var registry, repository, tag: String
        public init(registry: String, repository: String, tag: String) {
            self.registry = registry
            self.repository = repository
            self.tag = tag
        }
    }

    public var name: String
    public var version: String
    public var tags: [Tag]
    public var artefacts: [ArtefactID]

    /// Reads a component document; errors are ``YAMLError``s at the offending key or value.
    public static func parse(_ text: String, file: String) throws -> ComponentDocument {
        let root = try YAMLValue.parse(text, file: file)
        let top = try root.fields(allowed: ["apiVersion", "kind", "metadata", "spec"])
        guard let api = top["apiVersion"] else { throw root.error("apiVersion is missing (expected warden.dev/v1)") }
        guard try api.string() == "warden.dev/v1" else { throw api.error("apiVersion must be warden.dev/v1") }
        guard let kind = top["kind"] else { throw root.error("kind is missing (expected Component)") }
        guard try kind.string() == "Component" else { throw kind.error("kind must be Component") }
        guard let metadata = top["metadata"] else { throw root.error("metadata.name is missing") }
        guard let nameValue = try metadata.fields(allowed: ["name", "description"])["name"] else { throw metadata.error("metadata.name is missing") }
        let name = try nameValue.string()
        guard (1...255).contains(name.utf8.count), !name.contains("@") else { throw nameValue.error("a component name is 1 to 255 bytes without @") }
        guard let spec = top["spec"] else { throw root.error("spec is missing: a component needs spec.artefacts") }
        let fields = try spec.fields(allowed: ["version", "artefacts"])
        let version = try fields["version"]?.string() ?? ""
        guard version.utf8.count <= 255 else { throw fields["version"]!.error("a version is at most 255 bytes") }
        guard let list = fields["artefacts"] else { throw spec.error("spec.artefacts is missing") }
        var doc = ComponentDocument(name: name, version: version, tags: [], artefacts: [])
        let items = try list.list()
        guard !items.isEmpty, items.count <= 1000 else { throw list.error("a component has 1 to 1000 artefacts") }
        for item in items {
            let text = try item.string()
            guard let parsed = Self.reference(text) else {
                throw item.error("\(text.prefix(200)) is not registry/repository:tag or registry/repository@sha256:<64 hex digits>")
            }
            switch parsed {
            case .tag(let tag): doc.tags.append(tag)
            case .version(let id): doc.artefacts.append(id)
            }
        }
        return doc
    }

    /// What an artefact reference names: a tag to follow or one version.
    public enum Reference: Sendable, Hashable {
        case tag(Tag)
        case version(ArtefactID)
    }

    /// `registry/repository:tag` or `registry/repository@sha256:<hex>`; nil for anything else.
    public static func reference(_ text: String) -> Reference? {
        guard text.utf8.count <= 512, let slash = text.firstIndex(of: "/"), slash != text.startIndex else { return nil }
        let registry = String(text[..<slash])
        let rest = text[text.index(after: slash)...]
        if let at = rest.firstIndex(of: "@") {
            let repository = String(rest[..<at])
            let digest = String(rest[rest.index(after: at)...])
            let hex = digest.dropFirst("sha256:".count)
            guard !repository.isEmpty, digest.hasPrefix("sha256:"), hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                return nil
            }
            return .version(ArtefactID(registry: registry, repository: repository, digest: digest))
        }
        guard let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") else { return nil }
        let repository = String(rest[..<colon])
        let tag = String(rest[rest.index(after: colon)...])
        guard !repository.isEmpty, (1...128).contains(tag.utf8.count) else { return nil }
        return .tag(Tag(registry: registry, repository: repository, tag: tag))
    }
}
