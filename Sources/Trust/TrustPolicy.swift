import Documents
import Foundation
import OCI
import X509

/// A trust policy: named authorities, and rules that say — per image pattern — which authorities must sign, how
/// many of them, and which attestations must be present and verified. See docs/trust-policy.md.
public struct TrustPolicy: Sendable {
    public struct AttestationRequirement: Sendable {
        public var name: String
        /// Predicate type URI (cosign short names are resolved when the file is read).
        public var predicateType: String
        /// Authorities allowed to sign it; empty means the rule's authorities.
        public var authorities: [String]
        /// CEL conditions over the statement (`predicate`, `predicateType`, `subject`); one verified attestation
        /// must satisfy all of them.
        public var conditions: [CELCondition]

        public init(name: String, predicateType: String, authorities: [String], conditions: [CELCondition] = []) {
            self.name = name
            self.predicateType = predicateType
            self.authorities = authorities
            self.conditions = conditions
        }
    }

    public struct Rule: Sendable {
        public var name: String
        /// Globs over `registry/repository`: `*` within one path segment, `**` across segments.
        public var images: [String]
        public var authorities: [String]
        /// How many distinct authorities must each have verified a signature.
        public var threshold: Int
        public var attestations: [AttestationRequirement]
        /// Refuse every image the rule matches.
        public var reject: Bool
        /// Accept images the rule matches without any signature (containers' insecureAcceptAnything).
        public var allowUnsigned: Bool

        public init(
            name: String, images: [String], authorities: [String], threshold: Int, attestations: [AttestationRequirement], reject: Bool,
            allowUnsigned: Bool
        ) {
            self.name = name
            self.images = images
            self.authorities = authorities
            self.threshold = threshold
            self.attestations = attestations
            self.reject = reject
            self.allowUnsigned = allowUnsigned
        }
    }

    public var authorities: [String: Authority]
    public var rules: [Rule]

    public init(authorities: [String: Authority], rules: [Rule]) {
        self.authorities = authorities
        self.rules = rules
    }

    /// The first rule whose patterns match `repository` (`registry/path`).
    public func rule(for repository: String) -> Rule? {
        rules.first { $0.images.contains { globMatch($0, repository) } }
    }

    // MARK: Reading

    static let topKeys = ["apiVersion", "kind", "authorities", "policies"]
    static let authorityKeys = ["key", "keyData", "keyless", "rekor"]
    static let keylessKeys = ["roots", "intermediates", "trustedRoot", "identities"]
    static let identityKeys = ["subject", "subjectRegExp", "issuer", "issuerRegExp"]
    static let rekorKeys = ["keys", "trustedRoot"]
    static let ruleKeys = ["name", "images", "authorities", "threshold", "attestations", "reject", "allowUnsigned"]
    static let attestationKeys = ["name", "predicateType", "authorities", "conditions"]

    /// Reads a policy file; relative key and certificate paths are resolved against the file's directory.
    public static func load(path: String) throws -> TrustPolicy {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TrustError(.io, "cannot read trust policy \(path)")
        }
        do {
            return try parse(text, file: path, baseDirectory: URL(fileURLWithPath: path).deletingLastPathComponent().path)
        } catch let e as YAMLError {
            throw TrustError(.malformed, e.description)
        }
    }

    public static func parse(_ text: String, file: String, baseDirectory: String) throws -> TrustPolicy {
        let root = try YAMLValue.parse(text, file: file)
        let top = try root.fields(allowed: topKeys)
        guard let api = top["apiVersion"], try api.string() == "warden.dev/v1" else {
            throw (top["apiVersion"] ?? root).error("apiVersion must be warden.dev/v1")
        }
        guard let kind = top["kind"], try kind.string() == "TrustPolicy" else { throw (top["kind"] ?? root).error("kind must be TrustPolicy") }
        let authorities = try parseAuthorities(top["authorities"], baseDirectory: baseDirectory)
        var rules: [Rule] = []
        for (i, value) in try (top["policies"]?.list() ?? []).enumerated() {
            rules.append(try parseRule(value, index: i, authorities: authorities))
        }
        guard !rules.isEmpty else { throw root.error("the policy has no policies entries") }
        return TrustPolicy(authorities: authorities, rules: rules)
    }

    static func readFile(_ v: YAMLValue, baseDirectory: String) throws -> String {
        let p = try v.string()
        let full = p.hasPrefix("/") ? p : baseDirectory + "/" + p
        guard let text = try? String(contentsOfFile: full, encoding: .utf8) else { throw v.error("cannot read \(full)") }
        return text
    }

    static func wrap<T>(_ v: YAMLValue, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as TrustError { throw v.error(e.reason) }
    }

    /// Reads an `authorities` mapping (name → key, keyData or keyless, with optional rekor); shared by every
    /// document that names who may sign (trust policies, replication files).
    public static func parseAuthorities(_ value: YAMLValue?, baseDirectory: String) throws -> [String: Authority] {
        var authorities: [String: Authority] = [:]
        for (name, value) in try value?.mapping(allowed: nil) ?? [] {
            let f = try value.fields(allowed: authorityKeys)
            let kinds = ["key", "keyData", "keyless"].filter { f[$0] != nil }
            guard kinds.count == 1 else { throw value.error("authority \"\(name)\" needs exactly one of key, keyData, keyless") }
            var rekor: [VerificationKey] = []
            if let r = f["rekor"] {
                let rf = try r.fields(allowed: rekorKeys)
                for k in try rf["keys"]?.list() ?? [] {
                    rekor.append(try wrap(k) { try loadVerificationKey(readFile(k, baseDirectory: baseDirectory), source: try k.string()) })
                }
                if let tr = rf["trustedRoot"] {
                    rekor += try wrap(tr) {
                        try TrustedRoot(json: Data(readFile(tr, baseDirectory: baseDirectory).utf8), source: try tr.string()).tlogKeys
                    }
                }
                guard !rekor.isEmpty else { throw r.error("rekor needs keys or trustedRoot") }
            }
            let kind: Authority.Kind
            if let k = f["key"] {
                kind = .key(try wrap(k) { try loadVerificationKey(readFile(k, baseDirectory: baseDirectory), source: try k.string()) })
            } else if let k = f["keyData"] {
                kind = .key(try wrap(k) { try loadVerificationKey(k.string(), source: "keyData of \(name)") })
            } else {
                let kl = try f["keyless"]!.fields(allowed: keylessKeys)
                var roots: [Certificate] = []
                var intermediates: [Certificate] = []
                if let r = kl["roots"] {
                    roots += try wrap(r) { try CertificateAuthorities.loadPEM(readFile(r, baseDirectory: baseDirectory), source: try r.string()) }
                }
                if let i = kl["intermediates"] {
                    intermediates += try wrap(i) {
                        try CertificateAuthorities.loadPEM(readFile(i, baseDirectory: baseDirectory), source: try i.string())
                    }
                }
                if let tr = kl["trustedRoot"] {
                    let trusted = try wrap(tr) {
                        try TrustedRoot(json: Data(readFile(tr, baseDirectory: baseDirectory).utf8), source: try tr.string())
                    }
                    roots += trusted.authorities.roots
                    intermediates += trusted.authorities.intermediates
                    if f["rekor"] == nil { rekor = trusted.tlogKeys }
                }
                guard !roots.isEmpty else { throw f["keyless"]!.error("keyless authority \"\(name)\" needs roots or trustedRoot") }
                var identities: [IdentityMatcher] = []
                for i in try kl["identities"]?.list() ?? [] {
                    let fi = try i.fields(allowed: identityKeys)
                    let m = IdentityMatcher(
                        subject: try fi["subject"]?.string(), subjectRegExp: try fi["subjectRegExp"]?.string(),
                        issuer: try fi["issuer"]?.string(), issuerRegExp: try fi["issuerRegExp"]?.string())
                    try wrap(i) { try m.validate(source: "identity") }
                    identities.append(m)
                }
                guard !identities.isEmpty else {
                    throw f["keyless"]!.error(
                        "keyless authority \"\(name)\" needs at least one identity (subject/issuer), or any certificate from the CA would pass")
                }
                kind = .certificates(CertificateAuthorities(roots: roots, intermediates: intermediates), identities: identities)
            }
            authorities[name] = Authority(name: name, kind: kind, rekorKeys: rekor)
        }
        return authorities
    }

    /// Reads one rule (a `policies` entry) whose authorities are names from `authorities`.
    public static func parseRule(_ value: YAMLValue, index i: Int, authorities: [String: Authority]) throws -> Rule {
        let f = try value.fields(allowed: ruleKeys)
        let name = try f["name"]?.string() ?? "policy \(i + 1)"
        guard let imagesValue = f["images"] else { throw value.error("policy \"\(name)\" has no images patterns") }
        let images = try imagesValue.stringList()
        var names: [String] = []
        for a in try f["authorities"]?.list() ?? [] {
            let n = try a.string()
            guard authorities[n] != nil else { throw a.error("unknown authority \"\(n)\"; define it under authorities") }
            names.append(n)
        }
        let reject = try f["reject"]?.bool() ?? false
        let allowUnsigned = try f["allowUnsigned"]?.bool() ?? false
        let threshold = try f["threshold"]?.int() ?? (names.isEmpty ? 0 : 1)
        if let t = f["threshold"], threshold < 1 || threshold > names.count {
            throw t.error("threshold \(threshold) must be between 1 and the number of authorities (\(names.count))")
        }
        let attestations = try parseAttestations(f["attestations"], ruleAuthorities: names, authorities: authorities)
        if !reject && !allowUnsigned && names.isEmpty {
            throw value.error("policy \"\(name)\" names no authorities; add some, or set reject: true or allowUnsigned: true")
        }
        return Rule(
            name: name, images: images, authorities: names, threshold: threshold, attestations: attestations, reject: reject,
            allowUnsigned: allowUnsigned)
    }

    /// Reads a rule's `attestations` list; names refer to `authorities`.
    public static func parseAttestations(_ value: YAMLValue?, ruleAuthorities: [String], authorities: [String: Authority]) throws
        -> [AttestationRequirement]
    {
        var attestations: [AttestationRequirement] = []
        for a in try value?.list() ?? [] {
            let af = try a.fields(allowed: attestationKeys)
            guard let pt = af["predicateType"] else { throw a.error("attestation requirement needs predicateType") }
            let type = try wrap(pt) { try PredicateTypes.resolve(pt.string()) }
            var allowed: [String] = []
            for x in try af["authorities"]?.list() ?? [] {
                let n = try x.string()
                guard authorities[n] != nil else { throw x.error("unknown authority \"\(n)\"") }
                allowed.append(n)
            }
            if allowed.isEmpty && ruleAuthorities.isEmpty { throw a.error("attestation requirement has no authorities to verify it") }
            let conditions = try (af["conditions"]?.list() ?? []).map { try CELCondition($0) }
            attestations.append(
                AttestationRequirement(name: try af["name"]?.string() ?? type, predicateType: type, authorities: allowed, conditions: conditions))
        }
        return attestations
    }

}

/// The offline parts of a sigstore `trusted_root.json`: certificate authorities and transparency-log keys.
public struct TrustedRoot: Sendable {
    public var authorities: CertificateAuthorities
    public var tlogKeys: [VerificationKey]

    public init(json: Data, source: String) throws {
        guard let o = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw TrustError(.malformed, "\(source): not a JSON object")
        }
        var roots: [Certificate] = []
        var intermediates: [Certificate] = []
        for (i, ca) in ((o["certificateAuthorities"] as? [Any]) ?? []).enumerated() {
            let certs = (((ca as? [String: Any])?["certChain"] as? [String: Any])?["certificates"] as? [Any]) ?? []
            for (j, c) in certs.enumerated() {
                guard let b = (c as? [String: Any])?["rawBytes"] as? String, let der = Data(lenientBase64: b),
                    let cert = try? RSAKeyCheck.certificate(Array(der))
                else {
                    throw TrustError(.malformed, "\(source): certificateAuthorities[\(i)].certChain.certificates[\(j)] is not a DER certificate")
                }
                if cert.issuer == cert.subject { roots.append(cert) } else { intermediates.append(cert) }
            }
        }
        var keys: [VerificationKey] = []
        for (i, t) in ((o["tlogs"] as? [Any]) ?? []).enumerated() {
            guard let pk = (t as? [String: Any])?["publicKey"] as? [String: Any], let b = pk["rawBytes"] as? String,
                let der = Data(lenientBase64: b)
            else {
                throw TrustError(.malformed, "\(source): tlogs[\(i)].publicKey.rawBytes is missing or not base64")
            }
            keys.append(try loadVerificationKey(der: der, source: "\(source): tlogs[\(i)]"))
        }
        guard !roots.isEmpty || !keys.isEmpty else {
            throw TrustError(.malformed, "\(source): no certificateAuthorities and no tlogs")
        }
        authorities = CertificateAuthorities(roots: roots, intermediates: intermediates)
        tlogKeys = keys
    }
}
