/// A parsed CEL expression. Operators are calls of CEL's internal function names (`_+_`, `_&&_`, `@in`, …);
/// macros are expanded into comprehensions at parse time, as the CEL specification describes.
public struct Expr: Sendable {
    public var id: Int
    public var position: SourcePosition
    public var kind: Kind {
        didSet { op = Self.operatorCode(kind) }
    }
    /// The operator a call names, resolved once at parse time so evaluation does not compare function names.
    var op: Op

    public init(id: Int, position: SourcePosition, kind: Kind) {
        self.id = id
        self.position = position
        self.kind = kind
        self.op = Self.operatorCode(kind)
    }

    /// Calls evaluated without the general path (no argument array, no name comparison).
    enum Op: UInt8, Sendable {
        case none, and, or, conditional, notStrictlyFalse, equals, notEquals, less, lessEqual, greater, greaterEqual, not, inList
        case startsWith, contains, endsWith, size
    }

    static let operatorCodes: [String: Op] = [
        "_&&_": .and, "_||_": .or, "_?_:_": .conditional, "@not_strictly_false": .notStrictlyFalse, "_==_": .equals, "_!=_": .notEquals,
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
    /// A compact rendering of the tree (for tests and messages).
    public var debugDescription: String {
        switch kind {
        case .literal(let v): return v.description
        case .ident(let n): return n
        case .select(let o, let f, let t): return t ? "has(\(o.debugDescription).\(f))" : "\(o.debugDescription).\(f)"
        case .call(let f, let target, let args):
            let a = args.map(\.debugDescription).joined(separator: ", ")
            return target.map { "\($0.debugDescription).\(f)(\(a))" } ?? "\(f)(\(a))"
        case .list(let e): return "[" + e.map(\.debugDescription).joined(separator: ", ") + "]"
        case .map(let e): return "{" + e.map { "\($0.key.debugDescription): \($0.value.debugDescription)" }.joined(separator: ", ") + "}"
        case .message(let t, let f): return t + "{" + f.map { "\($0.name): \($0.value.debugDescription)" }.joined(separator: ", ") + "}"
        case .comprehension(let c):
            return "fold(\(c.iterVar) in \(c.iterRange.debugDescription), \(c.accuVar) = \(c.accuInit.debugDescription), "
                + "\(c.loopCondition.debugDescription), \(c.loopStep.debugDescription), \(c.result.debugDescription))"
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
        case .call(let f, let target, let args):
            if Self.boolFunctions.contains(f) { return "bool" }
            if target == nil, let t = Self.typedFunctions[f] { return t }
            if f == "-_" { return args.first?.evidentType }
            if ["_+_", "_-_", "_*_", "_/_", "_%_"].contains(f), let l = args.first?.evidentType, l == args.last?.evidentType {
                return l
            }
            if f == "_?_:_", args.count == 3, let t = args[1].evidentType, t == args[2].evidentType { return t }
            return nil
        }
    }
}
