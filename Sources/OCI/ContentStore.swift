import Foundation

/// Reads content by descriptor.
public protocol ContentReader: Sendable {
    /// Human-readable name of the store, used in messages (e.g. `localhost:5000/app` or `oci-layout:/tmp/x`).
    var displayName: String { get }
    /// The raw bytes of `descriptor`. Prefer `fetchVerified`, which checks size and digest while streaming.
    func fetch(_ descriptor: Descriptor) async throws -> ByteStream
    /// Whether the store has `descriptor`.
    func exists(_ descriptor: Descriptor) async throws -> Bool
}

/// Writes content; a push of content that does not match its descriptor fails and stores nothing.
public protocol ContentWriter: Sendable {
    func push(_ descriptor: Descriptor, content: ByteStream) async throws
}

/// Maps tags to descriptors.
public protocol TagStore: Sendable {
    /// The descriptor a tag (or a digest string) points to.
    func resolve(_ reference: String) async throws -> Descriptor
    /// Points `tag` at `descriptor`, which must already be stored.
    func tag(_ descriptor: Descriptor, as tag: String) async throws
    func listTags() async throws -> [String]
}

/// Lists manifests whose `subject` is a given manifest.
public protocol ReferrerLister: Sendable {
    /// Referrers of `subject`, optionally filtered by artifact type. A failed lookup throws; it never reports
    /// "no referrers" for a lookup that did not succeed.
    func referrers(of subject: Descriptor, artifactType: String?) async throws -> [Descriptor]
}

/// Optional capability: make a blob available without transferring it (cross-repository mount).
public protocol BlobMounter: Sendable {
    /// Returns true when the blob is now present in the target without a transfer.
    func mount(_ descriptor: Descriptor, from source: any ContentReader) async throws -> Bool
}

/// Optional capability: a manifest by tag (or digest) in one round trip, instead of a resolve and a fetch.
public protocol ManifestByReference: Sendable {
    func getManifest(_ reference: String) async throws -> RawManifest
}

/// A repository: the full family of capabilities a graph copy needs on either side.
public typealias ContentStore = ContentReader & ContentWriter & TagStore & ReferrerLister

extension ContentReader {
    /// Content of `descriptor`, verified against its size and digest while it streams.
    public func fetchVerified(_ descriptor: Descriptor) async throws -> ByteStream {
        try await fetch(descriptor).verifying(descriptor, source: displayName)
    }

    /// A manifest's exact bytes, verified.
    public func fetchManifest(_ descriptor: Descriptor) async throws -> RawManifest {
        guard descriptor.size <= maxManifestSize else {
            throw OCIError(
                .invalidManifest, "manifest \(descriptor.digest) in \(displayName) is \(descriptor.size) bytes; the limit is \(maxManifestSize)")
        }
        let bytes = try await fetchVerified(descriptor).collect(limit: maxManifestSize)
        return try RawManifest(bytes: bytes, mediaType: descriptor.mediaType, digest: descriptor.digest)
    }
}

extension ContentWriter {
    /// Pushes bytes held in memory.
    public func push(_ descriptor: Descriptor, bytes: Data) async throws {
        try await push(descriptor, content: .bytes(bytes))
    }

    public func push(_ manifest: RawManifest) async throws {
        try await push(manifest.descriptor, content: .bytes(manifest.bytes))
    }
}

/// Names of cosign's tag-based attachments for a digest: `sha256-<hex>.sig`, `.att`, `.sbom`.
public enum CosignTags {
    public static let suffixes = ["sig", "att", "sbom"]
    public static func tags(for digest: Digest) -> [String] {
        suffixes.map { "\(digest.tagSchema).\($0)" }
    }
}

/// Builds the referrers descriptor of a manifest (artifactType and annotations copied from it).
public func referrerDescriptor(for manifest: RawManifest) throws -> Descriptor {
    let parsed = try manifest.parsed()
    var d = Descriptor(mediaType: manifest.mediaType, digest: manifest.digest, size: Int64(manifest.bytes.count))
    d.artifactType = parsed.artifactType
    d.annotations = parsed.annotations
    return d
}
