import Foundation

/// The control tables of the in-memory twin.
struct MemoryControlState {
    var workspaces: [String: WorkspaceRecord] = [:]
    var bindings: [RoleBinding] = []
    var tokens: [TokenRecord] = []
    var catalog: [CatalogEntry] = []
    var idempotency: [String: IdempotencyRecord] = [:]
    var audit: [AuditEntry] = []
    var checkpoints: [AuditCheckpoint] = []

    @discardableResult
    mutating func append(_ events: [AuditEvent]) -> [AuditEntry] {
        var out: [AuditEntry] = []
        for e in events {
            let entry = AuditEntry(seq: Int64(audit.count + 1), event: e, previous: audit.last?.hash ?? AuditEntry.genesis)
            audit.append(entry)
            out.append(entry)
        }
        return out
    }

    mutating func save(_ b: RoleBinding) {
        bindings.removeAll { $0.workspace == b.workspace && $0.principal == b.principal }
        bindings.append(b)
    }
}

extension MemoryWorkflowStore {
    public func createWorkspace(_ workspace: WorkspaceRecord, audit: [AuditEvent]) async throws -> Bool {
        guard control.workspaces[workspace.name] == nil else { return false }
        control.workspaces[workspace.name] = workspace
        control.append(audit)
        return true
    }

    public func workspaces() async throws -> [WorkspaceRecord] { control.workspaces.values.sorted { $0.name < $1.name } }
    public func workspace(_ name: String) async throws -> WorkspaceRecord? { control.workspaces[name] }

    public func bind(_ binding: RoleBinding, audit: [AuditEvent]) async throws {
        control.save(binding)
        control.append(audit)
    }

    public func unbind(workspace: String, principal: String, audit: [AuditEvent]) async throws -> Bool {
        let before = control.bindings.count
        control.bindings.removeAll { $0.workspace == workspace && $0.principal == principal }
        guard control.bindings.count < before else { return false }
        control.append(audit)
        return true
    }

    public func bindings(workspace: String?) async throws -> [RoleBinding] {
        control.bindings.filter { workspace == nil || $0.workspace == workspace }.sorted {
            ($0.workspace, $0.principal) < ($1.workspace, $1.principal)
        }
    }

    public func bindings(principals: [String]) async throws -> [RoleBinding] {
        control.bindings.filter { principals.contains($0.principal) }.sorted { ($0.workspace, $0.principal) < ($1.workspace, $1.principal) }
    }

    public func createToken(_ token: TokenRecord, bindings: [RoleBinding], audit: [AuditEvent]) async throws {
        guard !control.tokens.contains(where: { $0.id == token.id || $0.hash == token.hash }) else {
            throw StateError(.conflict, "token \(token.id) exists")
        }
        control.tokens.append(token)
        for b in bindings { control.save(b) }
        control.append(audit)
    }

    public func token(hash: String) async throws -> TokenRecord? { control.tokens.first { $0.hash == hash } }
    public func tokens() async throws -> [TokenRecord] { control.tokens.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) } }

    public func revokeToken(id: String, at: Date, audit: [AuditEvent]) async throws -> Bool {
        guard let i = control.tokens.firstIndex(where: { $0.id == id && $0.revokedAt == nil }) else { return false }
        control.tokens[i].revokedAt = at
        control.append(audit)
        return true
    }

    public func publish(_ entry: CatalogEntry, audit: [AuditEvent]) async throws -> (entry: CatalogEntry, created: Bool) {
        let same = control.catalog.filter { $0.workspace == entry.workspace && $0.kind == entry.kind && $0.name == entry.name }
        control.append(audit)
        if let existing = same.filter({ $0.digest == entry.digest }).min(by: { $0.version < $1.version }) { return (existing, false) }
        var e = entry
        e.version = (same.map(\.version).max() ?? 0) + 1
        control.catalog.append(e)
        return (e, true)
    }

    public func catalog(workspace: String, kind: String, name: String?) async throws -> [CatalogEntry] {
        let all = control.catalog.filter { $0.workspace == workspace && $0.kind == kind }
        if let name { return all.filter { $0.name == name }.sorted { $0.version < $1.version } }
        let latest = Dictionary(grouping: all, by: \.name).compactMap { $0.value.max { $0.version < $1.version } }
        return latest.sorted { $0.name < $1.name }
    }

    public func catalogEntry(workspace: String, kind: String, name: String, version: Int) async throws -> CatalogEntry? {
        control.catalog.first { $0.workspace == workspace && $0.kind == kind && $0.name == name && $0.version == version }
    }

    public func deprecate(workspace: String, kind: String, name: String, version: Int, audit: [AuditEvent]) async throws -> Bool {
        guard let i = control.catalog.firstIndex(where: { $0.workspace == workspace && $0.kind == kind && $0.name == name && $0.version == version })
        else { return false }
        control.catalog[i].deprecated = true
        control.append(audit)
        return true
    }

    public func claimIdempotency(scope: String, key: String, fingerprint: String, now: Date, ttl: TimeInterval) async throws -> IdempotencyClaim {
        let k = scope + "\u{0}" + key
        if let r = control.idempotency[k], r.expiresAt > now {
            if r.fingerprint != fingerprint { return .mismatch }
            return r.status == nil ? .inFlight : .replay(r)
        }
        control.idempotency[k] = IdempotencyRecord(
            scope: scope, key: key, fingerprint: fingerprint, createdAt: now, expiresAt: now.addingTimeInterval(ttl))
        return .claimed
    }

    public func completeIdempotency(scope: String, key: String, status: Int, headers: String, body: Data) async throws {
        let k = scope + "\u{0}" + key
        control.idempotency[k]?.status = status
        control.idempotency[k]?.headers = headers
        control.idempotency[k]?.body = body
    }

    public func abandonIdempotency(scope: String, key: String) async throws {
        let k = scope + "\u{0}" + key
        if control.idempotency[k]?.status == nil { control.idempotency[k] = nil }
    }

    public func purgeIdempotency(now: Date) async throws -> Int {
        let expired = control.idempotency.filter { $0.value.expiresAt <= now }.map(\.key)
        for k in expired { control.idempotency[k] = nil }
        return expired.count
    }

    @discardableResult
    public func appendAudit(_ events: [AuditEvent]) async throws -> [AuditEntry] { control.append(events) }

    public func auditEntries(_ query: AuditQuery) async throws -> [AuditEntry] {
        let since = query.since.map { Int64(($0.timeIntervalSince1970 * 1000).rounded(.down)) }
        let until = query.until.map { Int64(($0.timeIntervalSince1970 * 1000).rounded(.up)) }
        return Array(
            control.audit.reversed().filter { e in
                (query.actor.map { e.actor == $0 } ?? true) && (query.action.map { e.action == $0 } ?? true)
                    && (query.subject.map { e.subject == $0 } ?? true) && (query.workspace.map { e.workspace == $0 } ?? true)
                    && (since.map { e.atMillis >= $0 } ?? true) && (until.map { e.atMillis < $0 } ?? true)
                    && (query.before.map { e.seq < $0 } ?? true)
            }.prefix(query.limit))
    }

    public func auditChain(from: Int64, limit: Int) async throws -> [AuditEntry] {
        Array(control.audit.filter { $0.seq >= from }.prefix(limit))
    }

    public func auditCount() async throws -> Int64 { Int64(control.audit.count) }
    public func addCheckpoint(_ checkpoint: AuditCheckpoint) async throws { control.checkpoints.append(checkpoint) }
    public func checkpoints() async throws -> [AuditCheckpoint] { control.checkpoints }

    public func runs(_ query: RunQuery) async throws -> [RunRecord] {
        let labelled: (RunRecord) -> Bool = { r in
            guard let label = query.label else { return true }
            guard let data = r.labels.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                return false
            }
            return object[label.key] as? String == label.value
        }
        let sorted = records.values.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
        return Array(
            sorted.filter { r in
                (query.workspace.map { r.workspace == $0 } ?? true) && (query.statuses.map { $0.contains(r.status) } ?? true)
                    && (query.workflow.map { r.workflow == $0 } ?? true) && (query.createdAfter.map { r.createdAt > $0 } ?? true)
                    && (query.createdBefore.map { r.createdAt < $0 } ?? true) && labelled(r)
                    && (query.after.map { (r.createdAt, r.id) < ($0.createdAt, $0.id) } ?? true)
            }.prefix(query.limit))
    }
}
