import Crypto
import Foundation
import OCITesting
import Testing

@testable import Trust

func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        out.append(UInt8(s[i..<j], radix: 16)!)
        i = j
    }
    return out
}

/// The independent implementation (Python: cryptography, PyNaCl/libsodium, hashlib.scrypt).
let interopScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Interop/cosign_keys.py").path

func python(_ args: [String], password: String) async throws -> (Int32, String, String) {
    var env = ProcessInfo.processInfo.environment
    env["WARDEN_PASSWORD"] = password
    let result = try await runProgram("/usr/bin/env", ["python3", interopScript] + args, environment: env)
    return (result.status, result.output, result.errorOutput)
}

@Suite struct SecretBoxTests {
    @Test func poly1305RFC8439Vector() {
        let key = hex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
        let tag = Poly1305.authenticate(Array("Cryptographic Forum Research Group".utf8), key: key)
        #expect(tag == hex("a8061dc1305136c6c22b8baf0c0127a9"))
    }

    @Test func matchesLibsodiumThroughPyNaCl() async throws {
        var g = SeededGenerator(seed: 5)
        for length in [0, 1, 15, 16, 17, 63, 64, 65, 1000] {
            let key = Array(g.bytes(32))
            let nonce = Array(g.bytes(24))
            let message = Array(g.bytes(length))
            let ours = SecretBox.seal(message, nonce: nonce, key: key)
            let (status, out, err) = try await python(["seal", key.hexString, nonce.hexString, message.hexString], password: "")
            #expect(status == 0, "\(err)")
            #expect(ours.hexString == out.trimmingCharacters(in: .whitespacesAndNewlines), "length \(length)")
            #expect(SecretBox.open(ours, nonce: nonce, key: key) == message)
        }
    }

    @Test func tamperedOrWrongKeyIsRejected() {
        let key = [UInt8](repeating: 7, count: 32)
        let nonce = [UInt8](repeating: 9, count: 24)
        var sealed = SecretBox.seal(Array("secret".utf8), nonce: nonce, key: key)
        #expect(SecretBox.open(sealed, nonce: nonce, key: [UInt8](repeating: 8, count: 32)) == nil)
        sealed[sealed.count - 1] ^= 1
        #expect(SecretBox.open(sealed, nonce: nonce, key: key) == nil)
        #expect(SecretBox.open([1, 2, 3], nonce: nonce, key: key) == nil)
    }
}

@Suite struct CosignKeyFileTests {
    @Test(arguments: [32768, 65536])
    func readsKeysWrittenByTheIndependentImplementation(n: Int) async throws {
        let dir = try makeTemporaryDirectory()
        let (status, _, err) = try await python(["write", dir + "/py", "\(n)"], password: "correct horse")
        #expect(status == 0, "\(err)")
        let text = try String(contentsOfFile: dir + "/py.key", encoding: .utf8)
        let key = try CosignKeyFile.decrypt(text, password: Data("correct horse".utf8), source: "py.key")
        #expect(publicKeyPEM(key.publicKey) == (try String(contentsOfFile: dir + "/py.pub", encoding: .utf8)))
        let error = try #require(throws: TrustError.self) {
            try CosignKeyFile.decrypt(text, password: Data("wrong".utf8), source: "py.key")
        }
        #expect(error.code == .wrongPassword && error.reason.contains("py.key"))
    }

    @Test(arguments: ["", "pässwörd"])
    func keysWeWriteDecryptInTheIndependentImplementation(password: String) async throws {
        let dir = try makeTemporaryDirectory()
        let key = P256.Signing.PrivateKey()
        try CosignKeyFile.encrypt(key, password: Data(password.utf8)).write(toFile: dir + "/w.key", atomically: true, encoding: .utf8)
        let (status, out, err) = try await python(["read", dir + "/w.key"], password: password)
        #expect(status == 0, "\(err)")
        #expect(out == publicKeyPEM(key.publicKey))
        let (wrong, _, wrongErr) = try await python(["read", dir + "/w.key"], password: password + "x")
        #expect(wrong == 3)
        #expect(wrongErr.contains("wrong password"))
    }

    @Test(arguments: [
        ("", "no PEM block"),
        ("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n", "is not an encrypted cosign key"),
        ("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n!!!\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n", "not valid base64"),
        ("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nbm90IGpzb24=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n", "malformed"),
        ("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n", "has no END line"),
    ])
    func malformedFilesGiveClearErrors(text: String, message: String) throws {
        let e = try #require(throws: TrustError.self) {
            try CosignKeyFile.decrypt(text, password: Data(), source: "k.key")
        }
        #expect(e.reason.contains(message) && e.reason.contains("k.key"))
    }

    @Test func outOfRangeScryptParametersAreRefused() throws {
        let doc =
            #"{"kdf":{"name":"scrypt","params":{"N":3,"r":8,"p":1},"salt":"AA=="},"cipher":{"name":"nacl/secretbox","nonce":"AA=="},"ciphertext":"AA=="}"#
        let text = PEMBlock(label: CosignKeyFile.label, der: Data(doc.utf8)).text
        let error = try #require(throws: TrustError.self) { try CosignKeyFile.decrypt(text, password: Data(), source: "k.key") }
        #expect(error.reason.contains("out of range"))
    }
}

@Suite struct KeyCLITests {
    func warden(_ args: [String], password: String?) async throws -> (Int32, String, String) {
        try await runWarden(args, environment: ["WARDEN_PASSWORD": password])
    }

    @Test func generateThenReadBackBothWays() async throws {
        let dir = try makeTemporaryDirectory()
        let (status, _, err) = try await warden(["key", "generate", "--output-key-prefix", dir + "/release"], password: "pw1")
        #expect(status == 0, "\(err)")
        let attrs = try FileManager.default.attributesOfItem(atPath: dir + "/release.key")
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let pub = try String(contentsOfFile: dir + "/release.pub", encoding: .utf8)
        #expect(pub.hasPrefix("-----BEGIN PUBLIC KEY-----"))
        // The independent implementation decrypts it and finds the same public key.
        let (pyStatus, pyOut, pyErr) = try await python(["read", dir + "/release.key"], password: "pw1")
        #expect(pyStatus == 0, "\(pyErr)")
        #expect(pyOut == pub)
        let (again, _, againErr) = try await warden(["key", "generate", "--output-key-prefix", dir + "/release"], password: "pw1")
        #expect(again == 64)
        #expect(againErr.contains("exists"))
        let (wrong, _, wrongErr) = try await warden(["key", "public-key", "--key", dir + "/release.key"], password: "nope")
        #expect(wrong == 4)
        #expect(wrongErr.contains("wrong password"))
        let (ok, out, _) = try await warden(["key", "public-key", "--key", dir + "/release.key"], password: "pw1")
        #expect(ok == 0)
        #expect(out == pub)
    }

    @Test func withoutAPasswordSourceNothingIsWritten() async throws {
        let dir = try makeTemporaryDirectory()
        let (status, _, err) = try await warden(["key", "generate", "--output-key-prefix", dir + "/k"], password: nil)
        #expect(status == 64)
        #expect(err.contains("WARDEN_PASSWORD"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }
}
