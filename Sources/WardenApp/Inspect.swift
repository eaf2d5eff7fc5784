import Foundation
import OCI
import Trust

/// The inspect job: what is attached to a manifest.
/// A node of the referrers tree.
public struct ReferrerNode: Sendable, Codable {
    public var digest: String
    public var mediaType: String
    public var artifactType: String?
    public var size: Int64
    /// How it was found: "referrers" (API or fallback index) or the cosign tag.
    public var via: String
    public var referrers: [ReferrerNode]
}

/// Referrers of `subject`, recursively, plus cosign tag attachments. Each manifest is expanded once (a referrer
/// seen before, or one that is the subject itself, is shown without its subtree), at most `maxDepth` levels and
/// `budget` nodes in all: a hostile repository where every artifact has many referrers costs a bounded number of
/// lookups, not K^depth.
public func referrerTree(of subject: Descriptor, in store: any ContentStore, maxDepth: Int = 8, budget: Int = 500) async throws -> (
    nodes: [ReferrerNode], truncated: Bool
) {
    var visited: Set<Digest> = [subject.digest]
    var remaining = budget
    var truncated = false
    func walk(_ subject: Descriptor, _ depth: Int) async throws -> [ReferrerNode] {
        guard depth < maxDepth else {
            truncated = true
            return []
        }
        var nodes: [ReferrerNode] = []
        for r in try await store.referrers(of: subject, artifactType: nil) {
            guard remaining > 0 else {
                truncated = true
                break
            }
            remaining -= 1
            let first = visited.insert(r.digest).inserted
            nodes.append(
                ReferrerNode(
                    digest: r.digest.description, mediaType: r.mediaType, artifactType: r.artifactType, size: r.size,
                    via: first ? "referrers" : "referrers, shown above",
                    referrers: first && MediaType.isManifest(r.mediaType) ? try await walk(r, depth + 1) : []))
        }
        for tag in CosignTags.tags(for: subject.digest) {
            guard remaining > 0 else {
                truncated = true
                break
            }
            // Only "no such tag" means no attachment: a refused credential, throttling or a server error is an
            // error, never read as "not signed".
            let d: Descriptor
            do {
                d = try await store.resolve(tag)
            } catch let e as OCIError where e.code == .notFound {
                continue
            }
            remaining -= 1
            nodes.append(
                ReferrerNode(
                    digest: d.digest.description, mediaType: d.mediaType, artifactType: nil, size: d.size, via: "tag \(tag)", referrers: []))
        }
        return nodes
    }
    let nodes = try await walk(subject, 0)
    return (nodes, truncated)
}
