import CEL
import Yams

/// A CEL expression read from a YAML document, which remembers where it was written so that parse errors,
/// evaluation errors and non-boolean results name the file, line and column.
public struct CELCondition: Sendable {
    public let source: String
    public let program: Program
    /// `file:line:col` of the scalar holding the expression.
    public let position: String
    let file: String
    let line: Int
    let column: Int
    /// Where the expression's first character sits (after an opening quote); nil for block scalars, whose
    /// indentation hides the exact column.
    let start: (line: Int, column: Int)?

    /// Reads the scalar `value` as a CEL expression. With `boolean`, an expression whose type is evident and not
    /// bool (`'yes'`, `size(x)`, `1 + 2`) is refused here; other types are caught when the condition runs.
    public init(_ value: YAMLValue, boolean: Bool = true) throws {
        try self.init(expression: try value.string(), in: value, offset: 0, boolean: boolean)
    }

    /// An expression written inside the scalar `value`, starting `offset` characters into it (a placeholder in a
    /// message template).
    public init(expression: String, in value: YAMLValue, offset: Int, boolean: Bool) throws {
        source = expression
        position = value.position
        file = value.file
        line = value.node.mark?.line ?? 1
        column = value.node.mark?.column ?? 1
        let before = Array(((try? value.string()) ?? "").unicodeScalars.prefix(offset))
        switch value.node.scalar?.style {
        case _ where before.contains("\n"): start = nil
        case .plain?: start = (line, column + offset)
        case .singleQuoted?, .doubleQuoted?: start = (line, column + 1 + offset)
        default: start = nil
        }
        do {
            program = try Program(source)
        } catch let e as CELError {
            throw YAMLError(
                position: Self.locate(e, file: file, line: line, column: column, start: start), message: "invalid CEL: \(Self.detail(e))",
                code: .condition)
        }
        if boolean, let t = program.expr.evidentType, t != "bool" {
            throw value.error("the condition must be a bool, but `\(source)` is \(t == "null_type" ? "null" : t)")
        }
    }

    /// `file:line:col` of an error inside the expression.
    public func position(of error: CELError) -> String {
        Self.locate(error, file: file, line: line, column: column, start: start)
    }

    static func locate(_ e: CELError, file: String, line: Int, column: Int, start: (line: Int, column: Int)?) -> String {
        guard let p = e.position else { return "\(file):\(line):\(column)" }
        guard let start, p.line == 1 else { return "\(file):\(line):\(column) (expression \(p.line):\(p.column))" }
        return "\(file):\(start.line):\(start.column + p.column - 1)"
    }

    /// The message with the caret line, without the expression-relative position.
    static func detail(_ e: CELError) -> String {
        e.snippet.map { e.message + "\n" + $0 } ?? e.message
    }

    /// Evaluates to a bool; anything else (an error, another type) is described with the position.
    public func test(_ bindings: [String: Value], costLimit: Int = 1_000_000, timeLimit: Duration? = .seconds(1)) -> Result<Bool, YAMLError> {
        do {
            let v = try program.evaluate(bindings, costLimit: costLimit, timeLimit: timeLimit, timeZones: TimeZones.iana)
            guard case .bool(let b) = v else {
                return .failure(YAMLError(position: position, message: "the condition `\(source)` yielded \(v.typeName), not bool", code: .condition))
            }
            return .success(b)
        } catch let e as CELError {
            return .failure(YAMLError(position: position(of: e), message: "`\(source)`: \(Self.detail(e))", code: .condition))
        } catch {
            return .failure(YAMLError(position: position, message: "`\(source)`: \(error)", code: .condition))
        }
    }

    /// Evaluates to any value (message templates), with the same error positions.
    public func value(_ bindings: [String: Value], costLimit: Int = 1_000_000, timeLimit: Duration? = .seconds(1)) -> Result<Value, YAMLError> {
        do {
            return .success(try program.evaluate(bindings, costLimit: costLimit, timeLimit: timeLimit, timeZones: TimeZones.iana))
        } catch let e as CELError {
            return .failure(YAMLError(position: position(of: e), message: "`\(source)`: \(Self.detail(e))", code: .condition))
        } catch {
            return .failure(YAMLError(position: position, message: "`\(source)`: \(error)", code: .condition))
        }
    }
}
