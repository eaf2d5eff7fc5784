/// Parses CEL source text into an `Expr` (CEL spec grammar), with errors that carry a line, a column and a caret.
public struct Parser {
    public static let maxDepth = 64
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

    /// A node, refused when it would make the tree deeper than `maxDepth` (so that a long chain like `1 + 1 + …`
    /// or `x[0][0]…` is an error here rather than a stack overflow in whatever walks the tree later).
    mutating func make(_ kind: Expr.Kind, at position: SourcePosition) throws -> Expr {
        defer { nextID += 1 }
        let e = Expr(id: nextID, position: position, kind: kind)
        if e.height > Self.maxDepth { throw tooDeep(at: position) }
        return e
    }

    func tooDeep(at position: SourcePosition) -> CELError {
        CELError("expression nests more than \(Self.maxDepth) levels deep", at: position, source: source)
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
        if depth > Self.maxDepth { throw tooDeep(at: peek.position) }
    }

    // The functions on the recursive path (expression, binary, operatorChain, unary, prefixOperator, member,
    // selection, indexing, primary and what primary calls) keep few locals, so that each level of nesting takes
    // little stack even in debug builds; the work done once per node (make, macroOrCall) sits off that path.

    // Expr = ConditionalOr ["?" ConditionalOr ":" Expr]
    @inline(never)
    mutating func expression() throws -> Expr {
        try enter()
        defer { depth -= 1 }
        let condition = try binary(0)
        return isPunct("?") ? try conditional(condition) : condition
    }

    mutating func conditional(_ condition: Expr) throws -> Expr {
        let q = peek.position
        index += 1
        let yes = try binary(0)
        _ = try expect(":", context: "in the conditional operator")
        let no = try expression()
        return try make(.call(function: "_?_:_", target: nil, args: [condition, yes, no]), at: q)
    }

    /// Binary operators by precedence level, loosest first: `||`, `&&`, relations, `+ -`, `* / %`.
    static let levels: [[String: String]] = [
        ["||": "_||_"],
        ["&&": "_&&_"],
        ["<": "_<_", "<=": "_<=_", ">": "_>_", ">=": "_>=_", "==": "_==_", "!=": "_!=_", "in": "@in"],
        ["+": "_+_", "-": "_-_"],
        ["*": "_*_", "/": "_/_", "%": "_%_"],
    ]
    static let operators: [String: (level: Int, function: String)] = {
        var out: [String: (level: Int, function: String)] = [:]
        for (level, ops) in levels.enumerated() { for (token, function) in ops { out[token] = (level, function) } }
        return out
    }()
    /// `||` and `&&` (the first two levels) are commutative in CEL, errors included: their chains are built balanced.
    static let balancedLevels = 2

    /// The binary operator at the cursor, if any.
    var binaryOperator: (level: Int, function: String)? {
        switch peek.kind {
        case .punct(let p): Self.operators[p]
        case .ident("in"): Self.operators["in"]
        default: nil
        }
    }

    /// Operands joined by operators of level `minLevel` or tighter (precedence climbing).
    mutating func binary(_ minLevel: Int) throws -> Expr {
        let first = try unary()
        guard let op = binaryOperator, op.level >= minLevel else { return first }
        return try operatorChain(first, minLevel)
    }

    mutating func operatorChain(_ first: Expr, _ minLevel: Int) throws -> Expr {
        var left = first
        while let op = binaryOperator, op.level >= minLevel {
            var terms = [left]
            var tokens = [peek]
            index += 1
            // A right operand nests a level (`1 + (1 + (…))` recurses through here at every parenthesis).
            try enter()
            defer { depth -= 1 }
            terms.append(try binary(op.level + 1))
            // A chain of `||` (or `&&`) is gathered whole and built balanced; other operators associate left.
            while op.level < Self.balancedLevels, binaryOperator?.level == op.level {
                tokens.append(peek)
                index += 1
                terms.append(try binary(op.level + 1))
            }
            left = try balanced(terms, tokens, op.function, 0, terms.count - 1)
        }
        return left
    }

    /// `a && b && c && d` as `(a && b) && (c && d)`, as cel-go builds it: the same value, but a chain of n terms
    /// nests about log2(n) levels deep instead of n. `operators[k]` stands between `terms[k]` and `terms[k + 1]`.
    mutating func balanced(_ terms: [Expr], _ operators: [Token], _ function: String, _ low: Int, _ high: Int) throws -> Expr {
        if low == high { return terms[low] }
        let mid = (low + high + 1) / 2
        let left = try balanced(terms, operators, function, low, mid - 1)
        let right = try balanced(terms, operators, function, mid, high)
        return try make(.call(function: function, target: nil, args: [left, right]), at: operators[mid - 1].position)
    }

    /// Unary = Member | ("!" | "-") Unary; Member = Primary {"." …  | "[" Expr "]"}.
    mutating func unary() throws -> Expr {
        if isPunct("!") || isPunct("-") { return try prefixOperator() }
        return try member(try primary())
    }

    mutating func prefixOperator() throws -> Expr {
        let t = peek.position
        let isNot = isPunct("!")
        index += 1
        // A negated numeric literal is one literal (so that -9223372036854775808 is representable).
        if !isNot, let literal = try negatedLiteral(at: t) { return try member(literal) }
        try enter()
        defer { depth -= 1 }
        let operand = try unary()
        return try make(.call(function: isNot ? "!_" : "-_", target: nil, args: [operand]), at: t)
    }

    mutating func negatedLiteral(at t: SourcePosition) throws -> Expr? {
        let value: Value
        switch peek.kind {
        case .int(let v) where !peek.text.hasSuffix("u") && !peek.text.hasSuffix("U"): value = .int(-v)
        case .uint(let v) where v == 9_223_372_036_854_775_808 && !peek.text.lowercased().hasSuffix("u"): value = .int(Int64.min)
        case .double(let v): value = .double(-v)
        default: return nil
        }
        index += 1
        return try make(.literal(value), at: t)
    }

    mutating func member(_ start: Expr) throws -> Expr {
        var e = start
        while true {
            if isPunct(".") {
                e = try selection(e)
            } else if isPunct("[") {
                e = try indexing(e)
            } else {
                return e
            }
        }
    }

    /// `.method(…)` after `e`, or what `field(of:)` reads.
    mutating func selection(_ e: Expr) throws -> Expr {
        index += 1
        if case .ident = peek.kind, tokens[index + 1].kind == .punct("(") {
            index += 1
            return try callee(target: e, at: index - 1)
        }
        return try field(of: e)
    }

    /// `.field` or `.Type{…}` after `e` (the dot read).
    mutating func field(of e: Expr) throws -> Expr {
        let dot = tokens[index - 1].position
        if case .quotedIdent(let name) = peek.kind {
            index += 1
            return try make(.select(operand: e, field: name, testOnly: false), at: dot)
        }
        guard case .ident(let name) = peek.kind else { throw error("expected a field or method name after '.', found \(describe(peek))") }
        let nameToken = peek
        index += 1
        if isPunct("{"), let qualified = Self.qualifiedName(e) { return try message(qualified + "." + name, at: nameToken) }
        return try make(.select(operand: e, field: name, testOnly: false), at: dot)
    }

    /// A call of the function named at `i` (on `target`), its arguments at the cursor.
    mutating func callee(target: Expr?, at i: Int) throws -> Expr {
        try macroOrCall(Self.name(of: tokens[i]), target: target, args: arguments(), at: tokens[i])
    }

    static func name(of t: Token) -> String {
        if case .ident(let name) = t.kind { return name }
        return t.text
    }

    mutating func indexing(_ e: Expr) throws -> Expr {
        let t = peek.position
        index += 1
        let i = try expression()
        _ = try expect("]", context: "to close the index")
        return try make(.call(function: "_[_]", target: nil, args: [e, i]), at: t)
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
        switch peek.kind {
        case .ident: return try identifier()
        case .punct: return try punctuated()
        default: return try literal()
        }
    }

    mutating func punctuated() throws -> Expr {
        if isPunct("(") { return try parenthesized() }
        if isPunct("[") { return try listLiteral() }
        if isPunct("{") { return try mapLiteral() }
        if isPunct(".") { return try rootIdentifier() }
        return try literal()
    }

    mutating func literal() throws -> Expr {
        let t = peek
        let value: Value
        switch t.kind {
        case .int(let v): value = .int(v)
        case .uint(let v):
            if v == 9_223_372_036_854_775_808 && !t.text.lowercased().hasSuffix("u") {
                throw error("int literal \(t.text) is out of range", at: t)
            }
            value = .uint(v)
        case .double(let v): value = .double(v)
        case .string(let s): value = .string(s)
        case .bytes(let b): value = .bytes(b)
        default: throw error("unexpected \(describe(t))", at: t)
        }
        index += 1
        return try make(.literal(value), at: t.position)
    }

    mutating func identifier() throws -> Expr {
        if let keyword = try keywordOrReserved() { return keyword }
        index += 1
        if isPunct("(") { return try callee(target: nil, at: index - 1) }
        return try name(at: index - 1)
    }

    /// The identifier at `i` (already read) as a variable or a message type.
    mutating func name(at i: Int) throws -> Expr {
        let t = tokens[i]
        if isPunct("{") { return try message(Self.name(of: t), at: t) }
        return try make(.ident(Self.name(of: t)), at: t.position)
    }

    static let keywords: [String: Value] = ["true": .bool(true), "false": .bool(false), "null": .null]

    /// `true`, `false` and `null` as literals (read); an error for `in` and reserved words; nil for other names.
    mutating func keywordOrReserved() throws -> Expr? {
        let t = peek
        let name = Self.name(of: t)
        if let v = Self.keywords[name] {
            index += 1
            return try make(.literal(v), at: t.position)
        }
        if name == "in" { throw error("unexpected 'in'", at: t) }
        if Self.reserved.contains(name) { throw error("'\(name)' is a reserved word and cannot be used as an identifier", at: t) }
        return nil
    }

    /// A leading dot names the root scope: `.a.b`.
    mutating func rootIdentifier() throws -> Expr {
        index += 1
        guard case .ident(let name) = peek.kind else { throw error("expected an identifier after the leading '.'") }
        let nt = peek
        index += 1
        if isPunct("(") { return try macroOrCall("." + name, target: nil, args: arguments(), at: nt) }
        if isPunct("{") { return try message("." + name, at: nt) }
        return try make(.ident("." + name), at: nt.position)
    }

    mutating func parenthesized() throws -> Expr {
        index += 1
        let e = try expression()
        _ = try expect(")", context: "to close the parenthesis")
        return e
    }

    mutating func listLiteral() throws -> Expr {
        let t = peek.position
        index += 1
        var items: [Expr] = []
        while !isPunct("]") {
            items.append(try expression())
            if isPunct(",") { index += 1 } else { break }
        }
        _ = try expect("]", context: "to close the list")
        return try make(.list(items), at: t)
    }

    mutating func mapLiteral() throws -> Expr {
        let t = peek.position
        index += 1
        var entries: [(key: Expr, value: Expr)] = []
        while !isPunct("}") {
            let k = try expression()
            _ = try expect(":", context: "between a map key and its value")
            entries.append((k, try expression()))
            if isPunct(",") { index += 1 } else { break }
        }
        _ = try expect("}", context: "to close the map")
        return try make(.map(entries), at: t)
    }

    /// `a.b.c` (identifiers and plain selections only) as a dotted name, for message type names.
    static func qualifiedName(_ e: Expr) -> String? {
        var fields: [String] = []
        var node = e
        while case .select(let operand, let field, false) = node.kind {
            fields.append(field)
            node = operand
        }
        guard case .ident(let root) = node.kind else { return nil }
        return ([root] + fields.reversed()).joined(separator: ".")
    }

    mutating func message(_ type: String, at t: Token) throws -> Expr {
        _ = try expect("{", context: "to start the message fields")
        var fields: [(name: String, value: Expr)] = []
        while !isPunct("}") {
            let name = try fieldName()
            fields.append((name, try expression()))
            if isPunct(",") { index += 1 } else { break }
        }
        _ = try expect("}", context: "to close the message")
        return try make(.message(type: type, fields: fields), at: t.position)
    }

    /// A message field's name and its colon.
    mutating func fieldName() throws -> String {
        guard case .ident(let name) = peek.kind else { throw error("expected a field name, found \(describe(peek))") }
        index += 1
        _ = try expect(":", context: "after the field name")
        return name
    }

    // MARK: macros

    mutating func macroOrCall(_ name: String, target: Expr?, args: [Expr], at t: Token) throws -> Expr {
        if target == nil, name == "has" {
            guard args.count == 1, case .select(let operand, let field, _) = args[0].kind else {
                throw error("has() takes one field selection, like has(a.b)", at: t)
            }
            return try make(.select(operand: operand, field: field, testOnly: true), at: t.position)
        }
        guard let target, ["all", "exists", "exists_one", "map", "filter"].contains(name) else {
            return try make(.call(function: name, target: target, args: args), at: t.position)
        }
        let arity = name == "map" ? [2, 3] : [2]
        guard arity.contains(args.count) else {
            return try make(.call(function: name, target: target, args: args), at: t.position)
        }
        guard case .ident(let v) = args[0].kind, !v.hasPrefix(".") else {
            throw CELError("the first argument of \(name)() must be a simple variable name", at: args[0].position, source: source)
        }
        let p = t.position
        func accu() -> Expr.Kind { .ident(Self.accumulator) }
        let a = try make(accu(), at: p)
        switch name {
        case "all", "exists":
            let isAll = name == "all"
            let initial = try make(.literal(.bool(isAll)), at: p)
            let accuRef = try make(accu(), at: p)
            let condArg = isAll ? accuRef : try make(.call(function: "!_", target: nil, args: [accuRef]), at: p)
            let cond = try make(.call(function: "@not_strictly_false", target: nil, args: [condArg]), at: p)
            let step = try make(.call(function: isAll ? "_&&_" : "_||_", target: nil, args: [make(accu(), at: p), args[1]]), at: p)
            return try comprehension(v, target, initial, cond, step, a, at: p)
        case "exists_one":
            let step = try make(
                .call(
                    function: "_?_:_", target: nil,
                    args: [
                        args[1], try make(.call(function: "_+_", target: nil, args: [make(accu(), at: p), make(.literal(.int(1)), at: p)]), at: p),
                        try make(accu(), at: p),
                    ]),
                at: p)
            let result = try make(.call(function: "_==_", target: nil, args: [a, make(.literal(.int(1)), at: p)]), at: p)
            return try comprehension(v, target, make(.literal(.int(0)), at: p), make(.literal(.bool(true)), at: p), step, result, at: p)
        default:
            // map(x, t), map(x, p, t), filter(x, p): append to a list accumulator, optionally under a predicate.
            let element: Expr = name == "filter" ? try make(.ident(v), at: p) : args[args.count - 1]
            let append = try make(.call(function: "_+_", target: nil, args: [make(accu(), at: p), make(.list([element]), at: p)]), at: p)
            var step = append
            if name == "filter" || args.count == 3 {
                step = try make(.call(function: "_?_:_", target: nil, args: [args[1], append, make(accu(), at: p)]), at: p)
            }
            return try comprehension(v, target, make(.list([]), at: p), make(.literal(.bool(true)), at: p), step, a, at: p)
        }
    }

    mutating func comprehension(_ v: String, _ range: Expr, _ initial: Expr, _ cond: Expr, _ step: Expr, _ result: Expr, at p: SourcePosition)
        throws -> Expr
    {
        try make(
            .comprehension(
                Comprehension(
                    iterVar: v, iterRange: range, accuVar: Self.accumulator, accuInit: initial, loopCondition: cond, loopStep: step,
                    result: result)), at: p)
    }
}
