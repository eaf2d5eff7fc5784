import ArgumentParser
import CEL
import CommandSupport
import Documents
import Foundation

struct CELCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cel", abstract: "The CEL expression language Warden's policies use.", subcommands: [Eval.self])

    struct Eval: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eval",
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
        @Option(name: .long, help: "Wall-clock seconds allowed.") var timeLimit = 10.0

        func run() async throws {
            var bindings: [String: Value] = [:]
            if let vars {
                do {
                    bindings = try readJSONObject(vars)
                } catch {
                    printError("error: --vars \(error)")
                    throw ExitCode(64)
                }
            }
            let program: Program
            do {
                program = try Program(expression)
            } catch let e as CELError {
                printError("error: \(e)")
                throw ExitCode(64)
            }
            do {
                let value = try program.evaluate(
                    bindings, costLimit: costLimit, timeLimit: .milliseconds(Int64(timeLimit * 1000)), timeZones: TimeZones.iana)
                print(value.jsonText(sortedKeys: true))
            } catch let e as CELError {
                printError("error: \(e)")
                throw ExitCode(1)
            }
        }
    }
}

/// A JSON object file as CEL variables (its top-level keys), with errors that name the file, line and column.
func readJSONObject(_ path: String) throws -> [String: Value] {
    guard let data = FileManager.default.contents(atPath: path) else { throw CLIError(.unreadable, "\(path): cannot read the file") }
    let value: Value
    do { value = try Value.parseJSON([UInt8](data)) } catch let e as JSONError { throw CLIError(.invalidInput, "\(path):\(e)") }
    guard case .map(let entries) = value else { throw CLIError(.invalidInput, "\(path): expected a JSON object, found \(value.typeName)") }
    var bindings: [String: Value] = [:]
    for (k, v) in entries { if case .string(let name) = k { bindings[name] = v } }
    return bindings
}

/// An error the CLI reports as one line: a file or argument the command cannot use.
struct CLIError: Error, CustomStringConvertible, Equatable {
    /// The error's code: extensible (a new code is a new static member); errors compare equal when their
    /// codes do.
    struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        let rawValue: String
        init(rawValue: String) { self.rawValue = rawValue }
        var description: String { rawValue }
        /// A file named on the command line cannot be read.
        static let unreadable = Code(rawValue: "unreadable")
        /// A file or argument that does not hold what the command needs.
        static let invalidInput = Code(rawValue: "invalidInput")
    }

    var code: Code
    var reason: String
    var description: String { reason }
    init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }
    static func == (a: CLIError, b: CLIError) -> Bool { a.code == b.code }
}
