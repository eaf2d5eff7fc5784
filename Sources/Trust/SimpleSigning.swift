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
        try await store.push(layer, bytes: payload)
        let tag = "\(subject.digest.tagSchema).sig"
        for _ in 0..<5 {
            var layers: [Descriptor] = []
            var current: Descriptor?
            do {
                current = try await store.resolve(tag)
            } catch let e as OCIError where e.code == .notFound {
                current = nil
            }
            if let current, case .image(let m) = try await store.fetchManifest(current).parsed() {
                // Keep every signature already there; a second identical signature is not added.
                layers = m.layers.filter { $0.digest != layer.digest || $0.annotations != layer.annotations }
            }
            layers.append(layer)
            let configBytes = try JSONSerialization.data(
                withJSONObject: [
                    "architecture": "", "os": "", "config": [String: String](), "created": "0001-01-01T00:00:00Z",
                    "rootfs": ["type": "layers", "diff_ids": layers.map(\.digest.description)],
                ], options: [.sortedKeys, .withoutEscapingSlashes])
            let config = Descriptor.of(configBytes, mediaType: MediaType.imageConfig)
            try await store.push(config, bytes: configBytes)
            let manifest = try RawManifest.encode(ImageManifest(config: config, layers: layers), mediaType: MediaType.imageManifest)
            try await store.push(manifest)
            // Tag only if nobody else changed the signature manifest since it was read.
            let now: Descriptor?
            do { now = try await store.resolve(tag) } catch let e as OCIError where e.code == .notFound { now = nil }
            guard now?.digest == current?.digest else { continue }
            try await store.tag(manifest.descriptor, as: tag)
            return manifest.descriptor
        }
        throw TrustError(.io, "\(store.displayName):\(tag) kept changing while the signature was appended; try again")
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
        let tag = "\(subject.digest.tagSchema).sig"
        let sigManifest: Descriptor
        do {
            sigManifest = try await store.resolve(tag)
        } catch let e as OCIError where e.code == .notFound {
            return []
        }
        guard case .image(let m) = try await store.fetchManifest(sigManifest).parsed() else {
            return [
                Result(
                    layout: "sig-tag", payloadDigest: sigManifest.digest.description, verified: false,
                    reason: "\(tag) is an index, not a signature manifest")
            ]
        }
        var results: [Result] = []
        for layer in m.layers where layer.mediaType == MediaType.cosignSimpleSigning {
            var r = Result(layout: "sig-tag", payloadDigest: layer.digest.description, verified: false)
            guard layer.size <= 1 << 20 else {
                r.reason = "payload of \(layer.size) bytes is larger than 1 MiB"
                results.append(r)
                continue
            }
            let payload = try await store.fetchVerified(layer).collect(limit: 1 << 20)
            guard let b64 = layer.annotations?[signatureAnnotation], let sigDER = Data(base64Encoded: b64) else {
                r.reason = "layer has no valid \(signatureAnnotation) annotation"
                results.append(r)
                continue
            }
            guard key.isValid(signature: sigDER, for: payload) else {
                r.reason = "signature does not verify with the given key"
                results.append(r)
                continue
            }
            guard let parsed = try? JSONDecoder().decode(Payload.self, from: payload) else {
                r.reason = "signed payload is not a simple-signing document"
                results.append(r)
                continue
            }
            r.dockerReference = parsed.critical.identity?.dockerReference
            r.annotations = parsed.optional
            guard parsed.critical.type == signatureType else {
                r.reason = "signed payload has type \"\(parsed.critical.type)\", not \"\(signatureType)\""
                results.append(r)
                continue
            }
            guard parsed.critical.image.dockerManifestDigest == subject.digest.description else {
                r.reason = "signature is for \(parsed.critical.image.dockerManifestDigest), not \(subject.digest)"
                results.append(r)
                continue
            }
            r.verified = true
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
