import CEL
import Foundation
import Storage
import WardenApp

/// `warden serve --demo`: example workflows published in the `default` workspace and a run that waits for an
/// approval, so a first user can watch and approve it with curl or `warden --server`.
public enum Demo {
    public static let workflows = [
        """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: three-steps
        description: Three no-op steps in a row (the benchmark's workflow).
        steps:
          - id: one
            uses: noop@v1
          - id: two
            uses: noop@v1
            needs: [one]
          - id: three
            uses: noop@v1
            needs: [two]
        """,
        """
        apiVersion: warden.dev/v1
        kind: Workflow
        name: release-gate
        description: Checks, then waits for an operator's approval, then releases.
        inputs:
          image: {type: string, default: "registry.example/app:1.0"}
        steps:
          - id: check
            uses: noop@v1
            with: {image: "${{ inputs.image }}"}
          - id: gate
            needs: [check]
            approval: {required: 1}
          - id: release
            needs: [gate]
            uses: noop@v1
            with: {image: "${{ inputs.image }}"}
        outputs:
          released: ${{ steps.release.outputs.image }}
        """,
    ]

    /// Publishes the examples and starts the approval demo run; returns its id.
    public static func seed(_ server: ControlServer) async throws -> String {
        let caller = ControlPlane.Caller(Principal(name: "demo", method: "local"))
        if try await server.store.workspace(RunRecord.defaultWorkspace) == nil {
            _ = try await server.control.createWorkspace(RunRecord.defaultWorkspace, caller: caller)
        }
        for w in workflows { _ = try await server.control.publish(.workflow, workspace: RunRecord.defaultWorkspace, text: w, caller: caller) }
        let (run, _) = try await server.control.startRun(
            workspace: RunRecord.defaultWorkspace, workflow: "release-gate", version: nil, inputs: [:], labels: ["demo": "true"],
            idempotencyKey: "demo",
            caller: caller)
        server.drive(run.id)
        return run.id
    }
}
