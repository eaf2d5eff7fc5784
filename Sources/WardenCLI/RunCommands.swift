import ArgumentParser
import CEL
import CommandSupport
import Documents
import Foundation
import OCI
import OCIRegistry
import Storage
import Synchronization
import WardenActions
import WardenApp
import Workflow

/// Flags the run commands share: where runs live and which actions exist.
struct EngineOptions: ParsableArguments {
    @Option(name: .long, help: "State directory (workflows.sqlite, run work directories, logs, artifacts); default .warden.")
    var state: String = ".warden"

    @Option(name: .long, help: "Directory of action manifests (DIR/*/action.yaml or DIR/*.yaml); repeatable.")
    var actions: [String] = []

    @Option(name: .long, help: "Attempts in flight at once in this process.")
    var concurrency = 32

    /// The built-in actions and those of the `--actions` directories; reading it creates nothing in the state directory.
    func catalog(_ registries: Registries) throws -> ActionCatalog {
        let callbacks = CallbackServer(endpoint: callbackListener)
        var catalog = ActionCatalog.standard(registries: registries, stateDirectory: state, callbacks: callbacks)
        for dir in actions { try catalog.load(directory: dir, callbacks: callbacks) }
        return catalog
    }

    /// Drives `target` as services (the driver and the callback listener) that stop gracefully on SIGTERM and
    /// SIGINT; an interrupted drive says how to continue and exits 1.
    func drive(_ target: RunDriverService.Target, _ engine: WorkflowEngine, _ global: GlobalOptions) async throws -> [RunRecord] {
        let driver = try await RunsJob.drive(target, engine: engine, listener: callbackListener, logger: global.logger())
        if driver.interrupted {
            let ids: [String]
            if case .runs(let given) = target { ids = given } else { ids = ["--all"] }
            printError(
                "interrupted: the journal has every finished step; warden runs resume \(ids.joined(separator: " ")) --state \(state) continues")
            throw ExitCode(1)
        }
        return driver.finished
    }

    /// Runs `body` with the action catalogue (registries configured from `global`).
    func withCatalog<T>(_ global: GlobalOptions, _ body: (ActionCatalog) async throws -> T) async throws -> T {
        try await withRegistries(global) { registries in try await body(try catalog(registries)) }
    }

    func engine(_ registries: Registries, observer: (@Sendable (String, [JournalEntry]) -> Void)? = nil) throws -> WorkflowEngine {
        try RunsJob.openEngine(StateLayout(state), catalog: try catalog(registries), concurrency: concurrency, observer: observer)
    }

    /// Runs `body` with an engine over the state directory (registries configured from `global`).
    func withEngine<T>(_ global: GlobalOptions, _ body: (WorkflowEngine) async throws -> T) async throws -> T {
        try await withRegistries(global) { registries in try await body(try engine(registries)) }
    }

    /// A run by id or unique id prefix.
    func resolve(_ id: String, _ engine: WorkflowEngine) async throws -> RunRecord { try await RunsJob.resolve(id, in: engine) }
}

/// The http runtime's callback listener of this process (started on first use, closed when the driving ends).
let callbackListener = StandaloneCallbackListener()

/// Shows step states as a run moves: redrawn in place on a terminal, one line per finished step otherwise.
final class RunDisplay: Sendable {
    let tty: Bool
    let state = Mutex<(order: [String], status: [String: String], lines: Int)>(([], [:], 0))

    init(steps: [String], tty: Bool) {
        self.tty = tty
        state.withLock { $0.order = steps }
    }

    func handle(_ entries: [JournalEntry]) {
        var out = ""
        state.withLock { s in
            var changed = false
            for e in entries {
                guard let step = e.step else { continue }
                let data = (try? Value.parseJSON(e.data)) ?? .map([])
                var text: String?
                switch e.type {
                case "step.started": text = "running"
                case "attempt.started": text = "running (attempt \(e.attempt ?? 1)\(e.item.map { $0 > 0 ? ", item \($0)" : "" } ?? ""))"
                case "attempt.finished":
                    if case .string(let st)? = data["status"], st == "retry" { text = "retrying: \(data["error"].flatMap(\.stringValueCLI) ?? "")" }
                case "approval.requested": text = "waiting for approval"
                case "timer.started": text = "waiting (timer)"
                case "step.skipped": text = "skipped"
                case "step.finished":
                    let st = data["status"].flatMap(\.stringValueCLI) ?? "finished"
                    text = st + (data["error"].flatMap(\.stringValueCLI).map { ": \($0)" } ?? "")
                    if !tty { out += "  \(step): \(text!)\n" }
                default: break
                }
                if let text {
                    s.status[step] = text
                    changed = true
                }
            }
            guard tty, changed else { return }
            if s.lines > 0 { out += "\u{1B}[\(s.lines)A" }
            for id in s.order {
                let st = s.status[id] ?? "pending"
                let mark =
                    st.hasPrefix("succeeded")
                    ? "✓" : st.hasPrefix("failed") ? "✗" : st.hasPrefix("skipped") ? "-" : st.hasPrefix("cancelled") ? "⊘" : "…"
                out += "\u{1B}[2K  \(mark) \(id)  \(String(st.prefix(100)))\n"
            }
            s.lines = s.order.count
        }
        if !out.isEmpty { FileHandle.standardError.write(Data(out.utf8)) }
    }
}

extension Value {
    var stringValueCLI: String? { if case .string(let s) = self { s } else { nil } }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a workflow durably (docs/workflows.md): journalled steps, resumable after a crash.",
        discussion: """
            The run is recorded in STATE/workflows.sqlite before anything happens; each transition is committed before \
            it is acted on. If the process stops, `warden runs resume RUN` continues from the last completed step. \
            Exit codes: 0 the run succeeded (or was detached/queued); 1 it failed or was cancelled, or the definition \
            or inputs are invalid.
            """)

    @Argument(help: "Workflow YAML file.") var file: String
    @Option(name: .long, help: "An input NAME=VALUE (typed as declared; lists, maps and any as JSON); repeatable.")
    var input: [String] = []
    @Option(name: .long, help: "A template parameter NAME=VALUE when FILE is a WorkflowTemplate; repeatable.")
    var param: [String] = []
    @Option(name: .long, help: "Runs started with the same key are one run: a second start reports (or continues) the first.")
    var idempotencyKey: String?
    @Flag(name: .long, help: "Start the run in a background process and print its id.")
    var detach = false
    @Flag(name: .long, help: "Record the run without driving it (warden runs resume --all, or a server, drives it).")
    var queue = false
    @OptionGroup var engineOptions: EngineOptions
    @OptionGroup var serverOptions: ServerOptions
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        var text = try readTextFile(file)
        var file = self.file
        do {
            if WorkflowTemplate.isTemplate(text) {
                text = try WorkflowCommand.instantiate(text, file: file, params: param)
                file += " (instantiated)"
            } else if !param.isEmpty {
                throw WorkflowError("--param is for workflow templates; \(file) is not one (use --input)")
            }
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        if let url = serverOptions.url { return try await runOnServer(url, text: text) }
        try await withRegistries(global) { registries in
            let tty = isatty(2) == 1 && global.output == .text && !detach && !queue
            let display = Mutex<RunDisplay?>(nil)
            let engine = try engineOptions.engine(registries) { _, entries in display.withLock { $0 }?.handle(entries) }
            let def: WorkflowDefinition
            var given: [String: Value] = [:]
            do {
                def = try engine.parse(text, file: file)
                for pair in input {
                    guard let eq = pair.firstIndex(of: "=") else { throw WorkflowError("--input \(pair): expected NAME=VALUE") }
                    given[String(pair[..<eq])] = try def.coerce(String(pair[..<eq]), String(pair[pair.index(after: eq)...]))
                }
            } catch {
                printError("error: \(error)")
                throw ExitCode(1)
            }
            display.withLock { $0 = RunDisplay(steps: def.steps.map(\.id), tty: tty) }
            let (record, created) = try await engine.start(file: file, text: text, inputs: given, idempotencyKey: idempotencyKey)
            if !created {
                printError("run \(record.id) already exists for idempotency key \(idempotencyKey ?? "") (\(record.status))")
                if record.finished || RunsJob.driver(of: record) != nil || queue || detach {
                    try report(record, engine)
                    return
                }
            }
            if queue {
                print(record.id)
                return
            }
            if detach {
                try spawnDriver(record.id)
                print(record.id)
                return
            }
            if global.output == .text { printError("run \(record.id) (\(def.name))") }
            let done = try await engineOptions.drive(.runs([record.id]), engine, global)
            try report(done[0], engine)
        }
    }

    func report(_ record: RunRecord, _ engine: WorkflowEngine) throws { try report(RunView(record)) }

    /// The run's end as every source reports it.
    func report(_ view: RunView) throws {
        if global.output == .json {
            print(view.outputs ?? "{}")
        } else {
            print("run \(view.id) \(view.status)\(view.error.map { ": \($0)" } ?? "")")
            if let o = view.outputs, o != "{}" { print("outputs: \(o)") }
        }
        if view.status != .succeeded && view.status.finished { throw ExitCode(1) }
    }

    /// `--server`: the definition is published to the workspace's catalogue (identical content keeps its version),
    /// the run started there with the inputs as text (typed by the server as declared), then watched to its end
    /// unless `--detach`/`--queue` (the server drives it either way).
    func runOnServer(_ url: String, text: String) async throws {
        let client = ServerClient(base: url)
        let base = "/api/v1/workspaces/\(serverOptions.workspace)"
        let entry = try client.decode(
            try await client.send("POST", base + "/workflows", body: Data(text.utf8), contentType: "application/yaml"), as: CatalogEntryView.self)
        var inputs: [(String, Value)] = []
        for pair in input {
            guard let eq = pair.firstIndex(of: "=") else {
                printError("error: --input \(pair): expected NAME=VALUE")
                throw ExitCode(1)
            }
            inputs.append((String(pair[..<eq]), .string(String(pair[pair.index(after: eq)...]))))
        }
        let body = Value.object([("workflow", .string("\(entry.name)@\(entry.version)")), ("inputText", .object(inputs))]).jsonText()
        var view = try await client.post(
            base + "/runs", json: body, headers: idempotencyKey.map { [("Idempotency-Key", $0)] } ?? [], as: RunView.self)
        if queue || detach { return print(view.id) }
        if global.output == .text { printError("run \(view.id) (\(entry.name)@\(entry.version))") }
        var reported = Set<String>()
        while !view.status.finished {
            try await Task.sleep(for: .milliseconds(200))
            view = try await client.get(base + "/runs/\(view.id)", as: RunView.self)
            if global.output == .text {
                for st in view.steps ?? [] where !reported.contains(st.id) && ["succeeded", "failed", "skipped", "cancelled"].contains(st.status) {
                    reported.insert(st.id)
                    printError("  \(st.id) \(st.status)\(st.error.map { ": \($0)" } ?? "")")
                }
                for gate in view.waitingForApproval where reported.insert("waiting:" + gate).inserted {
                    printError("  \(gate) waiting for approval: warden runs approve \(view.id) \(gate) --server \(url)")
                }
            }
        }
        try report(view)
    }

    /// `warden runs resume RUN` in its own session, detached from this terminal; its output goes to the run's
    /// directory.
    func spawnDriver(_ run: String) throws {
        let layout = StateLayout(engineOptions.state)
        try FileManager.default.createDirectory(atPath: layout.runDirectory(run), withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0] : Bundle.main.executablePath!)
        p.arguments = RunsJob.resumeArguments(
            run: run, state: engineOptions.state, actions: engineOptions.actions, concurrency: engineOptions.concurrency,
            registry: global.registrySettings)
        FileManager.default.createFile(atPath: layout.driverLog(run), contents: nil)
        let log = FileHandle(forWritingAtPath: layout.driverLog(run))
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        try p.run()
    }
}

struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs", abstract: "List, inspect, approve, cancel and resume workflow runs.",
        subcommands: [List.self, Show.self, Logs.self, Approve.self, Reject.self, Cancel.self, Resume.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Runs, newest first.")
        @Option(name: .long, help: "Only runs with this status (queued, running, waiting, succeeded, failed, cancelled); repeatable.")
        var status: [String] = []
        @Option(name: .long, help: "At most this many runs.") var limit = 50
        @OptionGroup var engineOptions: EngineOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            if let url = serverOptions.url {
                var path = "/api/v1/workspaces/\(serverOptions.workspace)/runs?limit=\(min(max(limit, 1), 500))"
                if !status.isEmpty { path += "&status=" + status.joined(separator: ",") }
                let page = try await ServerClient(base: url).get(path, as: RunPageView.self)
                return try RunsCommand.render(page.runs, global)
            }
            try await engineOptions.withEngine(global) { engine in
                let runs = try await engine.store.runs(statuses: status.isEmpty ? nil : status.map(RunStatus.init(rawValue:)), limit: limit)
                try RunsCommand.render(runs.map(RunView.init), global)
            }
        }
    }

    /// The runs list as every source renders it (the local state directory or a server).
    static func render(_ runs: [RunView], _ global: GlobalOptions) throws {
        if global.output == .json { return try printJSON(runs) }
        print(
            "RUN".padding(toLength: 18, withPad: " ", startingAt: 0) + "WORKFLOW".padding(toLength: 20, withPad: " ", startingAt: 0)
                + "STATUS     STARTED")
        let f = ISO8601DateFormatter()
        for r in runs {
            print(
                r.id.padding(toLength: 18, withPad: " ", startingAt: 0) + r.workflow.padding(toLength: 20, withPad: " ", startingAt: 0)
                    + r.status.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0) + f.string(from: r.createdAt))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "A run's steps: status, attempts, approvals, outputs and errors.")
        @Argument(help: "Run id (or a unique prefix).") var run: String
        @OptionGroup var engineOptions: EngineOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            if let url = serverOptions.url {
                let view = try await ServerClient(base: url).get("/api/v1/workspaces/\(serverOptions.workspace)/runs/\(run)", as: RunView.self)
                return try RunsCommand.render(view, global)
            }
            try await engineOptions.withEngine(global) { engine in
                let record = try await engineOptions.resolve(run, engine)
                try RunsCommand.render(try await RunsJob.view(record, engine: engine), global)
            }
        }
    }

    /// One run as every source renders it.
    static func render(_ view: RunView, _ global: GlobalOptions) throws {
        if global.output == .json { return try printJSON(view) }
        print("run       \(view.id)")
        print("workflow  \(view.workflow) (\(view.file))")
        print("status    \(view.status)\(view.error.map { ": \($0)" } ?? "")")
        print("inputs    \(view.inputs)")
        if let o = view.outputs { print("outputs   \(o)") }
        if let k = view.idempotencyKey { print("key       \(k)") }
        if let o = view.driver { print("driver    \(o)") }
        if !view.waitingForApproval.isEmpty { print("waiting   for approval of \(view.waitingForApproval.joined(separator: ", "))") }
        print("")
        for st in view.steps ?? [] {
            var line =
                "  \(st.id.padding(toLength: 14, withPad: " ", startingAt: 0)) \(st.status.padding(toLength: 10, withPad: " ", startingAt: 0))"
            if st.attempts > 0 { line += " attempts \(st.attempts)" }
            if let items = st.items { line += " items \(items)" }
            if let a = st.startedAt, let b = st.finishedAt { line += String(format: " %.3fs", b.timeIntervalSince(a)) }
            print(line)
            for d in st.decisions { print("      \(d.decision) by \(d.by)\(d.comment.map { ": \($0)" } ?? "")") }
            if let r = st.reason { print("      \(r)") }
            if let e = st.error { print("      error: \(e)") }
            let outputs = st.outputs.value.jsonText()
            if st.status == "succeeded", !["null", "{}"].contains(outputs) { print("      outputs: \(String(outputs.prefix(300)))") }
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "logs", abstract: "A run's journal, and the logs its attempts wrote.")
        @Argument(help: "Run id (or a unique prefix).") var run: String
        @Option(name: .long, help: "Only this step.") var step: String?
        @OptionGroup var engineOptions: EngineOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            if let url = serverOptions.url { return try await fromServer(url) }
            try await engineOptions.withEngine(global) { engine in
                let record = try await engineOptions.resolve(run, engine)
                let entries = try await engine.store.journal(run: record.id).filter { step == nil || $0.step == step }.map(JournalView.init)
                try show(entries) { e, line in
                    // Streamed: a log of any size costs one buffer.
                    LogLines.read(engine.logFile(run: record.id, step: e.step ?? "", item: e.item ?? 0, attempt: e.attempt ?? 1), line)
                }
            }
        }

        /// The journal in pages and each attempt's log page by page, through the same line splitter.
        func fromServer(_ url: String) async throws {
            let client = ServerClient(base: url)
            let base = "/api/v1/workspaces/\(serverOptions.workspace)/runs/\(run)"
            var entries: [JournalView] = []
            var after: Int64? = 0
            while let a = after {
                let page = try await client.get(base + "/journal?after=\(a)&limit=1000", as: JournalPageView.self)
                entries += page.entries
                after = page.next
            }
            var logs: [String: [LogLine]] = [:]
            for e in entries where e.type == "attempt.finished" && (step == nil || e.step == step) && global.output == .text {
                var splitter = LogLines.Splitter()
                var lines: [LogLine] = []
                var offset = 0
                let path =
                    base + "/logs?step=\(ServerClient.query(e.step ?? ""))&item=\(e.item ?? 0)&attempt=\(e.attempt ?? 1)&limit=\(1 << 20)&offset="
                while true {
                    let page = try await client.get(path + "\(offset)", as: LogPage.self)
                    splitter.feed(Array(page.text.utf8)[...]) { lines.append(LogLine(text: String($0), continuation: $1)) }
                    if page.eof || page.next <= offset { break }
                    offset = page.next
                }
                splitter.finish { lines.append(LogLine(text: String($0), continuation: $1)) }
                logs["\(e.seq)"] = lines
            }
            try show(entries.filter { step == nil || $0.step == step }) { e, line in
                for l in logs["\(e.seq)"] ?? [] { line(Substring(l.text), l.continuation) }
            }
        }

        struct LogLine {
            var text: String
            var continuation: Bool
        }

        /// The journal and the logs as every source renders them.
        func show(_ entries: [JournalView], log: (JournalView, (_ text: Substring, _ continuation: Bool) -> Void) -> Void) throws {
            if global.output == .json {
                // One document: the journal's entries in order.
                return try printJSON(entries)
            }
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            for e in entries {
                var where_ = e.step ?? ""
                if let i = e.item, i > 0 { where_ += "[\(i)]" }
                if let a = e.attempt { where_ += "#\(a)" }
                let data = e.data.value.jsonText(sortedKeys: true)
                print("\(f.string(from: e.at)) \(e.type.padding(toLength: 18, withPad: " ", startingAt: 0)) \(where_) \(data == "{}" ? "" : data)")
                if e.type == "attempt.finished", e.step != nil {
                    log(e) { line, continuation in print(continuation ? "    … \(line)" : "    | \(line)") }
                }
            }
        }
    }

    struct Decision: ParsableArguments {
        @Argument(help: "Run id (or a unique prefix).") var run: String
        @Argument(help: "The approval step.") var step: String
        @Option(
            name: .long, help: "Who decides (must be one of the step's approvers when it lists them); with --server the token's principal decides.")
        var by: String?
        @Option(name: .long, help: "A comment kept with the decision.") var comment: String?
    }

    static func decide(_ d: Decision, approve: Bool, _ engineOptions: EngineOptions, _ server: ServerOptions, _ global: GlobalOptions)
        async throws
    {
        if let url = server.url {
            // The server records the authenticated caller as the decider (--by is for the local state directory).
            let body = Value.object(d.comment.map { [("comment", .string($0))] } ?? []).jsonText()
            let view = try await ServerClient(base: url).post(
                "/api/v1/workspaces/\(server.workspace)/runs/\(d.run)/steps/\(d.step)/\(approve ? "approve" : "reject")", json: body, as: RunView.self
            )
            print("\(approve ? "approved" : "rejected") \(d.step) of run \(view.id) as the token's principal")
            return
        }
        guard let by = d.by else {
            printError("error: --by names who decides (the local state directory has no authenticated caller)")
            throw ExitCode(64)
        }
        try await engineOptions.withEngine(global) { engine in
            let record = try await engineOptions.resolve(d.run, engine)
            do {
                try await engine.decide(record.id, step: d.step, approve: approve, by: by, comment: d.comment)
            } catch let e as WorkflowError {
                printError("error: \(e)")
                throw ExitCode(1)
            }
            print("\(approve ? "approved" : "rejected") \(d.step) of run \(record.id) by \(by)")
            if RunsJob.driver(of: record) == nil { print("no process drives the run now: warden runs resume \(record.id) continues it") }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "approve", abstract: "Approve an approval step that waits.")
        @OptionGroup var decision: Decision
        @OptionGroup var engineOptions: EngineOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws { try await RunsCommand.decide(decision, approve: true, engineOptions, serverOptions, global) }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reject", abstract: "Reject an approval step that waits (the step fails).")
        @OptionGroup var decision: Decision
        @OptionGroup var engineOptions: EngineOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws { try await RunsCommand.decide(decision, approve: false, engineOptions, serverOptions, global) }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cancel",
            abstract: "Cancel a run: the driving process stops its attempts (their process groups get SIGTERM, then SIGKILL).")
        @Argument(help: "Run id (or a unique prefix).") var run: String
        @Option(name: .long, help: "Who cancels.") var by = ProcessInfo.processInfo.environment["USER"] ?? "unknown"
        @OptionGroup var engineOptions: EngineOptions
        @OptionGroup var serverOptions: ServerOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            if let url = serverOptions.url {
                let view = try await ServerClient(base: url).post(
                    "/api/v1/workspaces/\(serverOptions.workspace)/runs/\(run)/cancel", json: "{}", as: RunView.self)
                print("cancellation of run \(view.id) requested; the server stops it")
                return
            }
            try await engineOptions.withEngine(global) { engine in
                let record = try await engineOptions.resolve(run, engine)
                let outcome: RunsJob.CancelOutcome
                do { outcome = try await RunsJob.cancel(record, by: by, engine: engine) } catch let e as WorkflowError {
                    printError("error: \(e)")
                    throw ExitCode(1)
                }
                switch outcome {
                case .requested(let driver): print("cancellation of run \(record.id) requested; \(driver) stops it")
                case .finished(let done): print("run \(record.id) \(done.status)")
                }
            }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "resume",
            abstract: "Drive runs whose process stopped (or queued runs) until they finish: completed steps are not re-run.")
        @Argument(help: "Run ids (or unique prefixes).") var runs: [String] = []
        @Flag(name: .long, help: "Every unfinished run no live process drives.") var all = false
        @OptionGroup var engineOptions: EngineOptions
        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if runs.isEmpty && !all { throw ValidationError("name runs to resume, or --all") }
        }

        func run() async throws {
            try await engineOptions.withEngine(global) { engine in
                var ids: [String] = []
                if !all { for id in runs { ids.append(try await engineOptions.resolve(id, engine).id) } }
                let done = try await engineOptions.drive(all ? .unfinished : .runs(ids), engine, global)
                if global.output == .json {
                    try printJSON(done.map(RunView.init))
                } else {
                    for r in done { print("run \(r.id) \(r.status)\(r.error.map { ": \($0)" } ?? "")") }
                }
                if done.contains(where: { $0.status != "succeeded" }) { throw ExitCode(1) }
            }
        }
    }
}

struct ActionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actions", abstract: "The actions workflows can use: built-in and from manifests (docs/actions.md).",
        subcommands: [List.self, Show.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Name, version, runtime and description of every action.")
        @OptionGroup var engineOptions: EngineOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            try await engineOptions.withCatalog(global) { catalog in
                let manifests = catalog.manifests
                if global.output == .json {
                    print(Value.list(manifests.map(\.json)).jsonText())
                    return
                }
                for m in manifests {
                    print(
                        "\(m.name)@v\(m.major)".padding(toLength: 22, withPad: " ", startingAt: 0)
                            + m.version.padding(toLength: 9, withPad: " ", startingAt: 0)
                            + m.runtime.padding(toLength: 9, withPad: " ", startingAt: 0) + m.description)
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "One action's manifest: schemas, timeout, runtime settings.")
        @Argument(help: "NAME or NAME@vMAJOR.") var name: String
        @OptionGroup var engineOptions: EngineOptions
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            try await engineOptions.withCatalog(global) { catalog in
                let parts = name.split(separator: "@")
                let major = parts.count == 2 ? Int(parts[1].dropFirst()) : nil
                guard let m = catalog.manifests.last(where: { $0.name == parts[0] && (major == nil || $0.major == major) }) else {
                    printError("error: no action \(name); warden actions list shows them")
                    throw ExitCode(1)
                }
                print(m.json.jsonText(sortedKeys: false).prettyJSON)
            }
        }
    }
}

extension String {
    /// JSON text re-indented for people.
    var prettyJSON: String {
        guard let o = try? JSONSerialization.jsonObject(with: Data(utf8), options: [.fragmentsAllowed]),
            let d = try? JSONSerialization.data(withJSONObject: o, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return self }
        return String(decoding: d, as: UTF8.self)
    }
}

/// Engine throughput: `runs` runs of a 3-step workflow started and driven in one process on the SQLite store
/// (journal with synchronous = FULL), `parallel` runs in flight at once.
