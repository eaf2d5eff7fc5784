import CEL
import Foundation
import Storage

/// Where a step or one of its foreach items stands.
public enum StepStatus: String, Sendable, Codable {
    case pending, running, waiting, succeeded, failed, skipped, cancelled

    public var terminal: Bool { [.succeeded, .failed, .skipped, .cancelled].contains(self) }
}

/// A run's state, folded from its journal: the same entries always give the same state, which is how a run
/// resumes after a crash.
public struct RunState: Sendable {
    public struct Decision: Sendable {
        public var by: String
        public var decision: String
        public var comment: String?
        public var at: Date
    }

    /// One foreach item (or the only unit of a step without foreach): its attempts and result.
    public struct Unit: Sendable {
        public var status: StepStatus = .pending
        /// The last attempt number started.
        public var attempt = 0
        /// Attempts that finished with a failure.
        public var failures = 0
        /// Finished iterations of an `until` loop.
        public var iteration = 0
        public var outputs: Value = .null
        public var error: String?
        public var errorClass: String?
        /// When a failed attempt's retry is due.
        public var retryAt: Date?
        /// An attempt was started and has not finished (in flight, or interrupted by a crash).
        public var inFlight = false
        /// Attempts in a row interrupted because the process driving the run crashed.
        public var interruptions = 0
        /// Output artifacts: name → digest.
        public var artifacts: [(String, String)] = []
    }

    public struct Step: Sendable {
        public var status: StepStatus = .pending
        public var units: [Unit] = []
        public var foreach = false
        public var outputs: Value = .null
        public var error: String?
        /// An approval's timeout or a timer's firing time.
        public var deadline: Date?
        public var decisions: [Decision] = []
        public var startedAt: Date?
        public var finishedAt: Date?
        public var reason: String?
    }

    public var steps: [String: Step]
    public var order: [String]
    public var cancelled = false
    public var cancelledBy: String?
    /// The final status once `run.finished` is journalled.
    public var finished: String?
    public var outputs: Value = .null
    public var error: String?

    public init(stepIDs: [String]) {
        order = stepIDs
        steps = Dictionary(uniqueKeysWithValues: stepIDs.map { ($0, Step()) })
    }

    /// The state after `entries`, in order.
    public static func replay(_ entries: [JournalEntry], stepIDs: [String]) -> RunState {
        var s = RunState(stepIDs: stepIDs)
        for e in entries { s.apply(e) }
        return s
    }

    public mutating func apply(_ e: JournalEntry) {
        let data = (try? Value.parseJSON(e.data)) ?? .map([])
        func unit(_ body: (inout Unit) -> Void) {
            guard let id = e.step, var step = steps[id] else { return }
            let i = e.item ?? 0
            while step.units.count <= i { step.units.append(Unit()) }
            body(&step.units[i])
            steps[id] = step
        }
        func step(_ body: (inout Step) -> Void) {
            guard let id = e.step, var step = steps[id] else { return }
            body(&step)
            steps[id] = step
        }
        switch e.type {
        case "step.started":
            step { s in
                s.status = .running
                s.startedAt = e.at
                if case .int(let n)? = data["items"] {
                    s.foreach = true
                    s.units = Array(repeating: Unit(), count: Int(n))
                } else if s.units.isEmpty {
                    s.units = [Unit()]
                }
            }
        case "step.skipped":
            step { s in
                s.status = .skipped
                s.reason = data["reason"]?.stringValue
                s.finishedAt = e.at
            }
        case "attempt.started":
            unit { u in
                u.status = .running
                u.attempt = e.attempt ?? u.attempt + 1
                u.inFlight = true
                u.retryAt = nil
            }
        case "attempt.interrupted":
            unit { u in
                u.inFlight = false
                if case .bool(true)? = data["crashed"] { u.interruptions += 1 }
            }
        case "attempt.finished":
            unit { u in
                u.inFlight = false
                u.interruptions = 0
                let outputs = data["outputs"] ?? .null
                switch data["status"]?.stringValue {
                case "succeeded":
                    u.status = .succeeded
                    u.outputs = outputs
                    u.iteration += 1
                    if case .map(let a)? = data["artifacts"] {
                        u.artifacts = a.compactMap { if case .string(let k) = $0.key, case .string(let v) = $0.value { (k, v) } else { nil } }
                    }
                case "iterate":
                    u.outputs = outputs
                    u.iteration += 1
                case "retry":
                    u.failures += 1
                    u.error = data["error"]?.stringValue
                    u.errorClass = data["class"]?.stringValue
                    u.retryAt = data["retryAt"]?.number.map { Date(timeIntervalSince1970: $0) }
                default:
                    u.failures += 1
                    u.status = .failed
                    u.error = data["error"]?.stringValue
                    u.errorClass = data["class"]?.stringValue
                    u.outputs = outputs
                }
            }
        case "step.finished":
            step { s in
                s.status = StepStatus(rawValue: data["status"]?.stringValue ?? "failed") ?? .failed
                s.outputs = data["outputs"] ?? .null
                s.error = data["error"]?.stringValue
                s.finishedAt = e.at
                s.deadline = nil
                for i in s.units.indices where !s.units[i].status.terminal {
                    s.units[i].status = s.status == .cancelled ? .cancelled : s.units[i].status
                }
            }
        case "approval.requested", "timer.started":
            step { s in
                s.status = .waiting
                s.deadline = data["deadline"]?.number.map { Date(timeIntervalSince1970: $0) }
            }
        case "approval.decided":
            step { s in
                s.decisions.append(
                    Decision(
                        by: data["by"]?.stringValue ?? "", decision: data["decision"]?.stringValue ?? "", comment: data["comment"]?.stringValue,
                        at: e.at))
            }
        case "run.cancelled":
            cancelled = true
            cancelledBy = data["by"]?.stringValue
        case "run.finished":
            finished = data["status"]?.stringValue ?? "failed"
            outputs = data["outputs"] ?? .null
            error = data["error"]?.stringValue
        default: break
        }
    }

    /// A step's view in expressions: `status`, `outputs`, `error`, `artifacts`.
    func binding(_ id: String) -> Value {
        let s = steps[id] ?? Step()
        var artifacts: [(String, Value)] = []
        for u in s.units { for (k, v) in u.artifacts { artifacts.append((k, .string(v))) } }
        return .object([
            ("status", .string(s.status.rawValue)), ("outputs", s.outputs), ("error", s.error.map(Value.string) ?? .null),
            ("artifacts", .object(artifacts)),
        ])
    }

    /// `running`, `waiting` (only approvals or timers pending) or the final status.
    public var summary: String {
        if let finished { return finished }
        let active = steps.values.filter { !$0.status.terminal && $0.status != .pending }
        if !active.isEmpty && active.allSatisfy({ $0.status == .waiting }) { return "waiting" }
        return "running"
    }
}
