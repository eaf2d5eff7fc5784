import Crypto
import Documents
import Foundation
import Storage

/// A failure of the control plane's rules: who may call, what they sent, what exists. The code is stable (the API's
/// problem documents carry it); the reason names the input and what to do.
public struct ControlError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Code: RawRepresentable, Hashable, Sendable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// No credentials, or credentials that are unknown, expired or revoked (401).
        public static let unauthenticated = Code(rawValue: "unauthenticated")
        /// Authenticated, but the role does not allow it (403).
        public static let forbidden = Code(rawValue: "forbidden")
        /// Malformed or missing input (400).
        public static let invalid = Code(rawValue: "invalid")
        public static let notFound = Code(rawValue: "not-found")
        public static let conflict = Code(rawValue: "conflict")
        /// Well-formed input that cannot be accepted (422), e.g. an idempotency key reused with another payload.
        public static let unprocessable = Code(rawValue: "unprocessable")
        public static let tooLarge = Code(rawValue: "too-large")
        public static let rateLimited = Code(rawValue: "rate-limited")
        /// A body in a media type the route does not read (415).
        public static let unsupportedMediaType = Code(rawValue: "unsupported-media-type")
        /// The server's own configuration cannot serve the request (500): the reason says what to fix.
        public static let misconfigured = Code(rawValue: "misconfigured")
    }
    public var code: Code
    public var reason: String
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }
    public var description: String { reason }
    public static func == (a: ControlError, b: ControlError) -> Bool { a.code == b.code }
}

/// The roles a principal holds in a workspace, each including the one before it.
public enum Role: String, CaseIterable, Sendable, Comparable, Codable {
    case viewer, author, `operator`, admin
    var rank: Int { Role.allCases.firstIndex(of: self)! }
    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
    /// The role named `text`, or an `invalid` error listing the roles.
    public static func named(_ text: String) throws -> Role {
        guard let r = Role(rawValue: text) else {
            throw ControlError(.invalid, "unknown role \"\(text)\" (roles: \(Role.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return r
    }
}

/// What a route needs: the documented permission table (docs/api.md) is this enumeration.
public enum Permission: String, CaseIterable, Sendable {
    case workspaceRead = "workspace.read"
    case workflowRead = "workflow.read"
    case workflowPublish = "workflow.publish"
    case workflowDeprecate = "workflow.deprecate"
    case templateInstantiate = "template.instantiate"
    case runRead = "run.read"
    case runStart = "run.start"
    case runCancel = "run.cancel"
    case runApprove = "run.approve"
    case policyRead = "policy.read"
    case policyPublish = "policy.publish"
    case replicationRead = "replication.read"
    case replicationSubmit = "replication.submit"
    case artifactRead = "artifact.read"
    case membersRead = "members.read"
    case membersManage = "members.manage"
    case auditRead = "audit.read"
    /// Reading the actions catalogue: any role in any workspace.
    case actionsRead = "actions.read"
    /// Creating workspaces, managing tokens, the whole audit log: admin of every workspace (`*`).
    case workspaceCreate = "workspace.create"
    case tokenManage = "token.manage"
    case auditReadAll = "audit.read-all"
    /// Triggers: read them and their dispatches, publish them, fire them and settle their dead letters.
    case triggerRead = "trigger.read"
    case triggerPublish = "trigger.publish"
    case triggerFire = "trigger.fire"
    /// Received events of every receiver (receivers are the server's, not a workspace's).
    case eventRead = "event.read"
    /// Findings and compliance are the organisation's, not a workspace's: any role in any workspace reads them;
    /// recording scans and tracking artefacts, and rescoring, take operator of every workspace (`*`).
    case findingsRead = "findings.read"
    case findingsWrite = "findings.write"
    case findingsRescore = "findings.rescore"

    /// The least role that holds the permission.
    public var role: Role {
        switch self {
        case .workspaceRead, .workflowRead, .runRead, .policyRead, .replicationRead, .artifactRead, .membersRead, .actionsRead, .triggerRead,
            .findingsRead:
            .viewer
        case .workflowPublish, .workflowDeprecate, .policyPublish, .triggerPublish: .author
        case .runStart, .runCancel, .runApprove, .templateInstantiate, .replicationSubmit, .triggerFire, .findingsWrite, .findingsRescore: .operator
        case .membersManage, .auditRead, .workspaceCreate, .tokenManage, .auditReadAll, .eventRead: .admin
        }
    }

    /// Where the role must be held: the workspace of the request, any workspace, or every workspace (`*`).
    public enum Scope: String, Sendable { case workspace, anyWorkspace = "any", everyWorkspace = "global" }
    public var scope: Scope {
        switch self {
        case .actionsRead, .findingsRead: .anyWorkspace
        case .workspaceCreate, .tokenManage, .auditReadAll, .eventRead, .findingsWrite, .findingsRescore: .everyWorkspace
        default: .workspace
        }
    }
}

/// Who calls: a principal name, the groups an identity provider gave it, and how it authenticated.
public struct Principal: Sendable, Equatable, Codable {
    public var name: String
    public var groups: [String]
    /// `token` or `oidc`.
    public var method: String
    /// The token's public id when authenticated by an API token.
    public var tokenID: String?
    public init(name: String, groups: [String] = [], method: String, tokenID: String? = nil) {
        self.name = name
        self.groups = groups
        self.method = method
        self.tokenID = tokenID
    }
    /// The names role bindings may use for it: its own and `group:NAME` for each group.
    public var bindingNames: [String] { [name] + groups.map { "group:" + $0 } }
}

/// One authorisation decision, as audited.
public struct AccessDecision: Sendable, Equatable {
    public var allowed: Bool
    /// The role that decided (the highest the principal holds where it counts).
    public var role: Role?
    public var reason: String
}

public enum Access {
    /// Workspace names: `^[a-z][a-z0-9-]{0,62}$`.
    public static func checkWorkspaceName(_ name: String) throws {
        // Byte by byte: a character comparison lets combining marks and joiners through ("b" + U+0327 sorts
        // between "a" and "z").
        let bytes = Array(name.utf8)
        func letter(_ b: UInt8) -> Bool { b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") }
        let ok =
            bytes.count <= 63 && bytes.first.map(letter) == true
            && bytes.allSatisfy { letter($0) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-") }
        guard ok else {
            throw ControlError(
                .invalid, "workspace name \"\(name.prefix(80))\" must match ^[a-z][a-z0-9-]{0,62}$ (a lower-case letter, then letters, digits or -)")
        }
    }

    /// The highest role `bindings` give `principal` in `workspace` (bindings for `*` count everywhere).
    public static func role(of principal: Principal, in workspace: String, bindings: [RoleBinding]) -> Role? {
        let names = Set(principal.bindingNames)
        return bindings.filter { names.contains($0.principal) && ($0.workspace == workspace || $0.workspace == "*") }
            .compactMap { Role(rawValue: $0.role) }.max()
    }

    /// Whether `principal` holds `permission` for `workspace` (nil for permissions not about one workspace).
    public static func decide(_ principal: Principal, _ permission: Permission, workspace: String?, bindings: [RoleBinding]) -> AccessDecision {
        let names = Set(principal.bindingNames)
        let mine = bindings.filter { names.contains($0.principal) }
        let held: Role?
        let place: String
        switch permission.scope {
        case .workspace:
            guard let workspace else { return AccessDecision(allowed: false, role: nil, reason: "\(permission.rawValue) needs a workspace") }
            held = role(of: principal, in: workspace, bindings: mine)
            place = "workspace \(workspace)"
        case .anyWorkspace:
            held = mine.compactMap { Role(rawValue: $0.role) }.max()
            place = "any workspace"
        case .everyWorkspace:
            held = mine.filter { $0.workspace == "*" }.compactMap { Role(rawValue: $0.role) }.max()
            place = "every workspace (*)"
        }
        guard let held else {
            return AccessDecision(
                allowed: false, role: nil,
                reason: "\(principal.name) has no role in \(place); \(permission.rawValue) needs \(permission.role.rawValue)")
        }
        if held >= permission.role {
            return AccessDecision(allowed: true, role: held, reason: "\(held.rawValue) in \(place) holds \(permission.rawValue)")
        }
        return AccessDecision(
            allowed: false, role: held,
            reason: "\(principal.name) is \(held.rawValue) in \(place); \(permission.rawValue) needs \(permission.role.rawValue)")
    }
}

/// Warden's API tokens: `wdn_` and 32 random bytes (base64url), shown once; stored only as their SHA-256.
public enum APIToken {
    public static let prefix = "wdn_"

    /// A new token: its secret text (shown once), its public id and the hash to store.
    public static func generate() -> (secret: String, id: String, hash: String) {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let secret =
            prefix
            + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        let id = (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
        return (secret, id, hash(secret))
    }

    /// The SHA-256 of `token`, hex.
    public static func hash(_ token: String) -> String {
        Storage.hex(SHA256.hash(data: Data(token.utf8)))
    }

    /// True when `text` has the shape of a Warden token (not whether it is valid).
    public static func looksLikeToken(_ text: String) -> Bool { text.hasPrefix(prefix) && text.utf8.count == prefix.utf8.count + 43 }
}
