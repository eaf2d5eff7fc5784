import Documents
import Foundation
import Inventory
import OCI
import Storage
import Trust
import Vulnerability
import Workflow

/// What an error means to every surface, decided in one place: the CLI's exit code, whether a workflow attempt that
/// met it may be retried, and the HTTP status the API answers with. The reason names the input.
public struct ErrorDisposition: Sendable, Equatable {
    /// The exit code of a one-shot command (the table in `warden --help`).
    public var exitCode: Int32
    /// True when trying again may succeed (network, throttling, a registry's 5xx); false when it cannot (missing
    /// content, refused credentials, malformed input, content that fails its digest).
    public var retryable: Bool
    /// The status of an HTTP answer about this error.
    public var httpStatus: Int
    public var reason: String

    public init(exitCode: Int32, retryable: Bool, httpStatus: Int, reason: String) {
        self.exitCode = exitCode
        self.retryable = retryable
        self.httpStatus = httpStatus
        self.reason = reason
    }

    /// The disposition of `error`.
    public init(_ error: Error) {
        switch error {
        case let e as OCIError:
            switch e.code {
            case .digestMismatch, .sizeMismatch: self.init(exitCode: 2, retryable: false, httpStatus: 502, reason: e.reason)
            case .notFound: self.init(exitCode: 3, retryable: false, httpStatus: 404, reason: e.reason)
            case .unauthorized, .denied: self.init(exitCode: 4, retryable: false, httpStatus: 403, reason: e.reason)
            case .invalidReference, .invalidArgument, .invalidDigest: self.init(exitCode: 64, retryable: false, httpStatus: 400, reason: e.reason)
            default: self.init(exitCode: 1, retryable: true, httpStatus: 502, reason: e.reason)
            }
        case let e as TrustError:
            if e.code == .wrongPassword {
                self.init(exitCode: 4, retryable: false, httpStatus: 403, reason: e.reason)
            } else {
                self.init(exitCode: 1, retryable: false, httpStatus: 422, reason: e.reason)
            }
        case let e as InventoryError:
            if e.code == .notFound {
                self.init(exitCode: 3, retryable: false, httpStatus: 404, reason: e.reason)
            } else {
                // A read that failed may succeed again; malformed or unsupported content will not.
                self.init(exitCode: 1, retryable: e.code == .io, httpStatus: e.code == .io ? 500 : 422, reason: e.reason)
            }
        case let e as VulnerabilityError:
            switch e.code {
            case .notFound: self.init(exitCode: 3, retryable: false, httpStatus: 404, reason: e.reason)
            // A read or write of the database that failed may succeed again.
            case .io: self.init(exitCode: 1, retryable: true, httpStatus: 500, reason: e.reason)
            // The database is there but too old: importing newer advisories fixes it, trying again does not.
            case .stale: self.init(exitCode: 1, retryable: false, httpStatus: 409, reason: e.reason)
            // Malformed or unsupported input, a refused statement: the input has to change.
            default: self.init(exitCode: 1, retryable: false, httpStatus: 422, reason: e.reason)
            }
        case let e as WorkflowError:
            let status =
                switch e.code {
                case .invalid: 400
                case .notFound: 404
                case .conflict: 409
                case .forbidden: 403
                default: 500
                }
            self.init(exitCode: 1, retryable: e.code == .failed, httpStatus: status, reason: e.description)
        case let e as YAMLError: self.init(exitCode: 1, retryable: false, httpStatus: e.code == .unreadable ? 422 : 400, reason: "\(e)")
        case let e as StateError:
            if e.code == .conflict {
                self.init(exitCode: 1, retryable: false, httpStatus: 409, reason: e.reason)
            } else {
                self.init(exitCode: 1, retryable: true, httpStatus: 500, reason: e.reason)
            }
        case let e as MalwareScanError:
            switch e.code {
            // The content is larger than clamd accepts: scanning it again is refused again (StreamMaxLength has to grow).
            case .sizeLimitExceeded: self.init(exitCode: 1, retryable: false, httpStatus: 422, reason: e.reason)
            // The configuration names no clamd: it has to change.
            case .invalidAddress: self.init(exitCode: 64, retryable: false, httpStatus: 500, reason: e.reason)
            // clamd down, restarting, slow or busy: a later attempt may reach it.
            case .unreachable, .connectionClosed, .timedOut, .scanFailed: self.init(exitCode: 1, retryable: true, httpStatus: 503, reason: e.reason)
            // Something that is not clamd answers.
            default: self.init(exitCode: 1, retryable: false, httpStatus: 502, reason: e.reason)
            }
        case let e as FileError: self.init(exitCode: 1, retryable: true, httpStatus: 500, reason: e.reason)
        case is CancellationError: self.init(exitCode: 1, retryable: true, httpStatus: 503, reason: "cancelled")
        default: self.init(exitCode: 1, retryable: true, httpStatus: 500, reason: "\(error)")
        }
    }
}
