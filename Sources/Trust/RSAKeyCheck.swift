import SwiftASN1
import X509

/// Structural checks on RSA public keys before BoringSSL sees them.
///
/// swift-crypto 3.12's `_RSA.Signing.PublicKey(derRepresentation:)` frees its key twice when BoringSSL refuses
/// the bytes (its error path frees the key that its deinit frees again), which aborts the process at random. A
/// malformed key file, certificate or bundle must be an error, never a crash; so every RSA key is checked here
/// against what BoringSSL's parser requires (DER SubjectPublicKeyInfo with rsaEncryption and NULL parameters, or
/// PKCS#1 RSAPublicKey; a positive odd modulus of 512 to 16,384 bits; an odd exponent of 2 to 33 bits) and only
/// keys that pass are handed to it. swift-certificates decodes certificate keys the same way, so certificates are
/// checked before they are decoded.
enum RSAKeyCheck {
    static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 1, 1]

    enum Kind {
        /// Not an RSA key (another algorithm, or not a key at all): other parsers decide.
        case notRSA
        case valid
        case invalid(String)
    }

    /// Classifies DER bytes that may be a SubjectPublicKeyInfo or a PKCS#1 RSAPublicKey.
    static func classify(_ der: [UInt8]) -> Kind {
        guard let root = try? DER.parse(der), root.identifier == .sequence, case .constructed(let children) = root.content else {
            return .notRSA
        }
        let items = Array(children)
        // PKCS#1: SEQUENCE { INTEGER n, INTEGER e }.
        if items.count == 2, items.allSatisfy({ $0.identifier == .integer }) {
            return check(modulus: items[0], exponent: items[1])
        }
        // SPKI: SEQUENCE { SEQUENCE { OID, params }, BIT STRING }.
        guard items.count == 2, items[0].identifier == .sequence, items[1].identifier == .bitString,
            case .constructed(let alg) = items[0].content, let oidNode = Array(alg).first,
            let oid = try? ASN1ObjectIdentifier(derEncoded: oidNode)
        else { return .notRSA }
        guard oid == rsaEncryption else { return .notRSA }
        let params = Array(alg).dropFirst()
        guard params.count == 1, params.first?.identifier == .null else { return .invalid("RSA key parameters must be NULL") }
        guard case .primitive(let bits) = items[1].content, bits.first == 0 else { return .invalid("RSA key bit string is malformed") }
        guard let inner = try? DER.parse(Array(bits.dropFirst())), inner.identifier == .sequence, case .constructed(let nums) = inner.content
        else { return .invalid("RSA key is not an RSAPublicKey sequence") }
        let values = Array(nums)
        guard values.count == 2, values.allSatisfy({ $0.identifier == .integer }) else {
            return .invalid("RSA key is not a pair of integers")
        }
        return check(modulus: values[0], exponent: values[1])
    }

    static func check(modulus: ASN1Node, exponent: ASN1Node) -> Kind {
        guard let n = unsigned(modulus) else { return .invalid("RSA modulus is not a minimal positive integer") }
        guard let e = unsigned(exponent) else { return .invalid("RSA exponent is not a minimal positive integer") }
        let nBits = bitCount(n)
        guard nBits >= 512, nBits <= 16_384, n.last! & 1 == 1 else { return .invalid("RSA modulus of \(nBits) bits is not usable") }
        let eBits = bitCount(e)
        guard eBits >= 2, eBits <= 33, e.last! & 1 == 1 else { return .invalid("RSA exponent is not usable") }
        return .valid
    }

    /// The magnitude bytes of a DER INTEGER that is minimally encoded and positive, or nil.
    static func unsigned(_ node: ASN1Node) -> ArraySlice<UInt8>? {
        guard case .primitive(let bytes) = node.content, let first = bytes.first else { return nil }
        if first & 0x80 != 0 { return nil }  // negative
        if first == 0 {
            guard bytes.count > 1, bytes[bytes.startIndex + 1] & 0x80 != 0 else { return nil }  // not minimal (or zero)
            return bytes.dropFirst()
        }
        return bytes
    }

    static func bitCount(_ magnitude: ArraySlice<UInt8>) -> Int {
        guard let first = magnitude.first, first != 0 else { return 0 }
        return (magnitude.count - 1) * 8 + (8 - first.leadingZeroBitCount)
    }

    /// Decodes a certificate after checking its key when that key is RSA.
    static func certificate(_ der: [UInt8]) throws -> Certificate {
        if let spki = subjectPublicKeyInfo(der), case .invalid(let why) = classify(spki) {
            throw TrustError(.malformed, "certificate key: \(why)")
        }
        return try Certificate(derEncoded: der)
    }

    /// The DER of a certificate's SubjectPublicKeyInfo: Certificate → tbsCertificate → the element after subject.
    static func subjectPublicKeyInfo(_ der: [UInt8]) -> [UInt8]? {
        guard let cert = try? DER.parse(der), case .constructed(let top) = cert.content, let tbs = Array(top).first,
            case .constructed(let fields) = tbs.content
        else { return nil }
        var items = Array(fields)
        // An explicit [0] version comes first when present.
        if let first = items.first, first.identifier.tagClass == .contextSpecific { items.removeFirst() }
        // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo.
        guard items.count > 5, items[5].identifier == .sequence else { return nil }
        return Array(items[5].encodedBytes)
    }
}
