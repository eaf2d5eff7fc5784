/// CEL's standard functions and operators over `Value`.
enum Builtins {
    static func apply(_ f: String, _ v: [Value], receiver: Bool, at e: Expr, evaluator: inout Evaluator) throws -> Value {
        func fail(_ m: String) -> CELError { evaluator.fail(m, e) }
        func noOverload() -> CELError {
            fail("no such overload: \(f)(\(v.map(\.typeName).joined(separator: ", ")))")
        }
        switch (f, v.count) {
        case ("_+_", 2): return try add(v[0], v[1], fail)
        case ("_-_", 2): return try subtract(v[0], v[1], fail)
        case ("_*_", 2):
            switch (v[0], v[1]) {
            case (.int(let a), .int(let b)):
                let (r, o) = a.multipliedReportingOverflow(by: b)
                if o { throw fail("integer overflow in \(a) * \(b)") }
                return .int(r)
            case (.uint(let a), .uint(let b)):
                let (r, o) = a.multipliedReportingOverflow(by: b)
                if o { throw fail("unsigned integer overflow in \(a) * \(b)") }
                return .uint(r)
            case (.double(let a), .double(let b)): return .double(a * b)
            default: throw noOverload()
            }
        case ("_/_", 2):
            switch (v[0], v[1]) {
            case (.int(let a), .int(let b)):
                if b == 0 { throw fail("division by zero") }
                let (r, o) = a.dividedReportingOverflow(by: b)
                if o { throw fail("integer overflow in \(a) / \(b)") }
                return .int(r)
            case (.uint(let a), .uint(let b)):
                if b == 0 { throw fail("division by zero") }
                return .uint(a / b)
            case (.double(let a), .double(let b)): return .double(a / b)
            default: throw noOverload()
            }
        case ("_%_", 2):
            switch (v[0], v[1]) {
            case (.int(let a), .int(let b)):
                if b == 0 { throw fail("modulus by zero") }
                let (r, o) = a.remainderReportingOverflow(dividingBy: b)
                if o { throw fail("integer overflow in \(a) % \(b)") }
                return .int(r)
            case (.uint(let a), .uint(let b)):
                if b == 0 { throw fail("modulus by zero") }
                return .uint(a % b)
            default: throw noOverload()
            }
        case ("-_", 1):
            switch v[0] {
            case .int(let a):
                if a == .min { throw fail("integer overflow in -(\(a))") }
                return .int(-a)
            case .double(let a): return .double(-a)
            case .duration(let s, let n): return .duration(seconds: -s, nanos: -n)
            default: throw noOverload()
            }
        case ("!_", 1):
            guard case .bool(let b) = v[0] else { throw noOverload() }
            return .bool(!b)
        case ("_==_", 2): return .bool(v[0].celEquals(v[1]))
        case ("_!=_", 2): return .bool(!v[0].celEquals(v[1]))
        case ("_<_", 2), ("_<=_", 2), ("_>_", 2), ("_>=_", 2):
            guard let c = try compare(v[0], v[1], fail) else { return .bool(false) }  // NaN compares false
            switch f {
            case "_<_": return .bool(c < 0)
            case "_<=_": return .bool(c <= 0)
            case "_>_": return .bool(c > 0)
            default: return .bool(c >= 0)
            }
        case ("@in", 2):
            switch v[1] {
            case .list(let l): return .bool(l.contains { $0.celEquals(v[0]) })
            case .map(let m): return .bool(m.contains { $0.key.celEquals(v[0]) })
            default: throw noOverload()
            }
        case ("_[_]", 2): return try index(v[0], v[1], fail)
        case ("size", 1):
            switch v[0] {
            case .string(let s): return .int(Int64(s.unicodeScalars.count))
            case .bytes(let b): return .int(Int64(b.count))
            case .list(let l): return .int(Int64(l.count))
            case .map(let m): return .int(Int64(m.count))
            default: throw noOverload()
            }
        case ("contains", 2), ("startsWith", 2), ("endsWith", 2):
            guard receiver, case .string(let s) = v[0], case .string(let t) = v[1] else { throw noOverload() }
            // UTF-8 is self-synchronizing: byte matches of valid text fall on code-point boundaries, so these
            // compare code points exactly (no Unicode normalization), without decoding.
            switch f {
            case "contains": return .bool(s.utf8Contains(t))
            case "startsWith": return .bool(s.utf8.starts(with: t.utf8))
            default: return .bool(s.utf8.count >= t.utf8.count && s.utf8.suffix(t.utf8.count).elementsEqual(t.utf8))
            }
        case ("matches", 2):
            guard case .string(let s) = v[0], case .string(let pattern) = v[1] else { throw noOverload() }
            let re: RegexProgram
            do { re = try RegexCache.shared.compile(pattern) } catch { throw fail("invalid regular expression \"\(pattern)\": \(error)") }
            return .bool(try re.matches(s) { try evaluator.charge($0, e, for: "matching a regular expression") })
        case ("int", 1): return try Conversions.toInt(v[0], fail)
        case ("uint", 1): return try Conversions.toUint(v[0], fail)
        case ("double", 1): return try Conversions.toDouble(v[0], fail)
        case ("string", 1): return try Conversions.toString(v[0], fail)
        case ("bytes", 1):
            switch v[0] {
            case .bytes: return v[0]
            case .string(let s): return .bytes(Array(s.utf8))
            default: throw noOverload()
            }
        case ("bool", 1):
            switch v[0] {
            case .bool: return v[0]
            case .string(let s):
                switch s {
                case "1", "t", "true", "TRUE", "True": return .bool(true)
                case "0", "f", "false", "FALSE", "False": return .bool(false)
                default: throw fail("cannot convert \"\(s)\" to bool")
                }
            default: throw noOverload()
            }
        case ("dyn", 1): return v[0]
        case ("type", 1): return .type(v[0].typeName)
        case ("timestamp", 1):
            switch v[0] {
            case .timestamp: return v[0]
            case .string(let s): return try Time.parseTimestamp(s, fail)
            case .int(let i): return try Time.checkedTimestamp(i, 0, fail)
            default: throw noOverload()
            }
        case ("duration", 1):
            switch v[0] {
            case .duration: return v[0]
            case .string(let s): return try Time.parseDuration(s, fail)
            default: throw noOverload()
            }
        case ("getFullYear", _), ("getMonth", _), ("getDayOfMonth", _), ("getDate", _), ("getDayOfWeek", _), ("getDayOfYear", _),
            ("getHours", _), ("getMinutes", _), ("getSeconds", _), ("getMilliseconds", _):
            return try Time.accessor(f, v, fail, noOverload, timeZones: evaluator.timeZones)
        default:
            throw fail("unknown function \(f)(\(v.map(\.typeName).joined(separator: ", ")))")
        }
    }

    static func add(_ a: Value, _ b: Value, _ fail: (String) -> CELError) throws -> Value {
        switch (a, b) {
        case (.int(let x), .int(let y)):
            let (r, o) = x.addingReportingOverflow(y)
            if o { throw fail("integer overflow in \(x) + \(y)") }
            return .int(r)
        case (.uint(let x), .uint(let y)):
            let (r, o) = x.addingReportingOverflow(y)
            if o { throw fail("unsigned integer overflow in \(x) + \(y)") }
            return .uint(r)
        case (.double(let x), .double(let y)): return .double(x + y)
        case (.string(let x), .string(let y)): return .string(x + y)
        case (.bytes(let x), .bytes(let y)): return .bytes(x + y)
        case (.list(let x), .list(let y)): return .list(x + y)
        case (.timestamp(let s, let n), .duration(let ds, let dn)), (.duration(let ds, let dn), .timestamp(let s, let n)):
            let (ts, tn) = try Time.add(s, n, ds, dn, fail)
            return try Time.checkedTimestamp(ts, tn, fail)
        case (.duration(let s, let n), .duration(let ds, let dn)):
            let (rs, rn) = try Time.add(s, n, ds, dn, fail)
            return try Time.checkedDuration(rs, rn, fail)
        default: throw fail("no such overload: _+_(\(a.typeName), \(b.typeName))")
        }
    }

    static func subtract(_ a: Value, _ b: Value, _ fail: (String) -> CELError) throws -> Value {
        switch (a, b) {
        case (.int(let x), .int(let y)):
            let (r, o) = x.subtractingReportingOverflow(y)
            if o { throw fail("integer overflow in \(x) - \(y)") }
            return .int(r)
        case (.uint(let x), .uint(let y)):
            let (r, o) = x.subtractingReportingOverflow(y)
            if o { throw fail("unsigned integer overflow in \(x) - \(y)") }
            return .uint(r)
        case (.double(let x), .double(let y)): return .double(x - y)
        case (.timestamp(let s, let n), .timestamp(let ts, let tn)):
            let (rs, rn) = try Time.add(s, n, -ts, -tn, fail)
            return try Time.checkedDuration(rs, rn, fail)
        case (.timestamp(let s, let n), .duration(let ds, let dn)):
            let (rs, rn) = try Time.add(s, n, -ds, -dn, fail)
            return try Time.checkedTimestamp(rs, rn, fail)
        case (.duration(let s, let n), .duration(let ds, let dn)):
            let (rs, rn) = try Time.add(s, n, -ds, -dn, fail)
            return try Time.checkedDuration(rs, rn, fail)
        default: throw fail("no such overload: _-_(\(a.typeName), \(b.typeName))")
        }
    }

    /// -1, 0, 1; nil when a NaN is involved; an error for kinds that do not order against each other.
    static func compare(_ a: Value, _ b: Value, _ fail: (String) -> CELError) throws -> Int? {
        switch (a, b) {
        case (.string(let x), .string(let y)):
            let ax = Array(x.unicodeScalars).map(\.value)
            let ay = Array(y.unicodeScalars).map(\.value)
            return ax.lexicographicallyPrecedes(ay) ? -1 : (ax == ay ? 0 : 1)
        case (.bytes(let x), .bytes(let y)): return x.lexicographicallyPrecedes(y) ? -1 : (x == y ? 0 : 1)
        case (.bool(let x), .bool(let y)): return x == y ? 0 : (x ? 1 : -1)
        case (.timestamp(let s, let n), .timestamp(let ts, let tn)), (.duration(let s, let n), .duration(let ts, let tn)):
            return (s, n) < (ts, tn) ? -1 : ((s, n) == (ts, tn) ? 0 : 1)
        default:
            switch (a, b) {
            case (.int, .int), (.int, .uint), (.int, .double), (.uint, .int), (.uint, .uint), (.uint, .double), (.double, .int), (.double, .uint),
                (.double, .double):
                return Value.compareNumbers(a, b)
            default: throw fail("no such overload: comparison of \(a.typeName) and \(b.typeName)")
            }
        }
    }

    static func index(_ container: Value, _ key: Value, _ fail: (String) -> CELError) throws -> Value {
        switch container {
        case .list(let l):
            var i: Int64
            switch key {
            case .int(let x): i = x
            case .uint(let x):
                guard x <= UInt64(Int64.max) else { throw fail("index out of range: \(x)") }
                i = Int64(x)
            case .double(let d):
                guard d.rounded(.towardZero) == d, abs(d) < 9.2e18 else { throw fail("unsupported index value \(d)") }
                i = Int64(d)
            default: throw fail("no such overload: list index of type \(key.typeName)")
            }
            guard i >= 0, i < Int64(l.count) else { throw fail("index out of range: \(i)") }
            return l[Int(i)]
        case .map(let m):
            switch key {
            case .bool, .int, .uint, .string, .double: break
            default: throw fail("no such overload: map key of type \(key.typeName)")
            }
            guard let found = m.first(where: { $0.key.celEquals(key) }) else { throw fail("no such key: \(key)") }
            return found.value
        default: throw fail("no such overload: index of \(container.typeName)")
        }
    }
}

extension String {
    /// Whether `needle` occurs in the string, comparing UTF-8 bytes (code points, no normalization) without
    /// allocating: native strings are contiguous UTF-8.
    func utf8Contains(_ needle: String) -> Bool {
        if needle.isEmpty { return true }
        var haystack = self
        var needle = needle
        return haystack.withUTF8 { h in
            needle.withUTF8 { n in
                guard n.count <= h.count else { return false }
                let first = n[0]
                var i = 0
                let last = h.count - n.count
                while i <= last {
                    if h[i] == first {
                        var k = 1
                        while k < n.count, h[i + k] == n[k] { k += 1 }
                        if k == n.count { return true }
                    }
                    i += 1
                }
                return false
            }
        }
    }
}
