import Foundation

/// An OCI image manifest or a Docker v2 schema 2 manifest (same shape; `mediaType` tells them apart).
public struct ImageManifest: Sendable, Codable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var artifactType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(
        mediaType: String? = MediaType.imageManifest, artifactType: String? = nil, config: Descriptor,
        layers: [Descriptor], subject: Descriptor? = nil, annotations: [String: String]? = nil
    ) {
        self.schemaVersion = 2
        self.mediaType = mediaType
        self.artifactType = artifactType
        self.config = config
        self.layers = layers
        self.subject = subject
        self.annotations = annotations
    }
}

/// An OCI image index or a Docker manifest list.
public struct ImageIndex: Sendable, Codable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var artifactType: String?
    public var manifests: [Descriptor]
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(
        mediaType: String? = MediaType.imageIndex, artifactType: String? = nil, manifests: [Descriptor],
        subject: Descriptor? = nil, annotations: [String: String]? = nil
    ) {
        self.schemaVersion = 2
        self.mediaType = mediaType
        self.artifactType = artifactType
        self.manifests = manifests
        self.subject = subject
        self.annotations = annotations
    }
}

/// The parts of an image configuration Warden reads (OCI and Docker share them).
public struct ImageConfig: Sendable, Codable, Equatable {
    public struct RootFS: Sendable, Codable, Equatable {
        public var type: String
        public var diffIDs: [String]
        enum CodingKeys: String, CodingKey {
            case type
            case diffIDs = "diff_ids"
        }
    }
    public struct Config: Sendable, Codable, Equatable {
        public var User: String?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var WorkingDir: String?
        public var Labels: [String: String]?

        public init(
            User: String? = nil, Env: [String]? = nil, Entrypoint: [String]? = nil, Cmd: [String]? = nil,
            WorkingDir: String? = nil, Labels: [String: String]? = nil
        ) {
            self.User = User
            self.Env = Env
            self.Entrypoint = Entrypoint
            self.Cmd = Cmd
            self.WorkingDir = WorkingDir
            self.Labels = Labels
        }
    }
    public struct History: Sendable, Codable, Equatable {
        public var created: String?
        public var createdBy: String?
        public var emptyLayer: Bool?
        enum CodingKeys: String, CodingKey {
            case created
            case createdBy = "created_by"
            case emptyLayer = "empty_layer"
        }
    }
    public var created: String?
    public var architecture: String
    public var os: String
    public var variant: String?
    public var config: Config?
    public var rootfs: RootFS
    public var history: [History]?

    public init(architecture: String, os: String, variant: String? = nil, diffIDs: [Digest], created: String? = nil) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
        self.created = created
        self.rootfs = RootFS(type: "layers", diffIDs: diffIDs.map(\.description))
    }
}

/// A manifest exactly as stored: its bytes, media type and the digest of those bytes.
///
/// Warden never re-encodes a manifest it moves: digests are computed over `bytes` as fetched.
public struct RawManifest: Sendable, Equatable {
    public let bytes: Data
    public let mediaType: String
    public let digest: Digest

    /// Wraps fetched bytes; `mediaType` comes from the transport (Content-Type) or, when absent, from the content.
    public init(bytes: Data, mediaType: String? = nil, digest: Digest? = nil) throws {
        self.bytes = bytes
        self.digest = digest ?? Digest.compute(bytes)
        if let mediaType, MediaType.isManifest(mediaType) {
            self.mediaType = mediaType
        } else {
            self.mediaType = try RawManifest.sniffMediaType(bytes)
        }
    }

    public var descriptor: Descriptor {
        var d = Descriptor(mediaType: mediaType, digest: digest, size: Int64(bytes.count))
        d.artifactType = try? parsed().artifactType
        return d
    }

    /// The media type declared in or implied by a manifest's JSON.
    public static func sniffMediaType(_ bytes: Data) throws -> String {
        struct Probe: Decodable {
            var mediaType: String?
            var schemaVersion: Int?
            var manifests: [AnyCodable]?
            var layers: [AnyCodable]?
            var config: AnyCodable?
        }
        struct AnyCodable: Decodable { init(from decoder: Decoder) throws {} }
        let probe: Probe
        do {
            probe = try JSONDecoder().decode(Probe.self, from: bytes)
        } catch {
            throw OCIError(.invalidManifest, "manifest is not valid JSON: \(describe(error))")
        }
        if let mt = probe.mediaType, MediaType.isManifest(mt) { return mt }
        if probe.schemaVersion == 1 {
            throw OCIError(.unsupported, "Docker schema 1 manifests are not supported; convert the image to schema 2 or OCI")
        }
        if probe.manifests != nil { return MediaType.imageIndex }
        if probe.config != nil || probe.layers != nil { return MediaType.imageManifest }
        throw OCIError(.invalidManifest, "content is not an OCI or Docker manifest (mediaType \(probe.mediaType ?? "absent"))")
    }

    public enum Parsed: Sendable {
        case image(ImageManifest)
        case index(ImageIndex)

        public var subject: Descriptor? {
            switch self {
            case .image(let m): m.subject
            case .index(let i): i.subject
            }
        }
        public var artifactType: String? {
            switch self {
            case .image(let m): m.artifactType ?? m.config.mediaType
            case .index(let i): i.artifactType
            }
        }
        public var annotations: [String: String]? {
            switch self {
            case .image(let m): m.annotations
            case .index(let i): i.annotations
            }
        }
    }

    /// Decodes the manifest. Decoding never changes `bytes` or `digest`.
    public func parsed() throws -> Parsed {
        do {
            if MediaType.isIndex(mediaType) {
                let index = try JSONDecoder().decode(ImageIndex.self, from: bytes)
                return .index(index)
            }
            let manifest = try JSONDecoder().decode(ImageManifest.self, from: bytes)
            return .image(manifest)
        } catch let error as OCIError {
            throw error
        } catch {
            throw OCIError(.invalidManifest, "manifest \(digest) (\(mediaType)) cannot be decoded: \(describe(error))")
        }
    }

    /// Direct children of this manifest: config and layers, or the manifests of an index.
    public func children() throws -> [Descriptor] {
        switch try parsed() {
        case .image(let m): return [m.config] + m.layers
        case .index(let i): return i.manifests
        }
    }

    /// Encodes a manifest value canonically (sorted keys, no escaped slashes), for manifests Warden creates.
    public static func encode<T: Encodable>(_ value: T, mediaType: String) throws -> RawManifest {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try RawManifest(bytes: encoder.encode(value), mediaType: mediaType)
    }
}

/// A readable summary of a decoding error, with the JSON path where it happened.
public func describe(_ error: Error) -> String {
    if let e = error as? DecodingError {
        func path(_ ctx: DecodingError.Context) -> String {
            let p = ctx.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return p.isEmpty ? "at the top level" : "at \(p)"
        }
        switch e {
        case .typeMismatch(let t, let ctx): return "expected \(t) \(path(ctx))"
        case .valueNotFound(let t, let ctx): return "missing \(t) value \(path(ctx))"
        case .keyNotFound(let k, let ctx): return "missing key \"\(k.stringValue)\" \(path(ctx))"
        case .dataCorrupted(let ctx):
            return "\(ctx.debugDescription) \(path(ctx))" + ((ctx.underlyingError as NSError?).map { " (\($0.localizedDescription))" } ?? "")
        @unknown default: return "\(e)"
        }
    }
    return "\(error)"
}
