import CEL
import Documents
import Findings
import Foundation
import Hummingbird
import Logging
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

struct SnapshotList: Encodable { var snapshots: [CompliancePlane.SnapshotView] }
struct ArtefactList: Encodable { var artefacts: [CompliancePlane.ArtefactView] }
struct RescoringList: Encodable { var rescorings: [CompliancePlane.RescoringView] }
struct SnapshotCount: Encodable { var snapshots: Int }

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
                return try .json(RescoringList(rescorings: try await compliance.rescorings(of: key, caller: call.caller)))
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
        case ("DELETE", "/api/v1/rescorings/{id}"):
            return { call in try .json(try await compliance.revoke(try call.param("id"), caller: call.caller)) }
        case ("GET", "/api/v1/compliance/summary"):
            return { call in try .json(try await compliance.summary(try Self.subject(call.request), caller: call.caller)) }
        case ("GET", "/api/v1/compliance/history"):
            return { call in
                let r = call.request
                return try .json(
                    SnapshotList(
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
            return { _ in try .json(SnapshotCount(snapshots: try await compliance.takeSnapshots())) }
        default: return nil
        }
    }
}

/// The compliance engine's clock-driven work: every rescoring expiry audited within a minute of it, and the day's
/// compliance snapshots taken at start and then every hour (each replaces the day's, so the last of a day stays).
struct ComplianceService: Service {
    let compliance: CompliancePlane
    let logger: Logger

    func run() async throws {
        let (compliance, logger) = (self.compliance, self.logger)
        @Sendable func tick(snapshots: Bool) async {
            do {
                try await compliance.auditExpiries()
                if snapshots { try await compliance.takeSnapshots() }
            } catch {
                logger.error("compliance tick failed", metadata: ["error": "\(error)"])
            }
        }
        await tick(snapshots: true)
        try? await cancelWhenGracefulShutdown {
            var minutes = 0
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(60))
                minutes += 1
                await tick(snapshots: minutes % 60 == 0)
            }
        }
    }
}
