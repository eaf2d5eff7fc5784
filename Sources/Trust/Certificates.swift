import Crypto
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

/// Who a certificate was issued to and by which OIDC issuer (Fulcio extensions), as claimed by the certificate.
public struct CertificateIdentity: Sendable, Codable, Equatable, CustomStringConvertible {
    /// Subject alternative names: emails, URIs, DNS names.
    public var subjects: [String]
    /// OIDC issuer (Fulcio extension 1.3.6.1.4.1.57264.1.8, or the older 1.3.6.1.4.1.57264.1.1).
    public var issuer: String?

    public var description: String { (subjects.first ?? "(no subject)") + (issuer.map { " (issuer \($0))" } ?? "") }
}

/// An identity a certificate must carry: subject and issuer each given exactly or as a regular expression
/// (unanchored, as cosign's `--certificate-identity-regexp`; add `^…$` to anchor).
public struct IdentityMatcher: Sendable, Codable, Equatable {
    public var subject: String?
    public var subjectRegExp: String?
    public var issuer: String?
    public var issuerRegExp: String?

    public init(subject: String? = nil, subjectRegExp: String? = nil, issuer: String? = nil, issuerRegExp: String? = nil) {
        self.subject = subject
        self.subjectRegExp = subjectRegExp
        self.issuer = issuer
        self.issuerRegExp = issuerRegExp
    }

    /// Checks that both regular expressions compile.
    public func validate(source: String) throws {
        for (name, pattern) in [("subjectRegExp", subjectRegExp), ("issuerRegExp", issuerRegExp)] {
            if let pattern, (try? NSRegularExpression(pattern: pattern)) == nil {
                throw TrustError(.malformed, "\(source): \(name) \"\(pattern)\" is not a valid regular expression")
            }
        }
    }

    public func matches(_ identity: CertificateIdentity) -> Bool {
        func test(_ value: String?, exact: String?, regexp: String?) -> Bool {
            if let exact, value != exact { return false }
            if let regexp {
                guard let value, let re = try? NSRegularExpression(pattern: regexp) else { return false }
                if re.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) == nil { return false }
            }
            return true
        }
        let subjectOK =
            (subject == nil && subjectRegExp == nil)
            || identity.subjects.contains { test($0, exact: subject, regexp: subjectRegExp) }
        return subjectOK && test(identity.issuer, exact: issuer, regexp: issuerRegExp)
    }

    public var description: String {
        var parts: [String] = []
        if let subject { parts.append("subject \(subject)") }
        if let subjectRegExp { parts.append("subject ~ /\(subjectRegExp)/") }
        if let issuer { parts.append("issuer \(issuer)") }
        if let issuerRegExp { parts.append("issuer ~ /\(issuerRegExp)/") }
        return parts.isEmpty ? "any identity" : parts.joined(separator: ", ")
    }
}

/// Trusted certificate authorities: roots (trust anchors) and optional intermediates.
public struct CertificateAuthorities: Sendable {
    public var roots: [Certificate]
    public var intermediates: [Certificate]

    public init(roots: [Certificate], intermediates: [Certificate] = []) {
        self.roots = roots
        self.intermediates = intermediates
    }

    /// Reads every `CERTIFICATE` block of a PEM bundle.
    public static func loadPEM(_ text: String, source: String) throws -> [Certificate] {
        let docs: [PEMDocument]
        do {
            docs = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw TrustError(.malformed, "\(source): not a PEM certificate bundle (\(error))")
        }
        var certs: [Certificate] = []
        for (i, doc) in docs.enumerated() where doc.discriminator == "CERTIFICATE" {
            do {
                certs.append(try RSAKeyCheck.certificate(doc.derBytes))
            } catch {
                throw TrustError(.malformed, "\(source): certificate \(i + 1) does not parse (\(error))")
            }
        }
        guard !certs.isEmpty else { throw TrustError(.malformed, "\(source): no CERTIFICATE block") }
        return certs
    }

    /// Verifies that `leafDER` chains (through `chainDERs` and the configured intermediates) to one of the roots at
    /// `time`, and returns the identity it claims and its public key.
    public func verify(leafDER: Data, chainDERs: [Data] = [], at time: Date) async throws -> (CertificateIdentity, VerificationKey) {
        let leaf: Certificate
        do {
            leaf = try RSAKeyCheck.certificate(Array(leafDER))
        } catch {
            throw TrustError(.malformed, "signing certificate does not parse (\(error))")
        }
        var intermediates = self.intermediates
        for (i, der) in chainDERs.enumerated() {
            guard let c = try? RSAKeyCheck.certificate(Array(der)) else {
                throw TrustError(.malformed, "certificate \(i + 1) of the chain does not parse")
            }
            // A chain shipped with the signature may add intermediates, never trust anchors.
            if c.issuer != c.subject { intermediates.append(c) }
        }
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            RFC5280Policy(validationTime: time)
            SigningCertificatePolicy()
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
        guard case .validCertificate = result else {
            var reason = "certificate for \(Self.identity(of: leaf)) does not chain to a trusted root at \(time)"
            if case .couldNotValidate(let failures) = result, let first = failures.first {
                reason += ": \(first.policyFailureReason)"
            } else if leaf.extensions.contains(where: { $0.critical && !SigningCertificatePolicy.handled.contains($0.oid) }) {
                reason += ": it has a critical extension Warden does not process"
            }
            throw TrustError(.malformed, reason)
        }
        return (Self.identity(of: leaf), try Self.key(of: leaf))
    }

    static let issuerV1 = try! ASN1ObjectIdentifier(dotRepresentation: "1.3.6.1.4.1.57264.1.1")
    static let issuerV2 = try! ASN1ObjectIdentifier(dotRepresentation: "1.3.6.1.4.1.57264.1.8")

    public static func identity(of cert: Certificate) -> CertificateIdentity {
        var subjects: [String] = []
        if let sans = try? cert.extensions.subjectAlternativeNames {
            for name in sans {
                switch name {
                case .rfc822Name(let s), .uniformResourceIdentifier(let s), .dnsName(let s): subjects.append(s)
                default: break
                }
            }
        }
        var issuer: String?
        if let ext = cert.extensions[oid: issuerV2], let s = try? ASN1UTF8String(derEncoded: ext.value) {
            issuer = String(s)
        } else if let ext = cert.extensions[oid: issuerV1] {
            issuer = String(decoding: ext.value, as: UTF8.self)
        }
        return CertificateIdentity(subjects: subjects, issuer: issuer)
    }

    static func key(of cert: Certificate) throws -> VerificationKey {
        let pk = cert.publicKey
        if let k = P256.Signing.PublicKey(pk) { return .p256(k) }
        if let k = P384.Signing.PublicKey(pk) { return .p384(k) }
        if let k = P521.Signing.PublicKey(pk) { return .p521(k) }
        if let k = Curve25519.Signing.PublicKey(pk) { return .ed25519(k) }
        if let k = _RSA.Signing.PublicKey(pk) { return .rsa(k) }
        throw TrustError(.unsupported, "certificate for \(identity(of: cert)) has an unsupported key type")
    }
}

extension Data {
    /// Parses a PEM certificate (`CERTIFICATE`) to DER; used for cosign's `dev.sigstore.cosign/certificate` annotations.
    static func certificatesDER(pem: String) -> [Data] {
        guard let docs = try? PEMDocument.parseMultiple(pemString: pem) else { return [] }
        return docs.filter { $0.discriminator == "CERTIFICATE" }.map { Data($0.derBytes) }
    }
}

/// The leaf is a code-signing certificate: its subject alternative names (critical in Fulcio's certificates, whose
/// subject is empty) are matched by `IdentityMatcher`, and its extended key usage, when present, allows code signing.
struct SigningCertificatePolicy: VerifierPolicy {
    static let handled: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.subjectAlternativeName, .X509ExtensionID.extendedKeyUsage, .X509ExtensionID.basicConstraints,
        .X509ExtensionID.nameConstraints, .X509ExtensionID.keyUsage,
    ]
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [.X509ExtensionID.subjectAlternativeName, .X509ExtensionID.extendedKeyUsage]

    mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        if let eku = try? chain.leaf.extensions.extendedKeyUsage, !eku.contains(.codeSigning) {
            return .failsToMeetPolicy(reason: "the signing certificate's extended key usage does not include code signing")
        }
        return .meetsPolicy
    }
}
