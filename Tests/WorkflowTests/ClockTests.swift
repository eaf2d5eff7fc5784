import CEL
import Foundation
import OCITesting
import Storage
import Testing
import Workflow

/// An action whose attempts end only when they are cancelled.
final class HangingAction: WorkflowAction {
    let manifest = ActionManifest(name: "test/hang", version: "1.0.0", description: "hangs")
    func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        try await Task.sleep(for: .seconds(3600))
        return ActionResult(outputs: .map([]))
    }
}

/// Backoff, timers, approval timeouts and attempt timeouts follow the engine's clock: under a manual clock they
/// happen when the test moves the clock past them, and not before, without waiting on the wall clock.
@Suite struct ClockTests {
    /// How long a test lets the driver go round (its poll interval is 50 ms) to show that nothing happens yet.
    static let settle = Duration.milliseconds(150)

    func harness(_ clock: ManualClock, extra: [any WorkflowAction] = []) throws -> Harness {
        try Harness(store: MemoryWorkflowStore(), extra: extra, configure: { $0.clock = clock })
    }

    @Test func theSystemClockIsTheDefault() {
        #expect(EngineConfiguration(stateDirectory: "/tmp/warden-clock").clock is SystemClock)
    }

    @Test func aManualClockWakesSleepersOnlyOnceTheirDeadlinePassed() async throws {
        let clock = ManualClock()
        let t0 = clock.now()
        let a = Task { try await clock.sleep(until: t0 + 10) }
        let b = Task { try await clock.sleep(for: .seconds(20)) }
        let c = Task { try await clock.sleep(until: t0 + 30) }
        try await waitFor { clock.deadlines.count == 3 }
        clock.advance(by: .seconds(9))
        #expect(clock.deadlines == [t0 + 10, t0 + 20, t0 + 30])
        clock.advance(by: .seconds(1))
        try await a.value
        #expect(clock.deadlines == [t0 + 20, t0 + 30])
        clock.advance(to: t0 + 25)
        try await b.value
        #expect(clock.deadlines == [t0 + 30])
        // A cancelled sleeper throws and leaves; a deadline already passed returns at once; the clock never goes back.
        c.cancel()
        await #expect(throws: CancellationError.self) { try await c.value }
        #expect(clock.deadlines.isEmpty)
        try await clock.sleep(until: t0)
        clock.advance(to: t0)
        #expect(clock.now() == t0 + 25)
    }

    @Test func aRetryIsDueWhenTheClockPassesItsBackoffAndNotBefore() async throws {
        let clock = ManualClock()
        let counter = CountingAction(failures: 1)
        let h = try harness(clock, extra: [counter])
        let t0 = clock.now()
        let run = try await h.start(
            head + """
                steps:
                  - id: flaky
                    uses: test/count@v1
                    retry: {maxAttempts: 3, backoff: exponential, initialDelay: 1h, maxDelay: 2h, jitter: 0}
                """)
        let driver = Task { try await h.engine.drive(run.id) }
        let retryAt = t0 + 3600
        // The first attempt failed; the driver sleeps on the clock until the retry is due.
        try await waitFor { clock.deadlines.contains(retryAt) }
        let unit = try await h.engine.state(of: run).1.steps["flaky"]?.units.first
        #expect(unit?.retryAt == retryAt && unit?.failures == 1 && unit?.errorClass == "retryable")
        clock.advance(by: .seconds(3599))
        try await Task.sleep(for: Self.settle)
        #expect(counter.calls.withLock { $0.count } == 1)
        clock.advance(by: .seconds(1))
        let done = try await driver.value
        #expect(done.status == "succeeded")
        #expect(counter.calls.withLock { $0.count } == 2)
        let j = try await h.journal(run.id)
        #expect(j.filter { $0.type == "attempt.started" }.map(\.at) == [t0, retryAt])
        #expect(j.first { $0.type == "attempt.finished" }?.data.contains(#""status":"retry""#) == true)
        #expect(j.last?.type == "run.finished" && j.last?.at == retryAt)
    }

    @Test func aDurableTimerOfADayFiresWhenTheClockPassesIt() async throws {
        let clock = ManualClock()
        let h = try harness(clock)
        let t0 = clock.now()
        let run = try await h.start(head + "steps:\n  - id: pause\n    wait: 24h\n  - id: then\n    uses: noop@v1\n    needs: [pause]\n")
        let driver = Task { try await h.engine.drive(run.id) }
        let fires = t0 + 86400
        try await waitFor { clock.deadlines.contains(fires) }
        #expect(try await h.engine.state(of: run).1.steps["pause"]?.deadline == fires)
        clock.advance(by: .seconds(86399))
        try await Task.sleep(for: Self.settle)
        #expect(try await h.engine.state(of: run).1.steps["pause"]?.status == .waiting)
        clock.advance(by: .seconds(1))
        let done = try await driver.value
        #expect(done.status == "succeeded")
        let state = try await h.engine.state(of: done).1
        #expect(state.steps["pause"]?.outputs["firedAt"]?.stringValue == "2026-01-02T00:00:00Z")
        #expect(state.steps["then"]?.status == .succeeded)
        let j = try await h.journal(run.id)
        #expect(j.first { $0.type == "timer.started" }?.at == t0)
        #expect(j.first { $0.type == "timer.fired" }?.at == fires)
    }

    @Test(arguments: ["reject", "approve", "fail"])
    func anApprovalTimesOutWhenTheClockPassesItsDeadline(_ onTimeout: String) async throws {
        let clock = ManualClock()
        let h = try harness(clock)
        let t0 = clock.now()
        let run = try await h.start(head + "steps:\n  - id: gate\n    approval: {approvers: [alice], timeout: 2h, onTimeout: \(onTimeout)}\n")
        let driver = Task { try await h.engine.drive(run.id) }
        let deadline = t0 + 7200
        try await waitFor { clock.deadlines.contains(deadline) }
        #expect(try await h.engine.state(of: run).1.steps["gate"]?.deadline == deadline)
        clock.advance(by: .seconds(7199))
        try await Task.sleep(for: Self.settle)
        #expect(try await h.engine.state(of: run).1.steps["gate"]?.status == .waiting)
        clock.advance(by: .seconds(1))
        let done = try await driver.value
        let gate = try await h.engine.state(of: done).1.steps["gate"]
        switch onTimeout {
        case "approve":
            #expect(done.status == "succeeded" && gate?.status == .succeeded)
            #expect(gate?.outputs.jsonText() == #"{"decision":"approved","timedOut":true,"decisions":[]}"#)
        case "reject":
            #expect(done.status == "failed" && gate?.status == .failed)
            #expect(gate?.error == "no decision before the approval timed out: rejected")
            #expect(gate?.outputs.jsonText() == #"{"decision":"rejected","timedOut":true,"decisions":[]}"#)
        default:
            #expect(done.status == "failed" && gate?.status == .failed)
            #expect(gate?.error == "the approval timed out")
        }
        let j = try await h.journal(run.id)
        #expect(j.first { $0.type == "approval.requested" }?.at == t0)
        #expect(!j.contains { $0.type == "approval.decided" })
        let finished = j.first { $0.type == "step.finished" && $0.step == "gate" }
        #expect(finished?.at == deadline)
        #expect(finished?.data.contains(onTimeout == "approve" ? #""status":"succeeded""# : #""status":"failed""#) == true)
    }

    @Test func anAttemptTimeoutEndsTheAttemptWhenTheClockPassesIt() async throws {
        let clock = ManualClock()
        let h = try harness(clock, extra: [HangingAction()])
        let t0 = clock.now()
        let run = try await h.start(head + "steps:\n  - id: slow\n    uses: test/hang@v1\n    timeout: 1h\n")
        let driver = Task { try await h.engine.drive(run.id) }
        try await waitFor { clock.deadlines.contains(t0 + 3600) }
        clock.advance(by: .seconds(3600))
        let done = try await driver.value
        let unit = try await h.engine.state(of: done).1.steps["slow"]?.units.first
        #expect(done.status == "failed" && unit?.errorClass == "timeout")
        #expect(unit?.error == "the attempt took longer than its timeout of 3600s")
    }
}
