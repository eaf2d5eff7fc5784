import Foundation
import OCI

/// An in-toto Statement (v0.1 or v1): subjects named by digest, a predicate type, and a predicate.
public struct InTotoStatement: Sendable {
    public static let typeV01 = "https://in-toto.io/Statement/v0.1"
    public static let typeV1 = "https://in-toto.io/Statement/v1"
    /// The predicate cosign v3 signs for a plain image signature in the bundle format.
    public static let cosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"

    public struct Subject: Sendable, Equatable {
        public var name: String
        public var digest: [String: String]
        public init(name: String, digest: [String: String]) {
            self.name = name
            self.digest = digest
        }
    }

    public var type: String
    public var subjects: [Subject]
    public var predicateType: String
    /// The predicate as JSON bytes (kept for policy conditions over attestation contents).
    public var predicate: Data

    public init(type: String = typeV1, subjects: [Subject], predicateType: String, predicate: Data) {
        self.type = type
        self.subjects = subjects
        self.predicateType = predicateType
        self.predicate = predicate
    }

    /// Whether one of the subjects names `digest`.
    public func binds(_ digest: OCI.Digest) -> Bool {
        subjects.contains { $0.digest[digest.algorithm.rawValue]?.lowercased() == digest.hex }
    }

    /// Canonical statement bytes (sorted keys, unescaped slashes).
    public func json() throws -> Data {
        let predicateObject: Any
        do {
            predicateObject = try JSONSerialization.jsonObject(with: predicate, options: [.fragmentsAllowed])
        } catch {
            throw TrustError(.malformed, "predicate is not JSON: \(error.localizedDescription)")
        }
        let object: [String: Any] = [
            "_type": type,
            "subject": subjects.map { ["name": $0.name, "digest": $0.digest] as [String: Any] },
            "predicateType": predicateType,
            "predicate": predicateObject,
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    /// Parses a statement; `source` names the input in errors. Both Statement v0.1 and v1 are accepted.
    public init(json data: Data, source: String) throws {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TrustError(.malformed, "\(source): the in-toto statement is not a JSON object")
        }
        guard let type = object["_type"] as? String else { throw TrustError(.malformed, "\(source): in-toto statement has no \"_type\"") }
        guard type == Self.typeV01 || type == Self.typeV1 else {
            throw TrustError(.unsupported, "\(source): in-toto statement type \"\(type)\" is not \(Self.typeV01) or \(Self.typeV1)")
        }
        guard let predicateType = object["predicateType"] as? String, !predicateType.isEmpty else {
            throw TrustError(.malformed, "\(source): in-toto statement has no \"predicateType\"")
        }
        guard let subjects = object["subject"] as? [Any], !subjects.isEmpty else {
            throw TrustError(.malformed, "\(source): in-toto statement has no \"subject\" list")
        }
        var parsed: [Subject] = []
        for (i, s) in subjects.enumerated() {
            guard let entry = s as? [String: Any], let digest = entry["digest"] as? [String: String] else {
                throw TrustError(.malformed, "\(source): in-toto subject \(i) has no \"digest\" map of strings")
            }
            parsed.append(Subject(name: entry["name"] as? String ?? "", digest: digest))
        }
        let predicate = object["predicate"] ?? NSNull()
        self.type = type
        self.subjects = parsed
        self.predicateType = predicateType
        self.predicate = (try? JSONSerialization.data(withJSONObject: predicate, options: [.sortedKeys, .fragmentsAllowed])) ?? Data("null".utf8)
    }
}

/// cosign's short names for predicate types (`--type`); any other value must be a URI and is used as is.
public enum PredicateTypes {
    public static let aliases: [(String, String)] = [
        ("slsaprovenance", "https://slsa.dev/provenance/v0.2"),
        ("slsaprovenance02", "https://slsa.dev/provenance/v0.2"),
        ("slsaprovenance1", "https://slsa.dev/provenance/v1"),
        ("link", "https://in-toto.io/Link/v1"),
        ("spdx", "https://spdx.dev/Document"),
        ("spdxjson", "https://spdx.dev/Document"),
        ("cyclonedx", "https://cyclonedx.org/bom"),
        ("vuln", "https://cosign.sigstore.dev/attestation/vuln/v1"),
        ("openvex", "https://openvex.dev/ns"),
        ("custom", "https://cosign.sigstore.dev/attestation/v1"),
    ]

    /// The predicate type URI for a short name or URI.
    public static func resolve(_ name: String) throws -> String {
        if let hit = aliases.first(where: { $0.0 == name.lowercased() }) { return hit.1 }
        guard name.contains(":"), URL(string: name) != nil else {
            throw TrustError(
                .unsupported, "predicate type \"\(name)\" is neither a URI nor one of \(aliases.map(\.0).joined(separator: ", "))")
        }
        return name
    }

    /// Whether a statement's predicate type satisfies a wanted type (openvex documents carry versioned URIs).
    public static func matches(_ actual: String, wanted: String) -> Bool {
        if actual == wanted { return true }
        if wanted == "https://openvex.dev/ns" { return actual.hasPrefix("https://openvex.dev/ns") }
        return false
    }
}
