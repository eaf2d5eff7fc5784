import CEL
import Foundation
import OCITesting
import Storage
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct WorkflowCrashTests {
    /// 50 runs of a 10-step workflow; each step is a real process that logs every execution and applies its effect
    /// once per (run, step) using its attempt key. `warden runs resume --all` is SIGKILLed at random moments and
    /// restarted until every run finished.
    @Test func runsSurviveSIGKILLAndEveryEffectHappensOnce() async throws {
        let dir = try makeTemporaryDirectory()
        let state = dir + "/state"
        let effect = dir + "/effect.sh"
        try """
        #!/bin/sh
        # Every execution, idempotent or not.
        echo "$WARDEN_ATTEMPT_KEY" >> "$LOGS/executions.log"
        sleep 0.0$(( $(od -An -N1 -tu1 /dev/urandom) % 3 ))
        # The effect: once per run and step, whatever the attempt.
        (
          flock 9
          grep -q "^$WARDEN_RUN/$WARDEN_STEP/" "$LOGS/effects.log" 2>/dev/null || echo "$WARDEN_ATTEMPT_KEY" >> "$LOGS/effects.log"
        ) 9>"$LOGS/lock"
        echo '{"step": "'"$WARDEN_STEP"'"}'
        """.write(toFile: effect, atomically: true, encoding: .utf8)
        chmod(effect, 0o755)
        var yaml = "apiVersion: warden.dev/v1\nkind: Workflow\nname: crash\ninputs:\n  n: {type: int}\nsteps:\n"
        for i in 1...10 {
            yaml += "  - id: s\(i)\n    uses: process@v1\n"
            if i > 1 { yaml += "    needs: [s\(i == 6 ? 1 : i - 1)]\n" }  // two chains after s1: s2…s5 and s6…s10
            yaml += "    with: {command: [\"\(effect)\"], env: {LOGS: \"\(dir)\"}}\n"
        }
        try yaml.write(toFile: dir + "/crash.yaml", atomically: true, encoding: .utf8)

        // The starts and the kill loop block (process waits, sleeps): they run on a thread of their own, so the
        // test runner's small task pool stays free for the suites running alongside.
        let executable = try wardenExecutable()
        let (starts, kills, finished) = await withCheckedContinuation { (c: CheckedContinuation<([Int32], Int, Bool), Never>) in
            Thread.detachNewThread { c.resume(returning: Self.startAndKill(dir: dir, state: state, executable: executable)) }
        }
        #expect(starts.allSatisfy { $0 == 0 }, "\(starts)")
        #expect(finished, "the runs did not finish after \(kills) kills")
        #expect(kills >= 3, "the processes were killed only \(kills) times")

        let store = try SQLiteWorkflowStore(path: state + "/workflows.sqlite")
        #expect(try store.integrityCheck() == "ok")
        let runs = try await store.runs(statuses: nil, limit: 100)
        #expect(runs.count == 50)
        #expect(runs.allSatisfy { $0.status == "succeeded" }, "\(runs.filter { $0.status != "succeeded" }.map { "\($0.id) \($0.status)" })")

        // Every step's effect exactly once.
        let effects = try String(contentsOfFile: dir + "/effects.log", encoding: .utf8).split(separator: "\n")
        let pairs = effects.map { $0.split(separator: "/").prefix(2).joined(separator: "/") }
        #expect(effects.count == 500 && Set(pairs).count == 500)

        // No completed step ran again: for each (run, step) one successful attempt, and no execution with a later
        // attempt number; executions of one (run, step) have distinct attempt numbers.
        var executed: [String: [Int]] = [:]
        for line in try String(contentsOfFile: dir + "/executions.log", encoding: .utf8).split(separator: "\n") {
            let parts = line.split(separator: "/")
            executed[parts[0] + "/" + parts[1], default: []].append(Int(parts[2])!)
        }
        var reexecuted = 0
        var interrupted = 0
        for run in runs {
            let journal = try await store.journal(run: run.id)
            interrupted += journal.filter { $0.type == "attempt.interrupted" }.count
            for i in 1...10 {
                let succeeded = journal.filter {
                    $0.type == "attempt.finished" && $0.step == "s\(i)"
                        && (try? Value.parseJSON($0.data))?.jsonText().contains("\"succeeded\"") == true
                }
                #expect(succeeded.count == 1)
                let attempts = executed["\(run.id)/s\(i)"] ?? []
                #expect(Set(attempts).count == attempts.count)
                if let ok = succeeded.first?.attempt, attempts.contains(where: { $0 > ok }) { reexecuted += 1 }
            }
            #expect(journal.filter { $0.type == "run.finished" }.count == 1)
        }
        #expect(reexecuted == 0)
        print("crash test: \(kills) SIGKILLs, \(interrupted) interrupted attempts retried, \(effects.count) effects")
    }

    /// A driver that dies of a fault signal while a step runs (as a trap in an action would make it) leaves a trace;
    /// after three such crashes in a row the next driver fails the step with the reason instead of starting it a
    /// fourth time. A driver that is SIGKILLed as often only interrupts the step, which then succeeds.
    @Test(arguments: [SIGILL, SIGKILL]) func aStepWhoseDriverKeepsCrashingFailsAfterThreeCrashes(_ signal: Int32) async throws {
        let dir = try makeTemporaryDirectory()
        let state = dir + "/state"
        try """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: crashing
        steps:
          - id: slow
            uses: process@v1
            with: {command: "echo x >> \(dir)/starts; sleep 1.5"}
          - id: next
            uses: noop@v1
            needs: [slow]
        """.write(toFile: dir + "/w.yaml", atomically: true, encoding: .utf8)
        let executable = try wardenExecutable()
        let (queued, _, _) = try await warden(["run", dir + "/w.yaml", "--queue", "--state", state])
        #expect(queued == 0)
        let outcome = await withCheckedContinuation { (c: CheckedContinuation<[String], Never>) in
            Thread.detachNewThread {
                var log: [String] = []
                func starts() -> Int { ((try? String(contentsOfFile: dir + "/starts", encoding: .utf8)) ?? "").split(separator: "\n").count }
                for round in 1...4 {
                    let p = Process()
                    p.executableURL = URL(fileURLWithPath: executable)
                    p.arguments = ["runs", "resume", "--all", "--state", state]
                    p.standardOutput = FileHandle.nullDevice
                    p.standardError = FileHandle.nullDevice
                    guard (try? p.run()) != nil else { return c.resume(returning: ["cannot start warden"]) }
                    if round <= 3 {
                        var waited = 0
                        while starts() < round && waited < 1000 {
                            usleep(10_000)
                            waited += 1
                        }
                        kill(p.processIdentifier, signal)
                    }
                    p.waitUntilExit()
                    log.append("round \(round): \(p.terminationReason == .uncaughtSignal ? "signal" : "exit") \(p.terminationStatus)")
                }
                c.resume(returning: log)
            }
        }
        let store = try SQLiteWorkflowStore(path: state + "/workflows.sqlite")
        let run = try #require(try await store.runs(statuses: nil, limit: 10).first)
        let journal = try await store.journal(run: run.id)
        let interrupted = journal.filter { $0.type == "attempt.interrupted" }
        #expect(interrupted.count == 3, "\(outcome)")
        let started = ((try? String(contentsOfFile: dir + "/starts", encoding: .utf8)) ?? "").split(separator: "\n").count
        if signal == SIGILL {
            #expect(interrupted.allSatisfy { $0.data.contains(#""crashed":true"#) })
            #expect(run.status == "failed", "\(outcome)")
            #expect(
                run.error?.contains("slow: the process driving the run crashed during 3 attempts of this step in a row") == true, "\(run.error ?? "")"
            )
            #expect(started == 3)
        } else {
            #expect(interrupted.allSatisfy { $0.data.contains(#""crashed":false"#) })
            #expect(run.status == "succeeded", "\(outcome)")
            #expect(started == 4)
        }
    }

    /// Where no cgroup can be made, a reaper (Warden's binary as a child subreaper) holds the attempt: a grandchild
    /// that calls `setsid` ends with the attempt, whether the step exits or times out. With the process group
    /// alone (`group`) the same grandchild survives — what the reaper is for.
    @Test(arguments: ["subreaper exits", "subreaper times out", "group exits"]) func aReaperEndsDescendantsThatLeftTheGroup(_ mode: String)
        async throws
    {
        let dir = try makeTemporaryDirectory()
        let pidFile = dir + "/escaped"
        let after = mode.hasSuffix("exits") ? "exit 0" : "sleep 30"
        try """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: escape
        steps:
          - id: daemon
            uses: process@v1
            with:
              command: ["/bin/sh", "-c", "\(TestProcesses.escapingDaemon(pidFile: pidFile, after: after))"]
            timeout: 2s
        """.write(toFile: dir + "/w.yaml", atomically: true, encoding: .utf8)
        let containment = mode.hasPrefix("subreaper") ? "subreaper" : "group"
        let (rc, out, err) = try await warden(
            ["run", dir + "/w.yaml", "--state", dir + "/state"], environment: ["WARDEN_PROCESS_CONTAINMENT": containment])
        if containment == "subreaper" { #expect(rc == (mode.hasSuffix("exits") ? 0 : 1), "\(out)\(err)") }
        let pid = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        let gone = try await holdsWithin(.seconds(6)) { TestProcesses.isGone(pid) }
        if containment == "group" {
            #expect(!gone, "without a reaper or a cgroup the escapee should survive; it did not, so this test proves nothing")
            kill(pid, SIGKILL)
        } else {
            #expect(gone, "process \(pid) outlived its attempt")
        }
    }

    /// Queues the 50 runs, then starts `warden runs resume --all` and SIGKILLs it after a random 150–700 ms, until
    /// one exits by itself with every run succeeded. Returns the start statuses, the kill count, and whether it ended.
    static func startAndKill(dir: String, state: String, executable: String) -> ([Int32], Int, Bool) {
        var starts: [Int32] = []
        for n in 0..<50 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = ["run", dir + "/crash.yaml", "--queue", "--input", "n=\(n)", "--idempotency-key", "crash-\(n)", "--state", state]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            do { try p.run() } catch { return (starts + [-1], 0, false) }
            p.waitUntilExit()
            starts.append(p.terminationStatus)
        }
        var kills = 0
        for _ in 0..<300 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = ["runs", "resume", "--all", "--state", state, "--concurrency", "8"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            do { try p.run() } catch { return (starts, kills, false) }
            usleep(UInt32.random(in: 150_000...700_000))
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                kills += 1
            }
            p.waitUntilExit()
            if p.terminationReason == .exit && p.terminationStatus == 0 { return (starts, kills, true) }
        }
        return (starts, kills, false)
    }
}
