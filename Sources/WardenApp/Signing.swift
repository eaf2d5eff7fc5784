import Crypto
import Foundation
import OCI
import OCIRegistry
import Trust

extension Location {
    /// `registry/repository`, or `oci-layout:PATH`: the name signatures carry and trust policies match.
    public var repositoryName: String {
        switch self {
        case .registry(let r): "\(r.registry)/\(r.repository)"
        case .layout(let path, _, _): Location.layoutScheme + path
        }
    }

    /// `registry/repository@digest` or `oci-layout:PATH@digest`.
    public func digestReference(_ digest: OCI.Digest) -> String { "\(repositoryName)@\(digest)" }

    /// What a job resolves at this location: its digest, else its tag, else `latest`.
    public var resolvedReference: String { digest?.description ?? tag ?? "latest" }

    /// The same repository or layout, naming `digest` (and no tag).
    public func pinned(to digest: OCI.Digest) -> Location {
        switch self {
        case .registry(let r): .registry(r.with(tag: nil, digest: digest))
        case .layout(let path, _, _): .layout(path: path, tag: nil, digest: digest)
        }
    }
}

/// The signing and attesting jobs (`warden sign`, `warden attest`, `warden sbom --attest`, `trust/sign@v1`,
/// `trust/attest@v1`): a tag is resolved once and the digest is what is signed. How the key is read (a password
/// prompt, a credential slot) is the surface's business; the key given here is ready to sign.
public enum SigningJob {
    public struct SignRequest: Sendable {
        public var location: Location
        public var format: SignatureFormat
        /// Put in the signed payload's optional section.
        public var annotations: [String: String]

        public init(location: Location, format: SignatureFormat = .legacy, annotations: [String: String] = [:]) {
            self.location = location
            self.format = format
            self.annotations = annotations
        }
    }

    public struct SignReport: Sendable, Codable, Equatable {
        /// The signed subject's descriptor.
        public var subject: Descriptor
        /// The manifest that carries the signature (the `.sig` manifest or the bundle referrer).
        public var signature: Descriptor
    }

    public struct AttestRequest: Sendable {
        public var location: Location
        /// A predicate type URI or one of cosign's names (`slsaprovenance`, `cyclonedx`, … see `PredicateTypes`).
        public var predicateType: String
        /// The predicate: JSON.
        public var predicate: Data
        public var format: SignatureFormat
        /// What the surface calls the predicate (`--predicate FILE`, `predicate`), for errors.
        public var predicateSource: String

        public init(location: Location, predicateType: String, predicate: Data, format: SignatureFormat, predicateSource: String = "predicate") {
            self.location = location
            self.predicateType = predicateType
            self.predicate = predicate
            self.format = format
            self.predicateSource = predicateSource
        }
    }

    public struct AttestReport: Sendable, Codable, Equatable {
        public var digest: String
        public var predicateType: String
        /// The manifest that carries the attestation.
        public var manifest: String
    }

    /// Signs the artifact at `request.location`.
    public static func sign(_ request: SignRequest, key: P256.Signing.PrivateKey, registries: Registries) async throws -> SignReport {
        let store = try registries.store(for: request.location, create: false)
        let subject = try await store.resolve(request.location.resolvedReference)
        let name = request.location.repositoryName
        let written: Descriptor
        switch request.format {
        case .legacy:
            written = try await SimpleSigning.sign(subject, in: store, dockerReference: name, key: key, annotations: request.annotations)
        case .bundle:
            written = try await Signer.signBundle(subject, in: store, name: name, key: key, annotations: request.annotations)
        }
        return SignReport(subject: subject, signature: written)
    }

    /// The predicate type `name` resolves to, or a `TrustError` naming it.
    public static func predicateType(_ name: String) throws -> String { try PredicateTypes.resolve(name) }

    /// A `TrustError` naming `source` unless `predicate` is JSON.
    public static func validatePredicate(_ predicate: Data, source: String) throws {
        do {
            _ = try JSONSerialization.jsonObject(with: predicate, options: [.fragmentsAllowed])
        } catch {
            throw TrustError(.malformed, "\(source) is not JSON: \(error.localizedDescription)")
        }
    }

    /// Attests the artifact at `request.location` with an in-toto statement about its digest.
    public static func attest(_ request: AttestRequest, key: P256.Signing.PrivateKey, registries: Registries) async throws -> AttestReport {
        let predicateType = try predicateType(request.predicateType)
        try validatePredicate(request.predicate, source: request.predicateSource)
        let store = try registries.store(for: request.location, create: false)
        let subject = try await store.resolve(request.location.resolvedReference)
        let m = try await Signer.attest(
            subject, in: store, name: request.location.repositoryName, predicateType: predicateType, predicate: request.predicate, key: key,
            format: request.format)
        return AttestReport(digest: subject.digest.description, predicateType: predicateType, manifest: m.digest.description)
    }
}
