import Foundation
import OCI

/// Where an image's filesystem comes from: a content store (registry or OCI layout), a `docker save` archive, or a
/// plain directory. Layers stream through decompression and the tar reader; nothing is unpacked to disk.
public enum ImageSource {
    /// The platform of this machine (linux/amd64 or linux/arm64), the default when an index is read.
    public static var hostPlatform: Platform {
        #if arch(arm64)
            Platform(os: "linux", architecture: "arm64")
        #else
            Platform(os: "linux", architecture: "amd64")
        #endif
    }

    /// How many layers are read at once.
    public static var layerConcurrency: Int { max(2, min(4, ProcessInfo.processInfo.activeProcessorCount)) }

    /// What a source resolved to, besides the filesystem.
    public struct Resolved: Sendable {
        public var filesystem: ImageFilesystem
        /// Digest of the image manifest read (the platform's manifest for an index).
        public var manifestDigest: String?
        /// Digest the reference resolved to (the index for a multi-platform image).
        public var subjectDigest: String?
        public var platform: Platform?
        public var config: [UInt8]?
        /// Layer blobs read and decompressed (a layer listed more than once is read once).
        public var layersRead = 0
    }

    /// The image `subject` in `store`; for an index, the entry for `platform` (default: the host's). Captured contents
    /// are limited to `maxCaptured` bytes for the whole image (see `CaptureBudget`).
    public static func filesystem(
        of subject: Descriptor, in store: any ContentStore, platform: Platform? = nil, capture: @escaping CapturePolicy,
        maxCaptured: Int = FilesystemBuilder.maxCapturedTotal
    ) async throws -> Resolved {
        let (manifestDescriptor, manifest, indexPlatform) = try await imageManifest(of: subject, in: store, platform: platform)
        var chosen = indexPlatform
        let config = try await store.fetchVerified(manifest.config).collect(limit: 8 << 20)
        // Layers are read concurrently (decompression dominates) and applied in order. A layer the manifest lists
        // more than once (the same digest) is read once and applied at each of its positions.
        var distinct: [Descriptor] = []
        var slots: [Int] = []
        var slotOf: [OCI.Digest: Int] = [:]
        for layer in manifest.layers {
            if slotOf[layer.digest] == nil {
                slotOf[layer.digest] = distinct.count
                distinct.append(layer)
            }
            slots.append(slotOf[layer.digest]!)
        }
        var builder = FilesystemBuilder(capture: capture, maxCaptured: maxCaptured)
        let budget = builder.budget
        let listings = OrderedListings(count: distinct.count)
        try await concurrentForEach(Array(distinct.enumerated()), limit: layerConcurrency) { (slot, layer) in
            let info = LayerInfo(index: slot, digest: layer.digest.description, mediaType: layer.mediaType, size: layer.size)
            let source = try await decompressed(StreamChunks(try await store.fetchVerified(layer)), what: "layer \(layer.digest)")
            await listings.set(slot, try await FilesystemBuilder.read(info, tar: source, capture: capture, budget: budget))
        }
        let read = await listings.values
        for (i, layer) in manifest.layers.enumerated() {
            var listing = read[slots[i]]
            listing.layer = LayerInfo(index: i, digest: layer.digest.description, mediaType: layer.mediaType, size: layer.size)
            builder.apply(listing)
        }
        if chosen == nil, let c = try? JSONDecoder().decode(ImageConfig.self, from: config) {
            chosen = Platform(os: c.os, architecture: c.architecture, variant: c.variant)
        }
        return Resolved(
            filesystem: builder.filesystem, manifestDigest: manifestDescriptor.digest.description, subjectDigest: subject.digest.description,
            platform: chosen, config: [UInt8](config), layersRead: distinct.count)
    }

    /// The image manifest `subject` names in `store`: `subject` itself, or for an index its entry for `platform`
    /// (default: the host's), with the platform that entry declares.
    public static func imageManifest(
        of subject: Descriptor, in store: any ContentStore, platform: Platform? = nil
    ) async throws -> (descriptor: Descriptor, manifest: ImageManifest, platform: Platform?) {
        var manifestDescriptor = subject
        var raw = try await store.fetchManifest(subject)
        var chosen: Platform?
        if case .index(let index) = try raw.parsed() {
            let want = platform ?? hostPlatform
            guard let entry = index.manifests.first(where: { $0.platform.map(want.matches) ?? false }) else {
                let available = index.manifests.compactMap { $0.platform?.description }.joined(separator: ", ")
                throw InventoryError(.notFound, "no manifest for platform \(want) in the index (available: \(available))")
            }
            manifestDescriptor = entry
            chosen = entry.platform
            raw = try await store.fetchManifest(entry)
        }
        guard case .image(let manifest) = try raw.parsed() else {
            throw InventoryError(.unsupported, "\(manifestDescriptor.digest) is not an image manifest")
        }
        return (manifestDescriptor, manifest, chosen)
    }

    /// The stream decompressed according to its first bytes: gzip, zstd (through the system's libzstd) or plain tar.
    /// `what` names the stream in errors ("layer sha256:…").
    public static func decompressed<S: ChunkSource>(_ source: S, what: String) async throws -> AnyChunkSource {
        var s = source
        guard let first = try await s.next() else { return AnyChunkSource(EmptySource()) }
        let prefixed = PrefixedSource(first: first, rest: s)
        if first.count >= 2, first[0] == 0x1F, first[1] == 0x8B { return AnyChunkSource(try GunzipSource(prefixed)) }
        if first.count >= 4, first[0] == 0x28, first[1] == 0xB5, first[2] == 0x2F, first[3] == 0xFD {
            do { return AnyChunkSource(try ZstdSource(prefixed)) } catch let e as InventoryError {
                throw InventoryError(e.code, "\(what): \(e.reason)")
            }
        }
        return AnyChunkSource(prefixed)
    }

    // MARK: docker save archives

    /// A `docker save` (or `podman save`) archive: `manifest.json` names the config and the layers, which are read
    /// in place from the archive file.
    public static func dockerArchive(
        path: String, capture: @escaping CapturePolicy, maxCaptured: Int = FilesystemBuilder.maxCapturedTotal
    ) async throws -> Resolved {
        var reader = TarReader(StreamChunks(ByteStream.file(at: path)))
        var entries: [String: TarHeader] = [:]
        var manifestJSON: [UInt8]?
        do {
            while let h = try await reader.next() {
                if h.path == "manifest.json" {
                    manifestJSON = try await reader.readContent(limit: 16 << 20)
                }
                if h.kind == .file || h.kind == .hardlink { entries[h.path] = h }
            }
        } catch let e as InventoryError {
            throw InventoryError(e.code, "\(path): \(e.reason)")
        }
        struct Entry: Decodable {
            var Config: String
            var Layers: [String]
        }
        guard let manifestJSON, let manifest = (try? JSONDecoder().decode([Entry].self, from: Data(manifestJSON)))?.first else {
            throw InventoryError(.malformed, "\(path): not a docker save archive (no readable manifest.json)")
        }
        func entry(_ name: String) throws -> TarHeader {
            guard var h = entries[normalize(name)] else { throw InventoryError(.malformed, "\(path): manifest.json names \(name), which is missing") }
            if h.kind == .hardlink, let target = entries[h.linkTarget] { h = target }
            return h
        }
        func slice(_ h: TarHeader) -> LimitedSource<StreamChunks> {
            LimitedSource(StreamChunks(ByteStream.file(at: path, offset: UInt64(h.contentOffset))), limit: h.size)
        }
        let configEntry = try entry(manifest.Config)
        var configSource = slice(configEntry)
        var config: [UInt8] = []
        while let c = try await configSource.next() { config += c }
        var builder = FilesystemBuilder(capture: capture, maxCaptured: maxCaptured)
        // A layer listed more than once (the same archive member) is read once and applied at each of its positions;
        // its listing is kept only until its last position.
        let layers = try manifest.Layers.map { ($0, try entry($0)) }
        var uses: [Int: Int] = [:]
        for (_, h) in layers { uses[h.contentOffset, default: 0] += 1 }
        var reused: [Int: FilesystemBuilder.Listing] = [:]
        var layersRead = 0
        for (name, h) in layers {
            let info = LayerInfo(index: 0, digest: layerLabel(name), mediaType: "application/vnd.docker.image.rootfs.diff.tar", size: Int64(h.size))
            var listing: FilesystemBuilder.Listing
            if let earlier = reused[h.contentOffset] {
                listing = earlier
                listing.layer = info
            } else {
                listing = try await FilesystemBuilder.read(
                    info, tar: try await decompressed(slice(h), what: "layer \(name)"), capture: capture, budget: builder.budget)
                layersRead += 1
            }
            uses[h.contentOffset]! -= 1
            reused[h.contentOffset] = uses[h.contentOffset]! > 0 ? listing : nil
            builder.apply(listing)
        }
        var platform: Platform?
        if let c = try? JSONDecoder().decode(ImageConfig.self, from: Data(config)) {
            platform = Platform(os: c.os, architecture: c.architecture, variant: c.variant)
        }
        return Resolved(
            filesystem: builder.filesystem, manifestDigest: nil, subjectDigest: nil, platform: platform, config: config, layersRead: layersRead)
    }

    /// `blobs/sha256/<hex>` → `sha256:<hex>`; `<hex>/layer.tar` → `sha256:<hex>` (older docker); else the name.
    static func layerLabel(_ name: String) -> String {
        let parts = name.split(separator: "/")
        if parts.count == 3, parts[0] == "blobs" { return "\(parts[1]):\(parts[2])" }
        if parts.count == 2, parts[1] == "layer.tar", parts[0].count == 64 { return "sha256:\(parts[0])" }
        return name
    }

    // MARK: directories

    /// A directory read as a one-layer image (symlinks are recorded, never followed), its captured contents limited to
    /// `maxCaptured` bytes in total.
    public static func directory(
        path root: String, capture: @escaping CapturePolicy, maxCaptured: Int = FilesystemBuilder.maxCapturedTotal
    ) throws -> Resolved {
        let budget = CaptureBudget(limit: maxCaptured)
        var fs = ImageFilesystem()
        fs.layers = [LayerInfo(index: 0, digest: "dir:" + root, mediaType: "directory", size: 0)]
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw InventoryError(.notFound, "\(root) is not a directory")
        }
        let base = URL(fileURLWithPath: root).standardizedFileURL.path
        guard let walker = fm.enumerator(atPath: base) else { throw InventoryError(.io, "cannot read \(root)") }
        for case let relative as String in walker {
            let full = base + "/" + relative
            guard let attributes = try? fm.attributesOfItem(atPath: full) else { continue }
            let type = attributes[.type] as? FileAttributeType
            let mode = (attributes[.posixPermissions] as? Int) ?? 0
            let size = (attributes[.size] as? Int) ?? 0
            let path = normalize(relative)
            switch type {
            case .typeDirectory?:
                fs.files[path] = FileRecord(path: path, kind: .directory, size: 0, mode: mode, linkTarget: "", layer: 0)
            case .typeSymbolicLink?:
                let target = (try? fm.destinationOfSymbolicLink(atPath: full)) ?? ""
                fs.files[path] = FileRecord(path: path, kind: .symlink, size: 0, mode: mode, linkTarget: target, layer: 0)
            case .typeRegular?:
                fs.files[path] = FileRecord(path: path, kind: .file, size: size, mode: mode, linkTarget: "", layer: 0)
                guard size <= FilesystemBuilder.maxKeptFile, let c = capture(path, size, mode) else { continue }
                if c.transform == nil, !budget.take(size) {
                    fs.skipped.append(SkippedContent(path: path, layer: 0, reason: budget.refusal(size)))  // not even read
                    continue
                }
                guard let data = fm.contents(atPath: full) else { continue }
                if let transform = c.transform {
                    guard let summary = transform(path, [UInt8](data)) else { continue }
                    guard budget.take(summary.count) else {
                        fs.skipped.append(SkippedContent(path: path, layer: 0, reason: budget.refusal(summary.count)))
                        continue
                    }
                    fs.versions[path] = [(0, summary)]
                } else {
                    fs.versions[path] = [(0, [UInt8](data))]
                }
            default: continue
            }
        }
        return Resolved(filesystem: fs, manifestDigest: nil, subjectDigest: nil, platform: nil, config: nil)
    }
}

/// Layer listings by index, filled concurrently.
actor OrderedListings {
    var slots: [FilesystemBuilder.Listing?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ l: FilesystemBuilder.Listing) { slots[i] = l }
    var values: [FilesystemBuilder.Listing] { slots.compactMap { $0 } }
}

/// A type-erased chunk source.
public struct AnyChunkSource: ChunkSource {
    var pull: () async throws -> [UInt8]?
    public init<S: ChunkSource>(_ source: S) {
        var s = source
        pull = { try await s.next() }
    }
    public mutating func next() async throws -> [UInt8]? { try await pull() }
}

struct EmptySource: ChunkSource {
    mutating func next() async throws -> [UInt8]? { nil }
}

/// A chunk already read, then the rest.
struct PrefixedSource<Base: ChunkSource>: ChunkSource {
    var first: [UInt8]?
    var rest: Base
    init(first: [UInt8], rest: Base) {
        self.first = first
        self.rest = rest
    }
    mutating func next() async throws -> [UInt8]? {
        if let f = first {
            first = nil
            return f
        }
        return try await rest.next()
    }
}

/// At most `limit` bytes of a source (a member of an archive read in place).
struct LimitedSource<Base: ChunkSource>: ChunkSource {
    var base: Base
    var left: Int
    init(_ base: Base, limit: Int) {
        self.base = base
        self.left = limit
    }
    mutating func next() async throws -> [UInt8]? {
        guard left > 0 else { return nil }
        guard let chunk = try await base.next() else { throw InventoryError(.malformed, "archive member ends early") }
        if chunk.count <= left {
            left -= chunk.count
            return chunk
        }
        defer { left = 0 }
        return Array(chunk.prefix(left))
    }
}
