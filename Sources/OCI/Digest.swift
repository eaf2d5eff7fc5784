import Crypto
import Foundation

/// A content digest `algorithm:encoded` as defined by the OCI image spec (sha256 and sha512 are supported).
public struct Digest: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public enum Algorithm: String, Sendable, CaseIterable {
        case sha256
        case sha512

        /// Length of the lowercase hex encoding.
        public var hexLength: Int { self == .sha256 ? 64 : 128 }
    }

    public let algorithm: Algorithm
    /// Lowercase hex encoding of the hash.
    public let hex: String

    /// Parses and validates `sha256:<64 hex>` or `sha512:<128 hex>`.
    public init(parsing string: String) throws {
        guard let colon = string.firstIndex(of: ":") else {
            throw OCIError(.invalidDigest, "invalid digest \"\(string)\": expected ALGORITHM:HEX, e.g. sha256:<64 hex digits>")
        }
        let algo = String(string[..<colon])
        let hex = String(string[string.index(after: colon)...])
        guard let algorithm = Algorithm(rawValue: algo) else {
            throw OCIError(.invalidDigest, "invalid digest \"\(string)\": unsupported algorithm \"\(algo)\" (supported: sha256, sha512)")
        }
        guard hex.utf8.count == algorithm.hexLength else {
            throw OCIError(
                .invalidDigest,
                "invalid digest \"\(string)\": \(algo) needs \(algorithm.hexLength) hex digits, found \(hex.utf8.count)")
        }
        guard hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw OCIError(.invalidDigest, "invalid digest \"\(string)\": the encoded part must be lowercase hex [0-9a-f]")
        }
        self.algorithm = algorithm
        self.hex = hex
    }

    public init(algorithm: Algorithm, hex: String) throws {
        try self.init(parsing: "\(algorithm.rawValue):\(hex)")
    }

    public var description: String { "\(algorithm.rawValue):\(hex)" }

    /// The digest as used in the referrers tag schema: `sha256-<hex>`.
    public var tagSchema: String { "\(algorithm.rawValue)-\(hex)" }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.description < rhs.description }

    /// Digest of a complete byte buffer.
    public static func compute<D: DataProtocol>(_ data: D, algorithm: Algorithm = .sha256) -> Digest {
        var hasher = DigestHasher(algorithm)
        hasher.update(data)
        return hasher.finalize()
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        try self.init(parsing: container.decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Incremental digest computation for streamed content.
public struct DigestHasher {
    private enum State {
        case sha256(SHA256)
        case sha512(SHA512)
    }
    private var state: State
    public let algorithm: Digest.Algorithm

    public init(_ algorithm: Digest.Algorithm) {
        self.algorithm = algorithm
        switch algorithm {
        case .sha256: state = .sha256(SHA256())
        case .sha512: state = .sha512(SHA512())
        }
    }

    public mutating func update<D: DataProtocol>(_ data: D) {
        switch state {
        case .sha256(var h):
            h.update(data: data)
            state = .sha256(h)
        case .sha512(var h):
            h.update(data: data)
            state = .sha512(h)
        }
    }

    public mutating func update(bufferPointer: UnsafeRawBufferPointer) {
        switch state {
        case .sha256(var h):
            h.update(bufferPointer: bufferPointer)
            state = .sha256(h)
        case .sha512(var h):
            h.update(bufferPointer: bufferPointer)
            state = .sha512(h)
        }
    }

    public func finalize() -> Digest {
        let bytes: [UInt8]
        switch state {
        case .sha256(let h): bytes = Array(h.finalize())
        case .sha512(let h): bytes = Array(h.finalize())
        }
        // Hex encoding of a hash is always valid for its algorithm.
        return try! Digest(algorithm: algorithm, hex: bytes.hexString)
    }
}

extension Sequence where Element == UInt8 {
    /// Lowercase hex encoding.
    public var hexString: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(underestimatedCount * 2)
        for b in self {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
