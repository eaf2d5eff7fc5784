import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import OCI
import Synchronization

/// An in-process OCI distribution 1.1 registry over memory, for tests of protocol paths the Debian registry does
/// not have: the referrers API (with `artifactType` filtering and `OCI-Subject`), Bearer token authentication, and
/// throttling with `Retry-After`. It implements the endpoints Warden uses, not the whole spec.
public final class TestRegistryServer: Sendable {
    public struct Options: Sendable {
        /// Serve `/v2/<name>/referrers/<digest>`; when false the route is a 404 as on distribution 2.8.
        public var referrersAPI = true
        /// Require a Bearer token obtained from `/token` (with these Basic credentials when set).
        public var bearerAuth: (username: String, password: String)?
        /// Answer this many requests to `/referrers/` with the given status before serving them.
        public var failReferrers: (count: Int, status: Int) = (0, 0)
        /// Answer this many manifest requests with 429 and `Retry-After: 1` first.
        public var throttleManifests = 0
        /// The first PATCH of an upload keeps only half of its bytes and answers 500, as a connection lost
        /// mid-chunk would: the client must ask for the upload's `Range` and resend only the rest.
        public var failFirstPatch = false
        public init() {}
    }

    public let port: Int
    public var host: String { "127.0.0.1:\(port)" }
    let state: ServerState
    private let channel: Channel

    /// Requests received, as "METHOD path".
    public var requests: [String] { state.log.withLock { $0 } }
    public var tokensIssued: Int { state.tokens.withLock { $0 } }

    public static func start(options: Options = .init()) async throws -> TestRegistryServer {
        let state = ServerState(options: options)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(RegistryHandler(state: state))
                }
            }
        let channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        state.port.withLock { $0 = port }
        return TestRegistryServer(port: port, state: state, channel: channel)
    }

    private init(port: Int, state: ServerState, channel: Channel) {
        self.port = port
        self.state = state
        self.channel = channel
    }

    /// The memory store behind a repository, to seed content or inspect what was pushed.
    public func store(_ repository: String) -> MemoryStore { state.store(repository) }

    /// While true, every request is answered 503 `UNAVAILABLE`, on connections already open too (a registry that
    /// is down behind its load balancer), so that tests can see how clients report lookups that fail.
    public func setUnavailable(_ unavailable: Bool) { state.unavailable.withLock { $0 = unavailable } }

    public func shutdown() async throws {
        try await channel.close()
    }
}

final class ServerState: Sendable {
    let options: TestRegistryServer.Options
    let stores = Mutex<[String: MemoryStore]>([:])
    let uploads = Mutex<[String: Data]>([:])
    let log = Mutex<[String]>([])
    let tokens = Mutex(0)
    let port = Mutex(0)
    let referrerFailures = Mutex(0)
    let throttled = Mutex(0)
    let validTokens = Mutex<Set<String>>([])
    let patchFailed = Mutex(false)
    let unavailable = Mutex(false)

    init(options: TestRegistryServer.Options) { self.options = options }

    func store(_ name: String) -> MemoryStore {
        stores.withLock { map in
            if let s = map[name] { return s }
            let s = MemoryStore(name: name)
            map[name] = s
            return s
        }
    }
}

struct Reply: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders = [:]
    var body = Data()

    static func json(_ status: HTTPResponseStatus, _ object: Data, type: String = "application/json") -> Reply {
        Reply(status: status, headers: ["Content-Type": type], body: object)
    }
    static func error(_ status: HTTPResponseStatus, _ code: String, _ message: String) -> Reply {
        .json(status, Data(#"{"errors":[{"code":"\#(code)","message":"\#(message)"}]}"#.utf8))
    }
}

final class RegistryHandler: ChannelInboundHandler, @unchecked Sendable {
    // Safety: all mutable fields are touched only on the channel's event loop (NIO handler contract); the async
    // work hops back to that loop before writing.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let state: ServerState
    var head: HTTPRequestHead?
    var body = Data()

    init(state: ServerState) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = Data()
        case .body(var buf):
            if let bytes = buf.readBytes(length: buf.readableBytes) { body.append(contentsOf: bytes) }
        case .end:
            guard let head else { return }
            let body = self.body
            let state = self.state
            let loop = context.eventLoop
            let ctx = NIOLoopBound(context, eventLoop: loop)
            let isHead = head.method == .HEAD
            let keepAlive = head.isKeepAlive
            Task {
                let reply = await RegistryLogic(state: state).handle(head, body)
                loop.execute {
                    let context = ctx.value
                    var headers = reply.headers
                    headers.replaceOrAdd(name: "Content-Length", value: "\(reply.body.count)")
                    if !headers.contains(name: "Docker-Distribution-API-Version") {
                        headers.add(name: "Docker-Distribution-API-Version", value: "registry/2.0")
                    }
                    let responseHead = HTTPResponseHead(version: .http1_1, status: reply.status, headers: headers)
                    context.write(self.wrapOutboundOut(.head(responseHead)), promise: nil)
                    if !isHead, !reply.body.isEmpty {
                        context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: reply.body)))), promise: nil)
                    }
                    context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                        if !keepAlive { context.close(promise: nil) }
                    }
                }
            }
            self.head = nil
        }
    }
}

struct RegistryLogic {
    let state: ServerState

    func handle(_ head: HTTPRequestHead, _ body: Data) async -> Reply {
        let components = URLComponents(string: head.uri)
        let path = components?.path ?? head.uri
        let query = Dictionary((components?.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
        state.log.withLock { $0.append("\(head.method) \(head.uri)") }
        if state.unavailable.withLock({ $0 }) { return .error(.serviceUnavailable, "UNAVAILABLE", "the registry is unavailable") }

        if path == "/token" { return token(head, query) }
        if let auth = state.options.bearerAuth {
            _ = auth
            let header = head.headers.first(name: "Authorization") ?? ""
            let ok = header.hasPrefix("Bearer ") && state.validTokens.withLock { $0.contains(String(header.dropFirst(7))) }
            if !ok {
                let port = state.port.withLock { $0 }
                var r = Reply.error(.unauthorized, "UNAUTHORIZED", "authentication required")
                r.headers.add(name: "WWW-Authenticate", value: #"Bearer realm="http://127.0.0.1:\#(port)/token",service="test-registry""#)
                return r
            }
        }
        if path == "/v2/" || path == "/v2" { return Reply.json(.ok, Data("{}".utf8)) }
        guard path.hasPrefix("/v2/") else { return .error(.notFound, "NOT_FOUND", "not found") }
        let rest = String(path.dropFirst(4))
        for marker in ["/manifests/", "/blobs/uploads/", "/blobs/", "/referrers/", "/tags/list"] {
            guard let range = rest.range(of: marker, options: .backwards) else { continue }
            let name = String(rest[..<range.lowerBound])
            let arg = String(rest[range.upperBound...])
            let store = state.store(name)
            do {
                switch marker {
                case "/manifests/": return try await manifests(head, body, store, arg)
                case "/blobs/uploads/": return try await uploads(head, body, store, name, arg, query)
                case "/blobs/": return try await blobs(head, store, arg)
                case "/referrers/": return try await referrers(store, arg, query)
                default:
                    let tags = try await store.listTags()
                    let json = try JSONSerialization.data(withJSONObject: ["name": name, "tags": tags])
                    return .json(.ok, json)
                }
            } catch let e as OCIError where e.code == .notFound {
                return .error(.notFound, marker == "/manifests/" ? "MANIFEST_UNKNOWN" : "BLOB_UNKNOWN", e.reason)
            } catch {
                return .error(.badRequest, "INVALID", "\(error)")
            }
        }
        return .error(.notFound, "NOT_FOUND", "unknown route")
    }

    func token(_ head: HTTPRequestHead, _ query: [String: String]) -> Reply {
        if let auth = state.options.bearerAuth {
            let expected = "Basic " + Data("\(auth.username):\(auth.password)".utf8).base64EncodedString()
            guard head.headers.first(name: "Authorization") == expected else {
                return .error(.unauthorized, "UNAUTHORIZED", "bad credentials")
            }
        }
        let token = UUID().uuidString
        state.validTokens.withLock { _ = $0.insert(token) }
        state.tokens.withLock { $0 += 1 }
        return .json(.ok, Data(#"{"token":"\#(token)","expires_in":300}"#.utf8))
    }

    func manifests(_ head: HTTPRequestHead, _ body: Data, _ store: MemoryStore, _ ref: String) async throws -> Reply {
        let shouldThrottle = state.throttled.withLock { n -> Bool in
            if n < state.options.throttleManifests { n += 1; return true }
            return false
        }
        if shouldThrottle {
            var r = Reply.error(.tooManyRequests, "TOOMANYREQUESTS", "slow down")
            r.headers.add(name: "Retry-After", value: "1")
            return r
        }
        switch head.method {
        case .GET, .HEAD:
            let d = try await store.resolve(ref)
            guard MediaType.isManifest(d.mediaType) else { return .error(.notFound, "MANIFEST_UNKNOWN", ref) }
            let data = try await store.fetch(d).collect(limit: Int.max)
            var r = Reply.json(.ok, data, type: d.mediaType)
            r.headers.add(name: "Docker-Content-Digest", value: d.digest.description)
            r.headers.add(name: "ETag", value: "\"\(d.digest)\"")
            return r
        case .PUT:
            let mediaType = head.headers.first(name: "Content-Type") ?? MediaType.imageManifest
            let raw = try RawManifest(bytes: body, mediaType: mediaType)
            let tag = (try? Digest(parsing: ref)) == nil ? ref : nil
            let ifNoneMatch = head.headers.first(name: "If-None-Match") == "*"
            guard try await store.put(raw, tag: tag, ifMatch: head.headers.first(name: "If-Match"), ifNoneMatch: ifNoneMatch) else {
                return .error(.preconditionFailed, "PRECONDITION", "etag mismatch")
            }
            var r = Reply(status: .created)
            r.headers.add(name: "Docker-Content-Digest", value: raw.digest.description)
            if state.options.referrersAPI, let subject = try raw.parsed().subject {
                r.headers.add(name: "OCI-Subject", value: subject.digest.description)
            }
            return r
        default:
            return .error(.methodNotAllowed, "UNSUPPORTED", "method")
        }
    }

    func blobs(_ head: HTTPRequestHead, _ store: MemoryStore, _ digest: String) async throws -> Reply {
        let d = try Digest(parsing: digest)
        let desc = Descriptor(mediaType: "application/octet-stream", digest: d, size: 0)
        guard try await store.exists(desc) else { return .error(.notFound, "BLOB_UNKNOWN", digest) }
        let data = try await store.fetch(desc).collect(limit: Int.max)
        var r = Reply.json(.ok, data, type: "application/octet-stream")
        r.headers.add(name: "Docker-Content-Digest", value: d.description)
        return r
    }

    func uploads(_ head: HTTPRequestHead, _ body: Data, _ store: MemoryStore, _ name: String, _ id: String, _ query: [String: String]) async throws
        -> Reply
    {
        switch head.method {
        case .POST:
            if let mount = query["mount"], let from = query["from"] {
                let d = try Digest(parsing: mount)
                let source = state.store(from)
                let desc = Descriptor(mediaType: "application/octet-stream", digest: d, size: 0)
                if try await source.exists(desc) {
                    let data = try await source.fetch(desc).collect(limit: Int.max)
                    try await store.push(Descriptor(mediaType: "application/octet-stream", digest: d, size: Int64(data.count)), bytes: data)
                    return Reply(status: .created, headers: ["Location": "/v2/\(name)/blobs/\(d)"])
                }
            }
            let uuid = UUID().uuidString
            state.uploads.withLock { $0[uuid] = Data() }
            return Reply(status: .accepted, headers: ["Location": "/v2/\(name)/blobs/uploads/\(uuid)", "Range": "0-0"])
        case .PATCH:
            let fail =
                state.options.failFirstPatch
                && state.patchFailed.withLock { done in
                    defer { done = true }
                    return !done
                }
            let size = state.uploads.withLock { u -> Int in
                u[id, default: Data()].append(fail ? body.prefix(body.count / 2) : body)
                return u[id]!.count
            }
            if fail { return .error(.internalServerError, "UNKNOWN", "connection lost mid-chunk") }
            return Reply(status: .accepted, headers: ["Location": "/v2/\(name)/blobs/uploads/\(id)", "Range": "0-\(max(0, size - 1))"])
        case .GET:
            guard let size = state.uploads.withLock({ $0[id]?.count }) else { return .error(.notFound, "BLOB_UPLOAD_UNKNOWN", id) }
            return Reply(status: .noContent, headers: ["Location": "/v2/\(name)/blobs/uploads/\(id)", "Range": "0-\(max(0, size - 1))"])
        case .PUT:
            guard let digest = query["digest"] else { return .error(.badRequest, "DIGEST_INVALID", "digest missing") }
            let d = try Digest(parsing: digest)
            let data = state.uploads.withLock { u -> Data in
                var all = u[id] ?? Data()
                all.append(body)
                u[id] = nil
                return all
            }
            guard Digest.compute(data) == d else { return .error(.badRequest, "DIGEST_INVALID", "digest mismatch") }
            try await store.push(Descriptor(mediaType: "application/octet-stream", digest: d, size: Int64(data.count)), bytes: data)
            return Reply(status: .created, headers: ["Location": "/v2/\(name)/blobs/\(d)", "Docker-Content-Digest": d.description])
        case .DELETE:
            state.uploads.withLock { $0[id] = nil }
            return Reply(status: .noContent)
        default:
            return .error(.methodNotAllowed, "UNSUPPORTED", "method")
        }
    }

    func referrers(_ store: MemoryStore, _ digest: String, _ query: [String: String]) async throws -> Reply {
        guard state.options.referrersAPI else { return .error(.notFound, "NOT_FOUND", "unknown route") }
        let fail = state.referrerFailures.withLock { n -> Bool in
            if n < state.options.failReferrers.count { n += 1; return true }
            return false
        }
        if fail {
            var r = Reply.error(HTTPResponseStatus(statusCode: state.options.failReferrers.status), "UNAVAILABLE", "referrers unavailable")
            if state.options.failReferrers.status == 429 { r.headers.add(name: "Retry-After", value: "0") }
            return r
        }
        let d = try Digest(parsing: digest)
        let artifactType = query["artifactType"]
        let list = try await store.referrers(of: Descriptor(mediaType: MediaType.imageManifest, digest: d, size: 0), artifactType: artifactType)
        let index = ImageIndex(manifests: list)
        var r = Reply.json(.ok, try JSONEncoder.canonical.encode(index), type: MediaType.imageIndex)
        if artifactType != nil { r.headers.add(name: "OCI-Filters-Applied", value: "artifactType") }
        return r
    }
}
