import CEL
import Documents
import Foundation
import Yams

/// A workflow template (`kind: WorkflowTemplate`): typed `parameters` and a `workflow:` body in which
/// `[[ NAME ]]` placeholders stand for them. A scalar that is exactly one placeholder takes the parameter's typed
/// value (an int stays an int, a list a list); inside longer text the value is written as text. Instantiating checks
/// the parameters (unknown, missing, wrong type) and every placeholder (an undeclared name is an error with its
/// line and column), then validates the resulting workflow like any other.
public struct WorkflowTemplate {
    public var name: String
    public var parameters: [WorkflowDefinition.Input]
    let body: Node
    let file: String

    static let keys = ["apiVersion", "kind", "name", "description", "parameters", "workflow"]

    /// True when `text` declares `kind: WorkflowTemplate`.
    public static func isTemplate(_ text: String) -> Bool {
        guard let root = try? YAMLValue.parse(text, file: ""), case .mapping(let m) = root.node else { return false }
        return m["kind"]?.string == "WorkflowTemplate"
    }

    public static func parse(_ text: String, file: String) throws -> WorkflowTemplate {
        let root = try YAMLValue.parse(text, file: file)
        let f = try root.fields(allowed: keys)
        guard try f["apiVersion"]?.string() == "warden.dev/v1" else { throw (f["apiVersion"] ?? root).error("apiVersion must be warden.dev/v1") }
        guard try f["kind"]?.string() == "WorkflowTemplate" else { throw (f["kind"] ?? root).error("kind must be WorkflowTemplate") }
        guard let body = f["workflow"] else { throw root.error("workflow is missing: the body with [[ NAME ]] placeholders") }
        guard case .mapping = body.node else { throw body.error("workflow must be a mapping (a workflow without apiVersion and kind)") }
        var params: [WorkflowDefinition.Input] = []
        for (name, v) in try f["parameters"]?.mapping(allowed: nil) ?? [] {
            guard WorkflowDefinition.isIdentifier(name) else { throw v.error("parameter name \"\(name)\" must be letters, digits and _") }
            let spec = try v.fields(allowed: WorkflowDefinition.inputKeys)
            let typeName = try spec["type"]?.string() ?? "string"
            guard let type = WorkflowDefinition.InputType(rawValue: typeName) else {
                throw (spec["type"] ?? v).error("unknown parameter type \"\(typeName)\"")
            }
            var p = WorkflowDefinition.Input(name: name, type: type, defaultValue: nil)
            if let d = spec["default"] {
                let value = try WorkflowDefinition.literal(d)
                guard WorkflowDefinition.conforms(value, to: type) else {
                    throw d.error("default of parameter \"\(name)\" is not \(type == .int || type == .any ? "an" : "a") \(type.rawValue)")
                }
                p.defaultValue = value
            }
            params.append(p)
        }
        let template = WorkflowTemplate(name: try f["name"]?.string() ?? "template", parameters: params, body: body.node, file: file)
        // Every placeholder must name a parameter, whatever values are given later.
        _ = try template.substitute(body.node, values: Dictionary(uniqueKeysWithValues: params.map { ($0.name, Value.null) }), check: true)
        return template
    }

    /// The workflow's YAML text for these parameter values (checked against the declarations).
    public func instantiate(_ given: [String: Value]) throws -> String {
        let def = WorkflowDefinition(name: name, inputs: parameters, outputs: [], steps: [])
        guard case .map(let bound) = try def.bind(given, noun: ("template", "parameter")) else { return "" }
        var values: [String: Value] = [:]
        for (k, v) in bound { if case .string(let s) = k { values[s] = v } }
        guard case .mapping(let m) = try substitute(body, values: values, check: false) else { return "" }
        var pairs: [(Node, Node)] = [(Node("apiVersion"), Node("warden.dev/v1")), (Node("kind"), Node("Workflow"))]
        if m["name"] == nil { pairs.append((Node("name"), Node(name))) }
        pairs += m.filter { !["apiVersion", "kind"].contains($0.key.string ?? "") }.map { ($0.key, $0.value) }
        return "# Instantiated from \(file)\n" + (try Yams.serialize(node: .mapping(.init(pairs))))
    }

    /// A parameter value given on the command line (`--param NAME=TEXT`), typed as declared.
    public func coerce(_ name: String, _ text: String) throws -> Value {
        do { return try WorkflowDefinition(name: self.name, inputs: parameters, outputs: [], steps: []).coerce(name, text) } catch let e
            as WorkflowError
        {
            throw WorkflowError(
                e.description.replacingOccurrences(of: "workflow \"", with: "template \"").replacingOccurrences(of: "input", with: "parameter"))
        }
    }

    func substitute(_ node: Node, values: [String: Value], check: Bool) throws -> Node {
        switch node {
        case .scalar(let s):
            let text = s.string
            guard text.contains("[[") else { return node }
            var parts: [(String, String?)] = []  // (text before, placeholder name)
            var rest = Substring(text)
            while let open = rest.range(of: "[[") {
                guard let close = rest[open.upperBound...].range(of: "]]") else {
                    throw YAMLError(position: position(node), message: "unclosed [[ in \"\(text)\"")
                }
                let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
                guard values.keys.contains(name) else {
                    throw YAMLError(
                        position: position(node),
                        message: "placeholder [[ \(name) ]] names no parameter (parameters: \(parameters.map(\.name).joined(separator: ", ")))")
                }
                parts.append((String(rest[..<open.lowerBound]), name))
                rest = rest[close.upperBound...]
            }
            if check { return node }
            if parts.count == 1, parts[0].0.isEmpty, rest.isEmpty, let name = parts[0].1 { return Self.node(values[name]!) }
            var out = ""
            for (before, name) in parts {
                out += before
                if let name {
                    switch values[name]! {
                    case .string(let v): out += v
                    case let v: out += v.jsonText()
                    }
                }
            }
            out += rest
            return .scalar(.init(out, .implicit, s.style == .plain ? .doubleQuoted : s.style))
        case .mapping(let m):
            var out: [(Node, Node)] = []
            for (k, v) in m { out.append((try substitute(k, values: values, check: check), try substitute(v, values: values, check: check))) }
            return .mapping(.init(out))
        case .sequence(let seq):
            return .sequence(.init(try seq.map { try substitute($0, values: values, check: check) }))
        case .alias: return node
        }
    }

    func position(_ node: Node) -> String {
        guard let mark = node.mark else { return file }
        return "\(file):\(mark.line):\(mark.column)"
    }

    /// A YAML node holding `value` with its type.
    static func node(_ value: Value) -> Node {
        switch value {
        case .null: return Node("null")
        case .bool(let b): return Node(b ? "true" : "false")
        case .int(let i): return Node(String(i))
        case .uint(let u): return Node(String(u))
        case .double(let d): return Node(String(d))
        case .string(let s): return .scalar(.init(s, .implicit, .doubleQuoted))
        case .list(let items): return .sequence(.init(items.map(node)))
        case .map(let entries): return .mapping(.init(entries.map { (Node($0.key.stringValue ?? $0.key.jsonText()), node($0.value)) }))
        default: return .scalar(.init(value.jsonText(), .implicit, .doubleQuoted))
        }
    }
}
