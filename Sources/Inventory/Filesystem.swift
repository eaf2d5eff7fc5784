/// One layer of an image, in order from the base.
public struct LayerInfo: Sendable, Equatable, Codable {
    public var index: Int
    /// Digest of the layer blob (compressed), or a label for sources without one (a directory).
    public var digest: String
    public var mediaType: String
    public var size: Int64
}

/// A file of the squashed filesystem, and the layer that last wrote it.
public struct FileRecord: Sendable, Equatable {
    public var path: String
    public var kind: TarHeader.Kind
    public var size: Int
    public var mode: Int
    public var linkTarget: String
    public var layer: Int
}

/// The squashed view of an image's layers (as overlayfs would present them): whiteouts applied, each file
/// attributed to the layer that last wrote it, and the contents of the files catalogers asked for — with the
/// versions each layer wrote, so a package can be attributed to the layer that introduced it.
public struct ImageFilesystem: Sendable {
    public var layers: [LayerInfo] = []
    public var files: [String: FileRecord] = [:]
    /// Captured contents: per path, the versions written since the path was last deleted (oldest first).
    public var versions: [String: [(layer: Int, bytes: [UInt8])]] = [:]

    public init() {}

    /// The final content of `path` (symlinks followed), if it was captured.
    public func content(_ path: String) -> [UInt8]? {
        guard let real = resolve(path) else { return nil }
        return versions[real]?.last?.bytes
    }

    /// `path` with symlinks in any component followed (at most 40), staying inside the root; nil if it does not exist.
    public func resolve(_ path: String) -> String? {
        var parts = normalize(path).split(separator: "/").map(String.init)
        var done: [String] = []
        var hops = 0
        while !parts.isEmpty {
            let part = parts.removeFirst()
            let candidate = (done + [part]).joined(separator: "/")
            guard let record = files[candidate] else {
                // Archives need not list parent directories: a missing one is implied by its children.
                if parts.isEmpty { return nil }
                done.append(part)
                continue
            }
            if record.kind == .symlink {
                hops += 1
                if hops > 40 { return nil }
                let target = record.linkTarget
                let base = target.hasPrefix("/") ? [] : done
                parts = normalize((base + [target]).joined(separator: "/")).split(separator: "/").map(String.init) + parts
                done = []
                continue
            }
            if record.kind == .hardlink, parts.isEmpty {
                return files[record.linkTarget] != nil ? record.linkTarget : candidate
            }
            done.append(part)
        }
        return done.joined(separator: "/")
    }

    /// Regular files whose path satisfies `predicate`, sorted.
    public func paths(where predicate: (String) -> Bool) -> [String] {
        files.values.filter { ($0.kind == .file || $0.kind == .hardlink) && predicate($0.path) }.map(\.path).sorted()
    }

    /// The layer that last wrote `path` (after symlinks).
    public func layer(of path: String) -> LayerInfo? {
        guard let real = resolve(path), let record = files[real] else { return nil }
        return layers[record.layer]
    }
}

/// What to hold of a file's content: all of it, or what `transform` extracts from it (a Go binary's module list,
/// a jar's Maven coordinates) — so large files are read once, summarised, and let go.
public struct Capture: Sendable {
    public var transform: (@Sendable (_ path: String, _ content: [UInt8]) -> [UInt8]?)?
    public static let whole = Capture(transform: nil)
    public init(transform: (@Sendable (_ path: String, _ content: [UInt8]) -> [UInt8]?)?) { self.transform = transform }
}

/// Decides, from a regular file's path, size and mode, whether and how its content is captured.
public typealias CapturePolicy = @Sendable (_ path: String, _ size: Int, _ mode: Int) -> Capture?

/// Builds an `ImageFilesystem` layer by layer. `capture` decides which regular files have their contents (or a
/// summary of them) kept; everything else is indexed without being held.
public struct FilesystemBuilder {
    public private(set) var filesystem = ImageFilesystem()
    let capture: CapturePolicy
    /// Files larger than this are never read into memory.
    public static let maxKeptFile = 256 << 20

    public init(capture: @escaping CapturePolicy) {
        self.capture = capture
    }

    /// One layer read but not yet applied: its entries in archive order, with the contents captured.
    public struct Listing: Sendable {
        var layer: LayerInfo
        var entries: [(header: TarHeader, kept: [UInt8]?)] = []
        var deleted: Set<String> = []
        var opaque: Set<String> = []
    }

    /// Reads one layer's (decompressed) tar stream. Layers can be read concurrently; `apply` them in order.
    public static func read<S: ChunkSource>(_ layer: LayerInfo, tar source: S, capture: CapturePolicy) async throws -> Listing {
        var reader = TarReader(source)
        var listing = Listing(layer: layer)
        do {
            while let h = try await reader.next() {
                if h.path.isEmpty { continue }
                let name = h.path.split(separator: "/").last.map(String.init) ?? h.path
                let parent = h.path.contains("/") ? String(h.path[..<h.path.lastIndex(of: "/")!]) : ""
                if name == ".wh..wh..opq" {
                    listing.opaque.insert(parent)
                    continue
                }
                if name.hasPrefix(".wh.") {
                    let target = String(name.dropFirst(4))
                    listing.deleted.insert(parent.isEmpty ? target : parent + "/" + target)
                    continue
                }
                var kept: [UInt8]?
                if h.kind == .file, h.size <= maxKeptFile, let c = capture(h.path, h.size, h.mode),
                    let bytes = try await reader.readContent(limit: maxKeptFile)
                {
                    kept = c.transform.map { $0(h.path, bytes) } ?? bytes
                }
                listing.entries.append((h, kept))
            }
        } catch let e as InventoryError {
            throw InventoryError(e.code, "layer \(layer.digest): \(e.reason)")
        }
        return listing
    }

    /// Adds the next layer from its (decompressed) tar stream.
    public mutating func add<S: ChunkSource>(_ layer: LayerInfo, tar source: S) async throws {
        apply(try await Self.read(layer, tar: source, capture: capture))
    }

    /// Applies a layer read with `read` on top of the layers applied so far.
    public mutating func apply(_ listing: Listing) {
        let index = filesystem.layers.count
        var info = listing.layer
        info.index = index
        filesystem.layers.append(info)
        // Deletions apply to lower layers only, after the whole layer (a layer may list a whiteout after files it
        // adds in the same directory).
        let deleted = listing.deleted
        let opaque = listing.opaque
        var added: Set<String> = []
        var replaced: Set<String> = []
        for (h, kept) in listing.entries {
            if h.kind != .directory {
                replaced.insert(h.path)  // a file replacing a directory (listed or implied) hides what was below it
            }
            var record = FileRecord(path: h.path, kind: h.kind, size: h.size, mode: h.mode, linkTarget: h.linkTarget, layer: index)
            if h.kind == .directory, let old = filesystem.files[h.path], old.kind == .directory {
                record.layer = old.layer  // re-listing a directory does not rewrite what is in it
            }
            filesystem.files[h.path] = record
            added.insert(h.path)
            if let kept {
                filesystem.versions[h.path, default: []].append((index, kept))
            } else if h.kind == .hardlink, let target = filesystem.versions[h.linkTarget]?.last {
                filesystem.versions[h.path, default: []].append((index, target.bytes))
            } else if filesystem.versions[h.path] != nil {
                filesystem.versions[h.path] = nil  // overwritten by something not kept
            }
        }
        guard !deleted.isEmpty || !opaque.isEmpty || !replaced.isEmpty else { return }
        func hidden(_ path: String) -> Bool {
            var p = Substring(path)
            if deleted.contains(path) { return true }
            while let slash = p.lastIndex(of: "/") {
                p = p[..<slash]
                let s = String(p)
                if deleted.contains(s) || opaque.contains(s) || replaced.contains(s) { return true }
            }
            return opaque.contains("")
        }
        for (path, record) in filesystem.files where record.layer < index && !added.contains(path) && hidden(path) {
            filesystem.files[path] = nil
            filesystem.versions[path] = nil
        }
        for (path, versions) in filesystem.versions where hidden(path) {
            let kept = versions.filter { $0.layer == index }
            filesystem.versions[path] = kept.isEmpty ? nil : kept
        }
    }
}
