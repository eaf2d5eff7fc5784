import AsyncHTTPClient
import Documents
import Foundation
import Logging
import NIOCore
import NIOSSL
import OCI
import Synchronization

/// Opens content stores for locations: registry repositories over one shared HTTP client, or image layouts.
public final class Registries: Sendable {
    public let configuration: RegistryConfiguration
    let http: HTTPClient
    let logger: Logger
    private let clients = Mutex<[String: RegistryClient]>([:])
    private let isShutDown = Mutex(false)

    public init(configuration: RegistryConfiguration = .init(), logger: Logger = Logger(label: "warden.registry")) throws {
        self.configuration = configuration
        self.logger = logger
        var tls = TLSConfiguration.makeClientConfiguration()
        let bundles = (configuration.caBundlePath.map { [$0] } ?? []) + configuration.additionalCABundlePaths
        for ca in bundles {
            guard FileManager.default.fileExists(atPath: ca) else {
                throw OCIError(.invalidArgument, "CA bundle \(ca) does not exist")
            }
        }
        if !bundles.isEmpty { tls.additionalTrustRoots = bundles.map { .file($0) } }
        var config = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .follow(max: 5, allowCycles: false),
            timeout: .init(connect: configuration.connectTimeout, read: configuration.readTimeout))
        config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 32)
        config.decompression = .disabled
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    /// The client for a registry host (one per host, sharing tokens and learnt capabilities).
    public func client(host: String) throws -> RegistryClient {
        if let c = clients.withLock({ $0[host] }) { return c }
        let c = try RegistryClient(host: host, configuration: configuration, http: http, logger: logger)
        return clients.withLock { map in
            if let existing = map[host] { return existing }
            map[host] = c
            return c
        }
    }

    public func repository(_ reference: Reference) throws -> RegistryRepository {
        RegistryRepository(client: try client(host: reference.registry), repository: reference.repository)
    }

    /// A store for a location; `create` makes a missing layout directory (for destinations).
    public func store(for location: Location, create: Bool) throws -> any ContentStore {
        switch location {
        case .registry(let ref): return try repository(ref)
        case .layout(let path, _, _): return try LayoutStore(path: path, create: create)
        }
    }

    /// A plain GET over the shared HTTP client (pollers of HTTP resources): the status, the headers and at most
    /// `limit` bytes of body (a larger body is an error, not a truncated one), within the request timeout.
    public func get(url: String, headers: [(String, String)], limit: Int) async throws -> (status: Int, headers: [(String, String)], body: [UInt8]) {
        var request = HTTPClientRequest(url: url)
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        let response = try await http.execute(request, timeout: configuration.requestTimeout)
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw OCIError(.registry, "GET \(url): the response is larger than \(limit) bytes; refusing to read further")
        }
        return (Int(response.status.code), response.headers.map { ($0.name, $0.value) }, Array(buffer: body))
    }

    /// Closes connections. Also done on deinit, so an early exit (an error, a failed test) cannot leak the client.
    public func shutdown() async throws {
        guard
            isShutDown.withLock({
                let was = $0; $0 = true; return !was
            })
        else { return }
        try await http.shutdown()
    }

    deinit {
        if isShutDown.withLock({
            let was = $0; $0 = true; return !was
        }) {
            _ = http.shutdown()
        }
    }
}
