import CEL
import Crypto
import Documents
import Foundation

/// The payload a receiver understands.
public enum ReceiverFormat: String, Sendable, CaseIterable, Codable {
    /// CNCF Distribution (`registry:2`/`registry:3`) notifications, and registries that send its envelope.
    case distribution
    /// Harbor webhooks, in its Default payload format or as CloudEvents (structured or binary).
    case harbor
    /// zot's CloudEvents (binary or structured mode).
    case zot
    /// GitHub `package` and `registry_package` webhooks (ghcr.io), signed with `X-Hub-Signature-256`.
    case github
    /// Docker Hub repository webhooks.
    case dockerhub
    /// Warden's own format, for anything that can sign a request: `X-Warden-Timestamp` and `X-Warden-Signature`.
    case generic

    /// Formats that authenticate with an HMAC of the body; the others compare a static header with the secret.
    public var signs: Bool { self == .github || self == .generic }
}

/// How one receiver (one route, `POST /api/v1/hooks/{name}`) reads and authenticates deliveries.
public struct ReceiverConfig: Sendable {
    public var name: String
    public var format: ReceiverFormat
    /// The registry's canonical name, used in every event's subject (and so in its id) instead of the host the
    /// payload names: set it when a registry is reached under several names, or when the payload names none (zot).
    public var registry: String?
    /// github and generic: the HMAC-SHA256 key (required). distribution, harbor, zot and dockerhub: the value the
    /// ``header`` must carry, compared whole or after `Bearer ` (nil accepts unauthenticated deliveries: only on a
    /// network where nothing else can reach the route).
    public var secret: String?
    /// The header that carries the static secret (distribution, harbor, zot, dockerhub); `Authorization` when nil.
    /// Docker Hub sends no headers of the user's choosing: its route passes a `?token=` query parameter on as this
    /// header, or a proxy in front adds it.
    public var header: String?
    /// Report blob pushes and mounts (distribution), as `registry.push` events whose media type is not a manifest's.
    public var includeBlobs: Bool
    /// Report pulls as `registry.pull` events.
    public var includePulls: Bool
    /// generic: how far `X-Warden-Timestamp` may be from now, either way.
    public var replayWindow: Duration
    /// Bytes of the body kept in ``TriggerEvent/Raw``.
    public var rawBodyLimit: Int
    /// Deliveries larger than this are refused (413) unread.
    public var maxBodyBytes: Int

    public init(
        name: String, format: ReceiverFormat, registry: String? = nil, secret: String? = nil, header: String? = nil, includeBlobs: Bool = false,
        includePulls: Bool = false, replayWindow: Duration = .seconds(300), rawBodyLimit: Int = 64 * 1024, maxBodyBytes: Int = 1 << 20
    ) {
        self.name = name
        self.format = format
        self.registry = registry
        self.secret = secret
        self.header = header
        self.includeBlobs = includeBlobs
        self.includePulls = includePulls
        self.replayWindow = replayWindow
        self.rawBodyLimit = rawBodyLimit
        self.maxBodyBytes = maxBodyBytes
    }

    /// The header compared with the secret for static-secret formats.
    public var authHeader: String { header ?? "Authorization" }

    /// What is wrong with the configuration, for the server to report when it loads it (empty when usable).
    public var problems: [String] {
        var found: [String] = []
        if !Self.isName(name) { found.append("receiver name \(Names.quoted(name)) must match ^[a-z][a-z0-9-]{0,62}$") }
        if format.signs && (secret ?? "").isEmpty {
            found.append("receiver \(name): a \(format.rawValue) receiver needs a secret to verify signatures")
        }
        if let registry, !Names.isHost(registry) { found.append("receiver \(name): registry \(Names.quoted(registry)) is not a host[:port]") }
        if format == .zot && registry == nil { found.append("receiver \(name): zot events do not name the registry; set registry") }
        if let header, header.isEmpty || !header.utf8.allSatisfy({ Names.isAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }) {
            found.append("receiver \(name): header \(Names.quoted(header)) is not a header name")
        }
        if rawBodyLimit < 0 || maxBodyBytes <= 0 { found.append("receiver \(name): rawBodyLimit and maxBodyBytes must be positive") }
        if replayWindow <= .zero { found.append("receiver \(name): replayWindow must be positive") }
        return found
    }

    /// `^[a-z][a-z0-9-]{0,62}$`: receiver, trigger and workspace names.
    static func isName(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard let f = b.first, b.count <= 63, f >= 0x61, f <= 0x7A else { return false }
        return b.allSatisfy { Names.isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
    }
}

/// Why a delivery was refused: the HTTP status to answer with, a stable code to match on, and a reason that names the
/// header, JSON path or position at fault. Reasons never contain a secret.
public struct ReceiverRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// No signature or static secret where one is required (401).
        public static let signatureMissing = Code(rawValue: "signature-missing")
        /// A signature or static secret that does not match (401).
        public static let signatureInvalid = Code(rawValue: "signature-invalid")
        /// generic: `X-Warden-Timestamp` missing or not a number of seconds (401).
        public static let timestampInvalid = Code(rawValue: "timestamp-invalid")
        /// generic: a correctly signed delivery whose timestamp is outside the replay window (401).
        public static let timestampStale = Code(rawValue: "timestamp-stale")
        /// Not JSON, a field missing or of the wrong type, a name that breaks its grammar (400).
        public static let payloadMalformed = Code(rawValue: "payload-malformed")
        /// Well-formed, but not something this format sends (a kind the generic format does not accept) (400).
        public static let payloadUnsupported = Code(rawValue: "payload-unsupported")
        /// The payload names no registry and the receiver has none configured (400).
        public static let registryUnknown = Code(rawValue: "registry-unknown")
        /// A body larger than the receiver's `maxBodyBytes` (413).
        public static let payloadTooLarge = Code(rawValue: "payload-too-large")
        /// A `Content-Type` the format does not send (415).
        public static let contentTypeUnsupported = Code(rawValue: "content-type-unsupported")
        /// The receiver cannot authenticate anything (a signing format without a secret) (500).
        public static let receiverMisconfigured = Code(rawValue: "receiver-misconfigured")
    }

    public var status: Int
    public var code: Code
    public var reason: String
    public var description: String { "\(status) \(code): \(reason)" }

    public init(status: Int, code: Code, reason: String) {
        self.status = status
        self.code = code
        self.reason = reason
    }

    static func malformed(_ reason: String) -> ReceiverRejection { ReceiverRejection(status: 400, code: .payloadMalformed, reason: reason) }
    static func unsupported(_ reason: String) -> ReceiverRejection { ReceiverRejection(status: 400, code: .payloadUnsupported, reason: reason) }
    static func unauthorized(_ code: Code, _ reason: String) -> ReceiverRejection { ReceiverRejection(status: 401, code: code, reason: reason) }
}

/// HTTP header fields, looked up case-insensitively; repeated fields read as their values joined by `, `.
public struct ReceiverHeaders: Sendable {
    public private(set) var fields: [(name: String, value: String)]

    public init(_ fields: [(String, String)]) { self.fields = fields.map { (name: $0.0, value: $0.1) } }
    public init(_ fields: [String: String]) { self.fields = fields.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) } }

    public subscript(name: String) -> String? {
        let values = fields.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
        return values.isEmpty ? nil : values.joined(separator: ", ")
    }

    /// The media type of `Content-Type`, lower case, without parameters.
    var mediaType: String? {
        self["Content-Type"].map { $0.split(separator: ";", maxSplits: 1).first.map(String.init) ?? "" }.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
    }
}

/// Turns webhook deliveries into ``TriggerEvent``s: authenticate, read the vendor's payload strictly, normalise.
public enum Receivers {
    /// The events of one delivery, in payload order; empty for deliveries that carry nothing to act on (pulls and
    /// blobs unless included, GitHub pings, vendor events that are not about content).
    ///
    /// The order of checks: size (413), authentication (401, before any byte of the body is parsed), content type
    /// (415), payload (400).
    public static func normalise(config: ReceiverConfig, headers: ReceiverHeaders, body: [UInt8], now: Date = Date()) throws(ReceiverRejection)
        -> [TriggerEvent]
    {
        guard body.count <= config.maxBodyBytes else {
            throw ReceiverRejection(
                status: 413, code: .payloadTooLarge,
                reason: "the body has \(body.count) bytes; receiver \(config.name) accepts at most \(config.maxBodyBytes)")
        }
        let delivery = Delivery(config: config, headers: headers, body: body, now: now)
        try delivery.authenticate()
        let drafts: [Draft]
        switch config.format {
        case .distribution: drafts = try Distribution.read(delivery)
        case .harbor: drafts = try Harbor.read(delivery)
        case .zot: drafts = try Zot.read(delivery)
        case .github: drafts = try GitHub.read(delivery)
        case .dockerhub: drafts = try DockerHub.read(delivery)
        case .generic: drafts = try Generic.read(delivery)
        }
        if drafts.isEmpty { return [] }
        let raw = delivery.raw
        return drafts.map { d in
            let source = TriggerEvent.Source(receiver: config.name, format: config.format.rawValue, vendor: d.vendor, occurredAt: d.occurredAt)
            let data = Value.map(d.data.map { (.string($0.0), $0.1) })
            if let id = d.id {
                return TriggerEvent(id: id, source: source, kind: d.kind, subject: d.subject, data: data, raw: raw)
            }
            return TriggerEvent.registry(kind: d.kind, subject: d.subject, source: source, data: data, raw: raw)
        }
    }

    public static func normalise(config: ReceiverConfig, headers: [(String, String)], body: [UInt8], now: Date = Date()) throws(ReceiverRejection)
        -> [TriggerEvent]
    {
        try normalise(config: config, headers: ReceiverHeaders(headers), body: body, now: now)
    }

    public static func normalise(config: ReceiverConfig, headers: [String: String], body: [UInt8], now: Date = Date()) throws(ReceiverRejection)
        -> [TriggerEvent]
    {
        try normalise(config: config, headers: ReceiverHeaders(headers), body: body, now: now)
    }

    /// Headers whose values are credentials, lower case; names containing `token`, `secret`, `password`,
    /// `signature`, `api-key` or `apikey` are redacted as well, and so is the receiver's own header.
    static let sensitiveHeaders: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-hub-signature", "x-hub-signature-256", "x-warden-signature",
    ]

    static func isSensitive(_ name: String, config: ReceiverConfig) -> Bool {
        let n = name.lowercased()
        if sensitiveHeaders.contains(n) || n == config.authHeader.lowercased() { return true }
        return ["token", "secret", "password", "signature", "api-key", "apikey"].contains { n.contains($0) }
    }
}

extension Receivers {
    /// The `X-Warden-Signature` value of a generic delivery sent at `timestamp` (Unix seconds, also sent as
    /// `X-Warden-Timestamp`): `sha256=` and the hex HMAC-SHA256 of `{timestamp}.{body}` keyed with the secret.
    public static func genericSignature(secret: String, timestamp: Int64, body: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array(String(timestamp).utf8) + [UInt8(ascii: ".")] + body, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + TriggerEvent.hex(mac)
    }

    /// The `X-Hub-Signature-256` value GitHub sends with `body`.
    public static func hubSignature(secret: String, body: [UInt8]) -> String {
        "sha256=" + TriggerEvent.hex(HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8))))
    }
}

/// One event read from a payload, before the receiver's name, the raw delivery and the id are added.
struct Draft {
    var kind: TriggerEvent.Kind
    var subject: TriggerEvent.Subject
    var vendor: String
    var occurredAt: String?
    var data: [(String, Value)]
    /// A sender-given id (generic non-registry kinds only); registry events derive theirs.
    var id: String?
}

/// A delivery being read.
struct Delivery {
    let config: ReceiverConfig
    let headers: ReceiverHeaders
    let body: [UInt8]
    let now: Date

    /// The delivery as kept on its events.
    var raw: TriggerEvent.Raw {
        var kept: [String: String] = [:]
        var spelling: [String: String] = [:]
        for f in headers.fields {
            let key = f.name.lowercased()
            let value = Receivers.isSensitive(f.name, config: config) ? "<redacted>" : f.value
            if let name = spelling[key] {
                if value != "<redacted>" { kept[name] = kept[name]! + ", " + value }
            } else {
                spelling[key] = f.name
                kept[f.name] = value
            }
        }
        let limit = max(0, config.rawBodyLimit)
        guard body.count > limit else { return TriggerEvent.Raw(headers: kept, body: String(decoding: body, as: UTF8.self), truncated: false) }
        var end = limit
        // Cut at a character boundary: back off over UTF-8 continuation bytes.
        while end > 0, end < body.count, body[end] & 0xC0 == 0x80 { end -= 1 }
        return TriggerEvent.Raw(headers: kept, body: String(decoding: body[..<end], as: UTF8.self), truncated: true)
    }

    // MARK: Authentication

    func authenticate() throws(ReceiverRejection) {
        switch config.format {
        case .github: try verifyGitHub()
        case .generic: try verifyGeneric()
        case .distribution, .harbor, .zot, .dockerhub: try verifyStatic()
        }
    }

    /// The configured header must carry the secret, whole or as `Bearer <secret>`. The comparison hashes both
    /// sides first, so neither the position of the first difference nor the secret's length shows in its timing.
    func verifyStatic() throws(ReceiverRejection) {
        guard let secret = config.secret, !secret.isEmpty else { return }
        let name = config.authHeader
        guard let value = headers[name], !value.isEmpty else {
            throw .unauthorized(.signatureMissing, "header \(name) is missing; receiver \(config.name) requires its secret there")
        }
        let expected = Array(SHA256.hash(data: Data(secret.utf8)))
        let whole = constantTimeEquals(Array(SHA256.hash(data: Data(value.utf8))), expected)
        var bearer = false
        if value.count > 7, value.prefix(7).lowercased() == "bearer " {
            bearer = constantTimeEquals(Array(SHA256.hash(data: Data(value.dropFirst(7).utf8))), expected)
        }
        guard whole || bearer else { throw .unauthorized(.signatureInvalid, "header \(name) does not carry receiver \(config.name)'s secret") }
    }

    func hmacKey() throws(ReceiverRejection) -> SymmetricKey {
        guard let secret = config.secret, !secret.isEmpty else {
            throw ReceiverRejection(
                status: 500, code: .receiverMisconfigured,
                reason: "receiver \(config.name) has no secret, so its \(config.format.rawValue) signatures cannot be verified")
        }
        return SymmetricKey(data: Data(secret.utf8))
    }

    /// `sha256=<64 hex digits>` as bytes, or nil.
    static func signatureBytes(_ header: String) -> [UInt8]? {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("sha256=") else { return nil }
        let hex = Array(text.utf8.dropFirst(7))
        guard hex.count == 64 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < 64 {
            guard let hi = nibble(hex[i]), let lo = nibble(hex[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }

    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    func verifyGitHub() throws(ReceiverRejection) {
        let key = try hmacKey()
        guard let header = headers["X-Hub-Signature-256"] else {
            if headers["X-Hub-Signature"] != nil {
                throw .unauthorized(.signatureMissing, "only X-Hub-Signature (SHA-1) was sent; X-Hub-Signature-256 is required")
            }
            throw .unauthorized(.signatureMissing, "header X-Hub-Signature-256 is missing")
        }
        guard let mac = Self.signatureBytes(header) else {
            throw .unauthorized(.signatureInvalid, "header X-Hub-Signature-256 is not sha256= and 64 hex digits")
        }
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: key) else {
            throw .unauthorized(.signatureInvalid, "X-Hub-Signature-256 does not match the body signed with receiver \(config.name)'s secret")
        }
    }

    /// generic: `X-Warden-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">` and `X-Warden-Timestamp`
    /// (Unix seconds) within the replay window. The signature is checked first: only a genuine delivery learns
    /// that its clock is off.
    func verifyGeneric() throws(ReceiverRejection) {
        let key = try hmacKey()
        guard let stamp = headers["X-Warden-Timestamp"]?.trimmingCharacters(in: .whitespaces) else {
            throw .unauthorized(.signatureMissing, "header X-Warden-Timestamp is missing")
        }
        guard !stamp.isEmpty, stamp.count <= 12, stamp.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let seconds = Int64(stamp) else {
            throw .unauthorized(.timestampInvalid, "header X-Warden-Timestamp is not Unix seconds: \(Names.quoted(stamp))")
        }
        guard let header = headers["X-Warden-Signature"] else { throw .unauthorized(.signatureMissing, "header X-Warden-Signature is missing") }
        guard let mac = Self.signatureBytes(header) else {
            throw .unauthorized(.signatureInvalid, "header X-Warden-Signature is not sha256= and 64 hex digits")
        }
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Array(stamp.utf8) + [UInt8(ascii: ".")] + body, using: key) else {
            throw .unauthorized(
                .signatureInvalid, "X-Warden-Signature does not match the timestamp and body signed with receiver \(config.name)'s secret")
        }
        let skew = abs(now.timeIntervalSince1970 - Double(seconds))
        guard skew <= config.replayWindow.seconds else {
            throw .unauthorized(
                .timestampStale,
                "X-Warden-Timestamp \(seconds) is \(Int(skew)) s from now; receiver \(config.name) accepts \(Int(config.replayWindow.seconds)) s")
        }
    }

    // MARK: Reading

    /// Refuses a `Content-Type` outside `accepted` (an absent one is taken to be JSON).
    func requireContentType(_ accepted: [String]) throws(ReceiverRejection) {
        guard let type = headers.mediaType else { return }
        guard accepted.contains(type) else {
            throw ReceiverRejection(
                status: 415, code: .contentTypeUnsupported,
                reason: "Content-Type \(Names.quoted(type)) is not one \(config.format.rawValue) sends; expected \(accepted.joined(separator: ", "))")
        }
    }

    /// The body as a JSON document.
    func json() throws(ReceiverRejection) -> JSONNode { try JSONNode.parse(body, what: "the body") }

    /// The subject's registry: the configured one, else `fromPayload` (validated), else a 400.
    func registry(_ fromPayload: String?, at path: String) throws(ReceiverRejection) -> String {
        if let r = config.registry { return r.lowercased() }
        guard let host = fromPayload, !host.isEmpty else {
            throw ReceiverRejection(
                status: 400, code: .registryUnknown,
                reason: "\(path): missing, and receiver \(config.name) has no registry configured to use instead")
        }
        guard Names.isHost(host) else { throw .malformed("\(path): \(Names.quoted(host)) is not a registry host[:port]") }
        return host.lowercased()
    }

    /// Whether a pull (`includePulls`) or blob (`includeBlobs`) event is reported.
    func keeps(pull: Bool, blob: Bool) -> Bool { (!pull || config.includePulls) && (!blob || config.includeBlobs) }
}

/// A JSON value with the path it was found at (`events[2].target`), read strictly: every accessor names the path
/// in its error. JSON `null` reads as absent.
struct JSONNode {
    let value: Value
    let path: String

    /// The deepest nesting a webhook payload may have (the vendors' payloads nest less than ten levels).
    static let maxDepth = 64

    static func parse(_ bytes: [UInt8], what: String) throws(ReceiverRejection) -> JSONNode {
        if let (offset, depth) = tooDeep(bytes) {
            let (line, column) = position(offset, in: bytes)
            throw .malformed("\(what) is nested deeper than \(depth) levels (at \(line):\(column))")
        }
        do {
            return JSONNode(value: try Value.parseJSON(bytes), path: "")
        } catch let e as JSONError {
            throw .malformed("\(what) is not JSON: \(e.line):\(e.column): \(e.message)")
        } catch {
            throw .malformed("\(what) is not JSON: \(error)")
        }
    }

    /// The offset where nesting first exceeds ``maxDepth``, scanning outside strings.
    static func tooDeep(_ b: [UInt8]) -> (Int, Int)? {
        var depth = 0
        var inString = false
        var i = 0
        while i < b.count {
            let c = b[i]
            if inString {
                if c == UInt8(ascii: "\\") {
                    i += 1
                } else if c == UInt8(ascii: "\"") {
                    inString = false
                }
            } else if c == UInt8(ascii: "\"") {
                inString = true
            } else if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                depth += 1
                if depth > maxDepth { return (i, maxDepth) }
            } else if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                depth -= 1
            }
            i += 1
        }
        return nil
    }

    static func position(_ offset: Int, in b: [UInt8]) -> (Int, Int) {
        var line = 1
        var start = 0
        for k in 0..<min(offset, b.count) where b[k] == UInt8(ascii: "\n") {
            line += 1
            start = k + 1
        }
        return (line, b[start..<min(offset, b.count)].reduce(1) { $1 & 0xC0 == 0x80 ? $0 : $0 + 1 })
    }

    func at(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    var typeName: String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .uint, .double: "a number"
        case .string: "a string"
        case .list: "a list"
        case .map: "an object"
        default: value.typeName
        }
    }

    var label: String { path.isEmpty ? "the body" : path }

    func object() throws(ReceiverRejection) -> JSONNode {
        guard case .map = value else { throw .malformed("\(label): expected an object, found \(typeName)") }
        return self
    }

    /// The member `key` (nil when absent or null); requires this to be an object.
    func child(_ key: String) throws(ReceiverRejection) -> JSONNode? {
        guard case .map(let entries) = value else { throw .malformed("\(label): expected an object, found \(typeName)") }
        for (k, v) in entries {
            if case .string(let s) = k, s == key {
                if case .null = v { return nil }
                return JSONNode(value: v, path: at(key))
            }
        }
        return nil
    }

    func require(_ key: String) throws(ReceiverRejection) -> JSONNode {
        guard let c = try child(key) else { throw .malformed("\(at(key)): missing") }
        return c
    }

    func string() throws(ReceiverRejection) -> String {
        guard case .string(let s) = value else { throw .malformed("\(label): expected a string, found \(typeName)") }
        return s
    }

    /// The string member `key`, nil when absent, null or empty.
    func string(_ key: String) throws(ReceiverRejection) -> String? {
        guard let c = try child(key) else { return nil }
        let s = try c.string()
        return s.isEmpty ? nil : s
    }

    func requireString(_ key: String) throws(ReceiverRejection) -> String {
        guard let s = try string(key) else { throw .malformed("\(at(key)): missing") }
        return s
    }

    func int(_ key: String) throws(ReceiverRejection) -> Int64? {
        guard let c = try child(key) else { return nil }
        switch c.value {
        case .int(let i): return i
        case .uint(let u) where u <= UInt64(Int64.max): return Int64(u)
        default: throw .malformed("\(c.label): expected an integer, found \(c.typeName)")
        }
    }

    /// A number of seconds (integer or fractional).
    func seconds(_ key: String) throws(ReceiverRejection) -> Double? {
        guard let c = try child(key) else { return nil }
        switch c.value {
        case .int(let i): return Double(i)
        case .uint(let u): return Double(u)
        case .double(let d) where d.isFinite: return d
        default: throw .malformed("\(c.label): expected a number of seconds, found \(c.typeName)")
        }
    }

    func list() throws(ReceiverRejection) -> [JSONNode] {
        guard case .list(let items) = value else { throw .malformed("\(label): expected a list, found \(typeName)") }
        return items.enumerated().map { JSONNode(value: $0.element, path: "\(path)[\($0.offset)]") }
    }

    // Named values, checked against their grammar.

    func repository(_ key: String) throws(ReceiverRejection) -> String {
        let s = try requireString(key)
        guard Names.isRepository(s) else {
            throw .malformed("\(at(key)): \(Names.quoted(s)) is not a repository name (lower-case components of a-z and 0-9, joined by / )")
        }
        return s
    }

    func tag(_ key: String) throws(ReceiverRejection) -> String? {
        guard let s = try string(key) else { return nil }
        guard Names.isTag(s) else { throw .malformed("\(at(key)): \(Names.quoted(s)) is not a tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})") }
        return s
    }

    func digest(_ key: String) throws(ReceiverRejection) -> String? {
        guard let s = try string(key) else { return nil }
        guard Names.isDigest(s) else { throw .malformed("\(at(key)): \(Names.quoted(s)) is not a digest (algorithm:hex)") }
        return s
    }

    func mediaType(_ key: String) throws(ReceiverRejection) -> String? {
        guard let s = try string(key) else { return nil }
        guard Names.isMediaType(s) else { throw .malformed("\(at(key)): \(Names.quoted(s)) is not a media type") }
        return s
    }

    /// An RFC 3339 time, rewritten in Warden's form (UTC, milliseconds).
    func time(_ key: String) throws(ReceiverRejection) -> String? {
        guard let s = try string(key) else { return nil }
        guard let d = RFC3339.date(s) else { throw .malformed("\(at(key)): \(Names.quoted(s)) is not an RFC 3339 time") }
        return RFC3339.string(d)
    }
}

/// Unix seconds as Warden's RFC 3339 form.
func rfc3339(seconds: Double) -> String { RFC3339.string(Date(timeIntervalSince1970: seconds)) }

/// A string value, or null.
func optional(_ s: String?) -> Value { s.map { .string($0) } ?? .null }
