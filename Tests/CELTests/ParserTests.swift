import CEL
import Foundation
import Testing

@Suite struct ParserTests {
    @Test(arguments: [
        ("1 + 2 * 3", "_+_(1, _*_(2, 3))"),
        ("a || b && c", "_||_(a, _&&_(b, c))"),
        ("a ? b : c ? d : e", "_?_:_(a, b, _?_:_(c, d, e))"),
        ("-9223372036854775808", "-9223372036854775808"),
        ("- 5", "-5"),
        ("!!true", "!_(!_(true))"),
        ("-(-1)", "-_(-1)"),
        ("x in [1, 2u, 3.5, 'a', b'z', null]", "@in(x, [1, 2u, 3.5, \"a\", b[122], null])"),
        ("{'k': 1, 2: [3,]}", "{\"k\": 1, 2: [3]}"),
        ("a.b.c[0].d(1)", "_[_](a.b.c, 0).d(1)"),
        ("has(a.b)", "has(a.b)"),
        (".a.b", ".a.b"),
        ("size(x) == 0x1F", "_==_(size(x), 31)"),
        ("r'\\n' + '\\n' + \"\"\"x\ny\"\"\"", "_+_(_+_(\"\\n\", \"\n\"), \"x\ny\")"),
        ("1e3 + .5 + 2e-1", "_+_(_+_(1000.0, 0.5), 0.2)"),
        ("{'a-b': 1}.`a-b`", "{\"a-b\": 1}.a-b"),
        ("google.protobuf.Int64Value{value: 1}", "google.protobuf.Int64Value{value: 1}"),
        ("[1,2].all(x, x > 0)", "fold(x in [1, 2], @result = true, @not_strictly_false(@result), _&&_(@result, _>_(x, 0)), @result)"),
        ("l.map(x, x * 2)", "fold(x in l, @result = [], true, _+_(@result, [_*_(x, 2)]), @result)"),
        ("l.filter(x, x > 1)", "fold(x in l, @result = [], true, _?_:_(_>_(x, 1), _+_(@result, [x]), @result), @result)"),
        ("l.exists_one(x, x)", "fold(x in l, @result = 0, true, _?_:_(x, _+_(@result, 1), @result), _==_(@result, 1))"),
        ("T{a: 1}.a", "T{a: 1}.a"),
        ("a // comment\n + b", "_+_(a, b)"),
    ])
    func parses(source: String, tree: String) throws {
        #expect(try Parser.parse(source).debugDescription == tree)
    }

    /// Malformed expressions: the message, the position and a caret under the offending token.
    @Test(arguments: [
        ("1 +", "1:4: unexpected end of input"),
        ("(1", "1:3: expected ')' to close the parenthesis, found end of input"),
        ("a.", "1:3: expected a field or method name after '.', found end of input"),
        ("1 2", "1:3: unexpected '2' after the expression"),
        ("'abc", "1:1: unterminated string literal"),
        ("'a\nb'", "1:3: newline in a single-quoted string literal"),
        ("'\\q'", "1:2: invalid escape sequence \\q"),
        ("9223372036854775808", "1:1: int literal 9223372036854775808 is out of range"),
        ("18446744073709551616u", "1:1: uint literal 18446744073709551616 is out of range"),
        ("a # b", "1:3: unexpected character '#'"),
        ("var + 1", "1:1: 'var' is a reserved word and cannot be used as an identifier"),
        ("has(a)", "1:1: has() takes one field selection, like has(a.b)"),
        ("[1].all(1, true)", "1:9: the first argument of all() must be a simple variable name"),
        ("{1: 2", "1:6: expected '}' to close the map, found end of input"),
        ("{1 2}", "1:4: expected ':' between a map key and its value, found '2'"),
        ("a ? b", "1:6: expected ':' in the conditional operator, found end of input"),
        ("0x", "1:1: hexadecimal literal needs digits"),
        ("2.", "1:3: expected a field or method name after '.', found end of input"),
        ("a.`b", "1:3: unterminated quoted field name"),
        ("'\\x4'", "1:2: escape needs 2 hexadecimal digits"),
    ])
    func errors(source: String, message: String) {
        #expect {
            try Parser.parse(source)
        } throws: { e in
            let d = (e as? CELError)?.description ?? ""
            return d.hasPrefix(message) && d.contains("^")
        }
    }

    @Test func caretPointsAtTheToken() throws {
        do {
            _ = try Parser.parse("a &&\n  b +* c")
            Issue.record("expected an error")
        } catch let e as CELError {
            #expect(e.description == "2:6: unexpected '*'\n  b +* c\n     ^")
        }
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "(", count: 400) + "1" + String(repeating: ")", count: 400)
        #expect { try Parser.parse(deep) } throws: { ($0 as? CELError)?.message.contains("nests more than") == true }
        let deepList = String(repeating: "[", count: 400) + String(repeating: "]", count: 400)
        #expect(throws: CELError.self) { try Parser.parse(deepList) }
        #expect(throws: CELError.self) { try Parser.parse(String(repeating: "-", count: 1000) + "x") }
    }

    @Test func bytesLiteralsKeepRawBytes() throws {
        let literal: [UInt8]? = if case .literal(.bytes(let b)) = try Parser.parse("b'\\xff\\000\\x41é'").kind { b } else { nil }
        let b = try #require(literal, "not bytes")
        #expect(b == [0xFF, 0x00, 0x41, 0xC3, 0xA9])
    }
}

/// Every expression of the conformance subset parses (evaluation comes with the evaluator).
@Suite struct ConformanceParseTests {
    static var directory: URL { ConformanceData.directory }
    static let files = [
        "basic", "plumbing", "logic", "integer_math", "fp_math", "string", "lists", "macros", "conversions", "timestamps", "fields",
        "namespace", "comparisons", "parse",
    ]

    /// `expr:` values of a text-format SimpleTestFile, with their test names.
    static func expressions(in text: String) -> [(name: String, expr: String)] {
        TextProto.parse(text).all("section").flatMap { section in
            section.all("test").compactMap { t in t["expr"]?.text.map { ((t["name"]?.text ?? ""), $0) } }
        }
    }

    @Test(.enabled(if: ConformanceData.runs, ConformanceData.skipped))
    func subsetParses() throws {
        try ConformanceData.require()
        var report: [String] = []
        var failures: [String] = []
        for file in Self.files {
            let text = try String(contentsOf: Self.directory.appendingPathComponent(file + ".textproto"), encoding: .utf8)
            let exprs = Self.expressions(in: text)
            var ok = 0
            for (name, e) in exprs {
                do {
                    _ = try Parser.parse(e)
                    ok += 1
                } catch {
                    failures.append("\(file)/\(name): \(e) — \(error)")
                }
            }
            report.append("\(file): \(ok)/\(exprs.count)")
        }
        print("CEL conformance, parse only: " + report.joined(separator: ", "))
        #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(30).joined(separator: "\n"))")
    }
}
