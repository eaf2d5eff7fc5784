import Crypto
import Foundation
import _CryptoExtras

/// A public key that verifies signatures: ECDSA (P-256/SHA-256, P-384/SHA-384, P-521/SHA-512), Ed25519, or RSA
/// (PKCS#1 v1.5 or PSS with SHA-256, at least 2048 bits) — the key types cosign accepts.
public enum VerificationKey: @unchecked Sendable {
    case p256(P256.Signing.PublicKey)
    case p384(P384.Signing.PublicKey)
    case p521(P521.Signing.PublicKey)
    case ed25519(Curve25519.Signing.PublicKey)
    case rsa(_RSA.Signing.PublicKey)

    public var algorithm: String {
        switch self {
        case .p256: "ecdsa-p256-sha256"
        case .p384: "ecdsa-p384-sha384"
        case .p521: "ecdsa-p521-sha512"
        case .ed25519: "ed25519"
        case .rsa: "rsa-sha256"
        }
    }

    /// Whether `signature` (DER for ECDSA, raw for Ed25519 and RSA) signs `payload`.
    public func isValid(signature: Data, for payload: Data) -> Bool {
        switch self {
        case .p256(let k):
            guard let s = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: payload)
        case .p384(let k):
            guard let s = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: payload)
        case .p521(let k):
            guard let s = try? P521.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: payload)
        case .ed25519(let k):
            return k.isValidSignature(signature, for: payload)
        case .rsa(let k):
            let s = _RSA.Signing.RSASignature(rawRepresentation: signature)
            let digest = SHA256.hash(data: payload)
            return k.isValidSignature(s, for: digest, padding: .insecurePKCS1v1_5) || k.isValidSignature(s, for: digest, padding: .PSS)
        }
    }
}

/// SubjectPublicKeyInfo prefix of an Ed25519 key (OID 1.3.101.112), followed by the 32 key bytes.
private let ed25519SPKIPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]

/// Reads a PEM `PUBLIC KEY` (PKIX) of any supported type.
public func loadVerificationKey(_ text: String, source: String) throws -> VerificationKey {
    let block = try PEMBlock(parsing: text, source: source)
    guard block.label == "PUBLIC KEY" || block.label == "RSA PUBLIC KEY" else {
        throw TrustError(.invalidKey, "\(source): expected a PUBLIC KEY PEM block, found \"\(block.label)\"")
    }
    return try loadVerificationKey(der: block.der, source: source)
}

/// Reads a DER SubjectPublicKeyInfo of any supported type.
public func loadVerificationKey(der: Data, source: String) throws -> VerificationKey {
    if let k = try? P256.Signing.PublicKey(derRepresentation: der) { return .p256(k) }
    if let k = try? P384.Signing.PublicKey(derRepresentation: der) { return .p384(k) }
    if let k = try? P521.Signing.PublicKey(derRepresentation: der) { return .p521(k) }
    if der.count == 44, Array(der.prefix(12)) == ed25519SPKIPrefix, let k = try? Curve25519.Signing.PublicKey(rawRepresentation: der.suffix(32)) {
        return .ed25519(k)
    }
    switch RSAKeyCheck.classify(Array(der)) {
    case .valid:
        if let k = try? _RSA.Signing.PublicKey(derRepresentation: der) { return .rsa(k) }
    case .invalid(let why): throw TrustError(.invalidKey, "\(source): \(why)")
    case .notRSA: break
    }
    throw TrustError(
        .unsupported, "\(source): unsupported public key (ECDSA P-256/P-384/P-521, Ed25519 and RSA of at least 2048 bits are supported)")
}
