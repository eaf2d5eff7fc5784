import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// An HTTP server whose every answer a test scripts: the hostile registry of the hostile-input tests (endless or
/// looping `Link` headers, bodies dripped a byte at a time, answers that never come, redirections of uploads and
/// pages to another origin, token realms anywhere). It records each request with its headers.
public final class ScriptedServer: Sendable {
    public struct Request: Sendable {
        public var method: String
        public var uri: String
        public var headers: [String: String]
        /// The request's body as received.
        public var body = Data()
        public func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    public struct Reply: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: Data
        /// Send the body one byte per interval (a server dripping its answer).
        public var drip: TimeAmount?
        /// Never answer (the connection stays open and silent).
        public var silent = false

        public init(status: Int = 200, headers: [(String, String)] = [], body: Data = Data(), drip: TimeAmount? = nil, silent: Bool = false) {
            self.status = status
            self.headers = headers
            self.body = body
            self.drip = drip
            self.silent = silent
        }

        public static func json(_ text: String, status: Int = 200, headers: [(String, String)] = []) -> Reply {
            Reply(status: status, headers: [("Content-Type", "application/json")] + headers, body: Data(text.utf8))
        }
    }

    public let port: Int
    public var host: String { "127.0.0.1:\(port)" }
    public var baseURL: String { "http://\(host)" }
    let channel: Channel
    let shared: ScriptShared

    /// Requests received so far.
    public var requests: [Request] { shared.log.withLock { $0 } }

    init(port: Int, channel: Channel, shared: ScriptShared) {
        self.port = port
        self.channel = channel
        self.shared = shared
    }

    public static func start(_ handler: @escaping @Sendable (Request) -> Reply) async throws -> ScriptedServer {
        let shared = ScriptShared(handler: handler)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false).flatMap {
                    channel.pipeline.addHandler(ScriptHandler(shared: shared))
                }
            }
        let channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        return ScriptedServer(port: channel.localAddress?.port ?? 0, channel: channel, shared: shared)
    }

    public func stop() {
        channel.close(promise: nil)
    }
}

final class ScriptShared: Sendable {
    let handler: @Sendable (ScriptedServer.Request) -> ScriptedServer.Reply
    let log = Mutex<[ScriptedServer.Request]>([])
    init(handler: @escaping @Sendable (ScriptedServer.Request) -> ScriptedServer.Reply) { self.handler = handler }
}

final class ScriptHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let shared: ScriptShared
    var head: HTTPRequestHead?
    var body = Data()

    init(shared: ScriptShared) { self.shared = shared }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = Data()
        case .body(var part): body.append(contentsOf: part.readBytes(length: part.readableBytes) ?? [])
        case .end:
            guard let head else { return }
            var headers: [String: String] = [:]
            for (name, value) in head.headers { headers[name.lowercased()] = value }
            var request = ScriptedServer.Request(method: head.method.rawValue, uri: head.uri, headers: headers)
            request.body = body
            shared.log.withLock { $0.append(request) }
            let reply = shared.handler(request)
            if reply.silent { return }
            var h = HTTPHeaders()
            for (name, value) in reply.headers { h.add(name: name, value: value) }
            h.replaceOrAdd(name: "Content-Length", value: "\(reply.body.count)")
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: reply.status), headers: h))),
                promise: nil)
            if let drip = reply.drip, !reply.body.isEmpty {
                context.flush()
                dripBody([UInt8](reply.body), every: drip, context: context)
            } else {
                if !reply.body.isEmpty {
                    context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: reply.body)))), promise: nil)
                }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }

    private func dripBody(_ bytes: [UInt8], every interval: TimeAmount, context: ChannelHandlerContext) {
        var remaining = bytes[...]
        func step() {
            guard context.channel.isActive else { return }
            guard let byte = remaining.popFirst() else {
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: [byte])))), promise: nil)
            context.eventLoop.scheduleTask(in: interval) { step() }
        }
        step()
    }
}
