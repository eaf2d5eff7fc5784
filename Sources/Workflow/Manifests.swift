import CEL
import Documents
import Foundation

extension ActionCatalog {
    /// Adds the actions of every manifest in `directory`: `DIR/NAME/action.yaml` or `DIR/*.yaml`.
    /// Adds the actions of `directory`'s manifests; http actions receive their callbacks through `callbacks`.
    public mutating func load(directory: String, callbacks: CallbackServer = CallbackServer()) throws {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory) else { throw WorkflowError("\(directory): cannot read the directory") }
        for name in names.sorted() {
            let path = directory + "/" + name
            var isDir: ObjCBool = false
            fm.fileExists(atPath: path, isDirectory: &isDir)
            let file = isDir.boolValue ? path + "/action.yaml" : path
            guard file.hasSuffix(".yaml") || file.hasSuffix(".yml"), fm.fileExists(atPath: file) else { continue }
            add(try Self.action(manifestFile: file, callbacks: callbacks))
        }
    }

    static let manifestKeys = [
        "apiVersion", "kind", "name", "version", "description", "runtime", "timeout", "inputs", "outputs", "process", "http", "wasm",
    ]

    /// Reads one manifest file (docs/actions.md) into an action of its runtime.
    public static func action(manifestFile file: String, callbacks: CallbackServer = CallbackServer()) throws -> any WorkflowAction {
        guard let data = FileManager.default.contents(atPath: file) else { throw WorkflowError("\(file): cannot read the file") }
        let root = try YAMLValue.parse(String(decoding: data, as: UTF8.self), file: file)
        let f = try root.fields(allowed: manifestKeys)
        guard try f["apiVersion"]?.string() == "warden.dev/v1" else { throw (f["apiVersion"] ?? root).error("apiVersion must be warden.dev/v1") }
        guard try f["kind"]?.string() == "Action" else { throw (f["kind"] ?? root).error("kind must be Action") }
        guard let nameValue = f["name"] else { throw root.error("name is missing") }
        let name = try nameValue.string()
        guard let versionValue = f["version"] else { throw root.error("version is missing (semantic version, e.g. 1.0.0)") }
        let version = try versionValue.string()
        let parts = version.split(separator: ".")
        guard parts.count == 3, parts.allSatisfy({ Int($0) != nil }) else {
            throw versionValue.error("version must be MAJOR.MINOR.PATCH, not \"\(version)\"")
        }
        let runtime = try f["runtime"]?.string() ?? "process"
        guard ["process", "http", "wasm"].contains(runtime) else {
            throw f["runtime"]!.error("runtime \"\(runtime)\" is not available (process, http, wasm)")
        }
        guard let settingsValue = f[runtime] else { throw root.error("a \(runtime) action needs a \(runtime): section") }
        let manifest = ActionManifest(
            name: name, version: version, runtime: runtime, description: try f["description"]?.string() ?? "",
            inputSchema: try f["inputs"].map(WorkflowDefinition.literal), outputSchema: try f["outputs"].map(WorkflowDefinition.literal),
            timeout: try f["timeout"].map(WorkflowDefinition.duration), settings: try WorkflowDefinition.literal(settingsValue), file: file)
        do {
            switch runtime {
            case "http": return try HTTPAction(manifest: manifest, callbacks: callbacks)
            case "wasm": return try ManifestWasmAction(manifest: manifest)
            default: return try ManifestProcessAction(manifest: manifest)
            }
        } catch let e as ActionFailure {
            throw settingsValue.error(e.message)
        }
    }
}

extension ActionManifest {
    /// The manifest as JSON (`warden actions show`).
    public var json: Value {
        var fields: [(String, Value)] = [
            ("name", .string(name)), ("version", .string(version)), ("runtime", .string(runtime)), ("description", .string(description)),
        ]
        if let timeout { fields.append(("timeout", .string(timeout.text))) }
        fields.append(("inputs", inputSchema ?? .null))
        fields.append(("outputs", outputSchema ?? .null))
        if case .map(let m) = settings, !m.isEmpty { fields.append((runtime, settings)) }
        if let file { fields.append(("file", .string(file))) }
        return .object(fields)
    }
}
