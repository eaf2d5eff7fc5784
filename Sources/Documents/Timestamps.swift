import CEL
import Foundation

/// RFC 3339 timestamps (`2026-12-01T12:00:00.123Z`, UTC, milliseconds): the one form every JSON view and document
/// Warden writes uses for a point in time.
public enum RFC3339 {
    /// `date` in UTC rounded to the millisecond, as `ISO8601DateFormatter` writes it — without one: making a
    /// formatter costs about 250 µs on Linux, and a page of runs formats two dates per run.
    public static func string(_ date: Date) -> String {
        let (seconds, millisecond) = Int64((date.timeIntervalSince1970 * 1000 + 0.5).rounded(.down)).quotientAndRemainder(dividingBy: 1000)
        var (days, secondOfDay) = seconds.quotientAndRemainder(dividingBy: 86_400)
        var ms = millisecond
        if ms < 0 {
            ms += 1000
            secondOfDay -= 1
        }
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = CivilCalendar.date(days: Int64(days))
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(ms, 3))Z"
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

/// Proleptic Gregorian dates and day numbers (days since 1970-01-01), H. Hinnant's algorithms: no calendar object,
/// no locale, the same answer for every year.
public enum CivilCalendar {
    /// The date of day number `days`.
    public static func date(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// The day number of a date.
    public static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = Int64((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1)
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
