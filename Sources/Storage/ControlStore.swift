import Crypto
import Foundation

// The control plane's records (`warden serve`): workspaces and who may do what in them, API tokens, the published
// catalogue (workflows, templates, policies by version), idempotency records and the hash-chained audit log. They
// live in the same database as the runs, so that a change and its audit entry commit in one transaction.

/// A workspace: the scope of every run, workflow, policy and role binding.
public struct WorkspaceRecord: Codable, Sendable, Equatable {
    public var name: String
    public var createdAt: Date
    public var createdBy: String
    public init(name: String, createdAt: Date, createdBy: String) {
        self.name = name
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
}

/// A role held by a principal (`alice`, `robot:ci`, `group:release`) in a workspace (`*`: every workspace).
public struct RoleBinding: Codable, Sendable, Equatable, Hashable {
    public var workspace: String
    public var principal: String
    public var role: String
    public init(workspace: String, principal: String, role: String) {
        self.workspace = workspace
        self.principal = principal
        self.role = role
    }
}

/// An API token as stored: only the SHA-256 of the secret (hex), never the secret.
public struct TokenRecord: Codable, Sendable, Equatable {
    /// The public identifier (listed, used to revoke).
    public var id: String
    public var name: String
    /// The principal the token authenticates as.
    public var subject: String
    /// SHA-256 of the whole token text, hex.
    public var hash: String
    public var createdAt: Date
    public var createdBy: String
    public var expiresAt: Date?
    public var revokedAt: Date?
    public init(id: String, name: String, subject: String, hash: String, createdAt: Date, createdBy: String, expiresAt: Date?) {
        self.id = id
        self.name = name
        self.subject = subject
        self.hash = hash
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.expiresAt = expiresAt
    }
}

/// One published version of a catalogue document (`workflow`, `template`, `policy`, `trust-policy`,
/// `replication`) in a workspace. Versions count from 1 per workspace, kind and name; `digest` is the SHA-256 of
/// the canonical form, so publishing identical content again finds this version.
public struct CatalogEntry: Codable, Sendable, Equatable {
    public var workspace: String
    public var kind: String
    public var name: String
    public var version: Int
    public var digest: String
    /// The document as published.
    public var content: String
    public var deprecated: Bool
    public var createdAt: Date
    public var createdBy: String
    public init(
        workspace: String, kind: String, name: String, version: Int = 0, digest: String, content: String, deprecated: Bool = false, createdAt: Date,
        createdBy: String
    ) {
        self.workspace = workspace
        self.kind = kind
        self.name = name
        self.version = version
        self.digest = digest
        self.content = content
        self.deprecated = deprecated
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
}

/// A request's idempotency record (draft-ietf-httpapi-idempotency-key-header): the key, a fingerprint of the request,
/// and once it completed the response to replay.
public struct IdempotencyRecord: Codable, Sendable, Equatable {
    /// Who may replay it: the workspace and principal (keys of different callers never collide).
    public var scope: String
    public var key: String
    public var fingerprint: String
    /// Nil while the first request is in flight.
    public var status: Int?
    /// The response headers to replay, as a JSON object's text.
    public var headers: String?
    public var body: Data?
    public var createdAt: Date
    public var expiresAt: Date
    public init(scope: String, key: String, fingerprint: String, createdAt: Date, expiresAt: Date) {
        self.scope = scope
        self.key = key
        self.fingerprint = fingerprint
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// What claiming an idempotency key found.
public enum IdempotencyClaim: Sendable, Equatable {
    /// The key is new: the caller proceeds and completes (or abandons) it.
    case claimed
    /// The same request completed: replay its response.
    case replay(IdempotencyRecord)
    /// The same key is held by a request still in flight.
    case inFlight
    /// The key was used with a different request.
    case mismatch
}

/// An audit event as a surface records it; the store numbers and chains it.
public struct AuditEvent: Sendable, Equatable {
    public var at: Date
    /// Who: a principal, or `anonymous`.
    public var actor: String
    /// What, as a dotted verb: `run.start`, `authz.decision`, `token.create`, …
    public var action: String
    /// On what: `run/<id>`, `workflow/<name>@<version>`, a route, …
    public var subject: String
    public var workspace: String?
    /// `allow` or `deny` for authorisation decisions; nil otherwise.
    public var decision: String?
    /// The request that caused it.
    public var requestID: String?
    /// Further details as a JSON object's text (never a secret).
    public var details: String
    public init(
        at: Date, actor: String, action: String, subject: String, workspace: String? = nil, decision: String? = nil, requestID: String? = nil,
        details: String = "{}"
    ) {
        self.at = at
        self.actor = actor
        self.action = action
        self.subject = subject
        self.workspace = workspace
        self.decision = decision
        self.requestID = requestID
        self.details = details
    }
}

/// One audit log entry: the event, its place in the chain and the chain's hash up to it.
public struct AuditEntry: Codable, Sendable, Equatable {
    public var seq: Int64
    /// Milliseconds since 1970 (exact in the canonical form).
    public var atMillis: Int64
    public var actor, action, subject: String
    public var workspace, decision, requestID: String?
    public var details: String
    /// The previous entry's hash (hex; 64 zeros for the first).
    public var previous: String
    /// `sha256(previous ‖ canonical)`, hex.
    public var hash: String

    public var at: Date { Date(timeIntervalSince1970: Double(atMillis) / 1000) }

    /// The first entry's `previous`.
    public static let genesis = String(repeating: "0", count: 64)

    /// The entry that follows `previous` (hash hex) at position `seq`.
    public init(seq: Int64, event: AuditEvent, previous: String) {
        self.seq = seq
        atMillis = Int64((event.at.timeIntervalSince1970 * 1000).rounded(.down))
        actor = event.actor
        action = event.action
        subject = event.subject
        workspace = event.workspace
        decision = event.decision
        requestID = event.requestID
        details = event.details
        self.previous = previous
        hash = ""
        hash = computedHash()
    }

    /// The canonical form the chain hashes: a JSON object with sorted keys and no spaces, strings escaped the same
    /// way on every platform (only `"`, `\` and control characters escaped), absent values as `null`.
    public var canonical: String {
        func s(_ v: String?) -> String {
            guard let v else { return "null" }
            var out = "\""
            for u in v.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
                default: out.unicodeScalars.append(u)
                }
            }
            return out + "\""
        }
        return "{\"action\":\(s(action)),\"actor\":\(s(actor)),\"at\":\(atMillis),\"decision\":\(s(decision)),\"details\":\(s(details)),"
            + "\"requestID\":\(s(requestID)),\"seq\":\(seq),\"subject\":\(s(subject)),\"workspace\":\(s(workspace))}"
    }

    /// `sha256(previous ‖ canonical)` as this entry's fields say (compare with `hash` to detect an edit).
    public func computedHash() -> String {
        var h = SHA256()
        h.update(data: Data(previous.utf8))
        h.update(data: Data(canonical.utf8))
        return hex(h.finalize())
    }
}

/// A signed statement of the chain's length and head at one moment: a truncated tail or a recomputed chain no
/// longer matches the latest checkpoint.
public struct AuditCheckpoint: Codable, Sendable, Equatable {
    /// The number of entries (the last entry's `seq`).
    public var count: Int64
    public var head: String
    public var at: Date
    /// The signing key's identifier (the SHA-256 of its raw public key, hex).
    public var keyID: String
    /// Ed25519 signature over `message`, base64.
    public var signature: String
    public init(count: Int64, head: String, at: Date, keyID: String, signature: String) {
        self.count = count
        self.head = head
        self.at = at
        self.keyID = keyID
        self.signature = signature
    }
    /// What the signature covers.
    public static func message(count: Int64, head: String, at: Date) -> Data {
        // The nearest millisecond: a time read back from the store is within a rounding error of it, either side.
        Data("warden-audit-checkpoint\n\(count)\n\(head)\n\(Int64((at.timeIntervalSince1970 * 1000).rounded()))\n".utf8)
    }
    public var message: Data { Self.message(count: count, head: head, at: at) }
}

/// Which audit entries to list, newest first, after a cursor.
public struct AuditQuery: Sendable, Equatable {
    public var actor, action, subject, workspace: String?
    public var since, until: Date?
    /// Entries with a smaller `seq` than this (the cursor of the previous page).
    public var before: Int64?
    public var limit: Int
    public init(
        actor: String? = nil, action: String? = nil, subject: String? = nil, workspace: String? = nil, since: Date? = nil, until: Date? = nil,
        before: Int64? = nil, limit: Int = 100
    ) {
        self.actor = actor
        self.action = action
        self.subject = subject
        self.workspace = workspace
        self.since = since
        self.until = until
        self.before = before
        self.limit = limit
    }
}

/// Which runs to list: newest first, filtered in the store, after a cursor (the last run of the previous page).
public struct RunQuery: Sendable, Equatable {
    public var workspace: String?
    public var statuses: [RunStatus]?
    public var workflow: String?
    public var createdAfter, createdBefore: Date?
    /// A label that must be set to this value.
    public var label: (key: String, value: String)?
    /// The page starts after this run (`createdAt`, `id`), exclusive.
    public var after: (createdAt: Date, id: String)?
    public var limit: Int
    public init(
        workspace: String? = nil, statuses: [RunStatus]? = nil, workflow: String? = nil, createdAfter: Date? = nil, createdBefore: Date? = nil,
        label: (key: String, value: String)? = nil, after: (createdAt: Date, id: String)? = nil, limit: Int = 50
    ) {
        self.workspace = workspace
        self.statuses = statuses
        self.workflow = workflow
        self.createdAfter = createdAfter
        self.createdBefore = createdBefore
        self.label = label
        self.after = after
        self.limit = limit
    }
    public static func == (a: RunQuery, b: RunQuery) -> Bool {
        a.workspace == b.workspace && a.statuses == b.statuses && a.workflow == b.workflow && a.createdAfter == b.createdAfter
            && a.createdBefore == b.createdBefore && a.label?.key == b.label?.key && a.label?.value == b.label?.value
            && a.after?.createdAt == b.after?.createdAt && a.after?.id == b.after?.id && a.limit == b.limit
    }
}

/// The control plane's store: the workflow store plus workspaces, role bindings, tokens, the catalogue, idempotency
/// records and the audit log. Every change takes the audit events it causes and commits them in its own transaction
/// (`audit`), so no change is recorded without its entry and no entry without its change.
public protocol ControlStore: WorkflowStore, TriggerStore, FindingsStore {
    // Workspaces and roles.
    /// Creates a workspace; false when it exists (nothing written).
    func createWorkspace(_ workspace: WorkspaceRecord, audit: [AuditEvent]) async throws -> Bool
    func workspaces() async throws -> [WorkspaceRecord]
    func workspace(_ name: String) async throws -> WorkspaceRecord?
    /// Sets `binding.principal`'s role in `binding.workspace` (replacing the role it had there).
    func bind(_ binding: RoleBinding, audit: [AuditEvent]) async throws
    /// Removes `principal`'s role in `workspace`; false when it had none.
    func unbind(workspace: String, principal: String, audit: [AuditEvent]) async throws -> Bool
    /// Bindings of the workspace (or of every workspace when nil).
    func bindings(workspace: String?) async throws -> [RoleBinding]
    /// Bindings of any of `principals`.
    func bindings(principals: [String]) async throws -> [RoleBinding]

    // Tokens.
    func createToken(_ token: TokenRecord, bindings: [RoleBinding], audit: [AuditEvent]) async throws
    /// The token whose hash is `hash` (revoked and expired ones included: the caller decides).
    func token(hash: String) async throws -> TokenRecord?
    func tokens() async throws -> [TokenRecord]
    /// Marks the token revoked; false when there is no such live token.
    func revokeToken(id: String, at: Date, audit: [AuditEvent]) async throws -> Bool

    // Catalogue.
    /// Publishes `entry` as the next version of its name — or returns the version with the same digest (`created`
    /// false, nothing written but the audit events).
    func publish(_ entry: CatalogEntry, audit: [AuditEvent]) async throws -> (entry: CatalogEntry, created: Bool)
    /// Versions of one name, oldest first; every name of the kind (latest version each) when `name` is nil.
    func catalog(workspace: String, kind: String, name: String?) async throws -> [CatalogEntry]
    func catalogEntry(workspace: String, kind: String, name: String, version: Int) async throws -> CatalogEntry?
    /// Sets `deprecated`; false when there is no such version.
    func deprecate(workspace: String, kind: String, name: String, version: Int, audit: [AuditEvent]) async throws -> Bool

    // Idempotency.
    /// Claims `key` in `scope` for a request with `fingerprint` (expired records are treated as absent).
    func claimIdempotency(scope: String, key: String, fingerprint: String, now: Date, ttl: TimeInterval) async throws -> IdempotencyClaim
    func completeIdempotency(scope: String, key: String, status: Int, headers: String, body: Data) async throws
    /// Forgets an in-flight claim (the request failed before changing anything: the client may retry).
    func abandonIdempotency(scope: String, key: String) async throws
    /// Deletes records that expired before `now`; the number deleted.
    func purgeIdempotency(now: Date) async throws -> Int

    // Audit.
    /// Appends events that come with no other change (authorisation decisions, reads); returns their entries.
    @discardableResult func appendAudit(_ events: [AuditEvent]) async throws -> [AuditEntry]
    func auditEntries(_ query: AuditQuery) async throws -> [AuditEntry]
    /// Entries with `seq` in `range`, in order (verification reads the chain in slices).
    func auditChain(from: Int64, limit: Int) async throws -> [AuditEntry]
    func auditCount() async throws -> Int64
    func addCheckpoint(_ checkpoint: AuditCheckpoint) async throws
    func checkpoints() async throws -> [AuditCheckpoint]

    // Runs.
    /// A page of runs, filtered and ordered in the store (newest first).
    func runs(_ query: RunQuery) async throws -> [RunRecord]
}

/// Lower-case hex of `bytes` (digests, ids): one table lookup per nibble.
public func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(64)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}
