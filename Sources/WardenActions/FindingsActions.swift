import CEL
import Findings
import Foundation
import OCIRegistry
import Storage
import WardenApp
import Workflow

/// The compliance plane over the state directory's store, for a step: its changes audited as the run's.
func compliancePlane(stateDirectory: String?) throws -> CompliancePlane {
    let layout = StateLayout(stateDirectory ?? StateLayout.defaultRoot)
    let store = try SQLiteWorkflowStore(path: layout.workflowsDatabase)
    let engine = WorkflowEngine(store: store, catalog: ActionCatalog(), configuration: EngineConfiguration(stateDirectory: layout.root))
    return try CompliancePlane.open(control: ControlPlane(store: store, engine: engine), state: layout)
}

func runCaller(_ context: ActionContext) -> ControlPlane.Caller {
    ControlPlane.Caller(Principal(name: "run:\(context.run)", method: "workflow"))
}

/// What both findings actions output: the recorded scan's outcome.
let scanOutcomeSchema = schema(
    ["artefact", "datasource", "reported", "new", "closed"],
    [("artefact", "string"), ("datasource", "string"), ("reported", "integer"), ("new", "integer"), ("closed", "integer")])

func outcomeValue(_ o: CompliancePlane.ScanOutcome) -> Value {
    .object([
        ("artefact", .string(o.artefact)), ("datasource", .string(o.datasource)), ("reported", .int(Int64(o.reported))),
        ("new", .int(Int64(o.new))), ("closed", .int(Int64(o.closed))),
    ])
}

/// The artefact version an input names (`registry/repository@sha256:…`), or a permanent failure.
func artefactInput(_ inputs: Value, _ name: String) throws -> ArtefactID {
    let text = try inputs.string(name)
    guard case .artefact(let a)? = try? CompliancePlane.Subject(parsing: text) else {
        throw ActionFailure(.permanent, "\(name) \"\(text.prefix(200))\" must be registry/repository@sha256:<64 hex digits>")
    }
    return a
}

/// `findings/scan@v1`: one of the backlog's scanners (`vuln`, `license`, `os-eol`, `malware` with `clamd`) on an
/// artefact version, its complete scan recorded in the state directory's findings — what the server's workers do,
/// as a step.
public struct FindingsScanAction: WorkflowAction {
    let registries: Registries
    let stateDirectory: String?
    public init(registries: Registries, stateDirectory: String? = nil) {
        self.registries = registries
        self.stateDirectory = stateDirectory
    }
    public let manifest = ActionManifest(
        name: "findings/scan", version: "1.0.0",
        description: "Scans an artefact version with one of the compliance scanners and records the complete scan as its findings.",
        inputSchema: schema(["artefact", "scanner"], [("artefact", "string"), ("scanner", "string"), ("clamd", "string")]),
        outputSchema: scanOutcomeSchema)

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        do {
            let artefact = try artefactInput(inputs, "artefact")
            let name = try inputs.string("scanner")
            let scanners: [any ArtefactScanner]
            do {
                scanners = try ArtefactScanners.standard(
                    names: [name], registries: registries, state: StateLayout(stateDirectory ?? StateLayout.defaultRoot),
                    clamd: inputs["clamd"]?.stringValue)
            } catch let e as ControlError { throw ActionFailure(.permanent, e.reason) }
            let result = try await scanners[0].scan(artefact, at: Date())
            let plane = try compliancePlane(stateDirectory: stateDirectory)
            let outcome = try await plane.recordScan(result.scan, info: result.info, caller: runCaller(context))
            for request in result.vex { _ = try await plane.rescoreOnce(request, caller: runCaller(context)) }
            context.log("\(outcome.artefact) \(outcome.datasource): \(outcome.reported) reported (\(outcome.new) new), \(outcome.closed) resolved")
            return ActionResult(outputs: outcomeValue(outcome))
        } catch { throw classify(error) }
    }
}

/// `findings/record@v1`: a complete scan computed by any step (a scanner of your own), recorded as the artefact
/// version's findings of `datasource`: `entries` is a list of `{type, subject, id, score?, summary?}`.
public struct FindingsRecordAction: WorkflowAction {
    let stateDirectory: String?
    public init(stateDirectory: String? = nil) { self.stateDirectory = stateDirectory }
    public let manifest = ActionManifest(
        name: "findings/record", version: "1.0.0",
        description: "Records a complete scan (entries of type, subject, id, score, summary) as an artefact version's findings of a datasource.",
        inputSchema: schema(["artefact", "datasource", "entries"], [("artefact", "string"), ("datasource", "string"), ("entries", "array")]),
        outputSchema: scanOutcomeSchema)

    public func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        do {
            let artefact = try artefactInput(inputs, "artefact")
            guard case .list(let items)? = inputs["entries"] else { throw ActionFailure(.permanent, "entries must be a list") }
            let entries = try items.enumerated().map { i, item -> Scan.Entry in
                guard case .string(let type)? = item["type"], case .string(let subject)? = item["subject"], case .string(let id)? = item["id"] else {
                    throw ActionFailure(.permanent, "entries[\(i)] needs type, subject and id (strings)")
                }
                var score: Double?
                switch item["score"] {
                case .double(let d)?: score = d
                case .int(let n)?: score = Double(n)
                case .uint(let n)?: score = Double(n)
                case nil, .null?: score = nil
                default: throw ActionFailure(.permanent, "entries[\(i)].score must be a number")
                }
                return Scan.Entry(
                    DataKey(type: FindingType(type), subject: subject, id: id), score: score, summary: item["summary"]?.stringValue ?? "")
            }
            let plane = try compliancePlane(stateDirectory: stateDirectory)
            let outcome = try await plane.recordScan(
                Scan(artefact: artefact, datasource: try inputs.string("datasource"), scannedAt: Date(), entries: entries), caller: runCaller(context)
            )
            return ActionResult(outputs: outcomeValue(outcome))
        } catch let e as ControlError {
            throw ActionFailure(.permanent, e.reason)
        } catch { throw classify(error) }
    }
}
