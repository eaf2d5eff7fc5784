import Foundation

/// Platform of an image, as found in an index entry or an image config.
public struct Platform: Hashable, Sendable, Codable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var osVersion: String?
    public var osFeatures: [String]?
    public var variant: String?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// Parses `os/arch[/variant]`.
    public init(parsing string: String) throws {
        let parts = string.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else {
            throw OCIError(.invalidArgument, "invalid platform \"\(string)\": expected OS/ARCH[/VARIANT], e.g. linux/arm64/v8")
        }
        self.init(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
    }

    public var description: String {
        "\(os)/\(architecture)" + (variant.map { "/\($0)" } ?? "")
    }

    /// Whether `self` (a requested platform) matches `candidate`; a request without variant matches any variant.
    public func matches(_ candidate: Platform) -> Bool {
        guard os == candidate.os, architecture == candidate.architecture else { return false }
        if let variant { return variant == candidate.variant }
        return true
    }
}

/// A content descriptor: what a piece of content is, its digest and size, and where else to find it.
public struct Descriptor: Hashable, Sendable, Codable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var urls: [String]?
    public var annotations: [String: String]?
    public var data: String?
    public var platform: Platform?
    public var artifactType: String?

    public init(
        mediaType: String, digest: Digest, size: Int64, urls: [String]? = nil,
        annotations: [String: String]? = nil, data: String? = nil, platform: Platform? = nil,
        artifactType: String? = nil
    ) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.urls = urls
        self.annotations = annotations
        self.data = data
        self.platform = platform
        self.artifactType = artifactType
    }

    /// A descriptor for the given bytes.
    public static func of<D: DataProtocol>(_ bytes: D, mediaType: String) -> Descriptor {
        Descriptor(mediaType: mediaType, digest: Digest.compute(bytes), size: Int64(bytes.count))
    }

    /// The empty JSON config descriptor `{}` of OCI image spec 1.1.
    public static let emptyJSON = Descriptor(
        mediaType: MediaType.emptyJSON,
        digest: try! Digest(parsing: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"),
        size: 2, data: "e30=")
    public static let emptyJSONBytes = Data("{}".utf8)

    /// The same descriptor stripped to the identity of the content (media type, digest, size).
    public var plain: Descriptor { Descriptor(mediaType: mediaType, digest: digest, size: size) }
}
