import ArgumentParser
import CommandSupport
import Crypto
import Foundation
import OCI
import OCIRegistry
import Trust
import WardenApp

func readFile(_ path: String, what: String) throws -> String {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(what) \(path)") }
    return text
}

struct SignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign an image by digest with a key (cosign's .sig layout, or a sigstore bundle referrer).",
        discussion: """
            A tag is resolved once; the digest is what is signed. legacy appends a simple-signing signature to the \
            sha256-<hex>.sig manifest, keeping those already there; bundle pushes a sigstore bundle v0.3 (DSSE \
            statement https://sigstore.dev/cosign/sign/v1, as cosign v3 writes) as a referrer of the image.
            """)

    @Argument(help: "REGISTRY/REPO[:TAG|@DIGEST] or oci-layout:PATH[:TAG|@DIGEST].")
    var reference: String

    @Option(name: .long, help: "Private key: cosign-format encrypted key, or unencrypted PKCS#8/SEC1 PEM.")
    var key: String

    @Option(name: .long, help: "Annotation KEY=VALUE put in the signed payload's optional section (repeatable).")
    var annotation: [String] = []

    @Option(name: .long, help: "legacy (.sig tag) or bundle (sigstore bundle v0.3 referrer).")
    var format: SignatureFormatOption = .legacy

    @OptionGroup var password: PasswordOptions
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let location = try parseLocation(reference)
        var annotations: [String: String] = [:]
        for a in annotation {
            guard let eq = a.firstIndex(of: "="), eq != a.startIndex else { throw ValidationError("--annotation \(a): expected KEY=VALUE") }
            annotations[String(a[..<eq])] = String(a[a.index(after: eq)...])
        }
        let signingKey = try loadKey(key, password)
        let report = try await withRegistries(global) { registries in
            try await SigningJob.sign(
                .init(location: location, format: format.format, annotations: annotations), key: signingKey, registries: registries)
        }
        switch global.output {
        case .json: try printJSON(report.subject)
        case .text: print("Signed \(report.subject.digest)")
        }
    }
}

enum SignatureFormatOption: String, ExpressibleByArgument, CaseIterable {
    case legacy, bundle
    var format: SignatureFormat { self == .legacy ? .legacy : .bundle }
}

/// Reads a private key, asking for its password only when it is encrypted; a wrong password exits 4.
func loadKey(_ path: String, _ password: PasswordOptions) throws -> P256.Signing.PrivateKey {
    do {
        return try loadSigningKey(readFile(path, what: "--key"), source: path) { try password.password(confirm: false) }
    } catch let e as TrustError {
        throw failure(for: e)
    }
}
