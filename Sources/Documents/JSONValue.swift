import CEL

/// A CEL value as an `Encodable` JSON value, so that views holding free-form data (inputs, outputs) encode with the
/// rest of a document: maps as objects, lists as arrays, and bytes, timestamps and durations as the strings CEL's
/// JSON form gives them (base64, RFC 3339, `"1.5s"`).
public struct JSONValue: Encodable, Sendable {
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

extension String {
    fileprivate var trimmingQuotes: String {
        hasPrefix("\"") && hasSuffix("\"") && count >= 2 ? String(dropFirst().dropLast()) : self
    }
}
