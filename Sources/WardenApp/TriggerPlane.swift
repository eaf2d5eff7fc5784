import CEL
import Documents
import Foundation
import Storage
import Synchronization
import Triggers
import Workflow

/// The trigger pipeline's jobs (`warden serve`'s hooks, dispatcher and scheduler, and the trigger commands): a
/// delivery is authenticated and normalised by its receiver, offered to the triggers that listen to it, recorded
/// with one dispatch per selecting trigger (deduplicated within the trigger's window) in one transaction, and each
/// dispatch starts its run with the dispatch key as the run's idempotency key — so a crash anywhere between
/// receipt and run neither loses the event nor starts two runs.
public struct TriggerPlane: Sendable {
    public let control: ControlPlane
    public let receivers: [String: ReceiverConfig]
    /// Registry and HTTP access for the pollers and for resolving tag-only pushes; nil: neither is done.
    public let lookup: (any TriggerLookup)?
    public let observer: (any TriggerObserver)?
    /// Parsed trigger documents by digest: a published version never changes, so each is parsed once.
    let parsed = ParsedTriggers()
    var store: any ControlStore { control.store }

    public init(control: ControlPlane, receivers: [ReceiverConfig], lookup: (any TriggerLookup)? = nil, observer: (any TriggerObserver)? = nil) {
        self.control = control
        self.receivers = Dictionary(receivers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.lookup = lookup
        self.observer = observer
    }

    /// A published trigger, parsed.
    public struct Published: Sendable {
        public var document: TriggerDocument
        public var entry: CatalogEntry
        public var inputs: [(String, WorkflowDefinition.Argument)]
    }

    /// Validates a trigger document as publishing reads it: the document strictly, its schedule, and its inputs'
    /// `${{ }}` expressions, each with file:line:col.
    public static func parse(_ text: String, file: String) throws -> (TriggerDocument, [(String, WorkflowDefinition.Argument)]) {
        let doc = try TriggerDocument.parse(text, file: file)
        if case .schedule(let s) = doc.source {
            do {
                _ = try Schedule(cron: try CronSchedule.parse(s.cron), timeZone: s.timeZone)
            } catch {
                throw YAMLError(position: s.cronPosition, message: "schedule: \(error)")
            }
        }
        let inputs = try doc.inputs().map { ($0.name, try WorkflowDefinition.argument($0.value)) }
        return (doc, inputs)
    }

    /// The run inputs a trigger's `inputs` give for `event` (the dispatcher's rule, and `warden trigger check`'s).
    public static func inputs(_ inputs: [(String, WorkflowDefinition.Argument)], for event: TriggerEvent) throws -> [String: Value] {
        var out: [String: Value] = [:]
        let bindings = event.bindings
        for (name, argument) in inputs {
            switch argument.evaluate(bindings) {
            case .success(let v): out[name] = v
            case .failure(let e): throw ControlError(.invalid, "input \(name): \(e.description)")
            }
        }
        return out
    }

    /// What a trigger document makes of `event`, without a server: whether its source and selector select it and,
    /// when they do, the inputs of the run it would start.
    public static func check(_ text: String, file: String, event json: Data, eventName: String) throws
        -> (event: String, selected: Bool, inputs: [String: Value])
    {
        let event: TriggerEvent
        do { event = try JSONDecoder().decode(TriggerEvent.self, from: json) } catch {
            throw ControlError(.invalid, "\(eventName): not a normalised event (id, kind, source, subject, data): \(error)")
        }
        let (selected, inputs) = try check(text, file: file, event: event)
        return (event.id, selected, inputs)
    }

    public static func check(_ text: String, file: String, event: TriggerEvent) throws -> (selected: Bool, inputs: [String: Value]) {
        let (doc, inputs) = try parse(text, file: file)
        switch doc.selects(event) {
        case .success(false): return (false, [:])
        case .success(true): return (true, try Self.inputs(inputs, for: event))
        case .failure(let e): throw e
        }
    }

    /// Every trigger published in every workspace (the latest version of each, not deprecated).
    public func triggers() async throws -> [Published] {
        var out: [Published] = []
        for w in try await store.workspaces() {
            for e in try await store.catalog(workspace: w.name, kind: ControlPlane.DocumentKind.trigger.rawValue, name: nil) where !e.deprecated {
                let key = "\(e.workspace)/\(e.name)@\(e.version) \(e.digest)"
                if let cached = parsed.get(key) {
                    out.append(Published(document: cached.0, entry: e, inputs: cached.1))
                    continue
                }
                let (doc, inputs) = try Self.parse(e.content, file: "\(e.workspace)/\(e.name)@\(e.version).yaml")
                parsed.put(key, (doc, inputs))
                out.append(Published(document: doc, entry: e, inputs: inputs))
            }
        }
        return out
    }

    // MARK: Receiving

    /// What a delivery did.
    public struct Receipt: Sendable, Codable {
        public var events: [EventOutcome]
    }

    public struct EventOutcome: Sendable, Codable {
        public var id, kind, subject: String
        /// Runs this event is to start (dispatches made) and the triggers that had seen it within their window.
        public var dispatched: [String]
        public var deduplicated: [String]
    }

    /// Authenticates and normalises a delivery to `receiver`, then records each event with its dispatches. A
    /// refusal is audited with its reason and thrown as a `ControlError` with the receiver's status.
    public func receive(receiver name: String, headers: [(String, String)], body: [UInt8], requestID: String?) async throws -> Receipt {
        let now = control.now()
        func refuse(_ status: ControlError.Code, _ code: String, _ reason: String) async throws -> Never {
            try await store.appendAudit([
                AuditEvent(
                    at: now, actor: "receiver:\(name.prefix(80))", action: "event.reject", subject: "hook/\(name.prefix(80))", decision: "deny",
                    requestID: requestID,
                    details: Value.object([("code", .string(code)), ("reason", .string(reason))]).jsonText(sortedKeys: true))
            ])
            throw ControlError(status, reason)
        }
        guard let config = receivers[name] else {
            observer?.triggerEvent(receiver: "unknown", format: "unknown", outcome: "rejected")
            try await refuse(.notFound, "receiver-unknown", "no receiver \(name.prefix(80)) is configured")
        }
        var events: [TriggerEvent]
        do {
            events = try Receivers.normalise(config: config, headers: headers, body: body, now: now)
        } catch let r {
            observer?.triggerEvent(receiver: name, format: config.format.rawValue, outcome: "rejected")
            let code: ControlError.Code =
                switch r.status {
                case 401: .unauthenticated
                case 413: .tooLarge
                case 415: .unsupportedMediaType
                case 500: .misconfigured
                default: .invalid
                }
            try await refuse(code, r.code.rawValue, r.reason)
        }
        // A push without a digest (Docker Hub's) is resolved now, so that its id is the one a poller or another
        // receiver derives for the same push; when the registry cannot be asked now, the dispatcher resolves it.
        for (i, e) in events.enumerated() where e.needsDigest {
            if case .success(let resolved) = await resolveDigest(e) { events[i] = resolved }
        }
        for e in events {
            if let at = e.source.occurredAt.flatMap(RFC3339.date) { observer?.notificationDelay(seconds: now.timeIntervalSince(at)) }
        }
        let triggers = try await self.triggers()
        var outcomes: [EventOutcome] = []
        for event in events {
            let outcome = try await offer(event, to: triggers, actor: "receiver:\(name)", requestID: requestID, now: now)
            for _ in outcome.dispatched { observer?.triggerEvent(receiver: name, format: config.format.rawValue, outcome: "accepted") }
            for _ in outcome.deduplicated { observer?.triggerEvent(receiver: name, format: config.format.rawValue, outcome: "deduplicated") }
            outcomes.append(outcome)
        }
        return Receipt(events: outcomes)
    }

    /// Records `event` with a dispatch for each trigger that selects it; audited as one entry with the outcome.
    func offer(_ event: TriggerEvent, to triggers: [Published], actor: String, requestID: String?, now: Date) async throws -> EventOutcome {
        var targets: [DispatchTarget] = []
        for t in triggers where listens(t.document, to: event) {
            switch t.document.selects(event) {
            case .success(true):
                targets.append(DispatchTarget(workspace: t.entry.workspace, trigger: t.entry.name, window: seconds(t.document.dedupWindow)))
            case .success(false): continue
            case .failure(let e):
                // A selector that fails on this event selects nothing; the failure is audited, not fatal.
                try await store.appendAudit([
                    AuditEvent(
                        at: now, actor: actor, action: "trigger.selector-error", subject: "trigger/\(t.entry.name)", workspace: t.entry.workspace,
                        requestID: requestID, details: Value.object([("event", .string(event.id)), ("error", .string(e.description))]).jsonText())
                ])
            }
        }
        let (record, audit) = try accepted(event, targets: targets, actor: actor, requestID: requestID, now: now)
        let decisions = try await store.record(event: record, targets: targets, now: now, audit: [audit])
        var outcome = EventOutcome(id: event.id, kind: event.kind.rawValue, subject: record.subject, dispatched: [], deduplicated: [])
        for d in decisions {
            switch d {
            case .created(let r): outcome.dispatched.append("\(r.workspace)/\(r.trigger)")
            case .duplicate(let r): outcome.deduplicated.append("\(r.workspace)/\(r.trigger)")
            }
        }
        return outcome
    }

    /// The stored form of an accepted event and its audit entry (which names the triggers it goes to).
    func accepted(_ event: TriggerEvent, targets: [DispatchTarget], actor: String, requestID: String?, now: Date) throws -> (EventRecord, AuditEvent)
    {
        let record = EventRecord(
            id: event.id, receiver: event.source.receiver, kind: event.kind.rawValue, subject: Self.subject(event),
            event: String(decoding: try JSONEncoder().encode(event), as: UTF8.self), receivedAt: now)
        var details: [(String, Value)] = [
            ("event", .string(event.id)), ("kind", .string(event.kind.rawValue)), ("subject", .string(record.subject)),
            ("triggers", .list(targets.map { .string("\($0.workspace)/\($0.trigger)") })),
        ]
        if event.needsDigest { details.append(("digest", .string("unresolved: the dispatcher resolves it"))) }
        let audit = AuditEvent(
            at: now, actor: actor, action: "event.accept", subject: "event/\(event.id)", decision: "allow", requestID: requestID,
            details: Value.object(details).jsonText(sortedKeys: true))
        return (record, audit)
    }

    func listens(_ doc: TriggerDocument, to event: TriggerEvent) -> Bool {
        switch doc.source {
        case .receivers(let names): names.contains(event.source.receiver)
        case .schedule, .poll, .http: false
        }
    }

    static func subject(_ e: TriggerEvent) -> String {
        var s = e.subject.registry.isEmpty ? e.subject.repository : "\(e.subject.registry)/\(e.subject.repository)"
        if let t = e.subject.tag { s += ":" + t }
        if let d = e.subject.digest { s += "@" + d }
        return s
    }

    func seconds(_ d: Duration) -> TimeInterval {
        let (s, a) = d.components
        return TimeInterval(s) + TimeInterval(a) / 1e18
    }

    // MARK: Dispatching

    /// Starts the runs of due dispatches; returns the runs created (for the caller to drive). A failure is retried
    /// with doubling backoff up to the trigger's `retry.attempts` (default 5), then dead-lettered.
    ///
    /// Up to `parallel` dispatches are under way at once, so that their commits share the store's group commits.
    /// A trigger whose concurrency policy or rate limit depends on its earlier runs has its dispatches made one after
    /// another, in the order they came due.
    public func dispatchDue(limit: Int = 64, parallel: Int = 16) async throws -> [RunRecord] {
        let due = try await store.dueDispatches(now: control.now(), limit: limit)
        guard !due.isEmpty else { return [] }
        let triggers = Dictionary(try await self.triggers().map { ("\($0.entry.workspace)/\($0.entry.name)", $0) }, uniquingKeysWith: { a, _ in a })
        var lanes: [[(Int, DispatchRecord)]] = []
        var serial: [String: Int] = [:]
        for (i, d) in due.enumerated() {
            let name = "\(d.workspace)/\(d.trigger)"
            guard let t = triggers[name], t.document.concurrencyPolicy != .allow || t.document.rateLimit != nil else {
                lanes.append([(i, d)])
                continue
            }
            if let lane = serial[name] {
                lanes[lane].append((i, d))
            } else {
                serial[name] = lanes.count
                lanes.append([(i, d)])
            }
        }
        let started = try await withThrowingTaskGroup(of: [(Int, RunRecord)].self) { group in
            var next = lanes.makeIterator()
            func add() {
                guard let lane = next.next() else { return }
                group.addTask {
                    var runs: [(Int, RunRecord)] = []
                    for (i, d) in lane {
                        if let run = try await dispatch(d, trigger: triggers["\(d.workspace)/\(d.trigger)"]) { runs.append((i, run)) }
                    }
                    return runs
                }
            }
            for _ in 0..<max(parallel, 1) { add() }
            var all: [(Int, RunRecord)] = []
            while let runs = try await group.next() {
                all += runs
                add()
            }
            return all
        }
        return started.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// One dispatch: its run (created now, or found by its key after a crash), or a failure recorded.
    func dispatch(_ d: DispatchRecord, trigger: Published?) async throws -> RunRecord? {
        let now = control.now()
        let caller = ControlPlane.Caller(Principal(name: "trigger:\(d.workspace)/\(d.trigger)", method: "trigger"))
        let stored = try await store.event(id: d.event)
        var event = stored.flatMap { try? JSONDecoder().decode(TriggerEvent.self, from: Data($0.event.utf8)) }
        let receiver = stored?.receiver ?? "unknown"
        let format = event?.source.format ?? "unknown"
        func fail(_ message: String, permanent: Bool = false) async throws {
            let attempts = trigger?.document.retry?.attempts ?? 5
            let backoff = seconds(trigger?.document.retry?.backoff ?? .seconds(1))
            let retryAt = permanent || d.attempts + 1 >= attempts ? nil : now + backoff * pow(2, Double(d.attempts))
            let details: Value = .object([
                ("event", .string(d.event)), ("error", .string(message)), ("attempt", .int(Int64(d.attempts + 1))),
                ("deadLettered", .bool(retryAt == nil)),
            ])
            observer?.triggerEvent(receiver: receiver, format: format, outcome: retryAt == nil ? "dead-lettered" : "retried")
            try await store.failDispatch(
                key: d.key, error: message, retryAt: retryAt, at: now,
                audit: [
                    AuditEvent(
                        at: now, actor: caller.principal.name, action: retryAt == nil ? "dispatch.dead-letter" : "dispatch.retry",
                        subject: "dispatch/\(d.key)", workspace: d.workspace, details: details.jsonText(sortedKeys: true))
                ])
        }
        guard let trigger else {
            try await fail("trigger \(d.trigger) is no longer published in workspace \(d.workspace)", permanent: true)
            return nil
        }
        guard let stored, var event else {
            try await fail("event \(d.event) is not in the store", permanent: true)
            return nil
        }
        if event.needsDigest {
            switch await resolveDigest(event) {
            case .success(let resolved): event = resolved
            case .failure(let e):
                try await fail("the digest of \(event.subject.reference) could not be resolved: \(e)")
                return nil
            }
        }
        if let limit = trigger.document.rateLimit {
            let per = seconds(limit.per)
            if try await store.dispatchedCount(workspace: d.workspace, trigger: d.trigger, since: now - per) >= limit.count {
                // Not an attempt: the dispatch waits for its turn, as long as the queue of this trigger is.
                try await store.deferDispatch(key: d.key, until: now + per / Double(limit.count), at: now)
                observer?.triggerEvent(receiver: receiver, format: format, outcome: "rate-limited")
                return nil
            }
        }
        do {
            let inputs = try Self.inputs(trigger.inputs, for: event)
            let workflow = trigger.document.workflow
            let labels = ["trigger": String(d.trigger.prefix(256)), "event": String(d.event.prefix(256))]
            if trigger.document.concurrencyPolicy != .allow {
                let live = try await store.runs(
                    RunQuery(workspace: d.workspace, statuses: [.queued, .running, .waiting], label: ("trigger", d.trigger), limit: 100))
                if !live.isEmpty && trigger.document.concurrencyPolicy == .forbid {
                    try await fail("concurrencyPolicy forbid: run \(live[0].id) of this trigger is still \(live[0].status)", permanent: true)
                    return nil
                }
                for r in live { _ = try await control.cancelRun(r.id, workspace: d.workspace, caller: caller) }
            }
            let (run, _) = try await control.startRun(
                workspace: d.workspace, workflow: workflow.name, version: workflow.version, inputs: inputs, labels: labels, idempotencyKey: d.key,
                caller: caller)
            let details: Value = .object([("event", .string(d.event)), ("run", .string(run.id)), ("trigger", .string(d.trigger))])
            try await store.completeDispatch(
                key: d.key, run: run.id, at: now,
                audit: [
                    AuditEvent(
                        at: now, actor: caller.principal.name, action: "dispatch.run", subject: "dispatch/\(d.key)", workspace: d.workspace,
                        details: details.jsonText(sortedKeys: true))
                ])
            observer?.triggerEvent(receiver: receiver, format: format, outcome: "dispatched")
            observer?.eventToRun(seconds: control.now().timeIntervalSince(stored.receivedAt))
            return run
        } catch let e as ControlError {
            try await fail(e.reason, permanent: e.code == .invalid || e.code == .notFound)
        } catch {
            try await fail("\(error)")
        }
        return nil
    }

    // MARK: Schedules

    /// One scheduler tick as leader `holder`: takes or renews the `scheduler` lease and, under it, fires each
    /// schedule trigger's planned time (at most one catch-up fire after downtime, within its startingDeadline). A
    /// holder that lost the lease fires nothing: the store refuses its epoch.
    @discardableResult
    public func scheduleTick(holder: String, ttl: TimeInterval = 15) async throws -> Int {
        let now = control.now()
        let scheduled = try await triggers().filter { if case .schedule = $0.document.source { true } else { false } }
        // No schedule, no lease to hold (an idle server writes nothing).
        guard !scheduled.isEmpty, let epoch = try await store.acquireLease(name: "scheduler", holder: holder, ttl: ttl, now: now) else { return 0 }
        var fired = 0
        for t in scheduled {
            guard case .schedule(let s) = t.document.source,
                let schedule = try? Schedule(cron: try CronSchedule.parse(s.cron), timeZone: s.timeZone, skippedTimes: s.skippedTimes)
            else { continue }
            let last = try await store.lastFire(trigger: "\(t.entry.workspace)/\(t.entry.name)") ?? t.entry.createdAt
            guard let planned = schedule.plannedFires(lastFired: last, now: now, startingDeadline: s.startingDeadline) else { continue }
            let key = Schedule.fireKey(trigger: "\(t.entry.workspace)/\(t.entry.name)", planned: planned)
            var event = TriggerEvent(
                id: "schedule:" + key, source: .init(receiver: "schedule", format: "schedule", vendor: "warden", occurredAt: RFC3339.string(planned)),
                kind: .scheduleTick, subject: .init(registry: "", repository: ""),
                data: .object([("planned", .string(RFC3339.string(planned))), ("trigger", .string(t.entry.name))]))
            event.raw = nil
            if let selector = t.document.selector, (try? selector.test(event.bindings).get()) != true { continue }
            let record = EventRecord(
                id: event.id, receiver: "schedule", kind: event.kind.rawValue, subject: "schedule/\(t.entry.name)",
                event: String(decoding: try JSONEncoder().encode(event), as: UTF8.self), receivedAt: now)
            let audit = AuditEvent(
                at: now, actor: "scheduler:\(holder)", action: "schedule.fire", subject: "trigger/\(t.entry.name)", workspace: t.entry.workspace,
                details: Value.object([("planned", .string(RFC3339.string(planned))), ("epoch", .int(epoch))]).jsonText(sortedKeys: true))
            let target = DispatchTarget(workspace: t.entry.workspace, trigger: t.entry.name, window: seconds(t.document.dedupWindow))
            if try await store.recordFire(
                trigger: "\(t.entry.workspace)/\(t.entry.name)", planned: planned, lease: "scheduler", holder: holder, epoch: epoch, now: now,
                event: record, targets: [target], audit: [audit]) != nil
            {
                observer?.scheduleLag(seconds: now.timeIntervalSince(planned))
                observer?.triggerEvent(receiver: "schedule", format: "schedule", outcome: "accepted")
                fired += 1
            }
        }
        return fired
    }

    // MARK: Manual fire and the dead-letter queue

    /// `POST …/triggers/{name}/fire`: a `manual.fire` event for that trigger alone (its id from `id`, or new).
    public func fire(workspace: String, trigger name: String, data: Value, id: String?, caller: ControlPlane.Caller) async throws -> EventOutcome {
        guard let t = try await triggers().first(where: { $0.entry.workspace == workspace && $0.entry.name == name }) else {
            throw ControlError(.notFound, "no trigger \(name) in workspace \(workspace)")
        }
        let event = TriggerEvent(
            id: "manual:" + (id ?? UUID().uuidString.lowercased()),
            source: .init(receiver: "manual", format: "manual", vendor: caller.principal.name, occurredAt: RFC3339.string(control.now())),
            kind: .manualFire, subject: .init(registry: "", repository: ""), data: data)
        let record = EventRecord(
            id: event.id, receiver: "manual", kind: event.kind.rawValue, subject: "trigger/\(name)",
            event: String(decoding: try JSONEncoder().encode(event), as: UTF8.self), receivedAt: control.now())
        let target = DispatchTarget(workspace: workspace, trigger: name, window: seconds(t.document.dedupWindow))
        let audit = control.audit(
            caller,
            control.event(caller, "trigger.fire", "trigger/\(name)", workspace: workspace, details: [("event", .string(event.id))]))
        let decisions = try await store.record(event: record, targets: [target], now: control.now(), audit: audit)
        caller.decision?.committed()
        var outcome = EventOutcome(id: event.id, kind: event.kind.rawValue, subject: record.subject, dispatched: [], deduplicated: [])
        for d in decisions {
            if case .created = d { outcome.dispatched.append("\(workspace)/\(name)") } else { outcome.deduplicated.append("\(workspace)/\(name)") }
        }
        return outcome
    }

    /// A page of the workspace's dispatches, newest first (`limit` 1 to 500; `before` the previous page's `next`).
    public func dispatches(workspace: String, statuses: [DispatchRecord.Status]?, trigger: String?, limit: Int, before: String?) async throws
        -> DispatchPage
    {
        let limit = min(max(limit, 1), 500)
        let page = try await store.dispatches(
            DispatchQuery(statuses: statuses, workspace: workspace, trigger: trigger, limit: limit + 1, before: before))
        let shown = Array(page.prefix(limit))
        return DispatchPage(dispatches: shown.map(DispatchView.init), next: page.count > limit ? shown.last?.key : nil)
    }

    /// Received events, newest first (`limit` 1 to 500; `before` a receipt time).
    /// A page of received events, newest first (`limit` 1 to 500): after `cursor` (the previous page's `next`),
    /// else received before `before`, else the newest.
    public func events(receiver: String?, before: Date?, cursor: String?, limit: Int) async throws -> EventPage {
        let limit = min(max(limit, 1), 500)
        let start = try cursor.map { try RunCursor.decode($0) }.map { (receivedAt: $0.createdAt, id: $0.id) } ?? before.map { ($0, "") }
        let found = try await store.events(receiver: receiver, before: start, limit: limit + 1)
        let shown = found.prefix(limit)
        return EventPage(
            events: shown.map(EventView.init),
            next: found.count > limit ? shown.last.map { RunCursor.encode(createdAt: $0.receivedAt, id: $0.id) } : nil)
    }

    /// Replays (due at once, attempts reset, the same key so the same run) or discards a dead-lettered dispatch.
    public func settleDeadLetter(workspace: String, key: String, replay: Bool, caller: ControlPlane.Caller) async throws -> DispatchRecord {
        guard let d = try await store.dispatch(key: key), d.workspace == workspace else {
            throw ControlError(.notFound, "no dispatch \(key.prefix(80)) in workspace \(workspace)")
        }
        let audit = control.audit(
            caller, control.event(caller, replay ? "deadletter.replay" : "deadletter.discard", "dispatch/\(key)", workspace: workspace))
        let done =
            replay
            ? try await store.replayDispatch(key: key, at: control.now(), audit: audit)
            : try await store.discardDispatch(key: key, at: control.now(), audit: audit)
        guard done else { throw ControlError(.conflict, "dispatch \(key) is \(d.status.rawValue), not dead-lettered") }
        caller.decision?.committed()
        return try await store.dispatch(key: key) ?? d
    }
}

/// The parsed trigger documents a plane has seen, bounded (a server holds its triggers; the bound only stops a
/// workspace that publishes versions without end from growing it).
final class ParsedTriggers: Sendable {
    typealias Entry = (TriggerDocument, [(String, WorkflowDefinition.Argument)])
    private let entries = Mutex<[String: Entry]>([:])
    static let limit = 4096

    func get(_ key: String) -> Entry? { entries.withLock { $0[key] } }
    func put(_ key: String, _ value: Entry) {
        entries.withLock { map in
            if map.count >= Self.limit { map.removeAll(keepingCapacity: true) }
            map[key] = value
        }
    }
}

/// A dispatch as the API and `warden trigger dispatches` show it.
public struct DispatchView: Encodable, Sendable {
    public var key, workspace, trigger, event, status: String
    public var generation, attempts: Int
    public var nextAttemptAt, createdAt, updatedAt: Date
    public var run, error: String?
    public init(_ d: DispatchRecord) {
        key = d.key
        workspace = d.workspace
        trigger = d.trigger
        event = d.event
        status = d.status.rawValue
        generation = d.generation
        attempts = d.attempts
        nextAttemptAt = d.nextAttemptAt
        createdAt = d.createdAt
        updatedAt = d.updatedAt
        run = d.run
        error = d.error
    }
}

/// One page of dispatches, newest first; `next` is the cursor of the following page.
public struct DispatchPage: Encodable, Sendable {
    public var dispatches: [DispatchView]
    public var next: String?
    public init(dispatches: [DispatchView], next: String?) {
        self.dispatches = dispatches
        self.next = next
    }
}

/// A received event as the API and `warden trigger events` show it, with the normalised event.
/// One page of received events, newest first; `next` is the cursor of the following page.
public struct EventPage: Encodable, Sendable {
    public var events: [EventView]
    public var next: String?
}

/// A received event as the API and `warden trigger events` show it.
public struct EventView: Encodable, Sendable {
    public var id, receiver, kind, subject: String
    public var receivedAt: Date
    public var event: JSONValue
    public init(_ e: EventRecord) {
        id = e.id
        receiver = e.receiver
        kind = e.kind
        subject = e.subject
        receivedAt = e.receivedAt
        event = JSONValue((try? Value.parseJSON(e.event)) ?? .null)
    }
}
