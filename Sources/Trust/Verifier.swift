import Crypto
import Foundation
import OCI

/// Who may sign: a public key, or certificates chaining to given roots with a matching identity; optionally with a
/// transparency-log requirement (a signed entry timestamp from one of `rekorKeys`).
public struct Authority: Sendable {
    public enum Kind: Sendable {
        case key(VerificationKey)
        case certificates(CertificateAuthorities, identities: [IdentityMatcher])
    }
    public var name: String
    public var kind: Kind
    /// When non-empty, a signature counts only with a transparency-log entry whose SET one of these keys signed.
    public var rekorKeys: [VerificationKey]

    public init(name: String, kind: Kind, rekorKeys: [VerificationKey] = []) {
        self.name = name
        self.kind = kind
        self.rekorKeys = rekorKeys
    }
}

/// The outcome of checking one signature or attestation.
public struct SignatureCheck: Sendable, Codable, Equatable {
    public var layout: String
    public var location: String
    /// `signature` or `attestation`.
    public var kind: String
    public var predicateType: String?
    /// The authority that verified it.
    public var authority: String?
    /// The identity the signature claims: the certificate's subject and issuer, or the signed docker-reference.
    public var identity: String?
    public var verified: Bool
    public var reason: String?
    /// Seconds since the epoch at which a transparency log integrated it, when a SET verified.
    public var integratedTime: Int64?
}

public enum SignatureVerifier {
    /// Checks one attached object against `authorities` (the first that verifies it wins). `manifest` is the
    /// subject's manifest bytes, needed for bundle message signatures.
    public static func check(
        _ o: SignedObject, subject: Descriptor, manifest: Data?, authorities: [Authority], now: Date = Date()
    ) async -> SignatureCheck {
        var result = SignatureCheck(
            layout: o.layout.rawValue, location: o.location, kind: o.isSignature ? "signature" : "attestation",
            predicateType: o.statement?.predicateType ?? o.declaredPredicateType, verified: false)
        if o.isSignature, result.predicateType == InTotoStatement.cosignSignPredicate { result.predicateType = nil }
        if let problem = o.problem {
            result.reason = problem
            return result
        }
        var reasons: [String] = []
        for authority in authorities {
            switch await check(o, subject: subject, manifest: manifest, authority: authority, now: now) {
            case .success(let (identity, time)):
                result.verified = true
                result.authority = authority.name
                result.identity = identity
                result.integratedTime = time
                result.reason = nil
                return result
            case .failure(let e):
                reasons.append(authorities.count > 1 ? "\(authority.name): \(e.reason)" : e.reason)
            }
        }
        result.reason = reasons.isEmpty ? "no authority to verify against" : reasons.joined(separator: "; ")
        return result
    }

    static func check(
        _ o: SignedObject, subject: Descriptor, manifest: Data?, authority: Authority, now: Date
    ) async -> Result<(String?, Int64?), TrustError> {
        do {
            guard let content = o.content else { throw TrustError(.malformed, o.problem ?? "unreadable") }
            let (signed, signatures) = try signedBytes(content, manifest: manifest)
            // Transparency log first: its integrated time is the moment certificates must have been valid.
            var integrated: Int64?
            if !authority.rekorKeys.isEmpty {
                let payloadHash = SHA256.hash(data: signed).hexString
                let sigB64 = signatures.map { $0.base64EncodedString() }
                let entry = o.tlogEntries.first { e in
                    guard e.verifySET(keys: authority.rekorKeys) else { return false }
                    // The entry must be about this signature: its body names the signed payload's hash or the signature.
                    let body = String(decoding: e.canonicalizedBody, as: UTF8.self)
                    return body.contains(payloadHash) || sigB64.contains { body.contains($0) }
                }
                guard let entry else {
                    throw TrustError(
                        .malformed,
                        o.tlogEntries.isEmpty
                            ? "no transparency log entry (required by \(authority.name))"
                            : "no transparency log entry with a signed entry timestamp from the given Rekor key that covers this signature")
                }
                integrated = entry.integratedTime
            }
            let key: VerificationKey
            var identity: String?
            switch authority.kind {
            case .key(let k):
                key = k
            case .certificates(let cas, let matchers):
                guard let leaf = o.certificates.first else { throw TrustError(.malformed, "signed with a key, not a certificate") }
                let time = integrated.map { Date(timeIntervalSince1970: TimeInterval($0)) } ?? now
                let (claimed, certKey) = try await cas.verify(leafDER: leaf, chainDERs: Array(o.certificates.dropFirst()), at: time)
                guard matchers.isEmpty || matchers.contains(where: { $0.matches(claimed) }) else {
                    throw TrustError(
                        .malformed, "certificate identity \(claimed) matches none of: \(matchers.map(\.description).joined(separator: " | "))")
                }
                key = certKey
                identity = claimed.description
            }
            guard signatures.contains(where: { key.isValid(signature: $0, for: signed) }) else {
                throw TrustError(.malformed, "signature does not verify with \(authority.name)")
            }
            let bound = try binding(content, subject: subject, manifest: manifest)
            return .success((identity ?? bound, integrated))
        } catch let e as TrustError {
            return .failure(e)
        } catch {
            return .failure(TrustError(.malformed, "\(error)"))
        }
    }

    /// The bytes a signature covers and the signatures over them.
    static func signedBytes(_ content: SignedObject.Content, manifest: Data?) throws -> (Data, [Data]) {
        switch content {
        case .simpleSigning(let payload, let signature): return (payload, [signature])
        case .dsse(let env): return (env.pae, env.signatures.map(\.sig))
        case .messageSignature(_, _, let signature):
            // A message signature signs the subject's manifest bytes themselves.
            guard let manifest else { throw TrustError(.malformed, "the subject manifest is needed to check a message signature") }
            return (manifest, [signature])
        }
    }

    /// Checks that the signed content names `subject`; returns the reference it claims, if any.
    static func binding(_ content: SignedObject.Content, subject: Descriptor, manifest: Data?) throws -> String? {
        switch content {
        case .simpleSigning(let payload, _):
            guard let parsed = try? JSONDecoder().decode(SimpleSigning.Payload.self, from: payload) else {
                throw TrustError(.malformed, "signed payload is not a simple-signing document")
            }
            guard parsed.critical.type == SimpleSigning.signatureType else {
                throw TrustError(.malformed, "signed payload has type \"\(parsed.critical.type)\", not \"\(SimpleSigning.signatureType)\"")
            }
            guard parsed.critical.image.dockerManifestDigest == subject.digest.description else {
                throw TrustError(.malformed, "signature is for \(parsed.critical.image.dockerManifestDigest), not \(subject.digest)")
            }
            return parsed.critical.identity?.dockerReference
        case .dsse(let env):
            guard env.payloadType == DSSEEnvelope.inTotoPayloadType else {
                throw TrustError(.malformed, "envelope payload type is \"\(env.payloadType)\", not \(DSSEEnvelope.inTotoPayloadType)")
            }
            let statement = try InTotoStatement(json: env.payload, source: "signed statement")
            guard statement.binds(subject.digest) else {
                let names = statement.subjects.map { s in s.digest.map { "\($0.key):\($0.value)" }.joined(separator: ",") }
                throw TrustError(.malformed, "statement subjects [\(names.joined(separator: "; "))] do not include \(subject.digest)")
            }
            return statement.subjects.first?.name
        case .messageSignature(let algorithm, let digest, _):
            if let digest, let manifest, algorithm.isEmpty || algorithm.uppercased() == "SHA2_256" {
                guard digest == Data(SHA256.hash(data: manifest)) else {
                    throw TrustError(.malformed, "message digest sha256:\(digest.hexString) is not \(subject.digest)")
                }
            }
            return nil
        }
    }
}
