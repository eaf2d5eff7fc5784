import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// An HTTP/1.1 proxy put in front of a real registry for tests and benchmarks: it adds latency to every request
/// and answers some requests with `429 Too Many Requests` and a `Retry-After` (or, through `intercept`, chosen
/// requests with a status of the test's choosing, to stand for a registry or client failing at that exact step),
/// forwarding the rest unchanged
/// (one upstream connection per client connection; the Host header is kept, so registry URLs point at the proxy).
public final class ThrottlingProxy: Sendable {
    public struct Options: Sendable {
        /// Delay before each request is forwarded (a registry this far away).
        public var latency: TimeAmount = .zero
        /// Answer every Nth request with 429 (0: never).
        public var throttleEvery = 0
        /// Seconds sent in `Retry-After`.
        public var retryAfter = 1
        /// Called with each request's method and URI before it is forwarded: an answer is sent from here (the request
        /// never reaches the registry); nil forwards it. Runs on the proxy's event loop.
        public var intercept: (@Sendable (_ method: String, _ uri: String) -> Answer?)?
        public init(
            latency: TimeAmount = .zero, throttleEvery: Int = 0, retryAfter: Int = 1,
            intercept: (@Sendable (_ method: String, _ uri: String) -> Answer?)? = nil
        ) {
            self.latency = latency
            self.throttleEvery = throttleEvery
            self.retryAfter = retryAfter
            self.intercept = intercept
        }
    }

    /// A response the proxy sends itself: a status and a JSON body (e.g. a distribution error document).
    public struct Answer: Sendable {
        public var status: Int
        public var body: String
        public init(status: Int, body: String = "") {
            self.status = status
            self.body = body
        }
    }

    struct Counters {
        var requests = 0
        var throttled = 0
    }

    public let port: Int
    let channel: Channel
    let shared: SharedState
    public var host: String { "127.0.0.1:\(port)" }
    /// Requests received, and how many of them were answered 429.
    public var requests: Int { shared.counters.withLock { $0.requests } }
    public var throttled: Int { shared.counters.withLock { $0.throttled } }

    init(port: Int, channel: Channel, shared: SharedState) {
        self.port = port
        self.channel = channel
        self.shared = shared
    }

    /// Starts a proxy on a free loopback port (or `port`) forwarding to `upstream` (`host:port`).
    public static func start(upstream: String, options: Options = .init(), port: Int = 0) async throws -> ThrottlingProxy {
        let parts = upstream.split(separator: ":")
        guard parts.count == 2, let upstreamPort = Int(parts[1]) else { throw HarnessError(.resource, "upstream must be host:port, not \(upstream)") }
        let upstreamHost = String(parts[0])
        let shared = SharedState(options: options)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false).flatMap {
                    channel.pipeline.addHandler(ProxyHandler(upstreamHost: upstreamHost, upstreamPort: upstreamPort, shared: shared))
                }
            }
        let channel = try await bootstrap.bind(host: "127.0.0.1", port: port).get()
        return ThrottlingProxy(port: channel.localAddress?.port ?? 0, channel: channel, shared: shared)
    }

    public func stop() {
        channel.close(promise: nil)
    }
}

final class SharedState: Sendable {
    let options: ThrottlingProxy.Options
    let counters = Mutex(ThrottlingProxy.Counters())
    init(options: ThrottlingProxy.Options) { self.options = options }

    /// Counts a request and says whether to throttle it.
    func admit() -> Bool {
        counters.withLock { c in
            c.requests += 1
            let throttle = options.throttleEvery > 0 && c.requests % options.throttleEvery == 0
            if throttle { c.throttled += 1 }
            return throttle
        }
    }
}

/// Client side of one proxied connection.
final class ProxyHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let upstreamHost: String
    let upstreamPort: Int
    let shared: SharedState
    var upstream: Channel?
    var pending: [HTTPClientRequestPart] = []
    var releaseAt: NIODeadline = .uptimeNanoseconds(0)
    /// The answer to the current request, sent instead of forwarding it.
    var dropping: ThrottlingProxy.Answer?
    var context: ChannelHandlerContext?

    init(upstreamHost: String, upstreamPort: Int, shared: SharedState) {
        self.upstreamHost = upstreamHost
        self.upstreamPort = upstreamPort
        self.shared = shared
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        let client = context.channel
        ClientBootstrap(group: context.eventLoop)
            .channelInitializer { channel in
                channel.pipeline.addHTTPClientHandlers().flatMap { channel.pipeline.addHandler(UpstreamHandler(client: client)) }
            }
            .connect(host: upstreamHost, port: upstreamPort)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.upstream = channel
                    self.drain()
                case .failure:
                    client.close(promise: nil)
                }
            }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.close(promise: nil)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if shared.admit() {
                dropping = ThrottlingProxy.Answer(status: 429)
                return
            }
            if let answer = shared.options.intercept?(head.method.rawValue, head.uri) {
                dropping = answer
                return
            }
            releaseAt = .now() + shared.options.latency
            pending.append(.head(head))
            if shared.options.latency > .zero {
                context.eventLoop.scheduleTask(deadline: releaseAt) { self.drain() }
            }
        case .body(let buffer):
            if dropping != nil { return }
            pending.append(.body(.byteBuffer(buffer)))
        case .end(let trailers):
            if let answer = dropping {
                dropping = nil
                var headers = HTTPHeaders()
                if answer.status == 429 { headers.add(name: "Retry-After", value: "\(shared.options.retryAfter)") }
                let body = context.channel.allocator.buffer(string: answer.body)
                headers.add(name: "Content-Length", value: "\(body.readableBytes)")
                headers.add(name: "Content-Type", value: "application/json")
                let status = HTTPResponseStatus(statusCode: answer.status)
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            pending.append(.end(trailers))
        }
        drain()
    }

    func drain() {
        guard let upstream, !pending.isEmpty, NIODeadline.now() >= releaseAt else { return }
        for part in pending { upstream.write(part, promise: nil) }
        pending.removeAll()
        upstream.flush()
    }
}

/// Upstream side: relays responses to the client connection.
final class UpstreamHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let client: Channel
    var lastWrite: EventLoopFuture<Void>?

    init(client: Channel) { self.client = client }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): lastWrite = client.write(HTTPServerResponsePart.head(head))
        case .body(let buffer): lastWrite = client.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)))
        case .end(let trailers): lastWrite = client.writeAndFlush(HTTPServerResponsePart.end(trailers))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The upstream closed (e.g. `Connection: close`): finish writing what it sent, then close the client side.
        let client = self.client
        if let lastWrite {
            lastWrite.whenComplete { _ in client.close(promise: nil) }
        } else {
            client.close(promise: nil)
        }
    }
}
