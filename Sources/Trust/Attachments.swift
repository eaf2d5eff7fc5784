import Foundation
import OCI

/// One signature or attestation found for an image, in any of the layouts Warden reads, before verification.
public struct SignedObject: Sendable {
    public enum Layout: String, Sendable, Codable {
        /// A layer of cosign's `sha256-<hex>.sig` manifest (simple signing).
        case sigTag = "sig-tag"
        /// A layer of cosign's `sha256-<hex>.att` manifest (DSSE envelope).
        case attTag = "att-tag"
        /// A sigstore bundle pushed as a referrer (v0.1, v0.2 or v0.3).
        case bundleReferrer = "bundle-referrer"
        /// A simple-signing signature or DSSE envelope pushed as a referrer manifest's layer.
        case referrer = "referrer"
    }

    public enum Content: Sendable {
        case simpleSigning(payload: Data, signature: Data)
        case dsse(DSSEEnvelope)
        /// A bundle's message signature over the subject manifest's bytes.
        case messageSignature(algorithm: String, digest: Data?, signature: Data)
    }

    public var layout: Layout
    /// The digest of the blob or manifest that holds it (for reports).
    public var location: String
    public var content: Content?
    /// Why it could not be read, when `content` is nil.
    public var problem: String?
    /// Signing certificate and the rest of its chain (DER), when the signature carries them.
    public var certificates: [Data] = []
    public var tlogEntries: [TransparencyLogEntry] = []
    /// The predicate type an attachment declares (annotation), before its statement is verified.
    public var declaredPredicateType: String?

    public init(layout: Layout, location: String, content: Content? = nil, problem: String? = nil) {
        self.layout = layout
        self.location = location
        self.content = content
        self.problem = problem
    }

    /// The statement inside a DSSE envelope, if it is an in-toto statement.
    public var statement: InTotoStatement? {
        guard case .dsse(let env) = content, env.payloadType == DSSEEnvelope.inTotoPayloadType else { return nil }
        return try? InTotoStatement(json: env.payload, source: location)
    }

    /// Whether this is an image signature (simple signing, message signature, or cosign v3's signature statement)
    /// rather than an attestation.
    public var isSignature: Bool {
        switch content {
        case .simpleSigning, .messageSignature: return true
        case .dsse: return statement?.predicateType == InTotoStatement.cosignSignPredicate
        case nil: return layout == .sigTag || declaredPredicateType == InTotoStatement.cosignSignPredicate
        }
    }
}

/// Finds every signature and attestation attached to an image: `.sig` and `.att` tags, sigstore bundle referrers,
/// and simple-signing or DSSE layers pushed as referrers.
public enum Attachments {
    public static let certificateAnnotation = "dev.sigstore.cosign/certificate"
    public static let chainAnnotation = "dev.sigstore.cosign/chain"
    public static let rekorBundleAnnotation = "dev.sigstore.cosign/bundle"
    public static let predicateTypeAnnotation = "predicateType"
    public static let bundleContentAnnotation = "dev.sigstore.bundle.content"
    public static let bundlePredicateTypeAnnotation = "dev.sigstore.bundle.predicateType"
    /// Artifact types of referrers that may hold signatures; others (SBOMs, …) are not fetched.
    static let signatureArtifactTypes: Set<String> = [
        MediaType.cosignSimpleSigning, DSSEEnvelope.mediaType, "application/vnd.dev.cosign.artifact.sig.v1+json",
        "application/vnd.dev.cosign.artifact.att.v1+json", "application/vnd.in-toto+json",
    ]
    static let maxBlob = 4 << 20
    /// Largest payload Warden embeds in a descriptor's `data` field when it signs.
    public static let maxEmbedded = 16 << 10

    /// Everything attached to `subject`. A failed lookup (other than an absent tag) throws: it is never reported as
    /// "nothing attached".
    /// With `attestations: false` the `.att` tag is not looked up (referrers are: they hold bundle signatures too).
    public static func discover(_ subject: Descriptor, in store: any ContentStore, attestations: Bool = true) async throws -> [SignedObject] {
        async let sig = fromTag("\(subject.digest.tagSchema).sig", layout: .sigTag, in: store)
        async let att = attestations ? fromTag("\(subject.digest.tagSchema).att", layout: .attTag, in: store) : []
        async let refs = fromReferrers(subject, in: store)
        return try await sig + att + refs
    }

    static func fromTag(_ tag: String, layout: SignedObject.Layout, in store: any ContentStore) async throws -> [SignedObject] {
        let raw: RawManifest
        do {
            if let direct = store as? any ManifestByReference {
                raw = try await direct.getManifest(tag)
            } else {
                raw = try await store.fetchManifest(store.resolve(tag))
            }
        } catch let e as OCIError where e.code == .notFound {
            return []
        }
        guard case .image(let m) = try raw.parsed() else {
            return [SignedObject(layout: layout, location: raw.digest.description, problem: "\(tag) is an index, not an image manifest")]
        }
        var out: [SignedObject] = []
        for layer in m.layers {
            out.append(try await object(from: layer, layout: layout, in: store))
        }
        return out
    }

    static func fromReferrers(_ subject: Descriptor, in store: any ContentStore) async throws -> [SignedObject] {
        var out: [SignedObject] = []
        for referrer in try await store.referrers(of: subject, artifactType: nil) {
            let type = referrer.artifactType ?? ""
            let isBundle = SigstoreBundle.isBundleMediaType(type)
            guard isBundle || signatureArtifactTypes.contains(type) else { continue }
            let location = referrer.digest.description
            guard case .image(let m) = try await store.fetchManifest(referrer).parsed() else {
                out.append(
                    SignedObject(layout: isBundle ? .bundleReferrer : .referrer, location: location, problem: "referrer is not an image manifest"))
                continue
            }
            if isBundle {
                guard let layer = m.layers.first else {
                    out.append(SignedObject(layout: .bundleReferrer, location: location, problem: "bundle referrer has no layer"))
                    continue
                }
                var o = SignedObject(layout: .bundleReferrer, location: location)
                o.declaredPredicateType = m.annotations?[bundlePredicateTypeAnnotation]
                do {
                    let bytes = try await fetchSmall(layer, in: store)
                    let bundle = try SigstoreBundle(json: bytes, source: "bundle \(layer.digest)")
                    switch bundle.content {
                    case .dsse(let env): o.content = .dsse(env)
                    case .messageSignature(let a, let d, let s): o.content = .messageSignature(algorithm: a, digest: d, signature: s)
                    }
                    if case .certificates(let certs) = bundle.material { o.certificates = certs }
                    o.tlogEntries = bundle.tlogEntries
                } catch let e as TrustError {
                    o.problem = e.reason
                }
                out.append(o)
            } else {
                for layer in m.layers where layer.mediaType == MediaType.cosignSimpleSigning || layer.mediaType == DSSEEnvelope.mediaType {
                    out.append(try await object(from: layer, layout: .referrer, in: store))
                }
            }
        }
        return out
    }

    /// A small blob: from the descriptor's embedded `data` when it matches the digest, else from the store.
    static func fetchSmall(_ layer: Descriptor, in store: any ContentStore) async throws -> Data {
        guard layer.size <= maxBlob else { throw TrustError(.malformed, "\(layer.digest) is \(layer.size) bytes; the limit is \(maxBlob)") }
        if let b64 = layer.data, let embedded = Data(base64Encoded: b64), Int64(embedded.count) == layer.size,
            OCI.Digest.compute(embedded, algorithm: layer.digest.algorithm) == layer.digest
        {
            return embedded
        }
        return try await store.fetchVerified(layer).collect(limit: maxBlob)
    }

    /// Reads one `.sig`/`.att`-style layer: the blob plus cosign's annotations.
    static func object(from layer: Descriptor, layout: SignedObject.Layout, in store: any ContentStore) async throws -> SignedObject {
        var o = SignedObject(layout: layout, location: layer.digest.description)
        let annotations = layer.annotations ?? [:]
        o.declaredPredicateType = annotations[predicateTypeAnnotation]
        if let pem = annotations[certificateAnnotation] {
            o.certificates = Data.certificatesDER(pem: pem) + Data.certificatesDER(pem: annotations[chainAnnotation] ?? "")
            if o.certificates.isEmpty { o.problem = "\(certificateAnnotation) is not a PEM certificate" }
        }
        if let rekor = annotations[rekorBundleAnnotation] {
            do {
                o.tlogEntries = [try TransparencyLogEntry(cosignAnnotation: Data(rekor.utf8), source: "\(rekorBundleAnnotation) of \(layer.digest)")]
            } catch let e as TrustError {
                o.problem = e.reason
            }
        }
        let blob: Data
        do {
            blob = try await fetchSmall(layer, in: store)
        } catch let e as TrustError {
            o.problem = e.reason
            return o
        }
        switch layer.mediaType {
        case MediaType.cosignSimpleSigning:
            guard let b64 = annotations[SimpleSigning.signatureAnnotation], let sig = Data(base64Encoded: b64) else {
                o.problem = o.problem ?? "layer has no valid \(SimpleSigning.signatureAnnotation) annotation"
                return o
            }
            o.content = .simpleSigning(payload: blob, signature: sig)
        case DSSEEnvelope.mediaType, "application/vnd.in-toto+json":
            do {
                o.content = .dsse(try DSSEEnvelope(json: blob, source: "envelope \(layer.digest)"))
            } catch let e as TrustError {
                o.problem = e.reason
            }
        default:
            o.problem = "layer media type \(layer.mediaType) holds no signature Warden reads"
        }
        return o
    }
}
