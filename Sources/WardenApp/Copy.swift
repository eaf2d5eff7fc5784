import Foundation
import OCI

/// The copy job (`warden copy`, `oci/copy@v1`, and every copy replication makes): which reference is read at the
/// source and which tag is written at the destination.
public enum CopyJob {
    /// What is resolved at the source: its digest, else its tag, else `latest`.
    public static func sourceReference(_ source: Location) -> String {
        source.digest?.description ?? source.tag ?? "latest"
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
