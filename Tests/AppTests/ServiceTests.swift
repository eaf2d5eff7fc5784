import Foundation
import Logging
import OCITesting
import ServiceLifecycle
import Storage
import Testing
import WardenApp
import Workflow

/// Long-running parts are services: a graceful shutdown stops the driving at a journal entry and releases the run,
/// which another driver then finishes.
@Suite struct ServiceTests {
    @Test func aGracefulShutdownReleasesTheRunForTheNextDriver() async throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = try RunsJob.openEngine(StateLayout(dir), catalog: ActionCatalog([NoopAction()]), concurrency: 4, environment: [:])
        let text = """
            apiVersion: warden.dev/v1
            kind: Workflow
            name: gate
            steps:
              - id: build
                uses: noop@v1
              - id: release
                needs: [build]
                approval: {approvers: [alice]}
              - id: ship
                needs: [release]
                uses: noop@v1
            """
        let (run, _) = try await engine.start(file: "gate.yaml", text: text, inputs: [:])
        let driver = RunDriverService(engine: engine, target: .runs([run.id]))
        let group = ServiceGroup(services: [driver], logger: Logger(label: "test"))
        async let ran: Void = group.run()
        // Wait until the run waits for its approval, then shut down as SIGTERM would.
        var waiting = false
        for _ in 0..<500 where !waiting {
            waiting = try await engine.store.run(id: run.id)?.status == "waiting"
            if !waiting { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(waiting, "the run never reached its approval")
        await group.triggerGracefulShutdown()
        try await ran

        #expect(driver.interrupted && driver.finished.isEmpty)
        let stopped = try #require(try await engine.store.run(id: run.id))
        #expect(!stopped.finished && stopped.owner == nil, "\(stopped.status) owned by \(stopped.owner ?? "nobody")")

        // The next driver continues from the journal: the approval is applied and the run ends.
        try await engine.decide(run.id, step: "release", approve: true, by: "alice", comment: nil)
        let next = try await RunsJob.drive(.runs([run.id]), engine: engine, listener: nil, logger: Logger(label: "test"))
        #expect(!next.interrupted && next.finished.map(\.status) == ["succeeded"])
        let journal = try await engine.store.journal(run: run.id)
        #expect(journal.filter { $0.type == "step.finished" && $0.step == "build" }.count == 1, "build ran once")
    }
}
