import AsyncHTTPClient
import CEL
import Crypto
import Documents
import Findings
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Storage
import WardenApp

// The findings and compliance routes (docs/compliance.md): thin adapters from query parameters and JSON bodies to
// the compliance plane's jobs, which hold every rule.

extension Dictionary where Key == String, Value == CEL.Value {
    func list(_ key: String) throws -> [CEL.Value] {
        switch self[key] {
        case nil, .null?: return []
        case .list(let items)?: return items
        default: throw Problem(status: 400, code: "invalid", detail: "\(key) must be a JSON array")
        }
    }
    func number(_ key: String) throws -> Double? {
        switch self[key] {
        case nil, .null?: return nil
        case .int(let i)?: return Double(i)
        case .uint(let u)?: return Double(u)
        case .double(let d)?: return d
        default: throw Problem(status: 400, code: "invalid", detail: "\(key) must be a number")
        }
    }
    func bool(_ key: String) throws -> Bool? {
        switch self[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        default: throw Problem(status: 400, code: "invalid", detail: "\(key) must be true or false")
        }
    }
    func time(_ key: String) throws -> Date? {
        guard let text = try string(key) else { return nil }
        guard let d = RFC3339.date(text) else { throw Problem(status: 400, code: "invalid", detail: "\(key) must be an RFC 3339 time") }
        return d
    }
    func texts(_ key: String) throws -> [String] {
        try list(key).map {
            guard case .string(let s) = $0 else { throw Problem(status: 400, code: "invalid", detail: "\(key) must be an array of strings") }
            return s
        }
    }
}

/// The JSON object an array item is, or a 400 naming it.
func item(_ v: CEL.Value, _ what: String) throws -> [String: CEL.Value] {
    guard case .map(let pairs) = v else { throw Problem(status: 400, code: "invalid", detail: "\(what) must be a JSON object") }
    var out: [String: CEL.Value] = [:]
    for (k, v) in pairs { if case .string(let s) = k { out[s] = v } }
    return out
}

struct ArtefactList: Encodable { var artefacts: [CompliancePlane.ArtefactView] }
struct TrackedTagList: Encodable { var tags: [CompliancePlane.TrackedTagView] }
struct BacklogList: Encodable { var items: [CompliancePlane.BacklogView] }

extension Routes {
    /// The artefact a parameter names (`registry/repository@sha256:…`).
    static func artefact(_ text: String, _ what: String) throws -> ArtefactID {
        guard case .artefact(let a) = try CompliancePlane.Subject(parsing: text) else {
            throw Problem(status: 400, code: "invalid", detail: "\(what) must be registry/repository@sha256:<hex>")
        }
        return a
    }

    static func subject(_ request: Request) throws -> CompliancePlane.Subject {
        guard let text = query(request, "subject") else {
            throw Problem(status: 400, code: "invalid", detail: "subject is required: a component name or registry/repository@sha256:…")
        }
        return try CompliancePlane.Subject(parsing: text)
    }

    static func flag(_ request: Request, _ name: String) throws -> Bool? {
        switch query(request, name) {
        case nil: return nil
        case "true": return true
        case "false": return false
        default: throw Problem(status: 400, code: "invalid", detail: "\(name) must be true or false")
        }
    }

    /// The handler of a findings or compliance route, nil for other routes.
    func findingsHandler(for spec: RouteSpec) -> (@Sendable (Call) async throws -> Reply)? {
        let compliance = server.compliance
        switch (spec.method, spec.path) {
        case ("GET", "/api/v1/findings"):
            return { call in
                let r = call.request
                guard let limit = Int(query(r, "limit") ?? "100"), (1...1000).contains(limit) else {
                    throw Problem(status: 400, code: "invalid", detail: "limit must be 1 to 1000")
                }
                var filter = CompliancePlane.FindingFilter(
                    registry: query(r, "registry"), repository: query(r, "repository"), component: query(r, "component"),
                    componentVersion: query(r, "componentVersion"), type: query(r, "type"), datasource: query(r, "datasource"),
                    package: query(r, "package"), id: query(r, "id"), openOnly: !(try Self.flag(r, "all") ?? false), category: query(r, "category"),
                    overdue: try Self.flag(r, "overdue"), cursor: query(r, "cursor"), limit: limit)
                if let a = query(r, "artefact") {
                    let id = try Self.artefact(a, "artefact")
                    (filter.registry, filter.repository, filter.digest) = (id.registry, id.repository, id.digest)
                }
                return try .json(try await compliance.findings(filter, caller: call.caller))
            }
        case ("GET", "/api/v1/finding"):
            return { call in
                guard let key = query(call.request, "key") else { throw Problem(status: 400, code: "invalid", detail: "key is required") }
                return try .json(try await compliance.finding(key: key, caller: call.caller))
            }
        case ("POST", "/api/v1/scans"):
            return { call in
                let o = try call.object
                try o.only(["artefact", "datasource", "scannedAt", "tags", "entries"])
                let artefact = try Self.artefact(try o.string("artefact", required: true)!, "artefact")
                let entries = try o.list("entries").enumerated().map { i, v in
                    let e = try item(v, "entries[\(i)]")
                    try e.only(["type", "subject", "id", "score", "summary"])
                    guard let type = try e.string("type"), let subject = try e.string("subject"), let id = try e.string("id") else {
                        throw Problem(status: 400, code: "invalid", detail: "entries[\(i)] needs type, subject and id")
                    }
                    return Scan.Entry(
                        DataKey(type: FindingType(type), subject: subject, id: id), score: try e.number("score"),
                        summary: try e.string("summary") ?? "")
                }
                let scan = Scan(
                    artefact: artefact, datasource: try o.string("datasource", required: true)!,
                    scannedAt: try o.time("scannedAt") ?? compliance.control.now(),
                    entries: entries)
                return try .json(try await compliance.recordScan(scan, tags: try o.texts("tags"), caller: call.caller))
            }
        case ("GET", "/api/v1/artefacts"):
            return { call in
                let r = call.request
                return try .json(
                    ArtefactList(
                        artefacts: try await compliance.artefacts(
                            registry: query(r, "registry"), repository: query(r, "repository"), component: query(r, "component"),
                            trackedOnly: try Self.flag(r, "tracked") ?? false)))
            }
        case ("POST", "/api/v1/artefacts"):
            return { call in
                let o = try call.object
                try o.only(["artefacts"])
                let sightings = try o.list("artefacts").enumerated().map { i, v in
                    let a = try item(v, "artefacts[\(i)]")
                    try a.only(["artefact", "component", "componentVersion", "tags"])
                    let id = try Self.artefact(try a.string("artefact", required: true)!, "artefacts[\(i)].artefact")
                    return ArtefactSighting(
                        ref: ArtefactRef(registry: id.registry, repository: id.repository, digest: id.digest), component: try a.string("component"),
                        componentVersion: try a.string("componentVersion"), tags: try a.texts("tags"))
                }
                return try .json(ArtefactList(artefacts: try await compliance.track(sightings, caller: call.caller)))
            }
        case ("GET", "/api/v1/rescorings"):
            return { call in
                let r = call.request
                var key: DataKey?
                if let p = query(r, "package"), let id = query(r, "id") {
                    key = DataKey(type: FindingType(query(r, "type") ?? "vulnerability"), subject: p, id: id)
                }
                return try .json(CompliancePlane.RescoringList(rescorings: try await compliance.rescorings(of: key, caller: call.caller)))
            }
        case ("POST", "/api/v1/rescorings"):
            return { call in
                let o = try call.object
                try o.only([
                    "type", "package", "id", "scope", "scopeValue", "category", "comment", "dueDate", "processingDays", "expiresAt", "freshClock",
                ])
                let days = try o.number("processingDays")
                if let days, !(days.isFinite && days >= 0 && days <= 36_500) {
                    throw Problem(status: 400, code: "invalid", detail: "processingDays must be 0 to 36500")
                }
                let request = CompliancePlane.RescoreRequest(
                    dataKey: DataKey(
                        type: FindingType(try o.string("type") ?? "vulnerability"), subject: try o.string("package", required: true)!,
                        id: try o.string("id", required: true)!),
                    scope: try CompliancePlane.scope(kind: try o.string("scope", required: true)!, value: try o.string("scopeValue")),
                    category: try o.string("category", required: true)!, comment: try o.string("comment", required: true)!,
                    dueDate: try o.time("dueDate"), processingTime: days.map { .seconds($0 * 86_400) }, expiresAt: try o.time("expiresAt"),
                    freshClock: try o.bool("freshClock") ?? false)
                let view = try await compliance.rescore(request, caller: call.caller)
                return try .json(view, status: .created, headers: [("Location", "/api/v1/rescorings/\(view.id)")])
            }
        case ("GET", "/api/v1/rescorings/openvex"):
            return { _ in
                .data(
                    status: .ok, headers: [("Content-Type", "application/json")], body: Data(try await compliance.rescoringsOpenVEX().openVEXJSON()))
            }
        case ("DELETE", "/api/v1/rescorings/{id}"):
            return { call in try .json(try await compliance.revoke(try call.param("id"), caller: call.caller)) }
        case ("GET", "/api/v1/compliance/summary"):
            return { call in try .json(try await compliance.summary(try Self.subject(call.request), caller: call.caller)) }
        case ("GET", "/api/v1/compliance/history"):
            return { call in
                let r = call.request
                return try .json(
                    CompliancePlane.SnapshotList(
                        snapshots: try await compliance.history(try Self.subject(r), from: query(r, "from"), to: query(r, "to"), caller: call.caller))
                )
            }
        case ("GET", "/api/v1/compliance/sla-report"):
            return { call in
                guard let text = query(call.request, "releaseDate"), let at = RFC3339.date(text) else {
                    throw Problem(status: 400, code: "invalid", detail: "releaseDate is required: an RFC 3339 time")
                }
                return try .json(try await compliance.slaReport(try Self.subject(call.request), releaseDate: at, caller: call.caller))
            }
        case ("POST", "/api/v1/compliance/snapshots"):
            return { _ in try .json(CompliancePlane.SnapshotCount(snapshots: try await compliance.takeSnapshots())) }
        case ("POST", "/api/v1/components"):
            return { call in
                let text: String
                if (call.request.headers[.contentType]?.lowercased() ?? "").contains("yaml") {
                    text = String(buffer: call.body)
                } else {
                    let o = try call.object
                    try o.only(["document"])
                    text = try o.string("document", required: true)!
                }
                return try .json(try await compliance.declare(component: text, file: "component", caller: call.caller))
            }
        case ("GET", "/api/v1/tracked-tags"):
            return { _ in try .json(TrackedTagList(tags: try await compliance.trackedTags())) }
        case ("POST", "/api/v1/tracked-tags"):
            return { call in
                let o = try call.object
                try o.only(["references", "component", "componentVersion"])
                return try .json(
                    TrackedTagList(
                        tags: try await compliance.trackTags(
                            try o.texts("references"), component: try o.string("component"), componentVersion: try o.string("componentVersion"),
                            caller: call.caller)))
            }
        case ("DELETE", "/api/v1/tracked-tags"):
            return { call in
                guard let reference = query(call.request, "reference") else {
                    throw Problem(status: 400, code: "invalid", detail: "reference is required: registry/repository:tag")
                }
                try await compliance.untrackTag(reference, caller: call.caller)
                return .data(status: .noContent, headers: [], body: Data())
            }
        case ("GET", "/api/v1/backlog"):
            return { call in
                guard let limit = Int(query(call.request, "limit") ?? "100") else {
                    throw Problem(status: 400, code: "invalid", detail: "limit must be 1 to 1000")
                }
                return try .json(BacklogList(items: try await compliance.backlog(limit: limit)))
            }
        case ("POST", "/api/v1/compliance/enumerate"):
            let service = server.complianceService
            return { _ in try .json(try await service.enumerateNow()) }
        case ("POST", "/api/v1/compliance/issues"):
            let delivery = server.complianceService.issueDelivery ?? .none
            return { call in try .json(try await compliance.exportIssues(delivery: delivery, caller: call.caller)) }
        default: return nil
        }
    }
}

/// Delivers exported issues to a webhook: one POST per issue of a GitHub-issues-shaped JSON object (`title`, `body`
/// in Markdown, `labels`, `state`, `state_reason`) with Warden's own fields under `warden` (`id`, `closeReason`,
/// the issue document), signed `X-Warden-Signature-256: sha256=<HMAC-SHA256 of the body>` when a secret is set. Any
/// answer but 2xx fails the export, which is retried whole at the next one (receivers deduplicate by `warden.id`).
struct IssueWebhook: Sendable {
    let url: String
    let secret: String?
    let client: HTTPClient

    static func payload(_ doc: IssueDocument) -> Data {
        let state: String
        var reason: Value = .null
        var close: Value = .null
        switch doc.state {
        case .open: state = "open"
        case .closed(let r):
            state = "closed"
            reason = .string(r == .noOpenFindings ? "completed" : "not_planned")
            close = .string(r.rawValue)
        }
        let document = (try? Value.parseJSON(Array(doc.json()))) ?? .null
        return Data(
            Value.object([
                ("title", .string(doc.title)), ("body", .string(doc.markdown())), ("labels", .list(doc.labels.map(Value.string))),
                ("state", .string(state)), ("state_reason", reason),
                ("warden", .object([("id", .string(doc.id)), ("closeReason", close), ("document", document)])),
            ]).jsonText(sortedKeys: true).utf8)
    }

    func deliver(_ doc: IssueDocument) async throws {
        let body = Self.payload(doc)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "warden")
        if let secret {
            let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
            request.headers.add(name: "X-Warden-Signature-256", value: "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
        }
        request.body = .bytes(ByteBuffer(data: body))
        let response = try await client.execute(request, timeout: .seconds(30))
        _ = try? await response.body.collect(upTo: 64 << 10)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw ControlError(.conflict, "issue webhook \(url) answered \(response.status.code) for issue \(doc.id)")
        }
    }
}

/// The compliance engine's clock-driven work: rescoring expiries audited within a minute; the day's snapshots at
/// start and every hour (each replaces the day's); the enumerator every `enumerateEvery` (one server at a time,
/// under a lease), then the issue export when configured; and `workers` backlog workers claiming scans.
struct ComplianceService: Service {
    let compliance: CompliancePlane
    let settings: ServerSettings.ComplianceSettings
    let scanners: [String: any ArtefactScanner]
    let lookup: (any TriggerLookup)?
    let holder: String
    let logger: Logger
    /// The webhook client, when one is configured.
    let webhook: IssueWebhook?

    /// Where exports go: the directory and the webhook, as configured; nil: neither.
    var issueDelivery: CompliancePlane.IssueDelivery? {
        let dir = settings.issuesDirectory
        switch (dir, webhook) {
        case (nil, nil): return nil
        case (let dir?, nil): return .directory(dir)
        case (nil, let hook?): return .handler { try await hook.deliver($0) }
        case (let dir?, let hook?):
            return .handler { doc in
                try CompliancePlane.write(doc, to: dir)
                try await hook.deliver(doc)
            }
        }
    }

    static let enumeratorLease = "compliance-enumerator"

    /// One enumeration now (`POST /api/v1/compliance/enumerate`), whoever holds the enumerator's lease; the pushes
    /// the receivers recorded are followed first when configured and this server can take the lease.
    func enumerateNow() async throws -> CompliancePlane.EnumerationOutcome {
        guard let lookup else { throw ControlError(.conflict, "this server has no registry access to resolve tracked tags") }
        let store = compliance.control.store
        if settings.followPushes != nil,
            let epoch = try await store.acquireLease(name: Self.enumeratorLease, holder: holder, ttl: settings.enumerateEvery * 2, now: Date())
        {
            try await followPushes(epoch: epoch)
        }
        return try await compliance.enumerate(
            lookup: lookup, scanners: settings.scanners, interval: settings.scanInterval, grace: settings.gracePeriod)
    }

    /// The pushes recorded since the last round, followed as tracked tags (when configured).
    func followPushes(epoch: Int64) async throws {
        guard let receivers = settings.followPushes else { return }
        let outcome = try await compliance.followPushes(
            receivers: receivers.isEmpty ? nil : receivers, lease: Self.enumeratorLease, holder: holder, epoch: epoch)
        if !outcome.followed.isEmpty { logger.info("following pushed tags", metadata: ["tags": "\(outcome.followed)"]) }
    }

    func run() async throws {
        let (compliance, settings, scanners, lookup, holder, logger) = (compliance, settings, scanners, lookup, holder, logger)
        let issueDelivery = self.issueDelivery
        let store = compliance.control.store
        @Sendable func tick(snapshots: Bool) async {
            do {
                try await compliance.auditExpiries()
                if snapshots { try await compliance.takeSnapshots() }
            } catch {
                logger.error("compliance tick failed", metadata: ["error": "\(error)"])
            }
        }
        @Sendable func enumerate() async {
            guard let lookup else { return }
            do {
                guard
                    let epoch = try await store.acquireLease(
                        name: Self.enumeratorLease, holder: holder, ttl: settings.enumerateEvery * 2, now: Date())
                else { return }
                try await followPushes(epoch: epoch)
                let outcome = try await compliance.enumerate(
                    lookup: lookup, scanners: settings.scanners, interval: settings.scanInterval, grace: settings.gracePeriod)
                if !outcome.errors.isEmpty { logger.warning("enumeration", metadata: ["errors": "\(outcome.errors)"]) }
                if let delivery = issueDelivery {
                    _ = try await compliance.exportIssues(delivery: delivery, caller: CompliancePlane.system)
                }
            } catch {
                logger.error("enumeration failed", metadata: ["error": "\(error)"])
            }
        }
        @Sendable func worker(_ n: Int) async {
            let name = "\(holder)/\(n)"
            while !Task.isCancelled {
                do {
                    if let done = try await compliance.work(worker: name, scanners: scanners, lease: settings.lease) {
                        if let e = done.error {
                            logger.warning(
                                "scan failed",
                                metadata: [
                                    "scanner": "\(done.scanner)", "artefact": "\(done.artefact)", "error": "\(e)",
                                    "retryable": "\(done.retryable ?? true)",
                                ])
                        }
                        continue
                    }
                } catch {
                    logger.error("backlog worker failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(1))
            }
            _ = try? await store.releaseClaims(worker: name)
        }
        await tick(snapshots: true)
        try? await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for n in 0..<(scanners.isEmpty ? 0 : settings.workers) { group.addTask { await worker(n) } }
                group.addTask {
                    var last = Date.distantPast
                    var minute = Date()
                    var hour = Int(Date().timeIntervalSince1970 / 3600)
                    while !Task.isCancelled {
                        if Date().timeIntervalSince(last) >= settings.enumerateEvery {
                            last = Date()
                            await enumerate()
                        }
                        if Date().timeIntervalSince(minute) >= 60 {
                            minute = Date()
                            let now = Int(minute.timeIntervalSince1970 / 3600)
                            await tick(snapshots: now != hour)
                            hour = now
                        }
                        try? await Task.sleep(for: .seconds(min(1, settings.enumerateEvery)))
                    }
                }
            }
        }
    }
}
