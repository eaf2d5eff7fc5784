import CEL
import Documents
import Foundation
import Storage
import WardenApp
import Workflow

// The API's JSON bodies: views of the application layer's records (dates RFC 3339, keys sorted).

struct WhoAmI: Encodable {
    var principal, method: String
    var groups: [String]
    var roles: [MemberView]
}

struct WorkspaceView: Encodable {
    var name: String
    var createdAt: Date
    var createdBy: String
    init(_ w: WorkspaceRecord) {
        name = w.name
        createdAt = w.createdAt
        createdBy = w.createdBy
    }
}

struct MemberView: Encodable {
    var workspace, principal, role: String
    init(_ b: RoleBinding) {
        workspace = b.workspace
        principal = b.principal
        role = b.role
    }
}

struct TokenView: Encodable {
    var id, name, subject, createdBy: String
    var createdAt: Date
    var expiresAt, revokedAt: Date?
    /// The secret: present once, in the answer that created the token.
    var token: String?
    init(_ t: TokenRecord) {
        id = t.id
        name = t.name
        subject = t.subject
        createdBy = t.createdBy
        createdAt = t.createdAt
        expiresAt = t.expiresAt
        revokedAt = t.revokedAt
    }
}

struct ActionView: Encodable {
    var name, version, runtime, description: String
    var inputSchema, outputSchema: JSONValue?
    init(_ m: ActionManifest) {
        name = m.name
        version = m.version
        runtime = m.runtime
        description = m.description
        inputSchema = m.inputSchema.map(JSONValue.init)
        outputSchema = m.outputSchema.map(JSONValue.init)
    }
}

struct RunPage: Encodable {
    var runs: [RunView]
    /// The cursor of the next page; absent on the last.
    var next: String?
}

struct JournalPage: Encodable {
    var entries: [JournalView]
    /// The `after` of the next page; absent when this page was the last.
    var next: Int64?
}

struct CheckpointView: Encodable {
    var count: Int64
    var head, keyID, signature: String
    var at: Date
    init(_ c: AuditCheckpoint) {
        count = c.count
        head = c.head
        keyID = c.keyID
        signature = c.signature
        at = c.at
    }
}
