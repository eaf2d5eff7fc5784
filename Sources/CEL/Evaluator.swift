/// Maps an IANA time-zone name and an instant (seconds since the epoch) to that zone's UTC offset in seconds, or
/// nil for an unknown zone. The module has no time-zone database; callers that have one pass it in.
public typealias TimeZoneResolver = @Sendable (_ name: String, _ utcSeconds: Int64) -> Int64?

/// A parsed expression ready to evaluate any number of times (thread-safe: it holds only immutable data).
public struct Program: Sendable {
    public let expr: Expr
    public let source: String

    public init(_ source: String) throws {
        self.source = source
        expr = try Parser.parse(source)
    }

    /// Evaluates with `bindings` (variable name → value); `costLimit` bounds the steps taken. With a `container`
    /// (a dotted namespace like `com.example`), a name `y` resolves to `com.example.y`, then `com.y`, then `y`;
    /// `.y` names the root scope only. `timeLimit` bounds the wall-clock time of this one evaluation.
    public func evaluate(
        _ bindings: [String: Value] = [:], container: String = "", costLimit: Int = 1_000_000, timeLimit: Duration? = nil,
        timeZones: TimeZoneResolver? = nil
    ) throws -> Value {
        var e = Evaluator(bindings: bindings, costLimit: costLimit, source: Array(source.unicodeScalars))
        e.container = container
        e.timeZones = timeZones
        if let timeLimit {
            e.timeLimit = timeLimit
            e.deadline = ContinuousClock.now.advanced(by: timeLimit)
        }
        return try e.eval(expr)
    }
}

struct Evaluator {
    var bindings: [String: Value]
    let costLimit: Int
    var cost = 0
    let source: [Unicode.Scalar]
    /// Comprehension variables; an accumulator may hold an error, raised only if it is used unabsorbed.
    var locals: [(String, Result<Value, CELError>)] = []
    var container = ""
    var timeZones: TimeZoneResolver?
    var timeLimit: Duration = .zero
    /// Checked every 1,024 steps, so the clock costs little.
    var deadline: ContinuousClock.Instant?
    var limitError: CELError?

    init(bindings: [String: Value], costLimit: Int, source: [Unicode.Scalar]) {
        self.bindings = bindings
        self.costLimit = costLimit
        self.source = source
    }

    func fail(_ message: String, _ e: Expr) -> CELError { CELError(message, at: e.position, source: source) }

    // Evaluation recurses once per level of the tree (which the parser bounds to `Parser.maxDepth`). The functions
    // on that path (eval, call and the operator helpers, attempt, select, list, map, comprehension) keep few
    // locals, and what they do once per node off the path (errors, limits, sizes) sits in functions of its own, so
    // that a level takes little stack even in debug builds.

    @inline(__always)
    mutating func step(_ e: Expr) throws {
        cost &+= 1
        if cost > costLimit || cost & 1023 == 0 || limitError != nil { try checkLimits(e, before: cost - 1, for: nil) }
    }

    /// Counts `steps` against the cost limit (and, every 1,024 steps, checks the clock); `what` names work other
    /// than evaluating nodes in the error.
    mutating func charge(_ steps: Int, _ e: Expr, for what: String) throws {
        let before = cost
        cost = cost.addingReportingOverflow(steps).overflow ? Int.max : cost + steps
        try checkLimits(e, before: before, for: what)
    }

    @inline(never)
    mutating func checkLimits(_ e: Expr, before: Int, for what: String?) throws {
        if let limitError { throw limitError }
        if cost > costLimit {
            limitError = fail("evaluation exceeded the cost limit of \(costLimit) steps" + (what.map { " (\($0))" } ?? ""), e)
            throw limitError!
        }
        if before >> 10 != cost >> 10, let deadline, ContinuousClock.now > deadline {
            limitError = fail("evaluation exceeded the time limit of \(timeLimit) (after \(cost) steps)" + (what.map { " while \($0)" } ?? ""), e)
            throw limitError!
        }
    }

    /// Counts a value the evaluation built by its size (`Value.size`), so that the cost limit bounds memory too.
    @inline(never)
    mutating func chargeSize(of v: Value, _ e: Expr) throws {
        let remaining = max(costLimit - cost, 0)
        try charge(v.size(upTo: remaining), e, for: "building a value: values count their elements and bytes")
    }

    func lookup(_ name: String) throws -> Value? {
        if name.hasPrefix(".") { return bindings[String(name.dropFirst())] }
        // Comprehension variables shadow everything, but only by their simple name.
        if let local = locals.last(where: { $0.0 == name }) { return try local.1.get() }
        var prefix = container
        while !prefix.isEmpty {
            if let v = bindings[prefix + "." + name] { return v }
            prefix = prefix.contains(".") ? String(prefix[..<prefix.lastIndex(of: ".")!]) : ""
        }
        return bindings[name]
    }

    /// Whether a select chain starts at a comprehension variable (which shadows dotted variable names), found
    /// without building the dotted name: the common case inside macros.
    func rootIsLocal(_ e: Expr) -> Bool {
        var root = e
        while case .select(let operand, _, false) = root.kind { root = operand }
        guard case .ident(let name) = root.kind, !name.hasPrefix(".") else { return false }
        return locals.contains { $0.0 == name }
    }

    static let typeNames: Set<String> = ["int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"]

    @inline(never)
    mutating func eval(_ e: Expr) throws -> Value {
        try step(e)
        switch e.kind {
        case .literal(let v): return v
        case .call: return try call(e)
        case .ident: return try identifier(e)
        case .select: return try select(e)
        case .list: return try list(e)
        case .map: return try map(e)
        case .comprehension: return try comprehension(e)
        case .message: throw unsupportedMessage(e)
        }
    }

    @inline(never)
    func identifier(_ e: Expr) throws -> Value {
        guard case .ident(let name) = e.kind else { return .null }
        if let v = try lookup(name) { return v }
        if Self.typeNames.contains(name) { return .type(name) }
        if name == "google.protobuf.Timestamp" || name == "google.protobuf.Duration" { return .type(name) }
        throw fail("undeclared reference to '\(name)'", e)
    }

    @inline(never)
    func unsupportedMessage(_ e: Expr) -> CELError {
        guard case .message(let type, _) = e.kind else { return fail("not a message", e) }
        return fail("message type \(type) is not supported (Warden's CEL has no protobuf messages)", e)
    }

    mutating func select(_ e: Expr) throws -> Value {
        guard case .select(let operand, _, let testOnly) = e.kind else { return .null }
        if !testOnly, let v = try dottedVariable(e) { return v }
        let target = try eval(operand)
        return try field(of: target, e)
    }

    /// A dotted name may be a variable of its own (`a.b.c` bound as one name), unless its first part is a
    /// comprehension variable, which shadows it (`.a.b` always means the root-scoped name).
    @inline(never)
    func dottedVariable(_ e: Expr) throws -> Value? {
        guard !rootIsLocal(e), let q = Parser.qualifiedName(e) else { return nil }
        return try lookup(q)
    }

    @inline(never)
    func field(of target: Value, _ e: Expr) throws -> Value {
        guard case .select(_, let field, let testOnly) = e.kind else { return .null }
        guard case .map(let entries) = target else { throw fail("no such field '\(field)' on \(target.typeName)", e) }
        let found = entries.first { if case .string(let k) = $0.key { k == field } else { false } }
        if testOnly { return .bool(found != nil) }
        guard let found else { throw fail("no such key: \(field)", e) }
        return found.value
    }

    mutating func list(_ e: Expr) throws -> Value {
        guard case .list(let items) = e.kind else { return .null }
        var out: [Value] = []
        out.reserveCapacity(items.count)
        for i in items { out.append(try eval(i)) }
        try chargeElements(items, out)
        return .list(out)
    }

    /// A literal's elements that are not literals themselves count by their size (a literal's own size is part of
    /// the program, not of what the evaluation builds).
    @inline(never)
    mutating func chargeElements(_ items: [Expr], _ values: [Value]) throws {
        for (item, v) in zip(items, values) where !item.isLiteral { try chargeSize(of: v, item) }
    }

    mutating func map(_ e: Expr) throws -> Value {
        guard case .map(let entries) = e.kind else { return .null }
        var out: [(key: Value, value: Value)] = []
        for (k, v) in entries {
            let key = try eval(k)
            try checkKey(key, out, k)
            out.append((key, try eval(v)))
        }
        try chargeEntries(entries, out)
        return .map(out)
    }

    @inline(never)
    mutating func chargeEntries(_ entries: [(key: Expr, value: Expr)], _ values: [(key: Value, value: Value)]) throws {
        try chargeElements(entries.flatMap { [$0.key, $0.value] }, values.flatMap { [$0.key, $0.value] })
    }

    @inline(never)
    func checkKey(_ key: Value, _ entries: [(key: Value, value: Value)], _ k: Expr) throws {
        switch key {
        case .bool, .int, .uint, .string: break
        default: throw fail("unsupported map key type \(key.typeName)", k)
        }
        if entries.contains(where: { $0.key.celEquals(key) }) { throw fail("repeated map key \(key)", k) }
    }

    mutating func comprehension(_ e: Expr) throws -> Value {
        guard case .comprehension(let c) = e.kind else { return .null }
        let items = try iterationItems(c)
        if let (predicate, element) = Self.appendStep(c) { return try appendLoop(c, items, predicate, element) }
        return try fold(c, items)
    }

    mutating func iterationItems(_ c: Comprehension) throws -> [Value] {
        let range = try eval(c.iterRange)
        switch range {
        case .list(let l): return l
        case .map(let m): return m.map(\.key)
        default: throw fail("cannot iterate over \(range.typeName)", c.iterRange)
        }
    }

    mutating func fold(_ c: Comprehension, _ items: [Value]) throws -> Value {
        var accu = try attempt(c.accuInit)
        for item in items {
            locals.append((c.accuVar, accu))
            locals.append((c.iterVar, .success(item)))
            defer { locals.removeLast(2) }
            guard case .success(.bool(true)) = try attempt(c.loopCondition) else { break }
            accu = try attempt(c.loopStep)
        }
        locals.append((c.accuVar, accu))
        defer { locals.removeLast() }
        return try eval(c.result)
    }

    /// The step of a `map` or `filter` macro, `@result + [element]` (under a predicate for `filter` and the
    /// three-argument `map`), which `appendLoop` runs without copying the accumulated list at every element.
    static func appendStep(_ c: Comprehension) -> (predicate: Expr?, element: Expr)? {
        guard case .list(let initial) = c.accuInit.kind, initial.isEmpty, case .literal(.bool(true)) = c.loopCondition.kind,
            case .ident(let result) = c.result.kind, result == c.accuVar
        else { return nil }
        var append = c.loopStep
        var predicate: Expr?
        if append.op == .conditional, case .call(_, nil, let args) = append.kind, case .ident(let a) = args[2].kind, a == c.accuVar {
            predicate = args[0]
            append = args[1]
        }
        guard case .call("_+_", nil, let args) = append.kind, args.count == 2, case .ident(let a) = args[0].kind, a == c.accuVar,
            case .list(let elements) = args[1].kind, elements.count == 1
        else { return nil }
        return (predicate, elements[0])
    }

    /// `fold` for a `map` or `filter` step, with the same outcome: an element's error becomes the result (a later
    /// predicate's error replaces it, as evaluating the step again would).
    mutating func appendLoop(_ c: Comprehension, _ items: [Value], _ predicate: Expr?, _ element: Expr) throws -> Value {
        var out: [Value] = []
        var failure: CELError?
        // Elements that are the item or a field of it add nothing the range did not hold; others count their size.
        let sized = !element.isLiteral && !element.isPath(from: c.iterVar)
        for item in items {
            locals.append((c.iterVar, .success(item)))
            defer { locals.removeLast() }
            do {
                try step(c.loopStep)
                if let predicate, try !holds(predicate) { continue }
                if failure != nil { continue }
                let v = try eval(element)
                if sized { try chargeSize(of: v, element) }
                out.append(v)
            } catch {
                failure = try absorbed(error, c.loopStep).error
            }
        }
        try step(c.result)
        if let failure { throw failure }
        return .list(out)
    }

    /// A conditional's condition.
    mutating func holds(_ condition: Expr) throws -> Bool {
        let c = try eval(condition)
        guard case .bool(let b) = c else { throw conditionError(c, condition) }
        return b
    }

    @inline(never)
    func conditionError(_ c: Value, _ e: Expr) -> CELError { fail("no such overload: condition of type \(c.typeName)", e) }

    /// Evaluates to a value or the error it raised (for the operators that absorb errors).
    /// Exceeding the cost or time limit ends the evaluation: that error is never absorbed.
    mutating func attempt(_ e: Expr) throws -> Result<Value, CELError> {
        do { return .success(try eval(e)) } catch { return try absorbed(error, e) }
    }

    @inline(never)
    func absorbed(_ error: any Error, _ e: Expr) throws -> Result<Value, CELError> {
        if let limit = limitError { throw limit }
        return .failure(error as? CELError ?? fail("\(error)", e))
    }

    mutating func call(_ e: Expr) throws -> Value {
        switch e.op {
        case .none: return try general(e)
        case .add: return try sum(e)
        case .and, .or: return try logical(e)
        case .conditional: return try conditional(e)
        case .notStrictlyFalse: return try notStrictlyFalse(e)
        case .equals, .notEquals: return try equality(e)
        case .less, .lessEqual, .greater, .greaterEqual: return try comparison(e)
        case .not, .inList, .startsWith, .contains, .endsWith, .size:
            // The general path reports the fast paths' type errors with CEL's messages.
            return try fastPath(e) ?? general(e)
        }
    }

    /// The operands of a call.
    func operands(_ e: Expr) -> (target: Expr?, args: [Expr]) {
        guard case .call(_, let target, let args) = e.kind else { return (nil, []) }
        return (target, args)
    }

    mutating func conditional(_ e: Expr) throws -> Value {
        let args = operands(e).args
        return try eval(holds(args[0]) ? args[1] : args[2])
    }

    mutating func notStrictlyFalse(_ e: Expr) throws -> Value {
        if case .success(.bool(false)) = try attempt(operands(e).args[0]) { return .bool(false) }
        return .bool(true)
    }

    mutating func equality(_ e: Expr) throws -> Value {
        let args = operands(e).args
        let equal = try eval(args[0]).celEquals(try eval(args[1]))
        return .bool(equal == (e.op == .equals))
    }

    /// `!`, `in`, the string predicates and `size` on the types they take; nil for the general path.
    mutating func fastPath(_ e: Expr) throws -> Value? {
        let (target, args) = operands(e)
        switch e.op {
        case .not:
            if case .bool(let b) = try eval(args[0]) { return .bool(!b) }
            return nil
        case .inList: return try membership(args)
        case .size: return try size(target ?? args[0])
        default: return try stringPredicate(target!, args[0], e.op)
        }
    }

    mutating func general(_ e: Expr) throws -> Value {
        guard case .call(let f, let target, let args) = e.kind else { return .null }
        var values: [Value] = []
        values.reserveCapacity(args.count + 1)
        if let target { values.append(try eval(target)) }
        for a in args { values.append(try eval(a)) }
        return try Builtins.apply(f, values, receiver: target != nil, at: e, evaluator: &self)
    }

    /// `+`, whose strings, bytes and lists are new values that count their size.
    mutating func sum(_ e: Expr) throws -> Value {
        let v = try general(e)
        switch v {
        case .string, .bytes, .list: try chargeSize(of: v, e)
        default: break
        }
        return v
    }

    mutating func logical(_ e: Expr) throws -> Value {
        let args = operands(e).args
        let isAnd = e.op == .and
        let l = try attempt(args[0])
        if case .success(.bool(let b)) = l, b != isAnd { return .bool(b) }
        let r = try attempt(args[1])
        if case .success(.bool(let b)) = r, b != isAnd { return .bool(b) }
        return try undecided(l, r, e)
    }

    /// Neither side of `&&` or `||` decided: both bools, or an error, or a type error.
    @inline(never)
    func undecided(_ l: Result<Value, CELError>, _ r: Result<Value, CELError>, _ e: Expr) throws -> Value {
        let isAnd = e.op == .and
        switch (l, r) {
        case (.success(.bool), .success(.bool)): return .bool(isAnd)
        case (.failure(let err), _), (_, .failure(let err)): throw err
        default: throw fail("no such overload: \(isAnd ? "&&" : "||") on \(typeOf(l)) and \(typeOf(r))", e)
        }
    }

    mutating func comparison(_ e: Expr) throws -> Value {
        let args = operands(e).args
        let a = try eval(args[0])
        let b = try eval(args[1])
        return try compared(a, b, e)
    }

    @inline(never)
    func compared(_ a: Value, _ b: Value, _ e: Expr) throws -> Value {
        guard let c = try Builtins.compare(a, b, { self.fail($0, e) }) else { return .bool(false) }  // NaN compares false
        switch e.op {
        case .less: return .bool(c < 0)
        case .lessEqual: return .bool(c <= 0)
        case .greater: return .bool(c > 0)
        default: return .bool(c >= 0)
        }
    }

    mutating func membership(_ args: [Expr]) throws -> Value? {
        let item = try eval(args[0])
        switch try eval(args[1]) {
        case .list(let l): return .bool(l.contains { $0.celEquals(item) })
        case .map(let m): return .bool(m.contains { $0.key.celEquals(item) })
        default: return nil
        }
    }

    mutating func stringPredicate(_ target: Expr, _ arg: Expr, _ op: Expr.Op) throws -> Value? {
        guard case .string(let s) = try eval(target), case .string(let t) = try eval(arg) else { return nil }
        switch op {
        case .startsWith: return .bool(s.utf8.starts(with: t.utf8))
        case .contains: return .bool(s.utf8Contains(t))
        default: return .bool(s.utf8.count >= t.utf8.count && s.utf8.suffix(t.utf8.count).elementsEqual(t.utf8))
        }
    }

    mutating func size(_ operand: Expr) throws -> Value? {
        switch try eval(operand) {
        case .list(let l): return .int(Int64(l.count))
        case .map(let m): return .int(Int64(m.count))
        case .string(let s): return .int(Int64(s.unicodeScalars.count))
        case .bytes(let b): return .int(Int64(b.count))
        default: return nil
        }
    }

    func typeOf(_ r: Result<Value, CELError>) -> String {
        if case .success(let v) = r { return v.typeName }
        return "error"
    }
}

extension Result {
    var error: Failure? {
        if case .failure(let e) = self { return e }
        return nil
    }
}
