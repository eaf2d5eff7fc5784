enum Conversions {
    static func toInt(_ v: Value, _ fail: (String) -> CELError) throws -> Value {
        switch v {
        case .int: return v
        case .uint(let u):
            guard u <= UInt64(Int64.max) else { throw fail("int conversion out of range: \(u)u") }
            return .int(Int64(u))
        case .double(let d):
            // Doubles at or beyond ±2^63 (and NaN) do not convert.
            guard d.isFinite, d > -9_223_372_036_854_775_808.0, d < 9_223_372_036_854_775_808.0 else {
                throw fail("int conversion out of range: \(d)")
            }
            return .int(Int64(d.rounded(.towardZero)))
        case .string(let s):
            guard let i = Int64(s) else { throw fail("cannot convert \"\(s)\" to int") }
            return .int(i)
        case .timestamp(let s, _): return .int(s)
        default: throw fail("no such overload: int(\(v.typeName))")
        }
    }

    static func toUint(_ v: Value, _ fail: (String) -> CELError) throws -> Value {
        switch v {
        case .uint: return v
        case .int(let i):
            guard i >= 0 else { throw fail("uint conversion out of range: \(i)") }
            return .uint(UInt64(i))
        case .double(let d):
            guard d.isFinite, d > -1, d < 18_446_744_073_709_551_616.0 else { throw fail("uint conversion out of range: \(d)") }
            return .uint(UInt64(d.rounded(.towardZero)))
        case .string(let s):
            guard let u = UInt64(s) else { throw fail("cannot convert \"\(s)\" to uint") }
            return .uint(u)
        default: throw fail("no such overload: uint(\(v.typeName))")
        }
    }

    static func toDouble(_ v: Value, _ fail: (String) -> CELError) throws -> Value {
        switch v {
        case .double: return v
        case .int(let i): return .double(Double(i))
        case .uint(let u): return .double(Double(u))
        case .string(let s):
            switch s {
            case "NaN": return .double(.nan)
            case "Infinity", "+Infinity", "inf", "+inf": return .double(.infinity)
            case "-Infinity", "-inf": return .double(-.infinity)
            default:
                guard let d = Double(s) else { throw fail("cannot convert \"\(s)\" to double") }
                return .double(d)
            }
        default: throw fail("no such overload: double(\(v.typeName))")
        }
    }

    static func toString(_ v: Value, _ fail: (String) -> CELError) throws -> Value {
        switch v {
        case .string: return v
        case .int(let i): return .string(String(i))
        case .uint(let u): return .string(String(u))
        case .double(let d): return .string(formatDouble(d))
        case .bool(let b): return .string(b ? "true" : "false")
        case .bytes(let b):
            guard let s = String(validating: b, as: UTF8.self) else { throw fail("bytes are not valid UTF-8") }
            return .string(s)
        case .timestamp(let s, let n): return .string(Time.formatTimestamp(s, n))
        case .duration(let s, let n): return .string(Time.formatDuration(s, n))
        case .type(let t): return .string(t)
        default: throw fail("no such overload: string(\(v.typeName))")
        }
    }

    /// Shortest round-tripping form, as CEL prints doubles (`1e+06` style exponents avoided for whole numbers).
    static func formatDouble(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "+Inf" : "-Inf" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return "\(d)"
    }
}

enum Time {
    static let minSeconds: Int64 = -62_135_596_800  // 0001-01-01T00:00:00Z
    static let maxSeconds: Int64 = 253_402_300_799  // 9999-12-31T23:59:59Z
    /// Durations are bounded by int64 nanoseconds (about ±292 years), as in cel-go.
    static let maxDurationSeconds: Int64 = 9_223_372_036

    static func add(_ s: Int64, _ n: Int32, _ ds: Int64, _ dn: Int32, _ fail: (String) -> CELError) throws -> (Int64, Int32) {
        let (sum, o) = s.addingReportingOverflow(ds)
        if o { throw fail("timestamp or duration overflow") }
        var secs = sum
        var nanos = Int64(n) + Int64(dn)
        if nanos >= 1_000_000_000 {
            secs += 1
            nanos -= 1_000_000_000
        } else if nanos <= -1_000_000_000 {
            secs -= 1
            nanos += 1_000_000_000
        }
        return (secs, Int32(nanos))
    }

    static func checkedTimestamp(_ s: Int64, _ n: Int32, _ fail: (String) -> CELError) throws -> Value {
        var secs = s
        var nanos = n
        if nanos < 0 {
            secs -= 1
            nanos += 1_000_000_000
        }
        guard secs >= minSeconds, secs <= maxSeconds else { throw fail("timestamp out of range") }
        return .timestamp(seconds: secs, nanos: nanos)
    }

    static func checkedDuration(_ s: Int64, _ n: Int32, _ fail: (String) -> CELError) throws -> Value {
        var secs = s
        var nanos = n
        if secs > 0 && nanos < 0 {
            secs -= 1
            nanos += 1_000_000_000
        } else if secs < 0 && nanos > 0 {
            secs += 1
            nanos -= 1_000_000_000
        }
        guard abs(secs) < maxDurationSeconds || (abs(secs) == maxDurationSeconds && abs(nanos) <= 854_775_807) else {
            throw fail("duration out of range")
        }
        return .duration(seconds: secs, nanos: nanos)
    }

    /// Days since 1970-01-01 → (year, month 1-12, day 1-31) (proleptic Gregorian).
    static func civil(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    static func days(_ y: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y2 = m <= 2 ? y - 1 : y
        let era = (y2 >= 0 ? y2 : y2 - 399) / 400
        let yoe = y2 - era * 400
        let mp = m > 2 ? m - 3 : m + 9
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    static func parseTimestamp(_ text: String, _ fail: (String) -> CELError) throws -> Value {
        let c = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= c.count else { return nil }
            var v: Int64 = 0
            for i in from..<(from + count) {
                guard c[i] >= 48 && c[i] <= 57 else { return nil }
                v = v * 10 + Int64(c[i] - 48)
            }
            return v
        }
        guard c.count >= 20, let y = num(0, 4), c[4] == 45, let mo = num(5, 2), c[7] == 45, let d = num(8, 2), c[10] == 84 || c[10] == 116,
            let h = num(11, 2), c[13] == 58, let mi = num(14, 2), c[16] == 58, let s = num(17, 2), (1...12).contains(mo), (1...31).contains(d),
            h < 24, mi < 60, s < 60
        else { throw fail("timestamp \"\(text)\" is not RFC 3339 (like 2024-01-02T03:04:05Z)") }
        var i = 19
        var nanos: Int64 = 0
        if i < c.count, c[i] == 46 {
            i += 1
            var digits = 0
            while i < c.count, c[i] >= 48, c[i] <= 57 {
                if digits < 9 { nanos = nanos * 10 + Int64(c[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { throw fail("timestamp \"\(text)\" has an empty fraction") }
            for _ in digits..<9 where digits < 9 { nanos *= 10 }
        }
        var offset: Int64 = 0
        guard i < c.count else { throw fail("timestamp \"\(text)\" has no time zone (Z or ±HH:MM)") }
        if c[i] == 90 || c[i] == 122 {
            i += 1
        } else if c[i] == 43 || c[i] == 45, let oh = num(i + 1, 2), c.count > i + 3, c[i + 3] == 58, let om = num(i + 4, 2) {
            offset = (oh * 3600 + om * 60) * (c[i] == 45 ? -1 : 1)
            i += 6
        } else {
            throw fail("timestamp \"\(text)\" has an invalid time zone")
        }
        guard i == c.count else { throw fail("timestamp \"\(text)\" has trailing characters") }
        let secs = days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset
        return try checkedTimestamp(secs, Int32(nanos), fail)
    }

    static func formatTimestamp(_ s: Int64, _ n: Int32) -> String {
        let day = floorDiv(s, 86400)
        let rem = s - day * 86400
        let (y, m, d) = civil(day)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var year = String(y)
        while year.count < 4 { year = "0" + year }
        var out = "\(year)-\(two(m))-\(two(d))T\(two(rem / 3600)):\(two(rem % 3600 / 60)):\(two(rem % 60))"
        if n != 0 {
            var frac = String(n)
            while frac.count < 9 { frac = "0" + frac }
            while frac.hasSuffix("0") { frac.removeLast() }
            out += "." + frac
        }
        return out + "Z"
    }

    static func parseDuration(_ text: String, _ fail: (String) -> CELError) throws -> Value {
        var c = Substring(text)
        var negative = false
        if c.hasPrefix("-") {
            negative = true
            c = c.dropFirst()
        } else if c.hasPrefix("+") {
            c = c.dropFirst()
        }
        guard !c.isEmpty else { throw fail("duration \"\(text)\" is empty") }
        if c == "0" { return .duration(seconds: 0, nanos: 0) }
        var total: Double = 0
        var nanosTotal: Int64 = 0
        while !c.isEmpty {
            let numberText = c.prefix { $0.isNumber || $0 == "." }
            guard !numberText.isEmpty, let number = Double(numberText) else { throw fail("duration \"\(text)\" is not like 1h2m3.5s") }
            c = c.dropFirst(numberText.count)
            let units: [(String, Int64)] = [
                ("ns", 1), ("us", 1000), ("µs", 1000), ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
            ]
            guard let unit = units.first(where: { c.hasPrefix($0.0) && !(($0.0 == "m") && c.hasPrefix("ms")) }) else {
                throw fail("duration \"\(text)\" has an unknown unit (h, m, s, ms, us, ns)")
            }
            c = c.dropFirst(unit.0.count)
            total += number * Double(unit.1)
            guard total < 9.2e18 else { throw fail("duration \"\(text)\" is out of range") }
            nanosTotal = Int64(total)
        }
        if negative { nanosTotal = -nanosTotal }
        return try checkedDuration(nanosTotal / 1_000_000_000, Int32(nanosTotal % 1_000_000_000), fail)
    }

    static func formatDuration(_ s: Int64, _ n: Int32) -> String {
        if n == 0 { return "\(s)s" }
        let negative = s < 0 || n < 0
        var frac = String(abs(Int64(n)))
        while frac.count < 9 { frac = "0" + frac }
        while frac.hasSuffix("0") { frac.removeLast() }
        return (negative ? "-" : "") + "\(abs(s)).\(frac)s"
    }

    /// Offset in seconds of a time zone argument: "UTC", "Z", "+05:30", "-08:00" (IANA names are not supported).
    static func offset(_ tz: String, _ fail: (String) -> CELError) throws -> Int64 {
        if tz == "UTC" || tz == "Z" || tz == "GMT" || tz == "Etc/UTC" { return 0 }
        let c = Array(tz.utf8)
        var i = 0
        var sign: Int64 = 1
        if c.first == 43 || c.first == 45 {
            sign = c.first == 45 ? -1 : 1
            i = 1
        }
        let parts = String(decoding: c[i...], as: UTF8.self).split(separator: ":")
        guard (1...2).contains(parts.count), let h = Int64(parts[0]), h < 24, parts.count == 1 || Int64(parts[1]) != nil else {
            throw fail(
                "time zone \"\(tz)\" is not supported here (use UTC, an offset like +05:30, or an IANA name where a zone database is available)")
        }
        let m = parts.count == 2 ? Int64(parts[1])! : 0
        return sign * (h * 3600 + m * 60)
    }

    static func accessor(
        _ f: String, _ v: [Value], _ fail: (String) -> CELError, _ noOverload: () -> CELError, timeZones: TimeZoneResolver? = nil
    ) throws -> Value {
        if case .duration(let s, let n) = v[0], v.count == 1 {
            switch f {
            case "getHours": return .int(s / 3600)
            case "getMinutes": return .int(s / 60)
            case "getSeconds": return .int(s)
            case "getMilliseconds": return .int(Int64(n) / 1_000_000)
            default: throw noOverload()
            }
        }
        guard case .timestamp(let s0, let n) = v[0], v.count <= 2 else { throw noOverload() }
        var s = s0
        if v.count == 2 {
            guard case .string(let tz) = v[1] else { throw noOverload() }
            if tz.contains("/"), let resolve = timeZones {
                guard let o = resolve(tz, s) else { throw fail("unknown time zone \"\(tz)\"") }
                s += o
            } else {
                s += try offset(tz, fail)
            }
        }
        let day = floorDiv(s, 86400)
        let rem = s - day * 86400
        let (y, m, d) = civil(day)
        switch f {
        case "getFullYear": return .int(y)
        case "getMonth": return .int(m - 1)
        case "getDayOfMonth": return .int(d - 1)
        case "getDate": return .int(d)
        case "getDayOfWeek": return .int(((day % 7) + 11) % 7)  // 1970-01-01 was a Thursday (4)
        case "getDayOfYear": return .int(day - days(y, 1, 1))
        case "getHours": return .int(rem / 3600)
        case "getMinutes": return .int(rem % 3600 / 60)
        case "getSeconds": return .int(rem % 60)
        case "getMilliseconds": return .int(Int64(n) / 1_000_000)
        default: throw noOverload()
        }
    }
}

extension Value {
    /// The timestamp an RFC 3339 string names (`2024-01-02T03:04:05.5+01:00`), as CEL's `timestamp(string)` reads
    /// it; a `CELError` saying what is wrong otherwise.
    public static func timestamp(rfc3339 text: String) throws -> Value {
        try Time.parseTimestamp(text) { CELError($0) }
    }
}
