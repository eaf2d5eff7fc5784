import CEL
import Crypto
import Documents
import Foundation
import Storage
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Drives one run: decides what happens next from the run's state, commits those transitions to the journal, and
/// only then acts on them (starts attempts, arms timers). Not shared between tasks: one driver, one loop.
final class RunDriver {
    let engine: WorkflowEngine
    let record: RunRecord
    let def: WorkflowDefinition
    var state: RunState
    let mailbox = Mailbox()
    let inputs: Value
    let baseDirectory: String
    /// Entries decided in this turn of the loop, not yet committed.
    var pending: [JournalEntry] = []
    var consumed: [Int64] = []
    /// Credential hand-outs to audit with the next commit.
    var credentialReads: [AuditEvent] = []
    var launches: [Launch] = []
    var tasks: [String: Task<Void, Never>] = [:]
    /// The next signal poll, on the real clock.
    var pollTick: (task: Task<Void, Never>, at: ContinuousClock.Instant)?
    /// The nearest deadline (retry, approval timeout, timer), on the engine's clock; `fired` once it posted.
    var deadlineTick: (task: Task<Void, Never>, at: Date, fired: Fired)?
    var lastPoll = ContinuousClock.now
    var lastSummary: RunStatus
    /// When each step's last unit completed in this process (for the latency measurement).
    var completedAt: [String: ContinuousClock.Instant] = [:]
    /// The time the run's transitions are decided and journalled by.
    var clock: any EngineClock { engine.configuration.clock }

    struct Launch: Sendable {
        var step: WorkflowDefinition.Step
        var item: Int
        var attempt: Int
        var inputs: Value
        var artifacts: [String: String]
        var credentials: [String: String]
    }

    init(engine: WorkflowEngine, record: RunRecord, definition: WorkflowDefinition) {
        self.engine = engine
        self.record = record
        self.def = definition
        self.state = RunState(stepIDs: definition.steps.map(\.id))
        self.inputs = (try? Value.parseJSON(record.inputs)) ?? .map([])
        self.baseDirectory = (record.file as NSString).deletingLastPathComponent.isEmpty ? "." : (record.file as NSString).deletingLastPathComponent
        self.lastSummary = record.status
    }

    /// Why `value` cannot be journalled (its JSON is larger than the limit), or nil.
    func oversized(_ value: Value, _ what: String) -> String? {
        let limit = engine.configuration.journalValueLimit
        let size = value.jsonText().utf8.count
        guard size > limit else { return nil }
        return "\(what) are \(size) bytes of JSON, more than the journal keeps (\(limit) bytes): write large results as output artifacts"
    }

    func record(_ type: EntryKind, step: String? = nil, item: Int? = nil, attempt: Int? = nil, _ data: [(String, Value)] = []) {
        let e = JournalEntry(
            run: record.id, type: type, step: step, item: item, attempt: attempt, data: Value.object(data).jsonText(), at: clock.now())
        state.apply(e)
        pending.append(e)
    }

    func drive() async throws {
        state = RunState.replay(try await engine.store.journal(run: record.id), stepIDs: def.steps.map(\.id))
        if state.finished != nil { return }
        // Attempts that were in flight when the last driver stopped: retried under a new attempt number.
        let crashed = record.owner.map { CrashTrace.crashed(stateDirectory: engine.configuration.stateDirectory, owner: $0) } ?? false
        for id in state.order {
            for (i, u) in (state.steps[id]?.units ?? []).enumerated() where u.inFlight {
                let reason = crashed ? "the process driving the run crashed" : "the process driving the run stopped"
                record("attempt.interrupted", step: id, item: i, attempt: u.attempt, [("reason", .string(reason)), ("crashed", .bool(crashed))])
                let limit = engine.configuration.interruptionLimit
                if crashed, u.interruptions + 1 >= limit {
                    // Started again and again, and each time its driver crashed: most likely the action itself
                    // brings the process down. The unit fails with the reason instead of crashing the next driver.
                    record(
                        "attempt.finished", step: id, item: i, attempt: u.attempt,
                        [
                            ("status", .string("failed")), ("class", .string("permanent")),
                            (
                                "error",
                                .string("the process driving the run crashed during \(limit) attempts of this step in a row; not started again")
                            ),
                        ])
                }
            }
        }
        try await pollSignals()
        defer {
            for t in tasks.values { t.cancel() }
            pollTick?.task.cancel()
            deadlineTick?.task.cancel()
        }
        while true {
            if state.cancelled {
                cancelEverything()
            } else {
                plan()
            }
            do { try await commit() } catch {
                // Nothing was started: the slots taken for these attempts go back.
                for _ in launches { engine.limiter.release() }
                throw error
            }
            for l in launches { launch(l) }
            launches = []
            if state.finished != nil { return }
            schedule()
            let mailbox = self.mailbox
            let events = await withTaskCancellationHandler {
                await mailbox.take()
            } onCancel: {
                mailbox.post(.tick)
            }
            // The driving task was cancelled (the process shuts down): stop here; the journal has everything.
            try Task.checkCancellation()
            for event in events {
                switch event {
                case .completed(let c): complete(c)
                case .tick: break
                }
            }
            if ContinuousClock.now - lastPoll >= engine.configuration.pollInterval { try await pollSignals() }
        }
    }

    func commit() async throws {
        guard !pending.isEmpty || !consumed.isEmpty || !credentialReads.isEmpty else { return }
        let summary = RunStatus(rawValue: state.summary)
        var update: RunUpdate?
        if summary != lastSummary || state.finished != nil {
            update = RunUpdate(
                status: summary, outputs: state.finished != nil ? state.outputs.jsonText(sortedKeys: true) : nil, error: state.error)
        }
        let entries = pending
        try await engine.store.append(run: record.id, entries, update: update, consumed: consumed, audit: credentialReads)
        credentialReads = []
        engine.stats.state.withLock { $0.entries += entries.count }
        lastSummary = summary
        pending = []
        consumed = []
        engine.observer?(record.id, entries)
    }

    /// Turns signals from other processes into journal entries (committed with the next transitions).
    func pollSignals() async throws {
        lastPoll = .now
        for s in try await engine.store.pendingSignals(run: record.id) {
            consumed.append(s.id ?? 0)
            switch s.kind {
            case "cancel":
                if !state.cancelled { record("run.cancelled", [("by", .string(s.by ?? "unknown"))]) }
            case "approve", "reject":
                guard let step = s.step, state.steps[step]?.status == .waiting else { continue }
                var data: [(String, Value)] = [("by", .string(s.by ?? "")), ("decision", .string(s.kind == "approve" ? "approved" : "rejected"))]
                if let c = s.comment { data.append(("comment", .string(c))) }
                record("approval.decided", step: step, data)
            default: break
            }
        }
    }

    func cancelEverything() {
        guard state.finished == nil else { return }
        for t in tasks.values { t.cancel() }
        tasks = [:]
        for id in state.order where !(state.steps[id]?.status.terminal ?? true) {
            if state.steps[id]?.status != .pending {
                record("step.finished", step: id, [("status", .string("cancelled")), ("error", .string("the run was cancelled"))])
            }
        }
        record(
            "run.finished",
            [("status", .string("cancelled")), ("error", .string("cancelled by \(state.cancelledBy ?? "unknown")")), ("outputs", .map([]))])
    }

    // MARK: Deciding

    var bindings: [String: Value] {
        ["inputs": inputs, "steps": .object(def.steps.map { ($0.id, state.binding($0.id)) })]
    }

    /// A step failed without continueOnError: no new step starts, and the run fails once nothing is in flight.
    var stopping: Bool {
        def.steps.contains { s in state.steps[s.id]?.status == .failed && !s.continueOnError }
    }

    func plan() {
        let now = clock.now()
        var inFlight = state.steps.values.reduce(0) { $0 + $1.units.filter(\.inFlight).count }
        for step in def.steps {
            guard let st = state.steps[step.id] else { continue }
            switch st.status {
            case .pending:
                if stopping { continue }
                let deps = def.dependencies(of: step)
                guard deps.allSatisfy({ state.steps[$0]?.status.terminal ?? true }) else { continue }
                startStep(step)
                if state.steps[step.id]?.status == .running { fallthrough }
            case .running:
                if stopping, let st = state.steps[step.id], !st.units.contains(where: \.inFlight) {
                    if !st.units.allSatisfy({ $0.status.terminal }) {
                        record("step.finished", step: step.id, [("status", .string("cancelled")), ("error", .string("another step failed"))])
                        continue
                    }
                }
                inFlight += launchUnits(step, now: now, inFlight: inFlight)
                finishStepIfDone(step)
            case .waiting:
                if stopping {
                    record("step.finished", step: step.id, [("status", .string("cancelled")), ("error", .string("another step failed"))])
                    continue
                }
                decideWaiting(step, now: now)
            default: break
            }
        }
        finishRunIfDone()
    }

    func startStep(_ step: WorkflowDefinition.Step) {
        let b = bindings
        if let cond = step.condition {
            switch cond.test(b) {
            case .success(false):
                record("step.skipped", step: step.id, [("reason", .string("if: \(cond.source) is false"))])
                return
            case .failure(let e):
                record("step.started", step: step.id)
                record("step.finished", step: step.id, [("status", .string("failed")), ("error", .string("\(e)"))])
                return
            case .success(true): break
            }
        }
        switch step.kind {
        case .action, .workflow:
            if let fe = step.foreach {
                switch fe.value(b) {
                case .success(.list(let items)):
                    record("step.started", step: step.id, [("items", .int(Int64(items.count)))])
                case .success(let v):
                    record("step.started", step: step.id)
                    record(
                        "step.finished", step: step.id,
                        [("status", .string("failed")), ("error", .string("\(fe.position): foreach: `\(fe.source)` is \(v.typeName), not a list"))])
                case .failure(let e):
                    record("step.started", step: step.id)
                    record("step.finished", step: step.id, [("status", .string("failed")), ("error", .string("\(e)"))])
                }
            } else {
                record("step.started", step: step.id)
            }
        case .approval(let a):
            record("step.started", step: step.id)
            var data: [(String, Value)] = [("approvers", .list(a.approvers.map(Value.string))), ("required", .int(Int64(a.required)))]
            if let t = a.timeout { data.append(("deadline", .double(clock.now().addingTimeInterval(t.seconds).timeIntervalSince1970))) }
            record("approval.requested", step: step.id, data)
        case .wait(let d):
            record("step.started", step: step.id)
            record("timer.started", step: step.id, [("deadline", .double(clock.now().addingTimeInterval(d.seconds).timeIntervalSince1970))])
        }
    }

    /// Starts attempts for units that are due, within the step's, the run's and (later) the process's limits;
    /// returns how many started.
    func launchUnits(_ step: WorkflowDefinition.Step, now: Date, inFlight: Int) -> Int {
        guard let st = state.steps[step.id], !stopping else { return 0 }
        var started = 0
        var stepInFlight = st.units.filter(\.inFlight).count
        let limit = st.foreach ? step.concurrency : 1
        for (i, u) in st.units.enumerated() where !u.status.terminal && !u.inFlight {
            guard stepInFlight < limit, inFlight + started < engine.configuration.runConcurrency else { break }
            if let due = u.retryAt, due > now { continue }
            var b = bindings
            if st.foreach, case .success(.list(let items))? = step.foreach?.value(b), i < items.count {
                b["item"] = items[i]
                b["index"] = .int(Int64(i))
            }
            b["iteration"] = .int(Int64(u.iteration))
            b["outputs"] = u.outputs
            let attempt = u.attempt + 1
            switch evaluateArguments(step, b) {
            case .failure(let message):
                record("attempt.started", step: step.id, item: i, attempt: attempt)
                record(
                    "attempt.finished", step: step.id, item: i, attempt: attempt,
                    [("status", .string("failed")), ("class", .string("permanent")), ("error", .string(message.description))])
            case .success(let (inputs, artifacts, credentials)):
                guard engine.limiter.tryAcquire(waker: mailbox) else { return started }
                record("attempt.started", step: step.id, item: i, attempt: attempt, [("key", .string(key(step.id, i, attempt, st.foreach)))])
                // The secrets this attempt is handed are audited with its start (same transaction, before it runs).
                for slot in credentials.keys.sorted() {
                    let details: Value = .object([
                        ("run", .string(record.id)), ("step", .string(step.id)), ("item", .int(Int64(i))), ("attempt", .int(Int64(attempt))),
                    ])
                    credentialReads.append(
                        AuditEvent(
                            at: clock.now(), actor: "run/\(record.id)", action: "credential.read", subject: "credential/\(slot)",
                            workspace: record.workspace, details: details.jsonText(sortedKeys: true)))
                }
                launches.append(Launch(step: step, item: i, attempt: attempt, inputs: inputs, artifacts: artifacts, credentials: credentials))
                started += 1
                stepInFlight += 1
            }
        }
        return started
    }

    func key(_ step: String, _ item: Int, _ attempt: Int, _ foreach: Bool) -> String {
        foreach ? "\(record.id)/\(step)[\(item)]/\(attempt)" : "\(record.id)/\(step)/\(attempt)"
    }

    /// The step's `with:` as the action's inputs; `artifacts` (name → digest) and `credentials` (slot names) are
    /// taken out for the context.
    func evaluateArguments(_ step: WorkflowDefinition.Step, _ b: [String: Value]) -> Result<
        (Value, [String: String], [String: String]), WorkflowError
    > {
        var fields: [(String, Value)] = []
        var artifacts: [String: String] = [:]
        var credentials: [String: String] = [:]
        for (name, arg) in step.with {
            let v: Value
            switch arg.evaluate(b) {
            case .success(let x): v = x
            case .failure(let err): return .failure(WorkflowError("with.\(name): \(err)"))
            }
            if name == "artifacts", case .map(let entries) = v, step.isExternal {
                for (k, d) in entries {
                    guard case .string(let kk) = k, case .string(let dd) = d else {
                        return .failure(WorkflowError("with.artifacts: name → digest strings"))
                    }
                    artifacts[kk] = dd
                }
                continue
            }
            if name == "credentials", case .list(let slots) = v, step.isExternal {
                for case .string(let slot) in slots {
                    guard let secret = engine.configuration.credentials[slot] else {
                        return .failure(
                            WorkflowError("with.credentials: no secret for slot \"\(slot)\" (set WARDEN_CREDENTIAL_\(slot.uppercased()))"))
                    }
                    credentials[slot] = secret
                }
                continue
            }
            fields.append((name, v))
        }
        return .success((.object(fields), artifacts, credentials))
    }

    func decideWaiting(_ step: WorkflowDefinition.Step, now: Date) {
        guard let st = state.steps[step.id] else { return }
        switch step.kind {
        case .approval(let a):
            if let reject = st.decisions.first(where: { $0.decision == "rejected" }) {
                record(
                    "step.finished", step: step.id,
                    [
                        ("status", .string("failed")), ("error", .string("rejected by \(reject.by)\(reject.comment.map { ": \($0)" } ?? "")")),
                        ("outputs", decisionOutputs("rejected", st, timedOut: false)),
                    ])
                return
            }
            let approvers = Set(st.decisions.filter { $0.decision == "approved" }.map(\.by))
            if approvers.count >= a.required {
                record(
                    "step.finished", step: step.id, [("status", .string("succeeded")), ("outputs", decisionOutputs("approved", st, timedOut: false))])
                return
            }
            if let deadline = st.deadline, deadline <= now {
                switch a.onTimeout {
                case "approve":
                    record(
                        "step.finished", step: step.id,
                        [("status", .string("succeeded")), ("outputs", decisionOutputs("approved", st, timedOut: true))])
                case "reject":
                    record(
                        "step.finished", step: step.id,
                        [
                            ("status", .string("failed")), ("error", .string("no decision before the approval timed out: rejected")),
                            ("outputs", decisionOutputs("rejected", st, timedOut: true)),
                        ])
                default:
                    record("step.finished", step: step.id, [("status", .string("failed")), ("error", .string("the approval timed out"))])
                }
            }
        case .wait:
            if let deadline = st.deadline, deadline <= now {
                record("timer.fired", step: step.id)
                record("step.finished", step: step.id, [("status", .string("succeeded")), ("outputs", .object([("firedAt", .string(iso(now)))]))])
            }
        default: break
        }
    }

    func decisionOutputs(_ decision: String, _ st: RunState.Step, timedOut: Bool) -> Value {
        Value.object([
            ("decision", .string(decision)), ("timedOut", .bool(timedOut)),
            (
                "decisions",
                .list(
                    st.decisions.map {
                        Value.object([("by", .string($0.by)), ("decision", .string($0.decision)), ("comment", $0.comment.map(Value.string) ?? .null)])
                    })
            ),
        ])
    }

    func finishStepIfDone(_ step: WorkflowDefinition.Step) {
        guard let st = state.steps[step.id], st.status == .running, st.units.allSatisfy({ $0.status.terminal }) else { return }
        let failed = st.units.enumerated().filter { $0.element.status == .failed }
        let outputs: Value = st.foreach ? .list(st.units.map { $0.status == .succeeded ? $0.outputs : .null }) : st.units.first?.outputs ?? .null
        if st.foreach, let problem = oversized(outputs, "the gathered outputs of \(st.units.count) items") {
            record("step.finished", step: step.id, [("status", .string("failed")), ("error", .string(problem))])
            return
        }
        if failed.isEmpty {
            record("step.finished", step: step.id, [("status", .string("succeeded")), ("outputs", outputs)])
        } else {
            let first = failed[0]
            let error =
                st.foreach
                ? "\(failed.count) of \(st.units.count) items failed; item \(first.offset): \(first.element.error ?? "failed")"
                : first.element.error ?? "failed"
            record("step.finished", step: step.id, [("status", .string("failed")), ("outputs", outputs), ("error", .string(error))])
        }
    }

    func finishRunIfDone() {
        guard state.finished == nil else { return }
        let anyActive = state.steps.values.contains { !$0.status.terminal && $0.status != .pending }
        if anyActive { return }
        let allDone = state.steps.values.allSatisfy { $0.status.terminal }
        guard allDone || stopping else { return }
        let b = bindings
        var outputs: [(String, Value)] = []
        for (name, arg) in def.outputs { outputs.append((name, (try? arg.evaluate(b).get()) ?? .null)) }
        if let problem = oversized(.object(outputs), "the run's outputs") {
            record("run.finished", [("status", .string("failed")), ("outputs", .map([])), ("error", .string(problem))])
            return
        }
        if stopping {
            let failed = def.steps.filter { state.steps[$0.id]?.status == .failed && !$0.continueOnError }.map(\.id)
            let reasons = failed.map { "\($0): \(state.steps[$0]?.error ?? "failed")" }
            record(
                "run.finished", [("status", .string("failed")), ("outputs", .object(outputs)), ("error", .string(reasons.joined(separator: "; ")))])
        } else {
            record("run.finished", [("status", .string("succeeded")), ("outputs", .object(outputs))])
        }
    }

    // MARK: Acting

    func launch(_ l: Launch) {
        let engine = self.engine
        let mailbox = self.mailbox
        let run = record.id
        let foreach = state.steps[l.step.id]?.foreach ?? false
        let attemptKey = key(l.step.id, l.item, l.attempt, foreach)
        let workDirectory = engine.runDirectory(run) + "/work/\(l.step.id)-\(l.item)-\(l.attempt)"
        let logFile = engine.logFile(run: run, step: l.step.id, item: l.item, attempt: l.attempt)
        let base = baseDirectory
        let deps = def.dependencies(of: l.step).compactMap { completedAt[$0] }
        if let latest = deps.max() {
            let latency = ContinuousClock.now - latest
            engine.stats.state.withLock { $0.latencies.append(latency.seconds) }
        }
        let parentFile = record.file
        let recordID = record.id
        let task = Task {
            let completion = await RunDriver.execute(
                engine, l, key: attemptKey, workDirectory: workDirectory, logFile: logFile, base: base, parentFile: parentFile, recordID: recordID)
            engine.limiter.release()
            mailbox.post(.completed(completion))
        }
        tasks["\(l.step.id)/\(l.item)"] = task
    }

    static func execute(
        _ engine: WorkflowEngine, _ l: Launch, key attemptKey: String, workDirectory: String, logFile: String, base: String, parentFile: String,
        recordID: String
    ) async -> Completion {
        let step = l.step
        let run = recordID
        let result: Result<ActionResult, ActionFailure>
        var artifacts: [(String, String)] = []
        do {
            var needsDirectory = true
            var runtimeMakesIt = false
            if case .action(let name, let major) = step.kind, let m = engine.catalog.action(name, major: major)?.manifest {
                needsDirectory = m.needsWorkDirectory
                runtimeMakesIt = m.runtime == "process"
            }
            if needsDirectory {
                // The process runtime makes the work directory (its first mkdir creates the parents); the logs
                // directory once per run.
                let logs = (logFile as NSString).deletingLastPathComponent
                if access(logs, F_OK) != 0 { try PrivateFiles.createDirectory(logs) }
                if !runtimeMakesIt { try PrivateFiles.createDirectory(workDirectory) }
            }
            var inputArtifacts: [String: String] = [:]
            for (name, digest) in l.artifacts {
                let hex = digest.hasPrefix("sha256:") ? String(digest.dropFirst(7)) : digest
                let path = engine.artifactDirectory + "/" + hex
                guard FileManager.default.fileExists(atPath: path) else {
                    throw ActionFailure(.permanent, "input artifact \(name): \(digest) is not in the run's artifact store")
                }
                inputArtifacts[name] = path
            }
            let context = ActionContext(
                run: run, step: step.id, item: l.item, attempt: l.attempt, key: attemptKey, workDirectory: workDirectory,
                artifacts: inputArtifacts, credentials: l.credentials, logFile: logFile, baseDirectory: base)
            let output: ActionResult
            switch step.kind {
            case .workflow(let file):
                output = try await Self.runChild(engine, file: file, parentFile: parentFile, parent: "\(recordID)/\(step.id)", inputs: l.inputs)
            case .action(let name, let major):
                guard let action = engine.catalog.action(name, major: major) else {
                    throw ActionFailure(.permanent, "action \(name)@v\(major) is not available")
                }
                if let schema = action.manifest.inputSchema, let problem = schemaViolation(l.inputs, schema, path: "inputs") {
                    throw ActionFailure(.permanent, "\(name)@v\(major): invalid inputs: \(problem)")
                }
                let timeout = step.timeout ?? action.manifest.timeout
                output = try await Self.withTimeout(timeout, clock: engine.configuration.clock) { try await action.run(l.inputs, context: context) }
                if let schema = action.manifest.outputSchema, let problem = schemaViolation(output.outputs, schema, path: "outputs") {
                    throw ActionFailure(.permanent, "\(name)@v\(major): outputs break the declared schema: \(problem)")
                }
            default:
                throw ActionFailure(.permanent, "not an action step")
            }
            for a in output.artifacts { artifacts.append((a.name, try Self.store(a.path, in: engine.artifactDirectory))) }
            result = .success(output)
            if needsDirectory { try? FileManager.default.removeItem(atPath: workDirectory) }
        } catch let f as ActionFailure {
            result = .failure(f)
        } catch is CancellationError {
            result = .failure(ActionFailure(.retryable, "cancelled"))
        } catch {
            result = .failure(ActionFailure(.retryable, "\(error)"))
        }
        return Completion(step: step.id, item: l.item, attempt: l.attempt, result: result, artifacts: artifacts, at: .now)
    }

    /// Runs `body`, failing with class `timeout` when it takes longer than `timeout` on `clock` (the body is
    /// cancelled).
    static func withTimeout(
        _ timeout: Duration?, clock: any EngineClock, _ body: @escaping @Sendable () async throws -> ActionResult
    ) async throws -> ActionResult {
        guard let timeout else { return try await body() }
        return try await withThrowingTaskGroup(of: ActionResult?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await clock.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw ActionFailure(.timeout, "no result") }
            guard let result = first else { throw ActionFailure(.timeout, "the attempt took longer than its timeout of \(timeout.text)") }
            return result
        }
    }

    /// Copies a file into the artifact store (content-addressed); returns `sha256:HEX`.
    static func store(_ path: String, in directory: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw ActionFailure(.permanent, "output artifact \(path) cannot be read") }
        let hex = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        try PrivateFiles.createDirectory(directory)
        let target = directory + "/" + hex
        if !FileManager.default.fileExists(atPath: target) {
            let tmp = target + ".tmp-\(UUID().uuidString)"
            try data.write(to: URL(fileURLWithPath: tmp))
            try FileManager.default.moveItem(atPath: tmp, toPath: target)
        }
        return "sha256:" + hex
    }

    /// A child workflow: one run per parent step (idempotency key `child:RUN/STEP`), driven here.
    static func runChild(_ engine: WorkflowEngine, file: String, parentFile: String, parent: String, inputs: Value) async throws -> ActionResult {
        let dir = (parentFile as NSString).deletingLastPathComponent
        let path = file.hasPrefix("/") || dir.isEmpty ? file : dir + "/" + file
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ActionFailure(.permanent, "child workflow \(path): cannot read the file")
        }
        var given: [String: Value] = [:]
        if case .map(let entries) = inputs { for (k, v) in entries { if case .string(let s) = k { given[s] = v } } }
        let child: RunRecord
        do {
            child = try await engine.start(
                file: path, text: String(decoding: data, as: UTF8.self), inputs: given, idempotencyKey: "child:" + parent, parent: parent
            ).run
        } catch {
            throw ActionFailure(.permanent, "child workflow \(path): \(error)")
        }
        let done = try await engine.drive(child.id)
        let outputs = done.outputs.flatMap { try? Value.parseJSON($0) } ?? .map([])
        guard done.status == "succeeded" else { throw ActionFailure(.permanent, "child run \(child.id) \(done.status): \(done.error ?? "")") }
        return ActionResult(outputs: .object([("run", .string(child.id)), ("outputs", outputs)]))
    }

    func complete(_ c: Completion) {
        guard state.finished == nil, let step = def.steps.first(where: { $0.id == c.step }),
            let u = state.steps[c.step]?.units[safe: c.item], u.inFlight, u.attempt == c.attempt
        else { return }
        tasks["\(c.step)/\(c.item)"] = nil
        completedAt[c.step] = c.at
        var result = c.result
        if case .success(let r) = result, let problem = oversized(r.outputs, "outputs") {
            result = .failure(ActionFailure(.permanent, problem))
        }
        switch result {
        case .success(let r):
            var artifacts: [(String, Value)] = c.artifacts.map { ($0.0, .string($0.1)) }
            if let until = step.until {
                var b = bindings
                b["outputs"] = r.outputs
                b["iteration"] = .int(Int64(u.iteration + 1))
                switch until.test(b) {
                case .success(true): break
                case .success(false):
                    if u.iteration + 1 < step.maxIterations {
                        record(
                            "attempt.finished", step: c.step, item: c.item, attempt: c.attempt,
                            [("status", .string("iterate")), ("outputs", r.outputs)])
                        return
                    }
                    record(
                        "attempt.finished", step: c.step, item: c.item, attempt: c.attempt,
                        [
                            ("status", .string("failed")), ("class", .string("permanent")), ("outputs", r.outputs),
                            ("error", .string("until: `\(until.source)` still false after \(step.maxIterations) iterations")),
                        ])
                    return
                case .failure(let e):
                    record(
                        "attempt.finished", step: c.step, item: c.item, attempt: c.attempt,
                        [("status", .string("failed")), ("class", .string("permanent")), ("error", .string("\(e)"))])
                    return
                }
            }
            if artifacts.isEmpty { artifacts = [] }
            record(
                "attempt.finished", step: c.step, item: c.item, attempt: c.attempt,
                [("status", .string("succeeded")), ("outputs", r.outputs), ("artifacts", .object(artifacts))])
        case .failure(let f):
            var data: [(String, Value)] = [("class", .string(f.errorClass.rawValue)), ("error", .string(f.message))]
            if let retry = step.retry, retry.on.contains(f.errorClass.rawValue), u.failures + 1 < retry.maxAttempts {
                let delay = retry.delay(afterFailures: u.failures + 1)
                data += [("status", .string("retry")), ("retryAt", .double(clock.now().addingTimeInterval(delay).timeIntervalSince1970))]
            } else {
                data.append(("status", .string("failed")))
            }
            record("attempt.finished", step: c.step, item: c.item, attempt: c.attempt, data)
        }
    }

    /// Arms the ticks: one for the next signal poll (real time) and one for the nearest deadline — retry, approval
    /// timeout, timer — on the engine's clock.
    func schedule() {
        let poll = ContinuousClock.now + engine.configuration.pollInterval
        if pollTick == nil || !(pollTick!.at <= poll && pollTick!.at > .now) {
            pollTick?.task.cancel()
            let mailbox = self.mailbox
            pollTick = (
                Task {
                    try? await Task.sleep(until: poll, clock: .continuous)
                    if !Task.isCancelled { mailbox.post(.tick) }
                }, poll
            )
        }
        var nearest: Date?
        for st in state.steps.values {
            var dates: [Date] = st.units.compactMap { $0.status.terminal ? nil : $0.retryAt }
            if st.status == .waiting, let d = st.deadline { dates.append(d) }
            for d in dates where nearest.map({ d < $0 }) ?? true { nearest = d }
        }
        guard let nearest else {
            deadlineTick?.task.cancel()
            deadlineTick = nil
            return
        }
        if let t = deadlineTick {
            let fired = t.fired.value.load(ordering: .acquiring)
            // A tick that has not fired wakes the driver in time; one that fired for this very deadline has had the
            // driver look at it after it passed — what is still due there waits for a free slot, and a completion
            // or a freed slot wakes the driver (arming again would only spin).
            if !fired && t.at <= nearest || fired && t.at == nearest { return }
        }
        deadlineTick?.task.cancel()
        let mailbox = self.mailbox
        let clock = self.clock
        let fired = Fired()
        deadlineTick = (
            Task {
                try? await clock.sleep(until: nearest)
                if !Task.isCancelled {
                    fired.value.store(true, ordering: .releasing)
                    mailbox.post(.tick)
                }
            }, nearest, fired
        )
    }

    final class Fired: Sendable {
        let value = Atomic(false)
    }

    func iso(_ d: Date) -> String { ISO8601DateFormatter().string(from: d) }
}

extension WorkflowDefinition.Step {
    /// Action steps take `artifacts` (name → digest) and `credentials` (slot names) from `with:` into the context.
    var isExternal: Bool {
        if case .action = kind { return true }
        return false
    }
}

extension WorkflowDefinition.Retry {
    /// Seconds before the attempt after `failures` failures.
    func delay(afterFailures n: Int) -> Double {
        let initial = initialDelay.seconds
        var d: Double
        switch backoff {
        case .constant: d = initial
        case .linear: d = initial * Double(n)
        case .exponential: d = initial * pow(multiplier, Double(n - 1))
        }
        d = min(d, maxDelay.seconds)
        if jitter > 0 { d *= 1 + Double.random(in: -jitter...jitter) }
        return max(0, d)
    }
}

extension Duration {
    /// `seconds` comes from OCI.
    var text: String {
        let s = seconds
        return s < 1 ? "\(Int(s * 1000))ms" : s == s.rounded() ? "\(Int(s))s" : String(format: "%.1fs", s)
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
