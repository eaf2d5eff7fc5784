import ArgumentParser
import WardenApp

/// `-o FORMAT[=FILE]` options (`warden sbom`, `warden scan`): each format with the file it goes to (nil: standard
/// output). An unknown format is a `ValidationError` listing the known ones.
public func parseOutputs<F: RawRepresentable & CaseIterable>(_ specs: [String]) throws -> [(F, String?)] where F.RawValue == String {
    try specs.map { spec in
        let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
        guard let name = parts.first, let format = F(rawValue: name) else {
            let known = F.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("unknown format \"\(parts.first ?? spec)\" (expected \(known))")
        }
        return (format, parts.count > 1 ? parts[1] : nil)
    }
}

/// `--attest` needs a signing key and an image source (a registry reference or an OCI layout): the attestation is
/// attached to the image.
public func validateAttestation(_ attest: Bool, key: String?, source: String) throws {
    guard attest else { return }
    if key == nil { throw ValidationError("--attest needs --key") }
    if InventoryJob.Source.schemes.contains(where: source.hasPrefix) {
        throw ValidationError("--attest needs an image in a registry or an OCI layout")
    }
}
