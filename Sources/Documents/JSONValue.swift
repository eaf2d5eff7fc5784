import CEL

/// A CEL value as an `Encodable` JSON value, so that views holding free-form data (inputs, outputs) encode with the
/// rest of a document: maps as objects, lists as arrays, and bytes, timestamps and durations as the strings CEL's
/// JSON form gives them (base64, RFC 3339, `"1.5s"`).
public struct JSONValue: Codable, Sendable {
    public var value: Value
    public init(_ value: Value) { self.value = value }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        switch value {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .int(let i):
            var c = encoder.singleValueContainer()
            try c.encode(i)
        case .uint(let u):
            var c = encoder.singleValueContainer()
            try c.encode(u)
        case .double(let d) where d.isFinite:
            var c = encoder.singleValueContainer()
            try c.encode(d)
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .list(let items):
            var c = encoder.unkeyedContainer()
            for v in items { try c.encode(JSONValue(v)) }
        case .map(let entries):
            var c = encoder.container(keyedBy: Key.self)
            for (k, v) in entries {
                let name: String
                if case .string(let s) = k { name = s } else { name = k.jsonText().trimmingQuotes }
                try c.encode(JSONValue(v), forKey: Key(stringValue: name))
            }
        default:
            var c = encoder.singleValueContainer()
            let text = value.jsonText()
            if case .string(let s)? = try? Value.parseJSON(text) { try c.encode(s) } else { try c.encode(text) }
        }
    }
}

extension JSONValue {
    /// Any JSON value (objects keep their keys sorted: a decoder does not keep the order).
    public init(from decoder: any Decoder) throws {
        if var list = try? decoder.unkeyedContainer() {
            var items: [Value] = []
            while !list.isAtEnd { items.append(try list.decode(JSONValue.self).value) }
            self.init(.list(items))
            return
        }
        if let object = try? decoder.container(keyedBy: Key.self) {
            var entries: [(Value, Value)] = []
            for k in object.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) {
                entries.append((.string(k.stringValue), try object.decode(JSONValue.self, forKey: k).value))
            }
            self.init(.map(entries))
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self.init(.null)
        } else if let b = try? c.decode(Bool.self) {
            self.init(.bool(b))
        } else if let i = try? c.decode(Int64.self) {
            self.init(.int(i))
        } else if let d = try? c.decode(Double.self) {
            self.init(.double(d))
        } else {
            self.init(.string(try c.decode(String.self)))
        }
    }
}

extension String {
    fileprivate var trimmingQuotes: String {
        hasPrefix("\"") && hasSuffix("\"") && count >= 2 ? String(dropFirst().dropLast()) : self
    }
}
