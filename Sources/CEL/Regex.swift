import Synchronization

/// `matches` patterns: checked against the RE2 subset CEL specifies, compiled once per process.
///
/// Accepted (RE2 syntax, with Swift Regex semantics): literals and escapes, `.`, classes `[...]` with ranges and
/// negation, `\d \w \s \D \W \S`, `\b \B`, anchors `^ $ \A \z`, groups `(...)`, `(?:...)`, named groups
/// `(?P<name>...)` and `(?<name>...)`, alternation, quantifiers `* + ? {n} {n,} {n,m}` and their lazy forms, and
/// flags `(?i) (?m) (?s) (?U)`. Refused, because RE2 has no such thing: backreferences (`\1`, `\k<name>`),
/// lookaround (`(?=`, `(?!`, `(?<=`, `(?<!`), atomic groups `(?>`, possessive quantifiers (`*+`, `++`, `?+`, `}+`),
/// conditionals `(?(`, and `\Z`, `\G`.
final class RegexCache: Sendable {
    static let shared = RegexCache()
    /// Bounded: a policy has a handful of patterns; a pattern built from data must not grow the cache forever.
    static let capacity = 256

    struct Box: @unchecked Sendable { let regex: Regex<AnyRegexOutput> }
    let cache = Mutex<[String: Box]>([:])

    func compile(_ pattern: String) throws -> Regex<AnyRegexOutput> {
        if let hit = cache.withLock({ $0[pattern] }) { return hit.regex }
        if let problem = Self.nonRE2(pattern) { throw RegexSyntaxError(message: problem) }
        let regex = try Regex(pattern).matchingSemantics(.unicodeScalar)
        cache.withLock {
            if $0.count >= Self.capacity { $0.removeAll() }
            $0[pattern] = Box(regex: regex)
        }
        return regex
    }

    struct RegexSyntaxError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// The first construct outside RE2's syntax, described, or nil.
    static func nonRE2(_ pattern: String) -> String? {
        let p = Array(pattern.unicodeScalars)
        var i = 0
        var inClass = false
        while i < p.count {
            let c = p[i]
            if c == "\\", i + 1 < p.count {
                let n = p[i + 1]
                if !inClass {
                    if ("1"..."9").contains(n) { return "backreferences (\\\(n)) are not part of RE2 syntax" }
                    if n == "k" || n == "g" { return "backreferences (\\\(n)) are not part of RE2 syntax" }
                    if n == "Z" || n == "G" { return "\\\(n) is not part of RE2 syntax (use \\z)" }
                }
                i += 2
                continue
            }
            if inClass {
                if c == "]" { inClass = false }
                i += 1
                continue
            }
            if c == "[" {
                inClass = true
                i += 1
                // A leading ] or ^] is a literal.
                if i < p.count, p[i] == "^" { i += 1 }
                if i < p.count, p[i] == "]" { i += 1 }
                continue
            }
            if c == "(", i + 2 < p.count, p[i + 1] == "?" {
                let n = p[i + 2]
                if n == "=" || n == "!" { return "lookahead ((?\(n)) is not part of RE2 syntax" }
                if n == ">" { return "atomic groups ((?>) are not part of RE2 syntax" }
                if n == "(" { return "conditionals ((?() are not part of RE2 syntax" }
                if n == "<", i + 3 < p.count, p[i + 3] == "=" || p[i + 3] == "!" {
                    return "lookbehind ((?<\(p[i + 3])) is not part of RE2 syntax"
                }
            }
            if c == "+", i > 0, ["*", "+", "?", "}"].contains(p[i - 1]), !(i > 1 && p[i - 2] == "\\") {
                return "possessive quantifiers (\(p[i - 1])+) are not part of RE2 syntax"
            }
            i += 1
        }
        return nil
    }
}
