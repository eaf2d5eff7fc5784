import CEL
import Crypto
import Documents
import Foundation
import Policy
import Replicate
import Storage
import Synchronization
import Trust
import Workflow

/// The control plane's jobs (`warden serve`'s API and the CLI's admin commands call these): authentication and
/// authorisation with their audit entries, workspaces and members, tokens, the catalogue, runs in a workspace.
/// Every change goes to the store with the audit events it causes, committed together.
public struct ControlPlane: Sendable {
    public let store: any ControlStore
    public let engine: WorkflowEngine
    public let now: @Sendable () -> Date

    public init(store: any ControlStore, engine: WorkflowEngine, now: @escaping @Sendable () -> Date = Date.init) {
        self.store = store
        self.engine = engine
        self.now = now
    }

    /// The request a job acts for: the caller, the request id its audit entries carry, and the authorisation
    /// decision still to be written (a write request's decision commits with its change).
    public struct Caller: Sendable {
        public var principal: Principal
        public var requestID: String?
        public var decision: PendingDecision?
        public init(_ principal: Principal, requestID: String? = nil, decision: PendingDecision? = nil) {
            self.principal = principal
            self.requestID = requestID
            self.decision = decision
        }
    }

    /// An authorisation decision a write request has not yet written: the job that makes the change commits it in
    /// the change's transaction (one commit per request, decision first in the chain); when no change is committed
    /// (an error, a conflict, a replay) the surface writes it on its own with `flush`, so no decision goes unaudited.
    public final class PendingDecision: Sendable {
        struct State {
            var events: [AuditEvent] = []
            var committed = false
        }
        let state = Mutex(State())
        public init() {}

        func hold(_ e: AuditEvent) { state.withLock { $0.events.append(e) } }
        /// The held events, to prepend to a change's audit events.
        var events: [AuditEvent] { state.withLock { $0.committed ? [] : $0.events } }
        /// The change that carried `events` committed.
        func committed() { state.withLock { $0.committed = true } }
        /// The events no committed change carried (and marks them written).
        func takeUnwritten() -> [AuditEvent] {
            state.withLock { s in
                defer { s.committed = true }
                return s.committed ? [] : s.events
            }
        }
    }

    func event(_ caller: Caller, _ action: String, _ subject: String, workspace: String?, details: [(String, Value)] = []) -> AuditEvent {
        AuditEvent(
            at: now(), actor: caller.principal.name, action: action, subject: subject, workspace: workspace, requestID: caller.requestID,
            details: Value.object(details).jsonText(sortedKeys: true))
    }

    /// A change's audit events after the caller's pending authorisation decision.
    func audit(_ caller: Caller, _ events: AuditEvent...) -> [AuditEvent] { (caller.decision?.events ?? []) + events }

    /// Writes a request's decision that no change carried (after the job returned or failed).
    public func flush(_ decision: PendingDecision?) async throws {
        guard let left = decision?.takeUnwritten(), !left.isEmpty else { return }
        try await store.appendAudit(left)
    }

    // MARK: Authentication and authorisation

    /// The principal an API token (`wdn_…`) authenticates as; `unauthenticated` when it is unknown, expired or
    /// revoked. The lookup is by the token's SHA-256, and the stored hash is compared in constant time.
    public func authenticate(token: String) async throws -> Principal {
        guard APIToken.looksLikeToken(token) else { throw ControlError(.unauthenticated, "the bearer token is not a Warden API token (wdn_…)") }
        let hash = APIToken.hash(token)
        guard let record = try await store.token(hash: hash), constantTimeEquals(record.hash, hash) else {
            throw ControlError(.unauthenticated, "unknown API token")
        }
        if record.revokedAt != nil { throw ControlError(.unauthenticated, "API token \(record.id) was revoked") }
        if let e = record.expiresAt, e <= now() { throw ControlError(.unauthenticated, "API token \(record.id) expired at \(RFC3339.string(e))") }
        return Principal(name: record.subject, method: "token", tokenID: record.id)
    }

    /// Decides whether `caller` holds `permission` in `workspace`, audits the decision (allow or deny) and throws
    /// `forbidden` when denied. `subject` is what was asked for (the route, a run).
    @discardableResult
    public func authorize(_ caller: Caller, _ permission: Permission, workspace: String?, subject: String) async throws -> AccessDecision {
        let bindings = try await store.bindings(principals: caller.principal.bindingNames)
        let d = Access.decide(caller.principal, permission, workspace: workspace, bindings: bindings)
        var details: [(String, Value)] = [("permission", .string(permission.rawValue)), ("reason", .string(d.reason))]
        if let r = d.role { details.append(("role", .string(r.rawValue))) }
        details.append(("method", .string(caller.principal.method)))
        var e = event(caller, "authz.decision", subject, workspace: workspace, details: details)
        e.decision = d.allowed ? "allow" : "deny"
        if d.allowed, let pending = caller.decision {
            pending.hold(e)
        } else {
            try await store.appendAudit([e])
        }
        if !d.allowed { throw ControlError(.forbidden, d.reason) }
        return d
    }

    /// Audits a request refused before any principal was known (no token, a bad token).
    public func auditUnauthenticated(subject: String, reason: String, requestID: String?) async throws {
        try await store.appendAudit([
            AuditEvent(
                at: now(), actor: "anonymous", action: "authn.failure", subject: subject, decision: "deny", requestID: requestID,
                details: Value.object([("reason", .string(reason))]).jsonText(sortedKeys: true))
        ])
    }

    // MARK: Workspaces and members

    public func createWorkspace(_ name: String, caller: Caller) async throws -> WorkspaceRecord {
        try Access.checkWorkspaceName(name)
        let record = WorkspaceRecord(name: name, createdAt: now(), createdBy: caller.principal.name)
        guard try await store.createWorkspace(record, audit: audit(caller, event(caller, "workspace.create", "workspace/\(name)", workspace: name)))
        else {
            throw ControlError(.conflict, "workspace \(name) exists")
        }
        caller.decision?.committed()
        return record
    }

    /// The workspace, or `notFound`.
    public func workspace(_ name: String) async throws -> WorkspaceRecord {
        guard let w = try await store.workspace(name) else { throw ControlError(.notFound, "no workspace \(name)") }
        return w
    }

    /// The workspaces `principal` holds a role in (all of them for a role in `*`).
    public func workspaces(visibleTo principal: Principal) async throws -> [WorkspaceRecord] {
        let bindings = try await store.bindings(principals: principal.bindingNames)
        let all = try await store.workspaces()
        if bindings.contains(where: { $0.workspace == "*" }) { return all }
        let names = Set(bindings.map(\.workspace))
        return all.filter { names.contains($0.name) }
    }

    public func setMember(workspace: String, principal: String, role: Role, caller: Caller) async throws -> RoleBinding {
        if workspace != "*" { _ = try await self.workspace(workspace) }
        guard !principal.isEmpty, principal.utf8.count <= 256 else { throw ControlError(.invalid, "a member's principal is 1 to 256 characters") }
        let b = RoleBinding(workspace: workspace, principal: principal, role: role.rawValue)
        try await store.bind(
            b,
            audit: audit(
                caller, event(caller, "member.set", "member/\(principal)", workspace: workspace, details: [("role", .string(role.rawValue))])))
        caller.decision?.committed()
        return b
    }

    public func removeMember(workspace: String, principal: String, caller: Caller) async throws {
        guard
            try await store.unbind(
                workspace: workspace, principal: principal,
                audit: audit(caller, event(caller, "member.remove", "member/\(principal)", workspace: workspace)))
        else { throw ControlError(.notFound, "\(principal) has no role in workspace \(workspace)") }
        caller.decision?.committed()
    }

    // MARK: Tokens

    /// A created token: its record and the secret, which is shown once and never stored.
    public struct IssuedToken: Sendable {
        public var record: TokenRecord
        public var secret: String
    }

    /// Issues a token for `subject` (default `robot:NAME`) with `roles` per workspace, valid for `lifetime`
    /// seconds (nil: no expiry). Audited as a credential issuance; the secret is in no log or audit entry.
    public func createToken(
        name: String, subject: String? = nil, roles: [String: Role], lifetime: TimeInterval?, caller: Caller
    ) async throws -> IssuedToken {
        guard !name.isEmpty, name.utf8.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw ControlError(.invalid, "token name \"\(name.prefix(80))\" must be 1 to 64 letters, digits, -, _ or .")
        }
        if let lifetime, lifetime <= 0 { throw ControlError(.invalid, "a token's lifetime must be positive") }
        for w in roles.keys where w != "*" { _ = try await workspace(w) }
        let (secret, id, hash) = APIToken.generate()
        let who = subject ?? "robot:" + name
        let record = TokenRecord(
            id: id, name: name, subject: who, hash: hash, createdAt: now(), createdBy: caller.principal.name, expiresAt: lifetime.map { now() + $0 })
        let bindings = roles.sorted { $0.key < $1.key }.map { RoleBinding(workspace: $0.key, principal: who, role: $0.value.rawValue) }
        var details: [(String, Value)] = [("name", .string(name)), ("subject", .string(who))]
        details.append(("roles", .object(bindings.map { ($0.workspace, .string($0.role)) })))
        if let e = record.expiresAt { details.append(("expiresAt", .string(RFC3339.string(e)))) }
        try await store.createToken(
            record, bindings: bindings, audit: audit(caller, event(caller, "token.create", "token/\(id)", workspace: nil, details: details)))
        caller.decision?.committed()
        return IssuedToken(record: record, secret: secret)
    }

    public func revokeToken(id: String, caller: Caller) async throws {
        guard try await store.revokeToken(id: id, at: now(), audit: audit(caller, event(caller, "token.revoke", "token/\(id)", workspace: nil)))
        else {
            throw ControlError(.notFound, "no live token \(id)")
        }
        caller.decision?.committed()
    }

    // MARK: Catalogue

    /// The kinds of documents the catalogue keeps, each validated as its command would read it.
    public enum DocumentKind: String, CaseIterable, Sendable {
        case workflow, template, policy, trustPolicy = "trust-policy", replication, trigger
    }

    /// Publishes a document: validated (file:line:col errors), its canonical form hashed; identical content returns
    /// the existing version (`created` false).
    public func publish(_ kind: DocumentKind, workspace: String, text: String, name given: String? = nil, caller: Caller) async throws -> (
        entry: CatalogEntry, created: Bool
    ) {
        _ = try await self.workspace(workspace)
        let file = "\(workspace)/\(given ?? kind.rawValue).yaml"
        let name: String
        switch kind {
        case .workflow:
            name = try engine.parse(text, file: file).name
        case .template:
            name = try WorkflowTemplate.parse(text, file: file).name
        case .policy:
            _ = try PolicyDocument.parse(text, file: file)
            name = try given ?? Self.nameField(text, file: file)
        case .trustPolicy:
            _ = try TrustPolicy.parse(text, file: file, baseDirectory: NSTemporaryDirectory() + "warden-no-files")
            name = try given ?? Self.nameField(text, file: file)
        case .replication:
            _ = try ReplicationFile.parse(text, file: file, baseDirectory: NSTemporaryDirectory() + "warden-no-files")
            name = try given ?? Self.nameField(text, file: file)
        case .trigger:
            let (doc, _) = try TriggerPlane.parse(text, file: file)
            guard doc.workspace == workspace else {
                throw ControlError(.invalid, "\(file): the trigger is for workspace \(doc.workspace); publish it there")
            }
            name = doc.name
        }
        if let given, given != name { throw ControlError(.invalid, "\(file): the document is named \"\(name)\", not \"\(given)\"") }
        guard Self.isCatalogName(name) else {
            throw ControlError(.invalid, "\(file): name \"\(name.prefix(80))\" must be letters, digits, -, _ or . (at most 128)")
        }
        let canonical = try YAMLValue.parse(text, file: file).canonicalJSON
        let digest = "sha256:" + SHA256.hash(data: Data(canonical.utf8)).map { String(format: "%02x", $0) }.joined()
        let entry = CatalogEntry(
            workspace: workspace, kind: kind.rawValue, name: name, digest: digest, content: text, createdAt: now(), createdBy: caller.principal.name)
        let published = try await store.publish(
            entry,
            audit: audit(
                caller,
                event(caller, "\(kind.rawValue).publish", "\(kind.rawValue)/\(name)", workspace: workspace, details: [("digest", .string(digest))]))
        )
        caller.decision?.committed()
        return published
    }

    static func nameField(_ text: String, file: String) throws -> String {
        let root = try YAMLValue.parse(text, file: file)
        guard case .mapping(let m) = root.node, let n = m["name"]?.string ?? m["metadata"]?.mapping?["name"]?.string else {
            throw ControlError(.invalid, "\(file): give the document a name (a name: field, or ?name= when publishing)")
        }
        return n
    }

    /// The catalogue's entries of `kind` in `workspace` (every version, oldest first), or only those of document
    /// `name` — `notFound` when it has none.
    public func catalog(_ kind: DocumentKind, workspace: String, name: String?) async throws -> [CatalogEntry] {
        let entries = try await store.catalog(workspace: workspace, kind: kind.rawValue, name: name)
        if let name, entries.isEmpty { throw ControlError(.notFound, "no \(kind.rawValue) \(name.prefix(128)) in workspace \(workspace)") }
        return entries
    }

    /// One version (the latest when nil) of a catalogue document; `notFound` naming what exists.
    public func entry(_ kind: DocumentKind, workspace: String, name: String, version: Int?) async throws -> CatalogEntry {
        let versions = try await catalog(kind, workspace: workspace, name: name)
        if let version {
            guard let e = versions.first(where: { $0.version == version }) else {
                throw ControlError(.notFound, "\(kind.rawValue) \(name) has no version \(version) (versions 1–\(versions.count))")
            }
            return e
        }
        return versions.last!
    }

    public func deprecate(_ kind: DocumentKind, workspace: String, name: String, version: Int, caller: Caller) async throws -> CatalogEntry {
        guard
            try await store.deprecate(
                workspace: workspace, kind: kind.rawValue, name: name, version: version,
                audit: audit(caller, event(caller, "\(kind.rawValue).deprecate", "\(kind.rawValue)/\(name)@\(version)", workspace: workspace)))
        else { throw ControlError(.notFound, "no \(kind.rawValue) \(name) version \(version) in workspace \(workspace)") }
        caller.decision?.committed()
        return try await entry(kind, workspace: workspace, name: name, version: version)
    }

    /// Instantiates a published template with typed parameters and publishes the workflow it makes.
    public func instantiate(
        template name: String, version: Int?, workspace: String, parameters: [String: Value], caller: Caller
    ) async throws -> (entry: CatalogEntry, created: Bool) {
        let t = try await entry(.template, workspace: workspace, name: name, version: version)
        let template = try WorkflowTemplate.parse(t.content, file: "\(workspace)/\(name)@\(t.version).yaml")
        let text = try template.instantiate(parameters)
        return try await publish(.workflow, workspace: workspace, text: text, caller: caller)
    }

    // MARK: Runs

    /// Starts a run of a published workflow version (the latest not deprecated when `version` is nil). The run, its
    /// first journal entry and its audit entry commit together.
    public func startRun(
        workspace: String, workflow: String, version: Int?, inputs: [String: Value], inputText: [String: String] = [:], labels: [String: String],
        idempotencyKey: String?, caller: Caller
    ) async throws -> (run: RunRecord, created: Bool) {
        let versions = try await store.catalog(workspace: workspace, kind: DocumentKind.workflow.rawValue, name: workflow)
        guard !versions.isEmpty else { throw ControlError(.notFound, "no workflow \(workflow) in workspace \(workspace); publish it first") }
        let entry: CatalogEntry
        if let version {
            guard let e = versions.first(where: { $0.version == version }) else {
                throw ControlError(.notFound, "workflow \(workflow) has no version \(version) (versions 1–\(versions.count))")
            }
            guard !e.deprecated else { throw ControlError(.conflict, "workflow \(workflow)@\(version) is deprecated; start a newer version") }
            entry = e
        } else {
            guard let e = versions.last(where: { !$0.deprecated }) else {
                throw ControlError(.conflict, "every version of workflow \(workflow) is deprecated")
            }
            entry = e
        }
        for (k, v) in labels {
            guard Self.isLabelKey(k), v.utf8.count <= 256 else {
                throw ControlError(.invalid, "label \"\(k.prefix(80))\": keys are 1 to 63 letters, digits, -, _, . or /; values at most 256 bytes")
            }
        }
        var inputs = inputs
        if !inputText.isEmpty {
            // NAME=VALUE text typed as the definition declares it, as `warden run --input` reads it.
            let def = try engine.parse(entry.content, file: "\(workspace)/\(workflow)@\(entry.version)")
            for (name, text) in inputText.sorted(by: { $0.key < $1.key }) {
                guard inputs[name] == nil else { throw ControlError(.invalid, "input \(name) is given both typed and as text") }
                inputs[name] = try def.coerce(name, text)
            }
        }
        let ref = "\(workflow)@\(entry.version)"
        let caller = caller
        let ws = workspace
        let events: @Sendable (String) -> [AuditEvent] = { id in
            self.audit(
                caller,
                self.event(caller, "run.start", "run/\(id)", workspace: ws, details: [("workflow", .string(ref)), ("digest", .string(entry.digest))]))
        }
        let started = try await engine.start(
            file: "\(workspace)/\(ref)", text: entry.content, inputs: inputs, idempotencyKey: idempotencyKey.map { "\(workspace)/\($0)" },
            workspace: workspace, labels: labels, audit: events)
        if started.created { caller.decision?.committed() }
        return started
    }

    static func isCatalogName(_ n: String) -> Bool {
        !n.isEmpty && n.utf8.count <= 128 && n.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    static func isLabelKey(_ k: String) -> Bool {
        !k.isEmpty && k.utf8.count <= 63 && k.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_./".contains($0)) }
    }

    /// The run `id` of `workspace`; `notFound` for runs of other workspaces as for runs that do not exist.
    public func run(_ id: String, workspace: String) async throws -> RunRecord {
        guard let r = try await store.run(id: id), r.workspace == workspace else {
            throw ControlError(.notFound, "no run \(id) in workspace \(workspace)")
        }
        return r
    }

    /// A page of runs and the cursor of the next page (nil on the last).
    public func runs(_ query: RunQuery) async throws -> (runs: [RunRecord], next: String?) {
        var q = query
        q.limit = min(max(query.limit, 1), 500)
        let limit = q.limit
        q.limit += 1
        let found = try await store.runs(q)
        let page = Array(found.prefix(limit))
        let next = found.count > limit ? page.last.map { RunCursor.encode(createdAt: $0.createdAt, id: $0.id) } : nil
        return (page, next)
    }

    /// An output artifact of run `id` by digest: the file in the engine's artifact store, once the run's journal
    /// names it (a digest no step of this run produced is `notFound`, whatever other runs hold).
    public func artifact(_ digest: String, run id: String, workspace: String) async throws -> (name: String, path: String, size: Int) {
        let hex = digest.hasPrefix("sha256:") ? String(digest.dropFirst(7)) : ""
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            throw ControlError(.invalid, "artifact digest \"\(digest.prefix(80))\" must be sha256: and 64 lowercase hex digits")
        }
        let r = try await run(id, workspace: workspace)
        let (_, state) = try await engine.state(of: r)
        let produced = state.steps.values.flatMap { $0.units.flatMap(\.artifacts) }
        guard let name = produced.first(where: { $0.1 == digest })?.0 else {
            throw ControlError(.notFound, "run \(id) produced no artifact \(digest)")
        }
        let path = engine.artifactDirectory + "/" + hex
        guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int else {
            throw ControlError(.notFound, "artifact \(digest) of run \(id) is no longer in the artifact store")
        }
        return (name, path, size)
    }

    public func cancelRun(_ id: String, workspace: String, caller: Caller) async throws -> RunsJob.CancelOutcome {
        let r = try await run(id, workspace: workspace)
        try await engine.cancel(
            r.id, by: caller.principal.name, audit: audit(caller, event(caller, "run.cancel", "run/\(r.id)", workspace: workspace)))
        caller.decision?.committed()
        if let driver = RunsJob.driver(of: r) { return .requested(driver: driver) }
        return .requested(driver: "the server")
    }

    /// Approves or rejects a waiting approval step as the caller (the decider is the authenticated principal).
    public func decide(_ id: String, step: String, approve: Bool, comment: String?, workspace: String, caller: Caller) async throws {
        let r = try await run(id, workspace: workspace)
        let verb = approve ? "approve" : "reject"
        var details: [(String, Value)] = [("step", .string(step))]
        if let comment { details.append(("comment", .string(comment))) }
        try await engine.decide(
            r.id, step: step, approve: approve, by: caller.principal.name, comment: comment,
            audit: audit(caller, event(caller, "run.\(verb)", "run/\(r.id)", workspace: workspace, details: details)))
        caller.decision?.committed()
    }
}

/// The opaque cursor of a run page: the last run's creation time (milliseconds) and id, base64url.
public enum RunCursor {
    public static func encode(createdAt: Date, id: String) -> String {
        base64url(Data("\(Int64((createdAt.timeIntervalSince1970 * 1000).rounded()))/\(id)".utf8))
    }

    /// Unpadded base64url: how every page cursor is written.
    static func base64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The bytes of a cursor `base64url` wrote (at most `limit` characters), or nil.
    static func bytes(_ cursor: String, limit: Int) -> Data? {
        guard cursor.utf8.count <= limit else { return nil }
        var b = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b.count % 4 != 0 { b += "=" }
        return Data(base64Encoded: b)
    }

    public static func decode(_ cursor: String) throws -> (createdAt: Date, id: String) {
        guard let data = bytes(cursor, limit: 200), let text = String(data: data, encoding: .utf8),
            let slash = text.firstIndex(of: "/"), let ms = Int64(text[..<slash])
        else { throw ControlError(.invalid, "cursor \"\(cursor.prefix(80))\" is not one this server gave; start again without it") }
        return (Date(timeIntervalSince1970: Double(ms) / 1000), String(text[text.index(after: slash)...]))
    }
}

/// A catalogue entry as the API and the CLI show it (`content` only when asked for).
public struct CatalogView: Encodable, Sendable {
    public var workspace, kind, name, digest, createdBy: String
    public var version: Int
    public var deprecated: Bool
    public var createdAt: Date
    public var content: String?
    public init(_ e: CatalogEntry, content: Bool = false) {
        workspace = e.workspace
        kind = e.kind
        name = e.name
        digest = e.digest
        createdBy = e.createdBy
        version = e.version
        deprecated = e.deprecated
        createdAt = e.createdAt
        self.content = content ? e.content : nil
    }
}
