import ArgumentParser
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
        let result = try await withRegistries(global) { registries -> Descriptor in
            let (store, ref) = try open(location, registries, create: false)
            let subject = try await store.resolve(ref ?? "latest")
            switch format {
            case .legacy:
                try await SimpleSigning.sign(subject, in: store, dockerReference: location.repositoryName, key: signingKey, annotations: annotations)
            case .bundle:
                try await Signer.signBundle(subject, in: store, name: location.repositoryName, key: signingKey, annotations: annotations)
            }
            return subject
        }
        switch global.output {
        case .json: try printJSON(result)
        case .text: print("Signed \(result.digest)")
        }
    }
}

enum SignatureFormatOption: String, ExpressibleByArgument, CaseIterable {
    case legacy, bundle
    var format: SignatureFormat { self == .legacy ? .legacy : .bundle }
}

extension Location {
    /// `registry/repository`, or `oci-layout:PATH`: the name signatures carry and trust policies match.
    var repositoryName: String {
        switch self {
        case .registry(let r): "\(r.registry)/\(r.repository)"
        case .layout(let path, _, _): Location.layoutScheme + path
        }
    }
}

/// Reads a private key, asking for its password only when it is encrypted; a wrong password exits 4.
func loadKey(_ path: String, _ password: PasswordOptions) throws -> P256.Signing.PrivateKey {
    do {
        return try loadSigningKey(readFile(path, what: "--key"), source: path) { try password.password(confirm: false) }
    } catch let e as TrustError {
        throw failure(for: e)
    }
}
