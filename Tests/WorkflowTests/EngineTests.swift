import CEL
import Foundation
import OCITesting
import Storage
import Synchronization
import Testing
import Workflow

#if canImport(Glibc)
    import Glibc
#endif

/// A Swift action for logic tests: fails (retryable) its first `failures` calls, counts its calls.
final class CountingAction: WorkflowAction {
    let calls = Mutex<[String]>([])
    let failures: Int
    let manifest = ActionManifest(name: "test/count", version: "1.0.0", description: "counts")
    init(failures: Int = 0) { self.failures = failures }
    func run(_ inputs: Value, context: ActionContext) async throws -> ActionResult {
        let n = calls.withLock {
            $0.append(context.key)
            return $0.count
        }
        if n <= failures { throw ActionFailure(.retryable, "call \(n) fails") }
        return ActionResult(outputs: .map([(.string("calls"), .int(Int64(n))), (.string("echo"), inputs)]))
    }
}

/// A workflow engine over a store, in a fresh state directory.
struct Harness {
    let directory: String
    let engine: WorkflowEngine

    init(
        store: (any WorkflowStore)? = nil, extra: [any WorkflowAction] = [], credentials: [String: String] = [:], globalConcurrency: Int = 32,
        runConcurrency: Int = 8, configure: (inout EngineConfiguration) -> Void = { _ in }
    ) throws {
        directory = try makeTemporaryDirectory()
        var catalog = ActionCatalog([NoopAction(), ProcessAction(), HTTPAction(), NotifyAction()])
        for a in extra { catalog.add(a) }
        let s = try store ?? SQLiteWorkflowStore(path: directory + "/workflows.sqlite")
        var config = EngineConfiguration(stateDirectory: directory, globalConcurrency: globalConcurrency, credentials: credentials)
        config.pollInterval = .milliseconds(50)
        config.runConcurrency = runConcurrency
        configure(&config)
        engine = WorkflowEngine(store: s, catalog: catalog, configuration: config)
    }

    /// Writes the workflow, starts and drives a run; returns the record and its state.
    func run(_ yaml: String, inputs: [String: Value] = [:], key: String? = nil) async throws -> (RunRecord, RunState) {
        let run = try await start(yaml, inputs: inputs, key: key)
        let done = try await engine.drive(run.id)
        return (done, try await engine.state(of: done).1)
    }

    func start(_ yaml: String, inputs: [String: Value] = [:], key: String? = nil) async throws -> RunRecord {
        let file = directory + "/workflow-\(UUID().uuidString.prefix(8)).yaml"
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        return try await engine.start(file: file, text: yaml, inputs: inputs, idempotencyKey: key).run
    }

    func journal(_ run: String) async throws -> [JournalEntry] { try await engine.store.journal(run: run) }

    /// A shell script in the state directory, executable.
    func script(_ name: String, _ body: String) throws -> String {
        let path = directory + "/" + name
        try ("#!/bin/sh\n" + body).write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }
}

let head = "apiVersion: warden.dev/v1\nkind: Workflow\nname: t\n"

@Suite struct EngineTests {
    @Test func stepsRunInDependencyOrderAndOutputsFlow() async throws {
        let h = try Harness()
        let (run, state) = try await h.run(
            head + """
                inputs:
                  who: {type: string}
                steps:
                  - id: a
                    uses: noop@v1
                    with: {greeting: "hello ${{ inputs.who }}"}
                  - id: b
                    uses: noop@v1
                    with: {twice: '${{ steps.a.outputs.greeting + "!" }}'}
                  - id: c
                    uses: noop@v1
                    needs: [a]
                    with: {n: 1}
                outputs:
                  final: ${{ steps.b.outputs.twice }}
                """, inputs: ["who": .string("world")])
        #expect(run.status == "succeeded")
        #expect(run.outputs == #"{"final":"hello world!"}"#)
        #expect(state.steps["c"]?.status == .succeeded)
        let types = try await h.journal(run.id).map(\.type)
        #expect(types.first == "run.created" && types.last == "run.finished")
        // b's attempt starts only after a's finished entry.
        let j = try await h.journal(run.id)
        let aDone = j.firstIndex { $0.type == "step.finished" && $0.step == "a" }!
        let bStart = j.firstIndex { $0.type == "attempt.started" && $0.step == "b" }!
        #expect(aDone < bStart)
    }

    @Test func aFalseGuardSkipsAndDependentsSeeTheSkip() async throws {
        let h = try Harness()
        let (run, state) = try await h.run(
            head + """
                steps:
                  - id: maybe
                    if: ${{ 1 > 2 }}
                    uses: noop@v1
                  - id: next
                    uses: noop@v1
                    needs: [maybe]
                    with: {saw: '${{ steps.maybe.status }}'}
                """)
        #expect(run.status == "succeeded")
        #expect(state.steps["maybe"]?.status == .skipped)
        #expect(state.steps["next"]?.outputs.jsonText() == #"{"saw":"skipped"}"#)
    }

    @Test func retryableFailuresRetryWithBackoffUntilTheyPass() async throws {
        let h = try Harness()
        let counter = h.directory + "/count"
        // Fails (exit 1) on its first two attempts, then succeeds: a real child process each time.
        let script = try h.script(
            "flaky.sh",
            "n=$(cat \(counter) 2>/dev/null || echo 0); n=$((n+1)); echo $n > \(counter)\n[ $n -ge 3 ] || exit 1\necho \"{\\\"n\\\": $n}\"\n")
        let (run, state) = try await h.run(
            head + """
                steps:
                  - id: flaky
                    uses: process@v1
                    with: {command: ["\(script)"]}
                    retry: {maxAttempts: 4, backoff: exponential, initialDelay: 20ms, multiplier: 2, jitter: 0}
                """)
        #expect(run.status == "succeeded")
        #expect(state.steps["flaky"]?.units[0].attempt == 3)
        #expect(state.steps["flaky"]?.outputs.jsonText() == #"{"n":3}"#)
        let retries = try await h.journal(run.id).filter { $0.type == "attempt.finished" }.compactMap { try? Value.parseJSON($0.data) }
        #expect(retries.compactMap { $0["status"].flatMap { if case .string(let s) = $0 { s } else { nil } } } == ["retry", "retry", "succeeded"])
        // The exponential delays were kept: 20 ms then 40 ms between attempts.
        let starts = try await h.journal(run.id).filter { $0.type == "attempt.started" }.map(\.at)
        #expect(starts[2].timeIntervalSince(starts[1]) >= 0.039 && starts[1].timeIntervalSince(starts[0]) >= 0.019)
    }

    @Test func exitCodeTwoIsPermanentAndIsNotRetried() async throws {
        let h = try Harness()
        let (run, state) = try await h.run(
            head + """
                steps:
                  - id: bad
                    uses: process@v1
                    with: {command: "echo refusing >&2; exit 2"}
                    retry: {maxAttempts: 5, initialDelay: 10ms}
                  - id: never
                    uses: noop@v1
                    needs: [bad]
                """)
        #expect(run.status == "failed")
        #expect(state.steps["bad"]?.units[0].attempt == 1)
        #expect(state.steps["bad"]?.error?.contains("exited with code 2: refusing") == true)
        #expect(state.steps["never"]?.status == .pending)
        #expect(run.error?.hasPrefix("bad: ") == true)
    }

    @Test func aTimeoutKillsTheProcessGroup() async throws {
        let h = try Harness()
        let pidFile = h.directory + "/pid"
        let (run, state) = try await h.run(
            head + """
                steps:
                  - id: slow
                    uses: process@v1
                    with: {command: "sleep 30 & echo $! > \(pidFile); wait"}
                    timeout: 300ms
                """)
        #expect(run.status == "failed")
        #expect(state.steps["slow"]?.units[0].errorClass == "timeout")
        // The background sleep (same process group) was killed too.
        let pid = Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        try await waitFor { processGone(pid) }
    }

    /// A grandchild that calls `setsid` leaves the step's process group; the attempt's cgroup still holds it, so it
    /// ends with the attempt — when the step exits on its own and when it times out.
    @Test(arguments: ["exits", "times out"]) func aDescendantThatLeftTheProcessGroupEndsWithTheAttempt(_ ending: String) async throws {
        try #require(
            ChildProcess.containment == .cgroup,
            "no writable cgroup2 hierarchy here: attempts are held by their process group only (docs/actions.md)")
        let h = try Harness()
        let pidFile = h.directory + "/escaped"
        let after = ending == "exits" ? "exit 0" : "sleep 30"
        let (run, state) = try await h.run(
            head + """
                steps:
                  - id: daemon
                    uses: process@v1
                    with:
                      command: ["/bin/sh", "-c", "\(TestProcesses.escapingDaemon(pidFile: pidFile, after: after))"]
                    timeout: 2s
                """)
        let pid = Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        if ending == "exits" {
            #expect(run.status == "succeeded")
        } else {
            #expect(run.status == "failed" && state.steps["daemon"]?.units[0].errorClass == "timeout")
        }
        try await waitFor { processGone(pid) }
    }

    @Test func foreachGathersResultsInOrderAndReportsPartialFailure() async throws {
        let h = try Harness()
        let yaml =
            head + """
                steps:
                  - id: each
                    uses: process@v1
                    foreach: ${{ [1, 2, 3, 4] }}
                    concurrency: 2
                    continueOnError: CONTINUE
                    with:
                      command: 'n=$(cat); [ $n -ne 3 ] || exit 2; echo "{\\"sq\\": $((n*n))}"'
                      input: ${{ item }}
                  - id: after
                    uses: noop@v1
                    needs: [each]
                    with: {results: '${{ steps.each.outputs }}', status: '${{ steps.each.status }}'}
                """
        let (failed, state) = try await h.run(yaml.replacingOccurrences(of: "CONTINUE", with: "false"))
        #expect(failed.status == "failed")
        #expect(state.steps["each"]?.error?.hasPrefix("1 of 4 items failed; item 2:") == true)
        #expect(state.steps["each"]?.units.map(\.status) == [.succeeded, .succeeded, .failed, .succeeded])
        let (run, state2) = try await h.run(yaml.replacingOccurrences(of: "CONTINUE", with: "true"))
        #expect(run.status == "succeeded")
        #expect(state2.steps["after"]?.outputs.jsonText() == #"{"results":[{"sq":1},{"sq":4},null,{"sq":16}],"status":"failed"}"#)
        // At most two items ran at once: every item's attempt started after at most one other unfinished one.
        var open = 0
        var most = 0
        for e in try await h.journal(run.id) where e.step == "each" {
            if e.type == "attempt.started" { open += 1 }
            if e.type == "attempt.finished" { open -= 1 }
            most = max(most, open)
        }
        #expect(most == 2)
    }

    @Test func untilRepeatsTheStepUntilItsConditionHolds() async throws {
        let h = try Harness()
        let counter = h.directory + "/until"
        let script = try h.script("inc.sh", "n=$(cat \(counter) 2>/dev/null || echo 0); n=$((n+1)); echo $n > \(counter); echo \"{\\\"n\\\": $n}\"\n")
        let (run, state) = try await h.run(
            head + """
                steps:
                  - id: poll
                    uses: process@v1
                    with: {command: ["\(script)"]}
                    until: outputs.n >= 3
                    maxIterations: 5
                  - id: capped
                    uses: process@v1
                    needs: [poll]
                    with: {command: ["\(script)"]}
                    until: outputs.n >= 100
                    maxIterations: 2
                """)
        #expect(state.steps["poll"]?.status == .succeeded && state.steps["poll"]?.outputs.jsonText() == #"{"n":3}"#)
        #expect(state.steps["capped"]?.status == .failed)
        #expect(state.steps["capped"]?.error == "until: `outputs.n >= 100` still false after 2 iterations")
        #expect(run.status == "failed")
    }

    @Test func anApprovalWaitsForTheRequiredApprovers() async throws {
        let h = try Harness()
        let run = try await h.start(
            head + """
                steps:
                  - id: gate
                    approval: {approvers: [alice, bob, carol], required: 2, timeout: 1h}
                  - id: ship
                    uses: noop@v1
                    needs: [gate]
                    with: {by: '${{ steps.gate.outputs.decisions.map(d, d.by) }}'}
                """)
        let driver = Task { try await h.engine.drive(run.id) }
        try await waitFor { try await h.engine.state(of: run).1.steps["gate"]?.status == .waiting }
        await #expect(throws: WorkflowError.self) { try await h.engine.decide(run.id, step: "gate", approve: true, by: "mallory", comment: nil) }
        try await h.engine.decide(run.id, step: "gate", approve: true, by: "alice", comment: "looks good")
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await h.engine.state(of: run).1.steps["gate"]?.status == .waiting)
        try await h.engine.decide(run.id, step: "gate", approve: true, by: "bob", comment: nil)
        let done = try await driver.value
        #expect(done.status == "succeeded")
        let state = try await h.engine.state(of: done).1
        #expect(state.steps["ship"]?.outputs.jsonText() == #"{"by":["alice","bob"]}"#)
        #expect(state.steps["gate"]?.decisions.first?.comment == "looks good")
    }

    @Test func aRejectionFailsTheStepAndTimeoutsDecideAsDeclared() async throws {
        let h = try Harness()
        let run = try await h.start(head + "steps:\n  - id: gate\n    approval: {approvers: [alice]}\n")
        let driver = Task { try await h.engine.drive(run.id) }
        try await waitFor { try await h.engine.state(of: run).1.steps["gate"]?.status == .waiting }
        try await h.engine.decide(run.id, step: "gate", approve: false, by: "alice", comment: "CVE open")
        let rejected = try await driver.value
        #expect(rejected.status == "failed" && rejected.error == "gate: rejected by alice: CVE open")

        let cases: [(String, RunStatus, String?)] = [("approve", "succeeded", "approved"), ("reject", "failed", "rejected"), ("fail", "failed", nil)]
        for (onTimeout, status, decision) in cases {
            let (r, s) = try await h.run(head + "steps:\n  - id: gate\n    approval: {timeout: 200ms, onTimeout: \(onTimeout)}\n")
            #expect(r.status == status, "onTimeout \(onTimeout)")
            if let decision { #expect(s.steps["gate"]?.outputs["decision"]?.jsonText() == "\"\(decision)\"") }
            if onTimeout == "fail" { #expect(s.steps["gate"]?.error == "the approval timed out") }
        }
    }

    @Test func cancellationStopsTheRunningProcess() async throws {
        let h = try Harness()
        let pidFile = h.directory + "/pid"
        let run = try await h.start(
            head
                + "steps:\n  - id: long\n    uses: process@v1\n    with: {command: 'echo $$ > \(pidFile); exec sleep 60'}\n  - id: later\n    uses: noop@v1\n    needs: [long]\n"
        )
        let driver = Task { try await h.engine.drive(run.id) }
        try await waitFor { FileManager.default.fileExists(atPath: pidFile) }
        try await h.engine.cancel(run.id, by: "ops")
        let done = try await driver.value
        #expect(done.status == "cancelled" && done.error == "cancelled by ops")
        let state = try await h.engine.state(of: done).1
        #expect(state.steps["long"]?.status == .cancelled && state.steps["later"]?.status == .pending)
        let pid = Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        try await waitFor { processGone(pid) }
    }

    @Test func aDurableTimerFiresAndResumesAfterARestart() async throws {
        let h = try Harness()
        let run = try await h.start(head + "steps:\n  - id: pause\n    wait: 400ms\n  - id: then\n    uses: noop@v1\n    needs: [pause]\n")
        // A first driver stops (as if the process died) while the timer waits.
        let first = Task { try await h.engine.drive(run.id) }
        try await waitFor { try await h.engine.state(of: run).1.steps["pause"]?.status == .waiting }
        first.cancel()
        _ = try? await first.value
        let done = try await h.engine.drive(run.id)
        #expect(done.status == "succeeded")
        let j = try await h.journal(run.id)
        let started = j.first { $0.type == "timer.started" }!.at
        let fired = j.first { $0.type == "timer.fired" }!.at
        #expect(fired.timeIntervalSince(started) >= 0.39)
        #expect(j.filter { $0.type == "timer.started" }.count == 1)
    }

    @Test func recoveryNeverRerunsCompletedStepsAndRetriesInterruptedAttempts() async throws {
        let counting = CountingAction()
        let h = try Harness(extra: [counting])
        let yaml = head + "steps:\n  - id: a\n    uses: test/count@v1\n  - id: b\n    uses: test/count@v1\n    needs: [a]\n"
        let run = try await h.start(yaml)
        // The journal of a process that died while b's first attempt was in flight.
        let entries = [
            JournalEntry(run: run.id, type: "step.started", step: "a"),
            JournalEntry(run: run.id, type: "attempt.started", step: "a", item: 0, attempt: 1),
            JournalEntry(
                run: run.id, type: "attempt.finished", step: "a", item: 0, attempt: 1, data: #"{"status":"succeeded","outputs":{"from":"before"}}"#),
            JournalEntry(run: run.id, type: "step.finished", step: "a", data: #"{"status":"succeeded","outputs":{"from":"before"}}"#),
            JournalEntry(run: run.id, type: "step.started", step: "b"),
            JournalEntry(run: run.id, type: "attempt.started", step: "b", item: 0, attempt: 1),
        ]
        try await h.engine.store.append(run: run.id, entries, update: RunUpdate(status: "running"))
        let done = try await h.engine.drive(run.id)
        #expect(done.status == "succeeded")
        // a was not run again; b ran once, as attempt 2.
        #expect(counting.calls.withLock { $0 } == ["\(run.id)/b/2"])
        let state = try await h.engine.state(of: done).1
        #expect(state.steps["a"]?.outputs.jsonText() == #"{"from":"before"}"#)
        #expect(try await h.journal(run.id).contains { $0.type == "attempt.interrupted" && $0.step == "b" && $0.attempt == 1 })
    }

    /// A unit whose attempts were in flight each time the driving process crashed (an action that brings it down)
    /// fails with the reason at the limit instead of being started again by every new driver; a driver that was
    /// only stopped (SIGKILL, a power cut) does not count.
    @Test func aStepThatKeepsCrashingItsDriverFailsInsteadOfRestartingForever() async throws {
        let counting = CountingAction()
        let h = try Harness(extra: [counting])
        let yaml = head + "steps:\n  - id: b\n    uses: test/count@v1\n  - id: after\n    uses: test/count@v1\n    needs: [b]\n"
        // A driver that no longer exists, and left the trace of a crash.
        let gone = try await runProgram("/bin/true")
        let ghost = ProcessInfo.processInfo.hostName + ":\(gone.pid)"
        try FileManager.default.createDirectory(atPath: h.directory + "/crashes", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: h.directory + "/crashes/" + ghost, contents: nil)

        func journal(_ run: String, crashedBefore: Bool) -> [JournalEntry] {
            var entries = [JournalEntry(run: run, type: "step.started", step: "b")]
            for attempt in 1...3 {
                entries.append(JournalEntry(run: run, type: "attempt.started", step: "b", item: 0, attempt: attempt))
                if attempt < 3 {
                    entries.append(
                        JournalEntry(
                            run: run, type: "attempt.interrupted", step: "b", item: 0, attempt: attempt,
                            data: #"{"reason":"the process driving the run crashed","crashed":\#(crashedBefore)}"#))
                }
            }
            return entries
        }
        let run = try await h.start(yaml)
        try await h.engine.store.append(run: run.id, journal(run.id, crashedBefore: true), update: RunUpdate(status: "running"))
        #expect(try await h.engine.store.claim(run: run.id, owner: ghost, isGone: { _ in true }))
        let done = try await h.engine.drive(run.id)
        #expect(done.status == "failed")
        #expect(counting.calls.withLock { $0 }.isEmpty)
        let state = try await h.engine.state(of: done).1
        #expect(state.steps["b"]?.status == .failed)
        #expect(state.steps["b"]?.units[0].errorClass == "permanent")
        #expect(state.steps["b"]?.error?.contains("crashed during 3 attempts of this step in a row") == true)
        #expect(state.steps["after"]?.status == .pending)

        // The same journal after drivers that were stopped, not crashed: the step runs.
        let stopped = try await h.start(yaml)
        try await h.engine.store.append(run: stopped.id, journal(stopped.id, crashedBefore: false), update: RunUpdate(status: "running"))
        #expect(try await h.engine.drive(stopped.id).status == "succeeded")
        #expect(
            try await h.journal(stopped.id).contains { $0.type == "attempt.interrupted" && $0.attempt == 3 && $0.data.contains(#""crashed":false"#) })
    }

    /// Outputs larger than the journal keeps fail the step (or the run) with the reason; nothing that size is written.
    @Test func outputsLargerThanTheJournalKeepsFailWithTheReason() async throws {
        let h = try Harness(extra: [CountingAction()]) { $0.journalValueLimit = 400 }
        let big = String(repeating: "x", count: 500)
        let (run, state) = try await h.run(head + "steps:\n  - id: a\n    uses: test/count@v1\n    with: {blob: \(big)}\n")
        #expect(run.status == "failed")
        #expect(state.steps["a"]?.units[0].errorClass == "permanent")
        #expect(state.steps["a"]?.error?.contains("more than the journal keeps (400 bytes)") == true)
        #expect(try await h.journal(run.id).allSatisfy { $0.data.utf8.count < 400 })

        // Each item is small, the gathered list is not.
        let item = String(repeating: "y", count: 60)
        let (each, eachState) = try await h.run(
            head + "steps:\n  - id: e\n    uses: test/count@v1\n    foreach: ${{ [1, 2, 3, 4, 5, 6, 7, 8] }}\n    with: {blob: \(item)}\n")
        #expect(each.status == "failed")
        #expect(eachState.steps["e"]?.units.allSatisfy { $0.status == .succeeded } == true)
        #expect(eachState.steps["e"]?.error?.contains("the gathered outputs of 8 items") == true)

        // The run's own outputs.
        let (whole, _) = try await h.run(
            head
                + "steps:\n  - id: a\n    uses: noop@v1\n    with: {x: \(String(repeating: "z", count: 300))}\noutputs:\n  a: ${{ steps.a.outputs.x }}\n  b: ${{ steps.a.outputs.x }}\n"
        )
        #expect(whole.status == "failed")
        #expect(whole.error?.contains("the run's outputs are") == true)
    }

    /// Logs, work directories and the journal's database are private to the owner, whatever the umask and however
    /// open the state directory is.
    @Test func logsWorkDirectoriesAndTheJournalArePrivate() async throws {
        let old = umask(0o022)
        defer { umask(old) }
        let h = try Harness()
        chmod(h.directory, 0o755)
        let (run, _) = try await h.run(
            head + "steps:\n  - id: p\n    uses: process@v1\n    with: {command: 'echo secret >&2; ls -ld \"$WARDEN_WORKDIR\" >&2'}\n")
        #expect(run.status == "succeeded")
        func mode(_ path: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1) ?? -1 }
        let logs = h.directory + "/runs/\(run.id)/logs"
        #expect(mode(logs) == 0o700)
        #expect(mode(logs + "/p.1.log") == 0o600)
        #expect(try String(contentsOfFile: logs + "/p.1.log", encoding: .utf8).contains("drwx------"))
        #expect(mode(h.directory + "/workflows.sqlite") == 0o600)
        #expect(mode(h.directory + "/workflows.sqlite-wal") == 0o600)
    }

    /// `runs logs` streams: lines come out as they are read, a line longer than the piece limit in pieces, and a log
    /// that is not a regular file is not opened for reading.
    @Test func logsAreReadInBoundedPieces() throws {
        let dir = try makeTemporaryDirectory()
        let path = dir + "/a.log"
        let long = String(repeating: "L", count: 250_000)
        try ("first\n\n" + long + "\nlast").write(toFile: path, atomically: true, encoding: .utf8)
        var pieces: [(String, Bool)] = []
        #expect(LogLines.read(path, pieceLimit: 100_000) { pieces.append((String($0), $1)) })
        #expect(pieces.map(\.0.count) == [5, 0, 100_000, 100_000, 50_000, 4])
        #expect(pieces.map(\.1) == [false, false, false, true, true, false])
        #expect(pieces[2...4].map(\.0).joined() == long)
        #expect(pieces.allSatisfy { $0.0.utf8.count <= 100_000 })
        // Fed in chunks of any size (a server's pages), the splitter gives the same lines and pieces.
        for size in [1, 7, 99_999, 1 << 20] {
            let bytes = Array(try String(contentsOfFile: path, encoding: .utf8).utf8)
            var splitter = LogLines.Splitter(pieceLimit: 100_000)
            var chunked: [(String, Bool)] = []
            for start in stride(from: 0, to: bytes.count, by: size) {
                splitter.feed(bytes[start..<min(start + size, bytes.count)]) { chunked.append((String($0), $1)) }
            }
            splitter.finish { chunked.append((String($0), $1)) }
            #expect(chunked.map(\.0) == pieces.map(\.0) && chunked.map(\.1) == pieces.map(\.1), "chunks of \(size)")
        }
        let fifo = dir + "/fifo.log"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(!LogLines.read(fifo) { _, _ in Issue.record("a FIFO was read") })
    }

    /// IANA zones mean the same in a workflow condition as in `cel eval` and policies.
    @Test func ianaTimeZonesWorkInWorkflowConditions() async throws {
        let h = try Harness()
        let (run, state) = try await h.run(
            head
                + "steps:\n  - id: a\n    uses: noop@v1\n    if: ${{ timestamp('2026-07-01T12:00:00Z').getHours('America/New_York') == 8 }}\n")
        #expect(run.status == "succeeded", "\(run.error ?? "")")
        #expect(state.steps["a"]?.status == .succeeded)
    }

    @Test func theSameIdempotencyKeyIsOneRun() async throws {
        let h = try Harness()
        let yaml = head + "steps:\n  - id: a\n    uses: noop@v1\n"
        let first = try await h.start(yaml, key: "push:sha256:abc")
        let second = try await h.start(yaml, key: "push:sha256:abc")
        let other = try await h.start(yaml, key: "push:sha256:def")
        #expect(first.id == second.id && first.id != other.id)
        #expect(try await h.engine.store.runs(statuses: nil, limit: 10).count == 2)
    }

    @Test func attemptsStayWithinTheRunAndGlobalLimits() async throws {
        /// The most attempts in flight at once in journals (exact within a run, whose limit is counted in the journal).
        func peak(_ journals: [[JournalEntry]]) -> Int {
            var events: [(Int64, Int)] = []
            for j in journals {
                for e in j where e.type == "attempt.started" { events.append((e.seq ?? 0, 1)) }
                for e in j where e.type == "attempt.finished" { events.append((e.seq ?? 0, -1)) }
            }
            events.sort { $0.0 < $1.0 }
            var open = 0
            var most = 0
            for (_, delta) in events {
                open += delta
                most = max(most, open)
            }
            return most
        }
        // Three runs of six independent steps: at most 2 attempts in flight per run, 4 in the process. Each
        // process counts the processes running (under a lock) and records the count it saw.
        let h = try Harness(globalConcurrency: 4, runConcurrency: 2)
        let script = try h.script(
            "count.sh",
            """
            cd \(h.directory)
            ( flock 9; n=$(cat running 2>/dev/null || echo 0); echo $((n+1)) > running; echo $((n+1)) >> seen ) 9>lock
            sleep 0.1
            ( flock 9; n=$(cat running); echo $((n-1)) > running ) 9>lock
            echo {}

            """)
        var yaml = head + "steps:\n"
        for i in 0..<6 { yaml += "  - id: s\(i)\n    uses: process@v1\n    with: {command: [\"\(script)\"]}\n" }
        var runs: [RunRecord] = []
        for _ in 0..<3 { runs.append(try await h.start(yaml)) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for r in runs { group.addTask { _ = try await h.engine.drive(r.id) } }
            try await group.waitForAll()
        }
        for r in runs {
            let j = try await h.journal(r.id)
            #expect(peak([j]) == 2)
            #expect(j.last?.type == "run.finished" && j.last?.data.contains("succeeded") == true)
        }
        let seen = try String(contentsOfFile: h.directory + "/seen", encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
        #expect(seen.count == 18 && seen.max()! <= 4 && seen.max()! >= 3, "\(seen)")
    }

    @Test func anApprovalGivenWhileNoProcessDrivesTheRunIsAppliedOnResume() async throws {
        let h = try Harness()
        let run = try await h.start(head + "steps:\n  - id: gate\n    approval: {approvers: [alice], timeout: 1h}\n")
        let first = Task { try await h.engine.drive(run.id) }
        try await waitFor { try await h.engine.state(of: run).1.steps["gate"]?.status == .waiting }
        first.cancel()
        _ = try? await first.value
        // Recorded with no driver; the next driver applies it, and the deadline stays the one first journalled.
        try await h.engine.decide(run.id, step: "gate", approve: true, by: "alice", comment: nil)
        let done = try await h.engine.drive(run.id)
        #expect(done.status == "succeeded")
        let j = try await h.journal(run.id)
        #expect(j.filter { $0.type == "approval.requested" }.count == 1)
        #expect(j.contains { $0.type == "approval.decided" && $0.data.contains("alice") })
    }

    @Test func theMemoryTwinDrivesTheSameWay() async throws {
        let h = try Harness(store: MemoryWorkflowStore())
        let (run, _) = try await h.run(head + "steps:\n  - id: a\n    uses: noop@v1\n    with: {x: 1}\noutputs:\n  x: ${{ steps.a.outputs.x }}\n")
        #expect(run.status == "succeeded" && run.outputs == #"{"x":1}"#)
    }

    @Test func inputsAreCheckedBeforeTheRunStarts() async throws {
        let h = try Harness()
        let yaml = head + "inputs:\n  n: {type: int}\nsteps:\n  - id: a\n    uses: noop@v1\n"
        await #expect(throws: WorkflowError.self) { try await h.start(yaml) }
        await #expect(throws: WorkflowError.self) { try await h.start(yaml, inputs: ["n": .string("x")]) }
        await #expect(throws: WorkflowError.self) { try await h.start(yaml, inputs: ["n": .int(1), "m": .int(2)]) }
        #expect(try await h.engine.store.runs(statuses: nil, limit: 10).isEmpty)
    }
}

/// The process no longer runs: gone, or a zombie its (re)parent has not reaped yet.
func processGone(_ pid: Int32) -> Bool { TestProcesses.isGone(pid) }
