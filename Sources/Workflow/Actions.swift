import CEL
import Documents
import Foundation

/// Action contract v1 (docs/actions.md). An action receives its inputs as a JSON value and a context; it returns
/// outputs as a JSON object, optional output artifacts, and a status. Failures are classed: `retryable` (exit code
/// 1, and any code but 0 and 2), `permanent` (exit code 2, invalid inputs, outputs that break the declared schema),
/// `timeout`.
public protocol WorkflowAction: Sendable {
    var manifest: ActionManifest { get }
    func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult
}

/// What an attempt knows about itself.
public struct ActionContext: Sendable {
    public var run: String
    public var step: String
    /// The foreach item (0 without foreach).
    public var item: Int
    public var attempt: Int
    /// `RUN/STEP/ATTEMPT` (`RUN/STEP[ITEM]/ATTEMPT` in a foreach): stable across restarts, unique per attempt. An
    /// action that makes a side effect idempotent keys it on this (or on its `RUN/STEP` prefix).
    public var key: String
    /// A private directory, created empty for the attempt and removed after it succeeds.
    public var workDirectory: String
    /// Input artifacts by name: files (read-only copies from the run's artifact store).
    public var artifacts: [String: String]
    /// Secrets by named slot, resolved by the engine from its environment.
    public var credentials: [String: String]
    /// Where the action writes its log (`warden runs logs`).
    public var logFile: String
    /// The workflow file's directory: relative paths in inputs are resolved against it.
    public var baseDirectory: String

    public init(
        run: String, step: String, item: Int, attempt: Int, key: String, workDirectory: String, artifacts: [String: String] = [:],
        credentials: [String: String] = [:], logFile: String, baseDirectory: String
    ) {
        self.run = run
        self.step = step
        self.item = item
        self.attempt = attempt
        self.key = key
        self.workDirectory = workDirectory
        self.artifacts = artifacts
        self.credentials = credentials
        self.logFile = logFile
        self.baseDirectory = baseDirectory
    }

    /// `path` resolved against the workflow's directory unless absolute.
    public func resolve(_ path: String) -> String {
        path.hasPrefix("/") ? path : (baseDirectory as NSString).appendingPathComponent(path)
    }

    /// Appends a line to the attempt's log.
    public func log(_ line: String) {
        guard let h = FileHandle(forWritingAtPath: logFile) ?? createLog() else { return }
        defer { try? h.close() }
        h.seekToEndOfFile()
        h.write(Data((line + "\n").utf8))
    }

    func createLog() -> FileHandle? {
        try? PrivateFiles.createDirectory((logFile as NSString).deletingLastPathComponent)
        // Created readable by the owner only: a log may hold what a program printed about its secrets.
        let fd = open(logFile, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }
}

/// A file an action produced, kept in the run's artifact store by digest.
public struct OutputArtifact: Sendable, Equatable {
    public var name: String
    public var path: String
    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }
}

public struct ActionResult: Sendable {
    public var outputs: Value
    public var artifacts: [OutputArtifact]
    public init(outputs: Value = .map([]), artifacts: [OutputArtifact] = []) {
        self.outputs = outputs
        self.artifacts = artifacts
    }
}

/// A failed attempt, with the class that decides whether it is retried.
public struct ActionFailure: Error, Sendable, CustomStringConvertible {
    public enum Class: String, Sendable, Codable {
        case retryable, permanent, timeout
    }
    public var errorClass: Class
    public var message: String
    public init(_ errorClass: Class, _ message: String) {
        self.errorClass = errorClass
        self.message = message
    }
    public var description: String { "\(errorClass.rawValue): \(message)" }

    /// The class of an action's exit code: 0 success (nil), 2 permanent, anything else retryable.
    public static func forExitCode(_ code: Int32) -> Class? {
        switch code {
        case 0: nil
        case 2: .permanent
        default: .retryable
        }
    }
}

/// What an action is: name, version, runtime, input and output schemas, default timeout. Built-in actions carry
/// one; others are read from `action.yaml` files (`ActionCatalog.load`).
public struct ActionManifest: Sendable {
    public var name: String
    /// Semantic version; workflows name the major (`uses: NAME@v1`).
    public var version: String
    /// `builtin`, `process`, `http` or `wasm`.
    public var runtime: String
    public var description: String
    /// JSON Schema (the subset in docs/actions.md) of the inputs; nil accepts anything.
    public var inputSchema: Value?
    /// JSON Schema of the outputs; outputs that break it are a permanent error.
    public var outputSchema: Value?
    public var timeout: Duration?
    /// Runtime settings (`process:`, `http:`, `wasm:` sections of a manifest file).
    public var settings: Value
    /// The manifest file, for actions read from one.
    public var file: String?
    /// False for actions that never touch the file system: the engine then creates no work directory for them.
    public var needsWorkDirectory = true

    public init(
        name: String, version: String, runtime: String = "builtin", description: String, inputSchema: Value? = nil, outputSchema: Value? = nil,
        timeout: Duration? = nil, settings: Value = .map([]), file: String? = nil
    ) {
        self.name = name
        self.version = version
        self.runtime = runtime
        self.description = description
        self.inputSchema = inputSchema
        self.outputSchema = outputSchema
        self.timeout = timeout
        self.settings = settings
        self.file = file
    }

    public var major: Int { Int(version.split(separator: ".").first ?? "0") ?? 0 }
}

/// The actions a workflow may use, by name and major version.
public struct ActionCatalog: Sendable {
    public private(set) var actions: [String: [Int: any WorkflowAction]] = [:]

    public init(_ actions: [any WorkflowAction] = []) {
        for a in actions { add(a) }
    }

    public mutating func add(_ action: any WorkflowAction) {
        actions[action.manifest.name, default: [:]][action.manifest.major] = action
    }

    public func action(_ name: String, major: Int) -> (any WorkflowAction)? { actions[name]?[major] }

    /// Names and majors, the shape `WorkflowDefinition.parse` checks `uses:` against.
    public var versions: [String: [Int]] { actions.mapValues { $0.keys.sorted() } }

    public var manifests: [ActionManifest] {
        actions.values.flatMap { $0.values.map(\.manifest) }.sorted { ($0.name, $0.major) < ($1.name, $1.major) }
    }
}

// MARK: Schemas

/// Checks `value` against a JSON Schema subset: `type` (one or a list), `properties`, `required`,
/// `additionalProperties` (bool or schema), `items`, `enum`, `const`, `minimum`, `maximum`, `minLength`,
/// `maxLength`, `minItems`, `maxItems`. Returns the first violation as `PATH: problem`, nil when it conforms.
public func schemaViolation(_ value: Value, _ schema: Value, path: String = "$") -> String? {
    guard case .map = schema else { return nil }
    if let t = schema["type"] {
        let names: [String]
        switch t {
        case .string(let s): names = [s]
        case .list(let l): names = l.compactMap { if case .string(let s) = $0 { s } else { nil } }
        default: names = []
        }
        if !names.isEmpty && !names.contains(where: { jsonType(value, is: $0) }) {
            return "\(path): expected \(names.joined(separator: " or ")), got \(jsonTypeName(value))"
        }
    }
    if case .list(let options)? = schema["enum"], !options.contains(where: { $0.jsonText(sortedKeys: true) == value.jsonText(sortedKeys: true) }) {
        return "\(path): \(value.jsonText()) is not one of \(Value.list(options).jsonText())"
    }
    if let c = schema["const"], c.jsonText(sortedKeys: true) != value.jsonText(sortedKeys: true) {
        return "\(path): must be \(c.jsonText())"
    }
    switch value {
    case .map(let entries):
        var present: Set<String> = []
        for (k, v) in entries {
            guard case .string(let key) = k else { continue }
            present.insert(key)
            if let p = schema["properties"]?[key] {
                if let e = schemaViolation(v, p, path: "\(path).\(key)") { return e }
            } else if let extra = schema["additionalProperties"] {
                if case .bool(false) = extra { return "\(path).\(key): not allowed (the schema lists no such property)" }
                if let e = schemaViolation(v, extra, path: "\(path).\(key)") { return e }
            }
        }
        if case .list(let required)? = schema["required"] {
            for case .string(let r) in required where !present.contains(r) { return "\(path): \(r) is required" }
        }
    case .list(let items):
        if let itemSchema = schema["items"] {
            for (i, item) in items.enumerated() { if let e = schemaViolation(item, itemSchema, path: "\(path)[\(i)]") { return e } }
        }
        if let n = schema["minItems"]?.number, Double(items.count) < n { return "\(path): needs at least \(Int(n)) items" }
        if let n = schema["maxItems"]?.number, Double(items.count) > n { return "\(path): allows at most \(Int(n)) items" }
    case .string(let s):
        let count = s.unicodeScalars.count
        if let n = schema["minLength"]?.number, Double(count) < n { return "\(path): shorter than \(Int(n)) characters" }
        if let n = schema["maxLength"]?.number, Double(count) > n { return "\(path): longer than \(Int(n)) characters" }
    default:
        if let x = value.number {
            if let n = schema["minimum"]?.number, x < n { return "\(path): \(value) is less than \(n)" }
            if let n = schema["maximum"]?.number, x > n { return "\(path): \(value) is more than \(n)" }
        }
    }
    return nil
}

func jsonType(_ v: Value, is name: String) -> Bool {
    switch (name, v) {
    case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .list), ("object", .map): true
    case ("integer", .int), ("integer", .uint): true
    case ("integer", .double(let d)): d == d.rounded()
    case ("number", .int), ("number", .uint), ("number", .double): true
    default: false
    }
}

func jsonTypeName(_ v: Value) -> String {
    switch v {
    case .null: "null"
    case .bool: "boolean"
    case .int, .uint: "integer"
    case .double: "number"
    case .list: "array"
    case .map: "object"
    default: "string"
    }
}

extension Value {
    var number: Double? {
        switch self {
        case .int(let i): Double(i)
        case .uint(let u): Double(u)
        case .double(let d): d
        default: nil
        }
    }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }

    public static func object(_ fields: [(String, Value)]) -> Value { .map(fields.map { (.string($0.0), $0.1) }) }
}

/// Schema helpers for the built-in manifests.
public func schema(_ required: [String], _ properties: [(String, String)], additional: Bool = false) -> Value {
    .object([
        ("type", .string("object")), ("required", .list(required.map(Value.string))),
        ("properties", .object(properties.map { ($0.0, $0.1 == "any" ? Value.object([]) : .object([("type", .string($0.1))])) })),
        ("additionalProperties", .bool(additional)),
    ])
}
