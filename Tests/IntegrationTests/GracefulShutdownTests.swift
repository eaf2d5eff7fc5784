import Foundation
import OCITesting
import Storage
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `warden run` drives its run as a service group: SIGTERM stops it at a journal entry, releases the run and says
/// how to continue, and `warden runs resume` finishes it.
@Suite struct GracefulShutdownTests {
    @Test(arguments: [SIGTERM, SIGINT])
    func aSignalStopsTheDriverGracefully(signal: Int32) async throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: gate
        steps:
          - id: build
            uses: noop@v1
          - id: release
            needs: [build]
            approval: {approvers: [alice]}
        """.write(toFile: dir + "/gate.yaml", atomically: true, encoding: .utf8)
        final class Driver: Sendable { let pid = Mutex<Int32>(0) }
        let driver = Driver()
        let executable = try wardenExecutable()
        let running = Task {
            try await runProgram(
                executable, ["run", dir + "/gate.yaml", "--state", dir + "/state"], started: { pid in driver.pid.withLock { $0 = pid } })
        }

        // Wait (off the cooperative pool's clock, polling the real database) until the run waits for approval.
        let waiting = try await holdsWithin(.seconds(20)) {
            guard FileManager.default.fileExists(atPath: dir + "/state/workflows.sqlite"),
                let store = try? SQLiteWorkflowStore(path: dir + "/state/workflows.sqlite")
            else { return false }
            return try await store.runs(statuses: ["waiting"], limit: 1).first?.status == "waiting"
        }
        #expect(waiting, "the run never reached its approval")
        let pid = driver.pid.withLock { $0 }
        try #require(pid > 0, "warden run did not start")
        kill(pid, signal)
        let result = try await running.value
        let stderr = result.errorOutput
        #expect(!result.signalled && result.status == 1, "\(result.signalled ? "signal" : "exit") \(result.status): \(stderr)")
        #expect(stderr.contains("interrupted") && stderr.contains("warden runs resume"), "\(stderr)")

        let store = try SQLiteWorkflowStore(path: dir + "/state/workflows.sqlite")
        let run = try #require(try await store.runs(statuses: nil, limit: 1).first)
        #expect(run.status == "waiting" && run.owner == nil, "\(run.status) \(run.owner ?? "")")

        let (a, _, ae) = try await warden(["runs", "approve", run.id, "release", "--by", "alice", "--state", dir + "/state"])
        #expect(a == 0, "\(ae)")
        let (r, out, re) = try await warden(["runs", "resume", run.id, "--state", dir + "/state"])
        #expect(r == 0 && out.contains("succeeded"), "\(out) \(re)")
    }
}
