import Foundation
import Testing
import _CryptoExtras

@testable import Trust

/// Malformed RSA keys are errors, never a crash (swift-crypto frees a refused key twice; Warden never hands it one).
@Suite struct RSAKeyTests {
    static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        let n = content.count
        let length: [UInt8] = n < 128 ? [UInt8(n)] : n < 256 ? [0x81, UInt8(n)] : [0x82, UInt8(n >> 8), UInt8(n & 0xFF)]
        return [tag] + length + content
    }
    static let rsaOID: [UInt8] = tlv(0x06, [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01])
    static let null: [UInt8] = [0x05, 0x00]
    static func spki(n: [UInt8], e: [UInt8], params: [UInt8] = null) -> [UInt8] {
        let inner = tlv(0x30, tlv(0x02, n) + tlv(0x02, e))
        return tlv(0x30, tlv(0x30, rsaOID + params) + tlv(0x03, [0] + inner))
    }
    static let goodModulus: [UInt8] = [0x00] + [0xC1] + [UInt8](repeating: 0x5A, count: 254) + [0x01]  // 2048 bits, odd
    static let exponent: [UInt8] = [0x01, 0x00, 0x01]

    static let malformed: [([UInt8], String)] = [
        (spki(n: [0x00] + [0xC1] + [UInt8](repeating: 0x5A, count: 255), e: exponent), "RSA modulus of 2048 bits is not usable"),  // even
        (spki(n: [0x01, 0x01], e: exponent), "RSA modulus of 9 bits is not usable"),
        (spki(n: [0xC1] + [UInt8](repeating: 0x5A, count: 255), e: exponent), "RSA modulus is not a minimal positive integer"),  // negative
        (spki(n: [0x00, 0x01] + [UInt8](repeating: 0x5A, count: 255), e: exponent), "RSA modulus is not a minimal positive integer"),
        (spki(n: goodModulus, e: [0x02]), "RSA exponent is not usable"),
        (spki(n: goodModulus, e: [0x01, 0x00, 0x00, 0x00, 0x00, 0x01]), "RSA exponent is not usable"),  // 41 bits
        (spki(n: goodModulus, e: exponent, params: []), "RSA key parameters must be NULL"),
        (tlv(0x30, tlv(0x30, rsaOID + null) + tlv(0x03, [0, 0x30, 0x00])), "RSA key is not a pair of integers"),
        (tlv(0x30, tlv(0x30, rsaOID + null) + tlv(0x03, [7, 0x30, 0x00])), "RSA key bit string is malformed"),
        (tlv(0x30, tlv(0x02, [0x02]) + tlv(0x02, exponent)), "RSA modulus of 2 bits is not usable"),  // PKCS#1 form
    ]

    @Test(arguments: malformed) func malformedRSAKeysAreErrors(_ der: [UInt8], _ reason: String) {
        // Many times: the double free this guards against shows up only now and then.
        for _ in 0..<50 {
            #expect {
                try loadVerificationKey(der: Data(der), source: "k.pub")
            } throws: { ($0 as? TrustError)?.reason == "k.pub: \(reason)" }
        }
    }

    @Test func wellFormedRSAKeysStillLoad() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        if case .rsa = try loadVerificationKey(der: key.publicKey.derRepresentation, source: "k.pub") {
        } else {
            Issue.record("an RSA SPKI did not load as RSA")
        }
        if case .rsa = try loadVerificationKey(der: key.publicKey.pkcs1DERRepresentation, source: "k.pub") {
        } else {
            Issue.record("a PKCS#1 RSA key did not load as RSA")
        }
        #expect(RSAKeyCheck.classify(Self.spki(n: Self.goodModulus, e: Self.exponent)).isValid)
    }

    /// A certificate whose RSA key is malformed is refused before swift-certificates decodes it.
    @Test func certificatesWithMalformedRSAKeysAreErrors() {
        let bad = Self.spki(n: [0x01, 0x01], e: Self.exponent)
        let sigAlg = Self.tlv(0x30, Self.tlv(0x06, [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B]) + Self.null)
        let name = Self.tlv(0x30, [])
        let validity = Self.tlv(0x30, Self.tlv(0x17, Array("250101000000Z".utf8)) + Self.tlv(0x17, Array("350101000000Z".utf8)))
        let tbs = Self.tlv(0x30, Self.tlv(0xA0, Self.tlv(0x02, [2])) + Self.tlv(0x02, [1]) + sigAlg + name + validity + name + bad)
        let cert = Self.tlv(0x30, tbs + sigAlg + Self.tlv(0x03, [0, 1, 2, 3]))
        for _ in 0..<50 {
            #expect { try RSAKeyCheck.certificate(cert) } throws: {
                ($0 as? TrustError)?.reason == "certificate key: RSA modulus of 9 bits is not usable"
            }
        }
        #expect(RSAKeyCheck.subjectPublicKeyInfo(cert) == bad)
    }
}

extension RSAKeyCheck.Kind {
    var isValid: Bool { if case .valid = self { true } else { false } }
}
