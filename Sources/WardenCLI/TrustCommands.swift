import ArgumentParser
import CommandSupport
import Foundation
import OCI
import OCIRegistry
import Trust
import WardenApp

/// Who must have signed: a key, certificates with identities, or a trust policy file.
struct AuthorityOptions: ParsableArguments {
    @Option(name: .long, help: "Public key PEM (PKIX): ECDSA P-256/P-384/P-521, Ed25519 or RSA.")
    var key: String?

    @Option(
        name: [.customLong("certificate-chain"), .customLong("cert-chain")],
        help: "PEM bundle of trusted CA certificates (roots and intermediates) for certificate-signed signatures.")
    var certificateChain: String?

    @Option(name: .long, help: "sigstore trusted_root.json: CA certificates and Rekor keys, used offline.")
    var trustedRoot: String?

    @Option(name: .long, help: "Expected certificate subject (email or URI), exactly.")
    var certificateIdentity: String?

    @Option(name: .long, help: "Expected certificate subject, as a regular expression (unanchored).")
    var certificateIdentityRegexp: String?

    @Option(name: .long, help: "Expected OIDC issuer of the certificate, exactly.")
    var certificateOidcIssuer: String?

    @Option(name: .long, help: "Expected OIDC issuer, as a regular expression (unanchored).")
    var certificateOidcIssuerRegexp: String?

    @Option(name: .long, help: "Rekor public key: require a transparency-log entry whose signed entry timestamp it verifies (repeatable).")
    var rekorKey: [String] = []

    @Option(name: .long, help: "Trust policy file (YAML; see docs/trust-policy.md).")
    var policy: String?

    func validate() throws {
        let given = [key != nil, certificateChain != nil || trustedRoot != nil, policy != nil].filter { $0 }.count
        guard given == 1 else { throw ValidationError("give exactly one of --key, --certificate-chain/--trusted-root, or --policy") }
    }

    /// The policy to verify with (`VerificationJob`); `attestations` become requirements of the ad-hoc policy built
    /// from flags.
    func trustPolicy(attestations: [String] = []) throws -> TrustPolicy {
        let spec = AuthoritySpec(
            policy: policy, key: key, certificateChain: certificateChain, trustedRoot: trustedRoot, certificateIdentity: certificateIdentity,
            certificateIdentityRegexp: certificateIdentityRegexp, certificateOidcIssuer: certificateOidcIssuer,
            certificateOidcIssuerRegexp: certificateOidcIssuerRegexp, rekorKeys: rekorKey)
        do {
            return try VerificationJob.trustPolicy(spec, attestations: attestations) { path, what in try readFile(path, what: what) }
        } catch let e as TrustError {
            throw ValidationError(e.reason)
        }
    }
}

/// Verifies references in parallel and prints the decisions; exits with the most serious outcome.
func runVerification(
    references: [String], options: AuthorityOptions, global: GlobalOptions, concurrency: Int, signatures: Bool, attestations: [String],
    exhaustive: Bool = true
) async throws {
    let locations = try references.map(parseLocation)
    let policy = try options.trustPolicy(attestations: options.policy == nil ? attestations : [])
    let extra = options.policy == nil ? [] : attestations
    let decisions = try await withRegistries(global) { registries -> [PolicyDecision] in
        let results = OrderedResults<PolicyDecision>(count: locations.count)
        try await concurrentForEach(Array(locations.enumerated()), limit: max(1, concurrency)) { (i, location) in
            let (_, d) = try await VerificationJob.verify(
                location, policy: policy, signatures: signatures, extraAttestations: extra, exhaustive: exhaustive, registries: registries)
            await results.set(i, d)
        }
        return await results.values
    }
    switch global.output {
    case .json: try printJSON(references.count == 1 ? AnyEncodable(decisions[0]) : AnyEncodable(decisions))
    case .text:
        for d in decisions {
            print("\(d.repository)@\(d.digest): \(d.outcome.rawValue)" + (d.policy.map { " (policy \($0))" } ?? ""))
            for c in d.signatures + d.attestations {
                let what = c.kind + (c.predicateType.map { " \($0)" } ?? "")
                let who = c.verified ? " by \(c.authority ?? "?")" + (c.identity.map { ", identity \($0)" } ?? "") : ""
                print("  \(c.verified ? "verified" : "FAILED  ") \(what) [\(c.layout) \(c.location)]\(who)" + (c.reason.map { ": \($0)" } ?? ""))
            }
            for r in d.reasons { print("  - \(r)") }
        }
    }
    let codes = decisions.map { VerificationJob.exitCode($0.outcome) }
    if let worst = codes.max(), worst != 0 { throw ExitCode(worst) }
}

/// Results of parallel work, kept in input order.
actor OrderedResults<T: Sendable> {
    var slots: [T?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: T) { slots[i] = value }
    var values: [T] { slots.compactMap { $0 } }
}

struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: Encoder) throws { try value.encode(to: encoder) }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify images' signatures with a key, certificate authorities, or a trust policy.",
        discussion: """
            Reads cosign's .sig tag, sigstore bundle referrers (v0.1-v0.3, including cosign v3's DSSE signature \
            statements) and simple signatures pushed as referrers. Every accepted signature must bind the image's \
            manifest digest. Nothing is fetched except from the registries named: certificates and transparency-log \
            entries are checked offline.
            Exit codes: 0 every image verified; 10 no signature found; 11 signatures found but not enough verified; \
            12 refused by the trust policy; 1, 3, 4 as for every command when a lookup failed (a failed or throttled \
            lookup is never reported as "no signature").
            """)

    @Argument(help: "REGISTRY/REPO[:TAG|@DIGEST] or oci-layout:PATH[:TAG|@DIGEST] (several are verified in parallel).")
    var references: [String]

    @OptionGroup var authority: AuthorityOptions

    @Option(name: .long, help: "Images verified at once.")
    var concurrency = 16

    @Flag(name: .long, help: "Look up every layout and report every signature and attestation, even when the .sig tag already satisfies the policy.")
    var all = false

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await runVerification(
            references: references, options: authority, global: global, concurrency: concurrency, signatures: true, attestations: [],
            exhaustive: all)
    }
}

struct VerifyAttestationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-attestation",
        abstract: "Verify that images carry signed attestations of a predicate type.",
        discussion: """
            Reads cosign's .att tag and sigstore bundle referrers; in-toto Statement v0.1 and v1 are accepted. The \
            statement's subjects must include the image's digest. Exit codes as for verify.
            """)

    @Argument(help: "REGISTRY/REPO[:TAG|@DIGEST] or oci-layout:PATH[:TAG|@DIGEST].")
    var references: [String]

    @Option(name: .long, help: "Predicate type: slsaprovenance, slsaprovenance1, cyclonedx, spdxjson, openvex, vuln, link, custom, or a URI.")
    var type: String?

    @OptionGroup var authority: AuthorityOptions

    @Option(name: .long, help: "Images verified at once.")
    var concurrency = 16

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        var types: [String] = []
        if let type {
            do { types = [try PredicateTypes.resolve(type)] } catch let e as TrustError { throw ValidationError(e.reason) }
        } else if authority.policy == nil {
            throw ValidationError("--type is required unless --policy names the attestations")
        }
        try await runVerification(
            references: references, options: authority, global: global, concurrency: concurrency, signatures: false, attestations: types)
    }
}

struct AttestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attest",
        abstract: "Attach a signed in-toto attestation (DSSE) to an image, by digest.",
        discussion: """
            The predicate file is wrapped in an in-toto Statement v1 whose subject is the image's digest, signed in a \
            DSSE envelope, and stored in the sha256-<hex>.att manifest (legacy) or as a sigstore bundle referrer.
            """)

    @Argument(help: "REGISTRY/REPO[:TAG|@DIGEST] or oci-layout:PATH[:TAG|@DIGEST].")
    var reference: String

    @Option(name: .long, help: "Predicate JSON file.")
    var predicate: String

    @Option(name: .long, help: "Predicate type: slsaprovenance, slsaprovenance1, cyclonedx, spdxjson, openvex, vuln, link, custom, or a URI.")
    var type: String = "custom"

    @Option(name: .long, help: "Private key: cosign-format encrypted key, or unencrypted PKCS#8/SEC1 PEM.")
    var key: String

    @Option(name: .long, help: "legacy (.att tag) or bundle (sigstore bundle v0.3 referrer).")
    var format: SignatureFormatOption = .legacy

    @OptionGroup var password: PasswordOptions
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let location = try parseLocation(reference)
        do { _ = try SigningJob.predicateType(type) } catch let e as TrustError { throw ValidationError(e.reason) }
        guard let body = FileManager.default.contents(atPath: predicate) else { throw ValidationError("cannot read --predicate \(predicate)") }
        do { try SigningJob.validatePredicate(body, source: "--predicate \(predicate)") } catch let e as TrustError {
            throw ValidationError(e.reason)
        }
        let signingKey = try loadKey(key, password)
        let request = SigningJob.AttestRequest(
            location: location, predicateType: type, predicate: body, format: format.format, predicateSource: "--predicate \(predicate)")
        let out = try await withRegistries(global) { registries in try await SigningJob.attest(request, key: signingKey, registries: registries) }
        switch global.output {
        case .json: try printJSON(out)
        case .text: print("Attested \(out.digest) (\(out.predicateType))")
        }
    }
}
