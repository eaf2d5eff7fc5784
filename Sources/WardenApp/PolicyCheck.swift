import CEL
import Foundation
import OCI
import OCIRegistry
import Policy
import Trust

/// The policy job (`warden policy eval`, `warden policy check`, `policy/eval@v1`): a policy document decides over
/// an artifact's facts — the ones gathered from the image (its manifest, config, signatures and attestations,
/// verified through `trust`), merged with facts from other tools (their top-level keys replace the gathered ones).
public enum PolicyJob {
    public struct Request: Sendable {
        /// The image whose facts are gathered; nil to decide over `facts` alone.
        public var image: Location?
        /// The image as the user wrote it (the `image.reference` fact).
        public var reference: String
        /// Verifies signatures and attestations; without it they are listed with `verified: false`.
        public var trust: TrustPolicy?
        /// More facts (an SBOM, a scan), merged over the gathered ones.
        public var facts: Value?
        /// The time rules see as `now`.
        public var now: Date
        public var limits: PolicyDocument.Limits

        public init(
            image: Location?, reference: String? = nil, trust: TrustPolicy? = nil, facts: Value? = nil, now: Date = Date(),
            limits: PolicyDocument.Limits = .init()
        ) {
            self.image = image
            self.reference = reference ?? image?.description ?? ""
            self.trust = trust
            self.facts = facts
            self.now = now
            self.limits = limits
        }
    }

    public struct Report: Sendable {
        /// The facts the policy saw.
        public var facts: Value
        public var result: PolicyDocument.Result
    }

    /// The facts `request` names: gathered from its image (when it names one), merged with its own.
    public static func facts(_ request: Request, registries: Registries) async throws -> Value {
        guard let image = request.image else { return request.facts ?? .map([]) }
        let store = try registries.store(for: image, create: false)
        let subject = try await store.resolve(image.resolvedReference)
        let gathered = try await Facts.gather(
            reference: request.reference, repository: image.repositoryName, subject: subject, in: store, trust: request.trust, now: request.now
        ).facts
        return request.facts.map { Facts.merge(gathered, $0) } ?? gathered
    }

    /// Gathers the facts and evaluates `document` over them.
    public static func check(_ document: PolicyDocument, _ request: Request, registries: Registries) async throws -> Report {
        let facts = try await facts(request, registries: registries)
        return Report(facts: facts, result: document.evaluate(facts, now: request.now, limits: request.limits))
    }

}
