import CEL
import Foundation

/// RFC 3339 timestamps (`2026-12-01T12:00:00.123Z`, UTC, milliseconds): the one form every JSON view and document
/// Warden writes uses for a point in time.
public enum RFC3339 {
    public static func string(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

    /// The point in time `text` names (any RFC 3339 offset, up to nanoseconds), or nil when it is not RFC 3339.
    public static func date(_ text: String) -> Date? {
        guard case .timestamp(let s, let n)? = try? Value.timestamp(rfc3339: text) else { return nil }
        return Date(timeIntervalSince1970: Double(s) + Double(n) / 1e9)
    }

    /// A JSON encoder that writes dates as RFC 3339 strings.
    public static func encoder(pretty: Bool = true) -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(string(date))
        }
        return e
    }
}
