import Crypto
import Foundation
import OCI

/// Cosign's legacy signature layout: simple-signing payloads as layers of the manifest tagged
/// `sha256-<hex>.sig`, each with its base64 ECDSA signature in the `dev.cosignproject.cosign/signature` annotation.
public enum SimpleSigning {
    public static let signatureAnnotation = "dev.cosignproject.cosign/signature"
    public static let signatureType = "cosign container image signature"

    /// The payload cosign signs: `critical` binds the repository and the manifest digest; `optional` carries the
    /// user's annotations (or null).
    public static func payload(dockerReference: String, digest: OCI.Digest, annotations: [String: String]) throws -> Data {
        var object: [String: Any] = [
            "critical": [
                "identity": ["docker-reference": dockerReference],
                "image": ["docker-manifest-digest": digest.description],
                "type": signatureType,
            ]
        ]
        object["optional"] = annotations.isEmpty ? NSNull() : annotations
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    struct Payload: Decodable {
        struct Critical: Decodable {
            struct Identity: Decodable {
                var dockerReference: String?
                enum CodingKeys: String, CodingKey { case dockerReference = "docker-reference" }
            }
            struct Image: Decodable {
                var dockerManifestDigest: String
                enum CodingKeys: String, CodingKey { case dockerManifestDigest = "docker-manifest-digest" }
            }
            var identity: Identity?
            var image: Image
            var type: String
        }
        var critical: Critical
        var optional: [String: String]?
    }

    /// Signs `subject` in `store` and appends the signature to its `.sig` manifest, keeping the signatures already
    /// there. When another writer moves the tag meanwhile, the manifest is re-read and the append retried.
    @discardableResult
    public static func sign(
        _ subject: Descriptor, in store: any ContentStore, dockerReference: String, key: P256.Signing.PrivateKey,
        annotations: [String: String] = [:]
    ) async throws -> Descriptor {
        let payload = try payload(dockerReference: dockerReference, digest: subject.digest, annotations: annotations)
        let signature = try key.signature(for: payload).derRepresentation.base64EncodedString()
        var layer = Descriptor.of(payload, mediaType: MediaType.cosignSimpleSigning)
        layer.annotations = [signatureAnnotation: signature]
        // The payload is also embedded in the descriptor (OCI `data`): verifiers that read it save a round trip;
        // those that do not fetch the blob, which is pushed as usual.
        layer.data = payload.base64EncodedString()
        try await store.push(layer, bytes: payload)
        return try await CosignTags.append(layer, to: "\(subject.digest.tagSchema).sig", in: store)
    }

    /// One signature found for an image and what became of it.
    public struct Result: Sendable, Codable, Equatable {
        public var layout: String
        public var payloadDigest: String
        public var dockerReference: String?
        public var verified: Bool
        public var reason: String?
        public var annotations: [String: String]?
    }

    /// Verifies every simple-signing signature of `subject` against `key`. An absent `.sig` tag gives an empty
    /// list; a failed lookup throws (it is never reported as "no signatures").
    public static func verify(_ subject: Descriptor, in store: any ContentStore, key: P256.Signing.PublicKey) async throws -> [Result] {
        try await verify(subject, in: store, key: .p256(key))
    }

    public static func verify(_ subject: Descriptor, in store: any ContentStore, key: VerificationKey) async throws -> [Result] {
        let authority = Authority(name: "the given key", kind: .key(key))
        var results: [Result] = []
        for o in try await Attachments.fromTag("\(subject.digest.tagSchema).sig", layout: .sigTag, in: store) {
            let check = await SignatureVerifier.check(o, subject: subject, manifest: nil, authorities: [authority])
            var r = Result(layout: o.layout.rawValue, payloadDigest: o.location, verified: check.verified, reason: check.reason)
            if check.verified, case .simpleSigning(let payload, _) = o.content, let parsed = try? JSONDecoder().decode(Payload.self, from: payload) {
                r.dockerReference = parsed.critical.identity?.dockerReference
                r.annotations = parsed.optional
            }
            results.append(r)
        }
        return results
    }
}

/// Reads an ECDSA P-256 public key (PEM `PUBLIC KEY`); `loadVerificationKey` reads every supported type.
public func loadPublicKey(_ text: String, source: String) throws -> P256.Signing.PublicKey {
    guard case .p256(let key) = try loadVerificationKey(text, source: source) else {
        throw TrustError(.unsupported, "\(source): not an ECDSA P-256 public key")
    }
    return key
}
