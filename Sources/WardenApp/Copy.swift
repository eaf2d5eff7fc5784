import Foundation
import Logging
import OCI
import OCIRegistry

/// The copy job (`warden copy`, `oci/copy@v1`, and every copy replication makes): which reference is read at the
/// source and which tag is written at the destination.
public enum CopyJob {
    /// What is resolved at the source: its digest, else its tag, else `latest`.
    public static func sourceReference(_ source: Location) -> String {
        source.resolvedReference
    }

    /// The tag written at the destination: the destination's own tag; else, when the destination names no digest,
    /// the source's tag (or `latest` when the source names neither tag nor digest); a source given by digest alone
    /// (sha256 or sha512) writes no tag, and neither does a destination given by digest.
    public static func destinationTag(source: Location, destination: Location) -> String? {
        if let tag = destination.tag { return tag }
        guard destination.digest == nil else { return nil }
        if let tag = source.tag { return tag }
        return source.digest == nil ? "latest" : nil
    }
}

extension CopyJob {
    /// Copies what `source` names to `destination` with its referrers (`GraphCopier`: blobs before manifests,
    /// children before parents, the tag last), reading the source reference and writing the destination tag by the
    /// rules above. The destination layout is created when missing.
    public static func copy(
        from source: Location, to destination: Location, options: CopyOptions = CopyOptions(), registries: Registries,
        logger: Logger = Logger(label: "warden.copy")
    ) async throws -> CopyReport {
        let sourceStore = try registries.store(for: source, create: false)
        let destinationStore = try registries.store(for: destination, create: true)
        return try await GraphCopier(from: sourceStore, to: destinationStore, options: options, logger: logger)
            .copy(reference: sourceReference(source), destinationTag: destinationTag(source: source, destination: destination))
    }
}
