/// A CEL value.
public indirect enum Value: Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case list([Value])
    /// Entries in insertion order; keys are bool, int, uint or string.
    case map([(key: Value, value: Value)])
    /// Seconds and nanoseconds since the Unix epoch (UTC).
    case timestamp(seconds: Int64, nanos: Int32)
    case duration(seconds: Int64, nanos: Int32)
    case type(String)

    public var typeName: String {
        switch self {
        case .null: "null_type"
        case .bool: "bool"
        case .int: "int"
        case .uint: "uint"
        case .double: "double"
        case .string: "string"
        case .bytes: "bytes"
        case .list: "list"
        case .map: "map"
        case .timestamp: "google.protobuf.Timestamp"
        case .duration: "google.protobuf.Duration"
        case .type: "type"
        }
    }

    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .int(let i): return "\(i)"
        case .uint(let u): return "\(u)u"
        case .double(let d): return "\(d)"
        case .string(let s): return "\"\(s)\""
        case .bytes(let b): return "b\(b)"
        case .list(let l): return "[" + l.map(\.description).joined(separator: ", ") + "]"
        case .map(let m): return "{" + m.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case .timestamp(let s, let n): return "timestamp(\(s)s \(n)ns)"
        case .duration(let s, let n): return "duration(\(s)s \(n)ns)"
        case .type(let t): return t
        }
    }
}

extension Value {
    /// A map's value for a string key (nil for other values and absent keys): how JSON documents read as values
    /// are walked.
    public subscript(key: String) -> Value? {
        guard case .map(let entries) = self else { return nil }
        for (k, v) in entries { if case .string(let s) = k, s == key { return v } }
        return nil
    }
}

extension Value {
    /// CEL equality: numbers compare by value across int, uint and double; other kinds must match; lists and maps
    /// compare element-wise. Values of different kinds are unequal (not an error).
    public func celEquals(_ other: Value) -> Bool {
        switch (self, other) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        // Code points compare exactly: no Unicode normalization ("é" and "e\u{301}" differ).
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.bytes(let a), .bytes(let b)): return a == b
        case (.type(let a), .type(let b)): return a == b
        case (.timestamp(let a, let an), .timestamp(let b, let bn)): return a == b && an == bn
        case (.duration(let a, let an), .duration(let b, let bn)): return a == b && an == bn
        case (.list(let a), .list(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.celEquals($1) }
        case (.map(let a), .map(let b)):
            guard a.count == b.count else { return false }
            return a.allSatisfy { entry in b.first { $0.key.celEquals(entry.key) }.map { $0.value.celEquals(entry.value) } ?? false }
        default:
            if let c = Value.compareNumbers(self, other) { return c == 0 }
            return false
        }
    }

    /// Orders two numbers of any numeric kinds (nil when either is not a number or a NaN is involved).
    static func compareNumbers(_ a: Value, _ b: Value) -> Int? {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x < y ? -1 : (x > y ? 1 : 0)
        case (.uint(let x), .uint(let y)): return x < y ? -1 : (x > y ? 1 : 0)
        case (.double(let x), .double(let y)):
            if x.isNaN || y.isNaN { return nil }
            return x < y ? -1 : (x > y ? 1 : 0)
        case (.int(let x), .uint(let y)): return x < 0 ? -1 : compareU(UInt64(x), y)
        case (.uint(let x), .int(let y)): return y < 0 ? 1 : compareU(x, UInt64(y))
        case (.int(let x), .double(let y)): return compareID(x, y)
        case (.double(let x), .int(let y)): return compareID(y, x).map { -$0 }
        case (.uint(let x), .double(let y)): return compareUD(x, y)
        case (.double(let x), .uint(let y)): return compareUD(y, x).map { -$0 }
        default: return nil
        }
    }

    static func compareU(_ a: UInt64, _ b: UInt64) -> Int { a < b ? -1 : (a > b ? 1 : 0) }

    /// Integers compare with doubles as doubles (CEL converts, losing precision above 2^53 as cel-go does).
    static func compareID(_ i: Int64, _ d: Double) -> Int? {
        if d.isNaN { return nil }
        let x = Double(i)
        return x < d ? -1 : (x > d ? 1 : 0)
    }

    static func compareUD(_ u: UInt64, _ d: Double) -> Int? {
        if d.isNaN { return nil }
        let x = Double(u)
        return x < d ? -1 : (x > d ? 1 : 0)
    }
}

extension Value {
    /// The size an evaluation counts for a value it built: one per value, nested lists and maps counted through
    /// (so a list that holds one list ten times counts that list ten times, as writing it out would), plus the bytes
    /// of strings and bytes. Stops counting once past `limit` (the cost left), returning a number above it.
    func size(upTo limit: Int) -> Int {
        var total = 0
        var pending: [Value] = [self]
        while let v = pending.popLast() {
            total += 1
            switch v {
            case .string(let s): total += s.utf8.count
            case .bytes(let b): total += b.count
            case .list(let l):
                if total + pending.count + l.count > limit { return limit + 1 }
                pending += l
            case .map(let m):
                if total + pending.count + 2 * m.count > limit { return limit + 1 }
                for entry in m {
                    pending.append(entry.key)
                    pending.append(entry.value)
                }
            default: break
            }
            if total > limit { return total }
        }
        return total
    }
}
