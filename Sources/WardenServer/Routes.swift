import CEL
import Crypto
import Documents
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Storage
import WardenApp
import Workflow

/// What a route handler gets: the request, the authenticated caller (nil on public routes), the workspace of the
/// path (checked to exist) and the body (read within the limit).
struct Call: Sendable {
    var request: Request
    var context: ServerContext
    var caller: ControlPlane.Caller!
    var workspace: String!
    var body: ByteBuffer
    /// Writes left in the caller's window (answered in `RateLimit-*` headers).
    var rateLimitRemaining: Int?
    func param(_ name: String) throws -> String {
        guard let v = context.parameters.get(name) else { throw Problem(status: 400, code: "invalid", detail: "\(name) is missing") }
        return v
    }
    func intParam(_ name: String) throws -> Int {
        guard let v = Int(try param(name)), v >= 0 else { throw Problem(status: 400, code: "invalid", detail: "\(name) must be a number") }
        return v
    }
    var object: [String: Value] { get throws { try jsonObject(body) } }
}

/// What a handler answers: bytes (replayable under an idempotency key) or a streamed response.
enum Reply: Sendable {
    case data(status: HTTPResponse.Status, headers: [(String, String)], body: Data)
    case stream(Response)

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: [(String, String)] = []) throws -> Reply {
        .data(status: status, headers: [("Content-Type", "application/json")] + headers, body: try JSONEncoder.api.encode(value))
    }

    var response: Response {
        switch self {
        case .stream(let r): return r
        case .data(let status, let headers, let body):
            var h = HTTPFields()
            for (k, v) in headers { if let n = HTTPField.Name(k) { h[n] = v } }
            return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(data: body)))
        }
    }
}

/// Request ids, problem documents for every error, metrics by route template and one structured log line per
/// request (never a credential).
struct Outermost: RouterMiddleware {
    typealias Context = ServerContext
    let server: ControlServer

    func handle(_ request: Request, context: ServerContext, next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var context = context
        if let given = request.headers[.requestID], given.utf8.count <= 64,
            given.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
        {
            context.requestID = given
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            let p = Problem(error)
            if p.status >= 500 { server.logger.error("request failed", metadata: ["requestId": "\(context.requestID)", "error": "\(error)"]) }
            response = p.response(requestID: context.requestID, instance: request.uri.path)
        }
        response.headers[.requestID] = context.requestID
        let route = context.endpointPath ?? "unmatched"
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        server.metrics.request(method: request.method.rawValue, route: route, status: Int(response.status.code), seconds: seconds)
        server.logger.info(
            "request",
            metadata: [
                "requestId": "\(context.requestID)", "method": "\(request.method.rawValue)", "route": "\(route)", "status": "\(response.status.code)",
                "ms": "\(Int(seconds * 1000))",
            ])
        return response
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-Id")!
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
}

/// Every route of `/api/v1`, each declaring who may call it.
struct Routes {
    let server: ControlServer
    var control: ControlPlane { server.control }

    /// The routes as declared (the permission table in docs/api.md and the OpenAPI document list the same).
    static let table: [RouteSpec] = {
        var specs: [RouteSpec] = []
        Routes.declare { specs.append($0) }
        return specs
    }()

    /// Calls `add` for every route (the declaration the router and the table share).
    static func declare(_ add: (RouteSpec) -> Void) {
        func r(_ m: String, _ p: String, _ a: RouteAccess) { add(RouteSpec(method: m, path: p, access: a)) }
        r("GET", "/healthz", .anyone)
        r("GET", "/readyz", .anyone)
        r("GET", "/metrics", .anyone)
        r("GET", "/api/v1/openapi.json", .anyone)
        r("GET", "/api/v1/whoami", .authenticated)
        r("GET", "/api/v1/actions", .permission(.actionsRead))
        r("GET", "/api/v1/workspaces", .authenticated)
        r("POST", "/api/v1/workspaces", .permission(.workspaceCreate))
        r("GET", "/api/v1/workspaces/{workspace}", .permission(.workspaceRead))
        r("GET", "/api/v1/workspaces/{workspace}/members", .permission(.membersRead))
        r("PUT", "/api/v1/workspaces/{workspace}/members/{principal}", .permission(.membersManage))
        r("DELETE", "/api/v1/workspaces/{workspace}/members/{principal}", .permission(.membersManage))
        r("GET", "/api/v1/tokens", .permission(.tokenManage))
        r("POST", "/api/v1/tokens", .permission(.tokenManage))
        r("DELETE", "/api/v1/tokens/{id}", .permission(.tokenManage))
        for c in CatalogRoute.all {
            let base = "/api/v1/workspaces/{workspace}/\(c.path)"
            r("GET", base, .permission(c.read))
            r("POST", base, .permission(c.publish))
            r("GET", base + "/{name}", .permission(c.read))
            r("GET", base + "/{name}/versions/{version}", .permission(c.read))
            r("POST", base + "/{name}/versions/{version}/deprecate", .permission(c.deprecate))
        }
        r("POST", "/api/v1/workspaces/{workspace}/templates/{name}/instantiate", .permission(.templateInstantiate))
        r("GET", "/api/v1/workspaces/{workspace}/runs", .permission(.runRead))
        r("POST", "/api/v1/workspaces/{workspace}/runs", .permission(.runStart))
        r("GET", "/api/v1/workspaces/{workspace}/runs/{run}", .permission(.runRead))
        r("POST", "/api/v1/workspaces/{workspace}/runs/{run}/cancel", .permission(.runCancel))
        r("POST", "/api/v1/workspaces/{workspace}/runs/{run}/steps/{step}/approve", .permission(.runApprove))
        r("POST", "/api/v1/workspaces/{workspace}/runs/{run}/steps/{step}/reject", .permission(.runApprove))
        r("GET", "/api/v1/workspaces/{workspace}/runs/{run}/logs", .permission(.runRead))
        r("GET", "/api/v1/workspaces/{workspace}/runs/{run}/journal", .permission(.runRead))
        r("GET", "/api/v1/workspaces/{workspace}/runs/{run}/artifacts/{digest}", .permission(.runRead))
        r("GET", "/api/v1/workspaces/{workspace}/runs/{run}/events", .permission(.runRead))
        r("GET", "/api/v1/workspaces/{workspace}/audit", .permission(.auditRead))
        r("GET", "/api/v1/audit", .permission(.auditReadAll))
        r("GET", "/api/v1/audit/verify", .permission(.auditReadAll))
        r("GET", "/api/v1/audit/checkpoints", .permission(.auditReadAll))
        // Triggers: receivers authenticate deliveries themselves (a header secret or an HMAC signature).
        r("POST", "/api/v1/hooks/{receiver}", .anyone)
        r("POST", "/api/v1/workspaces/{workspace}/triggers/{name}/fire", .permission(.triggerFire))
        r("GET", "/api/v1/workspaces/{workspace}/dispatches", .permission(.triggerRead))
        r("POST", "/api/v1/workspaces/{workspace}/dispatches/{key}/replay", .permission(.triggerFire))
        r("POST", "/api/v1/workspaces/{workspace}/dispatches/{key}/discard", .permission(.triggerFire))
        r("GET", "/api/v1/events", .permission(.eventRead))
        // Findings and compliance: the organisation's, not a workspace's (docs/compliance.md).
        r("GET", "/api/v1/findings", .permission(.findingsRead))
        r("GET", "/api/v1/finding", .permission(.findingsRead))
        r("POST", "/api/v1/scans", .permission(.findingsWrite))
        r("GET", "/api/v1/artefacts", .permission(.findingsRead))
        r("POST", "/api/v1/artefacts", .permission(.findingsWrite))
        r("GET", "/api/v1/rescorings", .permission(.findingsRead))
        r("POST", "/api/v1/rescorings", .permission(.findingsRescore))
        r("DELETE", "/api/v1/rescorings/{id}", .permission(.findingsRescore))
        r("GET", "/api/v1/rescorings/openvex", .permission(.findingsRead))
        r("GET", "/api/v1/compliance/summary", .permission(.findingsRead))
        r("GET", "/api/v1/compliance/history", .permission(.findingsRead))
        r("GET", "/api/v1/compliance/sla-report", .permission(.findingsRead))
        r("POST", "/api/v1/compliance/snapshots", .permission(.findingsWrite))
        r("POST", "/api/v1/components", .permission(.findingsWrite))
        r("GET", "/api/v1/tracked-tags", .permission(.findingsRead))
        r("POST", "/api/v1/tracked-tags", .permission(.findingsWrite))
        r("DELETE", "/api/v1/tracked-tags", .permission(.findingsWrite))
        r("GET", "/api/v1/backlog", .permission(.findingsRead))
        r("POST", "/api/v1/compliance/enumerate", .permission(.findingsWrite))
        r("POST", "/api/v1/compliance/issues", .permission(.findingsWrite))
    }

    func register(on router: Router<ServerContext>) {
        Routes.declare { spec in
            let handler = self.handler(for: spec)
            router.on(RouterPath(spec.path), method: HTTPRequest.Method(rawValue: spec.method)!) { request, context in
                try await self.serve(spec, request, context, handler)
            }
        }
    }

    // MARK: The one path every request takes

    func serve(_ spec: RouteSpec, _ request: Request, _ context: ServerContext, _ handler: @Sendable (Call) async throws -> Reply) async throws
        -> Response
    {
        var call = Call(request: request, context: context, caller: nil, workspace: nil, body: ByteBuffer())
        let subject = "\(spec.method) \(spec.path)"
        let write = spec.method != "GET"
        if spec.access != .anyone {
            let principal: Principal
            do {
                principal = try await server.authenticate(request)
            } catch let e as ControlError {
                try await control.auditUnauthenticated(subject: subject, reason: e.reason, requestID: context.requestID)
                var p = Problem(e)
                p.headers.append(("WWW-Authenticate", "Bearer realm=\"warden\""))
                throw p
            }
            // A write's allow decision commits with the change it allows (one commit per request); `flush` below
            // writes it when no change did.
            call.caller = ControlPlane.Caller(principal, requestID: context.requestID, decision: write ? ControlPlane.PendingDecision() : nil)
            if case .permission(let permission) = spec.access {
                var workspace: String?
                if permission.scope == .workspace {
                    let ws = try call.param("workspace")
                    try Access.checkWorkspaceName(ws)
                    workspace = ws
                }
                try await control.authorize(call.caller, permission, workspace: workspace, subject: subject)
            }
        }
        do {
            let response = try await authorized(spec, call: call, handler)
            try await control.flush(call.caller?.decision)
            return response
        } catch {
            try await control.flush(call.caller?.decision)
            throw error
        }
    }

    /// The rest of `serve` once the caller is authorised: the workspace, rate limit, body, idempotency, handler.
    func authorized(_ spec: RouteSpec, call: Call, _ handler: @Sendable (Call) async throws -> Reply) async throws -> Response {
        var call = call
        let request = call.request
        let write = spec.method != "GET"
        if let caller = call.caller {
            let principal = caller.principal
            if case .permission(let permission) = spec.access, permission.scope == .workspace {
                let workspace = try call.param("workspace")
                _ = try await control.workspace(workspace)
                call.workspace = workspace
            }
            if write {
                let (allowed, remaining, reset) = server.limiter.take(principal.name, now: Date().timeIntervalSince1970)
                guard allowed else {
                    var p = Problem(
                        status: 429, code: "rate-limited",
                        detail:
                            "\(principal.name) made more than \(server.settings.limits.writesPerMinute) writes in a minute; retry after \(reset) s")
                    p.headers = [
                        ("Retry-After", "\(reset)"), ("RateLimit-Limit", "\(server.settings.limits.writesPerMinute)"), ("RateLimit-Remaining", "0"),
                        ("RateLimit-Reset", "\(reset)"),
                    ]
                    throw p
                }
                call.rateLimitRemaining = remaining
            }
        }
        if write {
            let limit = server.settings.limits.bodyBytes
            if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
                throw Problem(status: 413, code: "too-large", detail: "the request body is \(length) bytes; the limit is \(limit)")
            }
            do {
                call.body = try await request.body.collect(upTo: limit)
            } catch is NIOTooManyBytesError {
                throw Problem(status: 413, code: "too-large", detail: "the request body is larger than the limit of \(limit) bytes")
            }
        }
        if write, let key = request.headers[.idempotencyKey], let caller = call.caller {
            return try await idempotent(key: key, call: call, caller: caller, handler)
        }
        return try await handler(call).response
    }

    /// draft-ietf-httpapi-idempotency-key-header: the first request with a key runs and its answer is kept 24 h; the
    /// same key and payload replays it, a different payload is 422, a request still in flight is 409.
    func idempotent(key: String, call: Call, caller: ControlPlane.Caller, _ handler: @Sendable (Call) async throws -> Reply) async throws -> Response
    {
        guard !key.isEmpty, key.utf8.count <= 255 else {
            throw Problem(status: 400, code: "invalid", detail: "Idempotency-Key must be 1 to 255 characters")
        }
        let scope = "\(call.workspace ?? "-")/\(caller.principal.name)"
        var h = SHA256()
        h.update(data: Data("\(call.request.method.rawValue) \(call.request.uri.description)\n".utf8))
        h.update(data: Data(buffer: call.body))
        let fingerprint = hex(h.finalize())
        switch try await server.store.claimIdempotency(scope: scope, key: key, fingerprint: fingerprint, now: Date(), ttl: 24 * 3600) {
        case .mismatch:
            throw Problem(
                status: 422, code: "idempotency-key-reused", detail: "Idempotency-Key \(key) was used with a different request; use a new key")
        case .inFlight:
            throw Problem(
                status: 409, code: "idempotency-in-flight", detail: "a request with Idempotency-Key \(key) is still being processed; retry later")
        case .replay(let r):
            var headers: [(String, String)] = []
            if let text = r.headers, case .map(let pairs)? = try? Value.parseJSON(text) {
                for (k, v) in pairs { if case .string(let name) = k, case .string(let value) = v { headers.append((name, value)) } }
            }
            headers.append(("Idempotent-Replayed", "true"))
            return Reply.data(status: .init(code: r.status ?? 200), headers: headers, body: r.body ?? Data()).response
        case .claimed:
            let reply: Reply
            do {
                reply = try await handler(call)
            } catch {
                try? await server.store.abandonIdempotency(scope: scope, key: key)
                throw error
            }
            if case .data(let status, let headers, let body) = reply {
                let text = Value.object(headers.map { ($0.0, .string($0.1)) }).jsonText(sortedKeys: true)
                try await server.store.completeIdempotency(scope: scope, key: key, status: Int(status.code), headers: text, body: body)
            } else {
                try? await server.store.abandonIdempotency(scope: scope, key: key)
            }
            return reply.response
        }
    }

    // MARK: Handlers

    func handler(for spec: RouteSpec) -> @Sendable (Call) async throws -> Reply {
        let server = self.server
        let control = self.control
        switch (spec.method, spec.path) {
        case ("GET", "/healthz"): return { _ in try .json(["status": "alive"]) }
        case ("GET", "/readyz"):
            return { _ in
                let (ok, why) = await server.ready()
                return try .json(["status": ok ? "ready" : "not ready", "reason": why], status: ok ? .ok : .serviceUnavailable)
            }
        case ("GET", "/metrics"):
            return { _ in .data(status: .ok, headers: [("Content-Type", ServerMetrics.contentType)], body: Data(server.metrics.render().utf8)) }
        case ("GET", "/api/v1/openapi.json"):
            return { _ in .data(status: .ok, headers: [("Content-Type", "application/json")], body: Data(OpenAPIDocument.json.utf8)) }
        case ("GET", "/api/v1/whoami"):
            return { call in
                let p = call.caller.principal
                let bindings = try await server.store.bindings(principals: p.bindingNames)
                return try .json(WhoAmI(principal: p.name, method: p.method, groups: p.groups, roles: bindings.map { .init($0) }))
            }
        case ("GET", "/api/v1/actions"):
            return { _ in try .json(server.engine.catalog.manifests.map(ActionView.init)) }
        case ("GET", "/api/v1/workspaces"):
            return { call in try .json(try await control.workspaces(visibleTo: call.caller.principal).map(WorkspaceView.init)) }
        case ("POST", "/api/v1/workspaces"):
            return { call in
                let o = try call.object
                try o.only(["name"])
                let w = try await control.createWorkspace(try o.string("name", required: true)!, caller: call.caller)
                return try .json(WorkspaceView(w), status: .created, headers: [("Location", "/api/v1/workspaces/\(w.name)")])
            }
        case ("GET", "/api/v1/workspaces/{workspace}"):
            return { call in try .json(WorkspaceView(try await control.workspace(call.workspace))) }
        case ("GET", "/api/v1/workspaces/{workspace}/members"):
            return { call in try .json(try await server.store.bindings(workspace: call.workspace).map(MemberView.init)) }
        case ("PUT", "/api/v1/workspaces/{workspace}/members/{principal}"):
            return { call in
                let o = try call.object
                try o.only(["role"])
                let role = try Role.named(try o.string("role", required: true)!)
                let b = try await control.setMember(
                    workspace: call.workspace, principal: try call.param("principal"), role: role, caller: call.caller)
                return try .json(MemberView(b))
            }
        case ("DELETE", "/api/v1/workspaces/{workspace}/members/{principal}"):
            return { call in
                try await control.removeMember(workspace: call.workspace, principal: try call.param("principal"), caller: call.caller)
                return .data(status: .noContent, headers: [], body: Data())
            }
        case ("GET", "/api/v1/tokens"):
            return { _ in try .json(try await server.store.tokens().map(TokenView.init)) }
        case ("POST", "/api/v1/tokens"):
            return { call in
                let o = try call.object
                try o.only(["name", "subject", "roles", "expiresIn"])
                var roles: [String: Role] = [:]
                for (w, r) in try o.strings("roles") { roles[w] = try Role.named(r) }
                var lifetime: TimeInterval?
                if let e = try o.string("expiresIn") {
                    guard let d = Duration.parse(e), d > .zero else {
                        throw Problem(status: 400, code: "invalid", detail: "expiresIn \"\(e.prefix(40))\" is not a duration (like 720h)")
                    }
                    lifetime = d.seconds
                }
                let issued = try await control.createToken(
                    name: try o.string("name", required: true)!, subject: try o.string("subject"), roles: roles, lifetime: lifetime,
                    caller: call.caller)
                var view = TokenView(issued.record)
                view.token = issued.secret
                return try .json(view, status: .created)
            }
        case ("DELETE", "/api/v1/tokens/{id}"):
            return { call in
                try await control.revokeToken(id: try call.param("id"), caller: call.caller)
                return .data(status: .noContent, headers: [], body: Data())
            }
        case ("POST", "/api/v1/workspaces/{workspace}/templates/{name}/instantiate"):
            return { call in
                let o = try call.object
                try o.only(["version", "parameters"])
                let (entry, created) = try await control.instantiate(
                    template: try call.param("name"), version: try o.int("version"), workspace: call.workspace,
                    parameters: try o.object("parameters"),
                    caller: call.caller)
                return try .json(CatalogView(entry, content: true), status: created ? .created : .ok)
            }
        case ("GET", "/api/v1/workspaces/{workspace}/runs"): return { call in try await listRuns(call) }
        case ("POST", "/api/v1/workspaces/{workspace}/runs"): return { call in try await startRun(call) }
        case ("GET", "/api/v1/workspaces/{workspace}/runs/{run}"):
            return { call in
                let r = try await control.run(try call.param("run"), workspace: call.workspace)
                return try .json(try await RunsJob.view(r, engine: server.engine))
            }
        case ("POST", "/api/v1/workspaces/{workspace}/runs/{run}/cancel"):
            return { call in
                let id = try call.param("run")
                _ = try await control.cancelRun(id, workspace: call.workspace, caller: call.caller)
                let r = try await control.run(id, workspace: call.workspace)
                if RunsJob.driver(of: r) == nil { server.drive(id) }
                return try .json(try await RunsJob.view(r, engine: server.engine, steps: false), status: .accepted)
            }
        case ("POST", "/api/v1/workspaces/{workspace}/runs/{run}/steps/{step}/approve"),
            ("POST", "/api/v1/workspaces/{workspace}/runs/{run}/steps/{step}/reject"):
            let approve = spec.path.hasSuffix("approve")
            return { call in
                let o = call.body.readableBytes == 0 ? [:] : try call.object
                try o.only(["comment"])
                let id = try call.param("run")
                try await control.decide(
                    id, step: try call.param("step"), approve: approve, comment: try o.string("comment"), workspace: call.workspace,
                    caller: call.caller)
                let r = try await control.run(id, workspace: call.workspace)
                if RunsJob.driver(of: r) == nil { server.drive(id) }
                return try .json(try await RunsJob.view(r, engine: server.engine), status: .accepted)
            }
        case ("GET", "/api/v1/workspaces/{workspace}/runs/{run}/logs"): return { call in try await logs(call) }
        case ("GET", "/api/v1/workspaces/{workspace}/runs/{run}/journal"): return { call in try await journal(call) }
        case ("POST", "/api/v1/hooks/{receiver}"):
            return { call in
                var headers: [(String, String)] = call.request.headers.map { ($0.name.rawName, $0.value) }
                // Docker Hub cannot send headers: its secret may come as ?token=, checked as the receiver's header.
                if let token = query(call.request, "token"), let r = server.triggers.receivers[try call.param("receiver")] {
                    headers.append((r.authHeader, token))
                }
                let receipt = try await server.triggers.receive(
                    receiver: try call.param("receiver"), headers: headers, body: Array(buffer: call.body), requestID: call.context.requestID)
                if receipt.events.contains(where: { !$0.dispatched.isEmpty }) { server.triggerService.kick() }
                return try .json(receipt, status: .accepted)
            }
        case ("POST", "/api/v1/workspaces/{workspace}/triggers/{name}/fire"):
            return { call in
                let o = call.body.readableBytes == 0 ? [:] : try call.object
                try o.only(["data", "id"])
                let data: Value = o["data"] ?? .map([])
                let outcome = try await server.triggers.fire(
                    workspace: call.workspace, trigger: try call.param("name"), data: data, id: try o.string("id"), caller: call.caller)
                server.triggerService.kick()
                return try .json(outcome, status: .accepted)
            }
        case ("GET", "/api/v1/workspaces/{workspace}/dispatches"):
            return { call in
                var statuses: [DispatchRecord.Status]?
                if let text = query(call.request, "status") {
                    statuses = try text.split(separator: ",").map {
                        guard let s = DispatchRecord.Status(rawValue: String($0)) else {
                            throw Problem(status: 400, code: "invalid", detail: "status must be pending, dispatched, dead or discarded")
                        }
                        return s
                    }
                }
                guard let limit = Int(query(call.request, "limit") ?? "50"), (1...500).contains(limit) else {
                    throw Problem(status: 400, code: "invalid", detail: "limit must be 1 to 500")
                }
                return try .json(
                    try await server.triggers.dispatches(
                        workspace: call.workspace, statuses: statuses, trigger: query(call.request, "trigger"), limit: limit,
                        before: query(call.request, "cursor")))
            }
        case ("POST", "/api/v1/workspaces/{workspace}/dispatches/{key}/replay"),
            ("POST", "/api/v1/workspaces/{workspace}/dispatches/{key}/discard"):
            let replay = spec.path.hasSuffix("replay")
            return { call in
                let d = try await server.triggers.settleDeadLetter(
                    workspace: call.workspace, key: try call.param("key"), replay: replay, caller: call.caller)
                if replay { server.triggerService.kick() }
                return try .json(DispatchView(d), status: .accepted)
            }
        case ("GET", "/api/v1/events"):
            return { call in
                guard let limit = Int(query(call.request, "limit") ?? "50"), (1...500).contains(limit) else {
                    throw Problem(status: 400, code: "invalid", detail: "limit must be 1 to 500")
                }
                var before: Date?
                if let c = query(call.request, "before") {
                    guard let d = RFC3339.date(c) else { throw Problem(status: 400, code: "invalid", detail: "before must be an RFC 3339 time") }
                    before = d
                }
                return try .json(
                    try await server.triggers.events(
                        receiver: query(call.request, "receiver"), before: before, cursor: query(call.request, "cursor"), limit: limit))
            }
        case ("GET", "/api/v1/workspaces/{workspace}/runs/{run}/artifacts/{digest}"): return { call in try await artifact(call) }
        case ("GET", "/api/v1/workspaces/{workspace}/runs/{run}/events"): return { call in try await events(call) }
        case ("GET", "/api/v1/workspaces/{workspace}/audit"): return { call in try await audit(call, workspace: call.workspace) }
        case ("GET", "/api/v1/audit"): return { call in try await audit(call, workspace: nil) }
        case ("GET", "/api/v1/audit/verify"):
            return { _ in try .json(try await AuditJob.verify(server.store, publicKey: server.key.publicKey)) }
        case ("GET", "/api/v1/audit/checkpoints"):
            return { _ in try .json(try await server.store.checkpoints().map(CheckpointView.init)) }
        default:
            if let h = findingsHandler(for: spec) { return h }
            for c in CatalogRoute.all where spec.path.hasPrefix("/api/v1/workspaces/{workspace}/\(c.path)") {
                return catalogHandler(c, spec)
            }
            fatalError("no handler for \(spec.method) \(spec.path)")
        }
    }

    func catalogHandler(_ c: CatalogRoute, _ spec: RouteSpec) -> @Sendable (Call) async throws -> Reply {
        let control = self.control
        let suffix = String(spec.path.dropFirst("/api/v1/workspaces/{workspace}/\(c.path)".count))
        switch (spec.method, suffix) {
        case ("GET", ""):
            return { call in
                try .json(try await control.catalog(c.kind, workspace: call.workspace, name: nil).map { CatalogView($0) })
            }
        case ("POST", ""):
            return { call in
                let text: String
                var name: String?
                let type = call.request.headers[.contentType]?.lowercased() ?? ""
                if type.contains("yaml") {
                    text = String(buffer: call.body)
                    name = query(call.request, "name")
                } else {
                    let o = try call.object
                    try o.only(["document", "name"])
                    text = try o.string("document", required: true)!
                    name = try o.string("name")
                }
                let (entry, created) = try await control.publish(c.kind, workspace: call.workspace, text: text, name: name, caller: call.caller)
                return try .json(
                    CatalogView(entry), status: created ? .created : .ok,
                    headers: [("Location", "/api/v1/workspaces/\(call.workspace!)/\(c.path)/\(entry.name)/versions/\(entry.version)")])
            }
        case ("GET", "/{name}"):
            return { call in
                try .json(try await control.catalog(c.kind, workspace: call.workspace, name: try call.param("name")).map { CatalogView($0) })
            }
        case ("GET", "/{name}/versions/{version}"):
            return { call in
                try .json(
                    CatalogView(
                        try await control.entry(
                            c.kind, workspace: call.workspace, name: try call.param("name"), version: try call.intParam("version")),
                        content: true))
            }
        default:
            return { call in
                try .json(
                    CatalogView(
                        try await control.deprecate(
                            c.kind, workspace: call.workspace, name: try call.param("name"), version: try call.intParam("version"),
                            caller: call.caller)))
            }
        }
    }

    func startRun(_ call: Call) async throws -> Reply {
        let o = try call.object
        try o.only(["workflow", "version", "inputs", "inputText", "labels"])
        var workflow = try o.string("workflow", required: true)!
        var version = try o.int("version")
        if let at = workflow.lastIndex(of: "@") {
            guard version == nil, let v = Int(workflow[workflow.index(after: at)...]) else {
                throw Problem(status: 400, code: "invalid", detail: "workflow \"\(workflow.prefix(80))\" must be NAME or NAME@VERSION")
            }
            version = v
            workflow = String(workflow[..<at])
        }
        let (run, created) = try await control.startRun(
            workspace: call.workspace, workflow: workflow, version: version, inputs: try o.object("inputs"), inputText: try o.strings("inputText"),
            labels: try o.strings("labels"), idempotencyKey: nil, caller: call.caller)
        if created {
            server.metrics.runStarted(workflow: run.workflow)
            server.times.name(run.id, run.workflow)
            server.drive(run.id)
        }
        return try .json(
            try await RunsJob.view(run, engine: server.engine, steps: false), status: .created,
            headers: [("Location", "/api/v1/workspaces/\(call.workspace!)/runs/\(run.id)")])
    }

    func listRuns(_ call: Call) async throws -> Reply {
        var q = RunQuery(workspace: call.workspace)
        let r = call.request
        if let s = query(r, "status") { q.statuses = s.split(separator: ",").map { RunStatus(rawValue: String($0)) } }
        q.workflow = query(r, "workflow")
        for (name, set) in [("createdAfter", \RunQuery.createdAfter), ("createdBefore", \RunQuery.createdBefore)] {
            if let t = query(r, name) {
                guard let d = RFC3339.date(t) else { throw Problem(status: 400, code: "invalid", detail: "\(name) must be an RFC 3339 time") }
                q[keyPath: set] = d
            }
        }
        if let l = query(r, "label") {
            guard let eq = l.firstIndex(of: "=") else { throw Problem(status: 400, code: "invalid", detail: "label must be KEY=VALUE") }
            // The key goes into a JSON path: only what a run's label key can be (as starting a run checks it).
            let key = l[..<eq]
            guard !key.isEmpty, key.utf8.count <= 63, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_./".contains($0)) }) else {
                throw Problem(
                    status: 400, code: "invalid", detail: "label key \"\(key.prefix(80))\" must be 1 to 63 letters, digits, -, _, . or /")
            }
            q.label = (String(key), String(l[l.index(after: eq)...]))
        }
        if let l = query(r, "limit") {
            guard let n = Int(l), (1...500).contains(n) else { throw Problem(status: 400, code: "invalid", detail: "limit must be 1 to 500") }
            q.limit = n
        }
        if let c = query(r, "cursor") { q.after = try RunCursor.decode(c) }
        let (runs, next) = try await control.runs(q)
        return try .json(RunPage(runs: runs.map { RunView($0) }, next: next))
    }

    /// An output artifact, streamed from the artifact store and hashed on the way: bytes that no longer match their
    /// digest end the response early (the client sees a short body against `Content-Length`), never a complete one.
    func artifact(_ call: Call) async throws -> Reply {
        let digest = try call.param("digest")
        let (name, path, size) = try await control.artifact(digest, run: try call.param("run"), workspace: call.workspace)
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw Problem(status: 404, code: "not-found", detail: "artifact \(digest) cannot be read from the artifact store")
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.contentLength] = "\(size)"
        headers[.contentDisposition] = "attachment; filename=\"\(name.filter { $0.isASCII && $0 != "\"" && $0 != "\\" && !$0.isNewline })\""
        headers[HTTPField.Name("Docker-Content-Digest")!] = digest
        let body = ResponseBody { writer in
            defer { try? handle.close() }
            var hash = SHA256()
            var sent = 0
            while sent < size {
                let chunk = try handle.read(upToCount: 64 * 1024) ?? Data()
                if chunk.isEmpty { break }
                hash.update(data: chunk)
                sent += chunk.count
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            guard sent == size, "sha256:" + hex(hash.finalize()) == digest else {
                throw Problem(status: 500, code: "artifact-corrupt", detail: "artifact \(digest) in the artifact store does not match its digest")
            }
            try await writer.finish(nil)
        }
        return .stream(Response(status: .ok, headers: headers, body: body))
    }

    func logs(_ call: Call) async throws -> Reply {
        let record = try await control.run(try call.param("run"), workspace: call.workspace)
        guard let step = query(call.request, "step") else { return try .json(["logs": try await RunsJob.logs(record, engine: server.engine)]) }
        func number(_ name: String, _ fallback: Int) throws -> Int {
            guard let text = query(call.request, name) else { return fallback }
            guard let n = Int(text) else { throw Problem(status: 400, code: "invalid", detail: "\(name) must be a number") }
            return n
        }
        return try .json(
            try await RunsJob.logPage(
                record, engine: server.engine, step: step, item: try number("item", 0), attempt: try number("attempt", 1),
                offset: try number("offset", 0), limit: try number("limit", 65536)))
    }

    /// A page of a run's journal after sequence number `after` (`warden runs logs --server`).
    func journal(_ call: Call) async throws -> Reply {
        let record = try await control.run(try call.param("run"), workspace: call.workspace)
        guard let after = Int64(query(call.request, "after") ?? "0"), after >= 0,
            let limit = Int(query(call.request, "limit") ?? "500"), (1...1000).contains(limit)
        else { throw Problem(status: 400, code: "invalid", detail: "after is a sequence number ≥ 0 and limit 1 to 1000") }
        let entries = try await server.store.journal(run: record.id, after: after, limit: limit)
        return try .json(JournalPage(entries: entries.map(JournalView.init), next: entries.count == limit ? entries.last?.seq : nil))
    }

    /// Server-Sent Events of the run's journal: `id` is the entry's sequence number, so a client that reconnects with
    /// `Last-Event-ID` continues after the last entry it saw; the stream ends after the run finished.
    func events(_ call: Call) async throws -> Reply {
        let record = try await control.run(try call.param("run"), workspace: call.workspace)
        let store = server.store
        let start = Int64(call.request.headers[.lastEventID] ?? query(call.request, "after") ?? "0") ?? 0
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let encoder = JSONEncoder.api
        let body = ResponseBody { writer in
            var last = start
            var quiet = 0
            while !Task.isCancelled {
                let fresh = try await store.journal(run: record.id, after: last, limit: 500)
                var text = ""
                for e in fresh {
                    let data = String(decoding: try encoder.encode(JournalView(e)), as: UTF8.self)
                    text += "id: \(e.seq ?? 0)\nevent: \(e.type.rawValue)\ndata: \(data)\n\n"
                    last = e.seq ?? last
                }
                if !text.isEmpty {
                    try await writer.write(ByteBuffer(string: text))
                    quiet = 0
                    if fresh.count == 500 { continue }  // more is waiting: no pause
                } else {
                    quiet += 1
                    if quiet % 60 == 0 { try await writer.write(ByteBuffer(string: ": keep-alive\n\n")) }
                    if let r = try await store.run(id: record.id), r.finished, fresh.isEmpty {
                        if try await store.journal(run: record.id, after: last, limit: 1).isEmpty { break }
                        continue
                    }
                }
                try await Task.sleep(for: .milliseconds(250))
            }
            try await writer.finish(nil)
        }
        return .stream(Response(status: .ok, headers: headers, body: body))
    }

    func audit(_ call: Call, workspace: String?) async throws -> Reply {
        let r = call.request
        let q = try AuditJob.query(
            workspace: workspace, actor: query(r, "actor"), action: query(r, "action"), subject: query(r, "subject"), since: query(r, "since"),
            until: query(r, "until"), limit: query(r, "limit"), cursor: query(r, "cursor"))
        return try .json(try await AuditJob.page(server.store, q))
    }
}

/// The catalogue collections: path, kind and the permissions that read, publish and deprecate them.
struct CatalogRoute: Sendable {
    var path: String
    var kind: ControlPlane.DocumentKind
    var read, publish, deprecate: Permission
    static let all = [
        CatalogRoute(path: "workflows", kind: .workflow, read: .workflowRead, publish: .workflowPublish, deprecate: .workflowDeprecate),
        CatalogRoute(path: "templates", kind: .template, read: .workflowRead, publish: .workflowPublish, deprecate: .workflowDeprecate),
        CatalogRoute(path: "policies", kind: .policy, read: .policyRead, publish: .policyPublish, deprecate: .policyPublish),
        CatalogRoute(path: "trust-policies", kind: .trustPolicy, read: .policyRead, publish: .policyPublish, deprecate: .policyPublish),
        CatalogRoute(path: "replications", kind: .replication, read: .replicationRead, publish: .replicationSubmit, deprecate: .replicationSubmit),
        CatalogRoute(path: "triggers", kind: .trigger, read: .triggerRead, publish: .triggerPublish, deprecate: .triggerPublish),
    ]
}
