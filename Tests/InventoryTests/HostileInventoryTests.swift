import CEL
import Foundation
import OCI
import OCITesting
import Testing

@testable import Inventory

/// Files built to trap the catalogers: each is read (or skipped) without a crash.
@Suite struct HostileInventoryTests {
    static func filesystem(_ build: (inout TarWriter) -> Void) async throws -> ImageFilesystem {
        let store = MemoryStore()
        let image = try await pushImage([tar(build)], to: store)
        return try await ImageSource.filesystem(of: image, in: store, capture: Catalogers.capture).filesystem
    }

    /// `Source:` present but empty (before: index out of range in the dpkg cataloger).
    @Test func dpkgParagraphWithAnEmptySource() async throws {
        let fs = try await Self.filesystem {
            $0.file(
                "var/lib/dpkg/status",
                "Package: a\nStatus: install ok installed\nVersion: 1\nSource:\n\nPackage: b\nStatus: install ok installed\nVersion: 2\nSource:  \n\n"
            )
        }
        let (_, packages) = Catalogers.catalog(fs)
        #expect(packages.map(\.name).sorted() == ["a", "b"])
        #expect(packages.allSatisfy { $0.metadata["source"] == nil })
    }

    /// An RPM header whose LICENSE string has no terminating NUL (before: index out of range).
    @Test func rpmHeaderWithoutTheLicenseNUL() {
        var header: [UInt8] = [0, 0, 0, 3, 0, 0, 0, 12]
        header += [0, 0, 0x03, 0xE8, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1]  // NAME at 0
        header += [0, 0, 0x03, 0xE9, 0, 0, 0, 6, 0, 0, 0, 5, 0, 0, 0, 1]  // VERSION at 5
        header += [0, 0, 0x03, 0xF6, 0, 0, 0, 6, 0, 0, 0, 9, 0, 0, 0, 1]  // LICENSE at 9, no NUL before the end
        header += Array("name\u{0}1.0\u{0}MIT".utf8)
        let parsed = RPM.parse(header)
        #expect(parsed?.strings[1000] == ["name"])
        #expect(parsed?.strings[1014] == nil)
    }

    /// ELF headers whose section-header offset, or whose `.go.buildinfo` offset, is negative or near Int.max
    /// (before: arithmetic overflow traps).
    @Test func elfOffsetsNearIntMaxOrNegative() {
        let base = BinaryCatalogerTests.goBinary(version: "go1.21.0", modinfo: "path\tx/y\nmod\tx/y\tv1\t\n")
        func with(_ at: Int, _ value: UInt64) -> [UInt8] {
            var b = base
            for k in 0..<8 { b[at + k] = UInt8((value >> (8 * UInt64(k))) & 0xFF) }
            return b
        }
        // e_shoff near Int.max and negative, with plausible counts.
        for shoff: UInt64 in [UInt64(Int.max) - 10, UInt64(bitPattern: -64), UInt64(Int.max)] {
            var b = with(0x28, shoff)
            b[0x3A] = 64; b[0x3C] = 3; b[0x3E] = 1
            #expect(GoBinaries.section(b, named: ".go.buildinfo") == nil)
            #expect(GoBinaries.buildInfo(b)?.0 == "go1.21.0")  // found by scanning instead
        }
        // A section table whose entries point .go.buildinfo (and the name table) at hostile offsets.
        var b = base
        let table = 2048
        for k in 0..<8 { b[0x28 + k] = UInt8((UInt64(table) >> (8 * UInt64(k))) & 0xFF) }
        b[0x3A] = 64; b[0x3C] = 2; b[0x3E] = 0
        let names = 3000
        b.replaceSubrange(names..<(names + 14), with: Array("\u{0}.go.buildinfo".utf8) + [0])
        func entry(_ k: Int, name: UInt32, offset: UInt64) {
            let h = table + 64 * k
            for i in 0..<4 { b[h + i] = UInt8((name >> (8 * UInt32(i))) & 0xFF) }
            for i in 0..<8 { b[h + 0x18 + i] = UInt8((offset >> (8 * UInt64(i))) & 0xFF) }
        }
        entry(0, name: 0, offset: UInt64(names))
        for offset in [UInt64(bitPattern: -5), UInt64(Int.max) - 3, UInt64(Int.max)] {
            entry(1, name: 1, offset: offset)
            let found = GoBinaries.section(b, named: ".go.buildinfo")
            if found == nil {
                #expect(Int(bitPattern: UInt(offset)) < 0)  // a negative offset is no section
                #expect(GoBinaries.buildInfo(b)?.0 == "go1.21.0")  // found by scanning instead
            } else {
                #expect(found == Int(bitPattern: UInt(offset)))
                #expect(GoBinaries.buildInfo(b) == nil)  // the section says where; that place is outside the file
            }
        }
        entry(0, name: 0, offset: UInt64(Int.max) - 2)  // the name table itself near Int.max
        #expect(GoBinaries.section(b, named: ".go.buildinfo") == nil)
        entry(0, name: 0, offset: UInt64(names))
        entry(1, name: 1, offset: 1024)
        #expect(GoBinaries.section(b, named: ".go.buildinfo") == 1024)
        #expect(GoBinaries.buildInfo(b)?.0 == "go1.21.0")
    }

    // MARK: layers

    static func header(_ path: String, _ kind: TarHeader.Kind = .file, link: String = "") -> TarHeader {
        TarHeader(path: path, kind: kind, size: kind == .file ? 1 : 0, mode: 0o644, linkTarget: link)
    }

    /// 400 layers of 1,000 files, each layer deleting a directory, emptying one (opaque), replacing one with a file
    /// and deleting a file of the layer below (before: every layer scanned the whole filesystem map, about
    /// 400 × 140,000 paths; such an image took a minute).
    @Test func layerApplicationIsLinearInThePathsWritten() {
        var builder = FilesystemBuilder { _, _, _ in nil }
        var written = 0
        for l in 0..<400 {
            var listing = FilesystemBuilder.Listing(layer: LayerInfo(index: l, digest: "sha256:\(l)", mediaType: "", size: 0))
            for f in 0..<1000 { listing.entries.append((Self.header("l\(l)/d\(f % 10)/f\(f)"), nil)) }
            if l > 0 {
                listing.deleted.insert("l\(l - 1)/d0")
                listing.opaque.insert("l\(l - 1)/d1")
                listing.entries.append((Self.header("l\(l - 1)/d2"), nil))
                listing.deleted.insert("l\(l - 1)/d3/f3")
            }
            written += listing.entries.count + listing.deleted.count + listing.opaque.count
            builder.apply(listing)
        }
        // Each lower layer keeps d4…d9 (600 files), d3 but f3 (99) and the file that replaced d2.
        #expect(builder.filesystem.files.count == 399 * 700 + 1000)
        #expect(builder.filesystem.files["l398/d2"]?.layer == 399 && builder.filesystem.files["l398/d2/f2"] == nil)
        #expect(builder.filesystem.files["l398/d3/f13"] != nil && builder.filesystem.files["l398/d3/f3"] == nil)
        #expect(builder.entriesVisited <= 2 * written, "apply visited \(builder.entriesVisited) paths for \(written) written")
    }

    /// The tree that finds what a layer hides gives exactly the overlayfs view the full scan of every path gave:
    /// random layers of whiteouts (odd ones too), opaque directories (the root too), files replacing directories,
    /// re-listed directories, hard links and captured versions, compared with that scan.
    @Test func layerApplicationMatchesTheFullScan() {
        var rng = CorruptionTests.Rng(state: 11)
        let names = ["a", "b", "c"]
        func path() -> String { (0...rng.below(3)).map { _ in names[rng.below(names.count)] }.joined(separator: "/") }
        func key(_ fs: ImageFilesystem) -> [String] {
            fs.files.values.map { "\($0.path) \($0.kind) \($0.layer)" }.sorted()
                + fs.versions.map { "\($0.key): " + $0.value.map { "\($0.layer)=\($0.bytes)" }.joined(separator: ",") }.sorted()
        }
        for _ in 0..<400 {
            var builder = FilesystemBuilder { _, _, _ in nil }
            var reference = ImageFilesystem()
            for l in 0..<(1 + rng.below(6)) {
                var listing = FilesystemBuilder.Listing(layer: LayerInfo(index: l, digest: "sha256:\(l)", mediaType: "", size: 0))
                for _ in 0..<rng.below(12) {
                    switch rng.below(10) {
                    case 0, 1: listing.entries.append((Self.header(path(), .directory), nil))
                    case 2: listing.entries.append((Self.header(path(), .symlink, link: path()), nil))
                    case 3: listing.entries.append((Self.header(path(), .hardlink, link: path()), nil))
                    case 4: listing.entries.append((Self.header(path()), nil))
                    default: listing.entries.append((Self.header(path()), [UInt8(l), UInt8(rng.below(256))]))
                    }
                }
                for _ in 0..<rng.below(3) {
                    let odd = ["", "a/", "a//b", "a/.", "/a"]
                    listing.deleted.insert(rng.below(8) == 0 ? odd[rng.below(odd.count)] : path())
                }
                for _ in 0..<rng.below(2) { listing.opaque.insert(rng.below(6) == 0 ? "" : path()) }
                builder.apply(listing)
                Self.fullScanApply(&reference, listing)
                #expect(key(builder.filesystem) == key(reference))
            }
        }
    }

    /// A manifest that lists one layer twice: the blob is fetched and decompressed once, and applied at both
    /// positions (before: read and decompressed at each).
    @Test func aLayerListedTwiceIsReadOnce() async throws {
        let base = MemoryStore()
        let a = tar {
            $0.file("etc/os-release", "ID=alpine\n")
            $0.file("x", "from a")
        }
        let b = tar {
            $0.file("etc/os-release", "ID=debian\n")
            $0.whiteout("x")
        }
        let image = try await pushImage([a, b, a], to: base)
        let store = CountingStore(base)
        let r = try await ImageSource.filesystem(of: image, in: store) { _, _, _ in .whole }
        guard case .image(let manifest) = try await base.fetchManifest(image).parsed() else { throw InventoryError(.malformed, "not an image") }
        let fetched = await store.fetched
        #expect(fetched[manifest.layers[0].digest.description] == 1 && fetched[manifest.layers[1].digest.description] == 1)
        #expect(r.layersRead == 2)
        let fs = r.filesystem
        #expect(fs.layers.map(\.index) == [0, 1, 2])
        #expect(fs.layers.map(\.digest) == manifest.layers.map(\.digest.description))
        #expect(fs.content("etc/os-release") == Array("ID=alpine\n".utf8) && fs.files["x"]?.layer == 2)
        #expect(fs.versions["etc/os-release"]?.map(\.layer) == [0, 1, 2])

        // The same in a `docker save` archive: the member named twice is read once.
        let dir = try makeTemporaryDirectory()
        let outer = tar {
            $0.file("manifest.json", #"[{"Config":"cfg.json","Layers":["a/layer.tar","b/layer.tar","./a/layer.tar"]}]"#)
            $0.file("cfg.json", #"{"architecture":"amd64","os":"linux"}"#)
            $0.file("a/layer.tar", a)
            $0.file("b/layer.tar", try! gzip(b))
        }
        try Data(outer).write(to: URL(fileURLWithPath: dir + "/image.tar"))
        let d = try await ImageSource.dockerArchive(path: dir + "/image.tar") { _, _, _ in .whole }
        #expect(d.layersRead == 2)
        #expect(d.filesystem.layers.map(\.digest) == ["a/layer.tar", "b/layer.tar", "./a/layer.tar"])
        #expect(d.filesystem.content("etc/os-release") == Array("ID=alpine\n".utf8) && d.filesystem.files["x"]?.layer == 2)
    }

    /// Many large metadata files: what is captured is capped for the whole image (here at 350,000 bytes). Past the
    /// cap a file's content is not kept, and the file is recorded with the reason; smaller files still fit
    /// (before: every file up to the per-file limit was kept, however many).
    @Test func capturedContentsAreCappedForTheImage() async throws {
        let big = { (i: Int) in #"{"name":"p\#(i)","version":"1.0.0","description":""# + String(repeating: "x", count: 100_000) + #""}"# }
        let layer = tar {
            for i in 0..<10 { $0.file("app/node_modules/p\(i)/package.json", big(i)) }
            $0.file("etc/os-release", "ID=alpine\n")
        }
        var builder = FilesystemBuilder(capture: Catalogers.capture, maxCaptured: 350_000)
        try await builder.add(LayerInfo(index: 0, digest: "sha256:a", mediaType: "", size: 0), tar: BytesSource(layer))
        let fs = builder.filesystem
        let kept = fs.versions.values.flatMap { $0 }.reduce(0) { $0 + $1.bytes.count }
        #expect(kept <= 350_000 && builder.budget.captured == kept)
        #expect((0..<3).allSatisfy { fs.content("app/node_modules/p\($0)/package.json") != nil })
        #expect((3..<10).allSatisfy { fs.content("app/node_modules/p\($0)/package.json") == nil })
        #expect(fs.content("etc/os-release") == Array("ID=alpine\n".utf8), "a small file after the large ones still fits")
        #expect(fs.skipped.map(\.path) == (3..<10).map { "app/node_modules/p\($0)/package.json" })
        #expect(fs.skipped.allSatisfy { $0.layer == 0 && $0.reason.contains("limit for the image (350000 bytes)") })
        #expect(Catalogers.catalog(fs).1.map(\.name) == ["p0", "p1", "p2"])

        // Layers read concurrently share the cap; a layer listed twice is read, and counted, once.
        let store = MemoryStore()
        let layers = (0..<4).map { l in tar { for i in 0..<3 { $0.file("l\(l)/p\(i)/package.json", big(i)) } } }
        let image = try await pushImage(layers + [layers[0]], to: store)
        let r = try await ImageSource.filesystem(of: image, in: store, capture: Catalogers.capture, maxCaptured: 700_000)
        let captured = Set(r.filesystem.versions.keys)
        let skipped = Set(r.filesystem.skipped.map(\.path))
        #expect(captured.count == 6 && skipped.count == 6 && captured.isDisjoint(with: skipped) && captured.union(skipped).count == 12)
        #expect(r.filesystem.versions.values.flatMap { $0 }.allSatisfy { $0.bytes.count > 100_000 })

        // A directory source too.
        let dir = try makeTemporaryDirectory()
        for i in 0..<4 {
            try FileManager.default.createDirectory(atPath: dir + "/p\(i)", withIntermediateDirectories: true)
            try Data(big(i).utf8).write(to: URL(fileURLWithPath: dir + "/p\(i)/package.json"))
        }
        let d = try ImageSource.directory(path: dir, capture: Catalogers.capture, maxCaptured: 250_000)
        #expect(d.filesystem.versions.count == 2 && d.filesystem.skipped.count == 2)
    }

    // MARK: zip archives

    static func packageNames(_ summary: [UInt8]?) throws -> [String] {
        guard let summary, case .list(let items) = try Value.parseJSON(summary) else { return [] }
        return items.compactMap { if case .string(let n)? = $0["name"] { n } else { nil } }
    }

    /// A jar holding `pom.properties` for `artifact`, padded with a stored entry of `padding` zeros.
    static func jar(_ artifact: String, padding: Int = 0, nested: [(String, [UInt8])] = []) throws -> [UInt8] {
        var zip = ZipWriter()
        let pom = "META-INF/maven/org.example/\(artifact)/pom.properties"
        zip.list(pom, try zip.add(pom, Array("groupId=org.example\nartifactId=\(artifact)\nversion=1.0\n".utf8)))
        if padding > 0 { zip.list("padding", try zip.add("padding", [UInt8](repeating: 0, count: padding))) }
        for (name, bytes) in nested { zip.list(name, try zip.add(name, bytes, deflate: true)) }
        return zip.finish()
    }

    /// A directory that lists one nested archive 2,000 times, every record naming the same local header: it is
    /// inflated and read once (before: once per record, 2,000 × 256 KiB inflated, and its package reported 2,000
    /// times).
    @Test func zipDirectoryListingOneEntryManyTimes() throws {
        let inner = try Self.jar("inner", padding: 256 << 10)
        var outer = ZipWriter()
        let local = try outer.add("lib/inner-1.0.jar", inner, deflate: true)
        for i in 0..<2000 { outer.list(i % 2 == 0 ? "lib/inner-1.0.jar" : "lib/copy-\(i).jar", local) }
        let archive = outer.finish()
        #expect(try Self.packageNames(Java.capture.transform?("opt/outer.jar", archive)) == ["inner"])
        var budget = Java.inflationBudget(archiveSize: archive.count)
        let start = budget
        _ = Java.packages(in: archive, name: "outer.jar", nestedPath: [], depth: 0, budget: &budget)
        let pom = "groupId=org.example\nartifactId=inner\nversion=1.0\n"
        #expect(start - budget == inner.count + pom.utf8.count, "the nested archive and its pom.properties, once")
    }

    /// 64 distinct nested archives of 1 MiB each, deflated to about a kilobyte: what entries inflate to stops at
    /// the archive's budget (16 MiB here, the least an archive gets: its size is about 70 KiB), so 15 of them
    /// are read; nesting stops 4 archives deep.
    @Test func zipEntriesInflateWithinTheArchiveBudget() throws {
        var outer = ZipWriter()
        for i in 0..<64 {
            let name = "lib/a\(i)-1.0.jar"
            outer.list(name, try outer.add(name, try Self.jar("a\(i)", padding: 1 << 20), deflate: true))
        }
        let archive = outer.finish()
        #expect(archive.count < 100_000 && Java.inflationBudget(archiveSize: archive.count) == 16 << 20)
        let names = try Self.packageNames(Java.capture.transform?("opt/outer.jar", archive))
        #expect(names == (0..<15).map { "a\($0)" })
        var budget = 16 << 20
        _ = Java.packages(in: archive, name: "outer.jar", nestedPath: [], depth: 0, budget: &budget)
        #expect(budget >= 0 && budget < (1 << 20) + 400, "spent up to the budget, never past it")
        #expect(Java.inflationBudget(archiveSize: 8 << 20) == 128 << 20 && Java.inflationBudget(archiveSize: 256 << 20) == 1 << 30)

        var nested = try Self.jar("level9")
        for level in (0..<9).reversed() { nested = try Self.jar("level\(level)", nested: [("lib/level\(level + 1).jar", nested)]) }
        #expect(try Self.packageNames(Java.capture.transform?("opt/level0.jar", nested)) == (0...4).map { "level\($0)" })
    }

    /// How layers were applied before the path tree: every hidden path found by scanning the whole map.
    static func fullScanApply(_ filesystem: inout ImageFilesystem, _ listing: FilesystemBuilder.Listing) {
        let index = filesystem.layers.count
        var info = listing.layer
        info.index = index
        filesystem.layers.append(info)
        let deleted = listing.deleted
        let opaque = listing.opaque
        var added: Set<String> = []
        var replaced: Set<String> = []
        for (h, kept) in listing.entries {
            if h.kind != .directory { replaced.insert(h.path) }
            var record = FileRecord(path: h.path, kind: h.kind, size: h.size, mode: h.mode, linkTarget: h.linkTarget, layer: index)
            if h.kind == .directory, let old = filesystem.files[h.path], old.kind == .directory { record.layer = old.layer }
            filesystem.files[h.path] = record
            added.insert(h.path)
            if let kept {
                filesystem.versions[h.path, default: []].append((index, kept))
            } else if h.kind == .hardlink, let target = filesystem.versions[h.linkTarget]?.last {
                filesystem.versions[h.path, default: []].append((index, target.bytes))
            } else if filesystem.versions[h.path] != nil {
                filesystem.versions[h.path] = nil
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

/// A store that counts the blobs and manifests fetched from it, by digest.
actor CountingStore: ContentStore {
    let base: MemoryStore
    private(set) var fetched: [String: Int] = [:]
    nonisolated var displayName: String { base.displayName }
    init(_ base: MemoryStore) { self.base = base }
    func fetch(_ descriptor: Descriptor) async throws -> ByteStream {
        fetched[descriptor.digest.description, default: 0] += 1
        return try await base.fetch(descriptor)
    }
    func exists(_ descriptor: Descriptor) async throws -> Bool { try await base.exists(descriptor) }
    func push(_ descriptor: Descriptor, content: ByteStream) async throws { try await base.push(descriptor, content: content) }
    func resolve(_ reference: String) async throws -> Descriptor { try await base.resolve(reference) }
    func tag(_ descriptor: Descriptor, as tag: String) async throws { try await base.tag(descriptor, as: tag) }
    func listTags() async throws -> [String] { try await base.listTags() }
    func referrers(of subject: Descriptor, artifactType: String?) async throws -> [Descriptor] {
        try await base.referrers(of: subject, artifactType: artifactType)
    }
}

/// Zip archives written by hand, so that a central directory can list what no zip tool would: entries are added
/// (a local header and the data, stored or deflated), then listed in the directory any number of times.
struct ZipWriter {
    struct Local {
        var offset: Int
        var method: Int
        var compressedSize: Int
        var size: Int
    }
    var bytes: [UInt8] = []
    var directory: [UInt8] = []
    var count = 0

    static func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    static func le32(_ v: Int) -> [UInt8] { le16(v & 0xFFFF) + le16(v >> 16 & 0xFFFF) }

    /// Deflated data is gzip's output without its 10-byte header and 8-byte trailer (the zip reader checks no CRC).
    mutating func add(_ name: String, _ content: [UInt8], deflate: Bool = false) throws -> Local {
        let data = deflate ? Array(try gzip(content).dropFirst(10).dropLast(8)) : content
        let local = Local(offset: bytes.count, method: deflate ? 8 : 0, compressedSize: data.count, size: content.count)
        bytes += Self.le32(0x0403_4B50) + Self.le16(20) + Self.le16(0) + Self.le16(local.method) + Self.le16(0) + Self.le16(0)
        bytes += Self.le32(0) + Self.le32(data.count) + Self.le32(content.count) + Self.le16(name.utf8.count) + Self.le16(0)
        bytes += Array(name.utf8) + data
        return local
    }

    mutating func list(_ name: String, _ local: Local) {
        directory += Self.le32(0x0201_4B50) + Self.le16(20) + Self.le16(20) + Self.le16(0) + Self.le16(local.method) + Self.le16(0)
        directory += Self.le16(0) + Self.le32(0) + Self.le32(local.compressedSize) + Self.le32(local.size) + Self.le16(name.utf8.count)
        directory += Self.le16(0) + Self.le16(0) + Self.le16(0) + Self.le16(0) + Self.le32(0) + Self.le32(local.offset) + Array(name.utf8)
        count += 1
    }

    func finish() -> [UInt8] {
        bytes + directory + Self.le32(0x0605_4B50) + Self.le16(0) + Self.le16(0) + Self.le16(count) + Self.le16(count)
            + Self.le32(directory.count) + Self.le32(bytes.count) + Self.le16(0)
    }
}
