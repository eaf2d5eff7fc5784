import Crypto
import Foundation
import OCI
import OCITesting
import Testing
import Trust

@Suite struct SimpleSigningTests {
    @Test func signVerifyAndTamperedPayloads() async throws {
        let store = MemoryStore()
        var random = RandomContent(seed: 50)
        let image = try await random.pushImage(to: store, layerSizes: [100])
        let key = P256.Signing.PrivateKey()
        try await SimpleSigning.sign(image.descriptor, in: store, dockerReference: "example.com/app", key: key)
        // A second signature is appended, not substituted; both verify.
        try await SimpleSigning.sign(image.descriptor, in: store, dockerReference: "example.com/app", key: key)
        let results = try await SimpleSigning.verify(image.descriptor, in: store, key: key.publicKey)
        #expect(results.count == 2)
        #expect(results.allSatisfy { $0.verified })
        #expect(results.first?.dockerReference == "example.com/app")

        // An attacker edits the payload (another repository) and keeps the signature: rejected.
        let sigTag = "\(image.digest.tagSchema).sig"
        var m = try #require(try await store.fetchManifest(store.resolve(sigTag)).parsed().imageManifest, "expected an image manifest")
        let original = try await store.fetchVerified(m.layers[0]).collect(limit: 1 << 20)
        let edited = Data(String(decoding: original, as: UTF8.self).replacingOccurrences(of: "example.com/app", with: "evil.com/app").utf8)
        var layer = Descriptor.of(edited, mediaType: MediaType.cosignSimpleSigning)
        layer.annotations = m.layers[0].annotations
        try await store.push(layer, bytes: edited)
        var garbage = Descriptor.of(original, mediaType: MediaType.cosignSimpleSigning)
        garbage.annotations = [SimpleSigning.signatureAnnotation: "%%%not base64"]
        m.layers = [layer, garbage]
        let tampered = try RawManifest.encode(m, mediaType: MediaType.imageManifest)
        try await store.push(tampered)
        try await store.tag(tampered.descriptor, as: sigTag)
        let after = try await SimpleSigning.verify(image.descriptor, in: store, key: key.publicKey)
        #expect(after.map(\.verified) == [false, false])
        #expect(after[0].reason?.contains("does not verify") == true)
        #expect(after[1].reason?.contains("no valid") == true)
    }

    @Test func readsUnencryptedAndEncryptedSigningKeysAndPublicKeys() throws {
        let key = P256.Signing.PrivateKey()
        let pkcs8 = key.pemRepresentation
        #expect(try loadSigningKey(pkcs8, source: "k.pem") { Data() }.publicKey.rawRepresentation == key.publicKey.rawRepresentation)
        let sec1 = PEMBlock(label: "EC PRIVATE KEY", der: try sec1DER(key)).text
        #expect(try loadSigningKey(sec1, source: "k.pem") { Data() }.publicKey.rawRepresentation == key.publicKey.rawRepresentation)
        let encrypted = try CosignKeyFile.encrypt(key, password: Data("pw".utf8))
        var asked = 0
        let decrypted = try loadSigningKey(encrypted, source: "k.key") {
            asked += 1
            return Data("pw".utf8)
        }
        #expect(asked == 1)
        #expect(decrypted.publicKey.rawRepresentation == key.publicKey.rawRepresentation)
        #expect(try loadPublicKey(publicKeyPEM(key.publicKey), source: "k.pub").rawRepresentation == key.publicKey.rawRepresentation)
        let error = try #require(throws: TrustError.self) { try loadPublicKey(pkcs8, source: "k.pem") }
        #expect(error.reason.contains("expected a PUBLIC KEY"))
        let notPrivate = try #require(throws: TrustError.self) { try loadSigningKey(publicKeyPEM(key.publicKey), source: "k.pub") { Data() } }
        #expect(notPrivate.reason.contains("is not a private key"))
    }

    /// SEC1 `ECPrivateKey` DER for a P-256 key (version 1, private key, curve OID, public key).
    func sec1DER(_ key: P256.Signing.PrivateKey) throws -> Data {
        let priv = key.rawRepresentation
        let pub = key.publicKey.x963Representation
        var der = Data([0x02, 0x01, 0x01, 0x04, 0x20]) + priv
        der += Data([0xA0, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07])
        der += Data([0xA1, 0x44, 0x03, 0x42, 0x00]) + pub
        return Data([0x30, UInt8(der.count)]) + der
    }
}
