import Foundation
import OCI

/// A small, fast, seedable generator (SplitMix64): the same seed gives the same images.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func bytes(_ count: Int) -> Data {
        var data = Data(count: count)
        data.withUnsafeMutableBytes { raw in
            let words = count / 8
            let p = raw.baseAddress!
            for i in 0..<words { p.storeBytes(of: next(), toByteOffset: i * 8, as: UInt64.self) }
            for i in (words * 8)..<count { p.storeBytes(of: UInt8(truncatingIfNeeded: next()), toByteOffset: i, as: UInt8.self) }
        }
        return data
    }
}

/// Random, valid content for tests and benchmarks: images whose layers are real (uncompressed) tar archives,
/// multi-platform indexes, and artifacts that refer to a subject.
public struct RandomContent: Sendable {
    public var generator: SeededGenerator

    public init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

    /// A tar archive holding one regular file of `size` random bytes.
    public mutating func layer(size: Int, name: String = "data.bin") -> Data {
        Tar.archive(files: [(name, generator.bytes(size))])
    }

    /// Pushes an image (layers, config, manifest) into `store` and returns its manifest. `baseLayers` (layer
    /// archives, e.g. from `layer(size:)`) come first, so images made with the same ones share those blobs.
    public mutating func pushImage(
        to store: some ContentWriter, layerSizes: [Int], platform: Platform = Platform(os: "linux", architecture: "amd64"),
        annotations: [String: String]? = nil, baseLayers: [Data] = []
    ) async throws -> RawManifest {
        var layers: [Descriptor] = []
        for tar in baseLayers {
            let d = Descriptor.of(tar, mediaType: MediaType.imageLayer)
            try await store.push(d, bytes: tar)
            layers.append(d)
        }
        for (i, size) in layerSizes.enumerated() {
            let tar = layer(size: size, name: "layer\(i).bin")
            let d = Descriptor.of(tar, mediaType: MediaType.imageLayer)
            try await store.push(d, bytes: tar)
            layers.append(d)
        }
        var config = ImageConfig(
            architecture: platform.architecture, os: platform.os, variant: platform.variant, diffIDs: layers.map(\.digest),
            created: "2026-01-01T00:00:00Z")
        config.config = .init(Env: ["PATH=/usr/bin:/bin"], Cmd: ["/bin/sh"], Labels: ["random.seed": "\(generator.next())"])
        let configBytes = try JSONEncoder.canonical.encode(config)
        let configDesc = Descriptor.of(configBytes, mediaType: MediaType.imageConfig)
        try await store.push(configDesc, bytes: configBytes)
        let manifest = try RawManifest.encode(
            ImageManifest(config: configDesc, layers: layers, annotations: annotations), mediaType: MediaType.imageManifest)
        try await store.push(manifest)
        return manifest
    }

    /// Pushes one image per platform and an index over them.
    public mutating func pushIndex(to store: some ContentWriter, platforms: [Platform], layerSizes: [Int]) async throws -> RawManifest {
        var entries: [Descriptor] = []
        for p in platforms {
            let m = try await pushImage(to: store, layerSizes: layerSizes, platform: p)
            var d = m.descriptor
            d.platform = p
            entries.append(d)
        }
        let index = try RawManifest.encode(ImageIndex(manifests: entries), mediaType: MediaType.imageIndex)
        try await store.push(index)
        return index
    }

    /// Pushes an artifact (empty config, one JSON layer) whose `subject` is `subject`.
    public mutating func pushArtifact(
        to store: some ContentWriter, subject: Descriptor, artifactType: String, payload: Data? = nil,
        annotations: [String: String]? = nil
    ) async throws -> RawManifest {
        let body = payload ?? Data("{\"random\":\"\(generator.next())\"}".utf8)
        let layer = Descriptor.of(body, mediaType: "application/json")
        try await store.push(layer, bytes: body)
        try await store.push(Descriptor.emptyJSON, bytes: Descriptor.emptyJSONBytes)
        var config = Descriptor.emptyJSON
        config.data = nil
        let manifest = try RawManifest.encode(
            ImageManifest(artifactType: artifactType, config: config, layers: [layer], subject: subject.plain, annotations: annotations),
            mediaType: MediaType.imageManifest)
        try await store.push(manifest)
        return manifest
    }

    /// Pushes a cosign-style legacy signature manifest (simple-signing layer with a signature annotation) for
    /// `subject`; the caller tags it `sha256-<hex>.sig`.
    public mutating func pushCosignSignature(to store: some ContentWriter, subject: Descriptor, dockerReference: String) async throws -> RawManifest {
        let payload = try JSONSerialization.data(
            withJSONObject: [
                "critical": [
                    "identity": ["docker-reference": dockerReference], "image": ["docker-manifest-digest": subject.digest.description],
                    "type": "cosign container image signature",
                ],
                "optional": NSNull(),
            ], options: [.sortedKeys])
        var layer = Descriptor.of(payload, mediaType: MediaType.cosignSimpleSigning)
        layer.annotations = ["dev.cosignproject.cosign/signature": generator.bytes(64).base64EncodedString()]
        try await store.push(layer, bytes: payload)
        let configBytes = Data(
            #"{"architecture":"","config":{},"created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[]}}"#
                .utf8)
        let config = Descriptor.of(configBytes, mediaType: MediaType.imageConfig)
        try await store.push(config, bytes: configBytes)
        let manifest = try RawManifest.encode(ImageManifest(config: config, layers: [layer]), mediaType: MediaType.imageManifest)
        try await store.push(manifest)
        return manifest
    }
}

extension JSONEncoder {
    /// Sorted keys, unescaped slashes: stable bytes for content Warden creates.
    public static var canonical: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}

/// Writes minimal POSIX ustar archives.
public enum Tar {
    public static func archive(files: [(String, Data)]) -> Data {
        var out = Data()
        for (name, content) in files {
            var header = [UInt8](repeating: 0, count: 512)
            func put(_ s: String, _ offset: Int, _ length: Int) {
                let bytes = Array(s.utf8.prefix(length))
                for (i, b) in bytes.enumerated() { header[offset + i] = b }
            }
            func octal(_ value: Int, _ offset: Int, _ length: Int) {
                put(String(String(value, radix: 8).suffix(length - 1)).leftPadded(to: length - 1), offset, length - 1)
            }
            put(name, 0, 100)
            octal(0o644, 100, 8)
            octal(0, 108, 8)
            octal(0, 116, 8)
            octal(content.count, 124, 12)
            octal(0, 136, 12)
            for i in 148..<156 { header[i] = 0x20 }
            header[156] = UInt8(ascii: "0")
            put("ustar", 257, 6)
            put("00", 263, 2)
            let sum = header.reduce(0) { $0 + Int($1) }
            put(String(String(sum, radix: 8)).leftPadded(to: 6), 148, 6)
            header[154] = 0
            header[155] = 0x20
            out.append(contentsOf: header)
            out.append(content)
            let pad = (512 - content.count % 512) % 512
            out.append(Data(count: pad))
        }
        out.append(Data(count: 1024))
        return out
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
