import Documents
import Foundation
import Synchronization

/// The time the workflow engine decides by: the times of journal entries, when a retry is due (`retryAt`), when a
/// durable timer fires, when an approval times out, and when an attempt's `timeout` ends it. Times are `Date`s, as
/// the journal keeps them, so that a deadline written under one clock is read back under the same.
///
/// What it does not govern: how often a driver polls the store for signals from other processes
/// (`EngineConfiguration.pollInterval`), the latency measurements of `EngineStats`, and the runtimes' own waits
/// (the process runtime's grace periods before it kills a process group, the containment and reaper waits, the HTTP
/// runtime's request and callback timeouts) — those stay on the real clock; so do run ids and the store's own
/// `updatedAt` stamps.
public protocol EngineClock: Sendable {
    /// The current time.
    func now() -> Date
    /// Returns once `deadline` has passed (at once when it has already); throws `CancellationError` when the task
    /// is cancelled first.
    func sleep(until deadline: Date) async throws
    /// Returns once `duration` has passed from now.
    func sleep(for duration: Duration) async throws
}

extension EngineClock {
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now().addingTimeInterval(duration.seconds))
    }
}

/// The wall clock: `Date()`, and sleeps on the continuous clock. The engine's default.
public struct SystemClock: EngineClock {
    public init() {}

    public func now() -> Date { Date() }

    public func sleep(until deadline: Date) async throws {
        // A millisecond past the deadline, so that the deadline has passed when the sleeper looks at the time.
        let wait = Duration.milliseconds(Int64(max(0, deadline.timeIntervalSinceNow) * 1000) + 1)
        try await Task.sleep(until: ContinuousClock.now + wait, clock: .continuous)
    }

    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }
}

/// A clock that stands still until it is told to move: `advance(by:)` sets it forward and wakes, in deadline order,
/// every sleeper whose deadline it passed. Nothing sleeps on the real clock, so tests of backoff, timers and
/// approval timeouts take no longer than the work they do.
public final class ManualClock: EngineClock {
    struct Sleeper {
        var deadline: Date
        var continuation: CheckedContinuation<Void, any Error>
    }

    struct State {
        var now: Date
        var nextID: UInt64 = 0
        var sleepers: [UInt64: Sleeper] = [:]
        /// Sleepers cancelled before they were registered.
        var cancelled: Set<UInt64> = []
    }

    let state: Mutex<State>

    /// A clock standing at `now` (by default 2026-01-01T00:00:00Z).
    public init(now: Date = Date(timeIntervalSince1970: 1_767_225_600)) {
        state = Mutex(State(now: now))
    }

    public func now() -> Date { state.withLock { $0.now } }

    /// The deadlines of the sleepers waiting now, earliest first.
    public var deadlines: [Date] { state.withLock { $0.sleepers.values.map(\.deadline).sorted() } }

    public func sleep(until deadline: Date) async throws {
        try Task.checkCancellation()
        let id = state.withLock { s -> UInt64? in
            guard deadline > s.now else { return nil }
            s.nextID += 1
            return s.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                let resume = state.withLock { s -> Result<Void, any Error>? in
                    if s.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    if deadline <= s.now { return .success(()) }
                    s.sleepers[id] = Sleeper(deadline: deadline, continuation: c)
                    return nil
                }
                if let resume { c.resume(with: resume) }
            }
        } onCancel: {
            let sleeper = state.withLock { s -> Sleeper? in
                if let sleeper = s.sleepers.removeValue(forKey: id) { return sleeper }
                s.cancelled.insert(id)
                return nil
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the clock forward by `duration` and wakes the sleepers whose deadline has now passed.
    public func advance(by duration: Duration) {
        precondition(duration >= .zero, "a manual clock only moves forward")
        move { $0.addingTimeInterval(duration.seconds) }
    }

    /// Moves the clock forward to `date` (it stays where it is when `date` is earlier) and wakes the sleepers whose
    /// deadline has now passed.
    public func advance(to date: Date) {
        move { max($0, date) }
    }

    private func move(_ next: (Date) -> Date) {
        let woken = state.withLock { s -> [Sleeper] in
            s.now = next(s.now)
            let due = s.sleepers.filter { $0.value.deadline <= s.now }
            for id in due.keys { s.sleepers[id] = nil }
            return due.sorted { ($0.value.deadline, $0.key) < ($1.value.deadline, $1.key) }.map(\.value)
        }
        for sleeper in woken { sleeper.continuation.resume() }
    }
}
