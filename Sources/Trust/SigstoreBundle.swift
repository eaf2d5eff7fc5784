import Crypto
import Foundation
import OCI

/// An entry of a transparency log (Rekor) as carried in a bundle: enough to verify its signed entry timestamp
/// (SET) offline.
public struct TransparencyLogEntry: Sendable, Equatable {
    public var logIndex: Int64
    /// SHA-256 of the log's public key (DER), as raw bytes.
    public var logID: Data
    public var kind: String
    public var kindVersion: String
    public var integratedTime: Int64
    public var signedEntryTimestamp: Data?
    public var canonicalizedBody: Data

    public init(
        logIndex: Int64, logID: Data, kind: String = "", kindVersion: String = "", integratedTime: Int64, signedEntryTimestamp: Data?,
        canonicalizedBody: Data
    ) {
        self.logIndex = logIndex
        self.logID = logID
        self.kind = kind
        self.kindVersion = kindVersion
        self.integratedTime = integratedTime
        self.signedEntryTimestamp = signedEntryTimestamp
        self.canonicalizedBody = canonicalizedBody
    }

    /// The bytes Rekor signs for a SET: canonical JSON of body (base64), integratedTime, logID (hex), logIndex.
    public var signedEntryTimestampPayload: Data {
        let body = canonicalizedBody.base64EncodedString()
        let logIDHex = logID.map { String(format: "%02x", $0) }.joined()
        // Keys in lexicographic order, no whitespace: the canonical form Rekor signs.
        let text = "{\"body\":\(jsonString(body)),\"integratedTime\":\(integratedTime),\"logID\":\(jsonString(logIDHex)),\"logIndex\":\(logIndex)}"
        return Data(text.utf8)
    }

    /// Verifies the SET with one of `keys`; the key whose SHA-256 (DER) equals the entry's log ID is tried first.
    public func verifySET(keys: [VerificationKey]) -> Bool {
        guard let set = signedEntryTimestamp else { return false }
        let payload = signedEntryTimestampPayload
        return keys.contains { $0.isValid(signature: set, for: payload) }
    }

    /// Parses cosign's legacy `dev.sigstore.cosign/bundle` annotation: {SignedEntryTimestamp, Payload{body,...}}.
    public init(cosignAnnotation json: Data, source: String) throws {
        guard let o = try? JSONSerialization.jsonObject(with: json) as? [String: Any], let p = o["Payload"] as? [String: Any] else {
            throw TrustError(.malformed, "\(source): the Rekor bundle annotation is not {SignedEntryTimestamp, Payload}")
        }
        guard let setB64 = o["SignedEntryTimestamp"] as? String, let set = Data(lenientBase64: setB64),
            let bodyB64 = p["body"] as? String, let body = Data(lenientBase64: bodyB64),
            let time = int64(p["integratedTime"]), let index = int64(p["logIndex"]), let logIDHex = p["logID"] as? String,
            let logID = Data(hex: logIDHex)
        else {
            throw TrustError(.malformed, "\(source): the Rekor bundle annotation lacks SignedEntryTimestamp, body, integratedTime, logIndex or logID")
        }
        self.init(logIndex: index, logID: logID, integratedTime: time, signedEntryTimestamp: set, canonicalizedBody: body)
    }
}

/// A sigstore bundle (v0.1, v0.2 or v0.3): verification material plus a message signature or a DSSE envelope.
public struct SigstoreBundle: Sendable, Equatable {
    public static let mediaTypeV01 = "application/vnd.dev.sigstore.bundle+json;version=0.1"
    public static let mediaTypeV02 = "application/vnd.dev.sigstore.bundle+json;version=0.2"
    public static let mediaTypeV03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
    public static let mediaTypeV03Legacy = "application/vnd.dev.sigstore.bundle+json;version=0.3"
    public static let mediaTypes = [mediaTypeV01, mediaTypeV02, mediaTypeV03, mediaTypeV03Legacy]

    public static func isBundleMediaType(_ t: String?) -> Bool {
        guard let t else { return false }
        return mediaTypes.contains(t.replacingOccurrences(of: " ", with: ""))
    }

    public enum Material: Sendable, Equatable {
        case publicKey(hint: String)
        /// Leaf first, then the rest of the chain (DER).
        case certificates([Data])
    }

    public enum Content: Sendable, Equatable {
        case messageSignature(algorithm: String, digest: Data?, signature: Data)
        case dsse(DSSEEnvelope)
    }

    public var mediaType: String
    public var material: Material
    public var tlogEntries: [TransparencyLogEntry]
    public var content: Content

    public init(mediaType: String = mediaTypeV03, material: Material, tlogEntries: [TransparencyLogEntry] = [], content: Content) {
        self.mediaType = mediaType
        self.material = material
        self.tlogEntries = tlogEntries
        self.content = content
    }

    /// The bundle in the protobuf JSON mapping (camelCase, base64 bytes, int64 as strings).
    public func json() -> Data {
        var material: [String: Any] = [:]
        switch self.material {
        case .publicKey(let hint): material["publicKey"] = ["hint": hint]
        case .certificates(let certs):
            if mediaType == Self.mediaTypeV03 || mediaType == Self.mediaTypeV03Legacy, let leaf = certs.first {
                material["certificate"] = ["rawBytes": leaf.base64EncodedString()]
            } else {
                material["x509CertificateChain"] = ["certificates": certs.map { ["rawBytes": $0.base64EncodedString()] }]
            }
        }
        material["tlogEntries"] = tlogEntries.map { e -> [String: Any] in
            var o: [String: Any] = [
                "logIndex": String(e.logIndex), "logId": ["keyId": e.logID.base64EncodedString()],
                "kindVersion": ["kind": e.kind, "version": e.kindVersion], "integratedTime": String(e.integratedTime),
                "canonicalizedBody": e.canonicalizedBody.base64EncodedString(),
            ]
            if let set = e.signedEntryTimestamp { o["inclusionPromise"] = ["signedEntryTimestamp": set.base64EncodedString()] }
            return o
        }
        var object: [String: Any] = ["mediaType": mediaType, "verificationMaterial": material]
        switch content {
        case .messageSignature(let algorithm, let digest, let signature):
            var ms: [String: Any] = ["signature": signature.base64EncodedString()]
            if let digest { ms["messageDigest"] = ["algorithm": algorithm, "digest": digest.base64EncodedString()] }
            object["messageSignature"] = ms
        case .dsse(let env):
            object["dsseEnvelope"] = [
                "payload": env.payload.base64EncodedString(), "payloadType": env.payloadType,
                "signatures": env.signatures.map { ["sig": $0.sig.base64EncodedString(), "keyid": $0.keyid] },
            ]
        }
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }

    /// Parses a bundle; `source` names the input in errors.
    public init(json data: Data, source: String) throws {
        guard let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TrustError(.malformed, "\(source): the sigstore bundle is not a JSON object")
        }
        guard let mediaType = o["mediaType"] as? String else { throw TrustError(.malformed, "\(source): the sigstore bundle has no mediaType") }
        guard Self.isBundleMediaType(mediaType) else {
            throw TrustError(.unsupported, "\(source): bundle media type \"\(mediaType)\" is not one of \(Self.mediaTypes.joined(separator: ", "))")
        }
        guard let vm = o["verificationMaterial"] as? [String: Any] else {
            throw TrustError(.malformed, "\(source): the sigstore bundle has no verificationMaterial")
        }
        if let pk = vm["publicKey"] as? [String: Any] {
            material = .publicKey(hint: pk["hint"] as? String ?? "")
        } else if let cert = vm["certificate"] as? [String: Any] {
            guard let b = cert["rawBytes"] as? String, let der = Data(lenientBase64: b) else {
                throw TrustError(.malformed, "\(source): verificationMaterial.certificate.rawBytes is missing or not base64")
            }
            material = .certificates([der])
        } else if let chain = vm["x509CertificateChain"] as? [String: Any], let certs = chain["certificates"] as? [Any], !certs.isEmpty {
            var ders: [Data] = []
            for (i, c) in certs.enumerated() {
                guard let b = (c as? [String: Any])?["rawBytes"] as? String, let der = Data(lenientBase64: b) else {
                    throw TrustError(.malformed, "\(source): x509CertificateChain.certificates[\(i)].rawBytes is missing or not base64")
                }
                ders.append(der)
            }
            material = .certificates(ders)
        } else {
            throw TrustError(.malformed, "\(source): verificationMaterial has no publicKey, certificate or x509CertificateChain")
        }
        var entries: [TransparencyLogEntry] = []
        for (i, e) in ((vm["tlogEntries"] as? [Any]) ?? []).enumerated() {
            guard let e = e as? [String: Any], let index = int64(e["logIndex"]), let time = int64(e["integratedTime"]),
                let bodyB64 = e["canonicalizedBody"] as? String, let body = Data(lenientBase64: bodyB64)
            else {
                throw TrustError(.malformed, "\(source): tlogEntries[\(i)] lacks logIndex, integratedTime or canonicalizedBody")
            }
            let logID = ((e["logId"] as? [String: Any])?["keyId"] as? String).flatMap { Data(lenientBase64: $0) } ?? Data()
            let kv = e["kindVersion"] as? [String: Any]
            let set = ((e["inclusionPromise"] as? [String: Any])?["signedEntryTimestamp"] as? String).flatMap { Data(lenientBase64: $0) }
            entries.append(
                TransparencyLogEntry(
                    logIndex: index, logID: logID, kind: kv?["kind"] as? String ?? "", kindVersion: kv?["version"] as? String ?? "",
                    integratedTime: time, signedEntryTimestamp: set, canonicalizedBody: body))
        }
        if let ms = o["messageSignature"] as? [String: Any] {
            guard let s = ms["signature"] as? String, let sig = Data(lenientBase64: s) else {
                throw TrustError(.malformed, "\(source): messageSignature.signature is missing or not base64")
            }
            let md = ms["messageDigest"] as? [String: Any]
            content = .messageSignature(
                algorithm: md?["algorithm"] as? String ?? "", digest: (md?["digest"] as? String).flatMap { Data(lenientBase64: $0) }, signature: sig)
        } else if let env = o["dsseEnvelope"] as? [String: Any] {
            content = .dsse(try DSSEEnvelope(object: env, source: "\(source): dsseEnvelope"))
        } else {
            throw TrustError(.malformed, "\(source): the sigstore bundle has neither messageSignature nor dsseEnvelope")
        }
        self.mediaType = mediaType
        self.tlogEntries = entries
    }
}

func int64(_ value: Any?) -> Int64? {
    switch value {
    case let s as String: Int64(s)
    case let n as NSNumber: n.int64Value
    default: nil
    }
}

func jsonString(_ s: String) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
    return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
}

extension Data {
    /// Decodes lowercase or uppercase hex.
    public init?(hex: String) {
        guard hex.count % 2 == 0 else { return nil }
        var out = Data(capacity: hex.count / 2)
        var it = hex.utf8.makeIterator()
        while let a = it.next(), let b = it.next() {
            guard let h = hexValue(a), let l = hexValue(b) else { return nil }
            out.append(h << 4 | l)
        }
        self = out
    }
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case 48...57: c - 48
    case 65...70: c - 55
    case 97...102: c - 87
    default: nil
    }
}
