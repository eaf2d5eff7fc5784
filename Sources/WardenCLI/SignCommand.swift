import ArgumentParser
import Crypto
import Foundation
import OCI
import OCIRegistry
import Trust

func readFile(_ path: String, what: String) throws -> String {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(what) \(path)") }
    return text
}

struct SignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign an image by digest with a key (cosign's legacy .sig layout).",
        discussion: "A tag is resolved once; the digest is what is signed. Signatures already in the .sig manifest are kept.")

    @Argument(help: "REGISTRY/REPO[:TAG|@DIGEST] or oci-layout:PATH[:TAG|@DIGEST].")
    var reference: String

    @Option(name: .long, help: "Private key: cosign-format encrypted key, or unencrypted PKCS#8/SEC1 PEM.")
    var key: String

    @Option(name: .long, help: "Annotation KEY=VALUE put in the signed payload's optional section (repeatable).")
    var annotation: [String] = []

    @OptionGroup var password: PasswordOptions
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let location = try parseLocation(reference)
        var annotations: [String: String] = [:]
        for a in annotation {
            guard let eq = a.firstIndex(of: "="), eq != a.startIndex else { throw ValidationError("--annotation \(a): expected KEY=VALUE") }
            annotations[String(a[..<eq])] = String(a[a.index(after: eq)...])
        }
        let signingKey: P256.Signing.PrivateKey
        do {
            signingKey = try loadSigningKey(readFile(key, what: "--key"), source: key) { try password.password(confirm: false) }
        } catch let e as TrustError {
            printError("error: \(e.reason)")
            throw ExitCode(e.code == .wrongPassword ? 4 : 1)
        }
        let result = try await withRegistries(global) { registries -> Descriptor in
            let (store, ref) = try open(location, registries, create: false)
            let subject = try await store.resolve(ref ?? "latest")
            let repository: String
            switch location {
            case .registry(let r): repository = "\(r.registry)/\(r.repository)"
            case .layout(let path, _, _): repository = Location.layoutScheme + path
            }
            _ = try await SimpleSigning.sign(subject, in: store, dockerReference: repository, key: signingKey, annotations: annotations)
            return subject
        }
        switch global.output {
        case .json: try printJSON(result)
        case .text: print("Signed \(result.digest)")
        }
    }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify an image's signatures with a public key (cosign's legacy .sig layout).",
        discussion: """
            Exit codes: 0 at least one signature verified; 10 no signature found; 11 signatures found but none
            verified; 1, 3, 4 as for every command when the lookup itself failed (a failed or throttled lookup is
            never reported as "no signature").
            """)

    @Argument(help: "REGISTRY/REPO[:TAG|@DIGEST] or oci-layout:PATH[:TAG|@DIGEST].")
    var reference: String

    @Option(name: .long, help: "Public key PEM (PKIX): ECDSA P-256/P-384/P-521, Ed25519 or RSA.")
    var key: String

    @OptionGroup var global: GlobalOptions

    struct Output: Encodable {
        var reference: String
        var digest: String
        var signatures: [SimpleSigning.Result]
    }

    func run() async throws {
        let location = try parseLocation(reference)
        let publicKey: VerificationKey
        do {
            publicKey = try loadVerificationKey(readFile(key, what: "--key"), source: key)
        } catch let e as TrustError {
            throw ValidationError(e.reason)
        }
        let out = try await withRegistries(global) { registries -> Output in
            let (store, ref) = try open(location, registries, create: false)
            let subject = try await store.resolve(ref ?? "latest")
            let results = try await SimpleSigning.verify(subject, in: store, key: publicKey)
            return Output(reference: location.description, digest: subject.digest.description, signatures: results)
        }
        switch global.output {
        case .json: try printJSON(out)
        case .text:
            print("\(out.reference) \(out.digest)")
            if out.signatures.isEmpty { print("  no signatures") }
            for s in out.signatures {
                print("  \(s.verified ? "verified" : "FAILED  ") \(s.layout) payload \(s.payloadDigest)" + (s.reason.map { ": \($0)" } ?? ""))
            }
        }
        if out.signatures.isEmpty { throw ExitCode(10) }
        if !out.signatures.contains(where: \.verified) { throw ExitCode(11) }
    }
}
