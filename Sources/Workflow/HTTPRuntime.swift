import AsyncHTTPClient
import CEL
import Crypto
import Documents
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// HMAC-SHA256 of `body` with `secret`, as the `X-Warden-Signature` header carries it: `sha256=HEX`.
public func webhookSignature(_ body: [UInt8], secret: String) -> String {
    let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
    return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
}

/// The `http` runtime: POSTs `{"inputs": …, "context": …}` to a webhook, signed with HMAC-SHA256 when a secret is
/// given; a 2xx answer with JSON is the result, a 202 means the result comes later to the one-time callback URL in
/// `context.callback`.
public struct HTTPAction: WorkflowAction {
    public let manifest: ActionManifest
    /// Fixed settings from a manifest (`url`, `secret`, `callback`); nil for the built-in `http@v1`, which takes
    /// them from `with:`.
    let fixed: Value?
    let callbacks: CallbackServer

    /// `callbacks`: where asynchronous results arrive (the CLI's own listener by default; `warden serve` mounts the
    /// route on its router).
    public init(callbacks: CallbackServer = CallbackServer()) {
        manifest = ActionManifest(
            name: "http", version: "1.0.0", runtime: "http",
            description: "POSTs inputs to a webhook (HMAC-signed); a synchronous JSON answer or an asynchronous callback is the result.",
            inputSchema: schema(
                ["url"], [("url", "string"), ("input", "any"), ("secret", "string"), ("callback", "boolean"), ("callbackTimeout", "string")]),
            outputSchema: .object([("type", .string("object"))]))
        fixed = nil
        self.callbacks = callbacks
    }

    public init(manifest: ActionManifest, callbacks: CallbackServer = CallbackServer()) throws {
        guard case .string? = manifest.settings["url"] else { throw ActionFailure(.permanent, "http.url is missing") }
        self.manifest = manifest
        fixed = manifest.settings
        self.callbacks = callbacks
    }

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        let settings = fixed ?? inputs
        let payload = fixed == nil ? (inputs["input"] ?? .map([])) : inputs
        guard case .string(let url)? = settings["url"] else { throw ActionFailure(.permanent, "url must be a string") }
        var secret: String?
        if let slot = settings["secret"]?.stringValue {
            guard let s = context.credentials[slot] else {
                throw ActionFailure(.permanent, "secret: credential slot \"\(slot)\" is not given (list it in with.credentials)")
            }
            secret = s
        }
        var wantsCallback = false
        if case .bool(true)? = settings["callback"] { wantsCallback = true }
        var token: String?
        var ctx: [(String, Value)] = [
            ("run", .string(context.run)), ("step", .string(context.step)), ("item", .int(Int64(context.item))),
            ("attempt", .int(Int64(context.attempt))), ("key", .string(context.key)),
        ]
        if wantsCallback {
            let (t, url) = try await callbacks.register(secret: secret)
            token = t
            ctx.append(("callback", .string(url)))
        }
        defer { if let token { callbacks.forget(token) } }
        let body = Array(Value.object([("inputs", payload), ("context", .object(ctx))]).jsonText().utf8)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-Warden-Attempt-Key", value: context.key)
        if let secret { request.headers.add(name: "X-Warden-Signature", value: webhookSignature(body, secret: secret)) }
        request.body = .bytes(ByteBuffer(bytes: body))
        context.log("POST \(url)")
        let response: HTTPClientResponse
        let answer: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            answer = try await response.body.collect(upTo: 16 << 20)
        } catch {
            throw ActionFailure(.retryable, "POST \(url): \(error)")
        }
        let code = Int(response.status.code)
        context.log("→ \(code)")
        let text = String(buffer: answer)
        if code == 202 && wantsCallback, let token {
            let timeout = try settings["callbackTimeout"]?.stringValue.map(parseDuration) ?? .seconds(3600)
            return try await callbacks.wait(token, timeout: timeout)
        }
        guard (200..<300).contains(code) else {
            let cls: ActionFailure.Class = [408, 425, 429].contains(code) || code >= 500 ? .retryable : .permanent
            throw ActionFailure(cls, "POST \(url): HTTP \(code)\(text.isEmpty ? "" : ": \(text.prefix(300))")")
        }
        return try result(from: text, what: "the answer of \(url)")
    }
}

/// A result document (`{"outputs": {...}}`, or the outputs object itself; empty is `{}`).
func result(from text: String, what: String) throws -> ActionResult {
    if text.allSatisfy(\.isWhitespace) { return ActionResult() }
    let v: Value
    do { v = try Value.parseJSON(text) } catch { throw ActionFailure(.permanent, "\(what) is not JSON: \(error)") }
    guard case .map = v else { throw ActionFailure(.permanent, "\(what) must be a JSON object") }
    if let o = v["outputs"] { return ActionResult(outputs: o) }
    return ActionResult(outputs: v)
}

func parseDuration(_ text: String) throws -> Duration {
    guard let d = WorkflowDefinition.parseDuration(text) else { throw ActionFailure(.permanent, "\"\(text)\" is not a duration (30s, 5m, 1h)") }
    return d
}

/// `http/notify@v1`: POSTs a JSON body to a URL (HMAC-signed with the `secret` slot when given); the status code is
/// the output. 4xx answers are permanent failures, 5xx and network errors retryable.
public struct NotifyAction: WorkflowAction {
    public init() {}
    public let manifest = ActionManifest(
        name: "http/notify", version: "1.0.0", runtime: "builtin", description: "Posts a JSON notification to a URL.",
        inputSchema: schema(["url"], [("url", "string"), ("body", "any"), ("secret", "string")]),
        outputSchema: schema(["status"], [("status", "integer")]))

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        guard case .string(let url)? = inputs["url"] else { throw ActionFailure(.permanent, "url must be a string") }
        let body = Array((inputs["body"] ?? .map([])).jsonText().utf8)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-Warden-Attempt-Key", value: context.key)
        if let slot = inputs["secret"]?.stringValue {
            guard let secret = context.credentials[slot] else { throw ActionFailure(.permanent, "secret: credential slot \"\(slot)\" is not given") }
            request.headers.add(name: "X-Warden-Signature", value: webhookSignature(body, secret: secret))
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        let code: Int
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 20)
            code = Int(response.status.code)
        } catch {
            throw ActionFailure(.retryable, "POST \(url): \(error)")
        }
        context.log("POST \(url) → \(code)")
        guard (200..<300).contains(code) else {
            throw ActionFailure(code >= 500 || code == 429 || code == 408 ? .retryable : .permanent, "POST \(url): HTTP \(code)")
        }
        return ActionResult(outputs: .object([("status", .int(Int64(code)))]))
    }
}

/// Where callbacks arrive: something that answers `POST BASE/callbacks/TOKEN` by calling
/// `CallbackServer.deliver(token:body:signature:)`. The CLI uses its own listener (`StandaloneCallbackListener`);
/// a server mounts the route on its router and says where (`MountedCallbacks`).
public protocol CallbackEndpoint: Sendable {
    /// The base URL (`scheme://host:port`, optionally a path prefix) of the callback route, ready to receive for
    /// `server` (a listener starts on first use).
    func base(for server: CallbackServer) async throws -> String
}

/// A callback route that a server already serves at `base` (it forwards `POST /callbacks/TOKEN` to `deliver`).
public struct MountedCallbacks: CallbackEndpoint {
    public let baseURL: String
    public init(baseURL: String) { self.baseURL = baseURL }
    public func base(for server: CallbackServer) async throws -> String { baseURL }
}

/// One-time callback URLs for asynchronous webhook results: `POST /callbacks/TOKEN` with a result document, signed
/// like the request when the action has a secret. The first valid POST is the result (204); later ones get 410,
/// unknown tokens 404, bad signatures 401.
public final class CallbackServer: Sendable {
    struct Waiter {
        var secret: String?
        var continuation: CheckedContinuation<ActionResult, Error>?
        var early: Result<ActionResult, ActionFailure>?
    }
    let state = Mutex<(waiters: [String: Waiter], used: Set<String>)>(([:], []))
    let endpoint: any CallbackEndpoint

    public init(endpoint: any CallbackEndpoint = StandaloneCallbackListener()) { self.endpoint = endpoint }

    /// A new token and its URL (the listener starts on first use).
    public func register(secret: String?) async throws -> (token: String, url: String) {
        let base = try await endpoint.base(for: self)
        var bytes = [UInt8](repeating: 0, count: 24)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let token = bytes.map { String(format: "%02x", $0) }.joined()
        state.withLock { $0.waiters[token] = Waiter(secret: secret) }
        return (token, base + "/callbacks/" + token)
    }

    public func forget(_ token: String) {
        state.withLock { s in
            s.waiters[token] = nil
            s.used.insert(token)
        }
    }

    public func wait(_ token: String, timeout: Duration) async throws -> ActionResult {
        try await withThrowingTaskGroup(of: ActionResult.self) { group in
            group.addTask {
                try await withCheckedThrowingContinuation { c in
                    let early = self.state.withLock { s -> Result<ActionResult, ActionFailure>?? in
                        guard var w = s.waiters[token] else { return .some(.failure(ActionFailure(.retryable, "callback token expired"))) }
                        if let e = w.early { return .some(e) }
                        w.continuation = c
                        s.waiters[token] = w
                        return .none
                    }
                    if case .some(.some(let r)) = early { c.resume(with: r.mapError { $0 as Error }) }
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw ActionFailure(.timeout, "no callback within \(timeout.text)")
            }
            defer { group.cancelAll() }
            let r = try await group.next()!
            return r
        }
    }

    /// Handles a callback POST (from any endpoint's route); returns the HTTP status to answer.
    public func deliver(token: String, body: [UInt8], signature: String?) -> Int {
        let (status, continuation, result) = state.withLock {
            s -> (Int, CheckedContinuation<ActionResult, Error>?, Result<ActionResult, ActionFailure>?) in
            if s.used.contains(token) { return (410, nil, nil) }
            guard var w = s.waiters[token] else { return (404, nil, nil) }
            if let secret = w.secret, !constantTimeEquals(signature ?? "", webhookSignature(body, secret: secret)) { return (401, nil, nil) }
            let r = Self.parse(body)
            s.used.insert(token)
            if let c = w.continuation {
                s.waiters[token] = nil
                return (204, c, r)
            }
            w.early = r
            s.waiters[token] = w
            return (204, nil, nil)
        }
        if let continuation, let result { continuation.resume(with: result.mapError { $0 as Error }) }
        return status
    }

    static func parse(_ body: [UInt8]) -> Result<ActionResult, ActionFailure> {
        guard let v = try? Value.parseJSON(body), case .map = v else {
            return .failure(ActionFailure(.permanent, "the callback body is not a JSON object"))
        }
        let status = v["status"]?.stringValue ?? "succeeded"
        switch status {
        case "succeeded": return .success(ActionResult(outputs: v["outputs"] ?? .map([])))
        case "permanent", "failed": return .failure(ActionFailure(.permanent, v["error"]?.stringValue ?? "the callback reported a failure"))
        default: return .failure(ActionFailure(.retryable, v["error"]?.stringValue ?? "the callback reported a retryable failure"))
        }
    }

}

/// The CLI's callback listener: its own HTTP server on loopback (`WARDEN_CALLBACK_HOST`/`WARDEN_CALLBACK_PORT`
/// change the address and the URL's host), started on first use, one per endpoint.
public final class StandaloneCallbackListener: CallbackEndpoint {
    let base = Mutex<String?>(nil)
    let channel = Mutex<(any Channel)?>(nil)
    public init() {}

    /// Stops listening (callbacks not yet received are lost: their attempts time out and are retried).
    public func close() async {
        guard
            let channel = channel.withLock({ c in
                defer { c = nil }; return c
            })
        else { return }
        try? await channel.close()
    }

    public func base(for server: CallbackServer) async throws -> String {
        if let base = base.withLock({ $0 }) { return base }
        let env = ProcessInfo.processInfo.environment
        let host = env["WARDEN_CALLBACK_HOST"] ?? "127.0.0.1"
        let port = Int(env["WARDEN_CALLBACK_PORT"] ?? "0") ?? 0
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap { channel.pipeline.addHandler(CallbackHandler(server: server)) }
            }
            .bind(host: host, port: port).get()
        let url = "http://\(host):\(channel.localAddress?.port ?? port)"
        return base.withLock { b in
            if let existing = b {
                channel.close(promise: nil)
                return existing
            }
            b = url
            self.channel.withLock { $0 = channel }
            return url
        }
    }
}

final class CallbackHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: NIO calls a handler only on its channel's event loop.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let server: CallbackServer
    var head: HTTPRequestHead?
    var body: [UInt8] = []

    init(server: CallbackServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
        case .body(var b):
            if body.count < 16 << 20 { body += b.readBytes(length: b.readableBytes) ?? [] }
        case .end:
            guard let h = head else { return }
            var status = 404
            if h.method == .POST, h.uri.hasPrefix("/callbacks/") {
                status = server.deliver(
                    token: String(h.uri.dropFirst("/callbacks/".count)), body: body, signature: h.headers.first(name: "X-Warden-Signature"))
            } else if h.method != .POST {
                status = 405
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "0")
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: .init(statusCode: status), headers: headers))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            head = nil
        }
    }
}
