/// Parses CEL source text into an `Expr` (CEL spec grammar), with errors that carry a line, a column and a caret.
public struct Parser {
    public static let maxDepth = 250
    static let reserved: Set<String> = [
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop", "package", "namespace", "return",
        "var", "void",
    ]
    static let accumulator = "@result"

    var tokens: [Token]
    var index = 0
    var nextID = 1
    var depth = 0
    let source: [Unicode.Scalar]

    public static func parse(_ text: String) throws -> Expr {
        var lexer = Lexer(text)
        var parser = Parser(tokens: try lexer.tokens(), source: lexer.source)
        let e = try parser.expression()
        guard case .eof = parser.peek.kind else { throw parser.error("unexpected \(parser.describe(parser.peek)) after the expression") }
        return e
    }

    init(tokens: [Token], source: [Unicode.Scalar]) {
        self.tokens = tokens
        self.source = source
    }

    var peek: Token { tokens[index] }

    func error(_ message: String, at token: Token? = nil) -> CELError {
        CELError(message, at: (token ?? peek).position, source: source)
    }

    func describe(_ t: Token) -> String {
        if case .eof = t.kind { return "end of input" }
        return "'\(t.text)'"
    }

    mutating func make(_ kind: Expr.Kind, at position: SourcePosition) -> Expr {
        defer { nextID += 1 }
        return Expr(id: nextID, position: position, kind: kind)
    }

    func isPunct(_ p: String) -> Bool {
        if case .punct(let q) = peek.kind { return q == p }
        return false
    }

    func isKeyword(_ k: String) -> Bool {
        if case .ident(let q) = peek.kind { return q == k }
        return false
    }

    mutating func expect(_ p: String, context: String) throws -> Token {
        guard isPunct(p) else { throw error("expected '\(p)' \(context), found \(describe(peek))") }
        let t = peek
        index += 1
        return t
    }

    mutating func enter() throws {
        depth += 1
        if depth > Self.maxDepth { throw error("expression nests more than \(Self.maxDepth) levels deep") }
    }

    // Expr = ConditionalOr ["?" ConditionalOr ":" Expr]
    mutating func expression() throws -> Expr {
        try enter()
        defer { depth -= 1 }
        let condition = try binary(level: 0)
        guard isPunct("?") else { return condition }
        let q = peek
        index += 1
        let yes = try binary(level: 0)
        _ = try expect(":", context: "in the conditional operator")
        let no = try expression()
        return make(.call(function: "_?_:_", target: nil, args: [condition, yes, no]), at: q.position)
    }

    static let levels: [[String: String]] = [
        ["||": "_||_"],
        ["&&": "_&&_"],
        ["<": "_<_", "<=": "_<=_", ">": "_>_", ">=": "_>=_", "==": "_==_", "!=": "_!=_", "in": "@in"],
        ["+": "_+_", "-": "_-_"],
        ["*": "_*_", "/": "_/_", "%": "_%_"],
    ]

    mutating func binary(level: Int) throws -> Expr {
        if level == Self.levels.count { return try unary() }
        var left = try binary(level: level + 1)
        while true {
            var op: String?
            switch peek.kind {
            case .punct(let p): op = Self.levels[level][p]
            case .ident("in"): op = Self.levels[level]["in"]
            default: op = nil
            }
            guard let function = op else { return left }
            let t = peek
            index += 1
            try enter()
            let right = try binary(level: level + 1)
            depth -= 1
            left = make(.call(function: function, target: nil, args: [left, right]), at: t.position)
        }
    }

    mutating func unary() throws -> Expr {
        if isPunct("!") || isPunct("-") {
            let t = peek
            let isNot = isPunct("!")
            index += 1
            // A negated numeric literal is one literal (so that -9223372036854775808 is representable).
            if !isNot {
                switch peek.kind {
                case .int(let v) where !peek.text.hasSuffix("u") && !peek.text.hasSuffix("U"):
                    index += 1
                    return try member(make(.literal(.int(-v)), at: t.position))
                case .uint(let v) where v == 9_223_372_036_854_775_808 && !peek.text.lowercased().hasSuffix("u"):
                    index += 1
                    return try member(make(.literal(.int(Int64.min)), at: t.position))
                case .double(let v):
                    index += 1
                    return try member(make(.literal(.double(-v)), at: t.position))
                default: break
                }
            }
            try enter()
            let operand = try unary()
            depth -= 1
            return make(.call(function: isNot ? "!_" : "-_", target: nil, args: [operand]), at: t.position)
        }
        return try member(try primary())
    }

    mutating func member(_ start: Expr) throws -> Expr {
        var e = start
        while true {
            if isPunct(".") {
                let dot = peek
                index += 1
                if case .quotedIdent(let name) = peek.kind {
                    index += 1
                    e = make(.select(operand: e, field: name, testOnly: false), at: dot.position)
                    continue
                }
                guard case .ident(let name) = peek.kind else { throw error("expected a field or method name after '.', found \(describe(peek))") }
                let nameToken = peek
                index += 1
                if isPunct("{"), let qualified = Self.qualifiedName(e) {
                    e = try message(qualified + "." + name, at: nameToken)
                    continue
                }
                if isPunct("(") {
                    let args = try arguments()
                    e = try macroOrCall(name, target: e, args: args, at: nameToken)
                } else {
                    e = make(.select(operand: e, field: name, testOnly: false), at: dot.position)
                }
            } else if isPunct("[") {
                let t = peek
                index += 1
                try enter()
                let i = try expression()
                depth -= 1
                _ = try expect("]", context: "to close the index")
                e = make(.call(function: "_[_]", target: nil, args: [e, i]), at: t.position)
            } else {
                return e
            }
        }
    }

    mutating func arguments() throws -> [Expr] {
        _ = try expect("(", context: "to start the arguments")
        var args: [Expr] = []
        if isPunct(")") {
            index += 1
            return args
        }
        while true {
            args.append(try expression())
            if isPunct(",") {
                index += 1
                continue
            }
            _ = try expect(")", context: "to close the arguments")
            return args
        }
    }

    mutating func primary() throws -> Expr {
        let t = peek
        switch t.kind {
        case .int(let v):
            index += 1
            return make(.literal(.int(v)), at: t.position)
        case .uint(let v):
            if v == 9_223_372_036_854_775_808 && !t.text.lowercased().hasSuffix("u") {
                throw error("int literal \(t.text) is out of range", at: t)
            }
            index += 1
            return make(.literal(.uint(v)), at: t.position)
        case .double(let v):
            index += 1
            return make(.literal(.double(v)), at: t.position)
        case .string(let s):
            index += 1
            return make(.literal(.string(s)), at: t.position)
        case .bytes(let b):
            index += 1
            return make(.literal(.bytes(b)), at: t.position)
        case .ident(let name):
            index += 1
            switch name {
            case "true": return make(.literal(.bool(true)), at: t.position)
            case "false": return make(.literal(.bool(false)), at: t.position)
            case "null": return make(.literal(.null), at: t.position)
            case "in": throw error("unexpected 'in'", at: t)
            default: break
            }
            if Self.reserved.contains(name) { throw error("'\(name)' is a reserved word and cannot be used as an identifier", at: t) }
            if isPunct("(") {
                return try macroOrCall(name, target: nil, args: try arguments(), at: t)
            }
            if isPunct("{") { return try message(name, at: t) }
            return make(.ident(name), at: t.position)
        case .punct("."):
            // A leading dot names the root scope: `.a.b`.
            index += 1
            guard case .ident(let name) = peek.kind else { throw error("expected an identifier after the leading '.'") }
            let nt = peek
            index += 1
            if isPunct("(") { return try macroOrCall("." + name, target: nil, args: try arguments(), at: nt) }
            if isPunct("{") { return try message("." + name, at: nt) }
            return make(.ident("." + name), at: nt.position)
        case .punct("("):
            index += 1
            let e = try expression()
            _ = try expect(")", context: "to close the parenthesis")
            return e
        case .punct("["):
            index += 1
            var items: [Expr] = []
            while !isPunct("]") {
                items.append(try expression())
                if isPunct(",") { index += 1 } else { break }
            }
            _ = try expect("]", context: "to close the list")
            return make(.list(items), at: t.position)
        case .punct("{"):
            index += 1
            var entries: [(key: Expr, value: Expr)] = []
            while !isPunct("}") {
                let k = try expression()
                _ = try expect(":", context: "between a map key and its value")
                let v = try expression()
                entries.append((k, v))
                if isPunct(",") { index += 1 } else { break }
            }
            _ = try expect("}", context: "to close the map")
            return make(.map(entries), at: t.position)
        default:
            throw error("unexpected \(describe(t))", at: t)
        }
    }

    /// `a.b.c` (identifiers and plain selections only) as a dotted name, for message type names.
    static func qualifiedName(_ e: Expr) -> String? {
        switch e.kind {
        case .ident(let n): return n
        case .select(let operand, let field, false): return qualifiedName(operand).map { $0 + "." + field }
        default: return nil
        }
    }

    mutating func message(_ type: String, at t: Token) throws -> Expr {
        _ = try expect("{", context: "to start the message fields")
        var fields: [(name: String, value: Expr)] = []
        while !isPunct("}") {
            guard case .ident(let name) = peek.kind else { throw error("expected a field name, found \(describe(peek))") }
            index += 1
            _ = try expect(":", context: "after the field name")
            fields.append((name, try expression()))
            if isPunct(",") { index += 1 } else { break }
        }
        _ = try expect("}", context: "to close the message")
        return make(.message(type: type, fields: fields), at: t.position)
    }

    // MARK: macros

    mutating func macroOrCall(_ name: String, target: Expr?, args: [Expr], at t: Token) throws -> Expr {
        if target == nil, name == "has" {
            guard args.count == 1, case .select(let operand, let field, _) = args[0].kind else {
                throw error("has() takes one field selection, like has(a.b)", at: t)
            }
            return make(.select(operand: operand, field: field, testOnly: true), at: t.position)
        }
        guard let target, ["all", "exists", "exists_one", "map", "filter"].contains(name) else {
            return make(.call(function: name, target: target, args: args), at: t.position)
        }
        let arity = name == "map" ? [2, 3] : [2]
        guard arity.contains(args.count) else {
            return make(.call(function: name, target: target, args: args), at: t.position)
        }
        guard case .ident(let v) = args[0].kind, !v.hasPrefix(".") else {
            throw CELError("the first argument of \(name)() must be a simple variable name", at: args[0].position, source: source)
        }
        let p = t.position
        func accu() -> Expr.Kind { .ident(Self.accumulator) }
        let a = make(accu(), at: p)
        switch name {
        case "all", "exists":
            let isAll = name == "all"
            let initial = make(.literal(.bool(isAll)), at: p)
            let accuRef = make(accu(), at: p)
            let condArg = isAll ? accuRef : make(.call(function: "!_", target: nil, args: [accuRef]), at: p)
            let cond = make(.call(function: "@not_strictly_false", target: nil, args: [condArg]), at: p)
            let step = make(.call(function: isAll ? "_&&_" : "_||_", target: nil, args: [make(accu(), at: p), args[1]]), at: p)
            return comprehension(v, target, initial, cond, step, a, at: p)
        case "exists_one":
            let step = make(
                .call(
                    function: "_?_:_", target: nil,
                    args: [
                        args[1], make(.call(function: "_+_", target: nil, args: [make(accu(), at: p), make(.literal(.int(1)), at: p)]), at: p),
                        make(accu(), at: p),
                    ]),
                at: p)
            let result = make(.call(function: "_==_", target: nil, args: [a, make(.literal(.int(1)), at: p)]), at: p)
            return comprehension(v, target, make(.literal(.int(0)), at: p), make(.literal(.bool(true)), at: p), step, result, at: p)
        default:
            // map(x, t), map(x, p, t), filter(x, p): append to a list accumulator, optionally under a predicate.
            let element: Expr = name == "filter" ? make(.ident(v), at: p) : args[args.count - 1]
            let append = make(.call(function: "_+_", target: nil, args: [make(accu(), at: p), make(.list([element]), at: p)]), at: p)
            var step = append
            if name == "filter" || args.count == 3 {
                step = make(.call(function: "_?_:_", target: nil, args: [args[1], append, make(accu(), at: p)]), at: p)
            }
            return comprehension(v, target, make(.list([]), at: p), make(.literal(.bool(true)), at: p), step, a, at: p)
        }
    }

    mutating func comprehension(_ v: String, _ range: Expr, _ initial: Expr, _ cond: Expr, _ step: Expr, _ result: Expr, at p: SourcePosition)
        -> Expr
    {
        make(
            .comprehension(
                Comprehension(
                    iterVar: v, iterRange: range, accuVar: Self.accumulator, accuInit: initial, loopCondition: cond, loopStep: step,
                    result: result)), at: p)
    }
}
