import Foundation

@testable import Findings

/// 2026-01-01T00:00:00Z plus `n` days (and `hours`).
func day(_ n: Double, hours: Double = 0) -> Date { Date(timeIntervalSince1970: 1_767_225_600 + n * 86_400 + hours * 3600) }

func artefact(_ repository: String = "team/app", _ version: Int = 1, registry: String = "registry.example") -> ArtefactID {
    ArtefactID(registry: registry, repository: repository, digest: "sha256:" + String(repeating: String(version % 10), count: 64))
}

func vulnerability(_ id: String = "CVE-2026-0001", package: String = "pkg:deb/debian/openssl") -> DataKey {
    .vulnerability(package: package, id: id)
}

func finding(
    _ dataKey: DataKey = vulnerability(), on artefact: ArtefactID = artefact(), datasource: String = "osv", score: Double? = 7.5,
    discovered: Date = day(0), lastSeen: Date? = nil, resolved: Date? = nil
) -> Finding {
    Finding(
        key: FindingKey(artefact: artefact, datasource: datasource, dataKey: dataKey), score: score, summary: "\(dataKey.id) in \(dataKey.subject)",
        discoveredAt: discovered, lastSeenAt: lastSeen, resolvedAt: resolved)
}

func rescoring(
    _ id: String, _ scope: Rescoring.Scope = .global, category: String = "NONE", dataKey: DataKey = vulnerability(), created: Date = day(0),
    due: Date? = nil, processingTime: Duration? = nil, expires: Date? = nil, freshClock: Bool = false, comment: String = "not reachable"
) -> Rescoring {
    try! Rescoring(
        id: id, dataKey: dataKey, scope: scope, categoryID: category, comment: comment, user: "alice", createdAt: created, dueDate: due,
        processingTime: processingTime, expiresAt: expires, freshClock: freshClock)
}

/// SplitMix64: a small seeded generator, so randomised tests repeat exactly.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
