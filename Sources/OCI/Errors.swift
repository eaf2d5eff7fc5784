import Foundation

/// An error with a stable code callers can match on and a reason people can read.
///
/// The reason always names the offending input (a reference, a digest, a file and position, an HTTP status) and,
/// where one exists, what to do about it.
public struct OCIError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        case invalidReference
        case invalidDigest
        case digestMismatch
        case sizeMismatch
        case invalidManifest
        case notFound
        case unauthorized
        case denied
        case unsupported
        case layout
        case registry
        case transport
        case throttled
        case invalidArgument
        /// A registry refused a manifest because it does not have a blob the manifest references
        /// (`MANIFEST_BLOB_UNKNOWN`).
        case manifestBlobUnknown
    }

    public var code: Code
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }
}
