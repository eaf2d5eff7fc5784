/// The words the workflow store keeps: run statuses, journal entry kinds and signal kinds. Plain values with the
/// same strings on disk as always (no migration); a literal (`"succeeded"`) is one of them, and a new word is a new
/// static member.
public protocol StoredWord: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByStringLiteral, CustomStringConvertible
where RawValue == String {
    init(rawValue: String)
}

extension StoredWord {
    public init(stringLiteral value: String) { self.init(rawValue: value) }
    public init(from decoder: any Decoder) throws { self.init(rawValue: try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
    public var description: String { rawValue }
}

/// Where a run stands.
public struct RunStatus: StoredWord {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let queued: RunStatus = "queued"
    public static let running: RunStatus = "running"
    /// Waiting for an approval, a timer or a retry.
    public static let waiting: RunStatus = "waiting"
    public static let succeeded: RunStatus = "succeeded"
    public static let failed: RunStatus = "failed"
    public static let cancelled: RunStatus = "cancelled"

    /// The statuses of runs that ended.
    public static let finishedStatuses: Set<RunStatus> = [.succeeded, .failed, .cancelled]
    /// True for a status no transition leaves.
    public var finished: Bool { Self.finishedStatuses.contains(self) }
}

/// The kind of a journal entry.
public struct EntryKind: StoredWord {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let runCreated: EntryKind = "run.created"
    public static let stepStarted: EntryKind = "step.started"
    public static let stepSkipped: EntryKind = "step.skipped"
    public static let attemptStarted: EntryKind = "attempt.started"
    public static let attemptFinished: EntryKind = "attempt.finished"
    public static let attemptInterrupted: EntryKind = "attempt.interrupted"
    public static let stepFinished: EntryKind = "step.finished"
    public static let approvalRequested: EntryKind = "approval.requested"
    public static let approvalDecided: EntryKind = "approval.decided"
    public static let timerStarted: EntryKind = "timer.started"
    public static let timerFired: EntryKind = "timer.fired"
    public static let runCancelled: EntryKind = "run.cancelled"
    public static let runFinished: EntryKind = "run.finished"
}

/// What a signal from outside the driving process asks for.
public struct SignalKind: StoredWord {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let approve: SignalKind = "approve"
    public static let reject: SignalKind = "reject"
    public static let cancel: SignalKind = "cancel"
}
