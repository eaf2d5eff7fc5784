import Foundation
import OCI
import OCIRegistry
import Trust
import X509

/// Who must have signed, as a surface was told: a trust policy file, a public key, or certificate authorities with
/// the identities they must have certified (and Rekor keys when a transparency-log entry is required).
public struct AuthoritySpec: Sendable, Equatable {
    public var policy: String?
    public var key: String?
    public var certificateChain: String?
    public var trustedRoot: String?
    public var certificateIdentity: String?
    public var certificateIdentityRegexp: String?
    public var certificateOidcIssuer: String?
    public var certificateOidcIssuerRegexp: String?
    public var rekorKeys: [String] = []

    public init(
        policy: String? = nil, key: String? = nil, certificateChain: String? = nil, trustedRoot: String? = nil, certificateIdentity: String? = nil,
        certificateIdentityRegexp: String? = nil, certificateOidcIssuer: String? = nil, certificateOidcIssuerRegexp: String? = nil,
        rekorKeys: [String] = []
    ) {
        self.policy = policy
        self.key = key
        self.certificateChain = certificateChain
        self.trustedRoot = trustedRoot
        self.certificateIdentity = certificateIdentity
        self.certificateIdentityRegexp = certificateIdentityRegexp
        self.certificateOidcIssuer = certificateOidcIssuer
        self.certificateOidcIssuerRegexp = certificateOidcIssuerRegexp
        self.rekorKeys = rekorKeys
    }
}

/// The verification job's trust policy (`warden verify`, `verify-attestation`, `trust/verify@v1`): the policy file
/// when given, else an ad-hoc policy with one authority built from the key or the certificates. `read(path, what)`
/// reads a file the spec names (`what` is how the surface calls it: `--key`, `key`…), so each surface words its own
/// errors. Errors in the material are `TrustError`s naming the file.
public enum VerificationJob {
    public static func trustPolicy(
        _ spec: AuthoritySpec, attestations: [String] = [], read: (_ path: String, _ what: String) throws -> String
    ) throws -> TrustPolicy {
        if let policy = spec.policy { return try TrustPolicy.load(path: policy) }
        var rekor = try spec.rekorKeys.map { try loadVerificationKey(read($0, "--rekor-key"), source: $0) }
        let authority: Authority
        if let key = spec.key {
            authority = Authority(name: "key \(key)", kind: .key(try loadVerificationKey(read(key, "--key"), source: key)), rekorKeys: rekor)
        } else {
            var roots: [Certificate] = []
            var intermediates: [Certificate] = []
            if let chain = spec.certificateChain {
                for c in try CertificateAuthorities.loadPEM(read(chain, "--certificate-chain"), source: chain) {
                    if c.issuer == c.subject { roots.append(c) } else { intermediates.append(c) }
                }
            }
            if let trustedRoot = spec.trustedRoot {
                let t = try TrustedRoot(json: Data(read(trustedRoot, "--trusted-root").utf8), source: trustedRoot)
                roots += t.authorities.roots
                intermediates += t.authorities.intermediates
                if rekor.isEmpty { rekor = t.tlogKeys }
            }
            guard !roots.isEmpty else { throw TrustError(.malformed, "no self-signed root certificate in --certificate-chain/--trusted-root") }
            let matcher = IdentityMatcher(
                subject: spec.certificateIdentity, subjectRegExp: spec.certificateIdentityRegexp, issuer: spec.certificateOidcIssuer,
                issuerRegExp: spec.certificateOidcIssuerRegexp)
            try matcher.validate(source: "command line")
            guard spec.certificateIdentity != nil || spec.certificateIdentityRegexp != nil else {
                throw TrustError(.malformed, "certificate verification needs --certificate-identity or --certificate-identity-regexp")
            }
            guard spec.certificateOidcIssuer != nil || spec.certificateOidcIssuerRegexp != nil else {
                throw TrustError(.malformed, "certificate verification needs --certificate-oidc-issuer or --certificate-oidc-issuer-regexp")
            }
            authority = Authority(
                name: "certificate", kind: .certificates(CertificateAuthorities(roots: roots, intermediates: intermediates), identities: [matcher]),
                rekorKeys: rekor)
        }
        return ImageVerification.adHocPolicy([authority], attestations: attestations)
    }
}

extension VerificationJob {
    /// Verifies the artifact at `location` against `policy` (`warden verify`, `verify-attestation`,
    /// `trust/verify@v1`): the subject it resolved to and the decision. `signatures: false` evaluates attestation
    /// requirements only; `extraAttestations` adds required predicate types; `exhaustive` looks up and reports
    /// every signature and attestation even when the `.sig` tag already satisfies the policy.
    public static func verify(
        _ location: Location, policy: TrustPolicy, signatures: Bool = true, extraAttestations: [String] = [], exhaustive: Bool = false,
        registries: Registries
    ) async throws -> (subject: Descriptor, decision: PolicyDecision) {
        let store = try registries.store(for: location, create: false)
        let subject = try await store.resolve(location.resolvedReference)
        let decision = try await ImageVerification.verify(
            subject, in: store, repository: location.repositoryName, policy: policy, signatures: signatures,
            extraAttestations: extraAttestations, exhaustive: exhaustive)
        return (subject, decision)
    }

    /// The exit code of a verification outcome (the table in `warden --help`): 0 allowed, 10 no signature, 11
    /// signatures found but not enough verified, 12 refused by the policy.
    public static func exitCode(_ outcome: PolicyDecision.Outcome) -> Int32 {
        switch outcome {
        case .allowed: 0
        case .noSignature: 10
        case .invalid: 11
        case .rejected: 12
        }
    }
}
