import CEL
import Foundation

/// `noop@v1`: returns its inputs as its outputs. For wiring workflows and measuring the engine.
public struct NoopAction: WorkflowAction {
    public let manifest: ActionManifest
    public init() {
        var m = ActionManifest(
            name: "noop", version: "1.0.0", description: "Does nothing; its outputs are its inputs.",
            inputSchema: .object([("type", .string("object"))]),
            outputSchema: .object([("type", .string("object"))]))
        m.needsWorkDirectory = false
        manifest = m
    }

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        ActionResult(outputs: inputs)
    }
}

/// `process@v1`: runs any executable under the process runtime; `with:` holds the settings (command, env,
/// passEnv, output, limits) and `input`, the JSON the program receives.
public struct ProcessAction: WorkflowAction {
    public init() {}
    public let manifest = ActionManifest(
        name: "process", version: "1.0.0", runtime: "process",
        description: "Runs a program: inputs as JSON on stdin, outputs as a JSON object on stdout (or $WARDEN_OUTPUTS).",
        inputSchema: .object([
            ("type", .string("object")), ("required", .list([.string("command")])),
            (
                "properties",
                .object([
                    ("command", .object([("type", .list([.string("string"), .string("array")]))])),
                    ("input", .object([])), ("env", .object([("type", .string("object"))])),
                    ("passEnv", .object([("type", .string("array")), ("items", .object([("type", .string("string"))]))])),
                    ("output", .object([("enum", .list([.string("stdout"), .string("file")]))])),
                    ("limits", .object([("type", .string("object"))])),
                ])
            ), ("additionalProperties", .bool(false)),
        ]), outputSchema: .object([("type", .string("object"))]))

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        let runtime = try ProcessRuntime(settings: inputs, baseDirectory: nil)
        return try await runtime.run(input: inputs["input"] ?? .map([]), context: context)
    }
}

/// An action declared by a manifest file whose runtime is `process`: the step's `with:` is the program's input.
public struct ManifestProcessAction: WorkflowAction {
    public let manifest: ActionManifest
    let runtime: ProcessRuntime

    public init(manifest: ActionManifest) throws {
        self.manifest = manifest
        let dir = manifest.file.map { ($0 as NSString).deletingLastPathComponent } ?? "."
        runtime = try ProcessRuntime(settings: manifest.settings, baseDirectory: dir)
    }

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        try await runtime.run(input: inputs, context: context)
    }
}
