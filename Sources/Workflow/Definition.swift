import CEL
import Documents
import Foundation
import Yams

/// A workflow definition (`kind: Workflow`): typed inputs, steps that use versioned actions or control the run
/// (approvals, timers), a DAG from `needs` and from the step outputs expressions read. Validated entirely before a
/// run starts; every error names the file, line and column. See docs/workflows.md.
public struct WorkflowDefinition: Sendable {
    public enum InputType: String, Sendable, CaseIterable {
        case string, int, double, bool, list, map, any
    }

    public struct Input: Sendable {
        public var name: String
        public var type: InputType
        public var defaultValue: Value?
        public var required: Bool { defaultValue == nil }
    }

    /// A value in `with:`/`outputs:`: a literal, a whole `${{ expression }}` (any type), or a string with
    /// `${{ }}` parts.
    public enum Argument: Sendable {
        case literal(Value)
        case expression(CELCondition)
        case interpolated([Part])
        /// A map or list with expressions somewhere inside.
        case map([(String, Argument)])
        case list([Argument])
        public enum Part: Sendable {
            case text(String)
            case expression(CELCondition)
            /// An expression inside a shell command line (`process@v1`'s string `command:`): its value is pasted
            /// single-quoted, so it is one word to the shell whatever it holds (`; rm -rf /` stays text).
            case shellQuoted(CELCondition)
        }

        /// One POSIX shell word holding exactly `s`.
        static func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

        /// The same text with every `${{ }}` part shell-quoted (for a command line run by `/bin/sh -c`).
        var shellQuoted: Argument {
            switch self {
            case .interpolated(let parts):
                return .interpolated(parts.map { if case .expression(let e) = $0 { .shellQuoted(e) } else { $0 } })
            default: return self  // a whole `${{ }}` is the command itself (a list or a line the author chose to run)
            }
        }

        var expressions: [CELCondition] {
            switch self {
            case .literal: []
            case .expression(let e): [e]
            case .interpolated(let parts):
                parts.compactMap {
                    switch $0 {
                    case .text: nil
                    case .expression(let e), .shellQuoted(let e): e
                    }
                }
            case .map(let entries): entries.flatMap { $0.1.expressions }
            case .list(let items): items.flatMap(\.expressions)
            }
        }

        /// The value with every expression evaluated over `bindings`; the first failing expression is the error
        /// (with its file position).
        public func evaluate(_ bindings: [String: Value]) -> Result<Value, YAMLError> {
            switch self {
            case .literal(let v): return .success(v)
            case .expression(let e): return e.value(bindings)
            case .interpolated(let parts):
                var s = ""
                for p in parts {
                    switch p {
                    case .text(let t): s += t
                    case .expression(let e):
                        switch e.value(bindings) {
                        case .success(.string(let x)): s += x
                        case .success(let x): s += x.jsonText()
                        case .failure(let err): return .failure(err)
                        }
                    case .shellQuoted(let e):
                        switch e.value(bindings) {
                        case .success(.string(let x)): s += Argument.shellQuote(x)
                        case .success(let x): s += Argument.shellQuote(x.jsonText())
                        case .failure(let err): return .failure(err)
                        }
                    }
                }
                return .success(.string(s))
            case .map(let entries):
                var out: [(key: Value, value: Value)] = []
                for (k, a) in entries {
                    switch a.evaluate(bindings) {
                    case .success(let v): out.append((.string(k), v))
                    case .failure(let e): return .failure(e)
                    }
                }
                return .success(.map(out))
            case .list(let items):
                var out: [Value] = []
                for a in items {
                    switch a.evaluate(bindings) {
                    case .success(let v): out.append(v)
                    case .failure(let e): return .failure(e)
                    }
                }
                return .success(.list(out))
            }
        }
    }

    public struct Retry: Sendable {
        public enum Backoff: String, Sendable { case constant, linear, exponential }
        public var maxAttempts: Int
        public var backoff: Backoff
        public var initialDelay: Duration
        public var maxDelay: Duration
        public var multiplier: Double
        public var jitter: Double
        /// Error classes that retry: `retryable` (the default), `timeout`, `permanent`.
        public var on: [String]
    }

    public struct Approval: Sendable {
        public var approvers: [String]
        public var required: Int
        public var timeout: Duration?
        /// What a timeout decides: `reject` (the default), `approve` or `fail`.
        public var onTimeout: String
    }

    public enum Kind: Sendable {
        /// `uses: name@vN`.
        case action(name: String, major: Int)
        case approval(Approval)
        /// A durable timer.
        case wait(Duration)
        /// Another workflow file, run as a child.
        case workflow(String)
    }

    public struct Step: Sendable {
        public var id: String
        public var kind: Kind
        public var with: [(name: String, value: Argument)]
        public var needs: [String]
        public var condition: CELCondition?
        public var foreach: CELCondition?
        public var concurrency: Int
        public var until: CELCondition?
        public var maxIterations: Int
        public var retry: Retry?
        public var timeout: Duration?
        public var continueOnError: Bool
        /// `file:line:col` of the step.
        public var position: String
    }

    public var name: String
    public var inputs: [Input]
    public var outputs: [(name: String, value: Argument)]
    public var steps: [Step]

    /// Actions the engine provides, by name, with their major versions.
    public static let actions: [String: [Int]] = [
        "oci/copy": [1], "trust/verify": [1], "trust/sign": [1], "trust/attest": [1], "replicate": [1], "policy/eval": [1],
        "sbom/generate": [1], "http/notify": [1], "process": [1], "http": [1], "wasm": [1], "noop": [1],
    ]

    static let topKeys = ["apiVersion", "kind", "name", "description", "inputs", "outputs", "steps"]
    static let inputKeys = ["type", "default", "description"]
    static let stepKeys = [
        "id", "name", "uses", "with", "needs", "if", "foreach", "concurrency", "until", "maxIterations", "retry", "timeout", "continueOnError",
        "approval", "wait", "workflow",
    ]
    static let retryKeys = ["maxAttempts", "backoff", "initialDelay", "maxDelay", "multiplier", "jitter", "on"]
    static let approvalKeys = ["approvers", "required", "timeout", "onTimeout"]

    /// Reads and validates a definition; `actions` is the catalogue `uses:` is checked against (names → majors).
    public static func parse(_ text: String, file: String, actions: [String: [Int]] = actions) throws -> WorkflowDefinition {
        let root = try YAMLValue.parse(text, file: file)
        let f = try root.fields(allowed: topKeys)
        guard let api = f["apiVersion"] else { throw root.error("apiVersion is missing (expected warden.dev/v1)") }
        guard try api.string() == "warden.dev/v1" else { throw api.error("apiVersion must be warden.dev/v1") }
        guard let kind = f["kind"] else { throw root.error("kind is missing (expected Workflow)") }
        guard try kind.string() == "Workflow" else { throw kind.error("kind must be Workflow") }
        var def = WorkflowDefinition(name: try f["name"]?.string() ?? "workflow", inputs: [], outputs: [], steps: [])

        for (name, v) in try f["inputs"]?.mapping(allowed: nil) ?? [] {
            let spec = try v.fields(allowed: inputKeys)
            let typeName = try spec["type"]?.string() ?? "string"
            guard let type = InputType(rawValue: typeName) else {
                throw (spec["type"] ?? v).error(
                    "unknown input type \"\(typeName)\"; expected one of: \(InputType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var input = Input(name: name, type: type, defaultValue: nil)
            if let d = spec["default"] {
                let value = try literal(d)
                guard conforms(value, to: type) else {
                    throw d.error("default of input \"\(name)\" is not \(type == .int || type == .any ? "an" : "a") \(type.rawValue)")
                }
                input.defaultValue = value
            }
            def.inputs.append(input)
        }

        guard let stepsValue = f["steps"] else { throw root.error("steps is missing: a workflow needs at least one step") }
        var ids: Set<String> = []
        for s in try stepsValue.list() {
            let step = try parseStep(s, actions: actions)
            guard ids.insert(step.id).inserted else { throw s.error("duplicate step id \"\(step.id)\"") }
            def.steps.append(step)
        }
        if def.steps.isEmpty { throw stepsValue.error("a workflow needs at least one step") }
        for (name, v) in try f["outputs"]?.mapping(allowed: nil) ?? [] { def.outputs.append((name, try argument(v))) }
        try def.checkReferences()
        _ = try def.levels()
        return def
    }

    static func parseStep(_ s: YAMLValue, actions: [String: [Int]]) throws -> Step {
        let f = try s.fields(allowed: stepKeys)
        guard let idValue = f["id"] else { throw s.error("step needs an id") }
        let id = try idValue.string()
        guard isIdentifier(id) else { throw idValue.error("step id \"\(id)\" must be letters, digits and _ (usable in expressions)") }
        let kinds = ["uses", "approval", "wait", "workflow"].filter { f[$0] != nil }
        guard kinds.count == 1 else {
            throw s.error("step \"\(id)\" needs exactly one of uses, approval, wait or workflow")
        }
        let kind: Kind
        switch kinds[0] {
        case "uses":
            let u = f["uses"]!
            let text = try u.string()
            let parts = text.split(separator: "@", maxSplits: 1)
            guard parts.count == 2, parts[1].hasPrefix("v"), let major = Int(parts[1].dropFirst()) else {
                throw u.error("uses must be ACTION@vMAJOR (for example trust/verify@v1), not \"\(text)\"")
            }
            let name = String(parts[0])
            guard let majors = actions[name] else {
                throw u.error("unknown action \"\(name)\"; known actions: \(actions.keys.sorted().joined(separator: ", "))")
            }
            guard majors.contains(major) else {
                throw u.error("action \(name) has no version v\(major) (available: \(majors.map { "v\($0)" }.joined(separator: ", ")))")
            }
            kind = .action(name: name, major: major)
        case "approval":
            let a = try f["approval"]!.fields(allowed: approvalKeys)
            let approvers = try a["approvers"]?.stringList() ?? []
            let required = try a["required"]?.int() ?? 1
            guard required >= 1, approvers.isEmpty || required <= approvers.count else {
                throw (a["required"] ?? f["approval"]!).error("required approvals must be between 1 and the number of approvers")
            }
            let onTimeout = try a["onTimeout"]?.string() ?? "reject"
            guard ["reject", "approve", "fail"].contains(onTimeout) else {
                throw a["onTimeout"]!.error("onTimeout must be reject, approve or fail")
            }
            kind = .approval(Approval(approvers: approvers, required: required, timeout: try a["timeout"].map(duration), onTimeout: onTimeout))
        case "wait": kind = .wait(try duration(f["wait"]!))
        default: kind = .workflow(try f["workflow"]!.string())
        }
        var with: [(String, Argument)] = []
        for (k, v) in try f["with"]?.mapping(allowed: nil) ?? [] {
            var a = try argument(v)
            // A string command is a shell line: values pasted into it are quoted, never parsed by the shell.
            if case .action("process", _) = kind, k == "command", case .scalar = v.node { a = a.shellQuoted }
            with.append((k, a))
        }
        var retry: Retry?
        if let r = f["retry"] {
            let rf = try r.fields(allowed: retryKeys)
            let backoffName = try rf["backoff"]?.string() ?? "exponential"
            guard let backoff = Retry.Backoff(rawValue: backoffName) else {
                throw rf["backoff"]!.error("backoff must be constant, linear or exponential")
            }
            let attempts = try rf["maxAttempts"]?.int() ?? 3
            guard attempts >= 1, attempts <= 1000 else { throw rf["maxAttempts"]!.error("maxAttempts must be between 1 and 1000") }
            let jitter = try rf["jitter"].map(number) ?? 0.1
            guard jitter >= 0, jitter <= 1 else { throw rf["jitter"]!.error("jitter must be between 0 and 1") }
            let on = try rf["on"]?.stringList() ?? ["retryable"]
            for (i, c) in on.enumerated() where !["retryable", "timeout", "permanent"].contains(c) {
                throw (try rf["on"]!.list()[i]).error("unknown error class \"\(c)\" (retryable, timeout, permanent)")
            }
            retry = Retry(
                maxAttempts: attempts, backoff: backoff, initialDelay: try rf["initialDelay"].map(duration) ?? .seconds(1),
                maxDelay: try rf["maxDelay"].map(duration) ?? .seconds(300), multiplier: try rf["multiplier"].map(number) ?? 2, jitter: jitter, on: on
            )
        }
        let concurrency = try f["concurrency"]?.int() ?? 4
        guard concurrency >= 1 else { throw f["concurrency"]!.error("concurrency must be at least 1") }
        let maxIterations = try f["maxIterations"]?.int() ?? 10
        guard maxIterations >= 1 else { throw f["maxIterations"]!.error("maxIterations must be at least 1") }
        return Step(
            id: id, kind: kind, with: with, needs: try f["needs"]?.stringList() ?? [],
            condition: try f["if"].map { try condition($0, boolean: true) },
            foreach: try f["foreach"].map { try condition($0, boolean: false) }, concurrency: concurrency,
            until: try f["until"].map { try condition($0, boolean: true) }, maxIterations: maxIterations, retry: retry,
            timeout: try f["timeout"].map(duration), continueOnError: try f["continueOnError"]?.bool() ?? false, position: s.position)
    }

    /// `if:`, `foreach:` and `until:` take a bare expression or one wrapped in `${{ }}`.
    static func condition(_ v: YAMLValue, boolean: Bool) throws -> CELCondition {
        switch try argument(v) {
        case .expression(let e):
            if boolean, let t = e.program.expr.evidentType, t != "bool" { throw v.error("the condition must be a bool, but `\(e.source)` is \(t)") }
            return e
        case .interpolated, .map, .list: throw v.error("a condition is one expression, not text with ${{ }} parts")
        case .literal: return try CELCondition(v, boolean: boolean)
        }
    }

    /// A `with:`-style value: a literal, a whole `${{ }}` expression, or text with `${{ }}` parts (trigger inputs too).
    public static func argument(_ v: YAMLValue) throws -> Argument {
        switch v.node {
        case .mapping:
            let entries = try v.mapping(allowed: nil).map { ($0.key, try argument($0.value)) }
            if entries.allSatisfy({ $0.1.expressions.isEmpty }) { return .literal(try literal(v)) }
            return .map(entries)
        case .sequence:
            let items = try v.list().map(argument)
            if items.allSatisfy({ $0.expressions.isEmpty }) { return .literal(try literal(v)) }
            return .list(items)
        default: break
        }
        guard case .scalar(let scalar) = v.node,
            scalar.style == .plain || scalar.style == .singleQuoted || scalar.style == .doubleQuoted
                || scalar.style == .literal || scalar.style == .folded
        else { return .literal(try literal(v)) }
        let text = scalar.string
        guard text.contains("${{") else { return .literal(try literal(v)) }
        var parts: [Argument.Part] = []
        var rest = Substring(text)
        var offset = 0
        while let open = rest.range(of: "${{") {
            let before = String(rest[..<open.lowerBound])
            if !before.isEmpty { parts.append(.text(before)) }
            offset += before.unicodeScalars.count + 3
            let after = rest[open.upperBound...]
            guard let close = after.range(of: "}}") else { throw v.error("unclosed ${{ in \"\(text)\"") }
            let raw = String(after[..<close.lowerBound])
            let lead = raw.unicodeScalars.prefix { $0 == " " }.count
            parts.append(.expression(try CELCondition(expression: raw.trimmingSpaces, in: v, offset: offset + lead, boolean: false)))
            offset += raw.unicodeScalars.count + 2
            rest = after[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        if parts.count == 1, case .expression(let e) = parts[0] { return .expression(e) }
        return .interpolated(parts)
    }

    /// A YAML value as a CEL value (plain scalars resolved as YAML does: bools, ints, floats, null).
    static func literal(_ v: YAMLValue) throws -> Value {
        switch v.node {
        case .scalar(let s):
            if s.style == .plain {
                if s.string == "null" || s.string == "~" { return .null }
                if let b = v.node.bool { return .bool(b) }
                if let i = v.node.int { return .int(Int64(i)) }
                if let d = v.node.float { return .double(d) }
            }
            return .string(s.string)
        case .sequence: return .list(try v.list().map(literal))
        case .mapping: return .map(try v.mapping(allowed: nil).map { (.string($0.key), try literal($0.value)) })
        case .alias: throw v.error("YAML aliases are not supported in workflows")
        }
    }

    /// The run's inputs: `given` checked against the declarations (no unknown names, required ones present, types
    /// conform), defaults filled in.
    public func bind(_ given: [String: Value]) throws -> Value { try bind(given, noun: ("workflow", "input")) }

    func bind(_ given: [String: Value], noun: (whole: String, part: String)) throws -> Value {
        let flag = noun.part == "input" ? "--input" : "--param"
        for name in given.keys.sorted() where !inputs.contains(where: { $0.name == name }) {
            throw WorkflowError(
                "\(noun.whole) \"\(self.name)\" has no \(noun.part) \"\(name)\" (\(noun.part)s: \(inputs.map(\.name).joined(separator: ", ")))")
        }
        var out: [(String, Value)] = []
        for input in inputs {
            guard let v = given[input.name] ?? input.defaultValue else {
                throw WorkflowError("\(noun.part) \"\(input.name)\" of \(noun.whole) \"\(name)\" is required (\(flag) \(input.name)=VALUE)")
            }
            guard Self.conforms(v, to: input.type) else {
                throw WorkflowError(
                    "\(noun.part) \"\(input.name)\" must be \(input.type == .int || input.type == .any ? "an" : "a") \(input.type.rawValue), not \(v.typeName)"
                )
            }
            out.append((input.name, v))
        }
        return .object(out)
    }

    /// A command-line value (`--input NAME=TEXT`) as the declared type: numbers and bools parsed, lists and maps
    /// (and `any`) read as JSON, strings as they are.
    public func coerce(_ name: String, _ text: String) throws -> Value {
        guard let input = inputs.first(where: { $0.name == name }) else {
            throw WorkflowError("workflow \"\(self.name)\" has no input \"\(name)\" (inputs: \(inputs.map(\.name).joined(separator: ", ")))")
        }
        switch input.type {
        case .string: return .string(text)
        case .int:
            guard let i = Int64(text) else { throw WorkflowError("input \"\(name)\": \"\(text)\" is not an int") }
            return .int(i)
        case .double:
            guard let d = Double(text) else { throw WorkflowError("input \"\(name)\": \"\(text)\" is not a number") }
            return .double(d)
        case .bool:
            guard text == "true" || text == "false" else { throw WorkflowError("input \"\(name)\": \"\(text)\" is not true or false") }
            return .bool(text == "true")
        case .list, .map, .any:
            do { return try Value.parseJSON(text) } catch {
                if input.type == .any { return .string(text) }
                throw WorkflowError("input \"\(name)\": not JSON: \(error)")
            }
        }
    }

    static func conforms(_ v: Value, to type: InputType) -> Bool {
        switch (type, v) {
        case (.any, _), (.string, .string), (.int, .int), (.bool, .bool), (.list, .list), (.map, .map), (.double, .double), (.double, .int): true
        default: false
        }
    }

    static func duration(_ v: YAMLValue) throws -> Duration {
        let text = try v.string()
        guard let d = parseDuration(text) else { throw v.error("\"\(text)\" is not a duration (examples: 30s, 5m, 1h30m)") }
        return d
    }

    /// A non-negative CEL duration string (`30s`, `5m`, `1h30m`, `250ms`), or nil.
    static func parseDuration(_ text: String) -> Duration? { Duration.parse(text) }

    static func number(_ v: YAMLValue) throws -> Double {
        guard let d = v.node.float ?? v.node.int.map(Double.init) else { throw v.error("expected a number") }
        return d
    }

    static func isIdentifier(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }

    // MARK: The graph

    /// Steps each step depends on: `needs` plus every `steps.ID` its expressions read.
    public func dependencies(of step: Step) -> [String] {
        var out = step.needs
        for e in expressions(of: step) { for id in Self.stepReferences(e.program.expr) where !out.contains(id) { out.append(id) } }
        return out
    }

    func expressions(of step: Step) -> [CELCondition] {
        var out = step.with.flatMap { $0.value.expressions }
        out += [step.condition, step.foreach, step.until].compactMap { $0 }
        return out
    }

    /// IDs named as `steps.ID` in an expression.
    static func stepReferences(_ e: Expr) -> [String] { fields(of: "steps", in: e).map(\.0) }

    /// Names read as `inputs.NAME`.
    static func inputReferences(_ e: Expr) -> [(String, SourcePosition)] { fields(of: "inputs", in: e) }

    /// Every `ROOT.FIELD` selection in an expression, with its position.
    static func fields(of root: String, in e: Expr) -> [(String, SourcePosition)] {
        var out: [(String, SourcePosition)] = []
        func walk(_ e: Expr) {
            switch e.kind {
            case .select(let operand, let field, _):
                if case .ident(let name) = operand.kind, name == root { out.append((field, e.position)) } else { walk(operand) }
            case .call(_, let target, let args):
                if let target { walk(target) }
                args.forEach(walk)
            case .list(let items): items.forEach(walk)
            case .map(let entries):
                for entry in entries {
                    walk(entry.key)
                    walk(entry.value)
                }
            case .message(_, let fields): fields.forEach { walk($0.value) }
            case .comprehension(let c): [c.iterRange, c.accuInit, c.loopCondition, c.loopStep, c.result].forEach(walk)
            case .literal, .ident: break
            }
        }
        walk(e)
        return out
    }

    /// Every `needs` and `steps.ID` names a step (not itself); every `inputs.NAME` a declared input.
    func checkReferences() throws {
        let ids = Set(steps.map(\.id))
        let inputNames = Set(inputs.map(\.name))
        for step in steps {
            for n in step.needs where !ids.contains(n) || n == step.id {
                throw YAMLError(
                    position: step.position,
                    message: "step \"\(step.id)\" needs \"\(n)\", which is \(n == step.id ? "itself" : "not a step of this workflow")")
            }
            for e in expressions(of: step) {
                for id in Self.stepReferences(e.program.expr) where !ids.contains(id) || id == step.id {
                    throw YAMLError(
                        position: e.position,
                        message: "`\(e.source)` reads steps.\(id), which is \(id == step.id ? "this step itself" : "not a step of this workflow")")
                }
                for (name, at) in Self.inputReferences(e.program.expr) where !inputNames.contains(name) {
                    throw YAMLError(
                        position: e.position(of: CELError("", at: at)), message: "`\(e.source)` reads inputs.\(name), which is not declared")
                }
            }
        }
        for (name, value) in outputs {
            for e in value.expressions {
                for id in Self.stepReferences(e.program.expr) where !ids.contains(id) {
                    throw YAMLError(position: e.position, message: "output \"\(name)\" reads steps.\(id), which is not a step of this workflow")
                }
            }
        }
    }

    /// Steps in dependency order, grouped in levels that may run together; a cycle is an error naming it.
    public func levels() throws -> [[String]] {
        var deps: [String: Set<String>] = [:]
        for s in steps { deps[s.id] = Set(dependencies(of: s)) }
        var done: Set<String> = []
        var levels: [[String]] = []
        while done.count < steps.count {
            let ready = steps.map(\.id).filter { !done.contains($0) && deps[$0]!.isSubset(of: done) }
            guard !ready.isEmpty else {
                // Walk from any remaining step along unfinished dependencies until a step repeats.
                var path: [String] = []
                var current = steps.map(\.id).first { !done.contains($0) }!
                while !path.contains(current) {
                    path.append(current)
                    current = deps[current]!.subtracting(done).sorted().first!
                }
                let cycle = path[path.firstIndex(of: current)!...] + [current]
                let at = steps.first { $0.id == current }!.position
                throw YAMLError(position: at, message: "the steps form a cycle: \(cycle.joined(separator: " → "))")
            }
            levels.append(ready)
            done.formUnion(ready)
        }
        return levels
    }

    /// The DAG as a Mermaid flowchart or Graphviz DOT.
    public func graph(format: String) -> String {
        var lines: [String] = []
        func label(_ s: Step) -> String {
            switch s.kind {
            case .action(let name, let major): "\(s.id)\\n\(name)@v\(major)"
            case .approval: "\(s.id)\\napproval"
            case .wait(let d): "\(s.id)\\nwait \(d)"
            case .workflow(let f): "\(s.id)\\nworkflow \(f)"
            }
        }
        if format == "dot" {
            lines.append("digraph \"\(name)\" {")
            lines.append("  rankdir=LR;")
            for s in steps { lines.append("  \(s.id) [label=\"\(label(s))\"\(s.condition != nil ? ", style=dashed" : "")];") }
            for s in steps { for d in dependencies(of: s) { lines.append("  \(d) -> \(s.id);") } }
            lines.append("}")
        } else {
            lines.append("flowchart LR")
            for s in steps {
                let text = label(s).replacingOccurrences(of: "\\n", with: "<br/>")
                lines.append(s.condition != nil ? "  \(s.id){{\"\(text)\"}}" : "  \(s.id)[\"\(text)\"]")
            }
            for s in steps { for d in dependencies(of: s) { lines.append("  \(d) --> \(s.id)") } }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" { s = s.dropLast() }
        return String(s)
    }
}
