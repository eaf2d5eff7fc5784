import ArgumentParser
import CEL
import Foundation

struct CELCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cel", abstract: "The CEL expression language Warden's policies use.", subcommands: [Eval.self])

    struct Eval: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate one CEL expression and print its value as JSON.",
            discussion: """
                Variables come from --vars: each top-level key of the JSON object is a variable. JSON numbers that are \
                integral and fit in int64 become int, other numbers double. Output: int, uint and double as numbers, \
                bytes as base64, timestamps as RFC 3339 strings, durations as CEL duration strings ("1.5s"), types as \
                their names. An error is printed to standard error with its line, column and a caret; exit code 1 for an \
                evaluation error, 64 for a parse error or unreadable variables.
                """)

        @Argument(help: "The expression.") var expression: String
        @Option(name: .long, help: "JSON object file: its top-level keys are the variables.") var vars: String?
        @Option(name: .long, help: "Evaluation steps allowed.") var costLimit = 1_000_000

        func run() async throws {
            var bindings: [String: Value] = [:]
            if let vars {
                guard let data = FileManager.default.contents(atPath: vars),
                    case .map(let entries) = (try? JSONDecoder().decode(JSONInput.self, from: data))?.value ?? .null
                else {
                    printError("error: --vars \(vars) is not a readable JSON object")
                    throw ExitCode(64)
                }
                for (k, v) in entries { if case .string(let name) = k { bindings[name] = v } }
            }
            let program: Program
            do {
                program = try Program(expression)
            } catch let e as CELError {
                printError("error: \(e)")
                throw ExitCode(64)
            }
            do {
                let value = try program.evaluate(bindings, costLimit: costLimit, timeZones: ianaTimeZones)
                let json = try JSONSerialization.data(
                    withJSONObject: jsonValue(value), options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: json, as: UTF8.self))
            } catch let e as CELError {
                printError("error: \(e)")
                throw ExitCode(1)
            }
        }
    }
}

/// JSON → CEL: integral numbers in int64 range are ints, other numbers doubles (the documented rule).
struct JSONInput: Decodable {
    let value: Value

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            value = .null
        } else if let b = try? c.decode(Bool.self) {
            value = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            value = .int(i)
        } else if let d = try? c.decode(Double.self) {
            value = .double(d)
        } else if let s = try? c.decode(String.self) {
            value = .string(s)
        } else if let a = try? c.decode([JSONInput].self) {
            value = .list(a.map(\.value))
        } else {
            let o = try c.decode([String: JSONInput].self)
            value = .map(o.keys.sorted().map { (.string($0), o[$0]!.value) })
        }
    }
}

/// CEL → JSON as `cel eval` prints it.
func jsonValue(_ v: Value) throws -> Any {
    switch v {
    case .null: return NSNull()
    case .bool(let b): return b
    case .int(let i): return i
    case .uint(let u): return u
    case .double(let d):
        guard d.isFinite else { return d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity") }
        return d
    case .string(let s): return s
    case .bytes(let b): return Data(b).base64EncodedString()
    case .list(let l): return try l.map(jsonValue)
    case .map(let m):
        var o: [String: Any] = [:]
        for (k, val) in m {
            let key: String
            if case .string(let s) = k { key = s } else { key = k.description }
            o[key] = try jsonValue(val)
        }
        return o
    case .timestamp, .duration, .type:
        guard case .string(let s) = try Program("string(v)").evaluate(["v": v]) else { return v.description }
        return s
    }
}

/// IANA time zones for CEL's timestamp accessors, from the system's zone database (through Foundation).
let ianaTimeZones: TimeZoneResolver = { name, seconds in
    TimeZone(identifier: name).map { Int64($0.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))) }
}
