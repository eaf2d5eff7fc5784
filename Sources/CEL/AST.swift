/// A parsed CEL expression. Operators are calls of CEL's internal function names (`_+_`, `_&&_`, `@in`, …);
/// macros are expanded into comprehensions at parse time, as the CEL specification describes.
public struct Expr: Sendable {
    public var id: Int
    public var position: SourcePosition
    public var kind: Kind {
        didSet {
            op = Self.operatorCode(kind)
            height = Self.height(of: kind)
        }
    }
    /// The operator a call names, resolved once at parse time so evaluation does not compare function names.
    var op: Op
    /// The nodes on the longest path from this one down to a leaf (1 for a leaf). The parser refuses a tree higher
    /// than `Parser.maxDepth`, which bounds every recursive walk (evaluation, printing, type and field checks).
    public private(set) var height: Int

    public init(id: Int, position: SourcePosition, kind: Kind) {
        self.id = id
        self.position = position
        self.kind = kind
        self.op = Self.operatorCode(kind)
        self.height = Self.height(of: kind)
    }

    static func height(of kind: Kind) -> Int {
        func highest(_ children: [Expr]) -> Int { children.reduce(0) { max($0, $1.height) } }
        switch kind {
        case .literal, .ident: return 1
        case .select(let operand, _, _): return 1 + operand.height
        case .call(_, let target, let args): return 1 + max(target?.height ?? 0, highest(args))
        case .list(let items): return 1 + highest(items)
        case .map(let entries): return 1 + entries.reduce(0) { max($0, $1.key.height, $1.value.height) }
        case .message(_, let fields): return 1 + highest(fields.map(\.value))
        case .comprehension(let c): return 1 + highest([c.iterRange, c.accuInit, c.loopCondition, c.loopStep, c.result])
        }
    }

    /// Calls with a path of their own in the evaluator: most skip the argument array and the name comparison; `add`
    /// takes the general path, then counts the size of the string, bytes or list it built.
    enum Op: UInt8, Sendable {
        case none, and, or, conditional, notStrictlyFalse, equals, notEquals, less, lessEqual, greater, greaterEqual, not, inList
        case startsWith, contains, endsWith, size, add
    }

    static let operatorCodes: [String: Op] = [
        "_+_": .add, "_&&_": .and, "_||_": .or, "_?_:_": .conditional, "@not_strictly_false": .notStrictlyFalse, "_==_": .equals, "_!=_": .notEquals,
        "_<_": .less, "_<=_": .lessEqual, "_>_": .greater, "_>=_": .greaterEqual, "!_": .not, "@in": .inList, "startsWith": .startsWith,
        "contains": .contains, "endsWith": .endsWith, "size": .size,
    ]

    static func operatorCode(_ kind: Kind) -> Op {
        guard case .call(let f, let target, let args) = kind, let op = operatorCodes[f] else { return .none }
        switch op {
        case .startsWith, .contains, .endsWith: return target != nil && args.count == 1 ? op : .none
        case .size: return args.count + (target == nil ? 0 : 1) == 1 ? op : .none
        case .not, .notStrictlyFalse: return target == nil && args.count == 1 ? op : .none
        case .conditional: return target == nil && args.count == 3 ? op : .none
        default: return target == nil && args.count == 2 ? op : .none
        }
    }

    public indirect enum Kind: Sendable {
        case literal(Value)
        case ident(String)
        /// `operand.field`; with `testOnly`, `has(operand.field)`.
        case select(operand: Expr, field: String, testOnly: Bool)
        case call(function: String, target: Expr?, args: [Expr])
        case list([Expr])
        case map([(key: Expr, value: Expr)])
        /// `Type{field: value, …}` (message construction; Warden has no message types and rejects it at evaluation).
        case message(type: String, fields: [(name: String, value: Expr)])
        case comprehension(Comprehension)
    }
}

/// A fold over a list or map, the form every macro expands to.
public struct Comprehension: Sendable {
    public var iterVar: String
    public var iterRange: Expr
    public var accuVar: String
    public var accuInit: Expr
    public var loopCondition: Expr
    public var loopStep: Expr
    public var result: Expr
}

extension Expr {
    var isLiteral: Bool {
        if case .literal = kind { return true }
        return false
    }

    /// Whether the expression is `name` or a field selection from it (`name.a.b`).
    func isPath(from name: String) -> Bool {
        var e = self
        while case .select(let operand, _, false) = e.kind { e = operand }
        if case .ident(let n) = e.kind { return n == name }
        return false
    }
}

extension Expr {
    /// A compact rendering of the tree (for tests and messages).
    public var debugDescription: String {
        var out = ""
        describe(into: &out)
        return out
    }

    func describe(into out: inout String) {
        switch kind {
        case .literal(let v): out += v.description
        case .ident(let n): out += n
        case .select(let operand, let field, let testOnly):
            if testOnly { out += "has(" }
            operand.describe(into: &out)
            out += "." + field + (testOnly ? ")" : "")
        case .call(let f, let target, let args):
            if let target {
                target.describe(into: &out)
                out += "."
            }
            out += f + "("
            Self.describe(args, into: &out)
            out += ")"
        case .list(let items):
            out += "["
            Self.describe(items, into: &out)
            out += "]"
        case .map(let entries):
            out += "{"
            Self.describe(entries.map { ($0.key, $0.value) }, into: &out)
            out += "}"
        case .message(let type, let fields):
            out += type + "{"
            Self.describe(fields.map { ($0.name, $0.value) }, into: &out)
            out += "}"
        case .comprehension(let c):
            out += "fold(" + c.iterVar + " in "
            c.iterRange.describe(into: &out)
            out += ", " + c.accuVar + " = "
            Self.describe([c.accuInit, c.loopCondition, c.loopStep, c.result], into: &out)
            out += ")"
        }
    }

    static func describe(_ items: [Expr], into out: inout String) {
        for (i, e) in items.enumerated() {
            if i > 0 { out += ", " }
            e.describe(into: &out)
        }
    }

    static func describe<Key>(_ entries: [(Key, Expr)], into out: inout String) {
        for (i, (key, value)) in entries.enumerated() {
            if i > 0 { out += ", " }
            if let key = key as? Expr { key.describe(into: &out) } else { out += "\(key)" }
            out += ": "
            value.describe(into: &out)
        }
    }
}

extension Expr {
    static let boolFunctions: Set<String> = [
        "_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_", "_&&_", "_||_", "!_", "@in", "contains", "startsWith", "endsWith", "matches",
        "bool",
    ]
    static let typedFunctions: [String: String] = [
        "size": "int", "int": "int", "uint": "uint", "double": "double", "string": "string", "bytes": "bytes",
        "timestamp": "google.protobuf.Timestamp", "duration": "google.protobuf.Duration", "type": "type",
    ]

    /// The expression's type when it is evident without knowing the variables (literals, constructors, comparisons,
    /// logical operators, conversions, arithmetic over evident operands), else nil. Documents use it to reject a
    /// condition that can never be a bool before anything is evaluated.
    public var evidentType: String? {
        switch kind {
        case .literal(let v): return v.typeName
        case .list: return "list"
        case .map: return "map"
        case .select(_, _, let testOnly): return testOnly ? "bool" : nil
        case .ident, .message, .comprehension: return nil
        case .call(let f, let target, let args): return Self.evidentType(f, target, args)
        }
    }

    static let arithmetic: Set<String> = ["_+_", "_-_", "_*_", "_/_", "_%_"]

    static func evidentType(_ f: String, _ target: Expr?, _ args: [Expr]) -> String? {
        if boolFunctions.contains(f) { return "bool" }
        if target == nil, let t = typedFunctions[f] { return t }
        if f == "-_" { return args.first?.evidentType }
        if arithmetic.contains(f), let l = args.first?.evidentType, l == args.last?.evidentType { return l }
        if f == "_?_:_", args.count == 3, let t = args[1].evidentType, t == args[2].evidentType { return t }
        return nil
    }
}
