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

/// An attempt's log as the API lists it.
public struct LogView: Sendable, Codable {
    public var step: String
    public var item, attempt, bytes: Int
}

/// A slice of an attempt's log: bytes `offset..<next` as text, ending on a character boundary (so pages joined
/// give the log's text), and whether the log ends there.
public struct LogPage: Sendable, Codable {
    public var step: String
    public var item, attempt, offset, next: Int
    public var eof: Bool
    public var text: String
}

/// One journal entry as the API's event stream and journal pages show it.
public struct JournalView: Sendable, Codable {
    public var seq: Int64
    public var type: String
    public var step: String?
    public var item, attempt: Int?
    public var at: Date
    public var data: JSONValue
    public init(_ e: JournalEntry) {
        seq = e.seq ?? 0
        type = e.type.rawValue
        step = e.step
        item = e.item
        attempt = e.attempt
        at = e.at
        data = JSONValue((try? Value.parseJSON(e.data)) ?? .null)
    }

    enum CodingKeys: String, CodingKey { case seq, type, step, item, attempt, at, data }

    /// Every key present, `null` where the entry has no step, item or attempt.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(seq, forKey: .seq)
        try c.encode(type, forKey: .type)
        try c.encode(step, forKey: .step)
        try c.encode(item, forKey: .item)
        try c.encode(attempt, forKey: .attempt)
        try c.encode(at, forKey: .at)
        try c.encode(data, forKey: .data)
    }
}

extension RunsJob {
    /// The logs a run's attempts wrote, in definition order.
    public static func logs(_ record: RunRecord, engine: WorkflowEngine) async throws -> [LogView] {
        let (def, state) = try await engine.state(of: record)
        var out: [LogView] = []
        for s in def.steps {
            guard let st = state.steps[s.id] else { continue }
            for (i, u) in st.units.enumerated() where u.attempt > 0 {
                for a in 1...u.attempt {
                    let file = engine.logFile(run: record.id, step: s.id, item: i, attempt: a)
                    if let size = (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int {
                        out.append(LogView(step: s.id, item: i, attempt: a, bytes: size))
                    }
                }
            }
        }
        return out
    }

    /// At most `limit` bytes of one attempt's log from `offset`, cut back to the last whole UTF-8 character.
    public static func logPage(
        _ record: RunRecord, engine: WorkflowEngine, step: String, item: Int, attempt: Int, offset: Int, limit: Int
    ) async throws -> LogPage {
        let (def, _) = try await engine.state(of: record)
        guard def.steps.contains(where: { $0.id == step }) else {
            throw ControlError(.notFound, "run \(record.id) has no step \"\(step.prefix(80))\"")
        }
        guard item >= 0, attempt >= 1, offset >= 0, (4...(1 << 20)).contains(limit) else {
            throw ControlError(.invalid, "item ≥ 0, attempt ≥ 1, offset ≥ 0 and limit 4 to 1048576 are numbers")
        }
        let file = engine.logFile(run: record.id, step: step, item: item, attempt: attempt)
        guard let handle = FileHandle(forReadingAtPath: file) else {
            throw ControlError(.notFound, "no log for step \(step) item \(item) attempt \(attempt) of run \(record.id)")
        }
        defer { try? handle.close() }
        let size = Int((try? handle.seekToEnd()) ?? 0)
        let from = min(offset, size)
        try handle.seek(toOffset: UInt64(from))
        var data = [UInt8](try handle.read(upToCount: limit) ?? Data())
        if from + data.count < size { data.removeLast(incompleteTail(data)) }
        let next = from + data.count
        return LogPage(
            step: step, item: item, attempt: attempt, offset: offset, next: next, eof: next >= size, text: String(decoding: data, as: UTF8.self))
    }

    /// How many bytes at the end of `bytes` begin a UTF-8 character they do not finish (0 to 3).
    static func incompleteTail(_ bytes: [UInt8]) -> Int {
        for back in 1...min(3, bytes.count) {
            let b = bytes[bytes.count - back]
            if b & 0xC0 == 0x80 { continue }  // a continuation byte: look further back
            let length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
            return length > back ? back : 0
        }
        return 0
    }
}
