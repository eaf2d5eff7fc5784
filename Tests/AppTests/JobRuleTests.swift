import Crypto
import Documents
import Foundation
import OCI
import OCIRegistry
import OCITesting
import Replicate
import Storage
import SwiftASN1
import Testing
import Trust
import WardenApp
import Workflow
import X509

/// The rules the surfaces share, decided once in the application layer.
@Suite struct JobRuleTests {
    func location(_ s: String) throws -> Location { try Location(parsing: s) }

    /// `warden copy` and `oci/copy@v1` write the same destination tag: a source given by digest (sha256 or sha512)
    /// writes none, a destination's own tag wins even beside a digest.
    @Test func theDestinationTagRule() throws {
        let sha256 = "sha256:" + String(repeating: "a", count: 64)
        let sha512 = "sha512:" + String(repeating: "b", count: 128)
        let cases: [(String, String, String?)] = [
            ("r.io/a:1.0", "r.io/b", "1.0"),
            ("r.io/a", "r.io/b", "latest"),
            ("r.io/a@\(sha256)", "r.io/b", nil),
            ("r.io/a@\(sha512)", "r.io/b", nil),
            ("r.io/a:1.0", "r.io/b:stable", "stable"),
            ("r.io/a:1.0", "r.io/b@\(sha256)", nil),
            ("r.io/a:1.0", "oci-layout:/tmp/x", "1.0"),
        ]
        for (source, destination, tag) in cases {
            #expect(CopyJob.destinationTag(source: try location(source), destination: try location(destination)) == tag, "\(source) → \(destination)")
        }
        #expect(CopyJob.sourceReference(try location("r.io/a@\(sha512)")) == sha512)
        #expect(CopyJob.sourceReference(try location("r.io/a")) == "latest")
    }

    /// Every surface maps an error the same way: exit code, retry class, HTTP status.
    @Test func oneErrorTable() {
        let cases: [(Error, Int32, Bool, Int)] = [
            (OCIError(.digestMismatch, "d"), 2, false, 502),
            (OCIError(.notFound, "n"), 3, false, 404),
            (OCIError(.unauthorized, "u"), 4, false, 403),
            (OCIError(.invalidReference, "i"), 64, false, 400),
            (OCIError(.throttled, "t"), 1, true, 502),
            (TrustError(.wrongPassword, "w"), 4, false, 403),
            (CancellationError(), 1, true, 503),
            (WorkflowError(.notFound, "no run r"), 1, false, 404),
            (WorkflowError(.conflict, "run r already succeeded"), 1, false, 409),
            (WorkflowError(.forbidden, "mallory is not an approver"), 1, false, 403),
            (WorkflowError("--input x: expected NAME=VALUE"), 1, false, 400),
            (StateError("workflow store s: disk I/O error"), 1, true, 500),
            (StateError(.conflict, "run r exists"), 1, false, 409),
            (YAMLError(position: "w.yaml:3:1", message: "not valid YAML", code: .syntax), 1, false, 400),
            (MalwareScanError(.sizeLimitExceeded, "layer 2: INSTREAM size limit exceeded"), 1, false, 422),
            (MalwareScanError(.invalidAddress, "clamd address \"x\" is not unix:PATH or HOST:PORT"), 64, false, 500),
            (MalwareScanError(.unreachable, "nothing answers at unix:/run/clamd.sock"), 1, true, 503),
            (MalwareScanError(.timedOut, "clamd did not answer in 60 s"), 1, true, 503),
            (MalwareScanError(.protocolError, "the answer is not clamd's"), 1, false, 502),
        ]
        for (error, exit, retryable, status) in cases {
            let d = ErrorDisposition(error)
            #expect(d.exitCode == exit && d.retryable == retryable && d.httpStatus == status, "\(error): \(d)")
        }
    }

    /// The file's registry settings, applied on top of the surface's own, with nothing written to a temporary file.
    @Test func aReplicationFilesRegistrySettings() throws {
        let dir = try makeTemporaryDirectory()
        try "-----BEGIN CERTIFICATE-----\n".write(toFile: dir + "/ca.pem", atomically: true, encoding: .utf8)
        try P256.Signing.PrivateKey().publicKey.pemRepresentation.write(toFile: dir + "/k.pub", atomically: true, encoding: .utf8)
        let text = """
            apiVersion: warden.dev/v1
            kind: Replication
            registries:
              mirror.example: {usernameEnv: U, passwordEnv: P, caFile: \(dir)/ca.pem, requestsPerSecond: 5}
              plain.example:5000: {plainHTTP: true}
            defaults:
              verify:
                authorities:
                  release: {key: \(dir)/k.pub}
            artifacts:
              - source: up.example/a
                target: mirror.example/a
                tags: {exact: ["1"]}
            """
        let file = try ReplicationFile.parse(text, file: dir + "/r.yaml", baseDirectory: dir)
        let tmpBefore = Set(try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()))
        var base = RegistryConfiguration()
        base.caBundlePath = "/etc/ssl/certs/ca-certificates.crt"
        let c = try ReplicationJob.configuration(for: file, base: base, environment: ["U": "user", "P": "pass"])
        #expect(c.credentials.explicit["mirror.example"]?.username == "user")
        #expect(c.plainHTTPHosts.contains("plain.example:5000"))
        #expect(c.requestsPerSecond["mirror.example"] == 5)
        #expect(c.caBundlePath == "/etc/ssl/certs/ca-certificates.crt" && c.additionalCABundlePaths == ["\(dir)/ca.pem"])
        let created = Set(try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())).subtracting(tmpBefore)
        #expect(!created.contains { $0.hasPrefix("warden-ca-") })
        #expect(throws: OCIError.self) { try ReplicationJob.configuration(for: file, base: base, environment: [:]) }
    }
}

/// One trust-policy builder for `warden verify` and `trust/verify@v1`: the files it reads are named the surface's way.
@Suite struct VerificationJobTests {
    @Test func aKeyBecomesTheOneAuthorityAndEachFileIsReadUnderItsName() throws {
        let pem = P256.Signing.PrivateKey().publicKey.pemRepresentation
        var reads: [String] = []
        let policy = try VerificationJob.trustPolicy(AuthoritySpec(key: "/k.pub", rekorKeys: ["/rekor.pub"])) { path, what in
            reads.append("\(what) \(path)")
            return pem
        }
        #expect(reads == ["--rekor-key /rekor.pub", "--key /k.pub"])
        #expect(Array(policy.authorities.keys) == ["key /k.pub"])
        #expect(policy.authorities["key /k.pub"]?.rekorKeys.count == 1)
    }

    @Test func certificatesNeedAnIdentityAndAnIssuer() throws {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("Warden test root") }
        let root = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: Date(),
            notValidAfter: Date().addingTimeInterval(3600),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try .init { Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil)) }, issuerPrivateKey: .init(key))
        var serializer = DER.Serializer()
        try serializer.serialize(root)
        let pem = try PEMDocument(type: "CERTIFICATE", derBytes: serializer.serializedBytes).pemString
        #expect {
            try VerificationJob.trustPolicy(AuthoritySpec(certificateChain: "/ca.pem", certificateOidcIssuer: "https://issuer")) { _, _ in pem }
        } throws: { ($0 as? TrustError)?.reason.contains("--certificate-identity") == true }
        let ok = try VerificationJob.trustPolicy(
            AuthoritySpec(certificateChain: "/ca.pem", certificateIdentity: "dev@example.com", certificateOidcIssuer: "https://issuer")
        ) { _, _ in pem }
        #expect(Array(ok.authorities.keys) == ["certificate"])
    }
}

/// A detached run's driver gets every setting of the command that detached it.
@Suite struct DetachedDriverTests {
    @Test func theDriverIsStartedWithEverySetting() {
        let registry = RegistrySettings(
            plainHTTP: true, insecureRegistries: ["a:5000", "b:5000"], caFile: "/etc/ca.pem", insecureTokenRealm: true, authfile: "/run/auth.json",
            verbose: true)
        let args = RunsJob.resumeArguments(run: "r1", state: "/s", actions: ["/acts"], concurrency: 3, registry: registry)
        #expect(
            args == [
                "runs", "resume", "r1", "--state", "/s", "--concurrency", "3", "--actions", "/acts", "--plain-http", "--insecure-registry", "a:5000",
                "--insecure-registry", "b:5000", "--ca-file", "/etc/ca.pem", "--insecure-token-realm", "--authfile", "/run/auth.json", "--verbose",
            ])
        #expect(
            RunsJob.resumeArguments(run: "r", state: "s", actions: [], concurrency: 32, registry: RegistrySettings()) == [
                "runs", "resume", "r", "--state", "s", "--concurrency", "32",
            ])
    }
}

/// HMAC signatures (webhook callbacks) are compared in constant time, and correctly.
@Suite struct SecretComparisonTests {
    @Test func constantTimeEqualityIsEquality() {
        #expect(constantTimeEquals("sha256=abc", "sha256=abc"))
        #expect(!constantTimeEquals("sha256=abc", "sha256=abd"))
        #expect(!constantTimeEquals("sha256=abc", "sha256=ab"))
        #expect(!constantTimeEquals("", "x"))
        #expect(constantTimeEquals("", ""))
    }
}
