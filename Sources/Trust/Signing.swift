import Crypto
import Foundation
import OCI

extension CosignTags {
    /// Appends `layer` (already pushed) to the manifest tagged `tag` (cosign's `.sig`/`.att` layout), keeping the
    /// layers already there. When another writer moves the tag meanwhile, the manifest is re-read and the append
    /// retried.
    public static func append(_ layer: Descriptor, to tag: String, in store: any ContentStore) async throws -> Descriptor {
        for _ in 0..<5 {
            var layers: [Descriptor] = []
            var current: Descriptor?
            do {
                current = try await store.resolve(tag)
            } catch let e as OCIError where e.code == .notFound {
                current = nil
            }
            if let current, case .image(let m) = try await store.fetchManifest(current).parsed() {
                // Keep every layer already there; an identical layer is not added twice.
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
            // Tag only if nobody else changed the manifest since it was read.
            let now: Descriptor?
            do { now = try await store.resolve(tag) } catch let e as OCIError where e.code == .notFound { now = nil }
            guard now?.digest == current?.digest else { continue }
            try await store.tag(manifest.descriptor, as: tag)
            return manifest.descriptor
        }
        throw TrustError(.io, "\(store.displayName):\(tag) kept changing while a layer was appended; try again")
    }
}

/// Where a signature or attestation is stored.
public enum SignatureFormat: String, Sendable, CaseIterable {
    /// cosign's tag layout: `sha256-<hex>.sig` / `.att`.
    case legacy
    /// A sigstore bundle v0.3 pushed as an OCI referrer (referrers API or fallback index).
    case bundle
}

public enum Signer {
    /// A public-key hint for bundles: base64 SHA-256 of the key's DER (SubjectPublicKeyInfo).
    public static func keyHint(_ key: P256.Signing.PublicKey) -> String {
        Data(SHA256.hash(data: key.derRepresentation)).base64EncodedString()
    }

    /// Signs `subject` as cosign v3 does in the bundle format: a DSSE envelope over an in-toto statement with
    /// predicate `https://sigstore.dev/cosign/sign/v1` naming the digest, pushed as a bundle referrer.
    @discardableResult
    public static func signBundle(
        _ subject: Descriptor, in store: any ContentStore, name: String, key: P256.Signing.PrivateKey, annotations: [String: String] = [:]
    ) async throws -> Descriptor {
        let predicate = try JSONSerialization.data(withJSONObject: annotations.isEmpty ? [String: String]() : ["annotations": annotations])
        return try await attest(
            subject, in: store, name: name, predicateType: InTotoStatement.cosignSignPredicate, predicate: predicate, key: key, format: .bundle)
    }

    /// Attests `subject`: an in-toto Statement v1 (`predicateType`, `predicate`) in a DSSE envelope signed with `key`,
    /// stored in the `.att` manifest (legacy) or as a sigstore bundle referrer. Returns the manifest written.
    @discardableResult
    public static func attest(
        _ subject: Descriptor, in store: any ContentStore, name: String, predicateType: String, predicate: Data,
        key: P256.Signing.PrivateKey, format: SignatureFormat, created: Date = Date()
    ) async throws -> Descriptor {
        let statement = InTotoStatement(
            subjects: [.init(name: name, digest: [subject.digest.algorithm.rawValue: subject.digest.hex])], predicateType: predicateType,
            predicate: predicate)
        let envelope = try DSSEEnvelope.sign(payloadType: DSSEEnvelope.inTotoPayloadType, payload: try statement.json(), key: key)
        switch format {
        case .legacy:
            let bytes = envelope.json()
            var layer = Descriptor.of(bytes, mediaType: DSSEEnvelope.mediaType)
            layer.annotations = [SimpleSigning.signatureAnnotation: "", Attachments.predicateTypeAnnotation: predicateType]
            if bytes.count <= Attachments.maxEmbedded { layer.data = bytes.base64EncodedString() }
            try await store.push(layer, bytes: bytes)
            return try await CosignTags.append(layer, to: "\(subject.digest.tagSchema).att", in: store)
        case .bundle:
            let bundle = SigstoreBundle(material: .publicKey(hint: keyHint(key.publicKey)), content: .dsse(envelope))
            return try await pushBundle(bundle, for: subject, predicateType: predicateType, in: store, created: created)
        }
    }

    /// Pushes a bundle as a referrer of `subject`: an OCI manifest with the bundle's artifact type, the empty config
    /// and the bundle as its only layer.
    @discardableResult
    public static func pushBundle(
        _ bundle: SigstoreBundle, for subject: Descriptor, predicateType: String?, in store: any ContentStore, created: Date = Date()
    ) async throws -> Descriptor {
        let bytes = bundle.json()
        let layer = Descriptor.of(bytes, mediaType: bundle.mediaType)
        try await store.push(layer, bytes: bytes)
        try await store.push(.emptyJSON, bytes: Descriptor.emptyJSONBytes)
        var annotations = ["org.opencontainers.image.created": ISO8601DateFormatter().string(from: created)]
        if case .dsse = bundle.content {
            annotations[Attachments.bundleContentAnnotation] = "dsse-envelope"
        } else {
            annotations[Attachments.bundleContentAnnotation] = "message-signature"
        }
        if let predicateType { annotations[Attachments.bundlePredicateTypeAnnotation] = predicateType }
        var m = ImageManifest(config: .emptyJSON, layers: [layer])
        m.artifactType = bundle.mediaType
        m.subject = subject.plain
        m.annotations = annotations
        let raw = try RawManifest.encode(m, mediaType: MediaType.imageManifest)
        try await store.push(raw)
        return raw.descriptor
    }
}
