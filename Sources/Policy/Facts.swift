import CEL
import Foundation
import OCI
import Trust

/// The facts a policy sees about one artifact, gathered from its registry (or layout) and checked by Trust. The
/// shape is the input schema of docs/policy.md; `sbom` and `vulnerabilities` are left for their producers.
public enum Facts {
    /// Facts about `subject` (known as `reference`, repository `registry/path`): the image, and every signature and
    /// attestation attached to it, each checked against `trust` (nil: reported, none verified).
    public static func gather(
        reference: String, repository: String, subject: Descriptor, in store: any ContentStore, trust: TrustPolicy?, now: Date = Date()
    ) async throws -> (facts: Value, decision: PolicyDecision?) {
        let image = try await imageFacts(reference: reference, subject: subject, in: store)
        let objects = try await Attachments.discover(subject, in: store, attestations: true)
        var decision: PolicyDecision?
        var signatureChecks: [SignatureCheck] = []
        var attestationChecks: [SignatureCheck] = []
        if let trust {
            let d = try await ImageVerification.verify(subject, objects: objects, in: store, repository: repository, policy: trust, now: now)
            decision = d
            signatureChecks = d.signatures
            attestationChecks = d.attestations
        }
        var manifest: Data?
        if objects.contains(where: { if case .messageSignature = $0.content { true } else { false } }) {
            manifest = try await store.fetchManifest(subject).bytes
        }
        var signatures: [Value] = []
        var attestations: [Value] = []
        for o in objects {
            let checks = o.isSignature ? signatureChecks : attestationChecks
            var check: SignatureCheck
            if let c = checks.first(where: { $0.location == o.location && $0.verified }) ?? checks.first(where: { $0.location == o.location }) {
                check = c
            } else {
                check = await SignatureVerifier.check(o, subject: subject, manifest: manifest, authorities: [], now: now)
                if check.reason == nil || check.reason == "" {
                    // Not checked: no trust policy given, or its rules refuse the repository outright.
                    check.reason =
                        decision.map { "not checked: " + ($0.reasons.first ?? "the trust policy has no authority for it") }
                        ?? "no trust policy or key was given to verify it"
                }
            }
            var fields: [(String, Value)] = [
                ("verified", .bool(check.verified)), ("authority", optional(check.authority)), ("identity", optional(check.identity)),
                ("layout", .string(check.layout)), ("location", .string(check.location)), ("reason", optional(check.reason)),
                ("integratedTime", check.integratedTime.map { .timestamp(seconds: $0, nanos: 0) } ?? .null),
            ]
            if o.isSignature {
                signatures.append(map(fields))
            } else {
                let statement = o.statement
                let predicate = statement.flatMap { try? Value.parseJSON([UInt8]($0.predicate)) } ?? .null
                fields.insert(("predicateType", optional(statement?.predicateType ?? o.declaredPredicateType)), at: 0)
                fields.append(("predicate", predicate))
                attestations.append(map(fields))
            }
        }
        let facts = map([
            ("image", image), ("signatures", .list(signatures)), ("attestations", .list(attestations)), ("sbom", .null),
            ("vulnerabilities", .list([])),
        ])
        return (facts, decision)
    }

    /// `image`: reference, digest, mediaType, annotations, and for an image (or an index's first linux/amd64 or
    /// first entry) its platform, created time, labels and full config document.
    static func imageFacts(reference: String, subject: Descriptor, in store: any ContentStore) async throws -> Value {
        let raw = try await store.fetchManifest(subject)
        let parsed = try raw.parsed()
        var fields: [(String, Value)] = [
            ("reference", .string(reference)), ("digest", .string(subject.digest.description)), ("mediaType", .string(raw.mediaType)),
            ("annotations", stringMap(parsed.annotations ?? [:])),
        ]
        var manifest: ImageManifest?
        switch parsed {
        case .image(let m): manifest = m
        case .index(let i):
            fields.append(
                ("manifests", .list(i.manifests.map { map([("digest", .string($0.digest.description)), ("platform", platform($0.platform))]) })))
            let pick = i.manifests.first { $0.platform?.os == "linux" && $0.platform?.architecture == "amd64" } ?? i.manifests.first
            if let pick, MediaType.isManifest(pick.mediaType), case .image(let m) = try await store.fetchManifest(pick).parsed() {
                manifest = m
            }
        }
        fields.append(("layers", .int(Int64(manifest?.layers.count ?? 0))))
        if let manifest, manifest.config.size <= 4 << 20,
            let data = try? await store.fetchVerified(manifest.config).collect(limit: 4 << 20),
            case .map(let config) = (try? Value.parseJSON([UInt8](data))) ?? .null
        {
            func field(_ name: String) -> Value? { config.first { $0.key.celEquals(.string(name)) }?.value }
            fields.append(
                (
                    "platform",
                    map([
                        ("os", field("os") ?? .null), ("architecture", field("architecture") ?? .null), ("variant", field("variant") ?? .null),
                    ])
                ))
            var created = field("created") ?? .null
            if case .string(let s) = created, let t = try? Program("timestamp(s)").evaluate(["s": .string(s)]) { created = t }
            fields.append(("created", created))
            var labels: Value = .map([])
            if case .map(let inner)? = field("config"), let l = inner.first(where: { $0.key.celEquals(.string("Labels")) })?.value, case .map = l {
                labels = l
            }
            fields.append(("labels", labels))
            fields.append(("config", .map(config)))
        } else {
            fields += [("platform", .null), ("created", .null), ("labels", .map([])), ("config", .null)]
        }
        return map(fields)
    }

    static func map(_ fields: [(String, Value)]) -> Value { .map(fields.map { (.string($0.0), $0.1) }) }
    static func optional(_ s: String?) -> Value { s.map { .string($0) } ?? .null }
    static func stringMap(_ d: [String: String]) -> Value { .map(d.sorted { $0.key < $1.key }.map { (.string($0.key), .string($0.value)) }) }
    static func platform(_ p: Platform?) -> Value {
        guard let p else { return .null }
        return map([("os", .string(p.os)), ("architecture", .string(p.architecture)), ("variant", optional(p.variant))])
    }

    /// `base` with the top-level keys of `extra` replacing its own (facts from other tools: an SBOM, a scan).
    public static func merge(_ base: Value, _ extra: Value) -> Value {
        guard case .map(var entries) = base, case .map(let more) = extra else { return base }
        for (k, v) in more {
            if let i = entries.firstIndex(where: { $0.key.celEquals(k) }) { entries[i].value = v } else { entries.append((k, v)) }
        }
        return .map(entries)
    }
}
