import Crypto
import Foundation
import _CryptoExtras

/// An error of the Trust module: a stable code and a reason that names the input.
public struct TrustError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The error's code: extensible (a new code is a new static member), compared by value; errors compare
    /// equal when their codes do.
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        public static let invalidKey = Code(rawValue: "invalidKey")
        public static let wrongPassword = Code(rawValue: "wrongPassword")
        public static let unsupported = Code(rawValue: "unsupported")
        public static let io = Code(rawValue: "io")
        /// A document (envelope, statement, bundle, policy) that does not parse or breaks its format's rules.
        public static let malformed = Code(rawValue: "malformed")
    }
    public var code: Code
    public var reason: String
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }
    public var description: String { reason }

    public static func == (a: TrustError, b: TrustError) -> Bool { a.code == b.code }
}

/// One PEM block.
public struct PEMBlock: Sendable, Equatable {
    public var label: String
    public var der: Data

    public init(label: String, der: Data) {
        self.label = label
        self.der = der
    }

    /// Parses the first PEM block of `text`; `source` names the input in errors.
    public init(parsing text: String, source: String) throws {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN ") && $0.hasSuffix("-----") }) else {
            throw TrustError(.invalidKey, "\(source): no PEM block (expected a line like -----BEGIN PUBLIC KEY-----)")
        }
        let label = String(lines[begin].dropFirst(11).dropLast(5))
        guard let end = lines[begin...].firstIndex(of: "-----END \(label)-----") else {
            throw TrustError(.invalidKey, "\(source): the PEM block \"\(label)\" that starts on line \(begin + 1) has no END line")
        }
        let body = lines[(begin + 1)..<end].filter { !$0.contains(":") }.joined()
        guard let der = Data(base64Encoded: body) else {
            throw TrustError(.invalidKey, "\(source): the PEM block \"\(label)\" (lines \(begin + 2)-\(end)) is not valid base64")
        }
        self.label = label
        self.der = der
    }

    public var text: String {
        let b64 = der.base64EncodedString()
        var lines: [String] = []
        var i = b64.startIndex
        while i < b64.endIndex {
            let j = b64.index(i, offsetBy: 64, limitedBy: b64.endIndex) ?? b64.endIndex
            lines.append(String(b64[i..<j]))
            i = j
        }
        return "-----BEGIN \(label)-----\n" + lines.joined(separator: "\n") + "\n-----END \(label)-----\n"
    }
}

/// Cosign's encrypted private key file: scrypt-derived key, NaCl secretbox over the PKCS#8 DER of an ECDSA P-256
/// key, in a JSON document inside a PEM block labelled `ENCRYPTED SIGSTORE PRIVATE KEY` (or, from older cosign
/// and containers/image, `ENCRYPTED COSIGN PRIVATE KEY`).
public enum CosignKeyFile {
    public static let label = "ENCRYPTED SIGSTORE PRIVATE KEY"
    public static let legacyLabel = "ENCRYPTED COSIGN PRIVATE KEY"
    /// cosign's parameters: N = 32768 (2^15), r = 8, p = 1.
    public static let defaultScrypt = (n: 32768, r: 8, p: 1)

    struct Document: Codable {
        struct KDF: Codable {
            struct Params: Codable {
                var N: Int
                var r: Int
                var p: Int
            }
            var name: String
            var params: Params
            var salt: String
        }
        struct Cipher: Codable {
            var name: String
            var nonce: String
        }
        var kdf: KDF
        var cipher: Cipher
        var ciphertext: String
    }

    /// Encrypts `key` with `password` (which may be empty) and returns the PEM text.
    public static func encrypt(_ key: P256.Signing.PrivateKey, password: Data, scryptN: Int = defaultScrypt.n) throws -> String {
        var salt = [UInt8](repeating: 0, count: 32)
        var nonce = [UInt8](repeating: 0, count: SecretBox.nonceSize)
        var rng = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = rng.next() }
        for i in nonce.indices { nonce[i] = rng.next() }
        let derived = try deriveKey(password: password, salt: salt, n: scryptN, r: defaultScrypt.r, p: defaultScrypt.p)
        let sealed = SecretBox.seal(Array(key.derRepresentation), nonce: nonce, key: derived)
        let doc = Document(
            kdf: .init(name: "scrypt", params: .init(N: scryptN, r: defaultScrypt.r, p: defaultScrypt.p), salt: Data(salt).base64EncodedString()),
            cipher: .init(name: "nacl/secretbox", nonce: Data(nonce).base64EncodedString()),
            ciphertext: Data(sealed).base64EncodedString())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return PEMBlock(label: label, der: try encoder.encode(doc)).text
    }

    /// Decrypts a cosign key file; a wrong password is a `wrongPassword` error, malformed input an `invalidKey`
    /// error naming the field.
    public static func decrypt(_ text: String, password: Data, source: String) throws -> P256.Signing.PrivateKey {
        let block = try PEMBlock(parsing: text, source: source)
        guard block.label == label || block.label == legacyLabel else {
            throw TrustError(.invalidKey, "\(source): a \"\(block.label)\" PEM block is not an encrypted cosign key (\(label))")
        }
        let doc: Document
        do {
            doc = try JSONDecoder().decode(Document.self, from: block.der)
        } catch {
            throw TrustError(.invalidKey, "\(source): the encrypted key document is malformed: \(error)")
        }
        guard doc.kdf.name == "scrypt" else {
            throw TrustError(.unsupported, "\(source): key derivation \"\(doc.kdf.name)\" is not supported (scrypt is)")
        }
        guard doc.cipher.name == "nacl/secretbox" else {
            throw TrustError(.unsupported, "\(source): cipher \"\(doc.cipher.name)\" is not supported (nacl/secretbox is)")
        }
        let p = doc.kdf.params
        guard p.N > 1, p.N & (p.N - 1) == 0, p.N <= 1 << 20, (1...32).contains(p.r), (1...16).contains(p.p) else {
            throw TrustError(.invalidKey, "\(source): scrypt parameters N=\(p.N) r=\(p.r) p=\(p.p) are out of range (N a power of two up to 2^20)")
        }
        guard let salt = Data(base64Encoded: doc.kdf.salt), let nonce = Data(base64Encoded: doc.cipher.nonce), nonce.count == SecretBox.nonceSize,
            let sealed = Data(base64Encoded: doc.ciphertext)
        else {
            throw TrustError(.invalidKey, "\(source): salt, nonce (24 bytes) or ciphertext is not valid base64")
        }
        let derived = try deriveKey(password: password, salt: Array(salt), n: p.N, r: p.r, p: p.p)
        guard let der = SecretBox.open(Array(sealed), nonce: Array(nonce), key: derived) else {
            throw TrustError(.wrongPassword, "\(source): wrong password (the key could not be decrypted)")
        }
        do {
            return try P256.Signing.PrivateKey(derRepresentation: der)
        } catch {
            throw TrustError(.unsupported, "\(source): the decrypted key is not an ECDSA P-256 key in PKCS#8 DER")
        }
    }

    static func deriveKey(password: Data, salt: [UInt8], n: Int, r: Int, p: Int) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(
            from: password, salt: salt, outputByteCount: 32, rounds: n, blockSize: r, parallelism: p, maxMemory: 256 << 20)
        return key.withUnsafeBytes { Array($0) }
    }
}

/// A PEM public key (`PUBLIC KEY`, PKIX) for P-256.
public func publicKeyPEM(_ key: P256.Signing.PublicKey) -> String { key.pemRepresentation + "\n" }

/// Reads a signing key: a cosign-format encrypted key (the password is asked for only then), or an unencrypted
/// PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) ECDSA P-256 key.
public func loadSigningKey(_ text: String, source: String, password: () throws -> Data) throws -> P256.Signing.PrivateKey {
    let block = try PEMBlock(parsing: text, source: source)
    switch block.label {
    case CosignKeyFile.label, CosignKeyFile.legacyLabel:
        return try CosignKeyFile.decrypt(text, password: try password(), source: source)
    case "PRIVATE KEY", "EC PRIVATE KEY":
        do {
            return try P256.Signing.PrivateKey(derRepresentation: block.der)
        } catch {
            throw TrustError(.unsupported, "\(source): not an ECDSA P-256 private key (other key types are not supported for signing yet)")
        }
    default:
        throw TrustError(.invalidKey, "\(source): a \"\(block.label)\" PEM block is not a private key")
    }
}
