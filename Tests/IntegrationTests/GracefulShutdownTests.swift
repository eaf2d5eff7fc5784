import Foundation
import OCITesting
import Storage
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
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try wardenExecutable())
        p.arguments = ["run", dir + "/gate.yaml", "--state", dir + "/state"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()

        // Wait (off the cooperative pool's clock, polling the real database) until the run waits for approval.
        var waiting = false
        for _ in 0..<1000 where !waiting {
            if FileManager.default.fileExists(atPath: dir + "/state/workflows.sqlite"),
                let store = try? SQLiteWorkflowStore(path: dir + "/state/workflows.sqlite"),
                let run = try await store.runs(statuses: ["waiting"], limit: 1).first
            {
                waiting = run.status == "waiting"
            }
            if !waiting { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(waiting, "the run never reached its approval")
        kill(p.processIdentifier, signal)
        p.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationReason == .exit && p.terminationStatus == 1, "\(p.terminationReason.rawValue) \(p.terminationStatus): \(stderr)")
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
