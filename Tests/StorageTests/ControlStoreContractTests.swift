import Foundation
import OCITesting
import Storage
import Testing

/// The contract every `ControlStore` keeps, run against each implementation (the in-memory twin and SQLite).
@Suite struct ControlStoreContractTests {
    func make(_ impl: Implementation) throws -> any ControlStore {
        switch impl {
        case .memory: return MemoryWorkflowStore()
        case .sqlite: return try SQLiteWorkflowStore(path: try makeTemporaryDirectory() + "/workflows.sqlite")
        }
    }

    func event(_ action: String, subject: String = "s", actor: String = "alice", workspace: String? = "ws", at: Date = Date()) -> AuditEvent {
        AuditEvent(at: at, actor: actor, action: action, subject: subject, workspace: workspace, details: #"{"k":"v"}"#)
    }

    func run(_ id: String, workspace: String = "ws", workflow: String = "w", at: Date, labels: String = "{}", status: RunStatus = .queued)
        -> RunRecord
    {
        RunRecord(
            id: id, workflow: workflow, file: "w.yaml", definition: "d", inputs: "{}", idempotencyKey: nil, parent: nil, status: status,
            createdAt: at, workspace: workspace, labels: labels)
    }

    @Test(arguments: Implementation.allCases) func auditEntriesChainInOrderAcrossEveryKindOfChange(_ impl: Implementation) async throws {
        let store = try make(impl)
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(try await store.createWorkspace(WorkspaceRecord(name: "ws", createdAt: t, createdBy: "alice"), audit: [event("workspace.create")]))
        #expect(try await !store.createWorkspace(WorkspaceRecord(name: "ws", createdAt: t, createdBy: "bob"), audit: [event("workspace.create")]))
        _ = try await store.create(
            run("r1", at: t), entries: [JournalEntry(run: "r1", type: "run.created")], audit: [event("run.start", subject: "run/r1")])
        try await store.signal(RunSignal(run: "r1", kind: "cancel", by: "alice"), audit: [event("run.cancel", subject: "run/r1")])
        try await store.appendAudit([event("authz.decision"), event("authz.decision", actor: "bob")])
        let chain = try await store.auditChain(from: 1, limit: 100)
        #expect(chain.map(\.action) == ["workspace.create", "run.start", "run.cancel", "authz.decision", "authz.decision"])
        #expect(chain.map(\.seq) == [1, 2, 3, 4, 5])
        #expect(chain.first?.previous == AuditEntry.genesis)
        for (a, b) in zip(chain, chain.dropFirst()) { #expect(b.previous == a.hash) }
        for e in chain { #expect(e.hash == e.computedHash()) }
        #expect(try await store.auditCount() == 5)
        // Newest first, filtered, after a cursor.
        let bob = try await store.auditEntries(AuditQuery(actor: "bob"))
        #expect(bob.map(\.seq) == [5])
        let page = try await store.auditEntries(AuditQuery(before: 4, limit: 2))
        #expect(page.map(\.seq) == [3, 2])
        #expect(try await store.auditEntries(AuditQuery(subject: "run/r1")).map(\.action) == ["run.cancel", "run.start"])
    }

    @Test(arguments: Implementation.allCases) func aRunThatExistsByKeyWritesNoAuditEntry(_ impl: Implementation) async throws {
        let store = try make(impl)
        var r = run("a", at: Date())
        r.idempotencyKey = "k"
        _ = try await store.create(r, entries: [], audit: [event("run.start")])
        var again = run("b", at: Date())
        again.idempotencyKey = "k"
        let second = try await store.create(again, entries: [], audit: [event("run.start")])
        #expect(second.created == false && second.run.id == "a")
        #expect(try await store.auditCount() == 1)
    }

    @Test(arguments: Implementation.allCases) func bindingsReplaceARoleAndAreFoundByPrincipal(_ impl: Implementation) async throws {
        let store = try make(impl)
        try await store.bind(RoleBinding(workspace: "ws", principal: "alice", role: "viewer"), audit: [event("role.bind")])
        try await store.bind(RoleBinding(workspace: "ws", principal: "alice", role: "operator"), audit: [event("role.bind")])
        try await store.bind(RoleBinding(workspace: "*", principal: "group:ops", role: "admin"), audit: [])
        #expect(try await store.bindings(workspace: "ws") == [RoleBinding(workspace: "ws", principal: "alice", role: "operator")])
        #expect(try await store.bindings(principals: ["alice", "group:ops"]).count == 2)
        #expect(try await store.unbind(workspace: "ws", principal: "alice", audit: [event("role.unbind")]))
        #expect(try await !store.unbind(workspace: "ws", principal: "alice", audit: [event("role.unbind")]))
        #expect(try await store.auditCount() == 3)
    }

    @Test(arguments: Implementation.allCases) func tokensAreFoundByHashAndRevokedOnce(_ impl: Implementation) async throws {
        let store = try make(impl)
        let t = TokenRecord(
            id: "t1", name: "ci", subject: "robot:ci", hash: String(repeating: "a", count: 64), createdAt: Date(), createdBy: "admin", expiresAt: nil)
        try await store.createToken(
            t, bindings: [RoleBinding(workspace: "ws", principal: "robot:ci", role: "operator")], audit: [event("token.create")])
        #expect(try await store.token(hash: t.hash)?.subject == "robot:ci")
        #expect(try await store.token(hash: String(repeating: "b", count: 64)) == nil)
        #expect(try await store.bindings(principals: ["robot:ci"]).first?.role == "operator")
        #expect(try await store.revokeToken(id: "t1", at: Date(), audit: [event("token.revoke")]))
        #expect(try await !store.revokeToken(id: "t1", at: Date(), audit: [event("token.revoke")]))
        #expect(try await store.token(hash: t.hash)?.revokedAt != nil)
        #expect(try await store.tokens().count == 1)
        #expect(try await store.auditCount() == 2)
    }

    @Test(arguments: Implementation.allCases) func publishingNumbersVersionsAndFindsIdenticalContent(_ impl: Implementation) async throws {
        let store = try make(impl)
        func entry(_ name: String, _ digest: String) -> CatalogEntry {
            CatalogEntry(workspace: "ws", kind: "workflow", name: name, digest: digest, content: "c-" + digest, createdAt: Date(), createdBy: "alice")
        }
        #expect(try await store.publish(entry("w", "d1"), audit: []).entry.version == 1)
        let v2 = try await store.publish(entry("w", "d2"), audit: [])
        #expect(v2.entry.version == 2 && v2.created)
        let again = try await store.publish(entry("w", "d1"), audit: [event("workflow.publish")])
        #expect(again.entry.version == 1 && !again.created)
        #expect(try await store.publish(entry("other", "d1"), audit: []).entry.version == 1)
        #expect(try await store.catalog(workspace: "ws", kind: "workflow", name: "w").map(\.version) == [1, 2])
        #expect(try await store.catalog(workspace: "ws", kind: "workflow", name: nil).map { "\($0.name)@\($0.version)" } == ["other@1", "w@2"])
        #expect(try await store.catalog(workspace: "elsewhere", kind: "workflow", name: nil).isEmpty)
        #expect(try await store.deprecate(workspace: "ws", kind: "workflow", name: "w", version: 1, audit: []))
        #expect(try await store.catalogEntry(workspace: "ws", kind: "workflow", name: "w", version: 1)?.deprecated == true)
        #expect(try await !store.deprecate(workspace: "ws", kind: "workflow", name: "w", version: 9, audit: []))
        #expect(try await store.catalogEntry(workspace: "ws", kind: "workflow", name: "w", version: 9) == nil)
    }

    @Test(arguments: Implementation.allCases) func idempotencyClaimsReplayRefuseAndExpire(_ impl: Implementation) async throws {
        let store = try make(impl)
        let now = Date()
        #expect(try await store.claimIdempotency(scope: "ws/alice", key: "k", fingerprint: "f", now: now, ttl: 60) == .claimed)
        #expect(try await store.claimIdempotency(scope: "ws/alice", key: "k", fingerprint: "f", now: now, ttl: 60) == .inFlight)
        #expect(try await store.claimIdempotency(scope: "ws/alice", key: "k", fingerprint: "g", now: now, ttl: 60) == .mismatch)
        #expect(try await store.claimIdempotency(scope: "ws/bob", key: "k", fingerprint: "g", now: now, ttl: 60) == .claimed)
        try await store.completeIdempotency(scope: "ws/alice", key: "k", status: 201, headers: #"{"location":"/x"}"#, body: Data("{}".utf8))
        guard case .replay(let r) = try await store.claimIdempotency(scope: "ws/alice", key: "k", fingerprint: "f", now: now, ttl: 60) else {
            Issue.record("no replay")
            return
        }
        #expect(r.status == 201 && r.body == Data("{}".utf8) && r.headers == #"{"location":"/x"}"#)
        try await store.abandonIdempotency(scope: "ws/bob", key: "k")
        #expect(try await store.claimIdempotency(scope: "ws/bob", key: "k", fingerprint: "h", now: now, ttl: 60) == .claimed)
        // Expired keys are new again, and purged.
        #expect(try await store.claimIdempotency(scope: "ws/alice", key: "k", fingerprint: "z", now: now.addingTimeInterval(61), ttl: 60) == .claimed)
        #expect(try await store.purgeIdempotency(now: now.addingTimeInterval(3600)) == 2)
    }

    @Test(arguments: Implementation.allCases) func runPagesFilterInTheStoreAndFollowTheCursor(_ impl: Implementation) async throws {
        let store = try make(impl)
        let t = Date(timeIntervalSince1970: 1_800_000_000)
        for i in 0..<25 {
            let r = run(
                String(format: "r%02d", i), workspace: i % 5 == 0 ? "other" : "ws", workflow: i % 2 == 0 ? "even" : "odd",
                at: t.addingTimeInterval(Double(i)),
                labels: i % 3 == 0 ? #"{"team":"a"}"# : #"{"team":"b"}"#, status: i < 10 ? .succeeded : .queued)
            _ = try await store.create(r, entries: [])
        }
        // Twenty runs in "ws", newest first, pages of 7 following the last run of the page before.
        var seen: [String] = []
        var after: (Date, String)?
        repeat {
            let page = try await store.runs(RunQuery(workspace: "ws", after: after.map { (createdAt: $0.0, id: $0.1) }, limit: 7))
            seen += page.map(\.id)
            after = page.count == 7 ? page.last.map { ($0.createdAt, $0.id) } : nil
        } while after != nil
        #expect(seen.count == 20 && seen == seen.sorted(by: >))
        #expect(!seen.contains("r05") && !seen.contains("r00"))
        let odd = try await store.runs(RunQuery(workspace: "ws", statuses: [.queued], workflow: "odd", limit: 100))
        #expect(odd.map(\.id) == ["r23", "r21", "r19", "r17", "r13", "r11"])
        let teamA = try await store.runs(RunQuery(workspace: "ws", label: (key: "team", value: "a"), limit: 100))
        #expect(teamA.map(\.id) == ["r24", "r21", "r18", "r12", "r09", "r06", "r03"])
        let window = try await store.runs(
            RunQuery(workspace: "ws", createdAfter: t.addingTimeInterval(3), createdBefore: t.addingTimeInterval(8), limit: 100))
        #expect(window.map(\.id) == ["r07", "r06", "r04"])
        #expect(try await store.runs(RunQuery(workspace: "nowhere", limit: 100)).isEmpty)
    }

    @Test(arguments: Implementation.allCases) func checkpointsAreKeptInOrder(_ impl: Implementation) async throws {
        let store = try make(impl)
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        try await store.addCheckpoint(AuditCheckpoint(count: 0, head: AuditEntry.genesis, at: at, keyID: "k", signature: "s1"))
        try await store.addCheckpoint(AuditCheckpoint(count: 0, head: AuditEntry.genesis, at: at, keyID: "k", signature: "s2"))
        #expect(try await store.checkpoints().map(\.signature) == ["s1", "s2"])
    }

    @Test func theSQLiteLogRefusesUpdatesAndDeletes() async throws {
        let path = try makeTemporaryDirectory() + "/workflows.sqlite"
        let store = try SQLiteWorkflowStore(path: path)
        try await store.appendAudit([event("a")])
        let (status, _, stderr) = try runProcess("/usr/bin/env", ["sqlite3", path, "UPDATE audit SET actor = 'mallory'"])
        #expect(status != 0)
        #expect(stderr.contains("append-only"))
        let (deleteStatus, _, _) = try runProcess("/usr/bin/env", ["sqlite3", path, "DELETE FROM audit"])
        #expect(deleteStatus != 0)
        #expect(try await store.auditChain(from: 1, limit: 10).map(\.actor) == ["alice"])
    }
}
