import Documents
import Foundation

// Cron schedules for triggers: the five-field cron language (and its macros), evaluated in an IANA time zone with
// a stated rule for the hours daylight saving time removes and repeats, and the catch-up rule a scheduler applies
// after it was down. The reference for users is docs/schedules.md.

/// A schedule that does not parse, names an unknown time zone, or can never fire.
public struct ScheduleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The error's code: extensible (a new code is a new static member); errors compare equal when their codes do.
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// An empty expression, or one longer than 256 characters.
        public static let length = Code(rawValue: "length")
        /// Not cron: the wrong number of fields, a stray character, an empty list item, a malformed range or step.
        public static let syntax = Code(rawValue: "syntax")
        /// A value outside its field's range, a backwards range, or a step that is 0 or larger than the field.
        public static let range = Code(rawValue: "range")
        /// Cron Warden does not run: `@reboot`, an unknown macro, or seconds (a six-field expression).
        public static let unsupported = Code(rawValue: "unsupported")
        /// A calendar expression that names no date that exists (`0 0 30 2 *`).
        public static let neverFires = Code(rawValue: "never-fires")
        /// A time zone that is not an IANA zone name the system knows.
        public static let timeZone = Code(rawValue: "time-zone")
    }

    public var code: Code
    /// The 1-based character position in the expression the error is about; nil when it is about the whole.
    public var position: Int?
    /// What is wrong, naming the field and the offending text:
    /// `field 2 (hour) "25" at character 3: value out of range 0–23`.
    public var message: String
    public var description: String { message }

    public init(_ code: Code, _ message: String, position: Int? = nil) {
        self.code = code
        self.message = message
        self.position = position
    }

    public static func == (a: ScheduleError, b: ScheduleError) -> Bool { a.code == b.code }
}

/// A cron expression, parsed: five fields or a macro, independent of any time zone.
///
/// Fields are `minute hour day-of-month month day-of-week` (0–59, 0–23, 1–31, 1–12 or `JAN`–`DEC`, 0–7 or
/// `SUN`–`SAT` with both 0 and 7 meaning Sunday; names in any case). Each field is `*` or a comma-separated list of
/// values, ranges `a-b`, and steps `*/n` or `a-b/n`. A step on a single value (`5/15`) is refused: cron
/// implementations disagree on what it means.
///
/// Day-of-month and day-of-week combine as in Vixie cron (and cronie, and every Linux distribution's cron): when
/// both fields are restricted, a day fires when *either* matches (`0 0 13 * 5` fires on the 13th and on every
/// Friday); when either field starts with `*` — including a step such as `*/2` — a day must match both.
///
/// Macros: `@yearly` and `@annually` (`0 0 1 1 *`), `@monthly` (`0 0 1 * *`), `@weekly` (`0 0 * * 0`), `@daily` and
/// `@midnight` (`0 0 * * *`), `@hourly` (`0 * * * *`), and `@every <duration>` (`@every 15m`, `@every 1h30m`: whole
/// hours, minutes and seconds, at least 1 s, at most 8784 h). `@every` intervals count from the Unix epoch, not from
/// when a server started, so every server computes the same fire times and a restart does not shift them; they do not
/// depend on the time zone. `@reboot` is refused: Warden schedules fire at times, not at process start.
///
/// Parsing refuses a calendar expression that names no date that exists (`0 0 30 2 *`, `0 0 31 4,6,9,11 *`), so a
/// schedule that parses always has a next fire in the supported years 1–9999.
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    /// The expression as written, without surrounding white space.
    public let text: String
    let kind: Kind

    enum Kind: Sendable, Hashable {
        case calendar(CronFields)
        /// An interval in seconds, counted from the Unix epoch.
        case every(Int64)
    }

    public var description: String { text }

    /// The interval of an `@every` schedule; nil for calendar expressions.
    public var interval: Duration? {
        if case .every(let seconds) = kind { return .seconds(seconds) }
        return nil
    }

    /// Parses `text`; see the type's documentation for the language.
    public static func parse(_ text: String) throws(ScheduleError) -> CronSchedule {
        if text.utf8.count > maximumLength, text.prefix(maximumLength + 1).count > maximumLength {
            throw ScheduleError(.length, "cron expression is longer than \(maximumLength) characters")
        }
        let characters = Array(text)
        let tokens = CronParser.tokens(characters)
        guard let first = tokens.first else { throw ScheduleError(.length, "cron expression is empty") }
        let trimmed = String(characters[first.lowerBound..<tokens[tokens.count - 1].upperBound])
        if characters[first.lowerBound] == "@" {
            return CronSchedule(text: trimmed, kind: try CronParser.macro(characters, tokens))
        }
        switch tokens.count {
        case 5: break
        case 6:
            throw ScheduleError(
                .unsupported,
                "cron expression \"\(trimmed)\" has 6 fields: seconds are not supported; write minute hour day-of-month month day-of-week",
                position: first.lowerBound + 1)
        default:
            throw ScheduleError(
                .syntax,
                "cron expression \"\(trimmed)\" has \(tokens.count) field\(tokens.count == 1 ? "" : "s"); expected 5: minute hour day-of-month month day-of-week",
                position: first.lowerBound + 1)
        }
        let fields = try CronParser.fields(characters, tokens)
        return CronSchedule(text: trimmed, kind: .calendar(fields))
    }

    static let maximumLength = 256
}

/// A cron expression in an IANA time zone: the times a trigger fires.
///
/// Calendar expressions are matched against the local wall-clock time of `timeZone`. Daylight saving time makes some
/// local times not exist (spring forward) and others occur twice (fall back); the schedule resolves them like cronie
/// and ISC cron do:
///
/// - **Fixed-hour expressions** — the hour field does not start with `*`, as in `30 2 * * *`, `0 1-3 * * *`,
///   `*/15 2 * * *`, `@daily` — name wall-clock times. A time that occurs twice fires once, at its first occurrence.
///   A time that does not exist fires once at the first instant after the gap (03:00 in Europe/Berlin on 2026-03-29
///   for `30 2 * * *`) with ``SkippedTimes/fireAfterGap``, or not at all that day with ``SkippedTimes/skip``.
/// - **Wildcard-hour expressions** — the hour field starts with `*`, as in `*/15 * * * *`, `0 * * * *`, `@hourly` —
///   name a rhythm. They fire at every real instant whose local time matches, in whichever offset is in effect: both
///   repeated hours run, and the hour that does not exist is not made up (the clock skipped it, no real time was
///   missed). So `*/15 * * * *` fires every 15 real minutes straight through both transitions. ``skippedTimes`` does
///   not apply to them.
///
/// `@every` schedules ignore the time zone: they fire every interval counted from the Unix epoch.
public struct Schedule: Sendable, Hashable {
    /// What a fixed-hour expression does when the local time it names does not exist because the clocks sprang
    /// forward.
    public enum SkippedTimes: Sendable, Hashable {
        /// Fire once at the first instant after the gap (cronie's and ISC cron's behaviour): a daily job still runs
        /// that day.
        case fireAfterGap
        /// Do not fire for a time that does not exist: the job skips that day.
        case skip
    }

    public let cron: CronSchedule
    public let timeZone: TimeZone
    public let skippedTimes: SkippedTimes

    /// A schedule in the zone named `timeZone` (an IANA name such as `Europe/Berlin`, or `UTC`); throws
    /// ``ScheduleError/Code/timeZone`` for a name the system's zone database does not know.
    public init(cron: CronSchedule, timeZone: String, skippedTimes: SkippedTimes = .fireAfterGap) throws(ScheduleError) {
        guard Schedule.isZoneName(timeZone), let zone = TimeZone(identifier: timeZone) else {
            throw ScheduleError(.timeZone, "unknown time zone \"\(timeZone)\": expected an IANA name such as Europe/Berlin or UTC")
        }
        self.cron = cron
        self.timeZone = zone
        self.skippedTimes = skippedTimes
    }

    /// The first fire strictly after `date`, or nil when there is none before the year 10000.
    public func next(after date: Date) -> Date? {
        let t = date.timeIntervalSince1970
        guard t.isFinite, t < Double(Self.latestSecond) else { return nil }
        let after = Int64(max(t, Double(Self.earliestSecond - 1)).rounded(.down))
        let fire: Int64?
        switch cron.kind {
        case .every(let interval):
            fire = (floorDivide(after, interval) + 1) * interval
        case .calendar(let fields):
            fire = nextCalendarFire(fields, from: after + 1)
        }
        guard let fire, fire <= Self.latestSecond else { return nil }
        return Date(timeIntervalSince1970: Double(fire))
    }

    /// The fires in `after` (exclusive) through `through` (inclusive), in order, at most `limit` of them: what a
    /// scheduler lists for a window it is catching up on.
    public func fires(after: Date, through: Date, limit: Int) -> [Date] {
        var result: [Date] = []
        var cursor = after
        while result.count < limit, let fire = next(after: cursor), fire <= through {
            result.append(fire)
            cursor = fire
        }
        return result
    }

    /// The planned time a scheduler should fire for now, or nil: the catch-up rule of Kubernetes CronJobs and Argo
    /// CronWorkflows.
    ///
    /// The result is the most recent planned time after `lastFired` (exclusive) and at or before `now` — on time or
    /// missed while the scheduler was down. However many fires were missed, at most one fires: the most recent. With
    /// a `startingDeadline`, it fires only when `now - planned <= startingDeadline`, otherwise nothing fires until the
    /// next planned time; with none, the most recent missed time always fires once.
    ///
    /// `lastFired` is the planned time of the previous fire (the one this function returned), not when it ran. For a
    /// trigger that has never fired, pass the time it was created or enabled so earlier times do not count as missed;
    /// nil puts no lower bound on the planned time.
    public func plannedFires(lastFired: Date?, now: Date, startingDeadline: Duration?) -> Date? {
        if let lastFired, lastFired >= now { return nil }
        let deadline = startingDeadline.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        if let deadline, deadline < 0 { return nil }
        // Search back from now in windows that double: each window's fires are few, because the half before it had
        // none, so a trigger with a fire every minute that was down for a year costs a handful of steps.
        let horizon = 401 * 366 * 86_400.0
        var width = 60.0
        while true {
            // Fires strictly after `from`.
            var from = now.addingTimeInterval(-width)
            var atLowerBound = width >= horizon
            if let deadline, width >= deadline {
                from = Date(timeIntervalSince1970: (now.timeIntervalSince1970 - deadline).nextDown)
                atLowerBound = true
            }
            if let lastFired, lastFired >= from {
                from = lastFired
                atLowerBound = true
            }
            if var planned = next(after: from), planned <= now {
                while let later = next(after: planned), later <= now { planned = later }
                return planned
            }
            if atLowerBound { return nil }
            width *= 2
        }
    }

    /// The key that makes a fire happen exactly once: the trigger's name and the planned time in RFC 3339 UTC with
    /// milliseconds (`nightly@2026-03-29T01:00:00.000Z`, the form Warden writes every time in). Schedulers on several
    /// servers that plan the same fire compute the same key, so the store can refuse the second.
    public static func fireKey(trigger: String, planned: Date) -> String {
        "\(trigger)@\(rfc3339(planned))"
    }

    // The years 1–9999, in seconds since the Unix epoch.
    static let earliestSecond: Int64 = -62_135_596_800
    static let latestSecond: Int64 = 253_402_300_799
}

// MARK: - Evaluation

extension Schedule {
    /// The first fire at or after `from` (seconds since the epoch) of a calendar expression.
    ///
    /// Time is cut into segments of constant UTC offset at the zone's transitions; within a segment, a fire is an
    /// instant whose wall time (instant + offset) matches the fields. At a transition where the offset grows (spring
    /// forward), a fixed-hour expression with a match among the missing wall times fires at the transition; after one
    /// where it shrinks (fall back), a fixed-hour expression skips the wall times it already had before it.
    func nextCalendarFire(_ fields: CronFields, from: Int64) -> Int64? {
        let fixedHour = !fields.hourStar
        // Start two days early, so a transition just before `from` (whose repeated hour `from` may be in) is seen.
        var start = from - 2 * 86_400
        var offset = offset(at: start)
        var previousOffset: Int64?
        let horizon = from + 401 * 366 * 86_400
        while start <= horizon {
            let end = transition(after: start)
            if let previousOffset, fixedHour {
                if previousOffset < offset, skippedTimes == .fireAfterGap, start >= from,
                    fields.firstMatch(fromWall: start + previousOffset, belowWall: start + offset) != nil
                {
                    return start
                }
            }
            var lower = max(from, start)
            if let previousOffset, fixedHour, previousOffset > offset {
                lower = max(lower, start + (previousOffset - offset))
            }
            let below = end.map { $0 + offset } ?? (horizon + offset)
            if lower + offset < below, let wall = fields.firstMatch(fromWall: lower + offset, belowWall: below) {
                return wall - offset
            }
            guard let end else { return nil }
            previousOffset = offset
            start = end
            offset = self.offset(at: end)
        }
        return nil
    }

    func offset(at second: Int64) -> Int64 {
        Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(second))))
    }

    /// The zone's next offset transition strictly after `second`, or nil when it has no more.
    func transition(after second: Int64) -> Int64? {
        guard let date = timeZone.nextDaylightSavingTimeTransition(after: Date(timeIntervalSince1970: Double(second))) else {
            return nil
        }
        let t = Int64(date.timeIntervalSince1970.rounded())
        return t > second ? t : nil
    }

    static func isZoneName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 64 else { return false }
        for part in name.split(separator: "/", omittingEmptySubsequences: false) {
            guard let first = part.first, first.isLetter else { return false }
            guard part.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "+") }) else {
                return false
            }
        }
        return true
    }
}

/// The parsed fields of a calendar expression: bit `n` set when value `n` matches.
struct CronFields: Sendable, Hashable {
    var minutes: UInt64 = 0
    var hours: UInt64 = 0
    /// Bits 1–31.
    var days: UInt64 = 0
    /// Bits 1–12.
    var months: UInt64 = 0
    /// Bits 0–6, 0 = Sunday.
    var weekdays: UInt64 = 0
    var hourStar = false
    var dayStar = false
    var weekdayStar = false

    func dayMatches(day: Int, weekday: Int) -> Bool {
        let d = days & (1 << UInt64(day)) != 0
        let w = weekdays & (1 << UInt64(weekday)) != 0
        return dayStar || weekdayStar ? d && w : d || w
    }

    /// The first whole-minute wall time (seconds since the epoch, as if the wall clock were UTC) at or after
    /// `fromWall` and before `belowWall` that matches, or nil. Skips non-matching months and days whole.
    func firstMatch(fromWall: Int64, belowWall: Int64) -> Int64? {
        let start = ceilDivide(fromWall, 60) * 60
        guard start < belowWall else { return nil }
        var dayNumber = floorDivide(start, 86_400)
        let lastDay = floorDivide(belowWall - 1, 86_400)
        let secondOfDay = start - dayNumber * 86_400
        var hour = Int(secondOfDay / 3600)
        var minute = Int(secondOfDay % 3600 / 60)
        var (year, month, day) = civilDate(days: dayNumber)
        while dayNumber <= lastDay {
            if months & (1 << UInt64(month)) == 0 || day > daysInMonth(year: year, month: month) {
                // On to the first of the next month.
                dayNumber += Int64(daysInMonth(year: year, month: month) - day + 1)
                (month, day) = month == 12 ? (1, 1) : (month + 1, 1)
                if month == 1 { year += 1 }
                (hour, minute) = (0, 0)
                continue
            }
            if dayMatches(day: day, weekday: Int(floorModulo(dayNumber + 4, 7))), var h = nextBit(hours, from: hour) {
                var m = nextBit(minutes, from: h == hour ? minute : 0)
                if m == nil, let later = nextBit(hours, from: h + 1) {
                    h = later
                    m = nextBit(minutes, from: 0)
                }
                if let m {
                    let wall = dayNumber * 86_400 + Int64(h * 3600 + m * 60)
                    return wall < belowWall ? wall : nil
                }
            }
            dayNumber += 1
            day += 1
            (hour, minute) = (0, 0)
        }
        return nil
    }
}

// MARK: - Parsing

enum CronParser {
    struct Field {
        let number: Int
        let name: String
        let low: Int
        let high: Int
        /// For `*`: day-of-week's `*` is 0–6, not 0–7.
        let starHigh: Int
        let names: [String]
    }

    static let minute = Field(number: 1, name: "minute", low: 0, high: 59, starHigh: 59, names: [])
    static let hour = Field(number: 2, name: "hour", low: 0, high: 23, starHigh: 23, names: [])
    static let dayOfMonth = Field(number: 3, name: "day-of-month", low: 1, high: 31, starHigh: 31, names: [])
    static let month = Field(
        number: 4, name: "month", low: 1, high: 12, starHigh: 12,
        names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
    static let dayOfWeek = Field(
        number: 5, name: "day-of-week", low: 0, high: 7, starHigh: 6, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])

    /// The ranges of white-space-separated tokens.
    static func tokens(_ characters: [Character]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var i = 0
        while i < characters.count {
            if characters[i].isWhitespace {
                i += 1
                continue
            }
            let start = i
            while i < characters.count, !characters[i].isWhitespace { i += 1 }
            result.append(start..<i)
        }
        return result
    }

    static func macro(_ characters: [Character], _ tokens: [Range<Int>]) throws(ScheduleError) -> CronSchedule.Kind {
        let name = String(characters[tokens[0]]).lowercased()
        let expansion: String
        switch name {
        case "@yearly", "@annually": expansion = "0 0 1 1 *"
        case "@monthly": expansion = "0 0 1 * *"
        case "@weekly": expansion = "0 0 * * 0"
        case "@daily", "@midnight": expansion = "0 0 * * *"
        case "@hourly": expansion = "0 * * * *"
        case "@every":
            guard tokens.count == 2 else {
                throw ScheduleError(
                    .syntax,
                    tokens.count == 1 ? "@every needs an interval, such as @every 15m" : "@every takes one interval, such as 1h30m, without spaces",
                    position: tokens.count == 1 ? tokens[0].lowerBound + 1 : tokens[2].lowerBound + 1)
            }
            return .every(try interval(characters, tokens[1]))
        case "@reboot":
            throw ScheduleError(
                .unsupported, "@reboot is not supported: Warden schedules fire at times, not when a server starts", position: tokens[0].lowerBound + 1
            )
        default:
            throw ScheduleError(
                .unsupported,
                "unknown macro \"\(String(characters[tokens[0]]))\": expected @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every",
                position: tokens[0].lowerBound + 1)
        }
        guard tokens.count == 1 else {
            throw ScheduleError(.syntax, "\(name) takes no arguments", position: tokens[1].lowerBound + 1)
        }
        let expanded = Array(expansion)
        return .calendar(try! fields(expanded, self.tokens(expanded)))
    }

    /// `@every`'s interval in seconds: whole numbers with units h, m and s (`15m`, `1h30m`, `90s`).
    static func interval(_ characters: [Character], _ token: Range<Int>) throws(ScheduleError) -> Int64 {
        let text = String(characters[token])
        func failure(_ reason: String) -> ScheduleError {
            ScheduleError(.syntax, "@every \"\(text)\" at character \(token.lowerBound + 1): \(reason)", position: token.lowerBound + 1)
        }
        let maximum: Int64 = 8784 * 3600
        var total: Int64 = 0
        var i = token.lowerBound
        while i < token.upperBound {
            var number: Int64 = 0
            let digitsStart = i
            while i < token.upperBound, let digit = characters[i].wholeNumberValue, characters[i].isASCII {
                number = min(number * 10 + Int64(digit), maximum + 1)
                i += 1
            }
            guard i > digitsStart else { throw failure("expected a number, such as 15m or 1h30m") }
            guard i < token.upperBound else { throw failure("missing unit after \(number): use h, m or s") }
            var unitEnd = i
            while unitEnd < token.upperBound, !characters[unitEnd].isNumber { unitEnd += 1 }
            let unit: Int64
            switch String(characters[i..<unitEnd]) {
            case "h": unit = 3600
            case "m": unit = 60
            case "s": unit = 1
            case let other:
                throw failure("unit \"\(other)\" is not supported: use whole hours (h), minutes (m) and seconds (s)")
            }
            i = unitEnd
            total = min(total + number * unit, maximum + 1)
        }
        guard total >= 1 else { throw failure("the interval must be at least 1s") }
        guard total <= maximum else { throw failure("the interval must be at most 8784h (a year); use a calendar expression") }
        return total
    }

    static func fields(_ characters: [Character], _ tokens: [Range<Int>]) throws(ScheduleError) -> CronFields {
        var f = CronFields()
        (f.minutes, _) = try field(characters, tokens[0], minute)
        (f.hours, f.hourStar) = try field(characters, tokens[1], hour)
        (f.days, f.dayStar) = try field(characters, tokens[2], dayOfMonth)
        (f.months, _) = try field(characters, tokens[3], month)
        (f.weekdays, f.weekdayStar) = try field(characters, tokens[4], dayOfWeek)
        if f.weekdays & (1 << 7) != 0 { f.weekdays = f.weekdays & ~(1 << 7) | 1 }
        // The day pattern repeats every 400 years (146,097 days, a whole number of weeks): a day that matches exists
        // in any 400-year window or never.
        let start = Int64(daysFromCivil(year: 2000, month: 1, day: 1)) * 86_400
        if f.firstMatch(fromWall: start, belowWall: start + 146_097 * 86_400) == nil {
            throw ScheduleError(
                .neverFires,
                "cron expression \"\(String(characters[tokens[0].lowerBound..<tokens[4].upperBound]))\" never fires: no month in field 4 (month) "
                    + "\"\(String(characters[tokens[3]]))\" has a day in field 3 (day-of-month) \"\(String(characters[tokens[2]]))\"",
                position: tokens[2].lowerBound + 1)
        }
        return f
    }

    /// One field's bits and whether it starts with `*` (which decides how day-of-month and day-of-week combine).
    static func field(_ characters: [Character], _ token: Range<Int>, _ spec: Field) throws(ScheduleError) -> (UInt64, Bool) {
        func failure(_ code: ScheduleError.Code, _ range: Range<Int>, _ reason: String) -> ScheduleError {
            ScheduleError(
                code, "field \(spec.number) (\(spec.name)) \"\(String(characters[range]))\" at character \(range.lowerBound + 1): \(reason)",
                position: range.lowerBound + 1)
        }
        func value(_ range: Range<Int>, in item: Range<Int>) throws(ScheduleError) -> Int {
            guard !range.isEmpty else { throw failure(.syntax, item, "expected a value") }
            let text = characters[range]
            if text.allSatisfy({ $0.isASCII && $0.isNumber }) {
                let number = text.count > 4 ? Int.max : Int(String(text))!
                guard number >= spec.low, number <= spec.high else {
                    throw failure(.range, range, "value out of range \(spec.low)–\(spec.high)")
                }
                return number
            }
            if !spec.names.isEmpty, text.allSatisfy({ $0.isASCII && $0.isLetter }) {
                guard let index = spec.names.firstIndex(of: String(text).uppercased()) else {
                    throw failure(.syntax, range, "unknown name; expected \(spec.names.first!)–\(spec.names.last!) or \(spec.low)–\(spec.high)")
                }
                return index + spec.low
            }
            if let bad = text.firstIndex(where: { !($0.isASCII && ($0.isNumber || $0.isLetter)) }) {
                throw failure(.syntax, bad..<bad + 1, "unexpected character")
            }
            throw failure(.syntax, range, spec.names.isEmpty ? "expected a number \(spec.low)–\(spec.high)" : "expected a number or a name")
        }

        var bits: UInt64 = 0
        var itemStart = token.lowerBound
        while itemStart <= token.upperBound {
            var itemEnd = itemStart
            while itemEnd < token.upperBound, characters[itemEnd] != "," { itemEnd += 1 }
            let item = itemStart..<itemEnd
            if item.isEmpty {
                let at = itemStart < token.upperBound ? itemStart..<itemStart + 1 : itemStart - 1..<itemStart
                throw failure(.syntax, at, "empty list item")
            }
            let slash = characters[item].firstIndex(of: "/")
            let base = item.lowerBound..<(slash ?? item.upperBound)
            var step = 1
            if let slash {
                let stepRange = slash + 1..<item.upperBound
                if let second = characters[stepRange].firstIndex(of: "/") { throw failure(.syntax, second..<second + 1, "more than one step") }
                guard !stepRange.isEmpty, characters[stepRange].allSatisfy({ $0.isASCII && $0.isNumber }) else {
                    throw failure(.syntax, stepRange.isEmpty ? item : stepRange, "a step must be a number, as in */15")
                }
                step = stepRange.count > 4 ? Int.max : Int(String(characters[stepRange]))!
                guard step >= 1, step <= spec.high else { throw failure(.range, stepRange, "step out of range 1–\(spec.high)") }
            }
            let low: Int
            let high: Int
            if characters[base] == ["*"] {
                (low, high) = (spec.low, spec.starHigh)
            } else if let dash = characters[base].firstIndex(of: "-") {
                low = try value(base.lowerBound..<dash, in: item)
                high = try value(dash + 1..<base.upperBound, in: item)
                guard low <= high else {
                    throw failure(.range, base, "range runs backwards; ranges do not wrap around, write two ranges (22-23,0-2)")
                }
            } else {
                low = try value(base, in: item)
                high = low
                if slash != nil {
                    throw failure(.syntax, item, "a step needs a range: write */n or a-b/n (implementations disagree on what a/n means)")
                }
            }
            for v in stride(from: low, through: high, by: step) { bits |= 1 << UInt64(v) }
            itemStart = itemEnd + 1
        }
        return (bits, characters[token.lowerBound] == "*")
    }
}

// MARK: - Calendar arithmetic

private func daysFromCivil(year: Int, month: Int, day: Int) -> Int { Int(CivilCalendar.days(year: year, month: month, day: day)) }

private func civilDate(days: Int64) -> (year: Int, month: Int, day: Int) {
    let d = CivilCalendar.date(days: days)
    return (Int(d.year), Int(d.month), Int(d.day))
}

private func daysInMonth(year: Int, month: Int) -> Int {
    switch month {
    case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
}

private func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return a % b != 0 && (a < 0) != (b < 0) ? q - 1 : q
}

private func ceilDivide(_ a: Int64, _ b: Int64) -> Int64 { -floorDivide(-a, b) }

private func floorModulo(_ a: Int64, _ b: Int64) -> Int64 { a - floorDivide(a, b) * b }

/// The lowest set bit at or above `from`.
private func nextBit(_ mask: UInt64, from: Int) -> Int? {
    guard from < 64 else { return nil }
    let rest = mask >> UInt64(from)
    return rest == 0 ? nil : from + rest.trailingZeroBitCount
}

/// `date` in UTC rounded to the millisecond (`2026-03-29T01:00:00.000Z`), Warden's one form for a point in time.
private func rfc3339(_ date: Date) -> String {
    let milliseconds = Int64((date.timeIntervalSince1970 * 1000 + 0.5).rounded(.down))
    let seconds = floorDivide(milliseconds, 1000)
    let days = floorDivide(seconds, 86_400)
    let secondOfDay = seconds - days * 86_400
    let (year, month, day) = civilDate(days: days)
    func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
    return "\(pad(Int64(year), 4))-\(pad(Int64(month), 2))-\(pad(Int64(day), 2))T\(pad(secondOfDay / 3600, 2)):"
        + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(milliseconds - seconds * 1000, 3))Z"
}
