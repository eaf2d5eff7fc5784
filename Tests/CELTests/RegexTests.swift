import CEL
import Testing

/// `matches`: RE2 syntax and meaning, a linear-time automaton, and its work counted against the evaluation's limits.
@Suite struct RegexTests {
    func matches(_ text: String, _ pattern: String, costLimit: Int = 1_000_000, timeLimit: Duration? = nil) throws -> Bool {
        let v = try Program("s.matches(p)").evaluate(
            ["s": .string(text), "p": .string(pattern)], costLimit: costLimit, timeLimit: timeLimit)
        guard case .bool(let b) = v else { throw CELError("not a bool: \(v)") }
        return b
    }

    func refusal(_ pattern: String) -> String? {
        do {
            _ = try matches("", pattern)
            return nil
        } catch {
            return (error as? CELError)?.message
        }
    }

    @Test func agreesWithPythonWhereRE2Does() throws {
        var wrong: [String] = []
        for (pattern, text, expected) in regexCrossChecks where try matches(text, pattern) != expected {
            wrong.append("\(pattern.debugDescription) on \(text.debugDescription): expected \(expected)")
        }
        #expect(wrong.isEmpty, "\(wrong.joined(separator: "\n"))")
        #expect(regexCrossChecks.count >= 100)
    }

    /// Where RE2 differs from other engines, `matches` follows RE2.
    @Test(arguments: [
        ("a$", "a\n", false), ("(?m)a$", "a\n", true), ("a\\z", "a", true), ("a\\z", "a\n", false), ("\\B", "", true),
        ("^\\d+$", "\u{661}\u{662}", false), ("^\\w+$", "h\u{e9}llo", false), ("\\s", "\u{a0}", false), ("\\s", "\u{b}", false),
        ("(?U)^a+$", "aaa", true), ("(?<name>a)b", "ab", true), ("\\x{1F600}", "\u{1F600}", true), ("\\x{41}", "A", true),
        ("\\12", "\n", true), ("\\Qa.b\\E", "a.b", true), ("\\Qa.b\\E", "axb", false), ("^\\Q(*)\\E+$", "(*)))", true),
        ("\\pL", "\u{e9}", true), ("^\\p{Lu}+$", "\u{c9}A", true), ("^\\p{Lu}+$", "\u{c9}a", false), ("\\PL", "abc", false),
        ("\\p{^L}", "ab1", true), ("^\\p{Nd}+$", "\u{661}\u{662}", true), ("^[\\p{L}\\d]+$", "a1\u{e9}", true), ("\\p{Any}", "x", true),
        ("^[[:alpha:]]+$", "abc", true), ("^[[:^digit:]]+$", "ab", true), ("^[[:digit:]]+$", "1a", false), ("[[:punct:]]", "a!", true),
        ("(?i)k", "\u{212A}", true), ("(?i)s", "\u{17F}", true), ("(?i)\u{e9}", "\u{c9}", true), ("(?i)^[\u{e0}-\u{ff}]$", "\u{c9}", true),
        ("(?i)^[^\u{e0}-\u{ff}]$", "\u{c9}", false), ("a(?i)b|c", "C", true), ("(?i)a(?-i)a", "AA", false), ("(?i)a(?-i)a", "Aa", true),
        ("(?i:a)a", "AA", false), ("^*a", "a", true), ("x*", "", true), (".", "\r", true), ("[^a]", "\u{1F600}", true),
    ])
    func followsRE2(_ pattern: String, _ text: String, _ expected: Bool) throws {
        #expect(try matches(text, pattern) == expected)
    }

    @Test(arguments: [
        ("a{1001}", "repetition count {1001} exceeds RE2's limit of 1000"),
        ("a{2,1001}", "repetition count {2,1001} exceeds RE2's limit of 1000"),
        ("(a{100}){100}", "nested repetition counts multiply to more than 1000"),
        ("((a{10}){10}){11}", "nested repetition counts multiply to more than 1000"),
        ("a{3,2}", "bad repetition operator {3,2}: the minimum exceeds the maximum"),
        ("a**", "bad repetition operator: ** (quantifiers do not stack)"), ("a{2}{3}", "bad repetition operator: {2}{3}"),
        ("a???", "bad repetition operator: ??"), ("*a", "missing argument to repetition operator *"), ("a|+", "missing argument"),
        ("(a", "missing ) to close a group"), ("a)", "unexpected )"), ("[a", "missing ] to close a character class"),
        ("[z-a]", "invalid character class range z-a"), ("[a-\\d]", "invalid character class range"), ("\\y", "invalid escape sequence \\y"),
        ("a\\", "trailing backslash"), ("(?x)a", "unknown or unsupported flag (?x"), ("(?i-)a", "missing or invalid flags"),
        ("(?P=n)", "backreferences ((?P=) are not part of RE2 syntax"), ("\\8", "backreferences (\\8) are not part of RE2 syntax"),
        ("\\k<n>", "backreferences (\\k) are not part of RE2 syntax"), ("\\C", "\\C (any byte) is not supported"),
        ("(?#c)", "comments ((?#) are not part of RE2 syntax"), ("\\p{Greek}", "unsupported Unicode class \\p{Greek}"),
        ("[[:alfa:]]", "invalid POSIX class [:alfa:]"), ("\\x{110000}", "invalid hexadecimal escape"), ("\\xZZ", "invalid hexadecimal escape"),
        ("(?<n!>a)", "invalid character in a group name"), ("a{2}+", "possessive quantifiers (}+) are not part of RE2 syntax"),
        (String(repeating: "(", count: 101) + String(repeating: ")", count: 101), "groups nest more than 100 levels deep"),
        (String(repeating: "[a-z]{1000}", count: 11), "pattern too large: it compiles to more than 10000 instructions"),
    ])
    func refusesWithTheReason(_ pattern: String, _ reason: String) {
        let message = refusal(pattern)
        #expect(message?.contains("invalid regular expression") == true)
        #expect(message?.contains(reason) == true, "\(message ?? "no error")")
    }

    /// Patterns that take a backtracking engine exponential time answer at once: the automaton visits each input
    /// scalar once.
    @Test(arguments: [
        ("^(a+)+$", String(repeating: "a", count: 40) + "!"), ("^(a|aa)+$", String(repeating: "a", count: 60) + "!"),
        ("(x+x+)+y", String(repeating: "x", count: 60)), ("(.*a){12}", String(repeating: "a", count: 11)),
        ("^(a|a?)+$", String(repeating: "a", count: 50) + "b"), ("^(\\w+\\s?)*$", String(repeating: "word ", count: 40) + "!"),
        ("(a*)*b", String(repeating: "a", count: 5000)),
    ])
    func catastrophicPatternsAreLinear(_ pattern: String, _ text: String) throws {
        #expect(try matches(text, pattern) == false)
    }

    /// Matching work counts toward the cost limit, and the clock is read while matching.
    @Test func matchingIsBoundedByTheLimits() throws {
        let long = String(repeating: "a", count: 100_000)
        #expect(try matches(long, "(a*)*b", costLimit: 10_000_000) == false)
        #expect { try matches(long, "(a*)*b", costLimit: 200_000) } throws: {
            ($0 as? CELError)?.message == "evaluation exceeded the cost limit of 200000 steps (matching a regular expression)"
        }
        // About 200 million steps: far more than the 50 ms allowed on any machine.
        #expect { try matches(String(repeating: "a", count: 200_000), "(a?){500}b", costLimit: .max, timeLimit: .milliseconds(50)) } throws: {
            ($0 as? CELError)?.message.hasPrefix("evaluation exceeded the time limit of 0.05 seconds") == true
                && ($0 as? CELError)?.message.hasSuffix("matching a regular expression") == true
        }
        // A limit is never absorbed by `||`.
        #expect { try Program("s.matches('(a*)*b') || true").evaluate(["s": .string(long)], costLimit: 200_000) } throws: {
            ($0 as? CELError)?.message.hasPrefix("evaluation exceeded the cost limit") == true
        }
    }
}
