import Foundation
import OCI
import OCITesting
import Testing

@testable import Inventory

struct BytesSource: ChunkSource {
    var chunks: [[UInt8]]
    init(_ bytes: [UInt8], chunk: Int = 700) {
        chunks = stride(from: 0, to: bytes.count, by: chunk).map { Array(bytes[$0..<min($0 + chunk, bytes.count)]) }
    }
    mutating func next() async throws -> [UInt8]? { chunks.isEmpty ? nil : chunks.removeFirst() }
}

func headers(_ archive: [UInt8]) async throws -> [TarHeader] {
    var r = TarReader(BytesSource(archive))
    var out: [TarHeader] = []
    while let h = try await r.next() { out.append(h) }
    return out
}

@Suite struct TarTests {
    @Test func readsUstarGNULongNamesAndPAX() async throws {
        let long = String(repeating: "d/", count: 80) + "file.txt"
        let archive = tar {
            $0.directory("usr/")
            $0.file("./usr/bin/tool", "#!/bin/sh\n", mode: 0o755)
            $0.file(long, "deep")
            $0.pax(["path": "pax/named/ünïcode.txt", "size": "3"])
            $0.raw(name: "ignored", type: UInt8(ascii: "0"), content: Array("abc".utf8), mode: 0o600, link: "", size: 0)
            $0.symlink("usr/bin/sh", to: "../../bin/dash")
            $0.hardlink("usr/bin/tool2", to: "./usr/bin/tool")
        }
        let h = try await headers(archive)
        #expect(h.map(\.path) == ["usr", "usr/bin/tool", long, "pax/named/ünïcode.txt", "usr/bin/sh", "usr/bin/tool2"])
        #expect(h.map(\.kind) == [.directory, .file, .file, .file, .symlink, .hardlink])
        #expect(h[1].mode == 0o755 && h[1].size == 10)
        #expect(h[3].size == 3, "the PAX size overrides the header's")
        #expect(h[4].linkTarget == "../../bin/dash" && h[5].linkTarget == "usr/bin/tool")
    }

    /// Hostile names never leave the root; broken archives are errors with the byte offset, never crashes.
    @Test func hostileAndBrokenArchives() async throws {
        let escaping = tar {
            $0.file("../../../etc/passwd", "x")
            $0.file("/abs/path", "y")
            $0.file("a/./b/../c", "z")
        }
        #expect(try await headers(escaping).map(\.path) == ["etc/passwd", "abs/path", "a/c"])

        var corrupt = tar { $0.file("a", "hello") }
        corrupt[10] ^= 0xFF
        await #expect { try await headers(corrupt) } throws: { "\($0)".contains("tar header at byte 0 has a bad checksum") }

        let truncated = Array(tar { $0.file("a", String(repeating: "x", count: 5000)) }.prefix(2000))
        await #expect { try await headers(truncated) } throws: { "\($0)".contains("truncated") }

        var w = TarWriter()
        w.raw(name: "PaxHeader", type: UInt8(ascii: "x"), content: [], mode: 0, link: "", size: 2 << 20)
        await #expect { try await headers(w.finish()) } throws: { "\($0)".contains("extended header at byte 0 is 2097152 bytes (limit 1048576)") }

        var badSize = tar { $0.file("a", "hello") }
        badSize[124] = UInt8(ascii: "9")
        await #expect { try await headers(badSize) } throws: { "\($0)".contains("checksum") || "\($0)".contains("size field at byte 0 is not octal") }

        let partial = Array(tar { $0.file("a", "hello") }.prefix(1024)) + [1, 2, 3]
        await #expect { try await headers(partial) } throws: { "\($0)".contains("ends inside a header at byte 1024") }
    }

    @Test func gzipRoundTripsAcrossMembersAndPadding() async throws {
        let a = Array("first member ".utf8)
        let b = Array(String(repeating: "second member ", count: 10_000).utf8)
        let stream = try gzip(a) + gzip(b) + [0, 0, 0, 0]
        var source = try GunzipSource(BytesSource(stream, chunk: 333), outputSize: 4096)
        var out: [UInt8] = []
        while let c = try await source.next() { out += c }
        #expect(out == a + b)

        var broken = try gzip(b)
        broken[broken.count / 2] ^= 0x55
        var bad = try GunzipSource(BytesSource(broken))
        await #expect(throws: InventoryError.self) { while try await bad.next() != nil {} }
        var short = try GunzipSource(BytesSource(Array(try gzip(b).prefix(40))))
        await #expect { while try await short.next() != nil {} } throws: { "\($0)".contains("gzip stream ends early") }
    }
}

@Suite struct SquashTests {
    /// Whiteouts, opaque directories, a file replacing a directory, symlinks: the overlayfs view, each file with the
    /// layer that last wrote it.
    @Test func layersSquashLikeOverlayfs() async throws {
        let store = MemoryStore()
        let base = tar {
            $0.directory("etc")
            $0.file("etc/os-release", "ID=debian\n")
            $0.file("etc/keep", "1")
            $0.directory("opt/app")
            $0.file("opt/app/a", "a")
            $0.file("opt/app/b", "b")
            $0.directory("var/cache")
            $0.file("var/cache/x", "x")
            $0.file("srv/dir/inner", "inner")
            $0.file("gone", "bye")
        }
        let top = tar {
            $0.whiteout("gone")
            $0.file("opt/app/c", "c")  // listed before the opaque marker: still kept
            $0.opaque("opt/app")
            $0.whiteout("var/cache")
            $0.file("srv/dir", "now a file")
            $0.file("etc/keep", "2")
            $0.symlink("etc/link", to: "../../../../etc/keep")
        }
        let image = try await pushImage([base, top], to: store)
        let r = try await ImageSource.filesystem(of: image, in: store) { _, _, _ in .whole }
        let fs = r.filesystem
        let files = Set(fs.files.values.filter { $0.kind != .directory }.map(\.path))
        #expect(files == ["etc/os-release", "etc/keep", "opt/app/c", "srv/dir", "etc/link"])
        #expect(fs.files["etc/keep"]?.layer == 1 && fs.files["etc/os-release"]?.layer == 0)
        #expect(fs.files["var/cache"] == nil && fs.files["var/cache/x"] == nil && fs.files["srv/dir/inner"] == nil)
        #expect(fs.content("etc/link") == Array("2".utf8), "a symlink climbing past the root stays inside it")
        #expect(fs.versions["etc/keep"]?.map(\.layer) == [0, 1])
        #expect(r.platform == Platform(os: "linux", architecture: "amd64"))
        #expect(fs.layers.map(\.index) == [0, 1])
    }

    @Test func indexesPickTheRequestedPlatform() async throws {
        let store = MemoryStore()
        let amd = try await pushImage([tar { $0.file("arch", "amd64") }], to: store)
        let arm = try await pushImage([tar { $0.file("arch", "arm64") }], to: store, architecture: "arm64")
        var amdEntry = amd
        amdEntry.platform = Platform(os: "linux", architecture: "amd64")
        var armEntry = arm
        armEntry.platform = Platform(os: "linux", architecture: "arm64", variant: "v8")
        let index = try RawManifest.encode(ImageIndex(manifests: [amdEntry, armEntry]), mediaType: MediaType.imageIndex)
        try await store.push(index)
        let picked = try await ImageSource.filesystem(of: index.descriptor, in: store, platform: Platform(os: "linux", architecture: "arm64")) {
            _, _, _ in .whole
        }
        #expect(picked.filesystem.content("arch") == Array("arm64".utf8))
        #expect(picked.manifestDigest == arm.digest.description && picked.subjectDigest == index.descriptor.digest.description)
        await #expect {
            try await ImageSource.filesystem(of: index.descriptor, in: store, platform: Platform(os: "linux", architecture: "s390x")) { _, _, _ in
                .whole
            }
        } throws: { "\($0)".contains("no manifest for platform linux/s390x in the index (available: linux/amd64, linux/arm64/v8)") }
    }

    /// zstd layers (written by the zstd tool) read through the system's libzstd, also as concatenated frames;
    /// corrupt and truncated streams are errors naming the layer.
    @Test func zstdLayers() async throws {
        let dir = try makeTemporaryDirectory()
        let layerA = tar { $0.file("etc/os-release", "ID=alpine\n") }
        let layerB = tar { $0.file("big", String(repeating: "0123456789", count: 100_000)) }
        try Data(layerA).write(to: URL(fileURLWithPath: dir + "/a.tar"))
        try Data(layerB).write(to: URL(fileURLWithPath: dir + "/b.tar"))
        let zstd = try await runProgram(
            "/bin/sh",
            [
                "-c",
                "zstd -q -f \(dir)/a.tar -o \(dir)/a.zst && head -c 300000 \(dir)/b.tar > \(dir)/b1 && tail -c +300001 \(dir)/b.tar > \(dir)/b2 && zstd -q -f \(dir)/b1 -o \(dir)/b1.zst && zstd -q -f \(dir)/b2 -o \(dir)/b2.zst && cat \(dir)/b1.zst \(dir)/b2.zst > \(dir)/b.zst",
            ])
        try #require(zstd.status == 0, "the zstd tool is missing: scripts/test.sh installs it")
        let store = MemoryStore()
        func push(_ blobs: [[UInt8]]) async throws -> Descriptor {
            var layers: [Descriptor] = []
            for blob in blobs {
                let d = Descriptor(mediaType: MediaType.imageLayerZstd, digest: OCI.Digest.compute(Data(blob)), size: Int64(blob.count))
                try await store.push(d, bytes: Data(blob))
                layers.append(d)
            }
            let config = Data("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}".utf8)
            let c = Descriptor(mediaType: MediaType.imageConfig, digest: OCI.Digest.compute(config), size: Int64(config.count))
            try await store.push(c, bytes: config)
            let m = try RawManifest.encode(ImageManifest(config: c, layers: layers), mediaType: MediaType.imageManifest)
            try await store.push(m)
            return m.descriptor
        }
        let read = { (name: String) in [UInt8](try! Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))) }
        let image = try await push([read("a.zst"), read("b.zst")])
        let fs = try await ImageSource.filesystem(of: image, in: store) { _, _, _ in .whole }.filesystem
        #expect(fs.content("etc/os-release") == Array("ID=alpine\n".utf8))
        #expect(fs.content("big")?.count == 1_000_000)

        var corrupt = read("b.zst")
        corrupt[corrupt.count / 2] ^= 0xFF
        let bad = try await push([corrupt])
        await #expect { try await ImageSource.filesystem(of: bad, in: store) { _, _, _ in .whole } } throws: {
            "\($0)".contains("zstd data is corrupt") || "\($0)".contains("tar")
        }
        let short = try await push([Array(read("a.zst").dropLast(8))])
        await #expect { try await ImageSource.filesystem(of: short, in: store) { _, _, _ in .whole } } throws: {
            "\($0)".contains("layer sha256:") && ("\($0)".contains("truncated") || "\($0)".contains("corrupt"))
        }
    }

    /// `docker save` archives (manifest.json + layer tars) and plain directories are sources too.
    @Test func dockerArchivesAndDirectories() async throws {
        let dir = try makeTemporaryDirectory()
        let layer1 = tar { $0.file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.0\n") }
        let layer2 = tar { $0.file("lib/apk/db/installed", "P:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\no:musl\n\n") }
        let config = #"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
        let outer = tar {
            $0.file("manifest.json", #"[{"Config":"cfg.json","RepoTags":["x:1"],"Layers":["aaaa/layer.tar","blobs/sha256/bbbb"]}]"#)
            $0.file("cfg.json", config)
            $0.file("aaaa/layer.tar", layer1)
            $0.file("blobs/sha256/bbbb", try! gzip(layer2))
        }
        try Data(outer).write(to: URL(fileURLWithPath: dir + "/image.tar"))
        let r = try await ImageSource.dockerArchive(path: dir + "/image.tar") { _, _, _ in .whole }
        #expect(r.filesystem.content("lib/apk/db/installed") != nil)
        #expect(r.filesystem.layers.map(\.digest) == ["aaaa/layer.tar", "sha256:bbbb"])
        #expect(r.platform?.architecture == "arm64")
        let (distro, packages) = Catalogers.catalog(r.filesystem)
        #expect(distro?.id == "alpine")
        #expect(packages.map(\.purl) == ["pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.0"])
        #expect(packages.first?.layer == "sha256:bbbb")

        try Data("not a tar".utf8).write(to: URL(fileURLWithPath: dir + "/bad.tar"))
        await #expect { try await ImageSource.dockerArchive(path: dir + "/bad.tar") { _, _, _ in .whole } } throws: {
            "\($0)".contains("bad.tar")
        }

        let root = dir + "/rootfs"
        try FileManager.default.createDirectory(atPath: root + "/usr/lib", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try Data("ID=debian\nVERSION_ID=\"12\"\n".utf8).write(to: URL(fileURLWithPath: root + "/usr/lib/os-release"))
        try FileManager.default.createSymbolicLink(atPath: root + "/etc/os-release", withDestinationPath: "../usr/lib/os-release")
        let d = try ImageSource.directory(path: root, capture: Catalogers.capture)
        #expect(d.filesystem.files["etc/os-release"]?.kind == .symlink)
        #expect(OSRelease.read(d.filesystem)?.versionID == "12")
    }
}
