import CEL
import Documents
import Foundation
import OCI

/// The verdict on one image: what was found, what verified, and why it is allowed or not.
public struct PolicyDecision: Sendable, Codable {
    public enum Outcome: String, Sendable, Codable {
        case allowed
        /// Nothing was attached that could satisfy the policy (no signature, no attestation of a required type).
        case noSignature = "no-signature"
        /// Signatures or attestations were found, but not enough of them verified.
        case invalid
        /// The policy refuses the image outright (a `reject` rule, or no rule matches it).
        case rejected
    }
    public var repository: String
    public var digest: String
    public var policy: String?
    public var outcome: Outcome
    public var reasons: [String]
    public var signatures: [SignatureCheck]
    public var attestations: [SignatureCheck]
}

public enum ImageVerification {
    /// Verifies `subject` (in `store`, known as `repository` = `registry/path`) against the policy rule that matches
    /// it. With `signatures: false` only attestation requirements are evaluated; `extraAttestations` adds
    /// required predicate types (verified by the rule's authorities). When only signatures are asked for, the
    /// referrers are looked up only if the `.sig` tag does not satisfy the rule; `exhaustive` looks everywhere and
    /// reports every signature and attestation found.
    public static func verify(
        _ subject: Descriptor, in store: any ContentStore, repository: String, policy: TrustPolicy,
        signatures: Bool = true, extraAttestations: [String] = [], exhaustive: Bool = false, now: Date = Date()
    ) async throws -> PolicyDecision {
        let (decision, found) = start(subject, repository: repository, policy: policy)
        guard let rule = found else { return decision }
        let wantsAttestations = !rule.attestations.isEmpty || !extraAttestations.isEmpty
        if exhaustive || wantsAttestations {
            let objects = try await Attachments.discover(subject, in: store, attestations: true)
            return try await evaluate(objects, decision, rule, policy, subject, store, signatures, extraAttestations, now)
        }
        // Signatures only: cosign's .sig tag first; referrers (bundle signatures) only when it does not suffice.
        let tagged = try await Attachments.fromTag("\(subject.digest.tagSchema).sig", layout: .sigTag, in: store)
        let first = try await evaluate(tagged, decision, rule, policy, subject, store, signatures, extraAttestations, now)
        if first.outcome == .allowed { return first }
        let referred = try await Attachments.fromReferrers(subject, in: store)
        return try await evaluate(tagged + referred, decision, rule, policy, subject, store, signatures, extraAttestations, now)
    }

    /// The decision before anything is checked: refused when no rule matches or the rule rejects.
    static func start(_ subject: Descriptor, repository: String, policy: TrustPolicy) -> (PolicyDecision, TrustPolicy.Rule?) {
        var decision = PolicyDecision(
            repository: repository, digest: subject.digest.description, policy: nil, outcome: .rejected, reasons: [], signatures: [],
            attestations: [])
        guard let rule = policy.rule(for: repository) else {
            decision.reasons = ["no policy matches \(repository)"]
            return (decision, nil)
        }
        decision.policy = rule.name
        if rule.reject {
            decision.reasons = ["policy \"\(rule.name)\" rejects \(repository)"]
            return (decision, nil)
        }
        return (decision, rule)
    }

    /// Like `verify(exhaustive: true)` over attachments already discovered (`Attachments.discover`), for callers
    /// that need the objects themselves too (the statements behind attestation checks).
    public static func verify(
        _ subject: Descriptor, objects: [SignedObject], in store: any ContentStore, repository: String, policy: TrustPolicy, now: Date = Date()
    ) async throws -> PolicyDecision {
        let (decision, found) = start(subject, repository: repository, policy: policy)
        guard let rule = found else { return decision }
        return try await evaluate(objects, decision, rule, policy, subject, store, true, [], now)
    }

    static func evaluate(
        _ objects: [SignedObject], _ start: PolicyDecision, _ rule: TrustPolicy.Rule, _ policy: TrustPolicy, _ subject: Descriptor,
        _ store: any ContentStore, _ signatures: Bool, _ extraAttestations: [String], _ now: Date
    ) async throws -> PolicyDecision {
        var decision = start
        var manifest: Data?
        if objects.contains(where: { if case .messageSignature = $0.content { true } else { false } }) {
            manifest = try await store.fetchManifest(subject).bytes
        }
        let ruleAuthorities = rule.authorities.compactMap { policy.authorities[$0] }
        var failures: [(PolicyDecision.Outcome, String)] = []

        // Signatures: `threshold` distinct authorities must each verify one.
        // Signature checks are skipped when only attestations are asked for.
        let sigObjects = signatures ? objects.filter(\.isSignature) : []
        for o in sigObjects {
            decision.signatures.append(await SignatureVerifier.check(o, subject: subject, manifest: manifest, authorities: ruleAuthorities, now: now))
        }
        if signatures && !rule.allowUnsigned && rule.threshold > 0 {
            let verifiedBy = Set(decision.signatures.filter(\.verified).compactMap(\.authority))
            if verifiedBy.count < rule.threshold {
                if sigObjects.isEmpty {
                    failures.append((.noSignature, "no signature found"))
                } else {
                    failures.append(
                        (
                            .invalid,
                            "\(verifiedBy.count) of the \(rule.threshold) required authorities (\(rule.authorities.joined(separator: ", "))) verified a signature"
                        ))
                }
            }
        }

        // Attestations: each required predicate type needs one verified attestation.
        var requirements = rule.attestations
        for t in extraAttestations where !requirements.contains(where: { $0.predicateType == t }) {
            requirements.append(TrustPolicy.AttestationRequirement(name: t, predicateType: t, authorities: []))
        }
        let attObjects = objects.filter { !$0.isSignature }
        var checked: [String: SignatureCheck] = [:]
        for req in requirements {
            let authorities = (req.authorities.isEmpty ? rule.authorities : req.authorities).compactMap { policy.authorities[$0] }
            let candidates = attObjects.filter {
                PredicateTypes.matches($0.statement?.predicateType ?? $0.declaredPredicateType ?? "", wanted: req.predicateType)
            }
            var ok = false
            var unmet: [String] = []
            for o in candidates {
                var c = await SignatureVerifier.check(o, subject: subject, manifest: manifest, authorities: authorities, now: now)
                if c.verified {
                    if let problem = conditionFailure(req.conditions, o.statement) {
                        c.reason = problem
                        unmet.append(problem)
                    } else {
                        ok = true
                    }
                }
                let key = o.location + (c.authority ?? "")
                if checked[key] == nil || c.verified { checked[key] = c }
            }
            if rule.allowUnsigned || ok { continue }
            if !unmet.isEmpty {
                failures.append(
                    (.invalid, "no verified attestation of type \(req.predicateType) meets the conditions: " + unmet.joined(separator: "; ")))
            } else if candidates.isEmpty {
                failures.append((.noSignature, "no attestation of type \(req.predicateType)"))
            } else {
                failures.append((.invalid, "no attestation of type \(req.predicateType) verified"))
            }
        }
        // Report unrequested attestations too, checked against the rule's authorities.
        for o in attObjects where !checked.keys.contains(where: { $0.hasPrefix(o.location) }) {
            checked[o.location] = await SignatureVerifier.check(o, subject: subject, manifest: manifest, authorities: ruleAuthorities, now: now)
        }
        decision.attestations = checked.values.sorted { ($0.predicateType ?? "", $0.location) < ($1.predicateType ?? "", $1.location) }
        decision.reasons = failures.map(\.1)
        if failures.isEmpty {
            decision.outcome = .allowed
        } else {
            decision.outcome = failures.contains { $0.0 == .invalid } ? .invalid : .noSignature
        }
        return decision
    }

    /// Why a verified statement fails a requirement's conditions (false, an error or not a bool), or nil if it meets them.
    static func conditionFailure(_ conditions: [CELCondition], _ statement: InTotoStatement?) -> String? {
        guard !conditions.isEmpty else { return nil }
        guard let statement else { return "the attestation carries no in-toto statement to test the conditions on" }
        let predicate: Value
        do { predicate = try Value.parseJSON([UInt8](statement.predicate)) } catch { return "the predicate is not valid JSON: \(error)" }
        let bindings: [String: Value] = [
            "predicate": predicate, "predicateType": .string(statement.predicateType),
            "subject": .list(
                statement.subjects.map { s in
                    .map([
                        (.string("name"), .string(s.name)),
                        (.string("digest"), .map(s.digest.sorted { $0.key < $1.key }.map { (.string($0.key), .string($0.value)) })),
                    ])
                }),
        ]
        for c in conditions {
            switch c.test(bindings) {
            case .success(true): continue
            case .success(false): return "condition `\(c.source)` (\(c.position)) is false"
            case .failure(let e): return "\(e)"
            }
        }
        return nil
    }

    /// A one-rule policy from command-line authorities: every image must carry a signature from one of them
    /// (`threshold` 1), and the listed attestation types.
    public static func adHocPolicy(_ authorities: [Authority], attestations: [String] = []) -> TrustPolicy {
        let names = authorities.map(\.name)
        return TrustPolicy(
            authorities: Dictionary(uniqueKeysWithValues: authorities.map { ($0.name, $0) }),
            rules: [
                TrustPolicy.Rule(
                    name: "command line", images: ["**"], authorities: names, threshold: 1,
                    attestations: attestations.map { TrustPolicy.AttestationRequirement(name: $0, predicateType: $0, authorities: []) },
                    reject: false, allowUnsigned: false)
            ])
    }
}
