import Foundation

/// An OCI image-layout directory (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`).
///
/// Blobs are written to a temporary file in the same directory while their digest is checked, then renamed into
/// place, so a failed or interrupted write never leaves a blob under a digest it does not have. `index.json` is
/// replaced atomically. Tags are index entries annotated `org.opencontainers.image.ref.name`; manifests that have
/// a `subject` are kept as untagged entries so that referrers can be listed.
///
/// Several writers may share one layout (parallel `warden copy`, a `foreach` of `oci/copy`): every change of
/// `index.json` re-reads it and writes it back under an exclusive lock of the layout (`flock` on its `oci-layout`
/// file, which is never replaced), so no writer drops another's tags; reads see the index as it is on disk.
/// Only regular files are read: a FIFO, device, socket or symlink where a blob or layout file belongs is refused.
public actor LayoutStore: ContentStore {
    public static let refNameAnnotation = "org.opencontainers.image.ref.name"
    public let root: URL
    public nonisolated let displayName: String

    /// Opens a layout, creating it when `create` is true and the directory holds none. A directory with an
    /// `index.json` but no `oci-layout` file is refused rather than written over.
    public init(path: String, create: Bool = true) throws {
        let root = URL(fileURLWithPath: path).standardizedFileURL
        self.root = root
        self.displayName = Location.layoutScheme + path
        let fm = FileManager.default
        let layoutFile = root.appendingPathComponent("oci-layout")
        let indexFile = root.appendingPathComponent("index.json")
        if try LayoutStore.isRegularFile(layoutFile.path) {
            let header = try LayoutStore.read(layoutFile.path, limit: 4096)
            struct Header: Decodable { var imageLayoutVersion: String }
            guard let h = try? JSONDecoder().decode(Header.self, from: header), h.imageLayoutVersion.hasPrefix("1.") else {
                throw OCIError(.layout, "\(layoutFile.path) is not an OCI layout header (expected {\"imageLayoutVersion\": \"1.0.0\"})")
            }
            _ = try LayoutStore.loadIndex(indexFile.path)
        } else {
            guard create else {
                throw OCIError(.notFound, "\(path) is not an OCI image layout (no oci-layout file)")
            }
            guard !fm.fileExists(atPath: indexFile.path) else {
                throw OCIError(
                    .layout,
                    "\(path) has an index.json but no oci-layout file: not an OCI layout, and Warden does not write over it (add {\"imageLayoutVersion\": \"1.0.0\"} as oci-layout, or choose an empty directory)"
                )
            }
            try fm.createDirectory(at: root.appendingPathComponent("blobs/sha256"), withIntermediateDirectories: true)
            try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: layoutFile, options: .atomic)
            // Another process may be creating the same layout: the index is created under the lock, when absent.
            try LayoutStore.updateIndex(root) { _ in true }
        }
    }

    /// Whether `path` is a regular file: false when absent; an error when it is anything else (a directory, FIFO,
    /// device, socket or symlink), which a layout never holds and which must not be opened.
    static func isRegularFile(_ path: String) throws -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return false }
            throw OCIError(.layout, "cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            let kind: String
            switch st.st_mode & S_IFMT {
            case S_IFDIR: kind = "a directory"
            case S_IFIFO: kind = "a FIFO"
            case S_IFLNK: kind = "a symbolic link"
            case S_IFSOCK: kind = "a socket"
            case S_IFCHR, S_IFBLK: kind = "a device"
            default: kind = "not a regular file"
            }
            throw OCIError(.layout, "\(path) is \(kind), not a regular file; refused")
        }
        return true
    }

    /// A layout file's bytes, at most `limit` of them.
    static func read(_ path: String, limit: Int) throws -> Data {
        guard try isRegularFile(path) else { throw OCIError(.notFound, "\(path) does not exist") }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw OCIError(.layout, "cannot open \(path) for reading") }
        defer { try? handle.close() }
        let data = try handle.read(upToCount: limit + 1) ?? Data()
        guard data.count <= limit else { throw OCIError(.layout, "\(path) is larger than \(limit) bytes; refused") }
        return data
    }

    /// `index.json` as it is on disk (empty when absent).
    static func loadIndex(_ path: String) throws -> ImageIndex {
        guard try isRegularFile(path) else { return ImageIndex(manifests: []) }
        let data = try read(path, limit: 64 << 20)
        do {
            return try JSONDecoder().decode(ImageIndex.self, from: data)
        } catch {
            throw OCIError(.layout, "\(path) is not a valid image index: \(describe(error))")
        }
    }

    /// Applies `change` to `index.json` under an exclusive lock of the layout, reading it afresh first; writes it
    /// back (atomically) when `change` returns true.
    static func updateIndex(_ root: URL, _ change: (inout ImageIndex) throws -> Bool) throws {
        let lockPath = root.appendingPathComponent("oci-layout").path
        let fd = open(lockPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw OCIError(.layout, "cannot open \(lockPath) to lock the layout: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw OCIError(.layout, "cannot lock \(lockPath): \(String(cString: strerror(errno)))") }
        }
        defer { flock(fd, LOCK_UN) }
        let indexFile = root.appendingPathComponent("index.json")
        let exists = try isRegularFile(indexFile.path)
        var index = try loadIndex(indexFile.path)
        if try change(&index) || !exists { try write(index, to: indexFile) }
    }

    private nonisolated var index: ImageIndex {
        get throws { try LayoutStore.loadIndex(root.appendingPathComponent("index.json").path) }
    }

    private nonisolated func blobPath(_ digest: Digest) -> String {
        root.appendingPathComponent("blobs/\(digest.algorithm.rawValue)/\(digest.hex)").path
    }

    public func fetch(_ descriptor: Descriptor) async throws -> ByteStream {
        let path = blobPath(descriptor.digest)
        guard try LayoutStore.isRegularFile(path) else {
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
            // rename(2) replaces atomically: a concurrent writer of the same blob (same bytes) is no failure.
            guard rename(tmp, final) == 0 else {
                throw OCIError(.layout, "cannot move \(tmp) to \(final): \(String(cString: strerror(errno)))")
            }
        } catch {
            try? handle.close()
            try? fm.removeItem(atPath: tmp)
            throw error
        }
        if isManifest {
            let raw = try RawManifest(bytes: manifestBytes, mediaType: descriptor.mediaType, digest: descriptor.digest)
            if try raw.parsed().subject != nil {
                let entry = try referrerDescriptor(for: raw)
                try LayoutStore.updateIndex(root) { index in
                    guard !index.manifests.contains(where: { $0.digest == entry.digest && $0.annotations?[LayoutStore.refNameAnnotation] == nil })
                    else { return false }
                    index.manifests.append(entry)
                    return true
                }
            }
        }
    }

    public func resolve(_ reference: String) async throws -> Descriptor {
        let index = try self.index
        if let entry = index.manifests.last(where: { $0.annotations?[LayoutStore.refNameAnnotation] == reference }) {
            var d = entry
            d.annotations?[LayoutStore.refNameAnnotation] = nil
            if d.annotations?.isEmpty == true { d.annotations = nil }
            return d
        }
        if let digest = try? Digest(parsing: reference) {
            if let entry = index.manifests.first(where: { $0.digest == digest }) { return entry.plain }
            let path = blobPath(digest)
            if try LayoutStore.isRegularFile(path) {
                let data = try LayoutStore.read(path, limit: maxManifestSize)
                let mediaType = (try? RawManifest.sniffMediaType(data)) ?? "application/octet-stream"
                return Descriptor(mediaType: mediaType, digest: digest, size: Int64(data.count))
            }
        }
        throw OCIError(.notFound, "\(reference) not found in \(displayName) (tags: \(tagNames(index).joined(separator: ", ")))")
    }

    public func tag(_ descriptor: Descriptor, as tag: String) async throws {
        guard try await exists(descriptor) else {
            throw OCIError(.notFound, "cannot tag \(tag): \(descriptor.digest) is not in \(displayName)")
        }
        var entry = descriptor.plain
        entry.platform = descriptor.platform
        entry.artifactType = descriptor.artifactType
        entry.annotations = [LayoutStore.refNameAnnotation: tag]
        try LayoutStore.updateIndex(root) { index in
            index.manifests.removeAll { $0.annotations?[LayoutStore.refNameAnnotation] == tag }
            index.manifests.append(entry)
            return true
        }
    }

    public func listTags() async throws -> [String] { tagNames(try index) }

    private func tagNames(_ index: ImageIndex) -> [String] {
        index.manifests.compactMap { $0.annotations?[LayoutStore.refNameAnnotation] }.sorted()
    }

    public func referrers(of subject: Descriptor, artifactType: String?) async throws -> [Descriptor] {
        var result: [Descriptor] = []
        var seen = Set<Digest>()
        for entry in try index.manifests where !seen.contains(entry.digest) {
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

    private static func write(_ index: ImageIndex, to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(index).write(to: url, options: .atomic)
    }
}
