import CEL
import Foundation

/// IANA time zones (`America/New_York`) for CEL's timestamp accessors, from the system's zone database. Every
/// place Warden evaluates CEL — trust policies, policies, replication files, workflow conditions and `cel eval` —
/// resolves zones through this one function, so an expression means the same everywhere.
public enum TimeZones {
    /// The offset from UTC, in seconds, of zone `name` at `seconds` since the Unix epoch; nil for an unknown zone.
    public static let iana: TimeZoneResolver = { name, seconds in
        TimeZone(identifier: name).map { Int64($0.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))) }
    }
}
