import Crypto
import Foundation

/// SHA-256 of a few strings, for ids that stay the same for the same content.
enum StableHash {
    /// The SHA-256 of `parts` joined by NUL characters.
    static func sha256(_ parts: [String]) -> [UInt8] { Array(SHA256.hash(data: Data(parts.joined(separator: "\u{0}").utf8))) }

    static func hex(_ bytes: some Sequence<UInt8>) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
}
