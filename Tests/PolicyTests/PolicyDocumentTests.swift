import CEL
import Foundation
import Policy
import Testing
import Trust

/// The documented example (docs/examples) decides over its facts and variations of them.
@Suite struct PolicyDocumentTests {
    static var docs: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/examples")
    }

    func example() throws -> (PolicyDocument, Value) {
        let doc = try PolicyDocument.load(path: Self.docs.appendingPathComponent("release-gate.yaml").path)
        let facts = try Value.parseJSON([UInt8](Data(contentsOf: Self.docs.appendingPathComponent("facts.json"))))
        return (doc, facts)
    }

    /// Replaces the value at a dotted path of a JSON-shaped value.
    func setting(_ v: Value, _ path: [String], _ new: Value) -> Value {
        guard let first = path.first else { return new }
        if case .list(var items) = v, let i = Int(first) {
            items[i] = setting(items[i], Array(path.dropFirst()), new)
            return .list(items)
        }
        guard case .map(var entries) = v else { return v }
        if let i = entries.firstIndex(where: { $0.key.celEquals(.string(first)) }) {
            entries[i].value = setting(entries[i].value, Array(path.dropFirst()), new)
        } else {
            entries.append((.string(first), setting(.map([]), Array(path.dropFirst()), new)))
        }
        return .map(entries)
    }

    func outcomes(_ r: PolicyDocument.Result) -> [String: PolicyDocument.RuleResult.Outcome] {
        Dictionary(uniqueKeysWithValues: r.rules.map { ($0.name, $0.outcome) })
    }

    @Test func theExampleDecidesTheFourSentences() throws {
        let (doc, facts) = try example()
        #expect(doc.name == "release-gate" && doc.rules.count == 5 && doc.variables.count == 2)
        let allowed = doc.evaluate(facts)
        #expect(allowed.decision == .allow, "\(allowed)")

        // Signature verified by another authority only.
        let unsigned = doc.evaluate(setting(facts, ["signatures", "0", "authority"], .string("someone")))
        #expect(unsigned.decision == .deny)
        #expect(
            unsigned.rules.first { $0.name == "signed-by-release-key" }?.message
                == "registry.example.com/products/shop:1.4.2 carries no signature verified by the release key")

        // Provenance from another builder.
        let otherBuilder = doc.evaluate(
            setting(facts, ["attestations", "0", "predicate", "runDetails", "builder", "id"], .string("https://evil.example")))
        #expect(outcomes(otherBuilder)["provenance-from-our-builder"] == .fired)

        // The critical finding loses its VEX statement.
        let open = doc.evaluate(setting(facts, ["vulnerabilities", "0", "vex"], .null))
        #expect(open.decision == .deny)
        #expect(
            open.rules.first { $0.name == "no-open-critical-vulnerability" }?.message
                == "critical vulnerabilities without a VEX statement: CVE-2024-0001 in libc6")

        // A GPL-3.0 component, in a product repository and elsewhere (where `match` skips the rule).
        let gpl = setting(facts, ["sbom", "components", "1", "licenses"], .list([.string("GPL-3.0-only")]))
        let denied = doc.evaluate(gpl)
        #expect(denied.rules.first { $0.name == "no-gpl-3" }?.message == "GPL-3.0 components: requests@2.31.0")
        let elsewhere = doc.evaluate(setting(gpl, ["image", "reference"], .string("registry.example.com/tools/x:1")))
        #expect(outcomes(elsewhere)["no-gpl-3"] == .skipped)
        #expect(elsewhere.decision == .allow)

        // No SBOM: a warning, not a denial.
        let noSBOM = doc.evaluate(setting(facts, ["sbom"], .null))
        #expect(noSBOM.decision == .warn)
        #expect(outcomes(noSBOM)["sbom-known"] == .fired)
    }

    func parse(_ rules: String, variables: String = "") throws -> PolicyDocument {
        try PolicyDocument.parse("apiVersion: warden.dev/v1\nkind: Policy\n" + variables + "rules:\n" + rules, file: "p.yaml")
    }

    /// Errors in a document name the file, line and column, before anything is evaluated.
    static let malformed: [(String, String)] = [
        ("apiVersion: warden.dev/v1\nkind: Policy\nrules: [\n", "p.yaml: not valid YAML"),
        ("apiVersion: warden.dev/v1\nkind: Policy\nrule: []\n", "p.yaml:3:1: unknown key \"rule\"; expected one of: apiVersion, kind"),
        ("apiVersion: warden.dev/v1\nkind: TrustPolicy\nrules: []\n", "p.yaml:2:7: kind must be Policy"),
        ("apiVersion: warden.dev/v1\nkind: Policy\n", "p.yaml:1:1: rules is missing"),
        ("apiVersion: warden.dev/v1\nkind: Policy\nrules: []\n", "p.yaml:3:8: a policy needs at least one rule"),
        ("apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - name: a\n    deny: true\n    when: x\n", "p.yaml:6:5: unknown key \"when\""),
        (
            "apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - name: a\n    deny: true\n    warn: true\n",
            "p.yaml:4:5: rule \"a\" needs exactly one of deny or warn"
        ),
        ("apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - deny: true\n", "p.yaml:4:5: rule needs a name"),
        (
            "apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - name: a\n    deny: true\n  - name: a\n    warn: true\n",
            "p.yaml:6:11: duplicate rule name \"a\""
        ),
        ("apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - name: a\n    deny: image.digest\n    deny: x\n", "duplicated key(s): 'deny'"),
        // Conditions: CEL syntax at the exact column, evident non-booleans.
        (
            "apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - name: a\n    deny: size(sbom.components) >\n",
            "p.yaml:5:34: invalid CEL: unexpected end of input"
        ),
        (
            "apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - name: a\n    deny: 'image.x == \"a'\n",
            "p.yaml:5:23: invalid CEL: unterminated string literal"
        ),
        (
            "apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - name: a\n    warn: size(vulnerabilities)\n",
            "p.yaml:5:11: the condition must be a bool, but `size(vulnerabilities)` is int"
        ),
        ("apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - name: a\n    deny: '\"no\"'\n", "p.yaml:5:11: the condition must be a bool"),
        ("apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - name: a\n    deny: [x]\n", "p.yaml:5:11: expected a string, found a list"),
        // Message templates: placeholders are CEL too, positioned inside the message.
        (
            "apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - name: a\n    deny: true\n    message: bad {{ image. }} here\n",
            "p.yaml:6:28: invalid CEL: expected a field or method name"
        ),
        ("apiVersion: warden.dev/v1\nkind: Policy\nrules:\n  - name: a\n    deny: true\n    message: 'open {{ x'\n", "p.yaml:6:14: unclosed {{"),
        // Variables.
        ("apiVersion: warden.dev/v1\nkind: Policy\nvariables:\n  not-ok: 1\nrules:\n  - name: a\n    deny: true\n", "p.yaml:4:11: variable name"),
        ("apiVersion: warden.dev/v1\nkind: Policy\nvariables:\n  x: 1 +\nrules:\n  - name: a\n    deny: true\n", "p.yaml:4:9: invalid CEL"),
    ]

    @Test(arguments: malformed) func malformedDocumentsAreRejectedWithPositions(_ text: String, _ message: String) {
        #expect {
            try PolicyDocument.parse(text, file: "p.yaml")
        } throws: { e in
            "\(e)".contains(message)
        }
    }

    /// What only evaluation can find: non-boolean results, missing fields, limits. The decision fails closed.
    @Test func evaluationErrorsFailClosedWithPositions() throws {
        let doc = try parse(
            """
              - name: typed
                deny: image.reference
              - name: missing
                deny: image.nothing == "x"
              - name: fine
                warn: size(signatures) == 0
              - name: slow
                warn: '[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, a < 100)))'

            """)
        let r = doc.evaluate(.map([(.string("image"), .map([(.string("reference"), .string("r/x:1"))]))]), limits: .init(cost: 1_000))
        #expect(r.decision == .error)
        let byName = Dictionary(uniqueKeysWithValues: r.rules.map { ($0.name, $0) })
        #expect(byName["typed"]?.error == "p.yaml:5:11: the condition `image.reference` yielded string, not bool")
        #expect(byName["missing"]?.error?.hasPrefix("p.yaml:7:16: `image.nothing == \"x\"`: no such key: nothing") == true, "\(r)")
        #expect(byName["fine"]?.outcome == .fired)
        #expect(byName["slow"]?.error?.contains("evaluation exceeded the cost limit of 1000 steps") == true)
    }

    /// IANA zones mean the same in a policy as in `cel eval`: one resolver for every document.
    @Test func ianaTimeZonesWorkInPolicies() throws {
        let doc = try parse(
            """
              - name: office-hours
                deny: now.getHours("America/New_York") == 8 && now.getHours("Europe/Berlin") == 14

            """)
        let r = doc.evaluate(.map([]), now: Date(timeIntervalSince1970: 1_782_907_200))  // 2026-07-01T12:00:00Z
        #expect(r.rules[0].error == nil, "\(r.rules[0].error ?? "")")
        #expect(r.decision == .deny)
    }

    @Test func variablesSeeEarlierVariablesAndNowIsABinding() throws {
        let doc = try parse(
            """
              - name: old
                warn: now - image.created > variables.maxAge
                message: "built {{ string(now - image.created) }} ago; the limit is {{ variables.maxAge }}"

            """,
            variables: "variables:\n  days: 30\n  maxAge: duration(string(variables.days * 24) + 'h')\n")
        let input = Value.map([(.string("image"), .map([(.string("created"), .timestamp(seconds: 1_700_000_000, nanos: 0))]))])
        let fresh = doc.evaluate(input, now: Date(timeIntervalSince1970: 1_700_000_000 + 86_400))
        #expect(fresh.decision == .allow)
        let stale = doc.evaluate(input, now: Date(timeIntervalSince1970: 1_700_000_000 + 40 * 86_400))
        #expect(stale.decision == .warn)
        #expect(stale.rules[0].message == "built 3456000s ago; the limit is \"2592000s\"")
        // The input's own `now` (RFC 3339) wins over the clock.
        let pinned = Facts.merge(input, .map([(.string("now"), .string("2023-12-31T00:00:00Z"))]))
        #expect(doc.evaluate(pinned, now: Date(timeIntervalSince1970: 0)).decision == .warn)
    }
}
