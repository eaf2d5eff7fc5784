import AsyncHTTPClient
import CEL
import Crypto
import Documents
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Storage
import Synchronization
import WardenApp
import Workflow

/// Who may call a route: anyone, any authenticated principal, or a principal holding a permission.
public enum RouteAccess: Sendable, Equatable {
    case anyone
    case authenticated
    case permission(Permission)
}

/// One route of the API, as declared (the permission table and the OpenAPI document list these).
public struct RouteSpec: Sendable {
    public var method: String
    public var path: String
    public var access: RouteAccess
}

/// `warden serve`: the control plane's HTTP API over the application layer, with the run pool and the audit
/// checkpoints as services of one group that shuts down gracefully on SIGTERM and SIGINT.
public final class ControlServer: Sendable {
    public let settings: ServerSettings
    public let layout: StateLayout
    public let control: ControlPlane
    public let engine: WorkflowEngine
    public let store: any ControlStore
    public let metrics: ServerMetrics
    let pool: RunPool
    let limiter: RateLimiter
    let key: Curve25519.Signing.PrivateKey
    let oidc: OIDCVerifier?
    let oidcSettings: [ServerSettings.OIDCIssuerSettings]
    let httpClient: HTTPClient?
    let logger: Logger
    let times: RunTimes
    public let triggers: TriggerPlane
    let triggerService: TriggerService
    public let compliance: CompliancePlane
    let complianceService: ComplianceService

    /// A server over the state directory `layout` with `catalog`'s actions. `logger` receives the structured
    /// request logs.
    /// `lookup` gives the trigger pollers and the digest resolution of tag-only pushes their registry and HTTP
    /// access (none without it).
    /// `scanners` are the backlog's (ArtefactScanners.standard), run by `settings.compliance.workers` workers.
    public init(
        settings: ServerSettings, layout: StateLayout, catalog: ActionCatalog, logger: Logger, lookup: (any TriggerLookup)? = nil,
        scanners: [any ArtefactScanner] = []
    ) throws {
        self.settings = settings
        self.layout = layout
        self.logger = logger
        let metrics = ServerMetrics()
        self.metrics = metrics
        try PrivateFiles.createDirectory(layout.root)
        let store = try SQLiteWorkflowStore(path: layout.workflowsDatabase)
        self.store = store
        var config = EngineConfiguration(
            stateDirectory: layout.root, globalConcurrency: max(settings.concurrency * 4, 8), credentials: WardenEnvironment.credentials())
        config.runConcurrency = min(config.runConcurrency, max(settings.concurrency * 4, 8))
        let times = RunTimes()
        self.times = times
        engine = WorkflowEngine(
            store: store, catalog: catalog, configuration: config,
            observer: { run, entries in times.observe(run: run, entries: entries, metrics: metrics) })
        control = ControlPlane(store: store, engine: engine)
        pool = RunPool(engine: engine, concurrency: settings.concurrency, metrics: metrics, times: times, logger: logger)
        triggers = TriggerPlane(control: control, receivers: settings.receivers, lookup: lookup, observer: metrics)
        triggerService = TriggerService(triggers: triggers, pool: pool, logger: logger)
        compliance = try CompliancePlane.open(control: control, state: layout)
        complianceService = ComplianceService(
            compliance: compliance, settings: settings.compliance,
            scanners: Dictionary(scanners.map { ($0.datasource, $0) }, uniquingKeysWith: { a, _ in a }), lookup: lookup,
            holder: "\(ProcessInfo.processInfo.hostName)/\(ProcessInfo.processInfo.processIdentifier)", logger: logger,
            webhook: settings.compliance.issuesWebhook.map {
                IssueWebhook(url: $0, secret: settings.compliance.issuesWebhookSecret, client: HTTPClient.shared)
            })
        limiter = RateLimiter(perMinute: settings.limits.writesPerMinute)
        key = try AuditJob.signingKey(layout)
        oidcSettings = settings.oidc
        if settings.oidc.isEmpty {
            oidc = nil
            httpClient = nil
        } else {
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            httpClient = client
            oidc = OIDCVerifier(
                issuers: settings.oidc.map {
                    var i = OIDCIssuer(issuer: $0.issuer, audiences: $0.audiences, jwksURL: $0.jwksURL)
                    i.subjectClaim = $0.subjectClaim
                    i.groupsClaim = $0.groupsClaim
                    return i
                }, httpClient: client)
        }
    }

    /// Creates the workspaces the configuration declares and sets their members (audited as the configuration's
    /// doing).
    public func applyConfiguration() async throws {
        let caller = ControlPlane.Caller(Principal(name: "config", method: "config"))
        for w in settings.workspaces {
            if try await store.workspace(w.name) == nil { _ = try await control.createWorkspace(w.name, caller: caller) }
            let current = try await store.bindings(workspace: w.name)
            for (p, r) in w.members where !current.contains(RoleBinding(workspace: w.name, principal: p, role: r.rawValue)) {
                _ = try await control.setMember(workspace: w.name, principal: p, role: r, caller: caller)
            }
        }
    }

    /// The first admin token of a fresh state directory (`warden serve --init`, `warden admin token create`):
    /// admin of every workspace, with a `default` workspace created when none exists.
    public func bootstrapAdmin(name: String = "admin", lifetime: TimeInterval? = nil) async throws -> ControlPlane.IssuedToken {
        let caller = ControlPlane.Caller(Principal(name: "bootstrap", method: "local"))
        if try await store.workspace(RunRecord.defaultWorkspace) == nil {
            _ = try await control.createWorkspace(RunRecord.defaultWorkspace, caller: caller)
        }
        return try await control.createToken(name: name, subject: name, roles: ["*": .admin], lifetime: lifetime, caller: caller)
    }

    // MARK: Serving

    /// The router with every route and the middleware (request ids, logs, metrics, problem documents).
    public func router() -> Router<ServerContext> {
        let router = Router(context: ServerContext.self)
        router.add(middleware: Outermost(server: self))
        Routes(server: self).register(on: router)
        return router
    }

    /// The application: HTTP/1.1, or TLS with HTTP/2 by ALPN when configured.
    /// With `withServices` the run pool and the checkpoint signer run inside the application (in-process tests).
    public func application(onRunning: (@Sendable (Int) async -> Void)? = nil, withServices: Bool = false) throws -> some ApplicationProtocol {
        let http1 = HTTP1Channel.Configuration(idleTimeout: .seconds(Int64(settings.limits.idleTimeout)))
        let server: HTTPServerBuilder
        if let tls = settings.tls {
            let certs = try NIOSSLCertificate.fromPEMFile(tls.certificate).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: tls.key, format: .pem)
            var config = TLSConfiguration.makeServerConfiguration(certificateChain: certs, privateKey: .privateKey(key))
            config.minimumTLSVersion = .tlsv12
            if tls.http2 {
                server = try .http2Upgrade(
                    tlsConfiguration: config,
                    configuration: .init(
                        idleTimeout: .seconds(settings.limits.idleTimeout), gracefulCloseTimeout: .seconds(5), streamConfiguration: http1))
            } else {
                config.applicationProtocols = ["http/1.1"]
                server = try .tls(.http1(configuration: http1), tlsConfiguration: config)
            }
        } else {
            server = .http1(configuration: http1)
        }
        return Application(
            router: router(), server: server,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: nil),
            services: withServices ? services : [], onServerRunning: { channel in await onRunning?(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// The long-running parts besides the HTTP server: the run pool and the checkpoint signer.
    public var services: [any Service] {
        [
            CheckpointService(store: store, key: key, interval: settings.checkpointInterval, logger: logger), pool, triggerService,
            complianceService,
        ]
    }

    /// Runs until SIGTERM or SIGINT: stops accepting, lets in-flight requests finish, stops driving at the next journal
    /// entry (runs are released for the next start), signs a last checkpoint, exits. `onRunning` gets the bound port.
    public func run(onRunning: (@Sendable (Int) async -> Void)? = nil) async throws {
        try await applyConfiguration()
        let app = try application(onRunning: onRunning)
        // Shut down in reverse order: the HTTP server first, then the pool, then the last checkpoint.
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) } + [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint],
                cancellationSignals: [], logger: logger))
        try await group.run()
        try await httpClient?.shutdown()
    }

    /// Queues a run for the pool (started through the API).
    func drive(_ run: String) { pool.submit(run) }

    /// True when the store answers and the pool takes runs.
    func ready() async -> (Bool, String) {
        do { _ = try await store.auditCount() } catch { return (false, "store: \(error)") }
        return pool.running ? (true, "ok") : (false, "the run pool is not running")
    }

    /// The principal a bearer credential names: a Warden API token, or a JWT from a configured OIDC issuer.
    func authenticate(_ request: Request) async throws -> Principal {
        guard let header = request.headers[.authorization] else {
            throw ControlError(.unauthenticated, "no credentials: send Authorization: Bearer <token>")
        }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw ControlError(.unauthenticated, "the Authorization header must be Bearer <token>")
        }
        let token = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        if token.hasPrefix(APIToken.prefix) { return try await control.authenticate(token: token) }
        if let oidc, OIDCVerifier.looksLikeJWT(token) {
            do {
                let id = try await oidc.verify(token)
                let prefix = oidcSettings.first { $0.issuer == id.issuer }?.name ?? "oidc"
                return Principal(name: "\(prefix):\(id.subject)", groups: id.groups, method: "oidc")
            } catch let e as OIDCError {
                throw ControlError(.unauthenticated, "OIDC token refused: \(e.reason)")
            }
        }
        throw ControlError(.unauthenticated, "unknown bearer token (neither a Warden API token nor a JWT of a configured issuer)")
    }
}

/// Run, step and attempt durations for the metrics, from the journal entries this process commits.
final class RunTimes: Sendable {
    struct State {
        var starts: [String: Date] = [:]
        var workflows: [String: String] = [:]
        var inFlight = 0
    }
    let state = Mutex(State())

    /// Names the workflow of `run` (the pool does before driving it).
    func name(_ run: String, _ workflow: String) { state.withLock { $0.workflows[run] = workflow } }

    func observe(run: String, entries: [JournalEntry], metrics: ServerMetrics) {
        for e in entries {
            let unit = "\(run)/\(e.step ?? "")/\(e.item ?? 0)/\(e.attempt ?? 0)"
            let step = "\(run)/\(e.step ?? "")"
            switch e.type {
            case "run.created": state.withLock { $0.starts[run] = e.at }
            case "step.started": state.withLock { $0.starts[step] = e.at }
            case "attempt.started":
                let n = state.withLock { s in
                    s.starts[unit] = e.at
                    s.inFlight += 1
                    return s.inFlight
                }
                metrics.setInFlightAttempts(n)
            case "attempt.finished", "step.finished", "run.finished":
                let key = e.type == "attempt.finished" ? unit : e.type == "step.finished" ? step : run
                let (start, workflow, n) = state.withLock { s in
                    if e.type == "attempt.finished" { s.inFlight = max(0, s.inFlight - 1) }
                    let w = (e.type == "run.finished" ? s.workflows.removeValue(forKey: run) : s.workflows[run]) ?? "unknown"
                    return (s.starts.removeValue(forKey: key), w, s.inFlight)
                }
                let status = Self.status(e.data)
                let seconds = start.map { e.at.timeIntervalSince($0) } ?? 0
                switch e.type {
                case "attempt.finished":
                    metrics.setInFlightAttempts(n)
                    metrics.attempt(workflow: workflow, status: status, seconds: seconds)
                case "step.finished": metrics.step(workflow: workflow, status: status, seconds: seconds)
                default: metrics.runFinished(workflow: workflow, status: status, seconds: seconds)
                }
            default: break
            }
        }
    }

    static func status(_ data: String) -> String {
        guard case .map(let pairs) = try? Value.parseJSON(data) else { return "unknown" }
        for (k, v) in pairs { if case .string("status") = k, case .string(let s) = v { return s } }
        return "unknown"
    }
}
