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
}
