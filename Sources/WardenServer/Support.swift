import CEL
import Documents
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import WardenApp

/// The request context of every route: who called (once authenticated) and the request's id.
public struct ServerContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var principal: Principal?
    public var requestID: String
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        requestID = ServerContext.newRequestID()
    }
    /// The server enforces its own body limit (`limits.bodyBytes`) with a problem document.
    public var maxUploadSize: Int { Int.max }

    static func newRequestID() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }
}

/// An RFC 7807 problem document: the one error envelope of every route (`application/problem+json`), with a stable
/// `code` a client can switch on.
public struct Problem: Error, Encodable, Sendable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String
    public var code: String
    public var instance: String?
    public var requestId: String?
    /// Extra headers of the answer (`Retry-After`, `WWW-Authenticate`, `RateLimit-*`); not in the body.
    var headers: [(String, String)] = []

    enum CodingKeys: String, CodingKey { case type, title, status, detail, code, instance, requestId }

    public init(status: Int, code: String, detail: String) {
        self.status = status
        self.code = code
        self.detail = detail
        type = "https://warden.dev/problems/\(code)"
        title = Problem.titles[status] ?? (status >= 500 ? "Server Error" : "Client Error")
    }

    static let titles = [
        400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
        413: "Content Too Large", 422: "Unprocessable Content", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
        503: "Service Unavailable",
    ]

    public static let contentType = "application/problem+json"

    /// The problem an error stands for: the control plane's codes, Hummingbird's own refusals, then the one error
    /// table (`ErrorDisposition`) for everything else.
    public init(_ error: any Error) {
        switch error {
        case let p as Problem: self = p
        case let e as ControlError:
            let status =
                switch e.code {
                case .unauthenticated: 401
                case .forbidden: 403
                case .notFound: 404
                case .conflict: 409
                case .unprocessable: 422
                case .tooLarge: 413
                case .rateLimited: 429
                case .unsupportedMediaType: 415
                case .misconfigured: 500
                default: 400
                }
            self.init(status: status, code: e.code.rawValue, detail: e.reason)
        case let e as HTTPError:
            let status = Int(e.status.code)
            let code =
                switch status {
                case 404: "route-not-found"
                case 405: "method-not-allowed"
                case 413: "too-large"
                default: status >= 500 ? "internal" : "invalid"
                }
            self.init(status: status, code: code, detail: e.body ?? e.status.reasonPhrase)
        case let e as JSONError: self.init(status: 400, code: "invalid-json", detail: "request body: \(e.description)")
        default:
            let d = ErrorDisposition(error)
            let code: String =
                switch d.httpStatus {
                case 400: "invalid"
                case 403: "forbidden"
                case 404: "not-found"
                case 409: "conflict"
                case 422: "unprocessable"
                case 503: "unavailable"
                default: d.httpStatus >= 500 ? "internal" : "invalid"
                }
            self.init(status: d.httpStatus, code: code, detail: d.reason)
        }
    }

    func response(requestID: String?, instance: String?) -> Response {
        var p = self
        p.requestId = requestID
        p.instance = instance
        let data = (try? JSONEncoder.api.encode(p)) ?? Data("{}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = Problem.contentType
        for (k, v) in self.headers { if let name = HTTPField.Name(k) { headers[name] = v } }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(data: data)))
    }
}

extension JSONEncoder {
    /// The API's JSON: sorted keys, RFC 3339 dates.
    static let api = RFC3339.encoder(pretty: false)
}

/// A JSON answer.
func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers extra: [(HTTPField.Name, String)] = []) throws -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    for (k, v) in extra { headers[k] = v }
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(data: try JSONEncoder.api.encode(value))))
}

/// A request body read as a JSON object (CEL values: the int/double rule, a nesting limit), or a 400 naming the
/// position.
func jsonObject(_ body: ByteBuffer) throws -> [String: Value] {
    let bytes = Array(buffer: body)
    if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) {
        throw Problem(status: 400, code: "invalid-json", detail: "the request body is empty; send a JSON object")
    }
    guard case .map(let pairs) = try Value.parseJSON(bytes) else {
        throw Problem(status: 400, code: "invalid-json", detail: "the request body must be a JSON object")
    }
    var out: [String: Value] = [:]
    for (k, v) in pairs { if case .string(let s) = k { out[s] = v } }
    return out
}

extension Dictionary where Key == String, Value == CEL.Value {
    func string(_ key: String, required: Bool = false) throws -> String? {
        switch self[key] {
        case nil, .null?:
            if required { throw Problem(status: 400, code: "invalid", detail: "\(key) is required") }
            return nil
        case .string(let s)?: return s
        default: throw Problem(status: 400, code: "invalid", detail: "\(key) must be a string")
        }
    }
    func int(_ key: String) throws -> Int? {
        switch self[key] {
        case nil, .null?: return nil
        case .int(let i)?: return Int(i)
        case .uint(let u)?: return Int(u)
        default: throw Problem(status: 400, code: "invalid", detail: "\(key) must be an integer")
        }
    }
    func object(_ key: String) throws -> [String: CEL.Value] {
        switch self[key] {
        case nil, .null?: return [:]
        case .map(let pairs)?:
            var out: [String: CEL.Value] = [:]
            for (k, v) in pairs { if case .string(let s) = k { out[s] = v } }
            return out
        default: throw Problem(status: 400, code: "invalid", detail: "\(key) must be a JSON object")
        }
    }
    func strings(_ key: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in try object(key) {
            guard case .string(let s) = v else { throw Problem(status: 400, code: "invalid", detail: "\(key).\(k) must be a string") }
            out[k] = s
        }
        return out
    }
    /// Refuses keys the route does not take.
    func only(_ keys: [String]) throws {
        for k in self.keys where !keys.contains(k) {
            throw Problem(status: 400, code: "invalid", detail: "unknown field \"\(k.prefix(80))\"; expected: \(keys.joined(separator: ", "))")
        }
    }
}

/// The query parameter `name`, or nil.
func query(_ request: Request, _ name: String) -> String? { request.uri.queryParameters.get(name) }
