import Crypto
import Foundation
import OCITesting
import Storage
import Testing
import WardenApp
import Workflow

/// The audit log against someone who can write the state file: an edited, a deleted, a truncated and a recomputed
/// chain, and a forged checkpoint, each done with `sqlite3` on a copy of a real log (after dropping the triggers that
/// refuse UPDATE and DELETE, as an attacker would), each detected by `AuditJob.verify`.
@Suite struct AuditTamperTests {
    static let sqlite3 = "/usr/bin/sqlite3"
    static let dropTriggers = "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;"

    /// Runs `sql` on `file` with the sqlite3 command; its exit status and standard output and error.
    @discardableResult
    static func sqlite(_ file: String, _ sql: String, mustSucceed: Bool = true) throws -> (Int32, String, String) {
        let (status, out, err) = try runProcess(sqlite3, ["-bail", file, sql])
        if mustSucceed && status != 0 { throw ControlError(.invalid, "sqlite3 \(file): \(err)") }
        return (status, String(decoding: out, as: UTF8.self), err)
    }

    /// A consistent copy of the database at `path` (the live file is in WAL mode) in a fresh directory.
    static func copy(_ path: String) throws -> String {
        let dir = try makeTemporaryDirectory(prefix: "warden-audit-copy")
        let target = dir + "/workflows.sqlite"
        try sqlite(path, ".backup '\(target)'")
        return target
    }

    /// A log of exactly 50 entries made by control plane calls, with signed checkpoints at 30 and at 50.
    struct SignedLog {
        let fixture: ControlFixture
        let key: Curve25519.Signing.PrivateKey
        var path: String { StateLayout(fixture.dir).workflowsDatabase }
    }

    static func signedLog() async throws -> SignedLog {
        let f = try ControlFixture()
        let key = try AuditJob.signingKey(StateLayout(f.dir))
        let plane = f.plane
        _ = try await plane.createWorkspace("prod", caller: f.root)
        _ = try await plane.setMember(workspace: "prod", principal: "alice", role: .operator, caller: f.root)
        let alice = ControlFixture.caller("alice", requestID: "req")
        _ = try await plane.publish(.workflow, workspace: "prod", text: ControlFixture.workflow(), caller: alice)
        var i = 0
        while try await f.store.auditCount() < 50 {
            f.clock.advance(1.25)
            switch i % 3 {
            case 0:
                _ = try await plane.startRun(
                    workspace: "prod", workflow: "build", version: nil, inputs: [:], labels: [:], idempotencyKey: nil, caller: alice)
            case 1:
                try await plane.authorize(alice, .runRead, workspace: "prod", subject: "GET /api/v1/workspaces/prod/runs")
            default:
                do {
                    try await plane.authorize(alice, .membersManage, workspace: "prod", subject: "PUT /api/v1/workspaces/prod/members/bob")
                } catch let e as ControlError where e.code == .forbidden {}
            }
            i += 1
            if try await f.store.auditCount() == 30 { try await AuditJob.checkpoint(f.store, key: key) }
        }
        #expect(try await f.store.auditCount() == 50)
        // At the real time (sub-millisecond), as the server signs.
        try await AuditJob.checkpoint(f.store, key: key)
        #expect(try await f.store.checkpoints().map(\.count) == [30, 50])
        return SignedLog(fixture: f, key: key)
    }

    static func verify(_ path: String, _ key: Curve25519.Signing.PublicKey) async throws -> AuditJob.Report {
        try await AuditJob.verify(try SQLiteWorkflowStore(path: path), publicKey: key)
    }

    /// A fresh copy of the log, tampered with by `sql` after the triggers are dropped, verified.
    static func tampered(_ log: SignedLog, _ sql: String) async throws -> AuditJob.Report {
        let file = try copy(log.path)
        defer { try? FileManager.default.removeItem(atPath: (file as NSString).deletingLastPathComponent) }
        try sqlite(file, dropTriggers + " " + sql)
        return try await verify(file, log.key.publicKey)
    }

    @Test func anUntamperedLogVerifiesAndStillDoesAfterReopening() async throws {
        let log = try await Self.signedLog()
        defer { log.fixture.remove() }
        let report = try await AuditJob.verify(log.fixture.store, publicKey: log.key.publicKey)
        #expect(report.ok && report.entries == 50 && report.checkpoints == 2 && report.firstBadEntry == nil, "\(report.problems)")
        #expect(report.problems.isEmpty && report.uncheckpointed == 0)

        // Every entry is what its event says, chained to the one before.
        let chain = try await log.fixture.store.auditChain(from: 1, limit: 100)
        #expect(chain.map(\.seq) == Array(1...50))
        #expect(chain.first?.previous == AuditEntry.genesis)
        for (a, b) in zip(chain, chain.dropFirst()) { #expect(b.previous == a.hash) }
        #expect(chain.allSatisfy { $0.hash == $0.computedHash() && $0.hash.count == 64 })
        #expect(Set(chain.map(\.action)) == ["workspace.create", "member.set", "workflow.publish", "run.start", "authz.decision"])

        // The key is kept: reading it again gives the same key, and its public half is next to it.
        let layout = StateLayout(log.fixture.dir)
        let again = try AuditJob.signingKey(layout)
        #expect(again.publicKey.rawRepresentation == log.key.publicKey.rawRepresentation)
        let published = try AuditJob.publicKey(file: layout.serverPublicKey)
        #expect(published.rawRepresentation == log.key.publicKey.rawRepresentation)
        let mode = try FileManager.default.attributesOfItem(atPath: layout.serverKey)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        // Reopened, as a copy and in place.
        let copy = try Self.copy(log.path)
        defer { try? FileManager.default.removeItem(atPath: (copy as NSString).deletingLastPathComponent) }
        for path in [copy, log.path] {
            let reopened = try await Self.verify(path, published)
            #expect(reopened.ok && reopened.entries == 50 && reopened.uncheckpointed == 0, "\(path): \(reopened.problems)")
        }
        // Another server's key verifies nothing.
        let stranger = try await Self.verify(copy, Curve25519.Signing.PrivateKey().publicKey)
        #expect(!stranger.ok && stranger.problems.allSatisfy { $0.contains("not signed by this server's key") })
    }

    @Test func theTriggersRefuseEditsUntilTheyAreDropped() async throws {
        let log = try await Self.signedLog()
        defer { log.fixture.remove() }
        let file = try Self.copy(log.path)
        defer { try? FileManager.default.removeItem(atPath: (file as NSString).deletingLastPathComponent) }
        let (s1, _, e1) = try Self.sqlite(file, "UPDATE audit SET actor = 'mallory' WHERE seq = 20;", mustSucceed: false)
        #expect(s1 != 0 && e1.contains("append-only"), "\(e1)")
        let (s2, _, e2) = try Self.sqlite(file, "DELETE FROM audit WHERE seq > 40;", mustSucceed: false)
        #expect(s2 != 0 && e2.contains("append-only"), "\(e2)")
        let (_, count, _) = try Self.sqlite(file, "SELECT count(*) FROM audit WHERE actor = 'mallory';")
        #expect(count.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        #expect(try await Self.verify(file, log.key.publicKey).ok)
    }

    @Test func anEditedEntryIsDetected() async throws {
        let log = try await Self.signedLog()
        defer { log.fixture.remove() }
        let report = try await Self.tampered(log, "UPDATE audit SET actor = 'mallory' WHERE seq = 20;")
        #expect(!report.ok && report.firstBadEntry == 20, "\(report.problems)")
        #expect(report.problems.first?.contains("entry 20 was altered") == true, "\(report.problems)")
        // An edit of the details or the decision, or of the time, is one too.
        for sql in [
            "UPDATE audit SET details = '{}' WHERE seq = 20;", "UPDATE audit SET decision = 'deny' WHERE seq = 20;",
            "UPDATE audit SET atMillis = atMillis + 1 WHERE seq = 20;",
        ] {
            let r = try await Self.tampered(log, sql)
            #expect(!r.ok && r.firstBadEntry == 20, "\(sql): \(r.problems)")
        }
    }

    @Test func aDeletedEntryIsDetected() async throws {
        let log = try await Self.signedLog()
        defer { log.fixture.remove() }
        let report = try await Self.tampered(log, "DELETE FROM audit WHERE seq = 20;")
        #expect(!report.ok && report.firstBadEntry == 20, "\(report.problems)")
        #expect(report.problems.first?.contains("entry 20 is missing") == true, "\(report.problems)")
        // Renumbering the rest to close the gap breaks the chain as well.
        let renumbered = try await Self.tampered(log, "DELETE FROM audit WHERE seq = 20; UPDATE audit SET seq = seq - 1 WHERE seq > 20;")
        #expect(!renumbered.ok && renumbered.firstBadEntry == 20, "\(renumbered.problems)")
    }

    @Test func aTruncatedTailIsDetected() async throws {
        let log = try await Self.signedLog()
        defer { log.fixture.remove() }
        let report = try await Self.tampered(log, "DELETE FROM audit WHERE seq > 40;")
        #expect(!report.ok && report.entries == 40 && report.firstBadEntry == 41, "\(report.problems)")
        #expect(report.problems.count == 1, "\(report.problems)")
        let problem = try #require(report.problems.first)
        #expect(problem.contains("the tail was truncated") && problem.contains("ends at entry 40") && problem.contains("recorded 50 entries"))
        // The whole log gone: the checkpoints still say what was there.
        let empty = try await Self.tampered(log, "DELETE FROM audit;")
        #expect(!empty.ok && empty.entries == 0 && empty.firstBadEntry == 1, "\(empty.problems)")
    }

    @Test func aRecomputedChainIsDetectedByTheCheckpoints() async throws {
        let log = try await Self.signedLog()
        defer { log.fixture.remove() }
        // Edit entry 20 and recompute every hash from it on, correctly, as someone without the key can.
        var entries = try await log.fixture.store.auditChain(from: 1, limit: 100)
        var head = entries[18].hash
        var sql = ""
        for i in 19..<entries.count {
            var e = entries[i]
            if e.seq == 20 { e.actor = "mallory" }
            e.previous = head
            e.hash = e.computedHash()
            head = e.hash
            entries[i] = e
            sql += "UPDATE audit SET actor = '\(e.actor)', previous = '\(e.previous)', hash = '\(e.hash)' WHERE seq = \(e.seq);\n"
        }
        // The recomputation is right: an entry made from the same event after the same hash is the same entry.
        let e20 = entries[19]
        let remade = AuditEntry(
            seq: 20,
            event: AuditEvent(
                at: Date(timeIntervalSince1970: Double(e20.atMillis) / 1000 + 0.0001), actor: "mallory", action: e20.action, subject: e20.subject,
                workspace: e20.workspace, decision: e20.decision, requestID: e20.requestID, details: e20.details),
            previous: entries[18].hash)
        #expect(remade.atMillis == e20.atMillis && remade.hash == e20.hash)

        let file = try Self.copy(log.path)
        defer { try? FileManager.default.removeItem(atPath: (file as NSString).deletingLastPathComponent) }
        try Self.sqlite(file, Self.dropTriggers + "\n" + sql)
        let store = try SQLiteWorkflowStore(path: file)
        #expect(try await store.auditChain(from: 20, limit: 1).first?.actor == "mallory")
        let report = try await AuditJob.verify(store, publicKey: log.key.publicKey)
        // The chain itself is consistent; only the signed heads show the rewrite (the first at the checkpoint of 30).
        #expect(!report.ok && report.firstBadEntry == 30, "\(report.problems)")
        #expect(report.problems.count == 2 && report.problems.allSatisfy { $0.contains("entries were rewritten") }, "\(report.problems)")
        #expect(report.problems.first?.contains("up to entry 30") == true && report.problems.last?.contains("up to entry 50") == true)

        // Throwing the checkpoints away and signing new ones with another key is no better.
        let forger = Curve25519.Signing.PrivateKey()
        try Self.sqlite(file, "DELETE FROM auditCheckpoint;")
        try await AuditJob.checkpoint(store, key: forger)
        let forged = try await AuditJob.verify(store, publicKey: log.key.publicKey)
        #expect(!forged.ok && forged.firstBadEntry == 50, "\(forged.problems)")
        #expect(forged.problems.count == 1 && forged.problems.allSatisfy { $0.contains("not signed by this server's key") }, "\(forged.problems)")
        // With no checkpoint at all the chain is intact but unsigned: reported, not hidden.
        try Self.sqlite(file, "DELETE FROM auditCheckpoint;")
        let unsigned = try await AuditJob.verify(store, publicKey: log.key.publicKey)
        #expect(unsigned.checkpoints == 0 && unsigned.uncheckpointed == 50)
        #expect(unsigned.problems.contains { $0.contains("no checkpoint yet") })
    }

    @Test func aForgedCheckpointIsDetected() async throws {
        let log = try await Self.signedLog()
        defer { log.fixture.remove() }
        let file = try Self.copy(log.path)
        defer { try? FileManager.default.removeItem(atPath: (file as NSString).deletingLastPathComponent) }
        let store = try SQLiteWorkflowStore(path: file)
        // Another key signs the true head.
        try await AuditJob.checkpoint(store, key: Curve25519.Signing.PrivateKey())
        let other = try await AuditJob.verify(store, publicKey: log.key.publicKey)
        #expect(!other.ok && other.firstBadEntry == 50, "\(other.problems)")
        #expect(other.problems.count == 1 && other.problems.allSatisfy { $0.contains("not signed by this server's key") }, "\(other.problems)")

        // A checkpoint that names the server's key but is signed by another.
        let file2 = try Self.copy(log.path)
        defer { try? FileManager.default.removeItem(atPath: (file2 as NSString).deletingLastPathComponent) }
        let store2 = try SQLiteWorkflowStore(path: file2)
        let real = try #require(try await store2.checkpoints().last)
        let at = Date(timeIntervalSince1970: 1_767_225_700)
        let lie = try Curve25519.Signing.PrivateKey().signature(for: AuditCheckpoint.message(count: 40, head: real.head, at: at))
        try await store2.addCheckpoint(
            AuditCheckpoint(count: 40, head: real.head, at: at, keyID: real.keyID, signature: lie.base64EncodedString()))
        // And a real signature moved onto another count.
        try await store2.addCheckpoint(AuditCheckpoint(count: 45, head: real.head, at: real.at, keyID: real.keyID, signature: real.signature))
        let claimed = try await AuditJob.verify(store2, publicKey: log.key.publicKey)
        #expect(!claimed.ok && claimed.firstBadEntry == 40, "\(claimed.problems)")
        #expect(claimed.problems.count == 2 && claimed.problems.allSatisfy { $0.contains("not signed by this server's key") })

        // A signature edited in the file.
        let edited = try await Self.tampered(
            log, "UPDATE auditCheckpoint SET signature = '\(Data(count: 64).base64EncodedString())' WHERE count = 30;")
        #expect(!edited.ok && edited.firstBadEntry == 30, "\(edited.problems)")
    }

    @Test func entriesAfterTheLastCheckpointAreReported() async throws {
        let log = try await Self.signedLog()
        defer { log.fixture.remove() }
        let f = log.fixture
        let alice = ControlFixture.caller("alice")
        for _ in 0..<7 { try await f.plane.authorize(alice, .workflowRead, workspace: "prod", subject: "GET /api/v1/workspaces/prod/workflows") }
        let report = try await AuditJob.verify(f.store, publicKey: log.key.publicKey)
        #expect(report.ok && report.entries == 57 && report.uncheckpointed == 7, "\(report.problems)")
        try await AuditJob.checkpoint(f.store, key: log.key)
        let covered = try await Self.verify(log.path, log.key.publicKey)
        #expect(covered.ok && covered.entries == 57 && covered.uncheckpointed == 0 && covered.checkpoints == 3)
        // Cutting what only the newest checkpoint covers, back to the one before, is seen by the newest.
        let cut = try await Self.tampered(log, "DELETE FROM audit WHERE seq > 50;")
        #expect(!cut.ok && cut.firstBadEntry == 51, "\(cut.problems)")
    }

    /// Checkpoints signed at any instant verify once read back from the file (the store keeps milliseconds).
    @Test func checkpointsAtSubMillisecondTimesVerify() async throws {
        let f = try ControlFixture()
        defer { f.remove() }
        let key = try AuditJob.signingKey(StateLayout(f.dir))
        _ = try await f.plane.createWorkspace("prod", caller: f.root)
        let base = Date(timeIntervalSince1970: 1_767_225_600.000_4)
        for i in 0..<40 {
            try await AuditJob.checkpoint(f.store, key: key, at: base + Double(i) * 0.000_123_7)
        }
        for _ in 0..<10 { try await AuditJob.checkpoint(f.store, key: key) }
        let report = try await Self.verify(StateLayout(f.dir).workflowsDatabase, key.publicKey)
        #expect(report.ok && report.checkpoints == 50, "\(report.problems)")
    }
}
