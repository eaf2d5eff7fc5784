import Foundation

/// What is attached to a manifest at one moment, by both conventions: the referrers listed for it (referrers API or
/// `sha256-<hex>` fallback index) and cosign's `sha256-<hex>.sig/.att/.sbom` tags. Signatures, attestations and
/// SBOMs arrive after the image they describe (provenance and scan attestations hours later); comparing snapshots
/// tells a re-run that something new is there to verify and carry, at the cost of one lookup per convention.
public struct AttachmentSnapshot: Sendable, Equatable, Codable {
    /// Digests of the referrers, sorted.
    public var referrers: [String]
    /// Cosign tag → the digest it points to; tags that do not exist are absent.
    public var cosignTags: [String: String]

    public init(referrers: [String] = [], cosignTags: [String: String] = [:]) {
        self.referrers = referrers.sorted()
        self.cosignTags = cosignTags
    }

    /// Looks both conventions up, side by side. A failed lookup throws (never "nothing attached").
    public static func take(of subject: Descriptor, in store: any ContentStore) async throws -> AttachmentSnapshot {
        try await withThrowingTaskGroup(of: (String?, String?, [String]?).self) { group in
            group.addTask { (nil, nil, try await store.referrers(of: subject, artifactType: nil).map(\.digest.description)) }
            for tag in CosignTags.tags(for: subject.digest) {
                group.addTask {
                    do {
                        return (tag, try await store.resolve(tag).digest.description, nil)
                    } catch let e as OCIError where e.code == .notFound {
                        return (tag, nil, nil)
                    }
                }
            }
            var snapshot = AttachmentSnapshot()
            while let (tag, digest, referrers) = try await group.next() {
                if let referrers { snapshot.referrers = referrers.sorted() }
                if let tag, let digest { snapshot.cosignTags[tag] = digest }
            }
            return snapshot
        }
    }

    /// Canonical JSON (sorted keys), for storing and comparing.
    public var canonical: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}
