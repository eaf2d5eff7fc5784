import Foundation
import Inventory
import OCI

/// The inventory job (`warden sbom`, `sbom/generate@v1`): an image's filesystem catalogued into an inventory, with
/// the contents that were not read (over a limit) and why.
public enum InventoryJob {
    public struct Result: Sendable {
        public var inventory: Inventory
        /// Files whose contents were not kept for the catalogers (the image's capture limit), with the reason: the
        /// packages they would have shown may be missing.
        public var skipped: [SkippedContent]
    }

    /// Catalogues `resolved`, naming the subject `name` (what the user gave).
    public static func inventory(of resolved: ImageSource.Resolved, name: String) -> Result {
        let (distro, packages) = Catalogers.catalog(resolved.filesystem)
        let inventory = Inventory(
            subject: .init(
                name: name, digest: resolved.subjectDigest, manifestDigest: resolved.manifestDigest, platform: resolved.platform?.description),
            distro: distro, layers: resolved.filesystem.layers, packages: packages)
        return Result(inventory: inventory, skipped: resolved.filesystem.skipped)
    }

    /// One line per skipped file (at most `limit`, then a count of the rest).
    public static func describe(_ skipped: [SkippedContent], limit: Int = 20) -> [String] {
        var lines = skipped.prefix(limit).map { "content of \($0.path) (layer \($0.layer)) not read: \($0.reason)" }
        if skipped.count > limit { lines.append("… and \(skipped.count - limit) more files whose contents were not read") }
        return lines
    }
}
