import CEL
import Documents
import Foundation
import Storage
import Workflow

/// How a surface reaches registries, as it was asked to: carried unchanged to a driver started in the background.
public struct RegistrySettings: Sendable, Equatable, Codable {
    public var plainHTTP = false
    public var insecureRegistries: [String] = []
    public var caFile: String?
    public var insecureTokenRealm = false
    public var authfile: String?
    public var verbose = false

    public init(
        plainHTTP: Bool = false, insecureRegistries: [String] = [], caFile: String? = nil, insecureTokenRealm: Bool = false,
        authfile: String? = nil, verbose: Bool = false
    ) {
        self.plainHTTP = plainHTTP
        self.insecureRegistries = insecureRegistries
        self.caFile = caFile
        self.insecureTokenRealm = insecureTokenRealm
        self.authfile = authfile
        self.verbose = verbose
    }

    /// The command-line flags that say the same.
    public var arguments: [String] {
        var a: [String] = []
        if plainHTTP { a.append("--plain-http") }
        for h in insecureRegistries { a += ["--insecure-registry", h] }
        if let caFile { a += ["--ca-file", caFile] }
        if insecureTokenRealm { a.append("--insecure-token-realm") }
        if let authfile { a += ["--authfile", authfile] }
        if verbose { a.append("--verbose") }
        return a
    }
}

/// The runs job: what a detached run's background driver is started with, so that it drives the run exactly as the
/// command that detached it would have (same state, actions, concurrency and registry settings).
public enum RunsJob {
    public static func resumeArguments(run: String, state: String, actions: [String], concurrency: Int, registry: RegistrySettings) -> [String] {
        var args = ["runs", "resume", run, "--state", state, "--concurrency", String(concurrency)]
        for a in actions { args += ["--actions", a] }
        return args + registry.arguments
    }
}

extension RunsJob {
    /// An engine over the state directory `layout` with `catalog`'s actions; the credential slots come from the
    /// environment (`WARDEN_CREDENTIAL_*`). Creates the directory (private) and the database when missing.
    public static func openEngine(
        _ layout: StateLayout, catalog: ActionCatalog, concurrency: Int, environment: [String: String] = ProcessInfo.processInfo.environment,
        observer: (@Sendable (String, [JournalEntry]) -> Void)? = nil
    ) throws -> WorkflowEngine {
        try PrivateFiles.createDirectory(layout.root)
        let store = try SQLiteWorkflowStore(path: layout.workflowsDatabase)
        var config = EngineConfiguration(
            stateDirectory: layout.root, globalConcurrency: concurrency, credentials: WardenEnvironment.credentials(environment))
        config.runConcurrency = min(config.runConcurrency, concurrency)
        return WorkflowEngine(store: store, catalog: catalog, configuration: config, observer: observer)
    }

    /// A run by id or unique id prefix; `notFound` when none matches, `invalid` when the prefix names several.
    public static func resolve(_ id: String, in engine: WorkflowEngine) async throws -> RunRecord {
        if let r = try await engine.store.run(id: id) { return r }
        let matches = try await engine.store.runs(statuses: nil, limit: Int.max).filter { $0.id.hasPrefix(id) }
        guard matches.count == 1 else {
            let where_ = StateLayout(engine.configuration.stateDirectory).workflowsDatabase
            throw matches.isEmpty
                ? WorkflowError(.notFound, "no run \(id) in \(where_)")
                : WorkflowError(.invalid, "\(id) names \(matches.count) runs; give more characters")
        }
        return matches[0]
    }

    /// The live process that drives `record` (`host:pid`), or nil when none does (then `resume` continues it).
    public static func driver(of record: RunRecord) -> String? {
        record.owner.flatMap { EngineConfiguration.ownerIsGone($0) ? nil : $0 }
    }

    /// The view of `record` every surface renders; with its steps when `steps`.
    public static func view(_ record: RunRecord, engine: WorkflowEngine, steps: Bool = true) async throws -> RunView {
        var view = RunView(record)
        if steps {
            let (def, state) = try await engine.state(of: record)
            view.steps = def.steps.compactMap { s in
                state.steps[s.id].map { st in
                    var step = RunView.Step(id: s.id, st)
                    if case .approval(let a) = s.kind {
                        step.approval = RunView.Approval(approvers: a.approvers, required: a.required)
                        if st.status == .waiting { view.waitingForApproval.append(s.id) }
                    }
                    return step
                }
            }
        }
        return view
    }

    /// What a cancellation did.
    public enum CancelOutcome: Sendable {
        /// Recorded; the live driver (`host:pid`) stops the run.
        case requested(driver: String)
        /// Nobody drove the run: it was finished here.
        case finished(RunRecord)
    }

    /// Cancels `record` on behalf of `by`: the request is recorded; a run that no live process drives is finished here.
    public static func cancel(_ record: RunRecord, by: String, engine: WorkflowEngine) async throws -> CancelOutcome {
        try await engine.cancel(record.id, by: by)
        if let driver = driver(of: record) { return .requested(driver: driver) }
        return .finished(try await engine.drive(record.id))
    }
}

/// A run as every surface shows it (`warden runs list|show|resume --output json`, the HTTP API): times in RFC 3339
/// (`RFC3339.encoder`), inputs and outputs as the JSON text the journal keeps.
public struct RunView: Sendable, Codable {
    public var id, workflow, file: String
    public var status: RunStatus
    /// The inputs as a JSON object's text.
    public var inputs: String
    public var outputs, error, idempotencyKey, parent: String?
    /// The live process driving the run (`host:pid`), if any.
    public var driver: String?
    public var createdAt, updatedAt: Date
    public var workspace: String
    public var labels: [String: String]
    /// Approval steps waiting for a decision (with `steps`).
    public var waitingForApproval: [String] = []
    /// The steps in definition order (`runs show`); nil in lists.
    public var steps: [Step]?

    public init(_ r: RunRecord) {
        id = r.id
        workflow = r.workflow
        file = r.file
        status = r.status
        inputs = r.inputs
        outputs = r.outputs
        error = r.error
        idempotencyKey = r.idempotencyKey
        parent = r.parent
        driver = RunsJob.driver(of: r)
        createdAt = r.createdAt
        updatedAt = r.updatedAt
        workspace = r.workspace
        var labels: [String: String] = [:]
        if case .map(let pairs)? = try? Value.parseJSON(r.labels) {
            for (k, v) in pairs { if case .string(let key) = k, case .string(let value) = v { labels[key] = value } }
        }
        self.labels = labels
    }

    /// Who may decide an approval step: the approvers (anyone allowed to approve runs when empty) and how many.
    public struct Approval: Sendable, Codable {
        public var approvers: [String]
        public var required: Int
    }

    public struct Decision: Sendable, Codable {
        public var by, decision: String
        public var comment: String?
        public var at: Date
    }

    public struct Step: Sendable, Codable {
        public var id, status: String
        /// Attempts over all items.
        public var attempts: Int
        /// Items of a `foreach` step.
        public var items: Int?
        public var outputs: JSONValue
        public var error, reason: String?
        public var startedAt, finishedAt: Date?
        public var decisions: [Decision]
        /// Set on approval steps.
        public var approval: Approval?
        /// Output artifacts of its attempts (name and digest; `GET …/runs/{run}/artifacts/{digest}` serves them).
        public var artifacts: [Artifact] = []

        public init(id: String, _ s: RunState.Step) {
            self.id = id
            status = s.status.rawValue
            attempts = s.units.map(\.attempt).reduce(0, +)
            items = s.foreach ? s.units.count : nil
            outputs = JSONValue(s.outputs)
            error = s.error
            reason = s.reason
            startedAt = s.startedAt
            finishedAt = s.finishedAt
            decisions = s.decisions.map { Decision(by: $0.by, decision: $0.decision, comment: $0.comment, at: $0.at) }
            artifacts = s.units.flatMap { $0.artifacts.map { Artifact(name: $0.0, digest: $0.1) } }
        }
    }

    public struct Artifact: Sendable, Codable, Equatable {
        public var name, digest: String
    }
}
