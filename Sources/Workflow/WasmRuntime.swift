import CEL
import Foundation
import Synchronization
import WASI
// The store's resource limiter is public but behind WasmKit's `Fuzzing` SPI in 0.4.2 (marked "consider making this
// public"); it is the engine's only hook to cap linear-memory growth.
@_spi(Fuzzing) import WasmKit
import WasmKitWASI

#if canImport(Glibc)
    import Glibc
#endif

/// The `wasm` runtime: a WASI command module (`_start`) run by WasmKit, inputs on stdin, outputs on stdout, stderr
/// into the attempt's log; no file system, no environment but the attempt context. Limits: linear memory (growth
/// beyond is refused) and fuel (about one unit per WebAssembly operator; running out is a permanent failure).
/// Exit codes follow the contract: 0 success, 2 permanent, others retryable; a trap is permanent (the same input
/// traps again).
public struct WasmRuntime: Sendable {
    public var module: String
    public var memory: Int
    public var fuel: UInt64

    public static let defaultMemory = 64 << 20
    public static let defaultFuel: UInt64 = 1_000_000_000

    /// Settings from `with:` (`wasm@v1`) or a manifest's `wasm:` section: `module` (a .wasm file), `memory`
    /// (bytes or 64Mi), `fuel`.
    public init(settings: CEL.Value, baseDirectory: String?) throws {
        guard case .string(let m)? = settings["module"] else { throw ActionFailure(.permanent, "module is missing: the .wasm file to run") }
        module = m.hasPrefix("/") || baseDirectory == nil ? m : (baseDirectory! as NSString).appendingPathComponent(m)
        memory = try ProcessLimits.parse(.object([("memory", settings["memory"] ?? .int(Int64(Self.defaultMemory)))])).memory ?? Self.defaultMemory
        switch settings["fuel"] {
        case nil: fuel = Self.defaultFuel
        case .int(let n)? where n > 0: fuel = UInt64(n)
        default: throw ActionFailure(.permanent, "fuel must be a positive integer")
        }
    }

    public func run(input: CEL.Value, context: ActionContext) async throws -> ActionResult {
        let path = module.hasPrefix("/") ? module : context.resolve(module)
        let bytes: [UInt8]
        do { bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw ActionFailure(.permanent, "\(path): cannot read the module")
        }
        try FileManager.default.createDirectory(atPath: context.workDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: (context.logFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let inputsFile = context.workDirectory + "/inputs.json"
        let outputsFile = context.workDirectory + "/stdout"
        try Data(input.jsonText().utf8).write(to: URL(fileURLWithPath: inputsFile))
        let stdin = open(inputsFile, O_RDONLY)
        let stdout = open(outputsFile, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let stderr = open(context.logFile, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        defer { [stdin, stdout, stderr].forEach { _ = close($0) } }
        guard stdin >= 0, stdout >= 0, stderr >= 0 else { throw ActionFailure(.retryable, "cannot open the module's standard streams") }
        let environment = [
            "WARDEN_RUN": context.run, "WARDEN_STEP": context.step, "WARDEN_ITEM": String(context.item), "WARDEN_ATTEMPT": String(context.attempt),
            "WARDEN_ATTEMPT_KEY": context.key,
        ]
        let name = (path as NSString).lastPathComponent
        let (memory, fuel) = (self.memory, self.fuel)
        // WasmKit runs synchronously: a thread of its own keeps the task pool free.
        let exit: Result<UInt32, ActionFailure> = await withCheckedContinuation { c in
            Thread.detachNewThread {
                c.resume(returning: Self.execute(bytes, name: name, env: environment, stdio: (stdin, stdout, stderr), memory: memory, fuel: fuel))
            }
        }
        let code = try exit.get()
        if let cls = ActionFailure.forExitCode(Int32(bitPattern: code)) {
            throw ActionFailure(cls, "\(name) exited with code \(code)")
        }
        return try result(
            from: String(decoding: FileManager.default.contents(atPath: outputsFile) ?? Data(), as: UTF8.self), what: "the outputs of \(name)")
    }

    static func execute(
        _ bytes: [UInt8], name: String, env: [String: String], stdio: (CInt, CInt, CInt), memory: Int, fuel: UInt64
    ) -> Result<UInt32, ActionFailure> {
        do {
            let module = try parseWasm(bytes: bytes)
            let engine = Engine(configuration: WasmKit.EngineConfiguration(fuelMetering: true))
            let store = Store(engine: engine)
            store.fuel = Fuel(remaining: fuel)
            store.resourceLimiter = MemoryCap(bytes: memory)
            let wasi = try WASIBridgeToHost(args: [name], environment: env, preopens: [], stdin: stdio.0, stdout: stdio.1, stderr: stdio.2)
            let code = try wasi.runAndClose { wasi -> UInt32 in
                var imports = Imports()
                wasi.link(to: &imports, store: store)
                let instance = try module.instantiate(store: store, imports: imports)
                return try wasi.start(instance)
            }
            return .success(code)
        } catch let e as WASIExitCode {
            return .success(e.code)
        } catch {
            let text = "\(error)"
            if text.lowercased().contains("fuel") { return .failure(ActionFailure(.permanent, "\(name) ran out of fuel (\(fuel) units)")) }
            return .failure(ActionFailure(.permanent, "\(name): \(text)"))
        }
    }
}

/// Refuses linear-memory growth past a byte count.
final class MemoryCap: ResourceLimiter {
    let bytes: Int
    init(bytes: Int) { self.bytes = bytes }
    func limitMemoryGrowth(to desired: Int) throws -> Bool { desired <= bytes }
    func limitTableGrowth(to desired: Int) throws -> Bool { desired <= 1_000_000 }
}

/// `wasm@v1`: runs a WASI module under the wasm runtime; `with:` holds `module`, `memory`, `fuel` and `input`.
public struct WasmAction: WorkflowAction {
    public init() {}
    public let manifest = ActionManifest(
        name: "wasm", version: "1.0.0", runtime: "wasm",
        description: "Runs a WASI module (WasmKit): inputs on stdin, outputs as a JSON object on stdout; memory and fuel limits.",
        inputSchema: schema(["module"], [("module", "string"), ("input", "any"), ("memory", "any"), ("fuel", "integer")]),
        outputSchema: .object([("type", .string("object"))]))

    public func run(_ inputs: CEL.Value, context: ActionContext) async throws -> ActionResult {
        try await WasmRuntime(settings: inputs, baseDirectory: nil).run(input: inputs["input"] ?? .map([]), context: context)
    }
}

/// An action declared by a manifest whose runtime is `wasm`: the step's `with:` is the module's input.
public struct ManifestWasmAction: WorkflowAction {
    public let manifest: ActionManifest
    let runtime: WasmRuntime
    public init(manifest: ActionManifest) throws {
        self.manifest = manifest
        runtime = try WasmRuntime(settings: manifest.settings, baseDirectory: manifest.file.map { ($0 as NSString).deletingLastPathComponent })
    }
    public func run(_ inputs: CEL.Value, context: ActionContext) async throws -> ActionResult {
        try await runtime.run(input: inputs, context: context)
    }
}
