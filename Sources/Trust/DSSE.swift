import Crypto
import Foundation

/// A DSSE envelope (https://github.com/secure-systems-lab/dsse): a payload, its type, and signatures over the
/// pre-authentication encoding (PAE) of both.
public struct DSSEEnvelope: Sendable, Equatable {
    public struct Signature: Sendable, Equatable {
        public var keyid: String
        public var sig: Data
        public init(keyid: String = "", sig: Data) {
            self.keyid = keyid
            self.sig = sig
        }
    }
    public static let mediaType = "application/vnd.dsse.envelope.v1+json"
    public static let inTotoPayloadType = "application/vnd.in-toto+json"

    public var payloadType: String
    public var payload: Data
    public var signatures: [Signature]

    public init(payloadType: String, payload: Data, signatures: [Signature] = []) {
        self.payloadType = payloadType
        self.payload = payload
        self.signatures = signatures
    }

    /// `DSSEv1 <len(type)> <type> <len(body)> <body>`, lengths as ASCII decimal byte counts.
    public static func pae(payloadType: String, payload: Data) -> Data {
        let type = Data(payloadType.utf8)
        var out = Data("DSSEv1 \(type.count) ".utf8)
        out.append(type)
        out.append(Data(" \(payload.count) ".utf8))
        out.append(payload)
        return out
    }

    public var pae: Data { Self.pae(payloadType: payloadType, payload: payload) }

    /// Signs the payload with an ECDSA P-256 key (DER signature over SHA-256 of the PAE, as cosign does).
    public static func sign(payloadType: String, payload: Data, key: P256.Signing.PrivateKey, keyid: String = "") throws -> DSSEEnvelope {
        var envelope = DSSEEnvelope(payloadType: payloadType, payload: payload)
        envelope.signatures = [Signature(keyid: keyid, sig: try key.signature(for: envelope.pae).derRepresentation)]
        return envelope
    }

    /// Indices of the signatures that `key` verifies.
    public func verifiedSignatures(with key: VerificationKey) -> [Int] {
        let message = pae
        return signatures.indices.filter { key.isValid(signature: signatures[$0].sig, for: message) }
    }

    // MARK: JSON

    /// The envelope as JSON, with the field order DSSE's reference implementations use.
    public func json() -> Data {
        var sigs: [[String: String]] = []
        for s in signatures { sigs.append(["keyid": s.keyid, "sig": s.sig.base64EncodedString()]) }
        let object: [String: Any] = ["payloadType": payloadType, "payload": payload.base64EncodedString(), "signatures": sigs]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }

    /// Parses an envelope; `source` names the input in errors. Base64 fields may be standard or URL-safe, padded or not.
    public init(json data: Data, source: String) throws {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TrustError(.malformed, "\(source): not a JSON object (a DSSE envelope has payloadType, payload and signatures)")
        }
        try self.init(object: object, source: source)
    }

    init(object: [String: Any], source: String) throws {
        guard let type = object["payloadType"] as? String else {
            throw TrustError(.malformed, "\(source): DSSE envelope has no string \"payloadType\"")
        }
        guard let b64 = object["payload"] as? String, let payload = Data(lenientBase64: b64) else {
            throw TrustError(.malformed, "\(source): DSSE envelope \"payload\" is missing or not base64")
        }
        guard let sigs = object["signatures"] as? [Any] else {
            throw TrustError(.malformed, "\(source): DSSE envelope has no \"signatures\" array")
        }
        var signatures: [Signature] = []
        for (i, entry) in sigs.enumerated() {
            guard let s = entry as? [String: Any], let b = s["sig"] as? String, let sig = Data(lenientBase64: b) else {
                throw TrustError(.malformed, "\(source): DSSE signature \(i) has no base64 \"sig\"")
            }
            signatures.append(Signature(keyid: s["keyid"] as? String ?? "", sig: sig))
        }
        self.init(payloadType: type, payload: payload, signatures: signatures)
    }
}

extension Data {
    /// Decodes standard or URL-safe base64, with or without padding (protobuf JSON accepts all four).
    public init?(lenientBase64 text: String) {
        var s = text.trimmingCharacters(in: .whitespacesAndNewlines)
        s = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s.append("=") }
        guard let d = Data(base64Encoded: s) else { return nil }
        self = d
    }
}
