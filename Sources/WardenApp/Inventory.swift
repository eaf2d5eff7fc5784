import Crypto
import Foundation
import Inventory
import OCI
import OCIRegistry
import Trust

/// The inventory job (`warden sbom`, `sbom/generate@v1`): an image's filesystem catalogued into an inventory, with
/// the contents that were not read (over a limit) and why.
public enum InventoryJob {
    /// What is inventoried, as every surface names it.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        /// A registry reference or `oci-layout:PATH[:TAG|@DIGEST]`.
        case image(Location)
        /// `docker-archive:PATH`: a `docker save` tarball.
        case dockerArchive(String)
        /// `dir:PATH`: a root filesystem.
        case directory(String)
        /// `sbom:FILE`: a CycloneDX or SPDX JSON document from any tool, converted.
        case sbom(String)

        public static let schemes = ["docker-archive:", "dir:", "sbom:"]

        /// The source `text` names; an invalid reference is an `OCIError` naming it.
        public init(parsing text: String) throws {
            if text.hasPrefix("dir:") {
                self = .directory(String(text.dropFirst(4)))
            } else if text.hasPrefix("sbom:") {
                self = .sbom(String(text.dropFirst(5)))
            } else if text.hasPrefix("docker-archive:") {
                self = .dockerArchive(String(text.dropFirst("docker-archive:".count)))
            } else {
                self = .image(try Location(parsing: text))
            }
        }

        /// True for registry and layout images: the only sources an attestation can be attached to.
        public var isImage: Bool {
            if case .image = self { return true }
            return false
        }

        public var description: String {
            switch self {
            case .image(let l): l.description
            case .dockerArchive(let p): "docker-archive:" + p
            case .directory(let p): "dir:" + p
            case .sbom(let p): "sbom:" + p
            }
        }
    }

    public struct Result: Sendable {
        public var inventory: Inventory
        /// Files whose contents were not kept for the catalogers (the image's capture limit), with the reason: the
        /// packages they would have shown may be missing.
        public var skipped: [SkippedContent]
        /// The image's descriptor (registry and layout sources): what an attestation of this inventory is about.
        public var subject: Descriptor?
    }

    /// Inventories `source`, naming the subject `name` (what the user gave; default: the source as written).
    /// `platform` picks one image of a multi-platform index (default: this machine's).
    public static func run(_ source: Source, name: String? = nil, platform: Platform? = nil, registries: Registries) async throws -> Result {
        let name = name ?? source.description
        switch source {
        case .directory(let path):
            return inventory(of: try ImageSource.directory(path: path, capture: Catalogers.capture), name: name)
        case .sbom(let path):
            guard let data = FileManager.default.contents(atPath: path) else { throw InventoryError(.notFound, "cannot read \(path)") }
            return Result(inventory: try SBOMReader.read([UInt8](data), name: path), skipped: [])
        case .dockerArchive(let path):
            return inventory(of: try await ImageSource.dockerArchive(path: path, capture: Catalogers.capture), name: name)
        case .image(let location):
            let store = try registries.store(for: location, create: false)
            let subject = try await store.resolve(location.resolvedReference)
            let resolved = try await ImageSource.filesystem(of: subject, in: store, platform: platform, capture: Catalogers.capture)
            var result = inventory(of: resolved, name: name)
            result.subject = subject
            return result
        }
    }

    /// Catalogues `resolved`, naming the subject `name` (what the user gave).
    public static func inventory(of resolved: ImageSource.Resolved, name: String) -> Result {
        let (distro, packages) = Catalogers.catalog(resolved.filesystem)
        let inventory = Inventory(
            subject: .init(
                name: name, digest: resolved.subjectDigest, manifestDigest: resolved.manifestDigest, platform: resolved.platform?.description),
            distro: distro, layers: resolved.filesystem.layers, packages: packages)
        return Result(inventory: inventory, skipped: resolved.filesystem.skipped)
    }

    /// Attaches the inventory of an image source as a signed attestation: the predicate is the document in `format`
    /// (CycloneDX or SPDX JSON), about the digest that was inventoried (not whatever the tag names now).
    public static func attest(
        _ result: Result, of source: Source, format: SBOMFormat, key: P256.Signing.PrivateKey, layout: SignatureFormat, registries: Registries
    ) async throws -> SigningJob.AttestReport {
        guard case .image(let location) = source, let subject = result.subject else {
            throw InventoryError(.unsupported, "\(source): an attestation needs an image in a registry or an OCI layout")
        }
        let predicateType = format == .spdxJSON ? "https://spdx.dev/Document" : "https://cyclonedx.org/bom"
        return try await SigningJob.attest(
            .init(
                location: location.pinned(to: subject.digest), predicateType: predicateType, predicate: try format.render(result.inventory),
                format: layout),
            key: key, registries: registries)
    }

    /// One line per skipped file (at most `limit`, then a count of the rest).
    public static func describe(_ skipped: [SkippedContent], limit: Int = 20) -> [String] {
        var lines = skipped.prefix(limit).map { "content of \($0.path) (layer \($0.layer)) not read: \($0.reason)" }
        if skipped.count > limit { lines.append("… and \(skipped.count - limit) more files whose contents were not read") }
        return lines
    }
}
