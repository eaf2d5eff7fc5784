import Foundation
import OCITesting
import Storage
import Testing

/// The contract every `ReplicationStateStore` keeps, one body run against each implementation.
enum StateImplementation: String, CaseIterable, CustomTestStringConvertible {
    case memory, sqlite

    var testDescription: String { rawValue }

    func make() throws -> any ReplicationStateStore {
        switch self {
        case .memory: return MemoryReplicationState()
        case .sqlite:
            let dir = try makeTemporaryDirectory()
            return try StateStore(path: dir + "/replication.sqlite")
        }
    }
}

@Suite struct ReplicationStateContractTests {
    func record(_ target: String, digest: String, outcome: String = "copied", attachments: String? = nil, policy: String? = nil) -> ReplicationRecord
    {
        ReplicationRecord(
            target: target, sourceReference: "up/\(target)", sourceDigest: digest, outcome: outcome, verifiedBy: "release", detail: nil,
            attachments: attachments, policy: policy, updatedAt: Date(timeIntervalSince1970: 1_800_000_000))
    }

    @Test(arguments: StateImplementation.allCases) func aRecordIsReadBackAsWritten(_ impl: StateImplementation) throws {
        let store = try impl.make()
        #expect(try store.replication(target: "r/a:1") == nil)
        let r = record("r/a:1", digest: "sha256:1", attachments: #"{"referrers":[]}"#, policy: "sha256:p")
        try store.save(r)
        #expect(try store.replication(target: "r/a:1") == r)
    }

    @Test(arguments: StateImplementation.allCases) func savingReplacesTheTargetsRecord(_ impl: StateImplementation) throws {
        let store = try impl.make()
        try store.save(record("r/a:1", digest: "sha256:1"))
        try store.save(record("r/a:1", digest: "sha256:2", outcome: "refused"))
        let r = try #require(try store.replication(target: "r/a:1"))
        #expect(r.sourceDigest == "sha256:2" && r.outcome == "refused")
        #expect(try store.allReplications().count == 1)
    }

    @Test(arguments: StateImplementation.allCases) func allRecordsAreOrderedByTarget(_ impl: StateImplementation) throws {
        let store = try impl.make()
        for t in ["r/c:1", "r/a:2", "r/b:1", "r/a:1"] { try store.save(record(t, digest: "sha256:" + t)) }
        #expect(try store.allReplications().map(\.target) == ["r/a:1", "r/a:2", "r/b:1", "r/c:1"])
    }
}
