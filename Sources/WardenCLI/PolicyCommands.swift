import ArgumentParser
import CEL
import CommandSupport
import Documents
import Foundation
import OCI
import Policy
import Trust
import WardenApp

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Decide over an artifact's facts with a policy document; lint policies; import a containers policy.json.",
        discussion: """
            Exit codes of eval and check: 0 allow (warnings are printed), 12 deny, 14 warn with --fail-on-warn, \
            15 policy error (the policy or the input is malformed, or a rule could not be evaluated: fail closed).
            """,
        subcommands: [Eval.self, Check.self, Lint.self, Import.self])

    struct Eval: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eval",
            abstract: "Evaluate a policy document over facts in a JSON file (the input schema of docs/policy.md).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Policy YAML file (kind: Policy).") var policy: String
        @Option(name: .long, help: "Facts: a JSON object following the input schema.") var input: String
        @OptionGroup var decision: DecisionOptions

        func run() async throws {
            let doc = try decision.load(policy)
            let facts: Value
            do { facts = .map(try readJSONObject(input).sorted { $0.key < $1.key }.map { (.string($0.key), $0.value) }) } catch {
                printError("error: --input \(error)")
                throw ExitCode(15)
            }
            try decision.report(doc.evaluate(facts, now: try decision.nowDate(), limits: decision.limits), global: global)
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Gather an artifact's facts (image, signatures, attestations checked by Trust) and evaluate a policy over them.",
            discussion: """
                Signatures and attestations count as verified only through --trust-policy or --key; without either \
                they are listed with verified false. --facts adds facts from other tools (an SBOM, a scan): its \
                top-level keys replace the gathered ones.
                """)
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Image reference or oci-layout:PATH[:TAG|@DIGEST].") var reference: String
        @Option(name: .long, help: "Policy YAML file (kind: Policy).") var policy: String
        @Option(name: .long, help: "Trust policy that verifies signatures and attestations (docs/trust-policy.md).") var trustPolicy: String?
        @Option(name: .long, help: "Public key that verifies signatures and attestations (instead of --trust-policy).") var key: String?
        @Option(name: .long, help: "JSON object of more facts, merged over the gathered ones.") var facts: String?
        @Option(name: .long, help: "Write the facts the policy saw to this file (JSON).") var factsOutput: String?
        @OptionGroup var decision: DecisionOptions

        func validate() throws {
            if trustPolicy != nil && key != nil { throw ValidationError("give --trust-policy or --key, not both") }
        }

        func run() async throws {
            let doc = try decision.load(policy)
            let location = try parseLocation(reference)
            let trust: TrustPolicy?
            do {
                trust =
                    trustPolicy == nil && key == nil
                    ? nil : try VerificationJob.trustPolicy(AuthoritySpec(policy: trustPolicy, key: key)) { try readFile($0, what: $1) }
            } catch let e as TrustError {
                throw ValidationError(e.reason)
            }
            var extra: Value?
            if let facts {
                do { extra = .map(try readJSONObject(facts).sorted { $0.key < $1.key }.map { (.string($0.key), $0.value) }) } catch {
                    printError("error: --facts \(error)")
                    throw ExitCode(15)
                }
            }
            let request = PolicyJob.Request(
                image: location, reference: reference, trust: trust, facts: extra, now: try decision.nowDate(), limits: decision.limits)
            let report = try await withRegistries(global) { registries in try await PolicyJob.check(doc, request, registries: registries) }
            if let factsOutput {
                try Data((report.facts.jsonText(sortedKeys: true) + "\n").utf8).write(to: URL(fileURLWithPath: factsOutput), options: .atomic)
            }
            try decision.report(report.result, global: global)
        }
    }

    struct Lint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lint",
            abstract: "Read a policy document or a trust policy (by its kind) and report the first error with its line and column.")
        @Argument(help: "Policy or trust policy YAML file.") var file: String
        @Option(name: .long, help: "Trust policies: also print which rule a repository (registry/path) falls under.") var image: [String] = []

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else {
                printError("error: \(file): cannot read the file")
                throw ExitCode(1)
            }
            let root = try? YAMLValue.parse(String(decoding: data, as: UTF8.self), file: file)
            let kind = try? root?.mapping(allowed: nil).first { $0.key == "kind" }?.value.string()
            if kind == "Policy" {
                do {
                    let doc = try PolicyDocument.load(path: file)
                    print("\(file): policy \"\(doc.name)\", \(doc.rules.count) rules, \(doc.variables.count) variables")
                } catch {
                    printError("error: \(error)")
                    throw ExitCode(1)
                }
                return
            }
            let policy: TrustPolicy
            do { policy = try TrustPolicy.load(path: file) } catch let e as TrustError {
                printError("error: \(e.reason)")
                throw ExitCode(1)
            }
            print("\(file): \(policy.rules.count) policies, \(policy.authorities.count) authorities")
            for i in image {
                print("\(i): " + (policy.rule(for: i).map { "policy \"\($0.name)\"" } ?? "no policy matches (refused)"))
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Convert a containers policy.json (docker transport, sigstoreSigned requirements) to a trust policy.")
        @Argument(help: "policy.json file.") var file: String
        @Option(name: .long, help: "Write the policy here instead of standard output.") var outputFile: String?

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
            let yaml: String
            do { yaml = try ContainersPolicyImport.convert(data, source: file) } catch let e as TrustError {
                printError("error: \(e.reason)")
                throw ExitCode(1)
            }
            if let outputFile {
                try Data(yaml.utf8).write(to: URL(fileURLWithPath: outputFile), options: .atomic)
            } else {
                print(yaml, terminator: "")
            }
        }
    }
}

/// Options shared by `policy eval` and `policy check`: limits, the clock, and how the decision is reported.
struct DecisionOptions: ParsableArguments {
    @Option(name: .long, help: "The time rules see as `now` (RFC 3339); default: the input's `now`, else the current time.") var now: String?
    @Flag(name: .long, help: "Exit 14 when warn rules fired (and no deny rule did).") var failOnWarn = false
    @Option(name: .long, help: "Evaluation steps allowed per expression.") var costLimit = 1_000_000
    @Option(name: .long, help: "Wall-clock seconds allowed per expression.") var timeLimit = 1.0

    var limits: PolicyDocument.Limits { .init(cost: costLimit, time: .milliseconds(Int64(timeLimit * 1000))) }

    func load(_ path: String) throws -> PolicyDocument {
        do { return try PolicyDocument.load(path: path) } catch {
            printError("error: \(error)")
            throw ExitCode(15)
        }
    }

    func nowDate() throws -> Date {
        guard let now else { return Date() }
        guard let date = RFC3339.date(now) else { throw ValidationError("--now \(now) is not an RFC 3339 timestamp") }
        return date
    }

    func report(_ result: PolicyDocument.Result, global: GlobalOptions) throws {
        switch global.output {
        case .json: try printJSON(result)
        case .text:
            print("policy \(result.policy): \(result.decision.rawValue)")
            for r in result.rules {
                let tag: String
                switch r.outcome {
                case .pass: tag = "pass "
                case .fired: tag = r.effect == .deny ? "DENY " : "warn "
                case .skipped: tag = "skip "
                case .error: tag = "ERROR"
                }
                let detail = r.message ?? r.error ?? (r.outcome == .skipped ? "match excludes the image" : nil)
                print("  \(tag) \(r.name)" + (detail.map { ": \($0)" } ?? ""))
            }
        }
        switch result.decision {
        case .allow: return
        case .warn: if failOnWarn { throw ExitCode(14) }
        case .deny: throw ExitCode(12)
        case .error: throw ExitCode(15)
        }
    }
}

/// `bench/cel.sh`'s Warden side: parse a policy and evaluate it many times over one input, in one process.
