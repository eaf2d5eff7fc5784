import Foundation

/// An in-memory content store: the twin of the registry and layout stores for unit tests of logic above them.
public actor MemoryStore: ContentStore {
    private var blobs: [Digest: Data] = [:]
    private var mediaTypes: [Digest: String] = [:]
    private var tags: [String: Descriptor] = [:]
    private var referrerIndex: [Digest: [Descriptor]] = [:]
    public nonisolated let displayName: String

    public init(name: String = "memory") {
        self.displayName = name
    }

    public func fetch(_ descriptor: Descriptor) async throws -> ByteStream {
        guard let data = blobs[descriptor.digest] else {
            throw OCIError(.notFound, "\(descriptor.digest) not found in \(displayName)")
        }
        return .bytes(data)
    }

    public func exists(_ descriptor: Descriptor) async throws -> Bool {
        blobs[descriptor.digest] != nil
    }

    public func push(_ descriptor: Descriptor, content: ByteStream) async throws {
        let data = try await content.verifying(descriptor, source: "push to \(displayName)").collect(limit: Int.max)
        if MediaType.isManifest(descriptor.mediaType) {
            try insert(RawManifest(bytes: data, mediaType: descriptor.mediaType, digest: descriptor.digest))
        } else {
            store(descriptor, data)
        }
    }

    private func insert(_ raw: RawManifest) throws {
        store(raw.descriptor, raw.bytes)
        if let subject = try raw.parsed().subject {
            let entry = try referrerDescriptor(for: raw)
            var list = referrerIndex[subject.digest, default: []]
            if !list.contains(where: { $0.digest == entry.digest }) { list.append(entry) }
            referrerIndex[subject.digest] = list
        }
    }

    /// Stores a manifest and points `tag` at it in one step, only when the tag's current digest (`"sha256:..."`,
    /// as an ETag) equals `ifMatch` — a compare-and-set for registries that honour `If-Match`.
    /// With `ifNoneMatch`, the tag must not exist yet (`If-None-Match: *`).
    public func put(_ raw: RawManifest, tag: String?, ifMatch: String?, ifNoneMatch: Bool = false) throws -> Bool {
        if let ifMatch, let tag, let current = tags[tag], "\"\(current.digest)\"" != ifMatch { return false }
        if ifNoneMatch, let tag, tags[tag] != nil { return false }
        try insert(raw)
        if let tag { tags[tag] = raw.descriptor }
        return true
    }

    private func store(_ descriptor: Descriptor, _ data: Data) {
        blobs[descriptor.digest] = data
        mediaTypes[descriptor.digest] = descriptor.mediaType
    }

    public func resolve(_ reference: String) async throws -> Descriptor {
        if let d = tags[reference] { return d }
        if let digest = try? Digest(parsing: reference), let data = blobs[digest] {
            return Descriptor(mediaType: mediaTypes[digest] ?? "application/octet-stream", digest: digest, size: Int64(data.count))
        }
        throw OCIError(.notFound, "\(reference) not found in \(displayName)")
    }

    public func tag(_ descriptor: Descriptor, as tag: String) async throws {
        guard blobs[descriptor.digest] != nil else {
            throw OCIError(.notFound, "cannot tag \(tag): \(descriptor.digest) is not in \(displayName)")
        }
        tags[tag] = descriptor
    }

    public func listTags() async throws -> [String] { tags.keys.sorted() }

    public func referrers(of subject: Descriptor, artifactType: String?) async throws -> [Descriptor] {
        let all = referrerIndex[subject.digest] ?? []
        guard let artifactType else { return all }
        return all.filter { $0.artifactType == artifactType }
    }

    /// Replaces the stored bytes of a digest without changing the digest (tests use it to simulate corruption).
    public func corrupt(_ digest: Digest, with data: Data) {
        blobs[digest] = data
    }

    public var blobCount: Int { blobs.count }
}
