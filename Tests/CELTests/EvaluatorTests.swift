import CEL
import Testing

@Suite struct EvaluatorTests {
    func eval(_ s: String, _ b: [String: Value] = [:]) throws -> Value { try Program(s).evaluate(b) }

    @Test func basicsAndBindings() throws {
        #expect(try eval("1 + 2 * 3").celEquals(.int(7)))
        #expect(try eval("a.b + size(l)", ["a": .map([(.string("b"), .int(40))]), "l": .list([.int(1), .int(2)])]).celEquals(.int(42)))
        #expect(try eval("'abc'.startsWith('a') && 'abc'.matches('^a.c$') && !('x' in ['y'])").celEquals(.bool(true)))
        #expect(try eval("[1, 2, 3].map(x, x * x).filter(y, y > 1)").celEquals(.list([.int(4), .int(9)])))
        #expect(try eval("{'a': 1}.exists(k, k == 'a') && has({'a': 1}.a) && !has({'a': 1}.b)").celEquals(.bool(true)))
        #expect(try eval("1 == 1u && 1.0 == 1 && [1] == [1u]").celEquals(.bool(true)))
        #expect(try eval("timestamp('2024-02-29T12:00:00Z') + duration('36h')").celEquals(.timestamp(seconds: 1_709_337_600, nanos: 0)))
        #expect(try eval("string(timestamp('2024-02-29T12:00:00.5+01:00'))").celEquals(.string("2024-02-29T11:00:00.5Z")))
        #expect(try eval("timestamp('2024-02-29T12:00:00Z').getDayOfWeek()").celEquals(.int(4)))
        // String predicates compare code points: multi-byte text, empty and longer needles.
        #expect(try eval("'héllo wörld'.contains('ö') && 'héllo'.contains('él') && !'ab'.contains('abc') && 'x'.contains('')").celEquals(.bool(true)))
        #expect(try eval("!'e\\u0301'.contains('é') && 'aaab'.contains('aab') && !'aaa'.contains('aab')").celEquals(.bool(true)))
        #expect(try eval("'abc'.endsWith('bc') && !'abc'.endsWith('abcd') && 'abc'.startsWith('') && size('héllo') == 5").celEquals(.bool(true)))
    }

    /// Errors are values that `&&`, `||` and the macros absorb when the result does not depend on them.
    @Test func errorsAndAbsorption() throws {
        #expect(try eval("1 / 0 == 1 || true").celEquals(.bool(true)))
        #expect(try eval("false && 1 / 0 == 1").celEquals(.bool(false)))
        #expect(try eval("[0, 1].exists(x, 1 / x == 1)").celEquals(.bool(true)))
        for (expr, message) in [
            ("1 / 0", "division by zero"), ("9223372036854775807 + 1", "integer overflow"), ("-9223372036854775808 - 1", "integer overflow"),
            ("0u - 1u", "unsigned integer overflow"), ("x", "undeclared reference to 'x'"), ("{'a': 1}.b", "no such key: b"),
            ("[1][2]", "index out of range: 2"), ("1 + 'a'", "no such overload: _+_(int, string)"), ("int('x')", "cannot convert \"x\" to int"),
            ("{1: 1, 1u: 2}", "repeated map key"), ("Foo{a: 1}", "message type Foo is not supported"),
        ] {
            #expect { try eval(expr) } throws: { ($0 as? CELError)?.message.contains(message) == true }
        }
    }

    /// A runaway expression stops at the cost limit with a clear error.
    @Test func costLimit() throws {
        let p = try Program("[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, a + b + c > 0)))")
        #expect(try p.evaluate().celEquals(.bool(true)))
        #expect { try p.evaluate(costLimit: 500) } throws: { ($0 as? CELError)?.message == "evaluation exceeded the cost limit of 500 steps" }
    }

    /// An expression that would run for hours stops at the wall-clock limit; limits are never absorbed by `||`.
    @Test func timeLimit() throws {
        let l = "[" + (0..<100).map(String.init).joined(separator: ",") + "]"
        let p = try Program("\(l).all(a, \(l).all(b, \(l).all(c, \(l).all(d, \(l).all(e, a + b + c + d + e >= 0))))) || true")
        let start = ContinuousClock.now
        #expect { try p.evaluate(costLimit: Int.max, timeLimit: .milliseconds(200)) } throws: {
            ($0 as? CELError)?.message.hasPrefix("evaluation exceeded the time limit of 0.2 seconds") == true
        }
        #expect(ContinuousClock.now - start < .seconds(30))
        #expect { try p.evaluate(costLimit: 10_000) } throws: {
            ($0 as? CELError)?.message == "evaluation exceeded the cost limit of 10000 steps"
        }
    }

    @Test func jsonBindingsFollowTheNumberRule() throws {
        let v = try Value.parseJSON(
            #"{"i": 3, "f": 3.0, "e": 3e2, "d": 2.5, "big": 9223372036854775808, "neg": -7, "s": "a\u00e9\ud83d\ude00\n", "l": [true, null], "o": {}}"#
        )
        #expect(
            v.celEquals(
                .map([
                    (.string("i"), .int(3)), (.string("f"), .int(3)), (.string("e"), .int(300)), (.string("d"), .double(2.5)),
                    (.string("big"), .double(9_223_372_036_854_775_808)), (.string("neg"), .int(-7)), (.string("s"), .string("aé😀\n")),
                    (.string("l"), .list([.bool(true), .null])), (.string("o"), .map([])),
                ])))
        #expect(
            try Program("type(i) == int && type(d) == double && type(big) == double").evaluate([
                "i": .int(3), "d": .double(2.5), "big": .double(9.3e18),
            ]).celEquals(.bool(true)))
        #expect(
            v.jsonText(sortedKeys: true) == #"{"big":9.223372036854776e+18,"d":2.5,"e":300,"f":3,"i":3,"l":[true,null],"neg":-7,"o":{},"s":"aé😀\n"}"#)
        #expect(Value.bytes([0, 1, 2, 250]).jsonText() == #""AAEC+g==""#)
        #expect(try Program("timestamp('2024-01-01T00:00:00Z') + duration('90m')").evaluate().jsonText() == #""2024-01-01T01:30:00Z""#)
    }

    static let malformedJSON: [(String, String)] = [
        ("", "1:1: unexpected end of the document"),
        ("{\"a\": 1,}", "1:9: expected a string key"),
        ("{\"a\": 1, \"a\": 2}", "1:10: duplicate key \"a\""),
        ("[1, 2", "1:6: unexpected end of the document inside an array"),
        ("{\n  \"a\": tru\n}", "2:8: unexpected character"),
        ("01", "1:1: leading zeros are not allowed"),
        ("\"\\x\"", "1:2: invalid escape '\\x'"),
        ("\"\\ud800\"", "1:8: unpaired surrogate in \\u escape"),
        ("1 2", "1:3: unexpected text after the JSON value"),
        ("1e999", "1:1: number out of range"),
        (String(repeating: "[", count: 600), "1:513: nested deeper than 512 levels"),
    ]

    @Test(arguments: malformedJSON) func malformedJSONIsRejectedWithItsPosition(_ text: String, _ message: String) {
        #expect { try Value.parseJSON(text) } throws: { "\($0)" == message }
    }

    /// `matches` takes RE2 syntax: what RE2 lacks is refused with the reason; matching is by code point, unanchored.
    @Test func matchesTakesTheRE2Subset() throws {
        #expect(try eval(#"'abc-123'.matches('[a-z]+-\\d{3}$') && 'x'.matches('') && !'ab'.matches('^b')"#).celEquals(.bool(true)))
        #expect(try eval(#"'e\u0301'.matches('^e.$') && 'AB'.matches('(?i)ab') && 'a.b'.matches('a\\.b')"#).celEquals(.bool(true)))
        #expect(try eval(#"'release-v1'.matches('(?P<kind>release)-v[0-9]+')"#).celEquals(.bool(true)))
        let refused: [(String, String)] = [
            (#"(a)\\1"#, #"backreferences (\1) are not part of RE2 syntax"#), ("a(?=b)", "lookahead ((?=) is not part of RE2 syntax"),
            ("(?<!a)b", "lookbehind ((?<!) is not part of RE2 syntax"), ("(?>a)", "atomic groups ((?>) are not part of RE2 syntax"),
            ("a*+", "possessive quantifiers (*+) are not part of RE2 syntax"), (#"a\\Z"#, #"\Z is not part of RE2 syntax (use \z)"#),
            ("[a-", "invalid regular expression"),
        ]
        for (pattern, reason) in refused {
            #expect { try eval("'a'.matches('\(pattern)')") } throws: { ($0 as? CELError)?.message.contains(reason) == true }
        }
        // Inside a class, escapes and quantifier characters are literals.
        #expect(try eval(#"'a+'.matches('[+*]') && '.'.matches('^[\\.]$') && !'x'.matches('^[\\.]$')"#).celEquals(.bool(true)))
    }
}
