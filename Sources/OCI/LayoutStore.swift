import Foundation

/// An OCI image-layout directory (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`).
///
/// Blobs are written to a temporary file in the same directory while their digest is checked, then renamed into
/// place, so a failed or interrupted write never leaves a blob under a digest it does not have. `index.json` is
/// replaced atomically. Tags are index entries annotated `org.opencontainers.image.ref.name`; manifests that have
/// a `subject` are kept as untagged entries so that referrers can be listed.
public actor LayoutStore: ContentStore {
    public static let refNameAnnotation = "org.opencontainers.image.ref.name"
    public let root: URL
    public nonisolated let displayName: String
    private var index: ImageIndex

    /// Opens a layout, creating it when `create` is true and the directory holds none.
    public init(path: String, create: Bool = true) throws {
        let root = URL(fileURLWithPath: path).standardizedFileURL
        self.root = root
        self.displayName = Location.layoutScheme + path
        let fm = FileManager.default
        let layoutFile = root.appendingPathComponent("oci-layout")
        let indexFile = root.appendingPathComponent("index.json")
        if fm.fileExists(atPath: layoutFile.path) {
            let header = try Data(contentsOf: layoutFile)
            struct Header: Decodable { var imageLayoutVersion: String }
            guard let h = try? JSONDecoder().decode(Header.self, from: header), h.imageLayoutVersion.hasPrefix("1.") else {
                throw OCIError(.layout, "\(layoutFile.path) is not an OCI layout header (expected {\"imageLayoutVersion\": \"1.0.0\"})")
            }
            if fm.fileExists(atPath: indexFile.path) {
                let data = try Data(contentsOf: indexFile)
                do {
                    index = try JSONDecoder().decode(ImageIndex.self, from: data)
                } catch {
                    throw OCIError(.layout, "\(indexFile.path) is not a valid image index: \(describe(error))")
                }
            } else {
                index = ImageIndex(manifests: [])
            }
        } else {
            guard create else {
                throw OCIError(.notFound, "\(path) is not an OCI image layout (no oci-layout file)")
            }
            try fm.createDirectory(at: root.appendingPathComponent("blobs/sha256"), withIntermediateDirectories: true)
            try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: layoutFile, options: .atomic)
            index = ImageIndex(manifests: [])
            try LayoutStore.write(index, to: indexFile)
        }
    }

    private nonisolated func blobPath(_ digest: Digest) -> String {
        root.appendingPathComponent("blobs/\(digest.algorithm.rawValue)/\(digest.hex)").path
    }

    public func fetch(_ descriptor: Descriptor) async throws -> ByteStream {
        let path = blobPath(descriptor.digest)
        guard FileManager.default.fileExists(atPath: path) else {
            throw OCIError(.notFound, "\(descriptor.digest) not found in \(displayName)")
        }
        return .file(at: path)
    }

    public func exists(_ descriptor: Descriptor) async throws -> Bool {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: blobPath(descriptor.digest)) else { return false }
        return (attrs[.size] as? NSNumber)?.int64Value == descriptor.size
    }

    public func push(_ descriptor: Descriptor, content: ByteStream) async throws {
        let final = blobPath(descriptor.digest)
        let fm = FileManager.default
        let dir = (final as NSString).deletingLastPathComponent
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tmp = dir + "/.tmp-\(descriptor.digest.hex.prefix(16))-\(UUID().uuidString)"
        guard fm.createFile(atPath: tmp, contents: nil), let handle = FileHandle(forWritingAtPath: tmp) else {
            throw OCIError(.layout, "cannot create \(tmp)")
        }
        var manifestBytes = Data()
        let isManifest = MediaType.isManifest(descriptor.mediaType)
        do {
            for try await chunk in content.verifying(descriptor, source: "push to \(displayName)") {
                let data = Data(chunk.readableBytesView)
                try handle.write(contentsOf: data)
                if isManifest { manifestBytes.append(data) }
            }
            try handle.synchronize()
            try handle.close()
            if fm.fileExists(atPath: final) { try fm.removeItem(atPath: final) }
            try fm.moveItem(atPath: tmp, toPath: final)
        } catch {
            try? handle.close()
            try? fm.removeItem(atPath: tmp)
            throw error
        }
        if isManifest {
            let raw = try RawManifest(bytes: manifestBytes, mediaType: descriptor.mediaType, digest: descriptor.digest)
            if try raw.parsed().subject != nil {
                let entry = try referrerDescriptor(for: raw)
                if !index.manifests.contains(where: { $0.digest == entry.digest && $0.annotations?[LayoutStore.refNameAnnotation] == nil }) {
                    index.manifests.append(entry)
                    try saveIndex()
                }
            }
        }
    }

    public func resolve(_ reference: String) async throws -> Descriptor {
        if let entry = index.manifests.last(where: { $0.annotations?[LayoutStore.refNameAnnotation] == reference }) {
            var d = entry
            d.annotations?[LayoutStore.refNameAnnotation] = nil
            if d.annotations?.isEmpty == true { d.annotations = nil }
            return d
        }
        if let digest = try? Digest(parsing: reference) {
            if let entry = index.manifests.first(where: { $0.digest == digest }) { return entry.plain }
            let path = blobPath(digest)
            if FileManager.default.fileExists(atPath: path) {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                let mediaType = (try? RawManifest.sniffMediaType(data)) ?? "application/octet-stream"
                return Descriptor(mediaType: mediaType, digest: digest, size: Int64(data.count))
            }
        }
        throw OCIError(.notFound, "\(reference) not found in \(displayName) (tags: \(tagNames().joined(separator: ", ")))")
    }

    public func tag(_ descriptor: Descriptor, as tag: String) async throws {
        guard try await exists(descriptor) else {
            throw OCIError(.notFound, "cannot tag \(tag): \(descriptor.digest) is not in \(displayName)")
        }
        var entry = descriptor.plain
        entry.platform = descriptor.platform
        entry.artifactType = descriptor.artifactType
        entry.annotations = [LayoutStore.refNameAnnotation: tag]
        index.manifests.removeAll { $0.annotations?[LayoutStore.refNameAnnotation] == tag }
        index.manifests.append(entry)
        try saveIndex()
    }

    public func listTags() async throws -> [String] { tagNames() }

    private func tagNames() -> [String] {
        index.manifests.compactMap { $0.annotations?[LayoutStore.refNameAnnotation] }.sorted()
    }

    public func referrers(of subject: Descriptor, artifactType: String?) async throws -> [Descriptor] {
        var result: [Descriptor] = []
        var seen = Set<Digest>()
        for entry in index.manifests where !seen.contains(entry.digest) {
            seen.insert(entry.digest)
            guard entry.size <= maxManifestSize, MediaType.isManifest(entry.mediaType),
                let raw = try? await fetchManifest(entry.plain), let parsed = try? raw.parsed(),
                parsed.subject?.digest == subject.digest
            else { continue }
            let d = try referrerDescriptor(for: raw)
            if artifactType == nil || d.artifactType == artifactType { result.append(d) }
        }
        return result
    }

    private func saveIndex() throws {
        try LayoutStore.write(index, to: root.appendingPathComponent("index.json"))
    }

    private static func write(_ index: ImageIndex, to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(index).write(to: url, options: .atomic)
    }
}
