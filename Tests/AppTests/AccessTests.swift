import Crypto
import Foundation
import OCITesting
import Storage
import Synchronization
import Testing
import WardenApp
import Workflow

/// A wall clock for the control plane that moves only when told to.
final class SteppedClock: Sendable {
    let state: Mutex<Date>
    init(_ start: Date = Date(timeIntervalSince1970: 1_767_225_600)) { state = Mutex(start) }
    var now: Date { state.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { state.withLock { $0 += seconds } }
}

/// A control plane over a real SQLite state file in a temporary directory, with an engine of no-op actions.
struct ControlFixture {
    let dir: String
    let store: SQLiteWorkflowStore
    let engine: WorkflowEngine
    let clock: SteppedClock
    let plane: ControlPlane
    /// Who does the set-up (workspaces, members, tokens): the surfaces authorise these calls, the jobs do not.
    let root = ControlPlane.Caller(Principal(name: "root", method: "token"), requestID: "setup")

    init(engineClock: (any EngineClock)? = nil) throws {
        dir = try makeTemporaryDirectory(prefix: "warden-control")
        store = try SQLiteWorkflowStore(path: StateLayout(dir).workflowsDatabase)
        var configuration = EngineConfiguration(stateDirectory: dir)
        if let engineClock { configuration.clock = engineClock }
        engine = WorkflowEngine(store: store, catalog: ActionCatalog([NoopAction()]), configuration: configuration)
        let clock = SteppedClock()
        self.clock = clock
        plane = ControlPlane(store: store, engine: engine, now: { clock.now })
    }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }

    static func caller(_ name: String, groups: [String] = [], requestID: String? = nil) -> ControlPlane.Caller {
        ControlPlane.Caller(Principal(name: name, groups: groups, method: "oidc"), requestID: requestID)
    }

    /// A workflow named `name` of two no-op steps; `level` changes its meaning.
    static func workflow(_ name: String = "build", level: Int = 2) -> String {
        """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: \(name)
        steps:
          - id: compile
            uses: noop@v1
            with: {target: linux, level: \(level)}
          - id: test
            needs: [compile]
            uses: noop@v1

        """
    }

    /// The latest audit entry.
    func lastAudit() async throws -> AuditEntry? { try await store.auditEntries(AuditQuery(limit: 1)).first }

    static func details(_ entry: AuditEntry) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(entry.details.utf8))) as? [String: Any] ?? [:]
    }
}

/// The code of the `ControlError` `body` throws (nil when it returns or throws something else).
func controlCode(_ body: () async throws -> Void) async -> ControlError.Code? {
    do {
        try await body()
        return nil
    } catch let e as ControlError {
        return e.code
    } catch {
        return nil
    }
}

/// Roles and the permission table, API tokens, and the control plane's jobs over a real store: authentication,
/// audited authorisation, the catalogue's canonical versions, runs in a workspace and their pages.
@Suite struct AccessTests {
    // MARK: Roles and permissions

    /// The documented table: the least role of every permission.
    static let least: [Permission: Role] = [
        .workspaceRead: .viewer, .workflowRead: .viewer, .runRead: .viewer, .policyRead: .viewer, .replicationRead: .viewer,
        .artifactRead: .viewer, .membersRead: .viewer, .actionsRead: .viewer,
        .workflowPublish: .author, .workflowDeprecate: .author, .policyPublish: .author,
        .runStart: .operator, .runCancel: .operator, .runApprove: .operator, .templateInstantiate: .operator, .replicationSubmit: .operator,
        .membersManage: .admin, .auditRead: .admin,
        .workspaceCreate: .admin, .tokenManage: .admin, .auditReadAll: .admin,
        .triggerRead: .viewer, .triggerPublish: .author, .triggerFire: .operator, .eventRead: .admin,
        .findingsRead: .viewer, .findingsWrite: .operator, .findingsRescore: .operator,
    ]
    /// Permissions about no one workspace: their role held in every workspace (`*`).
    static let global: Set<Permission> = [.workspaceCreate, .tokenManage, .auditReadAll, .eventRead, .findingsWrite, .findingsRescore]
    /// Permissions any role in any workspace holds.
    static let anywhere: Set<Permission> = [.actionsRead, .findingsRead]

    @Test func rolesAreOrderedEachIncludingTheOneBefore() throws {
        #expect(Role.allCases == [.viewer, .author, .operator, .admin])
        #expect(Role.viewer < .author && Role.author < .operator && Role.operator < .admin)
        #expect(!(Role.admin < .admin) && Role.admin > .viewer)
        #expect([Role.author, .admin, .viewer].max() == .admin)
        #expect(try Role.named("operator") == .operator)
        #expect(throws: ControlError(.invalid, "")) { try Role.named("root") }
        #expect(throws: ControlError(.invalid, "")) { try Role.named("Admin") }
    }

    @Test func theTableNamesEveryPermissionOnce() {
        #expect(Set(Self.least.keys) == Set(Permission.allCases))
        #expect(Permission.allCases.count == 28)
        #expect(Permission(rawValue: "audit.read-all") == .auditReadAll && Permission(rawValue: "actions.read") == .actionsRead)
    }

    @Test(arguments: Permission.allCases, Role.allCases)
    func everyPermissionAgainstEveryRole(_ permission: Permission, _ role: Role) throws {
        let want = try #require(Self.least[permission])
        #expect(permission.role == want)
        let alice = Principal(name: "alice", method: "oidc")
        let inProd = [RoleBinding(workspace: "prod", principal: "alice", role: role.rawValue)]
        let everywhere = [RoleBinding(workspace: "*", principal: "alice", role: role.rawValue)]
        if Self.global.contains(permission) {
            #expect(permission.scope == .everyWorkspace)
            // A role in one workspace, even admin, is not a role in every workspace.
            #expect(!Access.decide(alice, permission, workspace: nil, bindings: inProd).allowed)
            #expect(!Access.decide(alice, permission, workspace: "prod", bindings: inProd).allowed)
            let d = Access.decide(alice, permission, workspace: nil, bindings: everywhere)
            #expect(d.allowed == (role >= want), "\(permission.rawValue) as \(role.rawValue) at *: \(d.reason)")
            #expect(d.role == role)
        } else if Self.anywhere.contains(permission) {
            #expect(permission.scope == .anyWorkspace)
            for ws in [nil, "prod", "elsewhere"] {
                #expect(Access.decide(alice, permission, workspace: ws, bindings: inProd).allowed)
                #expect(Access.decide(alice, permission, workspace: ws, bindings: everywhere).allowed)
            }
            #expect(!Access.decide(alice, permission, workspace: nil, bindings: []).allowed)
        } else {
            #expect(permission.scope == .workspace)
            let d = Access.decide(alice, permission, workspace: "prod", bindings: inProd)
            #expect(d.allowed == (role >= want), "\(permission.rawValue) as \(role.rawValue): \(d.reason)")
            #expect(d.role == role)
            #expect(d.reason.contains(permission.rawValue))
            // The same role held at * counts in every workspace.
            #expect(Access.decide(alice, permission, workspace: "prod", bindings: everywhere).allowed == (role >= want))
            // A role in prod is none in staging.
            let other = Access.decide(alice, permission, workspace: "staging", bindings: inProd)
            #expect(!other.allowed && other.role == nil)
            // Someone else's binding is not alice's.
            let bob = [RoleBinding(workspace: "prod", principal: "bob", role: Role.admin.rawValue)]
            #expect(!Access.decide(alice, permission, workspace: "prod", bindings: bob).allowed)
            // A workspace permission needs a workspace.
            #expect(!Access.decide(alice, permission, workspace: nil, bindings: everywhere).allowed)
        }
    }

    @Test func theHighestRoleWhereItCountsDecides() {
        let alice = Principal(name: "alice", method: "oidc")
        let bindings = [
            RoleBinding(workspace: "prod", principal: "alice", role: "viewer"),
            RoleBinding(workspace: "*", principal: "alice", role: "operator"),
            RoleBinding(workspace: "staging", principal: "alice", role: "admin"),
        ]
        #expect(Access.role(of: alice, in: "prod", bindings: bindings) == .operator)
        #expect(Access.role(of: alice, in: "staging", bindings: bindings) == .admin)
        #expect(Access.role(of: alice, in: "dev", bindings: bindings) == .operator)
        #expect(Access.decide(alice, .runStart, workspace: "prod", bindings: bindings).allowed)
        #expect(!Access.decide(alice, .membersManage, workspace: "prod", bindings: bindings).allowed)
        #expect(Access.decide(alice, .membersManage, workspace: "staging", bindings: bindings).allowed)
        // Admin of staging is not admin of every workspace.
        #expect(!Access.decide(alice, .workspaceCreate, workspace: nil, bindings: bindings).allowed)
        // An unknown role in a binding gives nothing.
        let odd = [RoleBinding(workspace: "prod", principal: "alice", role: "owner")]
        #expect(!Access.decide(alice, .workspaceRead, workspace: "prod", bindings: odd).allowed)
    }

    @Test func groupBindingsCount() {
        let bob = Principal(name: "bob", groups: ["release", "dev"], method: "oidc")
        #expect(bob.bindingNames == ["bob", "group:release", "group:dev"])
        let bindings = [
            RoleBinding(workspace: "prod", principal: "group:release", role: "operator"),
            RoleBinding(workspace: "prod", principal: "group:dev", role: "viewer"),
        ]
        let d = Access.decide(bob, .runStart, workspace: "prod", bindings: bindings)
        #expect(d.allowed && d.role == .operator)
        #expect(!Access.decide(bob, .membersManage, workspace: "prod", bindings: bindings).allowed)
        // Without the group the role is gone; a binding for the bare group name is not a group binding.
        let carol = Principal(name: "carol", groups: ["dev"], method: "oidc")
        #expect(Access.decide(carol, .runStart, workspace: "prod", bindings: bindings).role == .viewer)
        #expect(!Access.decide(carol, .runStart, workspace: "prod", bindings: bindings).allowed)
        let bare = [RoleBinding(workspace: "prod", principal: "release", role: "admin")]
        #expect(!Access.decide(bob, .workspaceRead, workspace: "prod", bindings: bare).allowed)
    }

    // MARK: Workspace names and tokens

    static let validNames = ["a", "prod", "team-1", "prod-", "a0", "a" + String(repeating: "b", count: 62)]
    static let invalidNames = [
        "", "Prod", "PROD", "1prod", "-prod", "pro_d", "pro d", "prod.", "prod/x", "prød", "a" + String(repeating: "b", count: 63),
        // Combining marks and joiners: each character compares between "a" and "z" as a whole, but the name is not
        // [a-z0-9-].
        "ab\u{0327}c", "a\u{200D}b", "x1\u{0301}",
    ]

    @Test func workspaceNames() {
        #expect(Self.validNames.last!.utf8.count == 63)
        for name in Self.validNames {
            #expect(throws: Never.self, "\(name)") { try Access.checkWorkspaceName(name) }
        }
        #expect(Self.invalidNames[10].utf8.count == 64)
        for name in Self.invalidNames {
            #expect(throws: ControlError(.invalid, ""), "\(name.debugDescription)") { try Access.checkWorkspaceName(name) }
        }
    }

    @Test func tokensHaveTheirFormatAndOnlyTheirHashIsKept() {
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let hex = Set("0123456789abcdef")
        let a = APIToken.generate()
        let b = APIToken.generate()
        for t in [a, b] {
            #expect(t.secret.hasPrefix("wdn_"))
            #expect(t.secret.count == 4 + 43)
            #expect(t.secret.dropFirst(4).allSatisfy(alphabet.contains), "\(t.secret)")
            #expect(APIToken.looksLikeToken(t.secret))
            #expect(t.hash.count == 64 && t.hash.allSatisfy(hex.contains))
            #expect(t.hash == APIToken.hash(t.secret))
            #expect(t.id.count == 12 && t.id.allSatisfy(hex.contains))
        }
        #expect(a.secret != b.secret && a.hash != b.hash && a.id != b.id)
        // SHA-256 hex (FIPS 180-2's "abc").
        #expect(APIToken.hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        for text in ["", "wdn_", "wdn_short", "Bearer " + a.secret, a.secret + "x", "xyz_" + a.secret.dropFirst(4), String(a.secret.dropLast())] {
            #expect(!APIToken.looksLikeToken(text), "\(text)")
        }
    }

    // MARK: Authentication

    @Test func authenticationAcceptsALiveTokenAndRefusesTheRest() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        _ = try await f.plane.createWorkspace("prod", caller: f.root)
        let issued = try await f.plane.createToken(name: "ci", roles: ["prod": .operator], lifetime: 3600, caller: f.root)
        #expect(issued.record.subject == "robot:ci")
        #expect(issued.record.expiresAt == f.clock.now + 3600)
        let p = try await f.plane.authenticate(token: issued.secret)
        #expect(p == Principal(name: "robot:ci", method: "token", tokenID: issued.record.id))

        // The store and the audit log hold the hash, never the secret.
        let stored = try await f.store.tokens()
        #expect(stored.map(\.hash) == [APIToken.hash(issued.secret)])
        let log = try await f.store.auditEntries(AuditQuery(limit: 1000))
        #expect(log.contains { $0.action == "token.create" && $0.subject == "token/\(issued.record.id)" })
        #expect(!log.contains { $0.details.contains(issued.secret) || $0.details.contains(String(issued.secret.dropFirst(4))) })

        // Unknown: well-formed, never issued.
        #expect(await controlCode { _ = try await f.plane.authenticate(token: APIToken.generate().secret) } == .unauthenticated)
        // Malformed.
        for text in ["", "Bearer " + issued.secret, "wdn_", "wdn_abc", issued.secret + "A", "abc_" + issued.secret.dropFirst(4)] {
            #expect(await controlCode { _ = try await f.plane.authenticate(token: text) } == .unauthenticated, "\(text)")
        }

        // Expired: valid to the last second, refused from its expiry on.
        f.clock.advance(3599)
        #expect(try await f.plane.authenticate(token: issued.secret).name == "robot:ci")
        f.clock.advance(1)
        #expect(await controlCode { _ = try await f.plane.authenticate(token: issued.secret) } == .unauthenticated)

        // Revoked: a token without expiry works until it is revoked, then never again.
        let forever = try await f.plane.createToken(name: "deploy", roles: [:], lifetime: nil, caller: f.root)
        f.clock.advance(10 * 365 * 86400)
        #expect(try await f.plane.authenticate(token: forever.secret).tokenID == forever.record.id)
        try await f.plane.revokeToken(id: forever.record.id, caller: f.root)
        #expect(await controlCode { _ = try await f.plane.authenticate(token: forever.secret) } == .unauthenticated)
        #expect(await controlCode { try await f.plane.revokeToken(id: forever.record.id, caller: f.root) } == .notFound)
        #expect(try await f.store.auditEntries(AuditQuery(action: "token.revoke", limit: 10)).map(\.subject) == ["token/\(forever.record.id)"])

        // Tokens are refused with bad names and lifetimes, or for workspaces that do not exist.
        #expect(await controlCode { _ = try await f.plane.createToken(name: "a b", roles: [:], lifetime: nil, caller: f.root) } == .invalid)
        #expect(await controlCode { _ = try await f.plane.createToken(name: "x", roles: [:], lifetime: 0, caller: f.root) } == .invalid)
        #expect(
            await controlCode { _ = try await f.plane.createToken(name: "x", roles: ["nope": .viewer], lifetime: nil, caller: f.root) } == .notFound)
    }

    @Test func aTokenOfOneWorkspaceHasNoRoleInAnother() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        for ws in ["a", "b"] { _ = try await f.plane.createWorkspace(ws, caller: f.root) }
        let issued = try await f.plane.createToken(name: "ci-a", roles: ["a": .admin], lifetime: nil, caller: f.root)
        let caller = ControlPlane.Caller(try await f.plane.authenticate(token: issued.secret))
        let d = try await f.plane.authorize(caller, .membersManage, workspace: "a", subject: "PUT /workspaces/a/members/x")
        #expect(d.allowed && d.role == .admin)
        for p in [Permission.workspaceRead, .runRead, .runStart] {
            #expect(await controlCode { try await f.plane.authorize(caller, p, workspace: "b", subject: "b") } == .forbidden, "\(p.rawValue)")
        }
        // Admin of a is not admin of every workspace.
        #expect(
            await controlCode { try await f.plane.authorize(caller, .workspaceCreate, workspace: nil, subject: "POST /workspaces") } == .forbidden)
        #expect(try await f.plane.authorize(caller, .actionsRead, workspace: nil, subject: "GET /actions").allowed)
        #expect(try await f.plane.workspaces(visibleTo: caller.principal).map(\.name) == ["a"])
    }

    // MARK: Authorisation is audited

    @Test func everyDecisionIsOneAuditEntry() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        _ = try await f.plane.createWorkspace("prod", caller: f.root)
        _ = try await f.plane.setMember(workspace: "prod", principal: "alice", role: .operator, caller: f.root)
        _ = try await f.plane.setMember(workspace: "prod", principal: "group:release", role: .admin, caller: f.root)
        let alice = ControlFixture.caller("alice", requestID: "req-1")

        var count = try await f.store.auditCount()
        try await f.plane.authorize(alice, .runStart, workspace: "prod", subject: "POST /api/v1/workspaces/prod/runs")
        #expect(try await f.store.auditCount() == count + 1)
        let allow = try #require(try await f.lastAudit())
        #expect(allow.action == "authz.decision" && allow.decision == "allow" && allow.actor == "alice")
        #expect(allow.workspace == "prod" && allow.requestID == "req-1" && allow.subject == "POST /api/v1/workspaces/prod/runs")
        let allowDetails = ControlFixture.details(allow)
        #expect(allowDetails["permission"] as? String == "run.start")
        #expect(allowDetails["role"] as? String == "operator")
        #expect(allowDetails["method"] as? String == "oidc")

        count += 1
        #expect(await controlCode { try await f.plane.authorize(alice, .membersManage, workspace: "prod", subject: "members") } == .forbidden)
        #expect(try await f.store.auditCount() == count + 1)
        let deny = try #require(try await f.lastAudit())
        #expect(deny.action == "authz.decision" && deny.decision == "deny" && deny.actor == "alice")
        #expect(ControlFixture.details(deny)["permission"] as? String == "members.manage")
        #expect((ControlFixture.details(deny)["reason"] as? String)?.contains("needs admin") == true)

        // Someone with no role at all: denied, audited, no role in the details.
        count += 1
        let mallory = ControlFixture.caller("mallory")
        #expect(await controlCode { try await f.plane.authorize(mallory, .workspaceRead, workspace: "prod", subject: "ws") } == .forbidden)
        #expect(try await f.store.auditCount() == count + 1)
        let none = try #require(try await f.lastAudit())
        #expect(none.decision == "deny" && ControlFixture.details(none)["role"] == nil)
        #expect(ControlFixture.details(none)["permission"] as? String == "workspace.read")

        // A group binding decides for its members; a global permission is audited without a workspace.
        count += 1
        let bob = ControlFixture.caller("bob", groups: ["release"])
        try await f.plane.authorize(bob, .auditRead, workspace: "prod", subject: "audit")
        #expect(await controlCode { try await f.plane.authorize(bob, .tokenManage, workspace: nil, subject: "tokens") } == .forbidden)
        #expect(try await f.store.auditCount() == count + 2)
        let decisions = try await f.store.auditEntries(AuditQuery(action: "authz.decision", limit: 2))
        #expect(decisions.map(\.decision) == ["deny", "allow"])
        #expect(decisions[0].workspace == nil && ControlFixture.details(decisions[0])["permission"] as? String == "token.manage")
        #expect(ControlFixture.details(decisions[1])["role"] as? String == "admin")
    }

    // MARK: The catalogue

    @Test func publishingTheSameWorkflowAgainFindsItsVersion() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        _ = try await f.plane.createWorkspace("prod", caller: f.root)
        let author = ControlFixture.caller("alice")
        let first = try await f.plane.publish(.workflow, workspace: "prod", text: ControlFixture.workflow(), caller: author)
        #expect(first.created && first.entry.version == 1 && first.entry.name == "build" && first.entry.kind == "workflow")
        #expect(first.entry.digest.hasPrefix("sha256:") && first.entry.digest.count == 7 + 64)

        let again = try await f.plane.publish(.workflow, workspace: "prod", text: ControlFixture.workflow(), caller: author)
        #expect(!again.created && again.entry.version == 1 && again.entry.digest == first.entry.digest)

        // The same document: other indentation, key order, quoting, flow and block styles, comments.
        let reformatted = """
            # The build, laid out differently.
            kind: Workflow
            apiVersion: "warden.dev/v1"
            steps:
                -   uses: noop@v1   # the first step
                    id: 'compile'
                    with:
                        level: 2
                        target: linux
                -   needs:
                      - compile
                    id: test
                    uses: "noop@v1"
            name: build
            """
        let same = try await f.plane.publish(.workflow, workspace: "prod", text: reformatted, caller: author)
        #expect(!same.created && same.entry.version == 1)
        #expect(same.entry.content == ControlFixture.workflow(), "the version keeps the text first published")

        // A real change is the next version; so is a scalar of another type (2 and "2" differ).
        let changed = try await f.plane.publish(.workflow, workspace: "prod", text: ControlFixture.workflow(level: 3), caller: author)
        #expect(changed.created && changed.entry.version == 2 && changed.entry.digest != first.entry.digest)
        let quoted = ControlFixture.workflow().replacingOccurrences(of: "level: 2", with: "level: \"2\"")
        #expect(try await f.plane.publish(.workflow, workspace: "prod", text: quoted, caller: author).entry.version == 3)
        // Publishing the first content again still finds version 1, not the latest.
        #expect(try await f.plane.publish(.workflow, workspace: "prod", text: reformatted, caller: author).entry.version == 1)

        let versions = try await f.store.catalog(workspace: "prod", kind: "workflow", name: "build")
        #expect(versions.map(\.version) == [1, 2, 3])
        #expect(try await f.plane.entry(.workflow, workspace: "prod", name: "build", version: nil).version == 3)
        #expect(await controlCode { _ = try await f.plane.entry(.workflow, workspace: "prod", name: "build", version: 9) } == .notFound)
        // Every publication is audited, found or new.
        #expect(try await f.store.auditEntries(AuditQuery(action: "workflow.publish", limit: 100)).count == 6)
        // Another workspace has its own versions.
        _ = try await f.plane.createWorkspace("staging", caller: f.root)
        let elsewhere = try await f.plane.publish(.workflow, workspace: "staging", text: ControlFixture.workflow(level: 3), caller: author)
        #expect(elsewhere.created && elsewhere.entry.version == 1)
        #expect(
            await controlCode { _ = try await f.plane.publish(.workflow, workspace: "nope", text: ControlFixture.workflow(), caller: author) }
                == .notFound)
    }

    @Test func aDocumentErrorNamesFileLineAndColumn() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        _ = try await f.plane.createWorkspace("prod", caller: f.root)
        let author = ControlFixture.caller("alice")
        let unknownKey = "apiVersion: warden.dev/v1\nkind: Workflow\nname: build\nsteps:\n  - id: a\n    uses: noop@v1\n    retries: 3\n"
        let unknownAction = "apiVersion: warden.dev/v1\nkind: Workflow\nname: build\nsteps:\n  - id: a\n    uses: nope@v1\n"
        for (text, message) in [
            (unknownKey, "prod/workflow.yaml:7:5: unknown key \"retries\""),
            (unknownAction, "prod/workflow.yaml:6:11: unknown action \"nope\""),
        ] {
            do {
                _ = try await f.plane.publish(.workflow, workspace: "prod", text: text, caller: author)
                Issue.record("published \(text)")
            } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
        }
        // Not YAML at all: the file, and the parser's line and column.
        do {
            _ = try await f.plane.publish(.workflow, workspace: "prod", text: "name: build\nsteps: [a,\n", caller: author)
            Issue.record("published broken YAML")
        } catch {
            let text = "\(error)"
            #expect(text.hasPrefix("prod/workflow.yaml") && text.contains("not valid YAML"), "\(text)")
            #expect(text.contains(/\d+:\d+: error/), "\(text)")
        }
        #expect(try await f.store.catalog(workspace: "prod", kind: "workflow", name: nil).isEmpty)
    }

    // MARK: Runs

    @Test func deprecatedVersionsRefuseNewRuns() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        _ = try await f.plane.createWorkspace("prod", caller: f.root)
        let alice = ControlFixture.caller("alice")
        func start(_ version: Int?) async throws -> RunRecord {
            try await f.plane.startRun(
                workspace: "prod", workflow: "build", version: version, inputs: [:], labels: [:], idempotencyKey: nil, caller: alice
            ).run
        }
        #expect(await controlCode { _ = try await start(nil) } == .notFound)
        for level in 1...3 { _ = try await f.plane.publish(.workflow, workspace: "prod", text: ControlFixture.workflow(level: level), caller: alice) }
        #expect(try await start(nil).file == "prod/build@3")

        let deprecated = try await f.plane.deprecate(.workflow, workspace: "prod", name: "build", version: 3, caller: alice)
        #expect(deprecated.deprecated && deprecated.version == 3)
        #expect(await controlCode { _ = try await start(3) } == .conflict)
        // The latest version not deprecated is the default; an older one can still be asked for.
        #expect(try await start(nil).file == "prod/build@2")
        #expect(try await start(1).file == "prod/build@1")
        #expect(await controlCode { _ = try await start(7) } == .notFound)

        _ = try await f.plane.deprecate(.workflow, workspace: "prod", name: "build", version: 1, caller: alice)
        _ = try await f.plane.deprecate(.workflow, workspace: "prod", name: "build", version: 2, caller: alice)
        #expect(await controlCode { _ = try await start(nil) } == .conflict)
        #expect(
            await controlCode { _ = try await f.plane.deprecate(.workflow, workspace: "prod", name: "build", version: 4, caller: alice) } == .notFound
        )
        #expect(try await f.store.auditEntries(AuditQuery(action: "workflow.deprecate", limit: 10)).count == 3)
    }

    @Test func startingARunWritesItAndItsAuditEntry() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        for ws in ["prod", "staging"] { _ = try await f.plane.createWorkspace(ws, caller: f.root) }
        let alice = ControlFixture.caller("alice", requestID: "req-7")
        let published = try await f.plane.publish(.workflow, workspace: "prod", text: ControlFixture.workflow(), caller: alice)
        let (run, created) = try await f.plane.startRun(
            workspace: "prod", workflow: "build", version: nil, inputs: [:], labels: ["team": "core"], idempotencyKey: nil, caller: alice)
        #expect(created && run.workspace == "prod" && run.workflow == "build")
        let stored = try #require(try await f.store.run(id: run.id))
        #expect(stored.workspace == "prod" && stored.labels == #"{"team":"core"}"# && stored.definition == published.entry.content)
        #expect(try await f.store.journal(run: run.id).first?.type == "run.created")

        let starts = try await f.store.auditEntries(AuditQuery(action: "run.start", limit: 10))
        #expect(starts.count == 1)
        let entry = try #require(starts.first)
        #expect(entry.subject == "run/\(run.id)" && entry.workspace == "prod" && entry.actor == "alice" && entry.requestID == "req-7")
        #expect(ControlFixture.details(entry)["workflow"] as? String == "build@1")
        #expect(ControlFixture.details(entry)["digest"] as? String == published.entry.digest)

        // Bad labels are refused before anything is written.
        #expect(
            await controlCode {
                _ = try await f.plane.startRun(
                    workspace: "prod", workflow: "build", version: nil, inputs: [:], labels: ["bad key": "x"], idempotencyKey: nil, caller: alice)
            } == .invalid)

        // An idempotency key finds its run again, and is the workspace's own.
        let keyed = try await f.plane.startRun(
            workspace: "prod", workflow: "build", version: nil, inputs: [:], labels: [:], idempotencyKey: "k1", caller: alice)
        let replay = try await f.plane.startRun(
            workspace: "prod", workflow: "build", version: nil, inputs: [:], labels: [:], idempotencyKey: "k1", caller: alice)
        #expect(keyed.created && !replay.created && replay.run.id == keyed.run.id)
        _ = try await f.plane.publish(.workflow, workspace: "staging", text: ControlFixture.workflow(), caller: alice)
        let other = try await f.plane.startRun(
            workspace: "staging", workflow: "build", version: nil, inputs: [:], labels: [:], idempotencyKey: "k1", caller: alice)
        #expect(other.created && other.run.id != keyed.run.id && other.run.workspace == "staging")
        #expect(try await f.store.auditEntries(AuditQuery(action: "run.start", limit: 10)).count == 3)
    }

    @Test func runsOfOneWorkspaceAreNotFoundThroughAnother() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        for ws in ["a", "b"] { _ = try await f.plane.createWorkspace(ws, caller: f.root) }
        let alice = ControlFixture.caller("alice")
        _ = try await f.plane.publish(.workflow, workspace: "a", text: ControlFixture.workflow(), caller: alice)
        let run = try await f.plane.startRun(
            workspace: "a", workflow: "build", version: nil, inputs: [:], labels: [:], idempotencyKey: nil, caller: alice
        ).run
        #expect(try await f.plane.run(run.id, workspace: "a").id == run.id)
        #expect(await controlCode { _ = try await f.plane.run(run.id, workspace: "b") } == .notFound)
        #expect(await controlCode { _ = try await f.plane.run("no-such-run", workspace: "a") } == .notFound)
        #expect(await controlCode { _ = try await f.plane.cancelRun(run.id, workspace: "b", caller: alice) } == .notFound)
        #expect(
            await controlCode {
                try await f.plane.decide(run.id, step: "compile", approve: true, comment: nil, workspace: "b", caller: alice)
            } == .notFound)
        #expect(try await f.plane.runs(RunQuery(workspace: "b")).runs.isEmpty)
        #expect(try await f.plane.runs(RunQuery(workspace: "a")).runs.map(\.id) == [run.id])
        // Nothing was cancelled through b; through a the request is recorded and audited.
        #expect(try await f.store.auditEntries(AuditQuery(action: "run.cancel", limit: 10)).isEmpty)
        let outcome = try await f.plane.cancelRun(run.id, workspace: "a", caller: alice)
        guard case .requested = outcome else { throw ControlError(.conflict, "cancel finished the run here") }
        #expect(try await f.store.auditEntries(AuditQuery(action: "run.cancel", limit: 10)).map(\.subject) == ["run/\(run.id)"])
    }

    @Test func runPagesCoverEveryRunExactlyOnce() async throws {
        // Runs created in the same millisecond and across millisecond boundaries: the cursor orders by time, then id.
        let clock = ManualClock(now: Date(timeIntervalSince1970: 1_767_225_600.1234))
        let f = try ControlFixture(engineClock: clock)
        defer { f.remove() }
        for ws in ["prod", "staging"] { _ = try await f.plane.createWorkspace(ws, caller: f.root) }
        let alice = ControlFixture.caller("alice")
        for ws in ["prod", "staging"] { _ = try await f.plane.publish(.workflow, workspace: ws, text: ControlFixture.workflow(), caller: alice) }
        var started: [String] = []
        for i in 0..<23 {
            if i % 3 == 0 { clock.advance(by: .microseconds(700)) }
            let r = try await f.plane.startRun(
                workspace: "prod", workflow: "build", version: nil, inputs: [:], labels: [:], idempotencyKey: nil, caller: alice)
            started.append(r.run.id)
            if i % 5 == 0 {
                _ = try await f.plane.startRun(
                    workspace: "staging", workflow: "build", version: nil, inputs: [:], labels: [:], idempotencyKey: nil, caller: alice)
            }
        }
        for limit in [1, 4, 5, 22, 23, 100] {
            var seen: [String] = []
            var times: [Date] = []
            var cursor: String?
            var pages = 0
            repeat {
                let after = try cursor.map(RunCursor.decode)
                let page = try await f.plane.runs(RunQuery(workspace: "prod", after: after, limit: limit))
                #expect(page.runs.count <= limit && !page.runs.isEmpty)
                #expect(page.runs.allSatisfy { $0.workspace == "prod" })
                seen += page.runs.map(\.id)
                times += page.runs.map(\.createdAt)
                cursor = page.next
                pages += 1
            } while cursor != nil && pages < 100
            #expect(seen.count == 23, "limit \(limit)")
            #expect(Set(seen) == Set(started), "limit \(limit)")
            #expect(pages == (23 + limit - 1) / limit, "limit \(limit): no empty last page")
            #expect(zip(times, times.dropFirst()).allSatisfy { $0 >= $1 }, "newest first")
        }
        // The limit is clamped to 1…500.
        #expect(try await f.plane.runs(RunQuery(workspace: "prod", limit: 0)).runs.count == 1)
        #expect(try await f.plane.runs(RunQuery(workspace: "prod", limit: 10_000)).runs.count == 23)
    }

    @Test func cursorsRoundTripAndGarbageIsRefused() throws {
        let at = Date(timeIntervalSince1970: 1_767_225_600.123)
        let decoded = try RunCursor.decode(RunCursor.encode(createdAt: at, id: "19b7a2c3d4e5f6"))
        #expect(decoded.id == "19b7a2c3d4e5f6")
        #expect(abs(decoded.createdAt.timeIntervalSince(at)) < 0.0005)
        let cursor = RunCursor.encode(createdAt: at, id: "a/b")
        #expect(!cursor.contains("=") && !cursor.contains("+") && !cursor.contains("/"))
        #expect(try RunCursor.decode(cursor).id == "a/b")
        func b64(_ text: String) -> String {
            Data(text.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        }
        let garbage = [
            "", "!!!", "not a cursor", "%%%%", b64("12345"), b64("abc/def"), b64("/id"), b64("1.5/id"),
            Data([0xFF, 0xFE, 0x2F, 0x31]).base64EncodedString(), String(repeating: "A", count: 300),
            RunCursor.encode(createdAt: at, id: String(repeating: "x", count: 200)),
        ]
        for g in garbage {
            #expect(throws: ControlError(.invalid, ""), "\(g)") { try RunCursor.decode(g) }
        }
    }

    @Test func workspacesAndMembers() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        let made = try await f.plane.createWorkspace("prod", caller: f.root)
        #expect(made.name == "prod" && made.createdBy == "root")
        #expect(await controlCode { _ = try await f.plane.createWorkspace("prod", caller: f.root) } == .conflict)
        #expect(await controlCode { _ = try await f.plane.createWorkspace("Prod", caller: f.root) } == .invalid)
        #expect(await controlCode { _ = try await f.plane.workspace("nope") } == .notFound)
        #expect(await controlCode { _ = try await f.plane.setMember(workspace: "nope", principal: "a", role: .viewer, caller: f.root) } == .notFound)
        #expect(await controlCode { _ = try await f.plane.setMember(workspace: "prod", principal: "", role: .viewer, caller: f.root) } == .invalid)
        _ = try await f.plane.setMember(workspace: "prod", principal: "alice", role: .viewer, caller: f.root)
        _ = try await f.plane.setMember(workspace: "prod", principal: "alice", role: .author, caller: f.root)
        #expect(try await f.store.bindings(workspace: "prod") == [RoleBinding(workspace: "prod", principal: "alice", role: "author")])
        _ = try await f.plane.setMember(workspace: "*", principal: "root", role: .admin, caller: f.root)
        _ = try await f.plane.createWorkspace("staging", caller: f.root)
        #expect(try await f.plane.workspaces(visibleTo: Principal(name: "alice", method: "oidc")).map(\.name) == ["prod"])
        #expect(try await f.plane.workspaces(visibleTo: f.root.principal).map(\.name) == ["prod", "staging"])
        try await f.plane.removeMember(workspace: "prod", principal: "alice", caller: f.root)
        #expect(await controlCode { try await f.plane.removeMember(workspace: "prod", principal: "alice", caller: f.root) } == .notFound)
        let actions = try await f.store.auditEntries(AuditQuery(limit: 100)).reversed().map(\.action)
        #expect(actions == ["workspace.create", "member.set", "member.set", "member.set", "workspace.create", "member.remove"])
    }
}
