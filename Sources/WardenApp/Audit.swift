import CEL
import Crypto
import Documents
import Foundation
import Storage

/// The audit log's checks: the server's checkpoint key, signed checkpoints, and verification of the chain and the
/// checkpoints (`warden audit verify`, `GET /api/v1/audit/verify`).
public enum AuditJob {
    /// The server's checkpoint signing key (Ed25519): created private (0600) in the state directory on first use,
    /// its public half next to it (`server-key.pub`, base64) for verifiers that keep a copy elsewhere.
    public static func signingKey(_ layout: StateLayout) throws -> Curve25519.Signing.PrivateKey {
        if let data = FileManager.default.contents(atPath: layout.serverKey) {
            guard let raw = Data(base64Encoded: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
                let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
            else { throw FileError("\(layout.serverKey) is not a Warden server key (base64 of 32 bytes); move it away to make a new one") }
            return key
        }
        try PrivateFiles.createDirectory(layout.root)
        let key = Curve25519.Signing.PrivateKey()
        try PrivateFiles.writeAtomically(Data((key.rawRepresentation.base64EncodedString() + "\n").utf8), to: layout.serverKey, mode: 0o600)
        try PrivateFiles.writeAtomically(
            Data((key.publicKey.rawRepresentation.base64EncodedString() + "\n").utf8), to: layout.serverPublicKey, mode: 0o644)
        return key
    }

    /// A public key file as `signingKey` writes it (base64 of the raw 32 bytes).
    public static func publicKey(file: String) throws -> Curve25519.Signing.PublicKey {
        guard let data = FileManager.default.contents(atPath: file) else { throw FileError("cannot read \(file)") }
        guard let raw = Data(base64Encoded: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else { throw FileError("\(file) is not a Warden server public key (base64 of 32 bytes)") }
        return key
    }

    public static func keyID(_ key: Curve25519.Signing.PublicKey) -> String {
        SHA256.hash(data: key.rawRepresentation).map { String(format: "%02x", $0) }.joined()
    }

    /// Signs a checkpoint of the log's current head and count and stores it.
    @discardableResult
    public static func checkpoint(_ store: any ControlStore, key: Curve25519.Signing.PrivateKey, at: Date = Date()) async throws -> AuditCheckpoint {
        // Whole milliseconds: the store keeps the time to the millisecond, and the message must read back the same.
        let at = Date(timeIntervalSince1970: (at.timeIntervalSince1970 * 1000).rounded(.down) / 1000)
        let count = try await store.auditCount()
        let head = count == 0 ? AuditEntry.genesis : (try await store.auditChain(from: count, limit: 1).first?.hash ?? AuditEntry.genesis)
        let message = AuditCheckpoint.message(count: count, head: head, at: at)
        let signature = try key.signature(for: message)
        let c = AuditCheckpoint(count: count, head: head, at: at, keyID: keyID(key.publicKey), signature: signature.base64EncodedString())
        try await store.addCheckpoint(c)
        return c
    }

    /// What verification found.
    public struct Report: Sendable, Codable, Equatable {
        public var ok: Bool
        public var entries: Int64
        public var checkpoints: Int
        /// The `seq` of the first entry that is wrong or missing.
        public var firstBadEntry: Int64?
        public var problems: [String]
        /// Entries after the last checkpoint: their chain is intact, but no signature covers them yet.
        public var uncheckpointed: Int64
    }

    /// Walks the chain from the first entry (each `previous` the hash before it, each hash recomputed, no gap) and
    /// checks every checkpoint's signature with `publicKey` and that the chain still has its count and head.
    public static func verify(_ store: any ControlStore, publicKey: Curve25519.Signing.PublicKey, slice: Int = 5000) async throws -> Report {
        var problems: [String] = []
        var firstBad: Int64?
        var hashes: [Int64: String] = [0: AuditEntry.genesis]
        var expected: Int64 = 1
        var previous = AuditEntry.genesis
        let checkpoints = try await store.checkpoints()
        let wanted = Set(checkpoints.map(\.count))
        func bad(_ seq: Int64, _ why: String) {
            if firstBad == nil { firstBad = seq }
            if problems.count < 20 { problems.append(why) }
        }
        while true {
            let chunk = try await store.auditChain(from: expected, limit: slice)
            if chunk.isEmpty { break }
            for e in chunk {
                if e.seq != expected {
                    bad(expected, "entry \(expected) is missing (the next entry is \(e.seq))")
                    expected = e.seq
                }
                if e.previous != previous {
                    bad(e.seq, "entry \(e.seq) does not follow entry \(e.seq - 1): its previous hash is \(e.previous.prefix(12))…")
                }
                if e.hash != e.computedHash() { bad(e.seq, "entry \(e.seq) was altered: its fields no longer hash to its recorded hash") }
                if wanted.contains(e.seq) { hashes[e.seq] = e.hash }
                previous = e.hash
                expected = e.seq + 1
            }
        }
        let count = expected - 1
        let keyID = keyID(publicKey)
        var lastCovered: Int64 = 0
        for c in checkpoints {
            guard c.keyID == keyID, let sig = Data(base64Encoded: c.signature), publicKey.isValidSignature(sig, for: c.message) else {
                bad(c.count == 0 ? 1 : c.count, "the checkpoint of \(RFC3339.string(c.at)) (\(c.count) entries) is not signed by this server's key")
                continue
            }
            if c.count > count {
                bad(
                    count + 1,
                    "the log ends at entry \(count), but the checkpoint of \(RFC3339.string(c.at)) recorded \(c.count) entries: the tail was truncated"
                )
            } else if hashes[c.count] != c.head {
                bad(c.count, "the chain up to entry \(c.count) differs from the checkpoint of \(RFC3339.string(c.at)): entries were rewritten")
            }
            lastCovered = max(lastCovered, min(c.count, count))
        }
        if checkpoints.isEmpty && count > 0 { problems.append("no checkpoint yet: the chain is intact but no signature covers it") }
        return Report(
            ok: firstBad == nil, entries: count, checkpoints: checkpoints.count, firstBadEntry: firstBad, problems: problems,
            uncheckpointed: count - lastCovered)
    }
}

/// One audit entry as the API and `warden audit list` show it.
public struct AuditView: Sendable, Codable {
    public var seq: Int64
    public var at: Date
    public var actor, action, subject: String
    public var workspace, decision, requestId: String?
    public var details: JSONValue
    public var previous, hash: String
    public init(_ e: AuditEntry) {
        seq = e.seq
        at = e.at
        actor = e.actor
        action = e.action
        subject = e.subject
        workspace = e.workspace
        decision = e.decision
        requestId = e.requestID
        details = JSONValue((try? Value.parseJSON(e.details)) ?? .map([]))
        previous = e.previous
        hash = e.hash
    }
}

/// A page of audit entries, newest first, and the cursor of the next (older) page.
public struct AuditPage: Sendable, Codable {
    public var entries: [AuditView]
    public var next: String?
}

extension AuditJob {
    /// The query of a page of the log from its textual filters (the API's query parameters, the CLI's options):
    /// `since`/`until` RFC 3339 times, `limit` 1 to 1000, `cursor` as a page gave it.
    public static func query(
        workspace: String?, actor: String?, action: String?, subject: String?, since: String?, until: String?, limit: String?, cursor: String?
    ) throws -> AuditQuery {
        var q = AuditQuery(workspace: workspace)
        q.actor = actor
        q.action = action
        q.subject = subject
        for (name, text, set) in [("since", since, \AuditQuery.since), ("until", until, \AuditQuery.until)] {
            guard let text else { continue }
            guard let d = RFC3339.date(text) else { throw ControlError(.invalid, "\(name) \"\(text.prefix(80))\" must be an RFC 3339 time") }
            q[keyPath: set] = d
        }
        if let limit {
            guard let n = Int(limit), (1...1000).contains(n) else { throw ControlError(.invalid, "limit must be 1 to 1000") }
            q.limit = n
        }
        if let cursor {
            guard let n = Int64(cursor), n > 0 else { throw ControlError(.invalid, "cursor \"\(cursor.prefix(80))\" is not one this log gave") }
            q.before = n
        }
        return q
    }

    /// A page of entries matching `query`, newest first (the filters run in SQL).
    public static func page(_ store: any ControlStore, _ query: AuditQuery) async throws -> AuditPage {
        var q = query
        let limit = q.limit
        q.limit += 1
        let found = try await store.auditEntries(q)
        let page = Array(found.prefix(limit))
        return AuditPage(entries: page.map(AuditView.init), next: found.count > limit ? page.last.map { String($0.seq) } : nil)
    }
}
