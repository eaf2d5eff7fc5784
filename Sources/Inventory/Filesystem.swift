import Synchronization

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

/// A file whose content a cataloger asked for but that was not kept, and why (the image's limit on captured
/// contents was reached).
public struct SkippedContent: Sendable, Equatable {
    public var path: String
    /// The layer that wrote the file.
    public var layer: Int
    public var reason: String
}

/// The squashed view of an image's layers (as overlayfs would present them): whiteouts applied, each file
/// attributed to the layer that last wrote it, and the contents of the files catalogers asked for — with the
/// versions each layer wrote, so a package can be attributed to the layer that introduced it.
public struct ImageFilesystem: Sendable {
    public var layers: [LayerInfo] = []
    public var files: [String: FileRecord] = [:]
    /// Captured contents: per path, the versions written since the path was last deleted (oldest first).
    public var versions: [String: [(layer: Int, bytes: [UInt8])]] = [:]
    /// Files whose content was asked for but not kept, in the order their layers were applied.
    public var skipped: [SkippedContent] = []

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

/// The captured bytes an image may hold in total, shared by its layers (read concurrently or not). Each capture
/// takes its size (the whole file, or the summary a transform made of it) if it fits what is left; one that does
/// not fit is not kept, and smaller ones after it still may be. Bytes are counted when captured, whether or not a
/// later layer deletes the file.
public final class CaptureBudget: Sendable {
    public let limit: Int
    private let used = Mutex(0)

    public init(limit: Int) { self.limit = limit }

    /// The bytes captured so far.
    public var captured: Int { used.withLock { $0 } }

    /// Takes `bytes` if they fit what is left; false (and nothing taken) if not.
    func take(_ bytes: Int) -> Bool {
        used.withLock { used in
            guard bytes <= limit - used else { return false }
            used += bytes
            return true
        }
    }

    /// Why a capture of `bytes` was refused.
    func refusal(_ bytes: Int) -> String {
        "content not kept: \(bytes) bytes would take the captured contents past the limit for the image (\(limit) bytes)"
    }
}

/// Decides, from a regular file's path, size and mode, whether and how its content is captured.
public typealias CapturePolicy = @Sendable (_ path: String, _ size: Int, _ mode: Int) -> Capture?

/// Builds an `ImageFilesystem` layer by layer. `capture` decides which regular files have their contents (or a
/// summary of them) kept; everything else is indexed without being held.
///
/// Limits on what an image can make `warden sbom` do:
/// - a file's content is captured only up to `maxKeptFile` (256 MiB), and the captured contents of the whole image
///   up to `maxCapturedTotal` (256 MiB, `maxCaptured` to change it); a file past the total keeps its record, not
///   its content, and is listed in `ImageFilesystem.skipped` with the reason;
/// - applying a layer costs its entries and the lower paths it hides, not the size of the filesystem; a layer
///   listed more than once is read once;
/// - tar headers: `TarReader.maxExtendedHeader` (1 MiB) and `TarReader.maxPathLength` (64 KiB);
/// - Java archives: entries over 128 MiB are not inflated, all entries together inflate to at most 16 times the
///   file's size (at least 16 MiB, at most 1 GiB, nested archives included), a directory record repeating another's
///   local header is dropped, and nested archives are opened 4 levels deep (`Java.inflationBudget`).
public struct FilesystemBuilder {
    public private(set) var filesystem = ImageFilesystem()
    let capture: CapturePolicy
    /// The paths of `filesystem`, as a tree: what a whiteout, an opaque directory or a replaced directory hides.
    var tree = PathTree()
    /// Paths visited to apply what layers hide (a measure of the work done, for tests: it grows with the paths
    /// written and hidden, not with layers times paths).
    var entriesVisited = 0
    /// What the image's captured contents may still take (all layers together).
    public let budget: CaptureBudget
    /// Files larger than this are never read into memory.
    public static let maxKeptFile = 256 << 20
    /// The captured contents an image may hold in total, unless a builder is given another limit.
    public static let maxCapturedTotal = 256 << 20

    public init(capture: @escaping CapturePolicy, maxCaptured: Int = FilesystemBuilder.maxCapturedTotal) {
        self.capture = capture
        self.budget = CaptureBudget(limit: maxCaptured)
    }

    /// One layer read but not yet applied: its entries in archive order, with the contents captured.
    public struct Listing: Sendable {
        var layer: LayerInfo
        var entries: [(header: TarHeader, kept: [UInt8]?)] = []
        var deleted: Set<String> = []
        var opaque: Set<String> = []
        /// Files whose content was asked for but did not fit `budget`, and why.
        var skipped: [(path: String, reason: String)] = []
    }

    /// Reads one layer's (decompressed) tar stream. Layers can be read concurrently; `apply` them in order. What is
    /// captured is taken from `budget` (none: no limit but the per-file one).
    public static func read<S: ChunkSource>(
        _ layer: LayerInfo, tar source: S, capture: CapturePolicy, budget: CaptureBudget? = nil
    ) async throws -> Listing {
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
                if h.kind == .file, h.size <= maxKeptFile, let c = capture(h.path, h.size, h.mode) {
                    if c.transform == nil, let budget, !budget.take(h.size) {
                        listing.skipped.append((h.path, budget.refusal(h.size)))  // not even read
                    } else if let bytes = try await reader.readContent(limit: maxKeptFile) {
                        if let transform = c.transform {
                            // A summary is counted once it is made.
                            if let summary = transform(h.path, bytes) {
                                if let budget, !budget.take(summary.count) {
                                    listing.skipped.append((h.path, budget.refusal(summary.count)))
                                } else {
                                    kept = summary
                                }
                            }
                        } else {
                            kept = bytes
                        }
                    }
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
        apply(try await Self.read(layer, tar: source, capture: capture, budget: budget))
    }

    /// Applies a layer read with `read` on top of the layers applied so far. The work is proportional to the layer's
    /// entries and to the lower paths it hides, never to the whole filesystem: whiteouts, opaque directories and
    /// files replacing directories reach what they hide through `tree`.
    public mutating func apply(_ listing: Listing) {
        let index = filesystem.layers.count
        var info = listing.layer
        info.index = index
        filesystem.layers.append(info)
        filesystem.skipped += listing.skipped.map { SkippedContent(path: $0.path, layer: index, reason: $0.reason) }
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
            if filesystem.files.updateValue(record, forKey: h.path) == nil { tree.insert(h.path) }
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
        // What the layer hides: a deleted path and everything below it; everything below an opaque directory or a
        // replaced path; everything, for an opaque root. A root inside another one is covered by it, so each path
        // is visited at most once.
        var roots: [(node: Int, withSelf: Bool)] = []
        if opaque.contains("") {
            roots = [(PathTree.root, false)]
        } else {
            var found: [Int: Bool] = [:]
            for (paths, withSelf) in [(deleted, true), (opaque, false), (replaced, false)] {
                for path in paths {
                    guard let node = tree.find(path) else { continue }
                    let before = found[node] ?? false
                    found[node] = withSelf || before
                }
            }
            for (node, withSelf) in found where !tree.ancestors(of: node).contains(where: { found[$0] != nil }) {
                roots.append((node, withSelf))
            }
        }
        var parents: [Int] = []
        for (root, withSelf) in roots {
            parents.append(tree.nodes[root].parent)
            for node in tree.subtree(root) {
                entriesVisited += 1
                if node != root || withSelf, let path = tree.nodes[node].path {
                    if let record = filesystem.files[path], record.layer < index, !added.contains(path) {
                        filesystem.files[path] = nil
                        filesystem.versions[path] = nil
                        tree.nodes[node].path = nil
                    } else if let versions = filesystem.versions[path] {
                        // Written again by this layer: the versions below the deletion are gone.
                        let kept = versions.filter { $0.layer == index }
                        filesystem.versions[path] = kept.isEmpty ? nil : kept
                    }
                }
                tree.removeIfEmpty(node)
            }
        }
        for parent in parents { tree.prune(parent) }
    }
}

/// The paths of a filesystem as a tree of components: each path with a record, and the directories its components
/// name (listed or only implied by what is below them). Nodes live in an array and are reused once removed.
struct PathTree {
    struct Node {
        var parent: Int
        var name: Substring
        var children: [Substring: Int] = [:]
        /// The full path, while the filesystem has a record for it; nil for a directory only implied by its children.
        var path: String?
    }
    static let root = 0
    var nodes: [Node] = [Node(parent: -1, name: "")]
    var free: [Int] = []

    /// Gives `path` (normalised, not empty) a node, with its ancestors.
    mutating func insert(_ path: String) {
        var n = Self.root
        for name in path.split(separator: "/") {
            if let child = nodes[n].children[name] {
                n = child
                continue
            }
            let child: Int
            if let reused = free.popLast() {
                child = reused
                nodes[child] = Node(parent: n, name: name)
            } else {
                child = nodes.count
                nodes.append(Node(parent: n, name: name))
            }
            nodes[n].children[name] = child
            n = child
        }
        nodes[n].path = path
    }

    /// The node of `path`, written exactly as a normalised path is (`a/`, `a//b` and the empty path name none).
    func find(_ path: String) -> Int? {
        var n = Self.root
        for name in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard let child = nodes[n].children[name] else { return nil }
            n = child
        }
        return n == Self.root ? nil : n
    }

    /// The nodes above `node`, up to (not including) the root.
    func ancestors(of node: Int) -> some Sequence<Int> {
        sequence(first: nodes[node].parent) { [nodes] in nodes[$0].parent }.prefix { $0 > Self.root }
    }

    /// `node` and every node below it, each after the nodes below it (so they can be removed in this order).
    func subtree(_ node: Int) -> [Int] {
        var order: [Int] = []
        var stack = [node]
        while let n = stack.popLast() {
            order.append(n)
            stack.append(contentsOf: nodes[n].children.values)
        }
        return order.reversed()
    }

    /// Removes `node` if it holds neither a record nor children.
    mutating func removeIfEmpty(_ node: Int) {
        guard node != Self.root, nodes[node].parent >= 0, nodes[node].path == nil, nodes[node].children.isEmpty else { return }
        nodes[nodes[node].parent].children[nodes[node].name] = nil
        nodes[node] = Node(parent: -1, name: "")
        free.append(node)
    }

    /// Removes `node` and its ancestors for as long as they are empty (already removed nodes are left alone).
    mutating func prune(_ node: Int) {
        var n = node
        while n > Self.root, nodes[n].parent >= 0, nodes[n].path == nil, nodes[n].children.isEmpty {
            let parent = nodes[n].parent
            removeIfEmpty(n)
            n = parent
        }
    }
}
