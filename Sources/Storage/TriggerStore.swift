import Crypto
import Foundation

/// A received event as the trigger pipeline keeps it: once per event id (a second delivery of the same id does not
/// replace the first), with the normalised event's JSON.
public struct EventRecord: Codable, Sendable, Equatable {
    /// The normalised event's id (derived from registry, repository, tag and digest for registry events).
    public var id: String
    /// Where it came from: a receiver's name, `schedule`, `poll` or `manual`.
    public var receiver: String
    public var kind: String
    /// `registry/repository[:tag][@digest]`, for lists and filters.
    public var subject: String
    /// The normalised event (JSON text).
    public var event: String
    public var receivedAt: Date
    public init(id: String, receiver: String, kind: String, subject: String, event: String, receivedAt: Date) {
        self.id = id
        self.receiver = receiver
        self.kind = kind
        self.subject = subject
        self.event = event
        self.receivedAt = receivedAt
    }
}

/// One event dispatched to one trigger: the unit of exactly-once. Its `key` is the run's idempotency key, so a
/// dispatch retried after a crash finds the run it already made instead of making a second.
public struct DispatchRecord: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable, CaseIterable {
        /// Waiting for its (next) attempt at `nextAttemptAt`.
        case pending
        /// Its run exists (`run`).
        case dispatched
        /// Attempts exhausted: in the dead-letter queue until replayed or discarded.
        case dead
        /// Taken out of the dead-letter queue without a run.
        case discarded
    }

    public var key: String
    public var workspace: String
    public var trigger: String
    public var event: String
    /// 1 for the first dispatch of this event to this trigger; the same event after the trigger's dedup window has
    /// passed makes a new dispatch with the next generation (and so a new key).
    public var generation: Int
    public var status: Status
    public var attempts: Int
    public var nextAttemptAt: Date
    public var run: String?
    public var error: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(workspace: String, trigger: String, event: String, generation: Int, at: Date) {
        key = Self.key(workspace: workspace, trigger: trigger, event: event, generation: generation)
        self.workspace = workspace
        self.trigger = trigger
        self.event = event
        self.generation = generation
        status = .pending
        attempts = 0
        nextAttemptAt = at
        createdAt = at
        updatedAt = at
    }

    /// `sha256(workspace/trigger ‖ event id ‖ generation)`, hex: the dedup key and the run's idempotency key.
    public static func key(workspace: String, trigger: String, event: String, generation: Int) -> String {
        "trigger:" + hex(SHA256.hash(data: Data("\(workspace)/\(trigger)\n\(event)\n\(generation)".utf8)))
    }
}

/// A trigger an event is offered to, with how long its dispatches deduplicate the same event.
public struct DispatchTarget: Sendable, Equatable {
    public var workspace, trigger: String
    public var window: TimeInterval
    public init(workspace: String, trigger: String, window: TimeInterval) {
        self.workspace = workspace
        self.trigger = trigger
        self.window = window
    }
}

/// What recording an event did for one target.
public enum DispatchDecision: Sendable, Equatable {
    /// A new pending dispatch.
    case created(DispatchRecord)
    /// A dispatch of the same event to the same trigger within its window exists.
    case duplicate(DispatchRecord)
}

/// Filters of a dispatch list, newest first.
public struct DispatchQuery: Sendable {
    public var statuses: [DispatchRecord.Status]?
    public var workspace: String?
    public var trigger: String?
    public var limit: Int
    /// Only dispatches created before this one (the cursor: its key).
    public var before: String?
    public init(statuses: [DispatchRecord.Status]? = nil, workspace: String? = nil, trigger: String? = nil, limit: Int = 50, before: String? = nil) {
        self.statuses = statuses
        self.workspace = workspace
        self.trigger = trigger
        self.limit = limit
        self.before = before
    }
}

/// Where the trigger pipeline keeps its state: events, dispatches (and the dead-letter queue), leases with fencing
/// epochs, schedule fires and pollers' cursors. Every change commits with its audit entries.
public protocol TriggerStore: Sendable {
    /// Records `event` (kept once per id) and, for each target, a pending dispatch — unless one of the same event to
    /// the same trigger was created within the target's window — with `audit`, in one transaction.
    func record(event: EventRecord, targets: [DispatchTarget], now: Date, audit: [AuditEvent]) async throws -> [DispatchDecision]
    /// Pending dispatches due at `now`, oldest first.
    func dueDispatches(now: Date, limit: Int) async throws -> [DispatchRecord]
    /// The dispatch made its run.
    func completeDispatch(key: String, run: String, at: Date, audit: [AuditEvent]) async throws
    /// An attempt failed: retried at `retryAt`, or dead-lettered when nil.
    func failDispatch(key: String, error: String, retryAt: Date?, at: Date, audit: [AuditEvent]) async throws
    func dispatch(key: String) async throws -> DispatchRecord?
    func dispatches(_ query: DispatchQuery) async throws -> [DispatchRecord]
    /// How many dispatches have `status`.
    func dispatchCount(status: DispatchRecord.Status) async throws -> Int
    /// A dead dispatch back to pending (due at `at`, attempts reset); false when it is not dead.
    func replayDispatch(key: String, at: Date, audit: [AuditEvent]) async throws -> Bool
    /// A dead dispatch to discarded; false when it is not dead.
    func discardDispatch(key: String, at: Date, audit: [AuditEvent]) async throws -> Bool
    func event(id: String) async throws -> EventRecord?
    /// Events, newest first (by receipt time, then id); `receiver` filters; the page starts after `before` — the last
    /// event of the previous page, or a time with an empty id for the events received before it.
    func events(receiver: String?, before: (receivedAt: Date, id: String)?, limit: Int) async throws -> [EventRecord]

    /// Takes or renews lease `name` for `holder` until `now + ttl`: the epoch it holds it under (unchanged on a
    /// renewal, incremented on a takeover of an expired or released lease), nil while another holder's is live.
    func acquireLease(name: String, holder: String, ttl: TimeInterval, now: Date) async throws -> Int64?
    func releaseLease(name: String, holder: String) async throws
    /// Records that `trigger` fired for `planned`, fenced: refused (false) when the fire is recorded already or
    /// when `epoch` is no longer the current epoch of lease `lease` held by `holder` and live at `now`.
    func recordFire(
        trigger: String, planned: Date, lease: String, holder: String, epoch: Int64, now: Date, event: EventRecord, targets: [DispatchTarget],
        audit: [AuditEvent]
    ) async throws -> [DispatchDecision]?
    /// The latest planned time `trigger` fired for.
    func lastFire(trigger: String) async throws -> Date?

    /// A poller's cursor: key → value (a registry poller's tag → digest; an HTTP poller's item ids and validators).
    func pollCursor(trigger: String) async throws -> [String: String]
    /// One poll's outcome, fenced like ``recordFire``: each event recorded with its dispatches (as ``record``), the
    /// cursor moved (a nil value removes its key) and `audit` appended, in one transaction — or nothing and nil
    /// when `epoch` is no longer the live epoch of lease `lease` held by `holder`.
    func recordPoll(
        trigger: String, lease: String, holder: String, epoch: Int64, now: Date, events: [PolledEvent], cursor: [String: String?],
        audit: [AuditEvent]
    ) async throws -> [[DispatchDecision]]?
    /// Postpones a pending dispatch to `until` without counting an attempt (a trigger's rate limit).
    func deferDispatch(key: String, until: Date, at: Date) async throws
    /// How many of `trigger`'s dispatches in `workspace` started their run at or after `since`.
    func dispatchedCount(workspace: String, trigger: String, since: Date) async throws -> Int
}

/// An event a poller found, with the triggers it goes to.
public struct PolledEvent: Sendable, Equatable {
    public var event: EventRecord
    public var targets: [DispatchTarget]
    public init(event: EventRecord, targets: [DispatchTarget]) {
        self.event = event
        self.targets = targets
    }
}
