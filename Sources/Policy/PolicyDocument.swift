import CEL
import Documents
import Foundation
import OCI

/// A policy document (`kind: Policy`): named rules whose CEL conditions deny or warn over an artifact's facts
/// (see docs/policy.md for the format and the input schema).
public struct PolicyDocument: Sendable {
    public enum Effect: String, Sendable, Codable {
        case deny, warn
    }

    public struct Rule: Sendable {
        public var name: String
        /// Globs over `registry/repository` of `image.reference`; empty means every input.
        public var match: [String]
        public var effect: Effect
        /// True when the rule fires (the artifact is denied or warned about).
        public var condition: CELCondition
        public var message: MessageTemplate?
    }

    public var name: String
    public var file: String
    /// Named expressions evaluated once per input, in order, visible to later ones and to rules as `variables.NAME`.
    public var variables: [(name: String, expression: CELCondition)]
    public var rules: [Rule]

    static let topKeys = ["apiVersion", "kind", "name", "description", "variables", "rules"]
    static let ruleKeys = ["name", "description", "match", "deny", "warn", "message"]

    public static func load(path: String) throws -> PolicyDocument {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw YAMLError(position: path, message: "cannot read the file", code: .unreadable)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw YAMLError(position: path, message: "the file is not UTF-8", code: .unreadable)
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> PolicyDocument {
        let root = try YAMLValue.parse(text, file: file)
        let f = try root.fields(allowed: topKeys)
        guard let api = f["apiVersion"] else { throw root.error("apiVersion is missing (expected warden.dev/v1)") }
        guard try api.string() == "warden.dev/v1" else { throw api.error("apiVersion must be warden.dev/v1") }
        guard let kind = f["kind"] else { throw root.error("kind is missing (expected Policy)") }
        guard try kind.string() == "Policy" else { throw kind.error("kind must be Policy for a policy document") }
        var doc = PolicyDocument(
            name: try f["name"]?.string() ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent, file: file,
            variables: [], rules: [])
        var names = Set<String>()
        for (name, v) in try f["variables"]?.mapping(allowed: nil) ?? [] {
            guard isIdentifier(name) else { throw v.error("variable name \"\(name)\" is not an identifier") }
            doc.variables.append((name, try CELCondition(v, boolean: false)))
        }
        guard let rules = f["rules"] else { throw root.error("rules is missing: a policy needs at least one rule") }
        for r in try rules.list() {
            let rf = try r.fields(allowed: ruleKeys)
            guard let nameValue = rf["name"] else { throw r.error("rule needs a name") }
            let name = try nameValue.string()
            guard names.insert(name).inserted else { throw nameValue.error("duplicate rule name \"\(name)\"") }
            let effects = [rf["deny"].map { (Effect.deny, $0) }, rf["warn"].map { (Effect.warn, $0) }].compactMap { $0 }
            guard effects.count == 1, let (effect, conditionValue) = effects.first else {
                throw r.error("rule \"\(name)\" needs exactly one of deny or warn (a CEL condition that is true when the rule fires)")
            }
            var match: [String] = []
            if let m = rf["match"] {
                // One pattern or a list of them.
                if case .scalar = m.node { match = [try m.string()] } else { match = try m.stringList() }
            }
            doc.rules.append(
                Rule(
                    name: name, match: match, effect: effect, condition: try CELCondition(conditionValue),
                    message: try rf["message"].map { try MessageTemplate($0) }))
        }
        if doc.rules.isEmpty { throw rules.error("a policy needs at least one rule") }
        return doc
    }

    static func isIdentifier(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || first.properties.isAlphabetic, first.isASCII else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || $0.properties.isAlphabetic || ("0"..."9").contains($0)) }
    }

    // MARK: Evaluation

    public enum Decision: String, Sendable, Codable {
        /// No deny or warn rule fired.
        case allow
        /// Only warn rules fired.
        case warn
        /// A deny rule fired.
        case deny
        /// A rule could not be evaluated (missing field, type error, limit): the policy fails closed.
        case error
    }

    public struct RuleResult: Sendable, Codable, Equatable {
        public enum Outcome: String, Sendable, Codable {
            /// The condition was false.
            case pass
            /// The condition was true: the rule's effect applies.
            case fired
            /// `match` excluded the image.
            case skipped
            case error
        }
        public var name: String
        public var effect: Effect
        public var outcome: Outcome
        public var message: String?
        public var error: String?
    }

    public struct Result: Sendable, Codable, Equatable {
        public var policy: String
        public var decision: Decision
        public var rules: [RuleResult]
    }

    /// Limits for each expression evaluated.
    public struct Limits: Sendable {
        public var cost: Int
        public var time: Duration?
        public init(cost: Int = 1_000_000, time: Duration? = .seconds(1)) {
            self.cost = cost
            self.time = time
        }
    }

    /// Evaluates every rule over `input` (a map following the input schema; missing lists default to empty,
    /// a missing `sbom` to null). `now` is bound as a timestamp: the input's `now` if it has one, else this value.
    public func evaluate(_ input: Value, now: Date = Date(), limits: Limits = Limits()) -> Result {
        var bindings = Self.bindings(for: input, now: now)
        var variableErrors: [String] = []
        var computed: [(key: Value, value: Value)] = []
        for (name, expression) in variables {
            bindings["variables"] = .map(computed)
            switch expression.value(bindings, costLimit: limits.cost, timeLimit: limits.time) {
            case .success(let v): computed.append((.string(name), v))
            case .failure(let e): variableErrors.append("variable \(name): \(e)")
            }
        }
        bindings["variables"] = .map(computed)
        let repository = Self.repository(of: input)

        var results: [RuleResult] = []
        for rule in rules {
            var r = RuleResult(name: rule.name, effect: rule.effect, outcome: .pass)
            if !rule.match.isEmpty {
                guard let repository, rule.match.contains(where: { globMatch($0, repository) }) else {
                    r.outcome = .skipped
                    results.append(r)
                    continue
                }
            }
            switch rule.condition.test(bindings, costLimit: limits.cost, timeLimit: limits.time) {
            case .success(false): r.outcome = .pass
            case .success(true):
                r.outcome = .fired
                r.message = rule.message?.render(bindings, limits: limits)
            case .failure(let e):
                r.outcome = .error
                // A variable that failed explains a rule that used it.
                r.error = ([e.description] + variableErrors).joined(separator: "; ")
            }
            results.append(r)
        }
        let decision: Decision =
            if results.contains(where: { $0.outcome == .error }) {
                .error
            } else if results.contains(where: { $0.outcome == .fired && $0.effect == .deny }) {
                .deny
            } else if results.contains(where: { $0.outcome == .fired }) {
                .warn
            } else {
                .allow
            }
        return Result(policy: name, decision: decision, rules: results)
    }

    /// The input's top-level keys as variables, with the schema's defaults and `now`.
    static func bindings(for input: Value, now: Date) -> [String: Value] {
        var b: [String: Value] = ["signatures": .list([]), "attestations": .list([]), "vulnerabilities": .list([]), "sbom": .null, "image": .map([])]
        if case .map(let entries) = input {
            for (k, v) in entries { if case .string(let name) = k { b[name] = v } }
        }
        if b["now"] == nil {
            let t = now.timeIntervalSince1970
            b["now"] = .timestamp(seconds: Int64(t.rounded(.down)), nanos: Int32((t - t.rounded(.down)) * 1e9))
        } else if case .string(let s) = b["now"]!, let ts = try? Program("timestamp(s)").evaluate(["s": .string(s)]) {
            b["now"] = ts
        }
        return b
    }

    /// `registry/repository` of `image.reference`, for `match`.
    static func repository(of input: Value) -> String? {
        guard case .map(let entries) = input,
            case .map(let image)? = entries.first(where: { $0.key.celEquals(.string("image")) })?.value,
            case .string(let ref)? = image.first(where: { $0.key.celEquals(.string("reference")) })?.value,
            let parsed = try? Reference(parsing: ref)
        else { return nil }
        return parsed.registry + "/" + parsed.repository
    }
}

/// A message with `{{ expression }}` placeholders, rendered when its rule fires. Strings are inserted as they are,
/// lists as their elements joined by ", ", other values as JSON.
public struct MessageTemplate: Sendable {
    enum Part: Sendable {
        case text(String)
        case expression(CELCondition)
    }
    let parts: [Part]
    public let source: String

    init(_ value: YAMLValue) throws {
        source = try value.string()
        var parts: [Part] = []
        var rest = Substring(source)
        var offset = 0
        while let open = rest.range(of: "{{") {
            parts.append(.text(String(rest[..<open.lowerBound])))
            offset += rest[..<open.lowerBound].unicodeScalars.count + 2
            let after = rest[open.upperBound...]
            guard let close = after.range(of: "}}") else { throw value.error("unclosed {{ in the message template") }
            let expression = String(after[..<close.lowerBound])
            parts.append(.expression(try CELCondition(expression: expression, in: value, offset: offset, boolean: false)))
            offset += expression.unicodeScalars.count + 2
            rest = after[close.upperBound...]
        }
        parts.append(.text(String(rest)))
        self.parts = parts
    }

    func render(_ bindings: [String: Value], limits: PolicyDocument.Limits) -> String {
        var out = ""
        for p in parts {
            switch p {
            case .text(let t): out += t
            case .expression(let e):
                switch e.value(bindings, costLimit: limits.cost, timeLimit: limits.time) {
                case .success(let v): out += Self.text(v)
                case .failure(let err): out += "<\(err)>"
                }
            }
        }
        return out
    }

    static func text(_ v: Value) -> String {
        switch v {
        case .string(let s): s
        case .list(let items): items.map(text).joined(separator: ", ")
        default: v.jsonText()
        }
    }
}
