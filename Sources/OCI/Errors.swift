import Foundation

/// An error with a stable code callers can match on and a reason people can read.
///
/// The reason always names the offending input (a reference, a digest, a file and position, an HTTP status) and,
/// where one exists, what to do about it.
public struct OCIError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The error's code: extensible (a new code is a new static member), compared by value; errors compare
    /// equal when their codes do.
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        public static let invalidReference = Code(rawValue: "invalidReference")
        public static let invalidDigest = Code(rawValue: "invalidDigest")
        public static let digestMismatch = Code(rawValue: "digestMismatch")
        public static let sizeMismatch = Code(rawValue: "sizeMismatch")
        public static let invalidManifest = Code(rawValue: "invalidManifest")
        public static let notFound = Code(rawValue: "notFound")
        public static let unauthorized = Code(rawValue: "unauthorized")
        public static let denied = Code(rawValue: "denied")
        public static let unsupported = Code(rawValue: "unsupported")
        public static let layout = Code(rawValue: "layout")
        public static let registry = Code(rawValue: "registry")
        public static let transport = Code(rawValue: "transport")
        public static let throttled = Code(rawValue: "throttled")
        public static let invalidArgument = Code(rawValue: "invalidArgument")
        /// A registry refused a manifest because it does not have a blob the manifest references
        /// (`MANIFEST_BLOB_UNKNOWN`).
        public static let manifestBlobUnknown = Code(rawValue: "manifestBlobUnknown")
    }

    public var code: Code
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }

    public static func == (a: OCIError, b: OCIError) -> Bool { a.code == b.code }
}
