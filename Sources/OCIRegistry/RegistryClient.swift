import AsyncHTTPClient
import Documents
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import OCI

/// How to reach registries: transport security, credentials, retries.
public struct RegistryConfiguration: Sendable {
    /// Hosts spoken to over plain HTTP. Loopback hosts always are, unless `tlsOnLoopback` is set.
    public var plainHTTPHosts: Set<String> = []
    /// Speak plain HTTP to every host (`--plain-http`).
    public var plainHTTP = false
    public var tlsOnLoopback = false
    /// PEM bundle of CA certificates to trust in addition to the system's.
    public var caBundlePath: String?
    /// More PEM files of CA certificates trusted beside `caBundlePath` (a replication file's per-registry `caFile`).
    public var additionalCABundlePaths: [String] = []
    public var credentials = CredentialResolver()
    public var retry = RetryPolicy()
    /// Blobs larger than this are uploaded in chunks of `chunkSize`.
    public var chunkedUploadThreshold: Int64 = 128 << 20
    public var chunkSize = 16 << 20
    /// Time limit for a small request (manifests, tokens, HEADs, tag pages, referrers): its headers and its body.
    public var requestTimeout: TimeAmount = .seconds(60)
    /// A connection silent for this long is given up (no byte of headers or body).
    public var readTimeout: TimeAmount = .seconds(60)
    /// A blob download slower than this (bytes per second, averaged over `transferRateWindow`) is given up.
    public var minimumTransferRate = 16 << 10
    public var transferRateWindow: Duration = .seconds(30)
    /// Time allowed to establish a connection (the HTTP client retries refused connections within it).
    public var connectTimeout: TimeAmount = .seconds(5)
    /// Time limit for a blob transfer's headers (its body is bounded by `minimumTransferRate`).
    public var transferTimeout: TimeAmount = .hours(6)
    /// Requests per second allowed to a host (requests are spaced out evenly); absent hosts are not limited.
    public var requestsPerSecond: [String: Double] = [:]
    /// Send Basic credentials to a Bearer token realm that is plain HTTP on another, non-loopback host (docker and
    /// skopeo do; Warden does not unless told).
    public var insecureTokenRealm = false
    /// Bounds of one paginated listing (tags, catalog): pages, items and bytes in total. A registry whose `Link`
    /// headers never end is an error, not an endless download.
    public var listLimits = ListLimits()

    public init() {}

    public struct ListLimits: Sendable {
        public var pages = 10_000
        public var items = 1_000_000
        public var bytes = 256 << 20
        public init() {}
    }

    func scheme(for host: String) -> String {
        if plainHTTP || plainHTTPHosts.contains(host) { return "http" }
        if !tlsOnLoopback, RegistryConfiguration.isLoopback(host) { return "http" }
        return "https"
    }

    static func isLoopback(_ host: String) -> Bool {
        var h = host
        if h.hasPrefix("[") {
            h = String(h.dropFirst().prefix(while: { $0 != "]" }))
            return h == "::1"
        }
        if let colon = h.firstIndex(of: ":") { h = String(h[..<colon]) }
        return h == "localhost" || h.hasPrefix("127.")
    }
}

/// Exponential backoff with jitter on connection errors, 408, 429 and 5xx; `Retry-After` is honoured.
public struct RetryPolicy: Sendable {
    public var maxAttempts = 5
    public var initialDelay: Duration = .milliseconds(200)
    public var maxDelay: Duration = .seconds(30)
    public init() {}

    func delay(attempt: Int, retryAfter: Duration?) -> Duration {
        if let retryAfter { return min(retryAfter, maxDelay * 4) }
        let base = initialDelay * Int(1 << min(attempt, 16))
        let capped = min(base, maxDelay)
        // Full jitter between half and the whole delay.
        let fraction = Double.random(in: 0.5...1.0)
        return capped * fraction
    }

    static func isRetryable(status: HTTPResponseStatus) -> Bool {
        status == .requestTimeout || status == .tooManyRequests || status.code >= 500
    }
}

/// One HTTP exchange with a registry, with the scopes its authorization needs.
struct RegistryRequest: Sendable {
    var method: HTTPMethod
    var url: String
    var headers: HTTPHeaders = [:]
    /// A body that can be produced again for a retry; nil for none.
    var body: (@Sendable () -> HTTPClientRequest.Body)?
    /// Whether the body can be replayed (a streamed blob cannot; its retry happens a level up).
    var replayable = true
    var scopes: [String]
    var timeout: TimeAmount
}

/// A client for one registry host: authentication (Basic, Bearer tokens with caching), retries, error decoding.
public final class RegistryClient: Sendable {
    public let host: String
    public let baseURL: String
    let configuration: RegistryConfiguration
    let http: HTTPClient
    let credentials: Credentials?
    let tokens = TokenCache()
    let capabilities = RegistryCapabilities()
    /// Serializes this process's updates of each referrers fallback index.
    let fallbackIndexLock = KeyedLock()
    let pacer: Pacer?
    let logger: Logger

    public init(host: String, configuration: RegistryConfiguration, http: HTTPClient, logger: Logger) throws {
        self.host = host
        self.configuration = configuration
        self.http = http
        self.logger = logger
        let apiHost = host == Reference.dockerHub ? "registry-1.docker.io" : host
        self.baseURL = "\(configuration.scheme(for: host))://\(apiHost)"
        self.credentials = try configuration.credentials.credentials(for: host)
        self.pacer = configuration.requestsPerSecond[host].map { Pacer(perSecond: $0) }
    }

    /// `GET /v2/`: checks the registry answers and the credentials are accepted.
    public func ping() async throws {
        let response = try await send(RegistryRequest(method: .GET, url: "\(baseURL)/v2/", scopes: [], timeout: configuration.requestTimeout))
        _ = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            throw try await error(for: response, what: "GET \(baseURL)/v2/", body: nil)
        }
    }

    /// Repository names in the registry's catalog, following `Link` pagination.
    public func catalog(pageSize: Int = 1000) async throws -> [String] {
        struct Page: Decodable { var repositories: [String]? }
        let all = try await paginate("\(baseURL)/v2/_catalog?n=\(pageSize)", scopes: ["registry:catalog:*"]) { (page: Page) in page.repositories ?? []
        }
        let invalid = all.filter { !Reference.isValidRepository($0) }
        for name in invalid.prefix(20) { logger.warning("\(host) listed repository \"\(name.prefix(200))\", which is not a valid name; ignored") }
        return invalid.isEmpty ? all : all.filter(Reference.isValidRepository)
    }

    /// GETs `first` and every page its `Link: <...>; rel="next"` headers lead to, collecting `extract` of each.
    func paginate<Page: Decodable>(_ first: String, scopes: [String], _ extract: (Page) -> [String]) async throws -> [String] {
        var items: [String] = []
        var next: String? = first
        var pages = 0
        var bytes = 0
        var seen: Set<String> = []
        let limits = configuration.listLimits
        while let url = next {
            pages += 1
            guard seen.insert(url).inserted else {
                throw OCIError(
                    .registry, "GET \(first): page \(pages) links back to \(url), which was already read; the registry's Link headers loop")
            }
            guard pages <= limits.pages else {
                throw OCIError(.registry, "GET \(first): more than \(limits.pages) pages; the registry's Link headers do not end")
            }
            let response = try await send(RegistryRequest(method: .GET, url: url, scopes: scopes, timeout: configuration.requestTimeout))
            let allowed = min(64 << 20, max(1, limits.bytes - bytes))
            let body: ByteBuffer
            do {
                body = try await response.body.collect(upTo: allowed)
            } catch is NIOTooManyBytesError {
                throw OCIError(
                    .registry,
                    "GET \(first): the listing is larger than \(min(limits.bytes, 64 << 20) >> 20) MiB (page \(pages)); refusing to read further")
            }
            bytes += body.readableBytes
            guard response.status == .ok else { throw try await error(for: response, what: "GET \(url)", body: body) }
            do {
                items += extract(try JSONDecoder().decode(Page.self, from: Data(buffer: body)))
            } catch {
                throw OCIError(.registry, "GET \(url) returned an invalid list: \(describe(error))")
            }
            guard items.count <= limits.items else {
                throw OCIError(.registry, "GET \(first): more than \(limits.items) entries in \(pages) pages; refusing to read further")
            }
            next = response.headers.first(name: "Link").flatMap { nextLink($0) }
        }
        return items
    }

    /// `scheme://host:port` of a URL (default ports explicit, lowercase), nil when it has none.
    static func origin(_ url: String) -> String? {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), let host = c.host?.lowercased() else { return nil }
        return "\(scheme)://\(host):\(c.port ?? (scheme == "https" ? 443 : 80))"
    }

    /// The target of a `Link: <url>; rel="next"` header, made absolute.
    func nextLink(_ header: String) -> String? {
        for part in header.split(separator: ",") where part.contains("rel=\"next\"") || part.contains("rel=next") {
            guard let open = part.firstIndex(of: "<"), let close = part.firstIndex(of: ">") else { continue }
            let target = String(part[part.index(after: open)..<close])
            if target.hasPrefix("http") { return target }
            return baseURL + (target.hasPrefix("/") ? "" : "/") + target
        }
        return nil
    }

    // MARK: sending

    func send(_ request: RegistryRequest) async throws -> HTTPClientResponse {
        var attempt = 0
        var authRetried = false
        while true {
            var req = HTTPClientRequest(url: request.url)
            req.method = request.method
            req.headers = request.headers
            if !req.headers.contains(name: "User-Agent") { req.headers.add(name: "User-Agent", value: "warden/0.1") }
            // Credentials go only to the registry's own origin: a `Link` or upload `Location` may name another.
            let sameOrigin = Self.origin(request.url) == Self.origin(baseURL)
            if !sameOrigin, baseURL.hasPrefix("https://"), !request.url.lowercased().hasPrefix("https://") {
                throw OCIError(.registry, "\(request.method) \(request.url): \(host) is an HTTPS registry and pointed to a non-HTTPS URL; refused")
            }
            if sameOrigin, let auth = await tokens.authorization(host: host, scopes: request.scopes) {
                req.headers.replaceOrAdd(name: "Authorization", value: auth)
            }
            if let body = request.body { req.body = body() }
            if let pacer { try await pacer.wait() }
            let started = ContinuousClock.now
            var response: HTTPClientResponse
            do {
                response = try await http.execute(req, timeout: request.timeout, logger: nil)
            } catch let error as OCIError {
                // An error of the request body itself (e.g. a digest mismatch of streamed content).
                throw error
            } catch {
                attempt += 1
                logger.debug("http error", metadata: ["method": "\(request.method)", "url": "\(request.url)", "error": "\(error)"])
                // The HTTP client already retries refused connections within the connect timeout, so connection
                // failures get fewer attempts than throttling and server errors.
                if Task.isCancelled || !request.replayable || attempt >= min(3, configuration.retry.maxAttempts)
                    || !RegistryClient.isConnectionError(error)
                {
                    throw OCIError(.transport, "\(request.method) \(request.url): \(RegistryClient.describeTransport(error))")
                }
                try await Task.sleep(for: configuration.retry.delay(attempt: attempt - 1, retryAfter: nil))
                continue
            }
            logger.debug(
                "http",
                metadata: [
                    "method": "\(request.method)", "url": "\(request.url)", "status": "\(response.status.code)",
                    "ms": "\(Int(started.duration(to: .now).seconds * 1000))",
                ])
            let small = request.timeout <= configuration.requestTimeout
            let limit = Duration.nanoseconds(request.timeout.nanoseconds)
            response.body = .stream(
                BoundedBody(
                    base: response.body, what: "\(request.method) \(request.url)", deadline: small ? started.advanced(by: limit) : nil,
                    timeout: limit, minimumRate: small ? nil : configuration.minimumTransferRate, window: configuration.transferRateWindow))
            if response.status == .unauthorized, !authRetried,
                let header = response.headers.first(name: "WWW-Authenticate"), let challenge = AuthChallenge(header: header)
            {
                _ = try? await response.body.collect(upTo: 1 << 20)
                authRetried = true
                if try await authenticate(challenge: challenge, scopes: request.scopes) { continue }
                throw OCIError(
                    .unauthorized,
                    "\(request.method) \(request.url): 401 Unauthorized and no credentials for \(host); log in with `--creds USER:PASSWORD` or a docker config.json"
                )
            }
            if RetryPolicy.isRetryable(status: response.status), request.replayable, attempt + 1 < configuration.retry.maxAttempts {
                attempt += 1
                let retryAfter = response.headers.first(name: "Retry-After").flatMap(RegistryClient.parseRetryAfter)
                _ = try? await response.body.collect(upTo: 1 << 20)
                let delay = configuration.retry.delay(attempt: attempt - 1, retryAfter: retryAfter)
                logger.debug("retrying", metadata: ["url": "\(request.url)", "status": "\(response.status.code)", "delay": "\(delay)"])
                try await Task.sleep(for: delay)
                continue
            }
            return response
        }
    }

    /// Obtains authorization for a challenge. Returns false when there is nothing to try.
    private func authenticate(challenge: AuthChallenge, scopes: [String]) async throws -> Bool {
        switch challenge.scheme {
        case "basic":
            guard let credentials else { return false }
            let raw = Data("\(credentials.username):\(credentials.password)".utf8).base64EncodedString()
            await tokens.setBasic(host: host, header: "Basic \(raw)")
            return true
        case "bearer":
            guard let realm = challenge.parameters["realm"] else {
                throw OCIError(.unauthorized, "\(host) sent a Bearer challenge without a realm")
            }
            var wanted = scopes
            if let s = challenge.parameters["scope"] { wanted.append(contentsOf: s.split(separator: " ").map(String.init)) }
            wanted = Array(Set(wanted)).sorted()
            let token = try await fetchToken(realm: realm, service: challenge.parameters["service"], scopes: wanted)
            await tokens.setBearer(host: host, realm: realm, service: challenge.parameters["service"], scopes: scopes, token: token)
            return true
        default:
            throw OCIError(.unauthorized, "\(host) asks for unsupported authentication scheme \"\(challenge.scheme)\"")
        }
    }

    /// Asks the token endpoint for a token covering `scopes` (anonymous, Basic, or OAuth2 refresh token).
    func fetchToken(realm: String, service: String?, scopes: [String]) async throws -> TokenCache.Token {
        guard var components = URLComponents(string: realm) else {
            throw OCIError(.unauthorized, "\(host) sent an invalid token realm \"\(realm)\"")
        }
        var items = components.queryItems ?? []
        if let service { items.append(URLQueryItem(name: "service", value: service)) }
        for scope in scopes { items.append(URLQueryItem(name: "scope", value: scope)) }
        components.queryItems = items
        guard let url = components.string else { throw OCIError(.unauthorized, "invalid token URL from realm \(realm)") }
        if credentials != nil, !configuration.insecureTokenRealm {
            let realmHost = components.host?.lowercased() ?? ""
            let registryHost = String((URLComponents(string: baseURL)?.host ?? host).lowercased())
            let safe =
                components.scheme?.lowercased() == "https" || realmHost == registryHost
                || RegistryConfiguration.isLoopback(realmHost.contains(":") ? "[\(realmHost)]" : realmHost)
            guard safe else {
                throw OCIError(
                    .unauthorized,
                    "\(host) asks for its credentials at the token realm \(realm), which is plain HTTP on another host; Warden does not send them there (pass --insecure-token-realm to allow it)"
                )
            }
        }
        var req = HTTPClientRequest(url: url)
        req.method = .GET
        if let credentials, credentials.identityToken == nil {
            let raw = Data("\(credentials.username):\(credentials.password)".utf8).base64EncodedString()
            req.headers.add(name: "Authorization", value: "Basic \(raw)")
        }
        if let refresh = credentials?.identityToken {
            var post = HTTPClientRequest(url: realm)
            post.method = .POST
            post.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            var form = URLComponents()
            form.queryItems = [
                URLQueryItem(name: "grant_type", value: "refresh_token"), URLQueryItem(name: "refresh_token", value: refresh),
                URLQueryItem(name: "service", value: service ?? ""), URLQueryItem(name: "client_id", value: "warden"),
                URLQueryItem(name: "scope", value: scopes.joined(separator: " ")),
            ]
            post.body = .bytes(ByteBuffer(string: form.percentEncodedQuery ?? ""))
            req = post
        }
        var response: HTTPClientResponse
        let started = ContinuousClock.now
        do {
            response = try await http.execute(req, timeout: configuration.requestTimeout)
        } catch {
            throw OCIError(.transport, "token request to \(realm): \(RegistryClient.describeTransport(error))")
        }
        let limit = Duration.nanoseconds(configuration.requestTimeout.nanoseconds)
        response.body = .stream(
            BoundedBody(
                base: response.body, what: "token request to \(realm)", deadline: started.advanced(by: limit), timeout: limit, minimumRate: nil,
                window: configuration.transferRateWindow))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            let code: OCIError.Code = response.status == .unauthorized || response.status == .forbidden ? .unauthorized : .registry
            throw OCIError(
                code,
                "token request to \(realm) for \(scopes.joined(separator: " ")) failed: \(response.status.code) \(response.status.reasonPhrase)"
                    + (credentials == nil ? "" : "; check the credentials for \(host)"))
        }
        struct Reply: Decodable {
            var token: String?
            var access_token: String?
            var expires_in: Int?
        }
        guard let reply = try? JSONDecoder().decode(Reply.self, from: Data(buffer: body)), let token = reply.token ?? reply.access_token else {
            throw OCIError(.unauthorized, "token endpoint \(realm) returned no token")
        }
        // Tokens live at least 60 s per the token spec; refresh 10 s early.
        let lifetime = max(60, reply.expires_in ?? 60)
        return TokenCache.Token(value: token, expires: ContinuousClock.now + .seconds(lifetime - 10))
    }

    // MARK: errors

    /// A registry error: status, the registry's error codes and messages, and what to do.
    func error(for response: HTTPClientResponse, what: String, body: ByteBuffer?) async throws -> OCIError {
        var body = body
        if body == nil { body = try? await response.body.collect(upTo: 1 << 20) }
        struct Errors: Decodable {
            struct E: Decodable {
                var code: String?
                var message: String?
            }
            var errors: [E]?
        }
        var detail = ""
        if let body, let decoded = try? JSONDecoder().decode(Errors.self, from: Data(buffer: body)), let errs = decoded.errors, !errs.isEmpty {
            detail = ": " + errs.map { [$0.code, $0.message].compactMap { $0 }.joined(separator: " ") }.joined(separator: "; ")
        }
        let status = "\(response.status.code) \(response.status.reasonPhrase)"
        if let body, let decoded = try? JSONDecoder().decode(Errors.self, from: Data(buffer: body)),
            decoded.errors?.contains(where: { $0.code == "MANIFEST_BLOB_UNKNOWN" }) == true
        {
            return OCIError(.manifestBlobUnknown, "\(what): \(status)\(detail)")
        }
        switch response.status {
        case .unauthorized:
            return OCIError(.unauthorized, "\(what): \(status)\(detail); check the credentials for \(host)")
        case .forbidden:
            return OCIError(.denied, "\(what): \(status)\(detail); the credentials for \(host) lack permission")
        case .notFound:
            return OCIError(.notFound, "\(what): \(status)\(detail)")
        case .tooManyRequests:
            return OCIError(.throttled, "\(what): \(status)\(detail); the registry is throttling requests, retry later or lower --concurrency")
        default:
            return OCIError(.registry, "\(what): \(status)\(detail)")
        }
    }

    static func isConnectionError(_ error: Error) -> Bool {
        if let e = error as? HTTPClientError {
            return [HTTPClientError.connectTimeout, .remoteConnectionClosed, .readTimeout, .writeTimeout, .deadlineExceeded].contains(e)
                || "\(e)".contains("connect")
        }
        if error is ChannelError || "\(type(of: error))".contains("NIOConnectionError") { return true }
        if let io = error as? IOError { return [ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT].contains(io.errnoCode) }
        let text = "\(error)"
        return text.contains("connect") || text.contains("Connection") || text.contains("ECONNRESET")
    }

    static func describeTransport(_ error: Error) -> String {
        if "\(type(of: error))".contains("NIOConnectionError") || "\(error)".contains("connectionRefused") || "\(error)".contains("ECONNREFUSED") {
            return "connection refused or unreachable (is the registry running, and is --plain-http right for it?)"
        }
        if let e = error as? NIOSSLError { return "TLS error: \(e) (use --ca-file for a private CA, or --plain-http for an HTTP registry)" }
        return "\(error)"
    }

    static func parseRetryAfter(_ value: String) -> Duration? {
        if let seconds = Int(value.trimmingCharacters(in: .whitespaces)) { return .seconds(max(0, seconds)) }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        if let date = f.date(from: value) { return .seconds(max(0, Int(date.timeIntervalSinceNow.rounded(.up)))) }
        return nil
    }
}

/// Authorization headers per host and scope set, valid until they expire.
actor TokenCache {
    struct Token: Sendable {
        var value: String
        var expires: ContinuousClock.Instant
    }
    private var basic: [String: String] = [:]
    private var bearer: [String: Token] = [:]

    private func key(_ host: String, _ scopes: [String]) -> String { host + "|" + scopes.sorted().joined(separator: " ") }

    func authorization(host: String, scopes: [String]) -> String? {
        if let b = basic[host] { return b }
        if let t = bearer[key(host, scopes)], t.expires > .now { return "Bearer \(t.value)" }
        return nil
    }

    func setBasic(host: String, header: String) { basic[host] = header }

    func setBearer(host: String, realm: String, service: String?, scopes: [String], token: Token) {
        bearer[key(host, scopes)] = token
    }
}

/// Spaces requests to one host evenly at a fixed rate.
public actor Pacer {
    public let interval: Duration
    var next: ContinuousClock.Instant?

    public init(perSecond: Double) {
        interval = .nanoseconds(Int64(1e9 / max(perSecond, 0.001)))
    }

    /// The instant a request arriving at `now` may go: now, or one interval after the previous slot.
    public func reserve(at now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        let slot = max(now, next ?? now)
        next = slot + interval
        return slot
    }

    func wait() async throws {
        let now = ContinuousClock.now
        let slot = reserve(at: now)
        if slot > now { try await Task.sleep(until: slot, clock: .continuous) }
    }
}
