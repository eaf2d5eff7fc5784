import Foundation
import Testing

@testable import Triggers

/// A point in time from RFC 3339 text (`2026-03-29T01:00:00Z`, `2026-03-29T03:00:00+02:00`, `…:56.7Z`).
private func at(_ text: String) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = text.contains(".") ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
    guard let date = formatter.date(from: text) else { fatalError("bad test date \(text)") }
    return date
}

private func schedule(_ expression: String, _ zone: String = "UTC", _ skipped: Schedule.SkippedTimes = .fireAfterGap) throws -> Schedule {
    try Schedule(cron: CronSchedule.parse(expression), timeZone: zone, skippedTimes: skipped)
}

/// The first `count` fires after `start`.
private func fires(_ expression: String, _ zone: String = "UTC", _ skipped: Schedule.SkippedTimes = .fireAfterGap, after start: String, count: Int)
    throws -> [Date]
{
    let s = try schedule(expression, zone, skipped)
    return s.fires(after: at(start), through: .distantFuture, limit: count)
}

private func parseError(_ expression: String) -> ScheduleError? {
    do {
        _ = try CronSchedule.parse(expression)
        return nil
    } catch {
        return error
    }
}

// MARK: - Parsing

@Suite struct CronParsingTests {
    struct Refusal: Sendable, CustomStringConvertible {
        let expression: String
        let code: ScheduleError.Code
        let message: String
        let position: Int?
        var description: String { expression }
    }

    static let refusals: [Refusal] = [
        Refusal(expression: "", code: .length, message: "cron expression is empty", position: nil),
        Refusal(expression: " \t ", code: .length, message: "cron expression is empty", position: nil),
        Refusal(
            expression: String(repeating: "1,", count: 128) + "1 * * * *", code: .length, message: "cron expression is longer than 256 characters",
            position: nil),
        Refusal(
            expression: "* 25 * * *", code: .range, message: "field 2 (hour) \"25\" at character 3: value out of range 0–23", position: 3),
        Refusal(
            expression: "60 * * * *", code: .range, message: "field 1 (minute) \"60\" at character 1: value out of range 0–59", position: 1),
        Refusal(
            expression: "0 0 0 * *", code: .range, message: "field 3 (day-of-month) \"0\" at character 5: value out of range 1–31", position: 5),
        Refusal(expression: "0 0 * 13 *", code: .range, message: "field 4 (month) \"13\" at character 7: value out of range 1–12", position: 7),
        Refusal(
            expression: "0 0 * * 8", code: .range, message: "field 5 (day-of-week) \"8\" at character 9: value out of range 0–7", position: 9),
        Refusal(
            expression: "  0 0 * * 1-9", code: .range, message: "field 5 (day-of-week) \"9\" at character 13: value out of range 0–7", position: 13),
        Refusal(
            expression: "99999999999999999999999 * * * *", code: .range,
            message: "field 1 (minute) \"99999999999999999999999\" at character 1: value out of range 0–59", position: 1),
        Refusal(
            expression: "5-3 * * * *", code: .range,
            message: "field 1 (minute) \"5-3\" at character 1: range runs backwards; ranges do not wrap around, write two ranges (22-23,0-2)",
            position: 1),
        Refusal(
            expression: "0 22-2 * * *", code: .range,
            message: "field 2 (hour) \"22-2\" at character 3: range runs backwards; ranges do not wrap around, write two ranges (22-23,0-2)",
            position: 3),
        Refusal(
            expression: "*/0 * * * *", code: .range, message: "field 1 (minute) \"0\" at character 3: step out of range 1–59", position: 3),
        Refusal(
            expression: "*/60 * * * *", code: .range, message: "field 1 (minute) \"60\" at character 3: step out of range 1–59", position: 3),
        Refusal(
            expression: "0 */24 * * *", code: .range, message: "field 2 (hour) \"24\" at character 5: step out of range 1–23", position: 5),
        Refusal(
            expression: "5/15 * * * *", code: .syntax,
            message:
                "field 1 (minute) \"5/15\" at character 1: a step needs a range: write */n or a-b/n (implementations disagree on what a/n means)",
            position: 1),
        Refusal(
            expression: "*/ * * * *", code: .syntax, message: "field 1 (minute) \"*/\" at character 1: a step must be a number, as in */15",
            position: 1),
        Refusal(
            expression: "*/x * * * *", code: .syntax, message: "field 1 (minute) \"x\" at character 3: a step must be a number, as in */15",
            position: 3),
        Refusal(expression: "1/2/3 * * * *", code: .syntax, message: "field 1 (minute) \"/\" at character 4: more than one step", position: 4),
        Refusal(expression: "1,,2 * * * *", code: .syntax, message: "field 1 (minute) \",\" at character 3: empty list item", position: 3),
        Refusal(expression: "0 1, * * *", code: .syntax, message: "field 2 (hour) \",\" at character 4: empty list item", position: 4),
        Refusal(expression: "0 ,1 * * *", code: .syntax, message: "field 2 (hour) \",\" at character 3: empty list item", position: 3),
        Refusal(expression: "1- * * * *", code: .syntax, message: "field 1 (minute) \"1-\" at character 1: expected a value", position: 1),
        Refusal(expression: "-1 * * * *", code: .syntax, message: "field 1 (minute) \"-1\" at character 1: expected a value", position: 1),
        Refusal(expression: "1-2-3 * * * *", code: .syntax, message: "field 1 (minute) \"-\" at character 4: unexpected character", position: 4),
        Refusal(expression: "*-5 * * * *", code: .syntax, message: "field 1 (minute) \"*\" at character 1: unexpected character", position: 1),
        Refusal(expression: "? * * * *", code: .syntax, message: "field 1 (minute) \"?\" at character 1: unexpected character", position: 1),
        Refusal(expression: "0 0 L * *", code: .syntax, message: "field 3 (day-of-month) \"L\" at character 5: expected a number 1–31", position: 5),
        Refusal(expression: "０ * * * *", code: .syntax, message: "field 1 (minute) \"０\" at character 1: unexpected character", position: 1),
        Refusal(expression: "MON * * * *", code: .syntax, message: "field 1 (minute) \"MON\" at character 1: expected a number 0–59", position: 1),
        Refusal(
            expression: "0 0 * FOO *", code: .syntax, message: "field 4 (month) \"FOO\" at character 7: unknown name; expected JAN–DEC or 1–12",
            position: 7),
        Refusal(
            expression: "0 0 * * MONDAY", code: .syntax,
            message: "field 5 (day-of-week) \"MONDAY\" at character 9: unknown name; expected SUN–SAT or 0–7", position: 9),
        Refusal(
            expression: "0 0 * * 1a", code: .syntax, message: "field 5 (day-of-week) \"1a\" at character 9: expected a number or a name", position: 9),
        Refusal(
            expression: "0 0 * *", code: .syntax,
            message: "cron expression \"0 0 * *\" has 4 fields; expected 5: minute hour day-of-month month day-of-week", position: 1),
        Refusal(
            expression: "5", code: .syntax, message: "cron expression \"5\" has 1 field; expected 5: minute hour day-of-month month day-of-week",
            position: 1),
        Refusal(
            expression: "0 0 0 * * *", code: .unsupported,
            message: "cron expression \"0 0 0 * * *\" has 6 fields: seconds are not supported; write minute hour day-of-month month day-of-week",
            position: 1),
        Refusal(
            expression: "0 0 1 1 * 2027 x", code: .syntax,
            message: "cron expression \"0 0 1 1 * 2027 x\" has 7 fields; expected 5: minute hour day-of-month month day-of-week", position: 1),
        Refusal(
            expression: "@reboot", code: .unsupported, message: "@reboot is not supported: Warden schedules fire at times, not when a server starts",
            position: 1),
        Refusal(
            expression: "@fortnightly", code: .unsupported,
            message: "unknown macro \"@fortnightly\": expected @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every",
            position: 1),
        Refusal(expression: "@daily 5", code: .syntax, message: "@daily takes no arguments", position: 8),
        Refusal(expression: "@every", code: .syntax, message: "@every needs an interval, such as @every 15m", position: 1),
        Refusal(expression: "@every 1h 30m", code: .syntax, message: "@every takes one interval, such as 1h30m, without spaces", position: 11),
        Refusal(expression: "@every 0s", code: .syntax, message: "@every \"0s\" at character 8: the interval must be at least 1s", position: 8),
        Refusal(expression: "@every 0h0m", code: .syntax, message: "@every \"0h0m\" at character 8: the interval must be at least 1s", position: 8),
        Refusal(
            expression: "@every 500ms", code: .syntax,
            message: "@every \"500ms\" at character 8: unit \"ms\" is not supported: use whole hours (h), minutes (m) and seconds (s)", position: 8),
        Refusal(
            expression: "@every 2d", code: .syntax,
            message: "@every \"2d\" at character 8: unit \"d\" is not supported: use whole hours (h), minutes (m) and seconds (s)", position: 8),
        Refusal(
            expression: "@every 1.5h", code: .syntax,
            message: "@every \"1.5h\" at character 8: unit \".\" is not supported: use whole hours (h), minutes (m) and seconds (s)", position: 8),
        Refusal(expression: "@every 15", code: .syntax, message: "@every \"15\" at character 8: missing unit after 15: use h, m or s", position: 8),
        Refusal(expression: "@every m", code: .syntax, message: "@every \"m\" at character 8: expected a number, such as 15m or 1h30m", position: 8),
        Refusal(
            expression: "@every 8785h", code: .syntax,
            message: "@every \"8785h\" at character 8: the interval must be at most 8784h (a year); use a calendar expression", position: 8),
        Refusal(
            expression: "@every 99999999999999999999h", code: .syntax,
            message: "@every \"99999999999999999999h\" at character 8: the interval must be at most 8784h (a year); use a calendar expression",
            position: 8),
        Refusal(
            expression: "0 0 30 2 *", code: .neverFires,
            message: "cron expression \"0 0 30 2 *\" never fires: no month in field 4 (month) \"2\" has a day in field 3 (day-of-month) \"30\"",
            position: 5),
        Refusal(
            expression: "0 0 31 4,6,9,11 *", code: .neverFires,
            message:
                "cron expression \"0 0 31 4,6,9,11 *\" never fires: no month in field 4 (month) \"4,6,9,11\" has a day in field 3 (day-of-month) \"31\"",
            position: 5),
        Refusal(
            expression: "0 0 30-31 feb *", code: .neverFires,
            message:
                "cron expression \"0 0 30-31 feb *\" never fires: no month in field 4 (month) \"feb\" has a day in field 3 (day-of-month) \"30-31\"",
            position: 5),
        // Day-of-week starting with `*` combines by AND, so it cannot rescue an impossible day of the month.
        Refusal(
            expression: "0 0 31 2 */2", code: .neverFires,
            message: "cron expression \"0 0 31 2 */2\" never fires: no month in field 4 (month) \"2\" has a day in field 3 (day-of-month) \"31\"",
            position: 5),
    ]

    @Test(arguments: refusals)
    func refuses(_ refusal: Refusal) throws {
        let error = try #require(parseError(refusal.expression))
        #expect(error.code == refusal.code)
        #expect(error.message == refusal.message)
        #expect(error.description == refusal.message)
        #expect(error.position == refusal.position)
    }

    @Test func acceptsTheLongestExpressionAndKeepsTheTextTrimmed() throws {
        let longest = String(repeating: "0,", count: 123) + "10 * * * *"
        #expect(longest.count == 256)
        let parsed = try CronSchedule.parse(longest)
        #expect(parsed.text == longest)
        #expect(try CronSchedule.parse("  */5\t*  * * *\n").description == "*/5\t*  * * *")
        #expect(try CronSchedule.parse("@Daily").text == "@Daily")
        #expect(try CronSchedule.parse("@every 1h30m").interval == .seconds(5400))
        #expect(try CronSchedule.parse("0 0 * * *").interval == nil)
    }

    @Test func tooLongIsCheckedBeforeAnythingElse() {
        // 300 characters of garbage report the length, not the first bad character.
        #expect(parseError(String(repeating: "x", count: 300))?.code == .length)
        #expect(parseError("@" + String(repeating: "e", count: 256))?.code == .length)
    }

    @Test func errorsCompareByCode() {
        #expect(ScheduleError(.range, "a") == ScheduleError(.range, "b", position: 3))
        #expect(ScheduleError(.range, "a") != ScheduleError(.syntax, "a"))
        #expect(ScheduleError.Code.neverFires.description == "never-fires")
    }
}

// MARK: - Fields

@Suite struct CronFieldTests {
    @Test func fixedTime() throws {
        #expect(
            try fires("5 4 * * *", after: "2026-01-01T00:00:00Z", count: 3) == [
                at("2026-01-01T04:05:00Z"), at("2026-01-02T04:05:00Z"), at("2026-01-03T04:05:00Z"),
            ])
    }

    @Test func stepsListsAndRanges() throws {
        #expect(
            try fires("*/15 * * * *", after: "2026-01-01T00:07:00Z", count: 4) == [
                at("2026-01-01T00:15:00Z"), at("2026-01-01T00:30:00Z"), at("2026-01-01T00:45:00Z"), at("2026-01-01T01:00:00Z"),
            ])
        #expect(
            try fires("10-50/20 9,17 * * *", after: "2026-01-01T00:00:00Z", count: 7) == [
                at("2026-01-01T09:10:00Z"), at("2026-01-01T09:30:00Z"), at("2026-01-01T09:50:00Z"),
                at("2026-01-01T17:10:00Z"), at("2026-01-01T17:30:00Z"), at("2026-01-01T17:50:00Z"),
                at("2026-01-02T09:10:00Z"),
            ])
        #expect(
            try fires("0 0 1 */4 *", after: "2026-01-01T00:00:00Z", count: 3) == [
                at("2026-05-01T00:00:00Z"), at("2026-09-01T00:00:00Z"), at("2027-01-01T00:00:00Z"),
            ])
        // Day-of-week `*/2` is Sunday, Tuesday, Thursday, Saturday (0, 2, 4, 6); 2026-01-01 is a Thursday.
        #expect(
            try fires("0 0 * * */2", after: "2026-01-01T00:00:00Z", count: 4) == [
                at("2026-01-03T00:00:00Z"), at("2026-01-04T00:00:00Z"), at("2026-01-06T00:00:00Z"), at("2026-01-08T00:00:00Z"),
            ])
        #expect(
            try fires("59 23 31 12 *", after: "2026-06-01T00:00:00Z", count: 2) == [at("2026-12-31T23:59:00Z"), at("2027-12-31T23:59:00Z")])
    }

    @Test func namesInAnyCaseMeanTheirNumbers() throws {
        let start = "2026-01-01T00:00:00Z"
        let numeric = try fires("0 9 * 1-3,12 1-5", after: start, count: 80)
        #expect(numeric.count == 80)
        #expect(try fires("0 9 * JAN-MAR,DEC MON-FRI", after: start, count: 80) == numeric)
        #expect(try fires("0 9 * jan-Mar,dec mon-fri", after: start, count: 80) == numeric)
        #expect(try fires("0 9 * 1-MAR,12 Mon-5", after: start, count: 80) == numeric)
        // The first weekday of April is skipped: 2026-03-31 (a Tuesday) is followed by 2026-12-01.
        #expect(numeric.contains(at("2026-03-31T09:00:00Z")))
        #expect(numeric[numeric.firstIndex(of: at("2026-03-31T09:00:00Z"))! + 1] == at("2026-12-01T09:00:00Z"))
    }

    @Test func sevenIsSunday() throws {
        let start = "2026-01-01T00:00:00Z"
        let sundays = try fires("0 0 * * 0", after: start, count: 10)
        #expect(sundays.first == at("2026-01-04T00:00:00Z"))
        #expect(try fires("0 0 * * 7", after: start, count: 10) == sundays)
        #expect(try fires("0 0 * * SUN", after: start, count: 10) == sundays)
        #expect(try fires("0 0 * * 0,7", after: start, count: 10) == sundays)
        // Friday through Sunday.
        #expect(
            try fires("0 0 * * 5-7", after: start, count: 4) == [
                at("2026-01-02T00:00:00Z"), at("2026-01-03T00:00:00Z"), at("2026-01-04T00:00:00Z"), at("2026-01-09T00:00:00Z"),
            ])
    }

    @Test func dayOfMonthOrDayOfWeekWhenBothAreRestricted() throws {
        // The 13th, and every Friday (2026-02-13 is both, and fires once).
        #expect(
            try fires("0 0 13 * 5", after: "2026-01-01T00:00:00Z", count: 8) == [
                at("2026-01-02T00:00:00Z"), at("2026-01-09T00:00:00Z"), at("2026-01-13T00:00:00Z"), at("2026-01-16T00:00:00Z"),
                at("2026-01-23T00:00:00Z"), at("2026-01-30T00:00:00Z"), at("2026-02-06T00:00:00Z"), at("2026-02-13T00:00:00Z"),
            ])
        // 1-31 is a restriction (it does not start with `*`), so with a day of the week it is every day.
        #expect(
            try fires("0 0 1-31 * 1", after: "2026-01-01T00:00:00Z", count: 3) == [
                at("2026-01-02T00:00:00Z"), at("2026-01-03T00:00:00Z"), at("2026-01-04T00:00:00Z"),
            ])
    }

    @Test func dayOfMonthAndDayOfWeekWhenEitherStartsWithStar() throws {
        // `*/2` starts with `*`: odd days that are Mondays.
        #expect(
            try fires("0 0 */2 * 1", after: "2026-01-01T00:00:00Z", count: 5) == [
                at("2026-01-05T00:00:00Z"), at("2026-01-19T00:00:00Z"), at("2026-02-09T00:00:00Z"), at("2026-02-23T00:00:00Z"),
                at("2026-03-09T00:00:00Z"),
            ])
        // Fridays only, and the 13ths that are Fridays only.
        #expect(try fires("0 0 * * 5", after: "2026-01-01T00:00:00Z", count: 2) == [at("2026-01-02T00:00:00Z"), at("2026-01-09T00:00:00Z")])
        #expect(
            try fires("0 0 13 * */7", after: "2026-01-01T00:00:00Z", count: 2) == [at("2026-09-13T00:00:00Z"), at("2026-12-13T00:00:00Z")])
    }

    @Test func macros() throws {
        let start = "2026-05-17T10:20:00Z"  // a Sunday
        for (macro, expanded) in [
            ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@hourly", "0 * * * *"), ("@HOURLY", "0 * * * *"),
        ] {
            #expect(try fires(macro, "Europe/Berlin", after: start, count: 5) == fires(expanded, "Europe/Berlin", after: start, count: 5), "\(macro)")
        }
        #expect(try fires("@yearly", after: start, count: 1) == [at("2027-01-01T00:00:00Z")])
        #expect(try fires("@monthly", after: start, count: 1) == [at("2026-06-01T00:00:00Z")])
        #expect(try fires("@weekly", after: start, count: 1) == [at("2026-05-24T00:00:00Z")])
        #expect(try fires("@daily", after: start, count: 1) == [at("2026-05-18T00:00:00Z")])
        #expect(try fires("@hourly", after: start, count: 1) == [at("2026-05-17T11:00:00Z")])
    }

    @Test func leapDay() throws {
        #expect(try fires("0 0 29 2 *", after: "2026-01-01T00:00:00Z", count: 2) == [at("2028-02-29T00:00:00Z"), at("2032-02-29T00:00:00Z")])
        // 2100 is not a leap year: eight years between leap days.
        #expect(try fires("0 0 29 2 *", after: "2096-03-01T00:00:00Z", count: 1) == [at("2104-02-29T00:00:00Z")])
        // 2000 is.
        #expect(try fires("0 0 29 2 *", after: "1997-01-01T00:00:00Z", count: 1) == [at("2000-02-29T00:00:00Z")])
        // The last of the month, on 30-day months only: 31 is skipped where it does not exist.
        #expect(
            try fires("0 0 31 * *", after: "2026-01-31T00:00:00Z", count: 3) == [
                at("2026-03-31T00:00:00Z"), at("2026-05-31T00:00:00Z"), at("2026-07-31T00:00:00Z"),
            ])
    }

    @Test func leapDayOnAMondayIsRare() throws {
        // `*/7` starts with `*`, so this is "29 February, when it is a Sunday" — 2032, then 2060.
        #expect(try fires("0 0 29 2 */7", after: "2026-01-01T00:00:00Z", count: 2) == [at("2032-02-29T00:00:00Z"), at("2060-02-29T00:00:00Z")])
    }

    @Test func strictlyAfter() throws {
        let s = try schedule("*/15 * * * *")
        #expect(s.next(after: at("2026-01-01T00:15:00Z")) == at("2026-01-01T00:30:00Z"))
        #expect(s.next(after: at("2026-01-01T00:14:59Z")) == at("2026-01-01T00:15:00Z"))
        #expect(s.next(after: at("2026-01-01T00:15:00Z").addingTimeInterval(-0.001)) == at("2026-01-01T00:15:00Z"))
        #expect(s.next(after: at("2026-01-01T00:15:00Z").addingTimeInterval(0.5)) == at("2026-01-01T00:30:00Z"))
        #expect(s.next(after: at("2026-01-01T00:15:00Z").addingTimeInterval(-59.5)) == at("2026-01-01T00:15:00Z"))
    }

    @Test func outsideTheSupportedYears() throws {
        let s = try schedule("0 0 1 1 *")
        #expect(s.next(after: .distantFuture) == at("4002-01-01T00:00:00Z"))
        #expect(s.next(after: Date(timeIntervalSince1970: 1e15)) == nil)
        #expect(s.next(after: at("9999-06-01T00:00:00Z")) == nil)
        #expect(s.next(after: at("9998-06-01T00:00:00Z")) == at("9999-01-01T00:00:00Z"))
        #expect(s.next(after: Date(timeIntervalSince1970: .nan)) == nil)
        // 0001-01-01T00:00:00Z in the proleptic Gregorian calendar.
        #expect(s.next(after: Date(timeIntervalSince1970: -1e300)) == Date(timeIntervalSince1970: -62_135_596_800))
        #expect(try schedule("@every 1h").next(after: Date(timeIntervalSince1970: 1e15)) == nil)
        #expect(try schedule("@every 1h").next(after: at("9999-12-31T23:30:00Z")) == nil)
    }

    @Test func firesWindow() throws {
        let s = try schedule("0 * * * *")
        let all = s.fires(after: at("2026-01-01T00:00:00Z"), through: at("2026-01-01T05:00:00Z"), limit: 100)
        #expect(
            all == [
                at("2026-01-01T01:00:00Z"), at("2026-01-01T02:00:00Z"), at("2026-01-01T03:00:00Z"), at("2026-01-01T04:00:00Z"),
                at("2026-01-01T05:00:00Z"),
            ])
        #expect(s.fires(after: at("2026-01-01T00:00:00Z"), through: at("2026-01-01T05:00:00Z"), limit: 2) == Array(all.prefix(2)))
        #expect(s.fires(after: at("2026-01-01T00:00:00Z"), through: at("2026-01-01T00:59:59Z"), limit: 100).isEmpty)
        #expect(s.fires(after: at("2026-01-01T00:00:00Z"), through: at("2026-01-01T05:00:00Z"), limit: 0).isEmpty)
        #expect(s.fires(after: at("2026-01-01T00:00:00Z"), through: at("2025-01-01T05:00:00Z"), limit: 10).isEmpty)
    }

    @Test func thousandSuccessiveFiresAreQuick() throws {
        let clock = ContinuousClock()
        let started = clock.now
        // Every five minutes in Berlin through spring forward: a wildcard hour keeps real time, 300 s apart.
        let dense = try schedule("*/5 * * * *", "Europe/Berlin")
        var previous = at("2026-03-28T22:00:00Z")
        for _ in 0..<1000 {
            let fire = try #require(dense.next(after: previous))
            #expect(fire.timeIntervalSince(previous) == 300)
            previous = fire
        }
        // A sparse schedule that needs to skip whole months and years: leap days at noon in Berlin, 1000 of them.
        let sparse = try schedule("0 12 29 2 *", "Europe/Berlin")
        let leapDays = sparse.fires(after: at("2026-01-01T00:00:00Z"), through: at("9999-12-31T23:59:59Z"), limit: 1000)
        #expect(leapDays.count == 1000)
        #expect(leapDays.first == at("2028-02-29T11:00:00Z"))
        #expect(leapDays.last == at("6148-02-29T11:00:00Z"))
        #expect(clock.now - started < .seconds(5))
    }
}

// MARK: - @every

@Suite struct EveryTests {
    @Test func countsFromTheUnixEpoch() throws {
        #expect(
            try fires("@every 15m", after: "2026-03-29T00:07:13Z", count: 3) == [
                at("2026-03-29T00:15:00Z"), at("2026-03-29T00:30:00Z"), at("2026-03-29T00:45:00Z"),
            ])
        // 1h30m = 5400 s: fires are multiples of 5400 s since 1970-01-01T00:00:00Z, whatever the start.
        let ninety = try fires("@every 1h30m", after: "2026-01-01T00:00:00Z", count: 3)
        #expect(ninety == [at("2026-01-01T01:30:00Z"), at("2026-01-01T03:00:00Z"), at("2026-01-01T04:30:00Z")])
        let seven = try schedule("@every 7s")
        // 2026-01-01T00:00:00Z is 1,767,225,600 s = 252,460,800 × 7 s after the epoch.
        #expect(seven.next(after: Date(timeIntervalSince1970: 1_767_225_599)) == Date(timeIntervalSince1970: 1_767_225_600))
        #expect(seven.next(after: Date(timeIntervalSince1970: 1_767_225_600)) == Date(timeIntervalSince1970: 1_767_225_607))
        #expect(seven.next(after: Date(timeIntervalSince1970: -1)) == Date(timeIntervalSince1970: 0))
        #expect(seven.next(after: Date(timeIntervalSince1970: -7.5)) == Date(timeIntervalSince1970: -7))
        #expect(try schedule("@every 1s").next(after: Date(timeIntervalSince1970: 10.25)) == Date(timeIntervalSince1970: 11))
        #expect(try schedule("@every 90m30s10s").next(after: Date(timeIntervalSince1970: 0)) == Date(timeIntervalSince1970: 5440))
    }

    @Test func ignoresTheTimeZoneAndDaylightSavingTime() throws {
        let utc = try fires("@every 45m", after: "2026-10-24T22:00:00Z", count: 10)
        #expect(try fires("@every 45m", "Europe/Berlin", after: "2026-10-24T22:00:00Z", count: 10) == utc)
        #expect(try fires("@every 45m", "Asia/Kolkata", after: "2026-10-24T22:00:00Z", count: 10) == utc)
        #expect(zip(utc, utc.dropFirst()).allSatisfy { $1.timeIntervalSince($0) == 2700 })
    }
}

// MARK: - Time zones and daylight saving time

@Suite struct TimeZoneTests {
    @Test func unknownZonesAreRefused() throws {
        let cron = try CronSchedule.parse("@daily")
        for name in ["Mars/Olympus_Mons", "", "../../etc/passwd", "Europe/../Berlin", "Europe/Berlin/", "/Europe/Berlin", "europe berlin"] {
            #expect(throws: ScheduleError(.timeZone, "")) { try Schedule(cron: cron, timeZone: name) }
        }
        do {
            _ = try Schedule(cron: cron, timeZone: "Mars/Olympus_Mons")
            Issue.record("accepted an unknown zone")
        } catch {
            #expect(error.message == "unknown time zone \"Mars/Olympus_Mons\": expected an IANA name such as Europe/Berlin or UTC")
        }
        for name in ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "America/Port-au-Prince"] {
            #expect(throws: Never.self) { try Schedule(cron: cron, timeZone: name) }
        }
    }

    @Test func kolkataIsFiveAndAHalfHoursAhead() throws {
        #expect(
            try fires("30 9 * * *", "Asia/Kolkata", after: "2026-06-01T00:00:00Z", count: 2) == [
                at("2026-06-01T04:00:00Z"), at("2026-06-02T04:00:00Z"),
            ])
        #expect(try fires("0 0 1 1 *", "Asia/Kolkata", after: "2026-06-01T00:00:00Z", count: 1) == [at("2026-12-31T18:30:00Z")])
        // The day of the week is the local one: Monday 00:15 in Kolkata is Sunday 18:45 UTC.
        #expect(try fires("15 0 * * MON", "Asia/Kolkata", after: "2026-06-01T00:00:00Z", count: 1) == [at("2026-06-07T18:45:00Z")])
    }

    // Europe/Berlin: 2026-03-29 02:00 CET → 03:00 CEST (01:00 UTC); 2026-10-25 03:00 CEST → 02:00 CET (01:00 UTC).

    @Test func berlinSpringForwardFixedHour() throws {
        let start = "2026-03-28T12:00:00Z"
        // 02:30 does not exist on the 29th: fire at 03:00 CEST, the first instant after the gap.
        #expect(
            try fires("30 2 * * *", "Europe/Berlin", after: start, count: 3) == [
                at("2026-03-29T01:00:00Z"), at("2026-03-30T00:30:00Z"), at("2026-03-31T00:30:00Z"),
            ])
        #expect(
            try fires("30 2 * * *", "Europe/Berlin", .skip, after: start, count: 2) == [
                at("2026-03-30T00:30:00Z"), at("2026-03-31T00:30:00Z"),
            ])
        // Several missing times fire once; a time after the gap that also matches is the same fire.
        #expect(
            try fires("*/20 2 * * *", "Europe/Berlin", after: start, count: 2) == [at("2026-03-29T01:00:00Z"), at("2026-03-30T00:00:00Z")])
        #expect(
            try fires("0 1-3 * * *", "Europe/Berlin", after: start, count: 4) == [
                at("2026-03-29T00:00:00Z"), at("2026-03-29T01:00:00Z"), at("2026-03-29T23:00:00Z"), at("2026-03-30T00:00:00Z"),
            ])
        #expect(
            try fires("0 1-3 * * *", "Europe/Berlin", .skip, after: start, count: 3) == [
                at("2026-03-29T00:00:00Z"), at("2026-03-29T01:00:00Z"), at("2026-03-29T23:00:00Z"),
            ])
        // Times either side of the gap are untouched.
        #expect(try fires("59 1 * * *", "Europe/Berlin", after: start, count: 1) == [at("2026-03-29T00:59:00Z")])
        #expect(try fires("0 3 * * *", "Europe/Berlin", after: start, count: 1) == [at("2026-03-29T01:00:00Z")])
    }

    @Test(arguments: [Schedule.SkippedTimes.fireAfterGap, .skip])
    func berlinSpringForwardWildcardHour(_ skipped: Schedule.SkippedTimes) throws {
        // Every 15 real minutes straight through the gap: 01:45 CET is followed by 03:00 CEST.
        #expect(
            try fires("*/15 * * * *", "Europe/Berlin", skipped, after: "2026-03-29T00:20:00Z", count: 4) == [
                at("2026-03-29T00:30:00Z"), at("2026-03-29T00:45:00Z"), at("2026-03-29T01:00:00Z"), at("2026-03-29T01:15:00Z"),
            ])
        #expect(
            try fires("0 * * * *", "Europe/Berlin", skipped, after: "2026-03-28T23:30:00Z", count: 3) == [
                at("2026-03-29T00:00:00Z"), at("2026-03-29T01:00:00Z"), at("2026-03-29T02:00:00Z"),
            ])
        // 02:30 exists in no offset that day; the wildcard hour does not make it up.
        #expect(
            try fires("30 * * * *", "Europe/Berlin", skipped, after: "2026-03-29T00:00:00Z", count: 2) == [
                at("2026-03-29T00:30:00Z"), at("2026-03-29T01:30:00Z"),
            ])
    }

    @Test(arguments: [Schedule.SkippedTimes.fireAfterGap, .skip])
    func berlinFallBack(_ skipped: Schedule.SkippedTimes) throws {
        let start = "2026-10-24T12:00:00Z"
        // 02:30 happens twice on the 25th (CEST, then CET): a fixed hour fires once, at the first.
        #expect(
            try fires("30 2 * * *", "Europe/Berlin", skipped, after: start, count: 2) == [
                at("2026-10-25T00:30:00Z"), at("2026-10-26T01:30:00Z"),
            ])
        // Also from inside the repeated hour: the second 02:30 (01:30 UTC) is not a fire.
        #expect(try schedule("30 2 * * *", "Europe/Berlin", skipped).next(after: at("2026-10-25T01:10:00Z")) == at("2026-10-26T01:30:00Z"))
        #expect(
            try fires("*/15 2 * * *", "Europe/Berlin", skipped, after: start, count: 5) == [
                at("2026-10-25T00:00:00Z"), at("2026-10-25T00:15:00Z"), at("2026-10-25T00:30:00Z"), at("2026-10-25T00:45:00Z"),
                at("2026-10-26T01:00:00Z"),
            ])
        #expect(
            try fires("0 1-3 * * *", "Europe/Berlin", skipped, after: start, count: 3) == [
                at("2026-10-24T23:00:00Z"), at("2026-10-25T00:00:00Z"), at("2026-10-25T02:00:00Z"),
            ])
        // A wildcard hour runs in both: 02:00 CEST, 02:00 CET, 03:00 CET are an hour apart.
        #expect(
            try fires("0 * * * *", "Europe/Berlin", skipped, after: "2026-10-24T23:30:00Z", count: 3) == [
                at("2026-10-25T00:00:00Z"), at("2026-10-25T01:00:00Z"), at("2026-10-25T02:00:00Z"),
            ])
        let quarters = try fires("*/15 * * * *", "Europe/Berlin", skipped, after: "2026-10-24T23:50:00Z", count: 9)
        #expect(quarters.first == at("2026-10-25T00:00:00Z"))
        #expect(quarters.last == at("2026-10-25T02:00:00Z"))
        #expect(zip(quarters, quarters.dropFirst()).allSatisfy { $1.timeIntervalSince($0) == 900 })
    }

    // America/New_York: 2026-03-08 02:00 EST → 03:00 EDT (07:00 UTC); 2026-11-01 02:00 EDT → 01:00 EST (06:00 UTC).

    @Test func newYorkSpringForward() throws {
        let start = "2026-03-07T12:00:00Z"
        #expect(
            try fires("30 2 * * *", "America/New_York", after: start, count: 2) == [at("2026-03-08T07:00:00Z"), at("2026-03-09T06:30:00Z")])
        #expect(
            try fires("30 2 * * *", "America/New_York", .skip, after: start, count: 2) == [
                at("2026-03-09T06:30:00Z"), at("2026-03-10T06:30:00Z"),
            ])
        // The day before is still EST (UTC−5), the day after EDT (UTC−4).
        #expect(
            try fires("0 9 * * *", "America/New_York", after: start, count: 2) == [at("2026-03-07T14:00:00Z"), at("2026-03-08T13:00:00Z")])
        #expect(
            try fires("0 * * * *", "America/New_York", .fireAfterGap, after: "2026-03-08T05:30:00Z", count: 3) == [
                at("2026-03-08T06:00:00Z"), at("2026-03-08T07:00:00Z"), at("2026-03-08T08:00:00Z"),
            ])
    }

    @Test func newYorkFallBack() throws {
        let start = "2026-10-31T12:00:00Z"
        #expect(
            try fires("30 1 * * *", "America/New_York", after: start, count: 2) == [at("2026-11-01T05:30:00Z"), at("2026-11-02T06:30:00Z")])
        #expect(
            try fires("30 1 * * *", "America/New_York", .skip, after: start, count: 2) == [
                at("2026-11-01T05:30:00Z"), at("2026-11-02T06:30:00Z"),
            ])
        // 00:00 EDT, 01:00 EDT, 01:00 EST, 02:00 EST.
        #expect(
            try fires("0 * * * *", "America/New_York", after: "2026-11-01T03:30:00Z", count: 4) == [
                at("2026-11-01T04:00:00Z"), at("2026-11-01T05:00:00Z"), at("2026-11-01T06:00:00Z"), at("2026-11-01T07:00:00Z"),
            ])
        #expect(try fires("@daily", "America/New_York", after: start, count: 2) == [at("2026-11-01T04:00:00Z"), at("2026-11-02T05:00:00Z")])
    }

    // Australia/Lord_Howe shifts by 30 minutes: 2026-04-05 02:00 (+11) → 01:30 (+10:30) at 15:00 UTC on the 4th;
    // 2026-10-04 02:00 (+10:30) → 02:30 (+11) at 15:30 UTC on the 3rd.

    @Test func lordHoweHalfHourShift() throws {
        #expect(
            try fires("45 1 * * *", "Australia/Lord_Howe", after: "2026-04-04T00:00:00Z", count: 2) == [
                at("2026-04-04T14:45:00Z"), at("2026-04-05T15:15:00Z"),
            ])
        #expect(
            try fires("15 2 * * *", "Australia/Lord_Howe", after: "2026-10-03T00:00:00Z", count: 2) == [
                at("2026-10-03T15:30:00Z"), at("2026-10-04T15:15:00Z"),
            ])
        #expect(
            try fires("15 2 * * *", "Australia/Lord_Howe", .skip, after: "2026-10-03T00:00:00Z", count: 1) == [at("2026-10-04T15:15:00Z")])
        // 02:30 exists on the day the clocks spring forward (it is the first minute after the gap).
        #expect(try fires("30 2 * * *", "Australia/Lord_Howe", .skip, after: "2026-10-03T00:00:00Z", count: 1) == [at("2026-10-03T15:30:00Z")])
        let quarters = try fires("*/15 * * * *", "Australia/Lord_Howe", after: "2026-04-04T14:20:00Z", count: 6)
        #expect(quarters.first == at("2026-04-04T14:30:00Z"))
        #expect(zip(quarters, quarters.dropFirst()).allSatisfy { $1.timeIntervalSince($0) == 900 })
        // On the hour: 01:00 (+11) is 14:00 UTC; 02:00 (+10:30) is 15:30 UTC, an hour and a half later.
        #expect(
            try fires("0 * * * *", "Australia/Lord_Howe", after: "2026-04-04T13:30:00Z", count: 2) == [
                at("2026-04-04T14:00:00Z"), at("2026-04-04T15:30:00Z"),
            ])
    }

    struct Window: Sendable, CustomStringConvertible {
        let zone: String
        let transition: String
        var description: String { "\(zone) \(transition)" }
    }

    static let windows = [
        Window(zone: "Europe/Berlin", transition: "2026-03-29T01:00:00Z"), Window(zone: "Europe/Berlin", transition: "2026-10-25T01:00:00Z"),
        Window(zone: "America/New_York", transition: "2026-03-08T07:00:00Z"),
        Window(zone: "America/New_York", transition: "2026-11-01T06:00:00Z"),
        Window(zone: "Australia/Lord_Howe", transition: "2026-04-04T15:00:00Z"),
        Window(zone: "Australia/Lord_Howe", transition: "2026-10-03T15:30:00Z"),
        Window(zone: "America/Santiago", transition: "2026-04-05T03:00:00Z"),
        Window(zone: "America/Santiago", transition: "2026-09-06T04:00:00Z"), Window(zone: "Asia/Kolkata", transition: "2026-03-29T01:00:00Z"),
    ]

    static let expressions = [
        "30 2 * * *", "*/15 * * * *", "0 * * * *", "*/15 2 * * *", "45 1 * * *", "15 2 * * *", "0 1-3 * * *", "0 */2 * * *", "5 0 * * *",
        "59 1 * * *", "0 3 * * *", "@daily", "30 23 * * *", "*/7 1,2 * * *",
    ]

    /// Every documented rule, checked minute by minute against Foundation's calendar for two days around a transition.
    @Test(arguments: windows)
    func agreesWithAMinuteByMinuteScan(_ window: Window) throws {
        let zone = try #require(TimeZone(identifier: window.zone))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let from = at(window.transition).addingTimeInterval(-86_400)
        let through = at(window.transition).addingTimeInterval(86_400)
        func wall(_ t: Date) -> DateComponents { calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: t) }
        for expression in Self.expressions {
            let cron = try CronSchedule.parse(expression)
            guard case .calendar(let fields) = cron.kind else { continue }
            func matches(_ c: DateComponents) -> Bool {
                fields.minutes & (1 << UInt64(c.minute!)) != 0 && fields.hours & (1 << UInt64(c.hour!)) != 0
                    && fields.months & (1 << UInt64(c.month!)) != 0 && fields.dayMatches(day: c.day!, weekday: c.weekday! - 1)
            }
            let fixedHour = !fields.hourStar
            for skipped in [Schedule.SkippedTimes.fireAfterGap, .skip] {
                var expected: [Date] = []
                var t = from.addingTimeInterval(60)
                while t <= through {
                    let here = wall(t)
                    // A fixed hour skips a wall time it already had (the clock went back 30, 60 or 120 minutes).
                    let repeated = fixedHour && [1800.0, 3600, 7200].contains { wall(t.addingTimeInterval(-$0)) == here }
                    var fire = matches(here) && !repeated
                    // A fixed hour fires at the end of a gap that holds a matching wall time.
                    let before = t.addingTimeInterval(-60)
                    let jump = zone.secondsFromGMT(for: t) - zone.secondsFromGMT(for: before)
                    if fixedHour, skipped == .fireAfterGap, jump > 0 {
                        // The gap's wall times are those after `before` in the old offset, up to the jump.
                        var old = Calendar(identifier: .gregorian)
                        old.timeZone = try #require(TimeZone(secondsFromGMT: zone.secondsFromGMT(for: before)))
                        for m in 1...(jump / 60) {
                            let gapWall = old.dateComponents(
                                [.year, .month, .day, .hour, .minute, .weekday], from: before.addingTimeInterval(Double(60 * m)))
                            if matches(gapWall) { fire = true }
                        }
                    }
                    if fire { expected.append(t) }
                    t.addTimeInterval(60)
                }
                let s = try Schedule(cron: cron, timeZone: window.zone, skippedTimes: skipped)
                #expect(s.fires(after: from, through: through, limit: 10_000) == expected, "\(expression) \(skipped)")
            }
        }
    }
}

// MARK: - Catch-up

@Suite struct CatchUpTests {
    let daily: Schedule

    init() throws { daily = try schedule("0 3 * * *") }

    @Test func nothingMissed() {
        #expect(daily.plannedFires(lastFired: at("2026-05-01T03:00:00Z"), now: at("2026-05-01T12:00:00Z"), startingDeadline: nil) == nil)
        #expect(daily.plannedFires(lastFired: at("2026-05-01T03:00:00Z"), now: at("2026-05-02T02:59:59Z"), startingDeadline: .seconds(60)) == nil)
        // Already fired for this planned time.
        #expect(daily.plannedFires(lastFired: at("2026-05-02T03:00:00Z"), now: at("2026-05-02T03:00:30Z"), startingDeadline: nil) == nil)
        // The clock is behind the last fire.
        #expect(daily.plannedFires(lastFired: at("2026-05-02T03:00:00Z"), now: at("2026-05-01T03:00:30Z"), startingDeadline: nil) == nil)
    }

    @Test func onTime() {
        let last = at("2026-05-01T03:00:00Z")
        #expect(daily.plannedFires(lastFired: last, now: at("2026-05-02T03:00:00Z"), startingDeadline: .seconds(0)) == at("2026-05-02T03:00:00Z"))
        #expect(daily.plannedFires(lastFired: last, now: at("2026-05-02T03:00:05Z"), startingDeadline: .seconds(60)) == at("2026-05-02T03:00:00Z"))
        #expect(daily.plannedFires(lastFired: last, now: at("2026-05-02T03:00:05Z"), startingDeadline: nil) == at("2026-05-02T03:00:00Z"))
    }

    @Test func manyMissedFireOnceForTheMostRecent() {
        let last = at("2026-05-01T03:00:00Z")
        let now = at("2026-05-04T10:00:00Z")
        #expect(daily.plannedFires(lastFired: last, now: now, startingDeadline: nil) == at("2026-05-04T03:00:00Z"))
        #expect(daily.plannedFires(lastFired: last, now: now, startingDeadline: .seconds(8 * 3600)) == at("2026-05-04T03:00:00Z"))
        // The most recent is seven hours late: past a one-hour deadline, and so are the older ones.
        #expect(daily.plannedFires(lastFired: last, now: now, startingDeadline: .seconds(3600)) == nil)
        // Once that one fired, nothing more is due that day.
        #expect(daily.plannedFires(lastFired: at("2026-05-04T03:00:00Z"), now: now, startingDeadline: nil) == nil)
    }

    @Test func theDeadlineIsInclusive() {
        let last = at("2026-05-01T03:00:00Z")
        #expect(daily.plannedFires(lastFired: last, now: at("2026-05-02T04:00:00Z"), startingDeadline: .seconds(3600)) == at("2026-05-02T03:00:00Z"))
        #expect(daily.plannedFires(lastFired: last, now: at("2026-05-02T04:00:01Z"), startingDeadline: .seconds(3600)) == nil)
        #expect(
            daily.plannedFires(lastFired: last, now: at("2026-05-02T04:00:00.5Z"), startingDeadline: .milliseconds(3_600_500))
                == at("2026-05-02T03:00:00Z"))
        #expect(daily.plannedFires(lastFired: last, now: at("2026-05-02T04:00:00.5Z"), startingDeadline: .milliseconds(3_600_499)) == nil)
        #expect(daily.plannedFires(lastFired: last, now: at("2026-05-02T03:00:00Z"), startingDeadline: .seconds(-1)) == nil)
    }

    @Test func withoutAHistory() {
        // No lower bound: the most recent planned time, subject to the deadline.
        #expect(daily.plannedFires(lastFired: nil, now: at("2026-05-04T10:00:00Z"), startingDeadline: nil) == at("2026-05-04T03:00:00Z"))
        #expect(daily.plannedFires(lastFired: nil, now: at("2026-05-04T10:00:00Z"), startingDeadline: .seconds(3600)) == nil)
        // A trigger created at 09:00 that passes its creation time: nothing before it counts.
        #expect(daily.plannedFires(lastFired: at("2026-05-04T09:00:00Z"), now: at("2026-05-04T10:00:00Z"), startingDeadline: nil) == nil)
        #expect(
            daily.plannedFires(lastFired: at("2026-05-04T09:00:00Z"), now: at("2026-05-05T03:00:10Z"), startingDeadline: nil)
                == at("2026-05-05T03:00:00Z"))
        // Leap days: the most recent is years back and is still found.
        let leap = try! schedule("0 0 29 2 *")
        #expect(leap.plannedFires(lastFired: nil, now: at("2031-01-01T00:00:00Z"), startingDeadline: nil) == at("2028-02-29T00:00:00Z"))
    }

    @Test func aYearDownWithAFireEveryMinute() throws {
        let minutely = try schedule("* * * * *", "Europe/Berlin")
        let clock = ContinuousClock()
        let started = clock.now
        let planned = minutely.plannedFires(lastFired: at("2025-05-01T00:00:00Z"), now: at("2026-05-01T12:34:56.7Z"), startingDeadline: nil)
        #expect(planned == at("2026-05-01T12:34:00Z"))
        #expect(clock.now - started < .seconds(1))
    }

    @Test func catchUpFollowsTheTimeZone() throws {
        // Berlin: the fixed-hour 02:30 of 2026-03-29 is planned for 03:00 CEST; a scheduler down from Saturday to
        // Monday morning fires it once, for Monday's 02:30 CEST.
        let s = try schedule("30 2 * * *", "Europe/Berlin")
        #expect(
            s.plannedFires(lastFired: at("2026-03-28T01:30:00Z"), now: at("2026-03-29T05:00:00Z"), startingDeadline: nil)
                == at("2026-03-29T01:00:00Z"))
        #expect(
            s.plannedFires(lastFired: at("2026-03-28T01:30:00Z"), now: at("2026-03-30T05:00:00Z"), startingDeadline: nil)
                == at("2026-03-30T00:30:00Z"))
    }

    @Test func every() throws {
        let s = try schedule("@every 15m")
        #expect(
            s.plannedFires(lastFired: at("2026-01-01T00:00:00Z"), now: at("2026-01-01T03:07:00Z"), startingDeadline: nil)
                == at("2026-01-01T03:00:00Z"))
        #expect(s.plannedFires(lastFired: at("2026-01-01T00:00:00Z"), now: at("2026-01-01T03:07:00Z"), startingDeadline: .seconds(300)) == nil)
        #expect(s.plannedFires(lastFired: at("2026-01-01T03:00:00Z"), now: at("2026-01-01T03:07:00Z"), startingDeadline: nil) == nil)
    }
}

// MARK: - Fire keys

@Suite struct FireKeyTests {
    @Test func keyIsTheTriggerAndThePlannedTimeInUTC() {
        #expect(Schedule.fireKey(trigger: "nightly", planned: at("2026-03-29T03:00:00+02:00")) == "nightly@2026-03-29T01:00:00.000Z")
        #expect(Schedule.fireKey(trigger: "scan", planned: Date(timeIntervalSince1970: 0)) == "scan@1970-01-01T00:00:00.000Z")
        #expect(Schedule.fireKey(trigger: "t", planned: Date(timeIntervalSince1970: -0.25)) == "t@1969-12-31T23:59:59.750Z")
        #expect(Schedule.fireKey(trigger: "t", planned: at("2028-02-29T23:59:59Z")) == "t@2028-02-29T23:59:59.000Z")
    }

    @Test func repeatedHoursGiveDifferentKeys() throws {
        // Both 02:00s of a Berlin fall-back night fire for `0 * * * *`, under distinct keys.
        let s = try schedule("0 * * * *", "Europe/Berlin")
        let both = s.fires(after: at("2026-10-24T23:30:00Z"), through: at("2026-10-25T01:30:00Z"), limit: 10)
        #expect(
            both.map { Schedule.fireKey(trigger: "hourly", planned: $0) } == ["hourly@2026-10-25T00:00:00.000Z", "hourly@2026-10-25T01:00:00.000Z"])
    }
}
