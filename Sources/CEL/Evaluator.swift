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

    mutating func step(_ e: Expr) throws { try charge(1, e) }

    /// Counts `steps` against the cost limit (and, every 1,024 steps, checks the clock); `what` names work other
    /// than evaluating nodes in the error.
    mutating func charge(_ steps: Int, _ e: Expr, for what: String? = nil) throws {
        if let limitError { throw limitError }
        let before = cost
        cost = cost.addingReportingOverflow(steps).overflow ? Int.max : cost + steps
        if cost > costLimit {
            limitError = fail("evaluation exceeded the cost limit of \(costLimit) steps" + (what.map { " (\($0))" } ?? ""), e)
            throw limitError!
        }
        if before >> 10 != cost >> 10, let deadline, ContinuousClock.now > deadline {
            limitError = fail("evaluation exceeded the time limit of \(timeLimit) (after \(cost) steps)" + (what.map { ", \($0)" } ?? ""), e)
            throw limitError!
        }
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

    mutating func eval(_ e: Expr) throws -> Value {
        try step(e)
        switch e.kind {
        case .literal(let v): return v
        case .ident(let name):
            if let v = try lookup(name) { return v }
            if Self.typeNames.contains(name) { return .type(name) }
            if name == "google.protobuf.Timestamp" || name == "google.protobuf.Duration" { return .type(name) }
            throw fail("undeclared reference to '\(name)'", e)
        case .select(let operand, let field, let testOnly):
            // A dotted name may be a variable of its own (`a.b.c` bound as one name).
            // A dotted name may be a variable of its own (`a.b.c` bound as one name), unless its first part is a
            // comprehension variable, which shadows it (`.a.b` always means the root-scoped name).
            if !testOnly, !rootIsLocal(e), let q = Parser.qualifiedName(e), let v = try lookup(q) { return v }
            let target = try eval(operand)
            guard case .map(let entries) = target else {
                throw fail("no such field '\(field)' on \(target.typeName)", e)
            }
            let found = entries.first { if case .string(let k) = $0.key { k == field } else { false } }
            if testOnly { return .bool(found != nil) }
            guard let found else { throw fail("no such key: \(field)", e) }
            return found.value
        case .list(let items):
            var out: [Value] = []
            out.reserveCapacity(items.count)
            for i in items { out.append(try eval(i)) }
            return .list(out)
        case .map(let entries):
            var out: [(key: Value, value: Value)] = []
            for (k, v) in entries {
                let key = try eval(k)
                switch key {
                case .bool, .int, .uint, .string: break
                default: throw fail("unsupported map key type \(key.typeName)", k)
                }
                if out.contains(where: { $0.key.celEquals(key) }) { throw fail("repeated map key \(key)", k) }
                out.append((key, try eval(v)))
            }
            return .map(out)
        case .message(let type, _):
            throw fail("message type \(type) is not supported (Warden's CEL has no protobuf messages)", e)
        case .comprehension(let c):
            return try comprehension(c, e)
        case .call(let function, let target, let args):
            return try call(function, target: target, args: args, e)
        }
    }

    mutating func comprehension(_ c: Comprehension, _ e: Expr) throws -> Value {
        let range = try eval(c.iterRange)
        let items: [Value]
        switch range {
        case .list(let l): items = l
        case .map(let m): items = m.map(\.key)
        default: throw fail("cannot iterate over \(range.typeName)", c.iterRange)
        }
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

    /// Evaluates to a value or the error it raised (for the operators that absorb errors).
    /// Exceeding the cost or time limit ends the evaluation: that error is never absorbed.
    mutating func attempt(_ e: Expr) throws -> Result<Value, CELError> {
        do { return .success(try eval(e)) } catch let err as CELError {
            if let limit = limitError { throw limit }
            return .failure(err)
        } catch { return .failure(fail("\(error)", e)) }
    }

    mutating func call(_ f: String, target: Expr?, args: [Expr], _ e: Expr) throws -> Value {
        switch e.op {
        case .and, .or:
            let isAnd = e.op == .and
            let l = try attempt(args[0])
            if case .success(.bool(let b)) = l, b != isAnd { return .bool(b) }
            let r = try attempt(args[1])
            if case .success(.bool(let b)) = r, b != isAnd { return .bool(b) }
            switch (l, r) {
            case (.success(.bool), .success(.bool)): return .bool(isAnd)
            case (.failure(let err), _), (_, .failure(let err)): throw err
            default: throw fail("no such overload: \(isAnd ? "&&" : "||") on \(typeOf(l)) and \(typeOf(r))", e)
            }
        case .conditional:
            let c = try eval(args[0])
            guard case .bool(let b) = c else { throw fail("no such overload: condition of type \(c.typeName)", args[0]) }
            return try eval(b ? args[1] : args[2])
        case .notStrictlyFalse:
            if case .success(.bool(false)) = try attempt(args[0]) { return .bool(false) }
            return .bool(true)
        case .equals: return .bool(try eval(args[0]).celEquals(try eval(args[1])))
        case .notEquals: return .bool(!(try eval(args[0]).celEquals(try eval(args[1]))))
        case .not:
            if case .bool(let b) = try eval(args[0]) { return .bool(!b) }
        case .inList:
            let item = try eval(args[0])
            switch try eval(args[1]) {
            case .list(let l): return .bool(l.contains { $0.celEquals(item) })
            case .map(let m): return .bool(m.contains { $0.key.celEquals(item) })
            default: break
            }
        case .startsWith, .contains, .endsWith:
            if case .string(let s) = try eval(target!), case .string(let t) = try eval(args[0]) {
                switch e.op {
                case .startsWith: return .bool(s.utf8.starts(with: t.utf8))
                case .contains: return .bool(s.utf8Contains(t))
                default: return .bool(s.utf8.count >= t.utf8.count && s.utf8.suffix(t.utf8.count).elementsEqual(t.utf8))
                }
            }
        case .size:
            switch try eval(target ?? args[0]) {
            case .list(let l): return .int(Int64(l.count))
            case .map(let m): return .int(Int64(m.count))
            case .string(let s): return .int(Int64(s.unicodeScalars.count))
            case .bytes(let b): return .int(Int64(b.count))
            default: break
            }
        case .less, .lessEqual, .greater, .greaterEqual:
            let a = try eval(args[0])
            let b = try eval(args[1])
            guard let c = try Builtins.compare(a, b, { self.fail($0, e) }) else { return .bool(false) }  // NaN compares false
            switch e.op {
            case .less: return .bool(c < 0)
            case .lessEqual: return .bool(c <= 0)
            case .greater: return .bool(c > 0)
            default: return .bool(c >= 0)
            }
        case .none: break
        }
        // The general path (and the fast paths' type errors, which it reports with CEL's messages).
        var values: [Value] = []
        if let target { values.append(try eval(target)) }
        for a in args { values.append(try eval(a)) }
        return try Builtins.apply(f, values, receiver: target != nil, at: e, evaluator: &self)
    }

    func typeOf(_ r: Result<Value, CELError>) -> String {
        if case .success(let v) = r { return v.typeName }
        return "error"
    }
}
