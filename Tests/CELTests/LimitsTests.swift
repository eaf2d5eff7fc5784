import CEL
import Foundation
import Testing

/// Hostile expressions end with a clear error, never a crash or a hang: nesting is bounded when parsing, so that every
/// recursive walk of the tree fits a small thread stack, and the values an evaluation builds count their size.
@Suite struct LimitsTests {
    static let bindings: [String: Value] = ["a": .bool(true), "x": .list([.int(0)]), "i": .int(1), "s": .string("ab")]

    /// Expressions of one shape, nested `n` levels deep.
    static func nested(_ shape: String, _ n: Int) -> String {
        switch shape {
        case "+": return Array(repeating: "1", count: n).joined(separator: " + ")
        case "'a'+": return Array(repeating: "'a'", count: n).joined(separator: " + ")
        case "[0]": return "x" + String(repeating: "[0]", count: n)
        case ".b": return "a" + String(repeating: ".b", count: n)
        case "!": return String(repeating: "!", count: n) + "a"
        case "-": return String(repeating: "-", count: n) + "i"
        case "int(": return String(repeating: "int(", count: n) + "1" + String(repeating: ")", count: n)
        case "(": return String(repeating: "(", count: n) + "1" + String(repeating: ")", count: n)
        case "(1+": return String(repeating: "(1 + ", count: n) + "1" + String(repeating: ")", count: n)
        case "[": return String(repeating: "[", count: n) + String(repeating: "]", count: n)
        case "{": return String(repeating: "{1: ", count: n) + "1" + String(repeating: "}", count: n)
        case "?:": return String(repeating: "a ? 1 : ", count: n) + "0"
        case ".map": return "x" + String(repeating: ".map(y, y)", count: n)
        case ".f(": return String(repeating: "s.startsWith(", count: n) + "s" + String(repeating: ")", count: n)
        case "all": return (0..<n).map { "x.all(v\($0), " }.joined() + "a" + String(repeating: ")", count: n)
        case "filter": return (0..<n).map { "x.filter(v\($0), " }.joined() + "a" + String(repeating: ").size() > 0", count: n)
        default: return (0..<n).map { "x.exists(v\($0), v\($0) == 0 && " }.joined() + "a" + String(repeating: ")", count: n)
        }
    }

    static let shapes = ["+", "'a'+", "[0]", ".b", "!", "-", "int(", "(", "(1+", "[", "{", "?:", ".map", ".f(", "all", "filter", "exists"]

    /// The deepest expression of a shape the parser accepts.
    static func deepest(_ shape: String) -> String {
        var low = 1
        var high = 4 * Parser.maxDepth
        while low < high {
            let mid = (low + high + 1) / 2
            if (try? Parser.parse(nested(shape, mid))) != nil { low = mid } else { high = mid - 1 }
        }
        return nested(shape, low)
    }

    /// Everything that walks a tree: printing, the evident type, evaluation.
    static func walk(_ source: String) -> String {
        do {
            let p = try Program(source)
            let printed = p.expr.debugDescription
            let type = p.expr.evidentType ?? "?"
            let value = (try? p.evaluate(bindings)).map(\.typeName) ?? "error"
            return "height \(p.expr.height), \(printed.count) characters, \(type), \(value)"
        } catch {
            return "refused: \(error)"
        }
    }

    /// 3,000 levels of every shape: refused with the position and the limit, on a Task (a smaller stack than main's).
    @Test(arguments: shapes) func longChainsAreRefusedNotACrash(_ shape: String) async throws {
        let source = Self.nested(shape, 3000)
        let outcome = await Task { () -> CELError? in
            do {
                _ = try Program(source)
                return nil
            } catch {
                return error as? CELError
            }
        }.value
        let error = try #require(outcome)
        #expect(error.message == "expression nests more than \(Parser.maxDepth) levels deep")
        #expect(error.position != nil && error.snippet?.contains("^") == true)
    }

    /// `&&` and `||` chains are built balanced, so any length is accepted and evaluates.
    @Test func logicalChainsOfAnyLengthEvaluate() async throws {
        let all = Array(repeating: "a", count: 3000).joined(separator: " && ")
        let any = Array(repeating: "!a", count: 3000).joined(separator: " || ") + " || a"
        let mixed = (0..<3000).map { "i == \($0)" }.joined(separator: " || ")
        let results = try await Task { () -> [Value] in
            try [all, any, mixed, all + " && !a"].map { try Program($0).evaluate(Self.bindings) }
        }.value
        #expect(results.map(\.description) == ["true", "true", "true", "false"])
        #expect(try Program(all).expr.height <= 13)
        // Errors still propagate as CEL says: the leftmost undecided error, absorbed by a deciding term anywhere.
        #expect(try Program("a && 1 / 0 == 1 && a && a && false").evaluate(Self.bindings).description == "false")
        #expect { try Program("a && 1 / 0 == 1 && a && a").evaluate(Self.bindings) } throws: {
            ($0 as? CELError)?.message == "division by zero"
        }
    }

    /// At the limit, every shape parses, prints, types and evaluates on a 512 KiB thread stack (debug build included).
    @Test(arguments: shapes) func theDeepestAcceptedTreeFitsASmallStack(_ shape: String) throws {
        let source = Self.deepest(shape)
        let outcome = Self.onThread(stackSize: 512 * 1024) { Self.walk(source) }
        #expect(outcome.hasPrefix("height"), "\(outcome)")
    }

    /// Runs `body` on a thread with the given stack and waits for it.
    static func onThread(stackSize: Int, _ body: @escaping @Sendable () -> String) -> String {
        final class Box: @unchecked Sendable { var value = "" }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            box.value = body()
            done.signal()
        }
        thread.stackSize = stackSize
        thread.start()
        done.wait()
        return box.value
    }

    static let sizeError = "evaluation exceeded the cost limit of 1000000 steps (building a value: values count their elements and bytes)"

    /// Values that share structure are counted as written out: ten references to a list count it ten times.
    @Test func sharedStructureCountsItsSize() throws {
        let tenfold = "[1]" + (0..<8).map { ".map(v\($0), [" + Array(repeating: "v\($0)", count: 10).joined(separator: ", ") + "])" }.joined()
        #expect { try Program(tenfold).evaluate() } throws: { ($0 as? CELError)?.message == Self.sizeError }
        let wide = "[" + Array(repeating: "x", count: 10).joined(separator: ", ") + "]"
        let map = "{" + (0..<10).map { "'k\($0)': x" }.joined(separator: ", ") + "}"
        let wider = "[1].map(q, \(wide))" + String(repeating: ".map(r, \(wide.replacingOccurrences(of: "x", with: "r")))", count: 6)
        #expect { try Program(wider).evaluate(Self.bindings) } throws: { ($0 as? CELError)?.message == Self.sizeError }
        #expect(try Program(map).evaluate(["x": .list(Array(repeating: .int(1), count: 1000))]).typeName == "map")
        #expect { try Program(map).evaluate(["x": .list(Array(repeating: .int(1), count: 100_000))]) } throws: {
            ($0 as? CELError)?.message == Self.sizeError
        }
    }

    /// Strings and lists that double (or quadruple) at every level stop at the cost limit, not at the memory's end.
    @Test func growingStringsAndListsStopAtTheCostLimit() throws {
        var strings = "'ab'"
        var lists = "[1, 2, 3, 4, 5, 6, 7, 8]"
        // Without the limit: 33 million bytes, and 8 million elements.
        for _ in 0..<12 { strings = "[\(strings)].map(t, t + t + t + t)[0]" }
        for _ in 0..<10 { lists = "[\(lists)].map(l, l + l + l + l)[0]" }
        #expect { try Program(strings).evaluate() } throws: { ($0 as? CELError)?.message == Self.sizeError }
        #expect { try Program(lists).evaluate() } throws: { ($0 as? CELError)?.message == Self.sizeError }
        #expect { try Program("s + s").evaluate(["s": .string(String(repeating: "a", count: 600_000))]) } throws: {
            ($0 as? CELError)?.message == Self.sizeError
        }
        // A limit is never absorbed.
        #expect { try Program("size(\(strings)) > 0 || true").evaluate() } throws: { ($0 as? CELError)?.message == Self.sizeError }
    }

    /// What ordinary policies build stays far below the limit: `map` and `filter` append in place, literals are part
    /// of the program, and elements that only pick fields of the item add nothing the range did not hold.
    @Test func ordinaryValuesStayCheap() throws {
        let components = Value.list(
            (0..<5000).map { i in
                .map([(.string("name"), .string("component-\(i)")), (.string("licenses"), .list([.string(i % 7 == 0 ? "GPL-3.0" : "MIT")]))])
            })
        let program = try Program(
            "sbom.components.filter(c, c.licenses.exists(l, l in ['GPL-3.0', 'AGPL-3.0', 'SSPL-1.0'])).map(c, c.name).size() == 715")
        #expect(try program.evaluate(["sbom": .map([(.string("components"), components)])], costLimit: 200_000).description == "true")
        #expect(try Program("[1, 2, 3].map(x, [x, x]) == [[1, 1], [2, 2], [3, 3]] && 'a' + 'b' == 'ab'").evaluate().description == "true")
        // The in-place `map` and `filter` keep CEL's error semantics.
        for (expr, message) in [
            ("[1, 0, 2].map(x, 1 / x)", "division by zero"), ("[0, 1].filter(x, 1 / x > 0)", "division by zero"),
            ("[1, 2].filter(x, x)", "no such overload: condition of type int"), ("[1, 0].map(x, x >= 0, 1 / x)", "division by zero"),
        ] {
            #expect { try Program(expr).evaluate() } throws: { ($0 as? CELError)?.message == message }
        }
        #expect(try Program("[1, 0, 2].map(x, x != 0, 2 / x)").evaluate().description == "[2, 1]")
    }
}
